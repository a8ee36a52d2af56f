// The fused value-and-gradient op (engine/ops/activation_value_grad.ts): y, dx = gy f'(x)
// and the raw params' gradients from ONE kernel pass, for every kind of the table, against
// the float64 references with the same per-kind tolerances as the separate forward and
// backward (test/helpers/activation.ts), on sizes that do not divide the workgroup, vec4
// and scalar paths, gy given and omitted (= 1: the gradient of sum f), learnable params
// (pssilu, psoftplus, prelu, ...) through their constraints, extreme inputs, NaN and +-inf
// (the limits of docs/activations-ieee.md), a surrogate, per-channel params, bad input.
import { describe, expect, it } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import { f32, randArray } from '../helpers/compare.ts';
import * as E from '../../engine/index.ts';
import { activationValueAndGrad } from '../../engine/ops/activation_value_grad.ts';
import { ACTIVATIONS, ACTIVATION_KINDS, unconstrain, type ActivationKind } from '../../kernels/activations.ts';
import { RAW, TOL, chainOf, checkAll, checkExtremes, eff, paramTensor, ref } from '../helpers/activation.ts';
import { INF, LIMITS } from '../helpers/activation_limits.ts';

const SIZES = [1, 7, 1023, 17 * 33 * 65];

/** Runs the fused op; gy null = omitted. */
async function runFused(d: E.Device, kind: ActivationKind, x: Float64Array, gy: Float64Array | null, raw: number[], vec4?: boolean) {
  const X = E.Tensor.from(d, Float32Array.from(x), [x.length]);
  const G = gy ? E.Tensor.from(d, Float32Array.from(gy), [x.length]) : undefined;
  const pt = paramTensor(d, raw);
  const r = activationValueAndGrad(X, { kind, raw: pt }, G, { vec4 });
  const out = { y: await r.y!.f32(), dx: await r.dx.f32(), dp: r.dParams ? await r.dParams.f32() : new Float32Array(0) };
  for (const t of [X, G, pt, r.y, r.dx, r.dParams]) t?.dispose();
  return out;
}

