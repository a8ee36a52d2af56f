// Fused bias + activation epilogues (engine/ops/fused.ts: conv2dAct, linearAct) and their
// use by Sequential (nn/layers.ts). Checked against an independent float64 reference
// (conv64 / matmul64 + bias, the float64 activation table, analytic gradients of the
// composite, themselves checked once against central differences) on awkward shapes (odd
// channel counts, stride 2, padding, groups + dilation, sizes that divide no tile) on
// every conv impl, for relu, silu, gelu, learnable pssilu (abs constraint, a negative raw
// value so the sign chain matters), psoftplus with a learnable a and a surrogate
// derivative, softplus(2) with a silu(1.5) surrogate (both parameter pairs in the uniform
// block) and relu with SAT's softplus(10) surrogate; extreme pre-activations
// (|z| up to 1e30, no NaN); then Sequential's fused path against the unfused one (fusion
// off) on the small CNN, with surrogates switched on and off, observeActivations (which
// must still see z, per model), eval under noGrad, unchanged parameter names and flat memory.
//
// Tolerances: the pre-activation z carries the float32 error of the conv / matmul sum,
// bounded by EPS_Z * sum_k |x_k w_k| (+ |b|) per output (EPS_Z = 1e-5, ~170 f32 ULPs: the
// sums here have at most 54 terms); y adds |f'| times that plus a few ULPs of f. The
// gradients: dz differs by |dy| (|f''| err(z) + a few ULPs), then dx, dw, db are sums of
// dz times x or w, so they are held to EPS_G * the same sums over |dy| (1 + zabs)
// (EPS_G = 2e-5); activation param grads to EPS_G * sum |dy| (|dp| + zabs) + 1e-6.
// Sequential fused vs unfused: the same conv / matmul kernels compute z on both paths
// (auto impl), so they agree to float32 rounding of the activation: atol 1e-6, rtol 1e-5.
import { describe, expect, it } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import { expectClose, expectNoNaN, f32, randArray } from '../helpers/compare.ts';
import { conv64, conv64AbsForward, conv64BackwardBias, conv64BackwardFilter, conv64BackwardInput, geom64, type Conv64Geom, type Conv64Opts } from '../reference/conv64.ts';
import { numericGrad, dot } from '../reference/gradcheck.ts';
import { size } from '../reference/ops64.ts';
import * as E from '../../engine/index.ts';
import type { ActivationSpec } from '../../engine/ops/activation.ts';
import { ACTIVATIONS, type ActivationKind } from '../../kernels/activations.ts';
import { Activation, activationLayers, observeActivations, setSurrogate } from '../../nn/activation.ts';
import { Flatten, Linear, Sequential } from '../../nn/layers.ts';
import { SmallCnn } from '../../nn/models/small_cnn.ts';
import type { ModelConfig } from '../../nn/models/common.ts';

const EPS_Z = 1e-5;
const EPS_G = 2e-5;


// ------------------------------------------------------------------ activation cases

interface ActCase {
  name: string;
  kind: ActivationKind;
  /** Effective forward params (float64 reference). */
  eff: number[];
  /** Learnable raw params (abs constraint), or null. */
  raw: number[] | null;
  /** The derivative's kind and params (the surrogate's when there is one). */
  dfKind: ActivationKind;
  dfParams: number[];
  spec(P: E.Tensor | null): ActivationSpec;
}

const ACTS: ActCase[] = [
  { name: 'relu', kind: 'relu', eff: [], raw: null, dfKind: 'relu', dfParams: [], spec: () => ({ kind: 'relu' }) },
  { name: 'silu', kind: 'silu', eff: [1], raw: null, dfKind: 'silu', dfParams: [1], spec: () => ({ kind: 'silu' }) },
  { name: 'gelu', kind: 'gelu', eff: [], raw: null, dfKind: 'gelu', dfParams: [], spec: () => ({ kind: 'gelu' }) },
  {
    name: 'pssilu (learnable, raw a < 0)',
    kind: 'pssilu',
    eff: [1.1, 0.05],
    raw: [-1.1, 0.05],
    dfKind: 'pssilu',
    dfParams: [1.1, 0.05],
    spec: (P) => ({ kind: 'pssilu', raw: P! }),
  },
  {
    name: 'psoftplus (learnable a) with a gelu surrogate',
    kind: 'psoftplus',
    eff: [1.5],
    raw: [1.5],
    dfKind: 'gelu',
    dfParams: [],
    spec: (P) => ({ kind: 'psoftplus', raw: P!, backward: { kind: 'gelu' } }),
  },
  {
    name: 'softplus(a = 2) with a silu surrogate',
    kind: 'softplus',
    eff: [2],
    raw: null,
    dfKind: 'silu',
    dfParams: [1.5],
    spec: () => ({ kind: 'softplus', params: [2], backward: { kind: 'silu', params: [1.5] } }),
  },
  {
    name: 'relu with the softplus(10) surrogate',
    kind: 'relu',
    eff: [],
    raw: null,
    dfKind: 'softplus',
    dfParams: [10],
    spec: () => ({ kind: 'relu', backward: { kind: 'softplus', params: [10] } }),
  },
];

