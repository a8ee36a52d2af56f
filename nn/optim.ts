// Optimizers: SGD (momentum, Nesterov, weight decay), Adam and AdamW, with parameter
// groups (own lr scale, weight decay, gradient-norm clipping). The fused in-place updates
// are engine ops (engine/ops/optim.ts); this file owns the state, groups and schedule.
import { Tensor, keep, add, mul, sum, scope, zeros, type Device } from '../engine/index.ts';
import { adamUpdate, clipScale, sgdUpdate } from '../engine/ops/optim.ts';

export interface ParamGroup {
  params: Tensor[];
  /** Multiplies the optimizer's (scheduled) learning rate for this group (default 1). */
  lrScale?: number;
  /** Weight decay for this group (default: the optimizer's). */
  weightDecay?: number;
  /** Clip this group's gradient L2 norm (over all its parameters) to this value. */
  maxGradNorm?: number;
  name?: string;
}

function checkPositive(op: string, arg: string, v: number, allowZero = true): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (!allowZero && v === 0)) {
    throw new Error(`kinkless: ${op}: ${arg} must be a finite number ${allowZero ? '>= 0' : '> 0'}, got ${String(v)}`);
  }
}

function normalizeGroups(op: string, params: Tensor[] | ParamGroup[]): ParamGroup[] {
  if (!Array.isArray(params) || params.length === 0) throw new Error(`kinkless: ${op}: params must be a non-empty array of tensors or parameter groups`);
  const groups: ParamGroup[] = (params[0] as Tensor).__isTensor ? [{ params: params as Tensor[] }] : (params as ParamGroup[]);
  const seen = new Set<Tensor>();
  groups.forEach((g, gi) => {
    for (const p of g.params) {
      if (!p.__isTensor || p.dtype !== 'f32') throw new Error(`kinkless: ${op}: group ${gi} holds a non-f32 tensor`);
      if (seen.has(p)) throw new Error(`kinkless: ${op}: parameter ${p.name ?? p.toString()} appears in more than one group`);
      seen.add(p);
    }
    if (g.lrScale !== undefined) checkPositive(op, `group ${gi} lrScale`, g.lrScale);
    if (g.weightDecay !== undefined) checkPositive(op, `group ${gi} weightDecay`, g.weightDecay);
    if (g.maxGradNorm !== undefined) checkPositive(op, `group ${gi} maxGradNorm`, g.maxGradNorm, false);
  });
  return groups;
}

abstract class Optimizer {
  readonly groups: ParamGroup[];
  readonly device: Device;
  lr: number;
  stepCount = 0;
  protected readonly state = new Map<Tensor, Tensor[]>();
  private one: Tensor;

  constructor(op: string, params: Tensor[] | ParamGroup[], lr: number) {
    checkPositive(op, 'lr', lr);
    this.groups = normalizeGroups(op, params);
    this.device = this.groups[0]!.params[0]!.device;
    this.lr = lr;
    this.one = keep(Tensor.from(this.device, [1], [1]));
  }

  protected abstract update(p: Tensor, g: Tensor, gscale: Tensor, lr: number, wd: number): void;

  /** One update of every parameter that has a gradient. `lr` overrides the current lr (schedules). */
  step(lr?: number): void {
    if (lr !== undefined) {
      checkPositive('step', 'lr', lr);
      this.lr = lr;
    }
    this.stepCount++;
    for (const g of this.groups) {
      const withGrad = g.params.filter((p) => p.grad);
      if (!withGrad.length) continue;
      const scale = g.maxGradNorm !== undefined ? this.clipScale(withGrad, g.maxGradNorm) : this.one;
      for (const p of withGrad) this.update(p, p.grad!, scale, this.lr * (g.lrScale ?? 1), g.weightDecay ?? this.defaultWeightDecay());
      if (scale !== this.one) scale.dispose();
    }
  }

  protected abstract defaultWeightDecay(): number;

  /** min(1, maxNorm / ||g||) as a one-element GPU tensor (no readback). */
  private clipScale(params: Tensor[], maxNorm: number): Tensor {
    const sq = scope(() => {
      let acc: Tensor | null = null;
      for (const p of params) {
        const s = sum(mul(p.grad!, p.grad!));
        acc = acc ? add(acc, s) : s;
      }
      return acc!;
    });
    const out = clipScale(sq, maxNorm);
    sq.dispose();
    return out;
  }

