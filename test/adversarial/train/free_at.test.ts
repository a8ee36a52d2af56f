// Free-AT (adversarial/train/free_at.ts) against a float64 host reference: m = 1 equals
// training on x + delta_prev then an FGSM step of size eps from delta_prev; replays.
import { describe, it, expect } from 'vitest';
import { testDevice } from '../../helpers/device.ts';
import { Tensor, scope } from '../../../engine/index.ts';
import { Linear, Sequential } from '../../../nn/layers.ts';
import { SGD } from '../../../nn/optim.ts';
import { FreeAt } from '../../../adversarial/train/index.ts';
import { ctxOf, inputs, host, RecordingOpt, affine, dLogits, affineBack, clip, expectAllClose } from '../../helpers/train_loops.ts';

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