/** Gradient chain of the abs constraint: d|r|/dr = sign(r). */
const chain = (raw: number[] | null, k: number): number => (raw ? Math.sign(raw[k]!) : 1);

/** Float64 reference of y = f(z), dz = dy f'(z) and the raw params' gradient sum dy df/dp. */
function actRef(a: ActCase, z: Float64Array, dy: Float64Array, zabs: Float64Array) {
  const fwd = ACTIVATIONS[a.kind];
  const dfd = ACTIVATIONS[a.dfKind];
  const y = z.map((v) => fwd.f(v, a.eff));
  const dz = z.map((v, i) => dy[i]! * dfd.df(v, a.dfParams));
  const dp = a.eff.map(() => 0);
  const dpScale = a.eff.map(() => 0);
  if (a.raw) {
    z.forEach((v, i) => {
      const d = fwd.dp(v, a.eff);
      d.forEach((t, k) => {
        dp[k]! += dy[i]! * t * chain(a.raw, k);
        dpScale[k]! += Math.abs(dy[i]!) * (Math.abs(t) + zabs[i]!);
      });
    });
  }
  return { y, dz, dp, dpScale };
}

function expectWithin(got: ArrayLike<number>, want: ArrayLike<number>, tol: ArrayLike<number>, what: string): void {
  expectNoNaN(got, what);
  expect(got.length, `${what}: length`).toBe(want.length);
  let worst = -1;
  let ratio = 0;
  for (let i = 0; i < want.length; i++) {
    const r = Math.abs(got[i]! - want[i]!) / tol[i]!;
    if (!(r <= ratio)) {
      ratio = r;
      worst = i;
    }
  }
  if (ratio > 1) throw new Error(`${what}: mismatch at index ${worst}: got ${got[worst]}, want ${want[worst]}, tolerance ${tol[worst]} (${ratio.toFixed(1)}x)`);
}

// ------------------------------------------------------------------ conv2dAct

interface ConvCase {
  name: string;
  x: [number, number, number, number];
  w: [number, number, number, number];
  o: Conv64Opts;
}

const CONV_CASES: ConvCase[] = [
  { name: '3->5 3x3 stride 2 pad 1 on 9x7', x: [2, 3, 9, 7], w: [5, 3, 3, 3], o: { stride: [2, 2], padding: [1, 1] } },
  { name: '6->7 3x3 pad 1 on 11x10', x: [3, 6, 11, 10], w: [7, 6, 3, 3], o: { padding: [1, 1] } },
  { name: 'groups 2 (4->6) 3x2 dilation [1,2] pad [1,2] on 7x9', x: [2, 4, 7, 9], w: [6, 2, 3, 2], o: { padding: [1, 2], dilation: [1, 2], groups: 2 } },
];

const IMPLS = ['fast', 'gemm', 'direct', 'naive', 'auto'] as const;

function convOpts(c: ConvCase, impl: E.ConvImpl): E.Conv2dOptions {
  return { stride: c.o.stride, padding: c.o.padding, dilation: c.o.dilation, groups: c.o.groups, impl };
}

/** The float64 reference of conv + bias + act and every gradient, with per-element tolerances. */
function convRef(c: ConvCase, a: ActCase, x: Float64Array, w: Float64Array, b: Float64Array, dy: Float64Array) {
  const p: Conv64Geom = geom64(c.x, c.w, c.o);
  const z = conv64(x, w, b, p);
  const hw = p.OH * p.OW;
  const zabs = conv64AbsForward(x, w, p).map((v, i) => v + Math.abs(b[Math.floor(i / hw) % p.O]!));
  const r = actRef(a, z, dy, zabs);
  const g = dy.map((v, i) => Math.abs(v) * (1 + zabs[i]!));
  return {
    y: r.y,
    yTol: zabs.map((v, i) => EPS_Z * v * 1.5 + 4e-6 * Math.abs(r.y[i]!) + 1e-7),
    dx: conv64BackwardInput(r.dz, w, p),
    dxTol: conv64BackwardInput(g, w.map(Math.abs), p).map((v) => EPS_G * v + 1e-7),
    dw: conv64BackwardFilter(r.dz, x, p),
    dwTol: conv64BackwardFilter(g, x.map(Math.abs), p).map((v) => EPS_G * v + 1e-7),
    db: conv64BackwardBias(r.dz, p),
    dbTol: conv64BackwardBias(g, p).map((v) => EPS_G * v + 1e-7),
    dp: r.dp,
    dpTol: r.dpScale.map((v) => EPS_G * v + 1e-6),
  };
}

