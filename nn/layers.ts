// Layers: Sequential, Linear, Conv2d, BatchNorm2d, pooling, Flatten, Dropout (with a
// reusable mask, which FreeLB needs) and Normalize (input normalisation inside the model,
// so attacks always work in [0,1] pixel space). Sequential fuses a Conv2d / Linear
// followed by an Activation into one fused op (engine/ops/fused.ts) by default.
import { Tensor, keep, flatten, sub, div, type Device } from '../engine/index.ts';
import { dropout } from '../engine/ops/dropout.ts';
import { linear } from '../engine/ops/matmul.ts';
import { conv2d, type Conv2dOptions as EngineConvOptions } from '../engine/ops/conv2d.ts';
import { conv2dAct, linearAct } from '../engine/ops/fused.ts';
import { Activation } from './activation.ts';
import { maxPool2d, avgPool2d, globalAvgPool2d } from '../engine/ops/pool.ts';
import { batchNorm2d } from '../engine/ops/batchnorm.ts';
import { bernoulliMask } from '../engine/ops/random.ts';
import { Module, allModules, parameter } from './module.ts';
import { initValues } from './init.ts';

export class Sequential extends Module {
  /**
   * Run a Conv2d or Linear immediately followed by an Activation as one fused op
   * (conv2dAct / linearAct: bias + activation in the matmul / conv store, one fused
   * backward), in training and in eval (default true). The layers, their names and
   * parameters are unchanged (checkpoints too). A per-model setting: set it for a whole
   * model with setEpilogueFusion(model, on) (benchmarks and tests of the unfused path).
   */
  fuse = true;
  readonly layers: Module[];
  constructor(...layers: Module[]) {
    super();
    this.layers = layers;
    layers.forEach((l, i) => this.registerModule(String(i), l));
  }
  forward(x: Tensor): Tensor {
    const fuse = this.fuse;
    const L = this.layers;
    let h = x;
    for (let i = 0; i < L.length; i++) {
      const l = L[i]!;
      const next = L[i + 1];
      if (fuse && next instanceof Activation && (l instanceof Conv2d || l instanceof Linear)) {
        // NOTE: null when either layer must run on its own (an observed Activation, an
        // overridden forward); then both run unfused below.
        const y = l.forwardAct(h, next);
        if (y) {
          h = y;
          i++;
          continue;
        }
      }
      h = l.forward(h);
    }
    return h;
  }
}

/**
 * Turn epilogue fusion on or off for every Sequential inside `model` (itself included);
 * returns the previous settings, in walk order, for restoreEpilogueFusion.
 */
export function setEpilogueFusion(model: Module, on: boolean): boolean[] {
  if (typeof on !== 'boolean') throw new Error(`kinkless: setEpilogueFusion: on must be a boolean, got ${String(on)}`);
  const prev: boolean[] = [];
  for (const s of sequentials(model)) {
    prev.push(s.fuse);
    s.fuse = on;
  }
  return prev;
}

/** Undo setEpilogueFusion with the settings it returned. */
export function restoreEpilogueFusion(model: Module, prev: boolean[]): void {
  sequentials(model).forEach((s, i) => (s.fuse = prev[i] ?? s.fuse));
}

function sequentials(model: Module): Sequential[] {
  return allModules(model).filter((m): m is Sequential => m instanceof Sequential);
}

function posInt(layer: string, arg: string, v: number): void {
  if (!Number.isInteger(v) || v < 1) throw new Error(`kinkless: ${layer}: ${arg} must be a positive integer, got ${String(v)}`);
}

export interface LinearOptions {
  bias?: boolean;
  seed?: number;
}