describe('activationValueAndGrad: one pass, against the float64 references', () => {
  for (const kind of ACTIVATION_KINDS) {
    it(`${kind}: y, dx, dparams at sizes ${SIZES.join(', ')}, gy given and omitted, vec4 and scalar`, async () => {
      const d = await testDevice();
      for (const n of SIZES) {
        const x = f32(randArray(n, 17 + n, -8, 8));
        if (n > 10) for (let i = 0; i < n; i += 97) x[i] = 0;
        const gy = f32(randArray(n, 91 + n));
        const ones = new Float64Array(n).fill(1);
        for (const vec4 of [undefined, false]) {
          const tag = `${kind} n=${n} ${vec4 === false ? 'scalar' : 'vec4'}`;
          checkAll(kind, await runFused(d, kind, x, gy, RAW(kind), vec4), x, gy, RAW(kind), TOL[kind], `${tag} gy`);
          checkAll(kind, await runFused(d, kind, x, null, RAW(kind), vec4), x, ones, RAW(kind), TOL[kind], `${tag} gy = 1`);
        }
      }
    });
  }

  it('host-number params (uniform path) and value: false (no y written)', async () => {
    const d = await testDevice();
    const n = 1021;
    const x = f32(randArray(n, 5, -10, 10));
    const ones = new Float64Array(n).fill(1);
    for (const kind of ACTIVATION_KINDS) {
      const p = [...eff(kind, RAW(kind))];
      const X = E.Tensor.from(d, Float32Array.from(x), [n]);
      const r = activationValueAndGrad(X, { kind, params: p }, undefined, { value: false });
      expect(r.y, `${kind} y with value: false`).toBeNull();
      expect(r.dParams, `${kind} dParams with host params`).toBeNull();
      const want = ref(kind, x, ones, p, p.map(() => 1));
      checkAll(kind, { y: Float32Array.from(want.y), dx: await r.dx.f32(), dp: new Float32Array(0) }, x, ones, [], TOL[kind], `${kind} host params`);
      X.dispose();
      r.dx.dispose();
    }
  });

  it('extreme inputs (0, +-1e-30, +-30, +-88, +-89, +-100, +-400, +-1e10, +-1e30): close to the references, no NaN', async () => {
    await checkExtremes(await testDevice(), runFused);
  });

  it('NaN -> NaN and +-inf -> the limits (docs/activations-ieee.md), each alone and among finite values', async () => {
    const d = await testDevice();
    const same = (got: number, want: number) =>
      Number.isNaN(want) ? Number.isNaN(got) : !Number.isFinite(want) ? got === want : Math.abs(got - want) <= 1e-6 * Math.abs(want) + 1e-30;
    for (const kind of ACTIVATION_KINDS) {
      const def = ACTIVATIONS[kind];
      for (const p of LIMITS[kind].params) {
        for (const x of [NaN, INF, -INF]) {
          // alone, with learnable raw params (gy = 1): f, f' and d f / d effective param
          const raw = p.map((v, i) => unconstrain(def.params[i]!.constraint, Math.abs(v)) * (v < 0 ? -1 : 1));
          const chain = chainOf(kind, raw);
          const got = await runFused(d, kind, f32([x]), null, raw);
          const want = Number.isNaN(x) ? { f: NaN, df: NaN, dp: p.map(() => NaN) } : x > 0 ? LIMITS[kind].pos(p) : LIMITS[kind].neg(p);
          const tag = `${kind}(${p.join(', ')}) at ${x}`;
          if (!same(got.y[0]!, want.f)) throw new Error(`${tag} f: got ${got.y[0]}, want ${want.f}`);
          if (!same(got.dx[0]!, want.df)) throw new Error(`${tag} f': got ${got.dx[0]}, want ${want.df}`);
          want.dp.forEach((w, i) => {
            if (chain[i] === 0) return; // abs at raw 0: chain sign(0) = 0
            const g = got.dp[i]! / chain[i]!;
            if (!same(g, w)) throw new Error(`${tag} df/d${def.paramNames[i]}: got ${g}, want ${w}`);
          });
        }
        // among finite values, vec4 path, host params
        const xs = [0.5, NaN, -1.25, INF, 2, -INF, 0, 3.5, -0.75];
        const X = E.Tensor.from(d, xs, [xs.length]);
        const r = activationValueAndGrad(X, { kind, params: p });
        const [yv, dv] = [await r.y!.f32(), await r.dx.f32()];
        xs.forEach((x, i) => {
          const w = Number.isNaN(x) ? { f: NaN, df: NaN } : x === INF ? LIMITS[kind].pos(p) : x === -INF ? LIMITS[kind].neg(p) : { f: def.f(x, p), df: def.df(x, p) };
          const tol = (v: number) => (Number.isFinite(v) ? 1e-5 * Math.abs(v) + 1e-6 : 0);
          if (!(same(yv[i]!, w.f) || Math.abs(yv[i]! - w.f) <= tol(w.f))) throw new Error(`${kind} mixed f(${x}): got ${yv[i]}, want ${w.f}`);
          if (!(same(dv[i]!, w.df) || Math.abs(dv[i]! - w.df) <= tol(w.df))) throw new Error(`${kind} mixed f'(${x}): got ${dv[i]}, want ${w.df}`);
        });
        for (const t of [X, r.y, r.dx]) t?.dispose();
      }
    }
  });

  it("a surrogate replaces f' only: dx = gy * surrogate f', dparams stay the forward kind's exact ones", async () => {
    const d = await testDevice();
    const n = 777;
    const x = f32(randArray(n, 3, -5, 5));
    const gy = f32(randArray(n, 4));
    const raw = RAW('pssilu');
    const pt = paramTensor(d, raw)!;
    const X = E.Tensor.from(d, Float32Array.from(x), [n]);
    const G = E.Tensor.from(d, Float32Array.from(gy), [n]);
    const r = activationValueAndGrad(X, { kind: 'pssilu', raw: pt, backward: { kind: 'softplus', params: [10] } }, G);
    const fwd = ref('pssilu', x, gy, [...eff('pssilu', raw)], chainOf('pssilu', raw));
    const sur = ref('softplus', x, gy, [10], [1]);
    checkAll('pssilu', { y: await r.y!.f32(), dx: Float32Array.from(fwd.dx), dp: await r.dParams!.f32() }, x, gy, raw, TOL.pssilu, 'surrogate: y and dparams');
    const dx = await r.dx.f32();
    for (let i = 0; i < n; i++) expect(Math.abs(dx[i]! - sur.dx[i]!), `surrogate dx at ${x[i]}`).toBeLessThanOrEqual(1e-7 + 2e-6 * Math.abs(sur.dx[i]!));
    for (const t of [X, G, pt, r.y, r.dx, r.dParams]) t?.dispose();
  });

  it('per-channel params ([C, P] raw, prelu and pssilu): y, dx and per-channel dparams', async () => {
    const d = await testDevice();
    const [N, C, S] = [3, 5, 37];
    const n = N * C * S;
    const x = f32(randArray(n, 8, -6, 6));
    const gy = f32(randArray(n, 9));
    for (const [kind, rows] of [
      ['prelu', [[0.1], [-0.3], [0], [0.7], [0.25]]],
      ['pssilu', [[1, 0.1], [-2, 0.05], [0.5, -0.2], [1.5, 0], [3, 0.3]]],
    ] as [ActivationKind, number[][]][]) {
      const R = E.Tensor.from(d, rows.flat(), [C, rows[0]!.length]);
      const X = E.Tensor.from(d, Float32Array.from(x), [N, C, S]);
      const G = E.Tensor.from(d, Float32Array.from(gy), [N, C, S]);
      const r = activationValueAndGrad(X, { kind, raw: R }, G);
      const [yv, dxv, dpv] = [await r.y!.f32(), await r.dx.f32(), await r.dParams!.f32()];
      expect([...r.dParams!.shape]).toEqual([C, rows[0]!.length]);
      for (let c = 0; c < C; c++) {
        const idx = [...Array(n).keys()].filter((i) => Math.floor(i / S) % C === c);
        const xc = Float64Array.from(idx, (i) => x[i]!);
        const gc = Float64Array.from(idx, (i) => gy[i]!);
        const got = { y: Float32Array.from(idx, (i) => yv[i]!), dx: Float32Array.from(idx, (i) => dxv[i]!), dp: dpv.slice(c * rows[0]!.length, (c + 1) * rows[0]!.length) };
        checkAll(kind, got, xc, gc, rows[c]!, TOL[kind], `${kind} channel ${c}`);
      }
      for (const t of [R, X, G, r.y, r.dx, r.dParams]) t?.dispose();
    }
  });

  it('clear errors: gy of the wrong size or dtype, x not a tensor', async () => {
    const d = await testDevice();
    const X = E.Tensor.from(d, [1, 2, 3], [3]);
    const G = E.Tensor.from(d, [1, 2], [2]);
    expect(() => activationValueAndGrad(X, 'silu', G)).toThrow(/activationValueAndGrad: gy must be an f32 tensor with as many elements as x \[3\], got f32 \[2\]/);
    expect(() => activationValueAndGrad(X, 'silu', [1, 2, 3] as unknown as E.Tensor)).toThrow(/gy must be a Tensor or omitted/);
    expect(() => activationValueAndGrad([1] as unknown as E.Tensor, 'silu')).toThrow(/activationValueAndGrad: x must be a Tensor/);
    X.dispose();
    G.dispose();
  });
});