describe('conv2dAct against the float64 reference', () => {
  for (const c of CONV_CASES) {
    // The first case runs every activation; the others the ones with the most moving parts.
    const acts = c === CONV_CASES[0] ? ACTS : ACTS.filter((a) => a.kind === 'pssilu' || a.kind === 'psoftplus' || a.kind === 'gelu');
    it(`${c.name}: y, dx, dw, db and activation param grads on every impl`, async () => {
      const d = await testDevice();
      const x = f32(randArray(size(c.x), 11, -2, 2));
      const w = f32(randArray(size(c.w), 12, -0.6, 0.6));
      const b = f32(randArray(c.w[0], 13, -0.5, 0.5));
      const p = geom64(c.x, c.w, c.o);
      const dy = f32(randArray(p.N * p.O * p.OH * p.OW, 14));
      for (const a of acts) {
        const ref = convRef(c, a, x, w, b, dy);
        for (const impl of IMPLS) {
          await E.scopeAsync(async () => {
            const X = E.Tensor.from(d, Float32Array.from(x), c.x);
            const W = E.Tensor.from(d, Float32Array.from(w), c.w);
            const B = E.Tensor.from(d, Float32Array.from(b), [c.w[0]]);
            const P = a.raw ? E.Tensor.from(d, a.raw, [a.raw.length]) : null;
            const leaves = [X, W, B, ...(P ? [P] : [])];
            for (const t of leaves) t.requiresGrad = true;
            const Y = E.conv2dAct(X, W, B, a.spec(P), convOpts(c, impl));
            expect(Y.shape).toEqual([p.N, p.O, p.OH, p.OW]);
            expect(Y.node?.name).toBe('conv2d_act');
            const what = `${c.name}, ${a.name}, ${impl}`;
            expectWithin(await Y.f32(), ref.y, ref.yTol, `${what}: y`);
            const gs = E.grad(Y, leaves, E.Tensor.from(d, Float32Array.from(dy), Y.shape));
            expectWithin(await gs[0]!.f32(), ref.dx, ref.dxTol, `${what}: dx`);
            expectWithin(await gs[1]!.f32(), ref.dw, ref.dwTol, `${what}: dw`);
            expectWithin(await gs[2]!.f32(), ref.db, ref.dbTol, `${what}: db`);
            if (P) expectWithin(await gs[3]!.f32(), ref.dp, ref.dpTol, `${what}: activation param grad`);
          });
        }
      }
    });
  }

  it('the float64 reference gradients match central differences of the float64 composite', () => {
    const c: ConvCase = { name: 'tiny', x: [1, 2, 5, 4], w: [3, 2, 3, 3], o: { stride: [2, 1], padding: [1, 1] } };
    const p = geom64(c.x, c.w, c.o);
    const x = randArray(size(c.x), 21, -2, 2);
    const w = randArray(size(c.w), 22, -0.6, 0.6);
    const b = randArray(3, 23, -0.5, 0.5);
    const dy = randArray(p.N * p.O * p.OH * p.OW, 24);
    for (const a of ACTS.filter((t) => t.dfKind === t.kind)) {
      const loss = (xx: Float64Array, ww: Float64Array, bb: Float64Array, eff: number[]) =>
        dot(conv64(xx, ww, bb, p).map((v) => ACTIVATIONS[a.kind].f(v, eff)), dy);
      const ref = convRef(c, a, x, w, b, dy);
      const tol = { atol: 1e-6, rtol: 1e-5 };
      expectClose(ref.dx, numericGrad((v) => loss(v, w, b, a.eff), x), tol, `${a.name}: dx`);
      expectClose(ref.dw, numericGrad((v) => loss(x, v, b, a.eff), w), tol, `${a.name}: dw`);
      expectClose(ref.db, numericGrad((v) => loss(x, w, v, a.eff), b), tol, `${a.name}: db`);
      if (a.raw) {
        const dRaw = numericGrad((r) => loss(x, w, b, [...r].map(Math.abs)), Float64Array.from(a.raw));
        expectClose(ref.dp, dRaw, tol, `${a.name}: d raw params`);
      }
    }
  });

  it('extreme pre-activations (|z| up to 1e30): finite, no NaN, as the reference', async () => {
    const d = await testDevice();
    const c = CONV_CASES[0]!;
    const p = geom64(c.x, c.w, c.o);
    const x = f32(randArray(size(c.x), 31, -2, 2));
    const w = f32(randArray(size(c.w), 32, -0.6, 0.6));
    const b = f32([1e30, -1e30, 400, -400, 30]);
    const dy = f32(randArray(p.N * p.O * p.OH * p.OW, 34));
    for (const a of ACTS) {
      const ref = convRef(c, a, x, w, b, dy);
      for (const impl of ['fast', 'gemm'] as const) {
        await E.scopeAsync(async () => {
          const X = E.Tensor.from(d, Float32Array.from(x), c.x);
          const W = E.Tensor.from(d, Float32Array.from(w), c.w);
          const B = E.Tensor.from(d, Float32Array.from(b), [5]);
          const P = a.raw ? E.Tensor.from(d, a.raw, [a.raw.length]) : null;
          const leaves = [X, W, B, ...(P ? [P] : [])];
          for (const t of leaves) t.requiresGrad = true;
          const Y = E.conv2dAct(X, W, B, a.spec(P), convOpts(c, impl));
          const what = `${a.name}, ${impl}, extreme`;
          // NOTE: f32 rounding of a*z at |z| = 1e30 is ~6e-8 relative: 1e-6 |y| absorbs it.
          expectWithin(await Y.f32(), ref.y, ref.yTol.map((t, i) => t + 1e-6 * Math.abs(ref.y[i]!)), `${what}: y`);
          const gs = E.grad(Y, leaves, E.Tensor.from(d, Float32Array.from(dy), Y.shape));
          expectWithin(await gs[0]!.f32(), ref.dx, ref.dxTol, `${what}: dx`);
          expectWithin(await gs[1]!.f32(), ref.dw, ref.dwTol, `${what}: dw`);
          expectWithin(await gs[2]!.f32(), ref.db, ref.dbTol, `${what}: db`);
          if (P) expectWithin(await gs[3]!.f32(), ref.dp, ref.dpTol.map((t, k) => t + 1e-6 * Math.abs(ref.dp[k]!)), `${what}: param grad`);
        });
      }
    }
  });

  it('without a gradient it saves no z and records nothing; errors name the argument', async () => {
    const d = await testDevice();
    const X = E.Tensor.from(d, new Float32Array(2 * 3 * 5 * 5).fill(0.5), [2, 3, 5, 5]);
    const W = E.Tensor.from(d, new Float32Array(4 * 3 * 3 * 3).fill(0.1), [4, 3, 3, 3]);
    W.requiresGrad = true;
    const before = d.stats().liveBuffers;
    const Y = E.noGrad(() => E.conv2dAct(X, W, null, 'silu'));
    expect(Y.node).toBeNull();
    expect(d.stats().liveBuffers).toBe(before + 1);
    const f = ACTIVATIONS.silu.f(0.1 * 0.5 * 27, [1]);
    expectClose(Array.from(await Y.f32()).slice(4, 5), [f], { atol: 1e-6, rtol: 1e-5 }, 'interior value');
    const legacy = { act: 'fn epi_act(z: f32) -> f32 { return z; }' } as unknown as Parameters<typeof E.conv2dAct>[4];
    expect(() => E.conv2dAct(X, W, null, 'silu', legacy)).toThrow(/conv2dAct: opts.act must be unset/);
    expect(() => E.conv2dAct(X, W, null, { kind: 'nope' as ActivationKind })).toThrow(/conv2dAct: spec.kind: unknown activation kind "nope"/);
    expect(() => E.conv2dAct(X, W, null, { kind: 'pssilu', raw: E.Tensor.from(d, [1], [1]) })).toThrow(/conv2dAct: spec.raw for pssilu must be an f32 tensor of shape \[2\]/);
    expect(() => E.conv2dAct(X, E.Tensor.from(d, new Float32Array(4 * 2 * 9), [4, 2, 3, 3]), null, 'relu')).toThrow(/has 2 channels per group, expected C\/groups = 3/);
    expect(() => E.linearAct(E.Tensor.from(d, new Float32Array(6), [2, 3]), E.Tensor.from(d, new Float32Array(8), [2, 4]), null, 'relu')).toThrow(/linearAct: x's last dim 3 .* must equal w's in-features 4/);
    expect(() => E.linearAct(E.Tensor.from(d, new Float32Array(6), [2, 3]), E.Tensor.from(d, new Float32Array(6), [2, 3]), E.Tensor.from(d, [1, 2, 3], [3]), 'relu')).toThrow(/linearAct: b must have shape \[2\]/);
  });
});

