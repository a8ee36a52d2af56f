// Shared helpers of the activation GPU tests (test/engine/activation_*.test.ts and
// test/kernels/activation_gelu_ulp.test.ts): the
// per-kind tolerances against the float64 references, raw learnable values, the float64
// expected outputs (forward, dx, parameter gradients through the table's constraints),
// and runners that read a forward + backward back from the GPU.
//
// Tolerances (GPU f32 vs float64 ref on f32-rounded inputs; |got - want| <= atol +
// rtol*|want| elementwise; param grads: |got - want| <= ptol * sum_i |dy_i dp_i chain_i| + 1e-30,
// which covers f32 accumulation over up to 36465 terms plus per-element error):
//
//   kind         f: atol / rtol     dx: atol / rtol    ptol    why looser than a few ULP
//   relu         0 / 0              0 / 0              -       exact
//   softplus     1e-7 / 2e-6        1e-7 / 2e-6        1e-6    log1p series, sigmoid 2.4 ULP
//   psoftplus    1e-7 / 2e-6        1e-7 / 2e-6        1e-6    (same function)
//   silu         1e-7 / 2e-6        1e-7 / 2e-6        1e-6    x s(bx): product of 2 roundings + sigmoid
//   gelu         1e-7 / 5e-7        1e-7 / 5e-7        -       x Phi <= 2.3 ULP, Phi + x phi <= 2.9 ULP (dense sweeps)
//   gelu_tanh    1e-7 / 2e-6        1e-7 / 4e-6        -       cubic in u, sigmoid
//   elu          1e-7 / 2e-6        1e-7 / 2e-6        1e-6    expm1 2 ULP
//   celu         1e-7 / 2e-6        1e-7 / 2e-6        1e-6    x/a rounding enters exp
//   smooth_relu  1e-7 / 4e-6        1e-7 / 4e-6        2e-6    u = a x rounding (a = 400), log for u > 1
//   prelu        0 / 1e-7           0 / 1e-7           1e-6    one product
//   pssilu       1e-7 / 2e-6        1e-7 / 2e-6        1e-6    as silu, plus (s - b)/(1 - b)
//   mish         1e-7 / 5e-7        1e-7 / 4e-6        -       rational in e = exp(-|x|); f' has a zero at -1.19
//
// Measured on lavapipe (KINKLESS_VERBOSE=1): elementwise errors reach at most 0.6 of
// these bounds (pssilu forward), param grads at most 1.3e-8 of sum |terms|. atol 1e-7
// absorbs results near 0 (e.g. f(x) ~ 1e-9 deep in a tail).
import { expectClose, expectNoNaN, f32, type Tol } from './compare.ts';
import * as E from '../../engine/index.ts';
import { activation, activationBackwardFromZ, type ActivationSpec } from '../../engine/ops/activation.ts';
import { ACTIVATIONS, ACTIVATION_KINDS, constrain, unconstrain as unconstrainParam, type ActivationKind } from '../../kernels/activations.ts';

export const VERBOSE = process.env.KINKLESS_VERBOSE === '1';
export const log = (...a: unknown[]) => VERBOSE && console.log(...a);

export interface KindTol {
  f: Tol;
  df: Tol;
  p: number;
}
export const T2: Tol = { atol: 1e-7, rtol: 2e-6 };
export const T4: Tol = { atol: 1e-7, rtol: 4e-6 };
export const T05: Tol = { atol: 1e-7, rtol: 5e-7 };
export const TOL: Record<ActivationKind, KindTol> = {
  relu: { f: { atol: 0, rtol: 0 }, df: { atol: 0, rtol: 0 }, p: 0 },
  softplus: { f: T2, df: T2, p: 1e-6 },
  psoftplus: { f: T2, df: T2, p: 1e-6 },
  silu: { f: T2, df: T2, p: 1e-6 },
  gelu: { f: T05, df: T05, p: 0 },
  gelu_tanh: { f: T2, df: T4, p: 0 },
  elu: { f: T2, df: T2, p: 1e-6 },
  celu: { f: T2, df: T2, p: 1e-6 },
  smooth_relu: { f: T4, df: T4, p: 2e-6 },
  prelu: { f: { atol: 0, rtol: 1e-7 }, df: { atol: 0, rtol: 1e-7 }, p: 1e-6 },
  pssilu: { f: T2, df: T2, p: 1e-6 },
  mish: { f: T05, df: T4, p: 0 },
};

