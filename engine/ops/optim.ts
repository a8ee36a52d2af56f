// Fused optimizer updates as engine ops (kernels/optim.ts): each updates a parameter and
// its state IN PLACE in one pass (no autograd, no new tensors), reading the gradient
// scale (clipping) from a one-element tensor so nothing is read back. nn/optim.ts owns
// the state and the schedule; it never dispatches itself.
import { Tensor, assertSameDevice, shapeStr } from '../tensor.ts';
import { adamKernel, clipScaleKernel, sgdKernel } from '../../kernels/optim.ts';
import { grid1d } from '../../kernels/elementwise.ts';
import { Uniforms, alloc } from './launch.ts';

export interface SgdUpdate {
  lr: number;
  momentum: number;
  weightDecay: number;
  nesterov: boolean;
}

export interface AdamUpdate {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** 1-based step count t (bias corrections 1 - beta^t). */
  step: number;
  /** AdamW: p -= lr * wd * p before the step, instead of adding wd * p to g. */
  decoupled: boolean;
}

function checkTensors(who: string, p: Tensor, named: [string, Tensor][]): void {
  for (const [nm, t] of [['p', p] as [string, Tensor], ...named]) {
    if (!(t instanceof Tensor)) throw new Error(`kinkless: ${who}: ${nm} must be a Tensor, got ${String(t)}`);
    if (t.dtype !== 'f32') throw new Error(`kinkless: ${who}: ${nm} must be f32, got an ${t.dtype} tensor of shape ${shapeStr(t.shape)}`);
  }
  assertSameDevice(who, p, ...named.map(([, t]) => t));
  for (const [nm, t] of named) {
    if (nm === 'gscale') {
      if (t.size !== 1) throw new Error(`kinkless: ${who}: gscale must hold one value, got shape ${shapeStr(t.shape)}`);
    } else if (t.size !== p.size) throw new Error(`kinkless: ${who}: ${nm} must have p's ${p.size} elements, got shape ${shapeStr(t.shape)}`);
  }
}

function checkNum(who: string, arg: string, v: number, ok: (v: number) => boolean, want: string): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) throw new Error(`kinkless: ${who}: ${arg} must be ${want}, got ${String(v)}`);
}

/**
 * SGD with momentum in place (PyTorch semantics, dampening 0): g' = g * gscale + wd * p;
 * v = mu * v + g'; p -= lr * (nesterov ? g' + mu * v : v).
 */
export function sgdUpdate(p: Tensor, g: Tensor, gscale: Tensor, v: Tensor, o: SgdUpdate): void {
  const who = 'sgdUpdate';
  checkTensors(who, p, [['g', g], ['gscale', gscale], ['v', v]]);
  checkNum(who, 'lr', o.lr, (x) => x >= 0, '>= 0');
  checkNum(who, 'momentum', o.momentum, (x) => x >= 0, '>= 0');
  checkNum(who, 'weightDecay', o.weightDecay, (x) => x >= 0, '>= 0');
  if (p.size === 0) return;
  const grid = grid1d(p.size);
  const u = new Uniforms().u32(p.size, grid.gx).f32(o.lr, o.momentum, o.weightDecay).u32(o.nesterov ? 1 : 0);
  p.device.dispatch({ kernel: sgdKernel(), buffers: [g.buffer, gscale.buffer, p.buffer, v.buffer], uniforms: u.bytes(), workgroups: grid.workgroups, info: { op: 'sgd', geometry: `n${p.size}`, bytes: 4 * 5 * p.size } });
}

/**
 * Adam / AdamW in place: m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
 * p -= lr (m / bc1) / (sqrt(v / bc2) + eps), bc_i = 1 - b_i^t; weight decay coupled
 * (g += wd p) or decoupled (p -= lr wd p first).
 */
export function adamUpdate(p: Tensor, g: Tensor, gscale: Tensor, m: Tensor, v: Tensor, o: AdamUpdate): void {
  const who = 'adamUpdate';
  checkTensors(who, p, [['g', g], ['gscale', gscale], ['m', m], ['v', v]]);
  checkNum(who, 'lr', o.lr, (x) => x >= 0, '>= 0');
  checkNum(who, 'beta1', o.beta1, (x) => x >= 0 && x < 1, 'in [0, 1)');
  checkNum(who, 'beta2', o.beta2, (x) => x >= 0 && x < 1, 'in [0, 1)');
  checkNum(who, 'eps', o.eps, (x) => x > 0, '> 0');
  checkNum(who, 'weightDecay', o.weightDecay, (x) => x >= 0, '>= 0');
  if (!Number.isInteger(o.step) || o.step < 1) throw new Error(`kinkless: ${who}: step must be an integer >= 1, got ${String(o.step)}`);
  if (p.size === 0) return;
  const bc1 = 1 - o.beta1 ** o.step;
  const bc2 = 1 - o.beta2 ** o.step;
  const grid = grid1d(p.size);
  const u = new Uniforms()
    .u32(p.size, grid.gx)
    .f32(o.lr, o.beta1, o.beta2, o.eps, o.weightDecay, bc1, bc2)
    .u32(o.decoupled ? 1 : 0);
  p.device.dispatch({ kernel: adamKernel(), buffers: [g.buffer, gscale.buffer, p.buffer, m.buffer, v.buffer], uniforms: u.bytes(), workgroups: grid.workgroups, info: { op: 'adam', geometry: `n${p.size}`, bytes: 4 * 7 * p.size } });
}

/**
 * Gradient-norm clip factor min(1, maxNorm / (sqrt(sq) + 1e-6)) as a one-element tensor,
 * from a one-element squared norm `sq` (no readback).
 */
export function clipScale(sq: Tensor, maxNorm: number): Tensor {
  const who = 'clipScale';
  if (!(sq instanceof Tensor) || sq.dtype !== 'f32' || sq.size !== 1) throw new Error(`kinkless: ${who}: sq must be a one-element f32 tensor, got ${sq instanceof Tensor ? `${sq.dtype} ${shapeStr(sq.shape)}` : String(sq)}`);
  checkNum(who, 'maxNorm', maxNorm, (x) => x > 0, '> 0');
  const out = alloc(sq.device, [1]);
  sq.device.dispatch({ kernel: clipScaleKernel(), buffers: [sq.buffer, out.buffer], uniforms: new Uniforms().f32(maxNorm).bytes(), workgroups: [1], info: { op: 'clip_scale' } });
  return out;
}