describe('fused ReLU: the backward reads y, the forward writes no z', () => {
  it("conv2dAct and linearAct with relu keep no z buffer (silu keeps one); gradients at z = 0, z < 0 and z = NaN are those of relu'(z)", async () => {
    const d = await testDevice();
    // x = 0, so z = b per output channel: 0 (relu'(0) = 0), 1, -1, and -2 or NaN (relu' and
    // relu propagate NaN: every gradient the NaN channel reaches is NaN).
    const c = { x: [2, 3, 5, 6] as [number, number, number, number], w: [4, 3, 3, 3] as [number, number, number, number] };
    const p = geom64(c.x, c.w, { padding: [1, 1] });
    const w = f32(randArray(size(c.w), 41, -1, 1));
    const dy = f32(randArray(p.N * p.O * p.OH * p.OW, 42));
    const hw = p.OH * p.OW;
    const dz = dy.map((v, i) => (Math.floor(i / hw) % p.O === 1 ? v : 0));
    const tol = { atol: 1e-5, rtol: 1e-5 };
    for (const impl of ['fast', 'gemm'] as const) {
      for (const [kind, last] of [['relu', -2], ['relu', NaN], ['silu', -2]] as const) {
        await E.scopeAsync(async () => {
          const X = E.Tensor.from(d, new Float32Array(size(c.x)), c.x);
          const W = E.Tensor.from(d, Float32Array.from(w), c.w);
          const B = E.Tensor.from(d, [0, 1, -1, last], [4]);
          for (const t of [X, W, B]) t.requiresGrad = true;
          const before = d.stats().liveBuffers;
          const Y = E.conv2dAct(X, W, B, kind, { padding: 1, impl });
          // y, plus z for silu (and the kept im2col of the GEMM forward, same for both).
          const kept = impl === 'gemm' ? 1 : 0;
          expect(d.stats().liveBuffers - before, `${impl} ${kind}`).toBe(1 + kept + (kind === 'relu' ? 0 : 1));
          if (kind !== 'relu') return;
          const [dx, dw, db] = E.grad(Y, [X, W, B], E.Tensor.from(d, Float32Array.from(dy), Y.shape));
          const what = `${impl} b3 = ${last}`;
          const gotDb = await db!.f32();
          expectClose(Array.from(gotDb).slice(0, 3), conv64BackwardBias(dz, p).slice(0, 3), tol, `${what}: db`);
          const gotDw = await dw!.f32();
          const row = size(c.w) / 4;
          expectClose(Array.from(gotDw).slice(0, 3 * row), new Float64Array(3 * row), tol, `${what}: dw (x = 0)`);
          if (Number.isNaN(last)) {
            expect(Number.isNaN(gotDb[3]!), `${what}: db[3]`).toBe(true);
            expect(Array.from(gotDw).slice(3 * row).every(Number.isNaN), `${what}: dw row 3`).toBe(true);
            expect(Array.from(await dx!.f32()).every(Number.isNaN), `${what}: dx`).toBe(true);
          } else {
            expect(gotDb[3], `${what}: db[3]`).toBe(0);
            expectClose(Array.from(gotDw).slice(3 * row), new Float64Array(row), tol, `${what}: dw row 3`);
            expectClose(await dx!.f32(), conv64BackwardInput(dz, w, p), tol, `${what}: dx`);
          }
        });
      }
    }
    for (const kind of ['relu', 'silu'] as const) {
      await E.scopeAsync(async () => {
        const X = E.Tensor.from(d, new Float32Array(3 * 5), [3, 5]);
        const W = E.Tensor.from(d, f32(randArray(4 * 5, 43)), [4, 5]);
        const B = E.Tensor.from(d, [0, 1, -1, -2], [4]);
        for (const t of [X, W, B]) t.requiresGrad = true;
        const before = d.stats().liveBuffers;
        const Y = E.linearAct(X, W, B, kind);
        expect(d.stats().liveBuffers - before, `linear ${kind}`).toBe(kind === 'relu' ? 1 : 2);
        if (kind !== 'relu') return;
        const g = f32(randArray(12, 44));
        const [, , db] = E.grad(Y, [X, W, B], E.Tensor.from(d, Float32Array.from(g), [3, 4]));
        expectClose(await db!.f32(), [0, g[1]! + g[5]! + g[9]!, 0, 0], { atol: 1e-6, rtol: 1e-6 }, 'linear db');
      });
    }
  });
});