  zeroGrad(): void {
    for (const g of this.groups) for (const p of g.params) p.zeroGrad();
  }

  protected slots(p: Tensor, k: number): Tensor[] {
    let s = this.state.get(p);
    if (!s) {
      s = Array.from({ length: k }, () => keep(zeros(this.device, p.shape)));
      this.state.set(p, s);
    }
    return s;
  }

  /** Optimizer state as named tensors (for checkpoints): "<param index>.<slot>". */
  stateTensors(): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    let i = 0;
    for (const g of this.groups) {
      for (const p of g.params) {
        const s = this.state.get(p);
        if (s) s.forEach((t, k) => (out[`${i}.${k}`] = t));
        i++;
      }
    }
    return out;
  }

  /** Restore state saved with stateTensors() (host arrays by the same names). */
  loadStateArrays(arrays: Record<string, Float32Array>, slotsPerParam: number, stepCount: number): void {
    let i = 0;
    for (const g of this.groups) {
      for (const p of g.params) {
        const keys = Array.from({ length: slotsPerParam }, (_, k) => `${i}.${k}`);
        if (keys.every((k) => arrays[k])) {
          const s = this.slots(p, slotsPerParam);
          keys.forEach((k, j) => {
            if (arrays[k]!.length !== p.size) throw new Error(`kinkless: optimizer state "${k}" has ${arrays[k]!.length} values, parameter has ${p.size}`);
            this.device.queue.upload(s[j]!.buffer, arrays[k]!);
          });
        }
        i++;
      }
    }
    this.stepCount = stepCount;
  }

  dispose(): void {
    for (const s of this.state.values()) for (const t of s) t.dispose();
    this.state.clear();
    this.one.dispose();
  }
}

export interface SgdOptions {
  lr: number;
  momentum?: number;
  nesterov?: boolean;
  weightDecay?: number;
}

export class SGD extends Optimizer {
  readonly momentum: number;
  readonly nesterov: boolean;
  readonly weightDecay: number;
  constructor(params: Tensor[] | ParamGroup[], opts: SgdOptions) {
    super('SGD', params, opts.lr);
    this.momentum = opts.momentum ?? 0;
    this.nesterov = opts.nesterov ?? false;
    this.weightDecay = opts.weightDecay ?? 0;
    checkPositive('SGD', 'momentum', this.momentum);
    checkPositive('SGD', 'weightDecay', this.weightDecay);
    if (this.nesterov && this.momentum === 0) throw new Error('kinkless: SGD: nesterov needs momentum > 0');
  }
  protected defaultWeightDecay(): number {
    return this.weightDecay;
  }
  protected update(p: Tensor, g: Tensor, gscale: Tensor, lr: number, wd: number): void {
    const [v] = this.slots(p, 1);
    sgdUpdate(p, g, gscale, v!, { lr, momentum: this.momentum, weightDecay: wd, nesterov: this.nesterov });
  }
}

export interface AdamOptions {
  lr: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
}

export class Adam extends Optimizer {
  readonly betas: [number, number];
  readonly eps: number;
  readonly weightDecay: number;
  protected decoupled = false;
  constructor(params: Tensor[] | ParamGroup[], opts: AdamOptions) {
    super('Adam', params, opts.lr);
    this.betas = opts.betas ?? [0.9, 0.999];
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0;
    for (const [i, b] of this.betas.entries()) {
      if (!(b >= 0 && b < 1)) throw new Error(`kinkless: Adam: betas[${i}] must be in [0, 1), got ${b}`);
    }
    checkPositive('Adam', 'eps', this.eps, false);
    checkPositive('Adam', 'weightDecay', this.weightDecay);
  }
  protected defaultWeightDecay(): number {
    return this.weightDecay;
  }
  protected update(p: Tensor, g: Tensor, gscale: Tensor, lr: number, wd: number): void {
    const [m, v] = this.slots(p, 2);
    adamUpdate(p, g, gscale, m!, v!, { lr, beta1: this.betas[0], beta2: this.betas[1], eps: this.eps, weightDecay: wd, step: this.stepCount, decoupled: this.decoupled });
  }
}

/** Adam with decoupled weight decay (Loshchilov & Hutter): p -= lr*wd*p before the Adam step. */
export class AdamW extends Adam {
  constructor(params: Tensor[] | ParamGroup[], opts: AdamOptions) {
    super(params, { ...opts, weightDecay: opts.weightDecay ?? 0.01 });
    this.decoupled = true;
  }
}
