// YOPO (adversarial/train/yopo.ts): iterates and summed gradients against the float64
// definition, YOPO = PGD with j*n steps when the co-state is constant, bad options.
import { describe, it, expect } from 'vitest';
import { testDevice } from '../../helpers/device.ts';
import { Tensor, clone, keep, scope, type Device } from '../../../engine/index.ts';
import { Module } from '../../../nn/module.ts';
import { Linear, Sequential } from '../../../nn/layers.ts';
import { Pgd } from '../../../adversarial/attacks/index.ts';
import { Yopo } from '../../../adversarial/train/index.ts';
import { ctxOf, inputs, host, setParam, RecordingOpt, affine, dLogits, affineBack, clip, expectAllClose } from '../../helpers/train_loops.ts';

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