// ------------------------------------------------------------------ linearAct

describe('linearAct against the float64 reference', () => {
  const CASES = [
    { name: 'x [5, 3, 13] -> 11 (no dim a multiple of 4), bias', xs: [5, 3, 13], out: 11, bias: true },
    { name: 'x [6, 8] -> 12 (vec4 loads and stores), no bias', xs: [6, 8], out: 12, bias: false },
  ];
  for (const c of CASES) {
    it(`${c.name}: y, dx, dw, db and activation param grads`, async () => {
      const d = await testDevice();
      const inF = c.xs[c.xs.length - 1]!;
      const rows = size(c.xs) / inF;
      const x = f32(randArray(size(c.xs), 41, -2, 2));
      const w = f32(randArray(c.out * inF, 42, -0.6, 0.6));
      const b = c.bias ? f32(randArray(c.out, 43, -0.5, 0.5)) : new Float64Array(c.out);
      const dy = f32(randArray(rows * c.out, 44));
      // float64 reference: z[r, o] = sum_k x[r, k] w[o, k] + b[o].
      const z = new Float64Array(rows * c.out);
      const zabs = new Float64Array(rows * c.out);
      for (let r = 0; r < rows; r++)
        for (let o = 0; o < c.out; o++) {
          let s = b[o]!;
          let sa = Math.abs(b[o]!);
          for (let k = 0; k < inF; k++) {
            s += x[r * inF + k]! * w[o * inF + k]!;
            sa += Math.abs(x[r * inF + k]! * w[o * inF + k]!);
          }
          z[r * c.out + o] = s;
          zabs[r * c.out + o] = sa;
        }
      for (const a of ACTS) {
        const ref = actRef(a, z, dy, zabs);
        const g = dy.map((v, i) => Math.abs(v) * (1 + zabs[i]!));
        const dx = new Float64Array(rows * inF);
        const dxTol = new Float64Array(rows * inF);
        const dw = new Float64Array(c.out * inF);
        const dwTol = new Float64Array(c.out * inF);
        const db = new Float64Array(c.out);
        const dbTol = new Float64Array(c.out);
        for (let r = 0; r < rows; r++)
          for (let o = 0; o < c.out; o++) {
            const i = r * c.out + o;
            db[o]! += ref.dz[i]!;
            dbTol[o]! += g[i]!;
            for (let k = 0; k < inF; k++) {
              dx[r * inF + k]! += ref.dz[i]! * w[o * inF + k]!;
              dxTol[r * inF + k]! += g[i]! * Math.abs(w[o * inF + k]!);
              dw[o * inF + k]! += ref.dz[i]! * x[r * inF + k]!;
              dwTol[o * inF + k]! += g[i]! * Math.abs(x[r * inF + k]!);
            }
          }
        const tol = (t: Float64Array) => t.map((v) => EPS_G * v + 1e-7);
        await E.scopeAsync(async () => {
          const X = E.Tensor.from(d, Float32Array.from(x), c.xs);
          const W = E.Tensor.from(d, Float32Array.from(w), [c.out, inF]);
          const B = c.bias ? E.Tensor.from(d, Float32Array.from(b), [c.out]) : null;
          const P = a.raw ? E.Tensor.from(d, a.raw, [a.raw.length]) : null;
          const leaves = [X, W, ...(B ? [B] : []), ...(P ? [P] : [])];
          for (const t of leaves) t.requiresGrad = true;
          const Y = E.linearAct(X, W, B, a.spec(P));
          expect(Y.shape).toEqual([...c.xs.slice(0, -1), c.out]);
          expect(Y.node?.name).toBe('linear_act');
          const what = `${c.name}, ${a.name}`;
          expectWithin(await Y.f32(), ref.y, zabs.map((v, i) => EPS_Z * v * 1.5 + 4e-6 * Math.abs(ref.y[i]!) + 1e-7), `${what}: y`);
          const gs = E.grad(Y, leaves, E.Tensor.from(d, Float32Array.from(dy), Y.shape));
          expectWithin(await gs[0]!.f32(), dx, tol(dxTol), `${what}: dx`);
          expectWithin(await gs[1]!.f32(), dw, tol(dwTol), `${what}: dw`);
          let k = 2;
          if (B) expectWithin(await gs[k++]!.f32(), db, tol(dbTol), `${what}: db`);
          if (P) expectWithin(await gs[k]!.f32(), ref.dp, ref.dpScale.map((v) => EPS_G * v + 1e-6), `${what}: activation param grad`);
        });
      }
    });
  }
});

