// Adversarial training loops against independent computations: float64 host references
// of tiny linear / two-layer models (Free-AT = train on x + delta_prev then an FGSM step
// of size eps from delta_prev; YOPO's iterates and accumulated gradients from its
// definition, and YOPO = PGD with j*n steps when the co-state is constant), FreeLB
// (K = 1 from zero = standard training; the accumulated gradient = mean of the K step
// gradients computed separately with the same dropout masks), the SAT switches (attack
// direction and parameter gradients against a host model with the softplus(10)
// surrogate derivative), the catastrophic-overfitting detector on synthetic sequences,
// the PSSiLU regulariser, the robust-overfitting guard, and every loop under train().
import { describe, it, expect } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import { randArray } from '../helpers/compare.ts';
import { Tensor, backward, clone, grad, keep, scope, mean, type Device } from '../../engine/index.ts';
import { softmaxCrossEntropy } from '../../engine/ops/loss.ts';
import { Module } from '../../nn/module.ts';
import { Conv2d, Dropout, Flatten, Linear, Sequential } from '../../nn/layers.ts';
import { Activation, activationLayers, type ActivationSpec } from '../../nn/activation.ts';
import { SGD } from '../../nn/optim.ts';
import { constantLr } from '../../nn/schedule.ts';
import { StandardTraining, train, type EpochStats, type Optim, type TrainContext, type TrainLoop } from '../../adversarial/trainer.ts';
import { Pgd, type Attack } from '../../adversarial/attacks/index.ts';
import {
  CoDetector,
  FastAt,
  FreeAt,
  FreeLb,
  PgdAt,
  RobustOverfitGuard,
  Yopo,
  activationParamGroups,
  clipPssiluBGrad,
  satTraining,
  trainingObjective,
} from '../../adversarial/train/index.ts';

// ---------------------------------------------------------------- helpers

function ctxOf(device: Device, model: Module, opt: Optim, lr = 0.1): TrainContext {
  return { device, model, opt, schedule: constantLr(lr), step: 0, epoch: 0 };
}

/** Inputs in [0, 1] with some exact 0s and 1s (box edges). */
function inputs(n: number, d: number, seed: number): Float32Array {
  return Float32Array.from(randArray(n * d, seed, -0.15, 1.15), (v) => Math.min(1, Math.max(0, v)));
}

async function host(t: Tensor): Promise<Float64Array> {
  return Float64Array.from(await t.f32());
}

function setParam(t: Tensor, v: number[] | Float32Array): void {
  t.device.queue.upload(t.buffer, Float32Array.from(v));
}

