// Shared helpers of the adversarial training-loop tests (test/adversarial/train/*):
// contexts, inputs on the box edges, parameter upload, a gradient-recording optimizer,
// and float64 dense-layer forward / backward references.
import { expect } from 'vitest';
import { randArray } from './compare.ts';
import { Tensor, clone, keep, type Device } from '../../engine/index.ts';
import type { Module } from '../../nn/module.ts';
import { constantLr } from '../../nn/schedule.ts';
import type { Optim, TrainContext } from '../../adversarial/trainer.ts';

export function ctxOf(device: Device, model: Module, opt: Optim, lr = 0.1): TrainContext {
  return { device, model, opt, schedule: constantLr(lr), step: 0, epoch: 0 };
}

/** Inputs in [0, 1] with some exact 0s and 1s (box edges). */
export function inputs(n: number, d: number, seed: number): Float32Array {
  return Float32Array.from(randArray(n * d, seed, -0.15, 1.15), (v) => Math.min(1, Math.max(0, v)));
}

export async function host(t: Tensor): Promise<Float64Array> {
  return Float64Array.from(await t.f32());
}

export function setParam(t: Tensor, v: number[] | Float32Array): void {
  t.device.queue.upload(t.buffer, Float32Array.from(v));
}

/** Records a copy of every parameter's gradient at each step (then steps like SGD with lr 0). */
export class RecordingOpt implements Optim {
  steps: Map<Tensor, Tensor>[] = [];
  constructor(readonly params: Tensor[]) {}
  step(): void {
    const m = new Map<Tensor, Tensor>();
    for (const p of this.params) if (p.grad) m.set(p, keep(clone(p.grad)));
    this.steps.push(m);
  }
  zeroGrad(): void {
    for (const p of this.params) p.zeroGrad();
  }
  dispose(): void {
    for (const s of this.steps) for (const t of s.values()) t.dispose();
  }
}

// float64 dense helpers: W [O, I] row-major.
export function affine(W: Float64Array, b: Float64Array, x: Float64Array, n: number, I: number, O: number): Float64Array {
  const z = new Float64Array(n * O);
  for (let r = 0; r < n; r++) for (let o = 0; o < O; o++) {
    let s = b[o]!;
    for (let i = 0; i < I; i++) s += W[o * I + i]! * x[r * I + i]!;
    z[r * O + o] = s;
  }
  return z;
}
/** d(mean CE)/dlogits (scale = 1/n), or of the sum (scale = 1). */
export function dLogits(logits: Float64Array, y: Int32Array, n: number, C: number, scale: number): Float64Array {
  const g = new Float64Array(n * C);
  for (let r = 0; r < n; r++) {
    let m = -Infinity;
    for (let c = 0; c < C; c++) m = Math.max(m, logits[r * C + c]!);
    let s = 0;
    for (let c = 0; c < C; c++) s += Math.exp(logits[r * C + c]! - m);
    for (let c = 0; c < C; c++) g[r * C + c] = (Math.exp(logits[r * C + c]! - m) / s - (c === y[r] ? 1 : 0)) * scale;
  }
  return g;
}
/** dW += g^T x, db += sum g; returns dx = g W. */
export function affineBack(W: Float64Array, x: Float64Array, g: Float64Array, n: number, I: number, O: number, dW?: Float64Array, db?: Float64Array): Float64Array {
  const dx = new Float64Array(n * I);
  for (let r = 0; r < n; r++) for (let o = 0; o < O; o++) {
    const go = g[r * O + o]!;
    if (db) db[o]! += go;
    for (let i = 0; i < I; i++) {
      if (dW) dW[o * I + i]! += go * x[r * I + i]!;
      dx[r * I + i]! += go * W[o * I + i]!;
    }
  }
  return dx;
}
export const clip = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));

export function expectAllClose(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string): void {
  expect(got.length, what).toBe(want.length);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < got.length; i++) {
    expect(Number.isFinite(got[i]!), `${what}[${i}] finite`).toBe(true);
    const e = Math.abs(got[i]! - want[i]!);
    if (e > worst) (worst = e), (at = i);
  }
  expect(worst, `${what}: max |err| at ${at}: got ${got[at]}, want ${want[at]}`).toBeLessThanOrEqual(tol);
}
