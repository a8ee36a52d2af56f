// The SAT switches (adversarial/train/sat.ts): attack direction and parameter gradients
// against a host model with the softplus(10) surrogate derivative.
import { describe, it, expect } from 'vitest';
import { testDevice } from '../../helpers/device.ts';
import { randArray } from '../../helpers/compare.ts';
import { Tensor, clone, keep, scope } from '../../../engine/index.ts';
import { Linear, Sequential } from '../../../nn/layers.ts';
import { Activation, activationLayers, type ActivationSpec } from '../../../nn/activation.ts';
import { satTraining } from '../../../adversarial/train/index.ts';
import { ctxOf, host, RecordingOpt, affine, dLogits, affineBack, expectAllClose } from '../../helpers/train_loops.ts';

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