/** Raw learnable values per kind with params (some negative: the abs chain rule flips their gradient; smooth_relu's a = w^2 = 400). */
export const RAW_VALUES: Partial<Record<ActivationKind, number[]>> = {
  softplus: [2.5],
  psoftplus: [-0.7],
  silu: [1.7],
  elu: [-0.7],
  celu: [1.3],
  smooth_relu: [-20],
  prelu: [0.25],
  pssilu: [-1.2, 0.1],
};
export const RAW = (kind: ActivationKind): number[] => RAW_VALUES[kind] ?? [];

/** Effective f32 values of raw params of `kind` under the table's constraints (as the shader computes them). */
export const eff = (kind: ActivationKind, raw: number[]) => f32(raw.map((v, i) => constrain(ACTIVATIONS[kind].params[i]!.constraint, Math.fround(v))));
/** d effective / d raw per param (the constraint's chain rule). */
export const chainOf = (kind: ActivationKind, raw: number[]) =>
  raw.map((v, i) => {
    const c = ACTIVATIONS[kind].params[i]!.constraint;
    return c === 'abs' ? Math.sign(v) : c === 'square' ? 2 * Math.fround(v) : 1;
  });

export function paramTensor(d: E.Device, raw: number[]): E.Tensor | undefined {
  if (!raw.length) return undefined;
  const t = E.Tensor.from(d, raw, [raw.length]);
  t.requiresGrad = true;
  return t;
}

/** float64 expected outputs for x (f32-rounded), dy and effective params p. */
export function ref(kind: ActivationKind, x: Float64Array, dy: Float64Array, p: number[], sgn: number[]) {
  const def = ACTIVATIONS[kind];
  const y = x.map((v) => def.f(v, p));
  const dx = x.map((v, i) => dy[i]! * def.df(v, p));
  const P = def.paramNames.length;
  const dp = new Array<number>(P).fill(0);
  const mag = new Array<number>(P).fill(0);
  for (let i = 0; i < x.length; i++) {
    const g = def.dp(x[i]!, p);
    for (let k = 0; k < P; k++) {
      dp[k]! += dy[i]! * g[k]!;
      mag[k]! += Math.abs(dy[i]! * g[k]! * sgn[k]!);
    }
  }
  return { y, dx, dp: dp.map((v, k) => v * sgn[k]!), mag };
}

export function expectParamGrad(got: ArrayLike<number>, want: number[], mag: number[], ptol: number, what: string): void {
  expectNoNaN(got, what);
  for (let k = 0; k < want.length; k++) {
    const err = Math.abs(got[k]! - want[k]!);
    const bound = ptol * mag[k]! + 1e-30;
    log(`${what}[${k}]: got ${got[k]} want ${want[k]} err/sum|terms| = ${(err / (mag[k]! || 1)).toExponential(2)}`);
    if (!(err <= bound)) throw new Error(`${what}[${k}]: got ${got[k]}, want ${want[k]} (err ${err}, bound ${bound})`);
  }
}

export function maxRatio(got: ArrayLike<number>, want: ArrayLike<number>, tol: Tol): number {
  let m = 0;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i]! - want[i]!);
    const b = (tol.atol ?? 0) + (tol.rtol ?? 0) * Math.abs(want[i]!);
    m = Math.max(m, d === 0 ? 0 : b === 0 ? Infinity : d / b);
  }
  return m;
}

/** Runs forward and backward (autograd) for x with learnable params; returns everything read back. */
export async function runGpu(d: E.Device, kind: ActivationKind, x: Float64Array, dy: Float64Array, raw: number[], extra: Partial<ActivationSpec> = {}, vec4?: boolean) {
  const X = E.Tensor.from(d, Float32Array.from(x), [x.length]);
  X.requiresGrad = true;
  const pt = paramTensor(d, raw);
  const Y = activation(X, { kind, raw: pt, ...extra }, { vec4 });
  const wrt = pt ? [X, pt] : [X];
  const [gx, gp] = E.grad(Y, wrt, E.Tensor.from(d, Float32Array.from(dy), [x.length]));
  const out = { y: await Y.f32(), dx: await gx!.f32(), dp: gp ? await gp.f32() : new Float32Array(0) };
  for (const t of [X, Y, gx, gp, pt]) t?.dispose();
  return out;
}

