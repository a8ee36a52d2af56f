// Fused optimizer updates (engine/ops/optim.ts) against float64 references: SGD (momentum,
// Nesterov, weight decay), Adam and AdamW at a few step counts, the gradient scale read
// from a one-element tensor, the clip factor, on 1031 elements (not a multiple of 4 or of
// the workgroup).
import { describe, it, expect } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import { expectClose, f32, randArray } from '../helpers/compare.ts';
import { adamStep64, sgdStep64 } from '../reference/threat64.ts';
import * as E from '../../engine/index.ts';

const N = 1031;

async function tensors() {
  const d = await testDevice();
  const p64 = f32(randArray(N, 1, -2, 2));
  const g64 = f32(randArray(N, 2, -1, 1));
  const s64 = f32(randArray(N, 3, 0, 0.5));
  const T = (v: Float64Array) => E.Tensor.from(d, Float32Array.from(v), [N]);
  return { d, p64, g64, s64, T };
}

describe('optimizer update ops', () => {
  for (const [mu, wd, nesterov] of [[0, 0, false], [0.9, 5e-4, false], [0.9, 1e-2, true]] as const) {
    it(`sgdUpdate momentum ${mu} wd ${wd} nesterov ${nesterov}`, async () => {
      const { d, p64, g64, s64, T } = await tensors();
      const p = T(p64);
      const v = T(s64);
      const gs = E.Tensor.from(d, [0.5], [1]);
      E.sgdUpdate(p, T(g64), gs, v, { lr: 0.1, momentum: mu, weightDecay: wd, nesterov });
      const want = sgdStep64(p64, g64, s64, 0.5, 0.1, mu, wd, nesterov);
      expectClose(await p.f32(), want.p, { atol: 1e-6, rtol: 1e-6 }, 'p');
      expectClose(await v.f32(), want.v, { atol: 1e-6, rtol: 1e-6 }, 'v');
    });
  }

  for (const decoupled of [false, true]) {
    it(`adamUpdate (${decoupled ? 'AdamW' : 'Adam'}) at steps 1 and 7`, async () => {
      const { d, p64, g64, s64, T } = await tensors();
      for (const t of [1, 7]) {
        const p = T(p64);
        const m = T(Float64Array.from(s64, (v) => v - 0.25));
        const v = T(s64);
        const gs = E.Tensor.from(d, [1], [1]);
        const o = { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.05, step: t, decoupled };
        E.adamUpdate(p, T(g64), gs, m, v, o);
        const want = adamStep64(p64, g64, Float64Array.from(s64, (x) => x - 0.25), s64, { gscale: 1, lr: o.lr, b1: o.beta1, b2: o.beta2, eps: o.eps, wd: o.weightDecay, t, decoupled });
        expectClose(await p.f32(), want.p, { atol: 2e-6, rtol: 1e-5 }, `p t=${t}`);
        expectClose(await m.f32(), want.m, { atol: 1e-6, rtol: 1e-5 }, `m t=${t}`);
        expectClose(await v.f32(), want.v, { atol: 1e-6, rtol: 1e-5 }, `v t=${t}`);
      }
    });
  }

  it('clipScale = min(1, maxNorm / (sqrt(sq) + 1e-6)); bad arguments are named', async () => {
    const d = await testDevice();
    for (const [sq, mx] of [[16, 2], [0.25, 2], [0, 1]] as const) {
      const s = E.Tensor.from(d, [sq], [1]);
      expectClose(await E.clipScale(s, mx).f32(), [Math.min(1, mx / (Math.sqrt(sq) + 1e-6))], { atol: 1e-7, rtol: 1e-6 }, `clip ${sq}`);
    }
    const p = E.Tensor.from(d, [1, 2, 3], [3]);
    expect(() => E.sgdUpdate(p, E.Tensor.from(d, [1, 2], [2]), E.Tensor.from(d, [1], [1]), p, { lr: 0.1, momentum: 0, weightDecay: 0, nesterov: false })).toThrow(/sgdUpdate: g must have p's 3 elements/);
    expect(() => E.adamUpdate(p, p, E.Tensor.from(d, [1], [1]), p, p, { lr: 0.1, beta1: 1, beta2: 0.9, eps: 1e-8, weightDecay: 0, step: 1, decoupled: false })).toThrow(/beta1 must be in \[0, 1\)/);
    expect(() => E.clipScale(p, 1)).toThrow(/clipScale: sq must be a one-element f32 tensor/);
  });
});