/** y = x w^T + b; w [out, in] (PyTorch layout), PyTorch's default init. */
export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(device: Device, readonly inFeatures: number, readonly outFeatures: number, opts: LinearOptions = {}) {
    super();
    posInt('Linear', 'inFeatures', inFeatures);
    posInt('Linear', 'outFeatures', outFeatures);
    const seed = opts.seed ?? 0;
    this.weight = this.registerParameter('weight', parameter(device, initValues('kaiming_uniform', [outFeatures, inFeatures], seed, { a: Math.sqrt(5) }), [outFeatures, inFeatures]));
    this.bias =
      opts.bias === false
        ? null
        : this.registerParameter('bias', parameter(device, initValues('uniform', [outFeatures], seed + 1, { bound: 1 / Math.sqrt(inFeatures) }), [outFeatures], 'bias'));
  }
  private checkInput(x: Tensor): void {
    if (x.rank !== 2 || x.shape[1] !== this.inFeatures) {
      throw new Error(`kinkless: Linear(${this.inFeatures} -> ${this.outFeatures}): input must be [N, ${this.inFeatures}], got [${x.shape.join(', ')}]`);
    }
  }
  forward(x: Tensor): Tensor {
    this.checkInput(x);
    return linear(x, this.weight, this.bias ?? undefined);
  }
  /** act.forward(this.forward(x)) as one fused op (linearAct); null when either layer must run unfused. */
  forwardAct(x: Tensor, act: Activation): Tensor | null {
    if (this.forward !== Linear.prototype.forward) return null;
    const spec = act.fusableSpec();
    if (!spec) return null;
    this.checkInput(x);
    return linearAct(x, this.weight, this.bias ?? undefined, spec);
  }
}

export interface Conv2dOptions {
  stride?: number;
  padding?: number;
  dilation?: number;
  groups?: number;
  bias?: boolean;
  seed?: number;
}

export class Conv2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(device: Device, readonly inChannels: number, readonly outChannels: number, readonly kernel: number, readonly opts: Conv2dOptions = {}) {
    super();
    posInt('Conv2d', 'inChannels', inChannels);
    posInt('Conv2d', 'outChannels', outChannels);
    posInt('Conv2d', 'kernel', kernel);
    const groups = opts.groups ?? 1;
    if (inChannels % groups || outChannels % groups) throw new Error(`kinkless: Conv2d: channels ${inChannels} -> ${outChannels} must be divisible by groups = ${groups}`);
    const shape = [outChannels, inChannels / groups, kernel, kernel];
    const seed = opts.seed ?? 0;
    this.weight = this.registerParameter('weight', parameter(device, initValues('kaiming_uniform', shape, seed, { a: Math.sqrt(5) }), shape));
    const fanIn = (inChannels / groups) * kernel * kernel;
    this.bias = opts.bias === false ? null : this.registerParameter('bias', parameter(device, initValues('uniform', [outChannels], seed + 1, { bound: 1 / Math.sqrt(fanIn) }), [outChannels], 'bias'));
  }
  private convOpts(): EngineConvOptions {
    const o = this.opts;
    return { stride: o.stride ?? 1, padding: o.padding ?? 0, dilation: o.dilation ?? 1, groups: o.groups ?? 1 };
  }
  forward(x: Tensor): Tensor {
    return conv2d(x, this.weight, this.bias ?? undefined, this.convOpts());
  }
  /** act.forward(this.forward(x)) as one fused op (conv2dAct); null when either layer must run unfused. */
  forwardAct(x: Tensor, act: Activation): Tensor | null {
    if (this.forward !== Conv2d.prototype.forward) return null;
    const spec = act.fusableSpec();
    if (!spec) return null;
    return conv2dAct(x, this.weight, this.bias ?? undefined, spec, this.convOpts());
  }
}

export interface BatchNormOptions {
  momentum?: number;
  eps?: number;
  affine?: boolean;
}