describe('one resolve per fused op', () => {
  it("mutating the caller's spec between forward and backward changes nothing (the op keeps its ResolvedActivation)", async () => {
    const d = await testDevice();
    const x = f32(randArray(4 * 7, 71, -2, 2));
    const w = f32(randArray(5 * 7, 72, -1, 1));
    const run = async (mutate: boolean) =>
      E.scopeAsync(async () => {
        const X = E.Tensor.from(d, Float32Array.from(x), [4, 7]);
        const W = E.Tensor.from(d, Float32Array.from(w), [5, 7]);
        X.requiresGrad = true;
        const ps = [2];
        const bp = [1.5];
        const spec = { kind: 'softplus' as const, params: ps, backward: { kind: 'silu' as const, params: bp } };
        const Y = E.linearAct(X, W, null, spec);
        if (mutate) {
          ps[0] = 7;
          bp[0] = 9;
          (spec as { kind: ActivationKind }).kind = 'relu';
        }
        const [gx] = E.grad(E.sum(Y), [X]);
        return { y: await Y.f32(), gx: await gx!.f32() };
      });
    const plain = await run(false);
    const mutated = await run(true);
    expectClose(mutated.y, plain.y, { atol: 0, rtol: 0 }, 'y');
    expectClose(mutated.gx, plain.gx, { atol: 0, rtol: 0 }, 'dx');
    // and the values are softplus(2) forward with a silu(1.5) derivative (float64)
    const dz = Array.from({ length: 4 * 5 }, (_, i) => {
      const r = Math.floor(i / 5);
      const o = i % 5;
      let z = 0;
      for (let k = 0; k < 7; k++) z += x[r * 7 + k]! * w[o * 7 + k]!;
      return ACTIVATIONS.silu.df(z, [1.5]);
    });
    const gx = Array.from({ length: 4 * 7 }, (_, i) => {
      const r = Math.floor(i / 7);
      const k = i % 7;
      let s = 0;
      for (let o = 0; o < 5; o++) s += dz[r * 5 + o]! * w[o * 7 + k]!;
      return s;
    });
    expectClose(plain.gx, gx, { atol: 1e-6, rtol: 1e-5 }, 'dx vs float64 (silu(1.5) surrogate)');
  });

  it('an Activation layer resolves its spec once, at construction', async () => {
    const d = await testDevice();
    const layer = new Activation(d, { kind: 'pssilu', backward: { kind: 'softplus', params: [10] } });
    expect(layer.engineSpec()).toBe(layer.engineSpec());
    expect(layer.engineSpec().raw).toBe(layer.params);
    expect(layer.engineSpec().surrogate).toBe('softplus');
    layer.surrogateOn = false;
    expect(layer.engineSpec().surrogate).toBeNull();
    expect(layer.engineSpec().raw).toBe(layer.params);
    layer.dispose();
  });
});

