// FreeLB (adversarial/train/freelb.ts): K = 1 from zero = standard training; the
// accumulated gradient = mean of the K step gradients with the same dropout masks.
import { describe, it, expect } from 'vitest';
import { testDevice } from '../../helpers/device.ts';
import { Tensor, clone, grad, keep, scope, mean, type Device } from '../../../engine/index.ts';
import { softmaxCrossEntropy } from '../../../engine/ops/loss.ts';
import { Dropout, Linear, Sequential } from '../../../nn/layers.ts';
import { Activation } from '../../../nn/activation.ts';
import { SGD } from '../../../nn/optim.ts';
import { StandardTraining } from '../../../adversarial/trainer.ts';
import { FreeLb } from '../../../adversarial/train/index.ts';
import { ctxOf, inputs, RecordingOpt, clip, expectAllClose } from '../../helpers/train_loops.ts';

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