export function checkAll(kind: ActivationKind, got: Awaited<ReturnType<typeof runGpu>>, x: Float64Array, dy: Float64Array, raw: number[], tol: KindTol, what: string) {
  const p = eff(kind, raw);
  const r = ref(kind, x, dy, [...p], chainOf(kind, raw));
  log(`${what}: f err/tol ${maxRatio(got.y, r.y, tol.f).toFixed(3)}, dx err/tol ${maxRatio(got.dx, r.dx, tol.df).toFixed(3)}`);
  expectClose(got.y, r.y, tol.f, `${what} forward`);
  expectClose(got.dx, r.dx, tol.df, `${what} dx`);
  if (raw.length) expectParamGrad(got.dp, r.dp, r.mag, tol.p, `${what} dparams`);
}


/** f and f' on the GPU at the given points, host-number params. */
export async function fAndDf(d: E.Device, spec: ActivationSpec, xs: number[]): Promise<{ f: Float32Array; df: Float32Array }> {
  const X = E.Tensor.from(d, xs, [xs.length]);
  const Y = activation(X, spec);
  const ones = E.Tensor.from(d, xs.map(() => 1), [xs.length]);
  const { dz } = activationBackwardFromZ(X, ones, spec);
  const r = { f: await Y.f32(), df: await dz!.f32() };
  for (const t of [X, Y, ones, dz]) t?.dispose();
  return r;
}

/** Inputs of the extreme-input tests: 0, tiny, around exp's overflow, huge, both signs. */
export const EXTREME_BASE = [0, 1e-30, 30, 100, 400, 1e30, 88, 89, 1e-6, 1, 1e10];

/**
 * Runs `run` (an activation forward + backward path under test) on EXTREME_BASE and its
 * negatives for every kind, with the test raw params and the defaults, and checks y, dx
 * and the param grads against the float64 reference (no NaN, per-kind tolerances).
 */
export async function checkExtremes(d: E.Device, run: (d: E.Device, kind: ActivationKind, x: Float64Array, dy: Float64Array, raw: number[]) => Promise<{ y: ArrayLike<number>; dx: ArrayLike<number>; dp: ArrayLike<number> }>): Promise<void> {
  const x = f32([...EXTREME_BASE, ...EXTREME_BASE.map((v) => -v)]);
  const dy = f32(Array.from(x, (_, i) => (i % 3 === 0 ? 1 : i % 3 === 1 ? -0.5 : 0.25)));
  for (const kind of ACTIVATION_KINDS) {
    const defaultRaw = ACTIVATIONS[kind].params.map((q) => unconstrainParam(q.constraint, q.init || 0.25));
    for (const raw of [RAW(kind), defaultRaw]) {
      const got = await run(d, kind, x, dy, raw);
      expectNoNaN(got.y, `${kind} y`);
      expectNoNaN(got.dx, `${kind} dx`);
      const r = ref(kind, x, dy, [...eff(kind, raw)], chainOf(kind, raw));
      for (const [g, w, tol, what] of [
        [got.y, r.y, TOL[kind].f, 'y'],
        [got.dx, r.dx, TOL[kind].df, 'dx'],
      ] as const) {
        for (let i = 0; i < x.length; i++) {
          const bound = (tol.atol ?? 0) + (tol.rtol ?? 0) * Math.abs(w[i]!) + 1e-7 * Math.abs(x[i]!) * (kind === 'relu' ? 0 : 1);
          if (!(Math.abs(g[i]! - w[i]!) <= bound)) throw new Error(`${kind} [${raw}] ${what} at x = ${x[i]}: got ${g[i]}, want ${w[i]}`);
        }
      }
      if (raw.length) expectParamGrad(got.dp, r.dp, r.mag, TOL[kind].p, `${kind} [${raw}] extreme dparams`);
    }
  }
}