export class BatchNorm2d extends Module {
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  readonly runningMean: Tensor;
  readonly runningVar: Tensor;
  constructor(device: Device, readonly channels: number, readonly opts: BatchNormOptions = {}) {
    super();
    posInt('BatchNorm2d', 'channels', channels);
    const affine = opts.affine ?? true;
    this.weight = affine ? this.registerParameter('weight', parameter(device, new Float32Array(channels).fill(1), [channels], 'bn')) : null;
    this.bias = affine ? this.registerParameter('bias', parameter(device, new Float32Array(channels), [channels], 'bn')) : null;
    this.runningMean = this.registerBuffer('running_mean', Tensor.from(device, new Float32Array(channels), [channels]));
    this.runningVar = this.registerBuffer('running_var', Tensor.from(device, new Float32Array(channels).fill(1), [channels]));
  }
  forward(x: Tensor): Tensor {
    return batchNorm2d(x, this.weight, this.bias, { mean: this.runningMean, var: this.runningVar }, { training: this.training, momentum: this.opts.momentum ?? 0.1, eps: this.opts.eps ?? 1e-5 });
  }
}

export class MaxPool2d extends Module {
  constructor(readonly kernel: number, readonly stride = kernel, readonly padding = 0) {
    super();
  }
  forward(x: Tensor): Tensor {
    return maxPool2d(x, { kernel: this.kernel, stride: this.stride, padding: this.padding });
  }
}

export class AvgPool2d extends Module {
  constructor(readonly kernel: number, readonly stride = kernel, readonly padding = 0) {
    super();
  }
  forward(x: Tensor): Tensor {
    return avgPool2d(x, { kernel: this.kernel, stride: this.stride, padding: this.padding });
  }
}

/** [N, C, H, W] -> [N, C]. */
export class GlobalAvgPool2d extends Module {
  forward(x: Tensor): Tensor {
    return globalAvgPool2d(x);
  }
}

export class Flatten extends Module {
  forward(x: Tensor): Tensor {
    return flatten(x, 1);
  }
}

/**
 * Inverted dropout. The mask of the last training forward is kept (`lastMask`); set
 * `fixedMask` to reuse a mask (FreeLB runs K forwards with the same masks).
 */
export class Dropout extends Module {
  lastMask: Tensor | null = null;
  fixedMask: Tensor | null = null;
  private calls = 0;
  constructor(readonly p: number, readonly seed = 0) {
    super();
    if (!(p >= 0 && p < 1)) throw new Error(`kinkless: Dropout: p must be in [0, 1), got ${p}`);
  }
  forward(x: Tensor): Tensor {
    if (!this.training || this.p === 0) return x;
    let mask = this.fixedMask;
    if (!mask) {
      mask = keep(bernoulliMask(x.device, x.shape, 1 - this.p, { seed: this.seed, offset: this.calls++ * x.size }));
      this.lastMask?.dispose();
      this.lastMask = mask;
    }
    if (mask.rank !== x.rank || mask.shape.some((d, i) => d !== x.shape[i])) throw new Error(`kinkless: Dropout: fixed mask has shape [${mask.shape.join(', ')}], input has [${x.shape.join(', ')}]`);
    return dropout(x, mask, this.p);
  }
  override dispose(): void {
    this.lastMask?.dispose();
    this.lastMask = null;
    super.dispose();
  }
}

/** (x - mean) / std per channel, inside the model: attacks see [0,1] pixels. */
export class Normalize extends Module {
  readonly mean: Tensor;
  readonly std: Tensor;
  constructor(device: Device, mean: number[], std: number[]) {
    super();
    if (mean.length !== std.length || mean.length === 0) throw new Error(`kinkless: Normalize: mean and std must be non-empty and the same length, got ${mean.length} and ${std.length}`);
    for (const s of std) if (!(s > 0)) throw new Error(`kinkless: Normalize: std values must be > 0, got ${s}`);
    const c = mean.length;
    this.mean = this.registerBuffer('mean', Tensor.from(device, mean, [1, c, 1, 1]));
    this.std = this.registerBuffer('std', Tensor.from(device, std, [1, c, 1, 1]));
  }
  forward(x: Tensor): Tensor {
    return div(sub(x, this.mean), this.std);
  }
}