// ------------------------------------------------------------------ Sequential

/** Names of every autograd node reachable from t. */
function nodeNames(t: E.Tensor): Set<string> {
  const names = new Set<string>();
  const seen = new Set<E.Tensor>();
  const stack = [t];
  while (stack.length) {
    const u = stack.pop()!;
    if (seen.has(u)) continue;
    seen.add(u);
    if (u.node) {
      names.add(u.node.name);
      stack.push(...u.node.inputs);
    }
  }
  return names;
}

const BATCH = 3;

function mnistBatch(d: E.Device): E.Tensor {
  return E.Tensor.from(d, Float32Array.from(randArray(BATCH * 28 * 28, 51, 0, 1)), [BATCH, 1, 28, 28]);
}

/** Logits and every parameter's gradient of sum(logits * c), fusion on or off. */
async function run(model: SmallCnn | Sequential, x: E.Tensor, fuse: boolean): Promise<{ logits: Float32Array; grads: Float32Array[]; names: Set<string> }> {
  const seq = model instanceof SmallCnn ? model.net : model;
  seq.fuse = fuse;
  return E.scopeAsync(async () => {
    const params = model.parameters();
    const y = model.forward(x);
    const c = E.Tensor.from(x.device, Float32Array.from(randArray(y.size, 52)), y.shape);
    const gs = E.grad(E.sum(E.mul(y, c)), params);
    const out = { logits: await y.f32(), grads: [] as Float32Array[], names: nodeNames(y) };
    for (const g of gs) out.grads.push(await g.f32());
    return out;
  });
}

function expectSame(a: { logits: Float32Array; grads: Float32Array[] }, b: { logits: Float32Array; grads: Float32Array[] }, what: string): void {
  const tol = { atol: 1e-6, rtol: 1e-5 };
  expectClose(a.logits, b.logits, tol, `${what}: logits`);
  expect(a.grads.length).toBe(b.grads.length);
  a.grads.forEach((g, i) => expectClose(g, b.grads[i]!, tol, `${what}: grad of parameter ${i}`));
}

