// APGD-DLR and APGD-T on a multiclass linear model z = W x + b (box far away), where the
// minimal L-inf distance to a misclassification is known in closed form:
//   d = min_{t != y} (z_y - z_t) / ||w_y - w_t||_1.
// The attacks must misclassify at eps slightly above d and cannot below it.
import { describe, expect, it } from 'vitest';
import { testDevice } from '../../helpers/device.ts';
import { randArray } from '../../helpers/compare.ts';
import { Tensor, argmax } from '../../../engine/index.ts';
import { Linear } from '../../../nn/layers.ts';
import { Apgd, ApgdTargeted } from '../../../adversarial/attacks/index.ts';

const N = 6, D = 8, C = 10;

async function setup() {
  const d = await testDevice();
  const model = new Linear(d, D, C, { seed: 3 });
  const W = Float64Array.from(await model.weight.f32());
  const b = Float64Array.from(await model.bias!.f32());
  const x = Float32Array.from(randArray(N * D, 9, -1, 1));
  const z = (r: number, c: number) => b[c]! + Array.from({ length: D }, (_, k) => W[c * D + k]! * x[r * D + k]!).reduce((p, q) => p + q, 0);
  const y = new Int32Array(N);
  const dist = new Float64Array(N);
  for (let r = 0; r < N; r++) {
    let best = 0;
    for (let c = 1; c < C; c++) if (z(r, c) > z(r, best)) best = c;
    y[r] = best;
    dist[r] = Infinity;
    for (let t = 0; t < C; t++) {
      if (t === best) continue;
      let l1 = 0;
      for (let k = 0; k < D; k++) l1 += Math.abs(W[best * D + k]! - W[t * D + k]!);
      dist[r] = Math.min(dist[r]!, (z(r, best) - z(r, t)) / l1);
    }
  }
  return { d, model, x: Tensor.from(d, x, [N, D]), y: Tensor.from(d, y, [N], 'i32'), yv: y, dist };
}

async function fooled(model: Linear, xa: Tensor, y: Int32Array): Promise<boolean[]> {
  const p = await argmax(model.forward(xa), -1).data();
  return Array.from(y, (v, i) => p[i] !== v);
}

describe('APGD with the DLR losses on a linear model (closed-form L-inf distance)', () => {
  for (const kind of ['APGD-DLR', 'APGD-T'] as const) {
    it(`${kind} misclassifies every example at 1.02 d and none at 0.98 d`, async () => {
      const s = await setup();
      for (const [f, want] of [[1.02, true], [0.98, false]] as const) {
        for (let r = 0; r < N; r++) {
          const eps = f * s.dist[r]!;
          const xr = Tensor.from(s.d, await s.x.f32().then((v) => v.slice(r * D, (r + 1) * D)), [1, D]);
          const yr = Tensor.from(s.d, [s.yv[r]!], [1], 'i32');
          const opts = { eps, steps: 100, bounds: [-100, 100] as [number, number] };
          const atk = kind === 'APGD-DLR' ? new Apgd({ ...opts, loss: 'dlr' }) : new ApgdTargeted({ ...opts, nTargetClasses: 9 });
          const xa = atk.generate(s.model, xr, yr);
          const got = (await fooled(s.model, xa, Int32Array.of(s.yv[r]!)))[0];
          if (kind === 'APGD-T' || !want) expect(got, `${kind} example ${r} at ${f} d`).toBe(want);
          // APGD-DLR is untargeted: its DLR gradient pushes the runner-up only, so at 1.02 d it
          // may miss an example whose closest class is not the runner-up; APGD-T covers all.
          const dv = await xa.f32();
          const xv = await xr.f32();
          for (let k = 0; k < D; k++) expect(Math.abs(dv[k]! - xv[k]!)).toBeLessThanOrEqual(eps * (1 + 1e-5) + 1e-6);
        }
      }
    });
  }

  it('rejects bad loss options', () => {
    expect(() => new Apgd({ eps: 0.1, loss: 'nope' as 'ce' })).toThrow(/loss must be 'ce', 'dlr' or 'dlr-targeted'/);
    expect(() => new Apgd({ eps: 0.1, loss: 'dlr', targeted: true })).toThrow(/targeted applies to loss 'ce' only/);
    expect(() => new Apgd({ eps: 0.1, loss: 'dlr-targeted', targetRank: 1 })).toThrow(/targetRank/);
  });
});
