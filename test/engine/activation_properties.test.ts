// GPU properties of the activations (docs/activations.md; PyTorch conventions): f(0) and
// f'(0) per kind, continuity of f' at 0 and the jumps where it fails, convergence to ReLU
// as the parameter grows.
import { describe, expect, it } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import { f32 } from '../helpers/compare.ts';
import type { ActivationSpec } from '../../engine/ops/activation.ts';
import { ACTIVATIONS } from '../../kernels/activations.ts';
import { fAndDf } from '../helpers/activation.ts';

describe("GPU properties (PyTorch conventions)", () => {
  it("f(0) = 0 and f'(0) per kind (PyTorch conventions)", async () => {
    const d = await testDevice();
    const cases: [ActivationSpec, number][] = [
      [{ kind: 'relu' }, 0],
      [{ kind: 'softplus', params: [3] }, 0.5],
      [{ kind: 'psoftplus' }, 0.5],
      [{ kind: 'silu' }, 0.5],
      [{ kind: 'silu', params: [4] }, 0.5],
      [{ kind: 'gelu' }, 0.5],
      [{ kind: 'gelu_tanh' }, 0.5],
      [{ kind: 'elu', params: [0.7] }, 0.7],
      [{ kind: 'celu', params: [0.3] }, 1],
      [{ kind: 'smooth_relu' }, 0],
      [{ kind: 'prelu', params: [0.25] }, 0.25],
      [{ kind: 'pssilu', params: [1, 0.2] }, (0.5 - 0.2) / 0.8],
      [{ kind: 'pssilu' }, (0.5 - 1e-8) / (1 - 1e-8)],
    ];
    for (const [spec, want] of cases) {
      const r = await fAndDf(d, spec, [0]);
      const f0 = ACTIVATIONS[spec.kind].f(0, [...((spec.params as number[] | undefined) ?? ACTIVATIONS[spec.kind].defaults)]);
      expect(Math.abs(r.f[0]! - f0), `${spec.kind} f(0) = ${r.f[0]}, want ${f0}`).toBeLessThan(1e-7 * (1 + f0));
      if (!spec.kind.includes('softplus')) expect(r.f[0], `${spec.kind} f(0)`).toBe(0);
      expect(Math.abs(r.df[0]! - want), `${spec.kind}(${spec.params ?? ''}) f'(0) = ${r.df[0]}, want ${want}`).toBeLessThan(1e-7);
    }
  });

  it("continuity of f' at 0, and the jumps where it fails (ReLU 1, PReLU 1 - a, ELU(a) 1 - a)", async () => {
    const d = await testDevice();
    const e = 1e-7;
    const cases: [ActivationSpec, number][] = [
      [{ kind: 'relu' }, 1],
      [{ kind: 'prelu', params: [0.25] }, 0.75],
      [{ kind: 'elu', params: [0.5] }, 0.5],
      [{ kind: 'elu', params: [1] }, 0],
      [{ kind: 'softplus', params: [2] }, 0],
      [{ kind: 'silu' }, 0],
      [{ kind: 'gelu' }, 0],
      [{ kind: 'gelu_tanh' }, 0],
      [{ kind: 'celu', params: [0.4] }, 0],
      [{ kind: 'smooth_relu' }, 0],
      [{ kind: 'pssilu', params: [1.5, 0.1] }, 0],
    ];
    for (const [spec, jump] of cases) {
      const r = await fAndDf(d, spec, [e, -e]);
      const got = r.df[0]! - r.df[1]!;
      // a smooth f' changes by O(f''(0) e) across [-e, e]; SmoothReLU(400) by 400 e = 4e-5
      expect(Math.abs(got - jump), `${spec.kind}(${spec.params ?? ''}) f'(+e) - f'(-e) = ${got}, want ${jump}`).toBeLessThan(1e-4);
    }
  });

  it('converges to ReLU as the parameter grows (Softplus log2/a, Swish 0.2785/b, CELU a, PSSiLU, SmoothReLU)', async () => {
    const d = await testDevice();
    const xs = Array.from(f32(Array.from({ length: 2001 }, (_, i) => -5 + i / 200)));
    const relu = xs.map((v) => Math.max(v, 0));
    const gap = async (spec: ActivationSpec) => {
      const { f } = await fAndDf(d, spec, xs);
      return Math.max(...Array.from(f, (v, i) => Math.abs(v - relu[i]!)));
    };
    const slack = 1e-6;
    let prev = Infinity;
    for (const a of [1, 10, 100, 1000]) {
      const g = await gap({ kind: 'softplus', params: [a] });
      expect(g, `softplus(${a})`).toBeLessThanOrEqual(Math.LN2 / a + slack);
      expect(g, `softplus(${a}) gap attained at 0`).toBeGreaterThan(0.99 * Math.LN2 / a);
      expect(g).toBeLessThan(prev);
      prev = g;
      const s = await gap({ kind: 'silu', params: [a] });
      expect(s, `swish(${a})`).toBeLessThanOrEqual(0.2785 / a + slack);
      const p = await gap({ kind: 'pssilu', params: [a, 0] });
      expect(p, `pssilu(${a}, 0)`).toBeLessThanOrEqual(0.2785 / a + slack);
      const c = await gap({ kind: 'celu', params: [1 / a] });
      expect(c, `celu(${1 / a})`).toBeLessThanOrEqual(1 / a + slack);
      const r = await gap({ kind: 'smooth_relu', params: [a] });
      expect(r, `smooth_relu(${a})`).toBeLessThanOrEqual(Math.log1p(5 * a) / a + slack);
    }
    expect(await gap({ kind: 'prelu', params: [0] })).toBe(0);
  });
});
