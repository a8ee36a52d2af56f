// Learnable activation params on the GPU: each kind's table constraint against central
// differences of the float64 forward, PReLU's unconstrained slope, PSSiLU's b = 1e-8
// default, the surrogate derivative (which keeps the forward kind's exact param gradient),
// and one params tensor shared by two calls.
import { describe, expect, it } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import { expectClose, f32, randArray } from '../helpers/compare.ts';
import { numericGrad } from '../reference/gradcheck.ts';
import * as E from '../../engine/index.ts';
import { activation, activationBackwardFromZ } from '../../engine/ops/activation.ts';
import { ACTIVATIONS, constrain, type ActivationKind } from '../../kernels/activations.ts';
import { sigmoid64 } from '../../kernels/reference_math.ts';
import { T2, TOL, chainOf, checkAll, eff, expectParamGrad, paramTensor, ref, runGpu } from '../helpers/activation.ts';

describe('learnable params, surrogate, sharing', () => {
  it("each kind's table constraint: raw-param gradients match central differences of the float64 forward", async () => {
    const d = await testDevice();
    const n = 333;
    const x = f32(randArray(n, 41, -4, 4));
    const dy = f32(randArray(n, 42));
    const cases: [ActivationKind, number[]][] = [
      ['softplus', [-1.5]],
      ['psoftplus', [0.8]],
      ['celu', [-0.6]],
      ['elu', [1.4]],
      ['silu', [-1.1]],
      ['pssilu', [-0.9, -0.05]],
      ['pssilu', [1.3, 0.2]],
      ['smooth_relu', [-20]], // SAT: a = w^2, w init 20
      ['smooth_relu', [3]],
      ['prelu', [-0.3]], // 'none': a negative slope stays negative
    ];
    for (const [kind, raw] of cases) {
      const def = ACTIVATIONS[kind];
      const rawF = f32(raw);
      const effOf = (r: ArrayLike<number>) => Array.from(r, (v, i) => constrain(def.params[i]!.constraint, v));
      const loss = (r: Float64Array) => {
        const p = effOf(r);
        let s = 0;
        for (let i = 0; i < n; i++) s += dy[i]! * def.f(x[i]!, p);
        return s;
      };
      const fd = numericGrad(loss, rawF, 1e-6);
      const got = await runGpu(d, kind, x, dy, Array.from(rawF));
      const pe = effOf(rawF);
      const chain = chainOf(kind, Array.from(rawF)).map(Math.abs);
      const mag = pe.map((_, k) => chain[k]! * x.reduce((a, v, i) => a + Math.abs(dy[i]! * def.dp(v, pe)[k]!), 0));
      const cs = def.params.map((q) => q.constraint).join(', ');
      expectParamGrad(got.dp, Array.from(fd), mag, 2e-5, `${kind} [${raw}] (${cs}) vs central differences`);
    }
  });

  it('learnable PReLU (constraint none): a raw slope of 0 (PAF init) still gets a gradient, a negative one stays negative', async () => {
    const d = await testDevice();
    const n = 100;
    const x = f32(randArray(n, 45, -2, 2));
    const dy = f32(randArray(n, 46));
    const got = await runGpu(d, 'prelu', x, dy, [0]);
    const r = ref('prelu', x, dy, [0], [1]);
    expectParamGrad(got.dp, r.dp, r.mag, 1e-6, 'prelu(0) dparams');
    expect(Math.abs(got.dp[0]!)).toBeGreaterThan(1e-3);
    const neg = await runGpu(d, 'prelu', x, dy, [-0.2]);
    const rn = ref('prelu', x, dy, [f32([-0.2])[0]!], [1]);
    expectClose(neg.y, rn.y, TOL.prelu.f, 'prelu(a = -0.2) forward');
    expectParamGrad(neg.dp, rn.dp, rn.mag, 1e-6, 'prelu(a = -0.2) dparams');
  });

  it('PSSiLU default b = 1e-8 (raw) has a nonzero gradient; raw b = 0 would never move', async () => {
    const d = await testDevice();
    const n = 4096;
    const x = f32(randArray(n, 61, -3, 3));
    const dy = f32(randArray(n, 62));
    const raw = [...ACTIVATIONS.pssilu.defaults];
    expect(raw).toEqual([1, 1e-8]);
    const got = await runGpu(d, 'pssilu', x, dy, raw);
    checkAll('pssilu', got, x, dy, raw, TOL.pssilu, 'pssilu default');
    expect(Math.abs(got.dp[1]!)).toBeGreaterThan(1e-3);
    const zero = await runGpu(d, 'pssilu', x, dy, [1, 0]);
    expect(Math.abs(zero.dp[1]!)).toBe(0); // sign(0) = 0: why the papers initialise b to 1e-8
  });

  it('surrogate: ReLU forward, softplus(a = 10) derivative', async () => {
    const d = await testDevice();
    const n = 1027;
    const x = f32(randArray(n, 71, -2, 2));
    x[0] = 0;
    const dy = f32(randArray(n, 72));
    const got = await runGpu(d, 'relu', x, dy, [], { backward: { kind: 'softplus', params: [10] } });
    expectClose(got.y, x.map((v) => Math.max(v, 0)), { atol: 0, rtol: 0 }, 'surrogate forward = relu');
    expectClose(got.dx, x.map((v, i) => dy[i]! * sigmoid64(10 * v)), T2, 'surrogate dx = dy * s(10 x)');
    expect(got.dx[0]).toBeCloseTo(dy[0]! * 0.5, 7);
    // learnable forward params keep the forward kind's exact dp (documented choice)
    const raw = [-1.2, 0.1];
    const g2 = await runGpu(d, 'pssilu', x, dy, raw, { backward: { kind: 'gelu' } });
    const p = eff('pssilu', raw);
    const r = ref('pssilu', x, dy, [...p], [-1, 1]);
    expectClose(g2.y, r.y, T2, 'pssilu forward under a surrogate');
    expectClose(g2.dx, x.map((v, i) => dy[i]! * ACTIVATIONS.gelu.df(v, [])), TOL.gelu.df, 'gelu surrogate dx');
    expectParamGrad(g2.dp, r.dp, r.mag, 1e-6, 'pssilu params under a surrogate');
    // dx only (params tensor not differentiated): the kernel then does not bind the params
    const Z = E.Tensor.from(d, Float32Array.from(x), [n]);
    const DY = E.Tensor.from(d, Float32Array.from(dy), [n]);
    const P = E.Tensor.from(d, raw, [2]);
    const only = activationBackwardFromZ(Z, DY, { kind: 'pssilu', raw: P, backward: { kind: 'softplus', params: [10] } }, { dParams: false });
    expect(only.dParams).toBeNull();
    expectClose(await only.dz!.f32(), got.dx, { atol: 0, rtol: 0 }, 'surrogate dx does not depend on the forward params');
  });

  it('shared params: one tensor in two activation calls accumulates both gradients', async () => {
    const d = await testDevice();
    const P = paramTensor(d, [-1.1, 0.05])!;
    const n1 = 300;
    const n2 = 1001;
    const x1 = f32(randArray(n1, 81, -3, 3));
    const x2 = f32(randArray(n2, 82, -3, 3));
    const c1 = f32(randArray(n1, 83));
    const c2 = f32(randArray(n2, 84));
    const X1 = E.Tensor.from(d, Float32Array.from(x1), [n1]);
    const X2 = E.Tensor.from(d, Float32Array.from(x2), [n2]);
    const y1 = activation(X1, { kind: 'pssilu', raw: P });
    const y2 = activation(X2, { kind: 'pssilu', raw: P });
    const loss = E.add(E.sum(E.mul(y1, E.Tensor.from(d, Float32Array.from(c1), [n1]))), E.sum(E.mul(y2, E.Tensor.from(d, Float32Array.from(c2), [n2]))));
    E.backward(loss);
    const p = eff('pssilu', [-1.1, 0.05]);
    const r1 = ref('pssilu', x1, c1, [...p], [-1, 1]);
    const r2 = ref('pssilu', x2, c2, [...p], [-1, 1]);
    expectParamGrad(await P.grad!.f32(), [r1.dp[0]! + r2.dp[0]!, r1.dp[1]! + r2.dp[1]!], [r1.mag[0]! + r2.mag[0]!, r1.mag[1]! + r2.mag[1]!], 2e-5, 'shared params');
  });
});