describe('Sequential fuses Conv2d / Linear + Activation', () => {
  const CONFIGS: [string, ModelConfig['activation']][] = [
    ['relu', 'relu'],
    ['pssilu, shared learnable', { kind: 'pssilu', shared: true }],
    ['silu, per layer', { kind: 'silu' }],
    ['psoftplus, per-layer learnable, softplus surrogate', { kind: 'psoftplus', learnable: true, backward: { kind: 'softplus', params: [4] } }],
  ];
  for (const [name, act] of CONFIGS) {
    it(`small CNN (${name}): fused and unfused give the same logits and gradients; names unchanged`, async () => {
      const d = await testDevice();
      const model = new SmallCnn(d, { activation: act, seed: 3 });
      const x = mnistBatch(d);
      const names = model.namedParameters().map(([n]) => n);
      const fused = await run(model, x, true);
      const plain = await run(model, x, false);
      expect(fused.names.has('conv2d_act')).toBe(true);
      expect([...fused.names].some((n) => n.startsWith('activation_'))).toBe(false);
      expect(plain.names.has('conv2d_act')).toBe(false);
      expect(plain.names.has('conv2d')).toBe(true);
      expectSame(fused, plain, name);
      expect(model.namedParameters().map(([n]) => n)).toEqual(names);
      if (typeof act === 'object' && act.shared) expect(names).toContain('act_params');
      model.dispose();
      x.dispose();
    });
  }

  it('Linear + Activation fuses too (learnable per-layer pssilu); the static default turns fusion off', async () => {
    const d = await testDevice();
    const net = new Sequential(new Flatten(), new Linear(d, 12, 9, { seed: 5 }), new Activation(d, { kind: 'pssilu' }), new Linear(d, 9, 4, { seed: 6 }));
    const x = E.Tensor.from(d, Float32Array.from(randArray(5 * 3 * 4, 61, -2, 2)), [5, 3, 4]);
    const fused = await run(net, x, true);
    expect(fused.names.has('linear_act')).toBe(true);
    net.fuse = false;
    const plain = await run(net, x, false);
    expect(plain.names.has('linear_act')).toBe(false);
    expect(plain.names.has('activation_pssilu')).toBe(true);
    expectSame(fused, plain, 'linear + pssilu');
    const fusedNow = (): boolean => E.scope(() => nodeNames(net.forward(x)).has('linear_act'));
    expect(fusedNow()).toBe(false);
    net.fuse = true;
    expect(fusedNow()).toBe(true);
    net.dispose();
  });

  it('surrogates: the fused path follows surrogateOn (SAT switches) exactly as the unfused one', async () => {
    const d = await testDevice();
    const model = new SmallCnn(d, { activation: { kind: 'relu', backward: { kind: 'softplus', params: [10] } }, seed: 4 });
    const x = mnistBatch(d);
    const onF = await run(model, x, true);
    const onU = await run(model, x, false);
    expectSame(onF, onU, 'surrogate on');
    setSurrogate(model, false);
    const offF = await run(model, x, true);
    const offU = await run(model, x, false);
    expectSame(offF, offU, 'surrogate off');
    expect(onF.names.has('conv2d_act') && offF.names.has('conv2d_act')).toBe(true);
    // Same forward (relu), different backward: the switch must reach the fused backward.
    expectClose(onF.logits, offF.logits, { atol: 0, rtol: 0 }, 'relu forward either way');
    const g0 = onF.grads[0]!;
    const g1 = offF.grads[0]!;
    let diff = 0;
    for (let i = 0; i < g0.length; i++) diff = Math.max(diff, Math.abs(g0[i]! - g1[i]!));
    expect(diff).toBeGreaterThan(1e-3);
    model.dispose();
    x.dispose();
  });

  it('observeActivations sees every pre-activation z of its model only (the fused path steps aside), until disposed', async () => {
    const d = await testDevice();
    const model = new SmallCnn(d, { activation: 'silu', seed: 5 });
    const x = mnistBatch(d);
    const seen: { layer: Activation; z: ArrayLike<number>; shape: number[] }[] = [];
    const pending: Promise<void>[] = [];
    const other = new SmallCnn(d, { activation: 'silu', seed: 6 });
    const stop = observeActivations(model, (layer, z) => {
      const k = E.keep(E.noGrad(() => E.clone(z)));
      const entry: (typeof seen)[number] = { layer, z: [], shape: [...z.shape] };
      seen.push(entry);
      pending.push(k.f32().then((v) => ((entry.z = v), k.dispose())));
    });
    const observed = await run(model, x, true);
    await Promise.all(pending);
    const otherRun = await run(other, x, true);
    expect(otherRun.names.has('conv2d_act')).toBe(true); // another model is neither observed nor unfused
    other.dispose();
    stop();
    stop(); // idempotent
    expect(seen.map((s) => s.shape)).toEqual([
      [BATCH, 32, 26, 26],
      [BATCH, 64, 12, 12],
    ]);
    expect(seen.map((s) => s.layer)).toEqual(activationLayers(model));
    expect(observed.names.has('conv2d_act')).toBe(false);
    // z of the first layer against the float64 conv of the same weights.
    const conv = model.net.layers[0] as unknown as { weight: E.Tensor; bias: E.Tensor };
    const xs = f32(await x.f32());
    const w = f32(await conv.weight.f32());
    const b = f32(await conv.bias.f32());
    const p = geom64([BATCH, 1, 28, 28], [32, 1, 3, 3]);
    const zabs = conv64AbsForward(xs, w, p);
    expectWithin(seen[0]!.z, conv64(xs, w, b, p), zabs.map((v) => EPS_Z * v + 1e-7), 'observed z');
    // Observing changes nothing: same outputs and gradients as the fused path.
    expect(seen.length).toBe(2);
    const fused = await run(model, x, true);
    expect(seen.length).toBe(2); // disposed: no longer called
    expect(fused.names.has('conv2d_act')).toBe(true);
    expectSame(observed, fused, 'observed vs fused');
    model.dispose();
    x.dispose();
  });

  it('eval under noGrad: fused, nothing recorded, same logits as unfused; memory flat over fused training steps', async () => {
    const d = await testDevice();
    const model = new SmallCnn(d, { activation: { kind: 'pssilu', shared: true }, seed: 6 });
    const x = mnistBatch(d);
    model.eval();
    const ev = async (fuse: boolean) => {
      model.net.fuse = fuse;
      return E.scopeAsync(async () => {
        const y = E.noGrad(() => model.forward(x));
        expect(y.node).toBeNull();
        return y.f32();
      });
    };
    expectClose(await ev(true), await ev(false), { atol: 1e-6, rtol: 1e-5 }, 'eval logits');
    model.train();
    model.net.fuse = true;
    const step = async () => {
      await E.scopeAsync(async () => {
        const y = model.forward(x);
        E.backward(E.sum(y));
        await y.f32();
      });
      model.zeroGrad();
    };
    await step();
    const before = d.stats().liveBuffers;
    for (let i = 0; i < 3; i++) await step();
    expect(d.stats().liveBuffers).toBe(before);
    model.dispose();
    x.dispose();
  });
});