/** Records a copy of every parameter's gradient at each step (then steps like SGD with lr 0). */
class RecordingOpt implements Optim {
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
function affine(W: Float64Array, b: Float64Array, x: Float64Array, n: number, I: number, O: number): Float64Array {
  const z = new Float64Array(n * O);
  for (let r = 0; r < n; r++) for (let o = 0; o < O; o++) {
    let s = b[o]!;
    for (let i = 0; i < I; i++) s += W[o * I + i]! * x[r * I + i]!;
    z[r * O + o] = s;
  }
  return z;
}
/** d(mean CE)/dlogits (scale = 1/n), or of the sum (scale = 1). */
function dLogits(logits: Float64Array, y: Int32Array, n: number, C: number, scale: number): Float64Array {
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
function affineBack(W: Float64Array, x: Float64Array, g: Float64Array, n: number, I: number, O: number, dW?: Float64Array, db?: Float64Array): Float64Array {
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
const clip = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));

function expectAllClose(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string): void {
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

// ---------------------------------------------------------------- Free-AT

describe('Free-AT', () => {
  it('m = 1 equals "train on x + delta_prev, then delta = FGSM step of size eps from delta_prev" (float64 reference, smaller last batch)', async () => {
    const d = await testDevice();
    const D = 13, C = 4, B = 5, eps = 0.1, lr = 0.5;
    const model = new Sequential(new Linear(d, D, C, { seed: 3 }));
    const lin = model.layers[0] as Linear;
    const opt = new SGD(model.parameters(), { lr });
    const loop = new FreeAt({ eps, replays: 1 });
    const ctx = ctxOf(d, model, opt, lr);
    const W = await host(lin.weight);
    const b = await host(lin.bias!);
    const delta = new Float64Array(B * D);
    const sizes = [5, 5, 3, 5];
    for (const [k, n] of sizes.entries()) {
      const x = inputs(n, D, 100 + k);
      const y = Int32Array.from({ length: n }, (_, i) => (i + k) % C);
      scope(() => loop.trainBatch(ctx, Tensor.from(d, x, [n, D]), Tensor.from(d, y, [n], 'i32')));
      // Reference: forward at clip(x + delta[0:n]), one gradient for both updates.
      const xa = Float64Array.from({ length: n * D }, (_, i) => clip(x[i]! + delta[i]!, 0, 1));
      const g = dLogits(affine(W, b, xa, n, D, C), y, n, C, 1 / n);
      const dW = new Float64Array(C * D);
      const db = new Float64Array(C);
      const dxa = affineBack(W, xa, g, n, D, C, dW, db);
      for (let i = 0; i < W.length; i++) W[i]! -= lr * dW[i]!;
      for (let i = 0; i < C; i++) b[i]! -= lr * db[i]!;
      for (let i = 0; i < n * D; i++) {
        const inside = x[i]! + delta[i]! >= 0 && x[i]! + delta[i]! <= 1;
        const gd = inside ? dxa[i]! : 0;
        const nd = clip(delta[i]! + eps * Math.sign(gd), -eps, eps);
        delta[i] = clip(x[i]! + nd, 0, 1) - x[i]!;
      }
    }
    expectAllClose(await lin.weight.f32(), W, 2e-5, 'W');
    expectAllClose(await lin.bias!.f32(), b, 2e-5, 'b');
    expect(loop.delta!.shape).toEqual([B, D]);
    expectAllClose(await loop.delta!.f32(), delta, 1e-6, 'delta');
    loop.dispose();
    opt.dispose();
    model.dispose();
  });

  it('m replays take m optimizer steps per batch and expose replays', async () => {
    const d = await testDevice();
    const model = new Sequential(new Linear(d, 6, 3, { seed: 1 }));
    const rec = new RecordingOpt(model.parameters());
    const loop = new FreeAt({ eps: 0.05, replays: 3 });
    expect(loop.replays).toBe(3);
    scope(() => loop.trainBatch(ctxOf(d, model, rec), Tensor.from(d, inputs(4, 6, 1), [4, 6]), Tensor.from(d, [0, 1, 2, 0], [4], 'i32')));
    expect(rec.steps.length).toBe(3);
    rec.dispose();
    loop.dispose();
    model.dispose();
    expect(() => new FreeAt({ eps: 0.1, replays: 0 })).toThrow(/replays must be an integer >= 1, got 0/);
    expect(() => new FreeAt({ eps: 0.1, replays: 2, attackerSmooth: true, optimizerSmooth: false })).toThrow(/differ/);
  });
});

// ---------------------------------------------------------------- YOPO

/** Host YOPO-m-n on logits = W2 (W1 x + b1) + b2 from eta = 0; returns the iterates after each outer pass and the summed gradients. */
function yopoRef(P: { W1: Float64Array; b1: Float64Array; W2: Float64Array; b2: Float64Array }, x: Float32Array, y: Int32Array, n: number, D: number, H: number, C: number, o: { m: number; n: number; sigma: number; eps: number }) {
  const eta = new Float64Array(n * D);
  const G = { W1: new Float64Array(H * D), b1: new Float64Array(H), W2: new Float64Array(C * H), b2: new Float64Array(C) };
  const iterates: Float64Array[] = [];
  for (let j = 0; j < o.m; j++) {
    const xa = Float64Array.from({ length: n * D }, (_, i) => clip(x[i]! + eta[i]!, 0, 1));
    iterates.push(xa);
    const z0 = affine(P.W1, P.b1, xa, n, D, H);
    const g = dLogits(affine(P.W2, P.b2, z0, n, H, C), y, n, C, 1 / n);
    const dz0 = affineBack(P.W2, z0, g, n, H, C, G.W2, G.b2);
    affineBack(P.W1, xa, dz0, n, D, H, G.W1, G.b1);
    const p = dz0.map((v) => -v);
    for (let s = 0; s < o.n; s++) {
      const dH = affineBack(P.W1, new Float64Array(n * D), p, n, D, H);
      for (let i = 0; i < n * D; i++) {
        const v = x[i]! + eta[i]!;
        const gi = v >= 0 && v <= 1 ? dH[i]! : 0;
        const e = clip(eta[i]! - o.sigma * Math.sign(gi), -o.eps, o.eps);
        eta[i] = clip(x[i]! + e, 0, 1) - x[i]!;
      }
    }
    const xf = Float64Array.from({ length: n * D }, (_, i) => clip(x[i]! + eta[i]!, 0, 1));
    affineBack(P.W1, xf, p.map((v) => -v), n, D, H, G.W1, G.b1);
  }
  return { iterates, G };
}

describe('YOPO', () => {
  const D = 10, H = 6, C = 3, N = 4;
  const opts = { m: 3, n: 2, sigma: 0.03, eps: 0.07 };

  async function setup(d: Device, saturate: boolean) {
    const l1 = new Linear(d, D, H, { seed: 5 });
    const l2 = new Linear(d, H, C, { seed: 6 });
    const model = new Sequential(l1, l2);
    if (saturate) {
      // Class 1 wins by ~40 nats whatever the input: softmax = e_1 exactly in float32,
      // so dL/dz0 = W2^T (e_1 - e_y) / N is constant (labels avoid 1).
      setParam(l2.bias!, [0, 40, 0]);
    }
    const x = inputs(N, D, 9);
    const y = Int32Array.from(saturate ? [0, 2, 0, 2] : [0, 1, 2, 1]);
    const P = { W1: await host(l1.weight), b1: await host(l1.bias!), W2: await host(l2.weight), b2: await host(l2.bias!) };
    return { model, l1, l2, x, y, P };
  }

  it('iterates and summed gradients match the float64 definition (auto split of a Sequential)', async () => {
    const d = await testDevice();
    const { model, l1, l2, x, y, P } = await setup(d, false);
    const rec = new RecordingOpt(model.parameters());
    const obs: Tensor[] = [];
    const loop = new Yopo({ ...opts, randomStart: false, observe: (xa) => obs.push(keep(clone(xa))) });
    scope(() => loop.trainBatch(ctxOf(d, model, rec), Tensor.from(d, x, [N, D]), Tensor.from(d, y, [N], 'i32')));
    const ref = yopoRef(P, x, y, N, D, H, C, opts);
    expect(obs.length).toBe(opts.m);
    for (let j = 0; j < opts.m; j++) expectAllClose(await obs[j]!.f32(), ref.iterates[j]!, 1e-6, `x + eta after ${j} outer passes`);
    const g = rec.steps[0]!;
    expectAllClose(await g.get(l1.weight)!.f32(), ref.G.W1, 2e-5, 'dW1');
    expectAllClose(await g.get(l1.bias!)!.f32(), ref.G.b1, 2e-5, 'db1');
    expectAllClose(await g.get(l2.weight)!.f32(), ref.G.W2, 2e-5, 'dW2');
    expectAllClose(await g.get(l2.bias!)!.f32(), ref.G.b2, 2e-5, 'db2');
    obs.forEach((t) => t.dispose());
    rec.dispose();
    model.dispose();
  });

  it('with a constant co-state, the iterate after j outer passes equals PGD with j*n steps of size sigma', async () => {
    const d = await testDevice();
    const { model, x, y, P } = await setup(d, true);
    const rec = new RecordingOpt(model.parameters());
    const obs: Tensor[] = [];
    const loop = new Yopo({ ...opts, randomStart: false, observe: (xa) => obs.push(keep(clone(xa))) });
    const X = Tensor.from(d, x, [N, D]);
    const Y = Tensor.from(d, y, [N], 'i32');
    scope(() => loop.trainBatch(ctxOf(d, model, rec), X, Y));
    for (let j = 1; j < opts.m; j++) {
      const pgd = new Pgd({ eps: opts.eps, alpha: opts.sigma, steps: j * opts.n, randomStart: false });
      const xa = pgd.generate(model, X, Y);
      expectAllClose(await obs[j]!.f32(), await xa.f32(), 0, `YOPO after ${j} outer passes vs PGD-${j * opts.n}`);
      xa.dispose();
    }
    // The eta path really moves (and hits the eps bound): not a trivial equality.
    const moved = (await obs[opts.m - 1]!.f32()).some((v, i) => Math.abs(v - x[i]!) > opts.eps - 1e-6);
    expect(moved).toBe(true);
    // And the host definition agrees on the gradients in the saturated case too.
    const ref = yopoRef(P, x, y, N, D, H, C, opts);
    const l1 = (model.layers[0] as Linear).weight;
    expectAllClose(await rec.steps[0]!.get(l1)!.f32(), ref.G.W1, 2e-5, 'dW1 (saturated)');
    obs.forEach((t) => t.dispose());
    X.dispose();
    Y.dispose();
    rec.dispose();
    model.dispose();
  });

  it('rejects bad options and models it cannot split', async () => {
    const d = await testDevice();
    expect(() => new Yopo({ eps: 0.1, m: 0, n: 1, sigma: 0.01 })).toThrow(/m must be an integer >= 1, got 0/);
    expect(() => new Yopo({ eps: 0.1, m: 1, n: 1, sigma: -1 })).toThrow(/sigma must be a finite number > 0/);
    class Odd extends Module {
      forward(x: Tensor): Tensor {
        return x;
      }
    }
    const loop = new Yopo({ eps: 0.1, m: 1, n: 1, sigma: 0.01 });
    const x = Tensor.from(d, [0.5, 0.5], [1, 2]);
    const y = Tensor.from(d, [0], [1], 'i32');
    expect(() => scope(() => loop.trainBatch(ctxOf(d, new Odd(), new RecordingOpt([])), x, y))).toThrow(/pass split: \{ firstLayer, rest \}/);
    x.dispose();
    y.dispose();
  });
});

// ---------------------------------------------------------------- FreeLB

function dropModel(d: Device, seed: number): Sequential {
  return new Sequential(new Linear(d, 12, 16, { seed }), new Activation(d, 'silu'), new Dropout(0.4, 77), new Linear(d, 16, 3, { seed: seed + 10 }));
}

describe('FreeLB', () => {
  it('K = 1 from zero equals standard training (same parameters after steps, with dropout)', async () => {
    const d = await testDevice();
    const a = dropModel(d, 2);
    const b = dropModel(d, 2);
    const oa = new SGD(a.parameters(), { lr: 0.3, momentum: 0.9 });
    const ob = new SGD(b.parameters(), { lr: 0.3, momentum: 0.9 });
    const free = new FreeLb({ K: 1, alpha: 0.1, eps: 0.5 });
    const std = new StandardTraining();
    for (let k = 0; k < 3; k++) {
      const x = Tensor.from(d, inputs(5, 12, 20 + k), [5, 12]);
      const y = Tensor.from(d, [0, 1, 2, 1, 0], [5], 'i32');
      scope(() => free.trainBatch(ctxOf(d, a, oa), x, y));
      scope(() => std.trainBatch(ctxOf(d, b, ob), x, y));
      x.dispose();
      y.dispose();
    }
    const pa = a.parameters();
    const pb = b.parameters();
    for (let i = 0; i < pa.length; i++) expectAllClose(await pa[i]!.f32(), await pb[i]!.f32(), 1e-6, `param ${i}`);
    for (const t of [oa, ob, a, b]) t.dispose();
  });

  it('the accumulated gradient is the mean of the K step gradients (same dropout masks), and the steps are alpha g/||g||_2 projected', async () => {
    const d = await testDevice();
    const model = dropModel(d, 4);
    const drop = model.layers[2] as Dropout;
    const params = model.parameters();
    const rec = new RecordingOpt(params);
    const K = 3, N = 5, Dm = 12, eps = 0.3, alpha = 0.2;
    const xs: Tensor[] = [];
    const loop = new FreeLb({ K, alpha, eps, initMag: 0.4, seed: 3, observe: (xa) => xs.push(keep(clone(xa))) });
    const x64 = inputs(N, Dm, 31);
    const X = Tensor.from(d, x64, [N, Dm]);
    const Y = Tensor.from(d, [2, 0, 1, 1, 0], [N], 'i32');
    scope(() => loop.trainBatch(ctxOf(d, model, rec), X, Y));
    expect(xs.length).toBe(K);
    expect(drop.fixedMask).toBe(null);
    // Separate gradients at each step's input with step 1's mask.
    drop.fixedMask = drop.lastMask;
    const sums = params.map((p) => new Float64Array(p.size));
    for (let t = 0; t < K; t++) {
      const xt = xs[t]!;
      const xin = clone(xt);
      xin.requiresGrad = true;
      const gs = scope(() => grad(mean(softmaxCrossEntropy(model.forward(xin), Y, { reduction: 'none' })), [...params, xin]));
      for (let i = 0; i < params.length; i++) (await gs[i]!.f32()).forEach((v, k) => (sums[i]![k]! += v / K));
      if (t < K - 1) {
        // Next step: delta + alpha g/||g||_2, projected onto the eps-ball, clipped to the box.
        const g = await gs[params.length]!.f32();
        const got = await xs[t + 1]!.f32();
        const cur = await xt.f32();
        const want = new Float64Array(N * Dm);
        for (let r = 0; r < N; r++) {
          let gn = 0;
          for (let i = 0; i < Dm; i++) gn += g[r * Dm + i]! ** 2;
          gn = Math.sqrt(gn);
          const nd = Array.from({ length: Dm }, (_, i) => cur[r * Dm + i]! - x64[r * Dm + i]! + (alpha * g[r * Dm + i]!) / gn);
          const dn = Math.sqrt(nd.reduce((s, v) => s + v * v, 0));
          const sc = dn > eps ? eps / dn : 1;
          for (let i = 0; i < Dm; i++) want[r * Dm + i] = clip(x64[r * Dm + i]! + nd[i]! * sc, 0, 1);
        }
        expectAllClose(got, want, 2e-6, `x + delta at step ${t + 2}`);
      }
      gs.forEach((t2) => t2.dispose());
      xin.dispose();
    }
    drop.fixedMask = null;
    for (let i = 0; i < params.length; i++) expectAllClose(await rec.steps[0]!.get(params[i]!)!.f32(), sums[i]!, 2e-6, `mean gradient of param ${i}`);
    xs.forEach((t) => t.dispose());
    X.dispose();
    Y.dispose();
    rec.dispose();
    model.dispose();
  });
});

// ---------------------------------------------------------------- SAT switches

describe('SAT switches', () => {
  const D = 9, Hd = 7, C = 3, N = 4, eps = 0.05;
  const spec: ActivationSpec = { kind: 'relu', backward: { kind: 'softplus', params: [10] } };

  /** Host model relu(W1 x + b1) -> W2 . + b2; input gradient (of the summed CE) and mean-CE parameter gradients with a chosen derivative. */
  function hostGrads(P: Record<string, Float64Array>, x: Float64Array, y: Int32Array, smooth: boolean, scale: number) {
    const z = affine(P.W1!, P.b1!, x, N, D, Hd);
    const h = z.map((v) => Math.max(v, 0));
    const g = dLogits(affine(P.W2!, P.b2!, h, N, Hd, C), y, N, C, scale);
    const G = { W1: new Float64Array(Hd * D), b1: new Float64Array(Hd), W2: new Float64Array(C * Hd), b2: new Float64Array(C) };
    const dh = affineBack(P.W2!, h, g, N, Hd, C, G.W2, G.b2);
    const dz = dh.map((v, i) => v * (smooth ? 1 / (1 + Math.exp(-10 * z[i]!)) : z[i]! > 0 ? 1 : 0));
    const dx = affineBack(P.W1!, x, dz, N, D, Hd, G.W1, G.b1);
    return { dx, G };
  }

  for (const [attackerSmooth, optimizerSmooth] of [
    [true, false],
    [false, true],
  ] as const) {
    it(`attackerSmooth=${attackerSmooth}, optimizerSmooth=${optimizerSmooth}: attack direction and parameter gradients use the chosen derivative`, async () => {
      const d = await testDevice();
      const l1 = new Linear(d, D, Hd, { seed: 11 });
      const l2 = new Linear(d, Hd, C, { seed: 12 });
      const model = new Sequential(l1, new Activation(d, spec), l2);
      const P = { W1: await host(l1.weight), b1: await host(l1.bias!), W2: await host(l2.weight), b2: await host(l2.bias!) };
      const x = Float64Array.from(randArray(N * D, 5, 0.2, 0.8), Math.fround);
      const y = Int32Array.from([0, 1, 2, 0]);
      const rec = new RecordingOpt(model.parameters());
      const adv: Tensor[] = [];
      // PGD-1 from zero with alpha = eps is FGSM: x_adv = x + eps sign(g).
      const loop = satTraining({ eps, bnMode: 'eval', randomStart: false, attackerSmooth, optimizerSmooth, observe: (xa) => adv.push(keep(clone(xa))) });
      scope(() => loop.trainBatch(ctxOf(d, model, rec), Tensor.from(d, Float32Array.from(x), [N, D]), Tensor.from(d, y, [N], 'i32')));
      const att = hostGrads(P, x, y, attackerSmooth, 1);
      const other = hostGrads(P, x, y, !attackerSmooth, 1);
      const xa = await adv[0]!.f32();
      let differs = 0;
      const gmax = Math.max(...att.dx.map(Math.abs));
      for (let i = 0; i < N * D; i++) {
        if (Math.abs(att.dx[i]!) < 1e-5 * gmax) continue;
        expect(Math.sign(xa[i]! - x[i]!), `sign of step ${i}`).toBe(Math.sign(att.dx[i]!));
        if (Math.sign(other.dx[i]!) !== Math.sign(att.dx[i]!)) differs++;
      }
      expect(differs, 'the two derivatives must disagree somewhere for the test to mean something').toBeGreaterThan(0);
      const opt = hostGrads(P, Float64Array.from(xa), y, optimizerSmooth, 1 / N);
      const g = rec.steps[0]!;
      expectAllClose(await g.get(l1.weight)!.f32(), opt.G.W1, 2e-5, 'dW1');
      expectAllClose(await g.get(l1.bias!)!.f32(), opt.G.b1, 2e-5, 'db1');
      expectAllClose(await g.get(l2.weight)!.f32(), opt.G.W2, 2e-5, 'dW2');
      // The model's own switch is restored.
      expect(activationLayers(model).every((l) => l.surrogateOn)).toBe(true);
      adv.forEach((t) => t.dispose());
      rec.dispose();
      model.dispose();
    });
  }
});

// ---------------------------------------------------------------- CO detector

describe('catastrophic-overfitting detector', () => {
  const run = (pgd: number[], fgsm: number[]) => {
    const det = new CoDetector();
    const fired = pgd.map((p, i) => det.observe({ step: i * 100, pgdAcc: p, fgsmAcc: fgsm[i]! }));
    return { det, fired };
  };
  it('stays quiet on a healthy run (including noisy dips and a run where both accuracies fall)', () => {
    expect(run([0.1, 0.3, 0.5, 0.62, 0.58, 0.66, 0.7], [0.15, 0.4, 0.6, 0.7, 0.66, 0.74, 0.78]).det.coDetected).toBe(false);
    // Divergence, not masking: FGSM falls with PGD.
    expect(run([0.4, 0.6, 0.1], [0.5, 0.7, 0.15]).det.coDetected).toBe(false);
    // Early noise below minBest.
    expect(run([0.05, 0.0, 0.02], [0.3, 0.9, 0.9]).det.coDetected).toBe(false);
  });
  it('fires when PGD accuracy collapses while FGSM accuracy stays high, and records the check', () => {
    const { det, fired } = run([0.2, 0.45, 0.6, 0.55, 0.04, 0.01], [0.3, 0.55, 0.7, 0.7, 0.92, 0.97]);
    expect(fired).toEqual([false, false, false, false, true, false]);
    expect(det.state.detectedAt).toEqual({ step: 400, pgdAcc: 0.04, fgsmAcc: 0.92 });
    expect(det.state.best!.step).toBe(200);
    expect(det.state.history.length).toBe(6);
    // Masking from the start (the real MNIST eps 0.3 fast-AT run's first checks, PGD-10 /
    // FGSM on 128 probe images): never robust, FGSM far above PGD; fires on the 3rd check
    // in a row with a gap >= 0.3 (steps 100, 150, 200).
    const masked = run([0, 0.203, 0.344, 0.219, 0.281, 0.234], [0, 0.406, 0.648, 0.695, 0.742, 0.781]);
    expect(masked.fired).toEqual([false, false, false, false, true, false]);
    expect(masked.det.state.detectedAt!.step).toBe(400);
    // Two wide gaps then a narrow one: the run of gaps restarts, no alarm.
    expect(run([0.3, 0.3, 0.3, 0.3], [0.7, 0.7, 0.35, 0.7]).det.coDetected).toBe(false);
    expect(() => new CoDetector({ maskChecks: 0 })).toThrow(/maskChecks must be an integer >= 1, got 0/);
    // Wong's rule alone (a drop of >= 0.2 from the best) also fires.
    expect(run([0.8, 0.55], [0.85, 0.9]).det.coDetected).toBe(true);
    expect(() => new CoDetector({ fraction: 2 })).toThrow(/fraction must be a number in \[0, 1\], got 2/);
    expect(() => new FastAt({ eps: 0.1, co: { every: 0 } })).toThrow(/co.every must be an integer >= 1, got 0/);
    expect(() => new FastAt({ eps: 0.1, alpha: 0 })).toThrow(/alpha must be a finite number > 0, got 0/);
    expect(() => new PgdAt({ eps: 0.1, alpha: 0.01, steps: 3 } as never)).toThrow(/bnMode must be 'eval' .* or 'train' .*, got undefined/);
    expect(() => new PgdAt({ eps: 0.1, alpha: 0.01, steps: 3, bnMode: 'eval', attackerSmooth: 1 as never })).toThrow(/attackerSmooth must be a boolean, got 1/);
  });

  it('FastAt queues checks on the GPU, flushes them into the detector, and restores the best checked parameters', async () => {
    const d = await testDevice();
    const model = new Sequential(new Linear(d, 8, 3, { seed: 2 }));
    const opt = new SGD(model.parameters(), { lr: 2 });
    const loop = new FastAt({ eps: 0.1, co: { every: 2, pgdSteps: 3 } });
    const ctx = ctxOf(d, model, opt);
    const snaps = new Map<number, Float32Array>();
    for (let k = 0; k < 5; k++) {
      ctx.step = k;
      snaps.set(k, await model.parameters()[0]!.f32());
      const x = Tensor.from(d, inputs(6, 8, 40 + k), [6, 8]);
      const y = Tensor.from(d, [0, 1, 2, 0, 1, 2], [6], 'i32');
      scope(() => loop.trainBatch(ctx, x, y));
      x.dispose();
      y.dispose();
    }
    const s = (await loop.flush())!;
    expect(s.history.map((h) => h.step)).toEqual([0, 2, 4]);
    for (const h of s.history) for (const v of [h.pgdAcc, h.fgsmAcc]) expect(v * 6).toBeCloseTo(Math.round(v * 6), 6);
    const best = loop.bestStep!;
    expect(best).toBe(s.best!.step);
    expect(loop.restoreBest()).toBe(true);
    expect(Array.from(await model.parameters()[0]!.f32())).toEqual(Array.from(snaps.get(best)!));
    loop.dispose();
    opt.dispose();
    model.dispose();
  });
});

// ---------------------------------------------------------------- PSSiLU regularisation

describe('PSSiLU regularisation', () => {
  it('adds exactly weight*|b| to the objective and weight*sign(b_raw) to b_raw.grad; bGradClip and param groups', async () => {
    const d = await testDevice();
    const act = new Activation(d, 'pssilu');
    const model = new Sequential(new Linear(d, 6, 5, { seed: 1 }), act, new Linear(d, 5, 3, { seed: 2 }));
    const braw = -0.0375;
    setParam(act.params!, [1.3, braw]);
    const x = Tensor.from(d, inputs(4, 6, 8), [4, 6]);
    const y = Tensor.from(d, [0, 2, 1, 2], [4], 'i32');
    const params = model.parameters();
    const measure = async (reg?: { weight: number }) => {
      for (const p of params) p.zeroGrad();
      const obj = scope(() => {
        const r = trainingObjective(model, x, y, reg);
        backward(r.objective);
        return keep(clone(r.objective));
      });
      const v = await obj.item();
      obj.dispose();
      const grads = await Promise.all(params.map((p) => p.grad!.f32()));
      return { v, grads };
    };
    const base = await measure();
    const withReg = await measure({ weight: 10 });
    expect(withReg.v - base.v).toBeCloseTo(10 * Math.abs(Math.fround(braw)), 5);
    const ai = params.indexOf(act.params!);
    expect(ai).toBeGreaterThanOrEqual(0);
    for (let i = 0; i < params.length; i++) {
      const want = Array.from(base.grads[i]!, (v, k) => v + (i === ai && k === 1 ? 10 * Math.sign(braw) : 0));
      expectAllClose(withReg.grads[i]!, want, 2e-5, `grad of param ${i}`);
    }
    // b's gradient clipped to [-0.01, 0.01], a's untouched.
    clipPssiluBGrad(model, 0.01);
    const clipped = await act.params!.grad!.f32();
    expect(clipped[0]).toBe(withReg.grads[ai]![0]);
    expect(clipped[1]).toBe(Math.fround(-0.01));
    // Optimizer groups: the activation tensor alone in its group.
    const groups = activationParamGroups(model, { maxGradNorm: 0.01 });
    expect(groups.map((g) => [g.name, g.params.length, g.maxGradNorm])).toEqual([
      ['model', 4, undefined],
      ['activation', 1, 0.01],
    ]);
    expect(groups[1]!.params[0]).toBe(act.params);
    // A model without PSSiLU cannot be regularised.
    const relu = new Sequential(new Linear(d, 6, 3));
    expect(() => scope(() => trainingObjective(relu, x, y, { weight: 10 }))).toThrow(/no learnable PSSiLU/);
    expect(() => new PgdAt({ eps: 0.1, alpha: 0.01, steps: 1, bnMode: 'eval', activationReg: { weight: -1 } })).toThrow(/activationReg.weight must be a finite number >= 0, got -1/);
    for (const p of params) p.zeroGrad();
    x.dispose();
    y.dispose();
    model.dispose();
    relu.dispose();
  });
});

// ---------------------------------------------------------------- robust-overfitting guard

describe('robust-overfitting guard', () => {
  it('tracks the best epoch by held-out robust accuracy, restores it, and stops after `patience`', async () => {
    const d = await testDevice();
    const lin = new Linear(d, 2, 2, { bias: false });
    const model = new Sequential(lin);
    // The identity "attack" makes robust accuracy = clean accuracy (enough to test the bookkeeping).
    const ident: Attack = {
      name: 'identity',
      threat: { norm: 'linf', eps: 0, bounds: [0, 1] },
      generate: (_m, x) => clone(x),
      perturb: async (_m, x) => clone(x),
    };
    const held = { images: Float32Array.from([1, 0, 0, 1, 0.9, 0.1, 0.2, 0.8]), labels: Int32Array.from([0, 1, 0, 1]), n: 4, shape: [1, 1, 2] as [number, number, number] };
    // The model sees [N, 1, 1, 2]; flatten it inside a wrapper.
    class Wrap extends Module {
      constructor(readonly inner: Module) {
        super();
        this.registerModule('inner', inner);
      }
      forward(x: Tensor): Tensor {
        return this.inner.forward(x.view([x.shape[0]!, 2]));
      }
    }
    const wrapped = new Wrap(model);
    const guard = new RobustOverfitGuard(d, wrapped, held, { attack: ident, patience: 1 });
    setParam(lin.weight, [1, 0, 0, 1]);
    const s0: EpochStats = { epoch: 0, trainLoss: 0, trainAcc: 0, seconds: 0, lr: 0 };
    expect(await guard.onEpoch(s0)).toBeUndefined();
    expect(s0.valRobust).toBe(1);
    setParam(lin.weight, [-1, 0, 0, -1]);
    const s1: EpochStats = { epoch: 1, trainLoss: 0, trainAcc: 0, seconds: 0, lr: 0 };
    expect(await guard.onEpoch(s1)).toBe('stop');
    expect(s1.valRobust).toBe(0);
    expect(s1.bestEpoch).toBe(0);
    expect(guard.best).toEqual({ epoch: 0, cleanAcc: 1, robustAcc: 1 });
    expect(guard.restoreBest()).toBe(true);
    expect(Array.from(await lin.weight.f32())).toEqual([1, 0, 0, 1]);
    model.dispose();
  });
});

// ---------------------------------------------------------------- all loops under train()

describe('every loop under train()', () => {
  const tiny = (d: Device) => new Sequential(new Conv2d(d, 1, 3, 3, { seed: 1 }), new Activation(d, 'relu'), new Flatten(), new Linear(d, 3 * 6 * 6, 3, { seed: 2 }));
  const data = {
    images: Float32Array.from(randArray(10 * 64, 4, 0, 1)),
    labels: Int32Array.from({ length: 10 }, (_, i) => i % 3),
    n: 10,
    shape: [1, 8, 8] as [number, number, number],
  };
  const loops: [string, () => TrainLoop][] = [
    ['pgd-at', () => new PgdAt({ eps: 0.1, alpha: 0.03, steps: 2, bnMode: 'train' })],
    ['fast-at', () => new FastAt({ eps: 0.1, co: { every: 1, pgdSteps: 2, probeSize: 2 } })],
    ['free-at', () => new FreeAt({ eps: 0.1, replays: 2 })],
    ['yopo', () => new Yopo({ eps: 0.1, m: 2, n: 2, sigma: 0.02 })],
    ['freelb', () => new FreeLb({ K: 2, alpha: 0.1, eps: 0.2, initMag: 0.1, norm: 'linf' })],
  ];
  for (const [name, make] of loops) {
    it(`${name}: two epochs with a smaller last batch, finite stats, flat GPU memory`, async () => {
      const d = await testDevice();
      const model = tiny(d);
      const opt = new SGD(model.parameters(), { lr: 0.05, momentum: 0.9 });
      const loop = make();
      const hooks = loop instanceof FastAt ? loop.hooks() : undefined;
      const r1 = await train(loop, { device: d, model, opt, schedule: constantLr(0.05) }, data, { epochs: 1, batchSize: 4, seed: 1, hooks });
      const live = d.stats().liveBuffers;
      const r2 = await train(loop, { device: d, model, opt, schedule: constantLr(0.05) }, data, { epochs: 2, batchSize: 4, seed: 1, hooks, iteratorState: r1.iterator.state(), startStep: r1.step });
      expect(d.stats().liveBuffers).toBe(live);
      for (const e of [...r1.epochs, ...r2.epochs]) {
        expect(Number.isFinite(e.trainLoss)).toBe(true);
        expect(e.trainAcc).toBeGreaterThanOrEqual(0);
      }
      if (loop instanceof FastAt) {
        expect(loop.coState!.history.length).toBe(6);
        loop.dispose();
      }
      if (loop instanceof FreeAt) loop.dispose();
      opt.dispose();
      model.dispose();
    });
  }
});
