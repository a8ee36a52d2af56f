// The activation table: for each activation kind, its parameters (defaults, learnable
// parametrisation, domain), WGSL f / df/dx / df/dparam snippets (f32, overflow-safe) and
// the matching float64 references. Formulas and conventions: docs/activations.md.
// Snippets call the k_ helpers of wgsl_math.ts; the caller concatenates wgslMath() once.
//
// Parameters are the EFFECTIVE values (after the abs/square reparametrisation of learnable
// raw values, applied by the kernels of activation_kernels.ts together with its chain
// rule). In WGSL they arrive as p: vec2<f32>, first parameter in p.x, second in p.y; dp
// returns vec2<f32> in the same order (zeros for unused slots).

import {
  expm1MinusXExp64,
  normalCdf64,
  normalPdf64,
  sigmoid64,
  softplus64,
  xMinusLog1p64,
} from './reference_math.ts';

// The constraint helpers live in activation_constraints.ts (re-exported here).
export { constrain, paramDomainError, unconstrain } from './activation_constraints.ts';

// The types of the table (ParamConstraint, ActivationParam, ActivationDef) live in
// activation_types.ts (re-exported here).
import type { ActivationDef, ActivationParam } from './activation_types.ts';
export type { ActivationDef, ActivationParam, ParamConstraint } from './activation_types.ts';
import type { ParamConstraint } from './activation_types.ts';

type DefInput = Omit<ActivationDef, 'paramNames' | 'defaults'>;

/** Fills the derived fields (paramNames, defaults) of a table entry. */
function define(d: DefInput): ActivationDef {
  if (d.params.length > 2) throw new Error(`activation ${d.kind}: at most 2 parameters, got ${d.params.length}`);
  return Object.freeze({ ...d, paramNames: d.params.map((p) => p.name), defaults: d.params.map((p) => p.init) });
}

/** A positive scale parameter (f divides by it); learnable as |raw|. */
const scaleParam = (name: string, init: number): ActivationParam => ({
  name,
  init,
  constraint: 'abs',
  domain: { gt: 0, why: `f divides by ${name}` },
});

// NOTE: x is clamped to [-1e30, 1e30] before it is multiplied by a parameter, so that
// a*x stays finite in f32 for any a up to ~1e8 (a = 1e3 gives 1e33 < 3.4e38). Beyond
// |x| = 1e30 every saturating term (sigmoid, exp) is exactly 0 or 1 anyway.
const XCLAMP = 'clamp(x, -1e30, 1e30)';

// NOTE: the SiLU/PSSiLU parameter derivative x^2 s(z) s(-z), z = a x, is computed as
// xc * (xc * s s') and forced to 0 for |z| > 88: s s' <= e^-88 there, and the explicit
// branch rules out inf * 0 even where exp misbehaves in its far tail.
const SIG_TAIL = '88.0';

function checkPrefix(prefix: string): void {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(prefix) || prefix.startsWith('__')) {
    throw new Error(`activation WGSL prefix "${prefix}" is not a valid WGSL identifier`);
  }
}

// NOTE: NaN in gives NaN out (f, df/dx and df/dp; docs/activations-ieee.md). WGSL's
// min/max/clamp/select may turn a NaN into a number and implementations may assume NaN is
// absent from float arithmetic, so each function first tests the bits (an integer test no
// float assumption can remove) and returns x itself.
const IS_NAN_X = '(bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u';

/**
 * Builds the four WGSL functions from their bodies (which see x: f32, p: vec2<f32>).
 * `fdf` returns vec2(f, df/dx) sharing the work of both; when omitted, _fdf calls _f and _df.
 * `all` returns vec4(f, df/dx, df/dp) likewise; when omitted, _fdfdp calls _fdf and _dp.
 * NOTE: a shared body must compute each value with the same operations as f and df
 * alone (same helpers, same order), so the fused value-and-grad kernel matches the
 * separate forward and backward kernels.
 */
function wgslFns(prefix: string, kind: string, f: string, df: string, dp: string, fdf?: string, all?: string): string {
  checkPrefix(prefix);
  return `
// activation: ${kind}
fn ${prefix}_f(x: f32, p: vec2<f32>) -> f32 {
  if (${IS_NAN_X}) { return x; }
${f}
}
fn ${prefix}_df(x: f32, p: vec2<f32>) -> f32 {
  if (${IS_NAN_X}) { return x; }
${df}
}
fn ${prefix}_dp(x: f32, p: vec2<f32>) -> vec2<f32> {
  if (${IS_NAN_X}) { return vec2<f32>(x, x); }
${dp}
}
fn ${prefix}_fdf(x: f32, p: vec2<f32>) -> vec2<f32> {
  if (${IS_NAN_X}) { return vec2<f32>(x, x); }
${fdf ?? `  return vec2<f32>(${prefix}_f(x, p), ${prefix}_df(x, p));`}
}
fn ${prefix}_fdfdp(x: f32, p: vec2<f32>) -> vec4<f32> {
  if (${IS_NAN_X}) { return vec4<f32>(x, x, x, x); }
${all ?? `  return vec4<f32>(${prefix}_fdf(x, p), ${prefix}_dp(x, p));`}
}
`;
}

const ZERO2 = '  return vec2<f32>(0.0, 0.0);';

// NOTE: x * s where s is a factor that reaches exactly 0 in a tail (a sigmoid, Phi, phi,
// tanh(softplus)): at x = +-inf that product is inf * 0 = NaN, but the limit is 0 (the
// factor decays exponentially), so an exact-0 factor gives 0. `s` must be a name.
const mul0 = (x: string, s: string): string => `select(${x} * ${s}, 0.0, ${s} == 0.0)`;
// Bits of +inf (WGSL has no infinity literal).
const IS_POS_INF_X = 'bitcast<u32>(x) == 0x7f800000u';

// ---------------------------------------------------------------------------------
// ReLU: max(0, x); f'(0) = 0 (PyTorch and TF convention).
const relu = define({
  kind: 'relu',
  params: [],
  learnable: false,
  wgsl: (prefix) =>
    wgslFns(prefix, 'relu', '  return max(x, 0.0);', '  return select(0.0, 1.0, x > 0.0);', ZERO2),
  f: (x) => (x > 0 ? x : 0),
  df: (x) => (x > 0 ? 1 : 0),
  dp: () => [],
});

// ---------------------------------------------------------------------------------
// Softplus(a) = softplus(a x)/a, a > 0. PSoftplus (PAF) is the same function with a
// learnable a: -(1/a) logsigmoid(-a x).
// NOTE: f = max(x, 0) + log1p(exp(-|z|))/a (z = a x) instead of softplus(z)/a: same
// value, but the large linear part never goes through a*x and back. df = s(z).
// df/da = -(|z| s(-|z|) + log1p(exp(-|z|)))/a^2 (cancellation-free, always <= 0),
// evaluated as -(|x| s(-|z|) + log1p(e)/a)/a so no a^2 or |z|*tiny product appears.
const SOFTPLUS_WGSL_F = `  let a = p.x;
  let z = a * ${XCLAMP};
  return max(x, 0.0) + k_log1p01(k_exp_neg(-abs(z))) / a;`;
const SOFTPLUS_WGSL_DF = `  let z = p.x * ${XCLAMP};
  return k_sigmoid(z);`;
// (f, df) from one e = exp(-|z|): df = k_sigmoid(z) written out on that e.
const SOFTPLUS_WGSL_FDF = `  let a = p.x;
  let z = a * ${XCLAMP};
  let e = k_exp_neg(-abs(z));
  let d = 1.0 + e;
  return vec2<f32>(max(x, 0.0) + k_log1p01(e) / a, select(e / d, 1.0 / d, z >= 0.0));`;
const SOFTPLUS_WGSL_ALL = `  let a = p.x;
  let xc = ${XCLAMP};
  let z = a * xc;
  let e = k_exp_neg(-abs(z));
  let d = 1.0 + e;
  let l = k_log1p01(e);
  return vec4<f32>(max(x, 0.0) + l / a, select(e / d, 1.0 / d, z >= 0.0), -(abs(xc) * (e / d) + l / a) / a, 0.0);`;
const SOFTPLUS_WGSL_DP = `  let a = p.x;
  let xc = ${XCLAMP};
  let e = k_exp_neg(-abs(a * xc));
  let s_neg = e / (1.0 + e);
  return vec2<f32>(-(abs(xc) * s_neg + k_log1p01(e) / a) / a, 0.0);`;

function softplusF(x: number, p: number[]): number {
  const a = p[0]!;
  return Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(a * x))) / a;
}
function softplusDf(x: number, p: number[]): number {
  return sigmoid64(p[0]! * x);
}
function softplusDp(x: number, p: number[]): number[] {
  const a = p[0]!;
  const e = Math.exp(-Math.abs(a * x));
  const sNeg = e / (1 + e);
  return [-(Math.abs(x) * sNeg + Math.log1p(e) / a) / a];
}

function makeSoftplus(kind: 'softplus' | 'psoftplus', learnable: boolean): ActivationDef {
  return define({
    kind,
    params: [scaleParam('a', 1)],
    learnable,
    wgsl: (prefix) => wgslFns(prefix, kind, SOFTPLUS_WGSL_F, SOFTPLUS_WGSL_DF, SOFTPLUS_WGSL_DP, SOFTPLUS_WGSL_FDF, SOFTPLUS_WGSL_ALL),
    f: softplusF,
    df: softplusDf,
    dp: softplusDp,
  });
}

// ---------------------------------------------------------------------------------
// SiLU / Swish(b) = x s(b x); b = 1 is SiLU.
// df = s(z) + z s(z) s(-z), z = b x. d/db = x^2 s(z) s(-z).
const silu = define({
  kind: 'silu',
  params: [{ name: 'b', init: 1, constraint: 'abs' }],
  learnable: false,
  wgsl: (prefix) =>
    wgslFns(
      prefix,
      'silu',
      `  let z = p.x * ${XCLAMP};
  let s = k_sigmoid(z);
  return ${mul0('x', 's')};`,
      `  let z = p.x * ${XCLAMP};
  let s = k_sigmoid2(z);
  return s.x + z * (s.x * s.y);`,
      `  let xc = ${XCLAMP};
  let z = p.x * xc;
  if (abs(z) > ${SIG_TAIL}) {
    return vec2<f32>(0.0, 0.0);
  }
  let s = k_sigmoid2(z);
  return vec2<f32>(xc * (xc * (s.x * s.y)), 0.0);`,
      // (f, df) from one k_sigmoid2 (its .x is k_sigmoid(z) bit for bit).
      `  let z = p.x * ${XCLAMP};
  let s = k_sigmoid2(z);
  let sx = s.x;
  return vec2<f32>(${mul0('x', 'sx')}, s.x + z * (s.x * s.y));`,
      // (f, df, df/db): the branch of _dp as a select (both sides finite or the same inf).
      `  let xc = ${XCLAMP};
  let z = p.x * xc;
  let s = k_sigmoid2(z);
  let sx = s.x;
  let db = select(xc * (xc * (s.x * s.y)), 0.0, abs(z) > ${SIG_TAIL});
  return vec4<f32>(${mul0('x', 'sx')}, s.x + z * (s.x * s.y), db, 0.0);`,
    ),
  f: (x, p) => x * sigmoid64(p[0]! * x),
  df: (x, p) => {
    const z = p[0]! * x;
    const s = sigmoid64(z);
    return s + z * (s * sigmoid64(-z));
  },
  dp: (x, p) => {
    const z = p[0]! * x;
    return [x * (x * (sigmoid64(z) * sigmoid64(-z)))];
  },
});

// ---------------------------------------------------------------------------------
// GELU (exact) = x Phi(x); df = Phi(x) + x phi(x).
// NOTE: f alone is k_gelu_f; x Phi, Phi and phi for df and _fdf come from k_gelu_fdf (both
// wgsl_gelu_forward.ts): accurate in relative terms in the lower tail (1 + erf(x/sqrt2)
// would cancel there), x Phi rounded once even where Phi is subnormal, one exp(-x^2/2) and
// one 4-piece R for all three. f and the value of _fdf are the same expression, so the
// same bits (test/kernels/activation_gelu_grad_dense.test.ts asserts it).
const gelu = define({
  kind: 'gelu',
  params: [],
  learnable: false,
  wgsl: (prefix) =>
    wgslFns(
      prefix,
      'gelu',
      `  return k_gelu_f(x);`,
      `  let g = k_gelu_fdf(x);
  let d = g.z;
  return g.y + ${mul0('x', 'd')};`,
      ZERO2,
      // x Phi, Phi and phi from one exp(-x^2/2) (k_gelu_fdf).
      `  let g = k_gelu_fdf(x);
  let d = g.z;
  return vec2<f32>(g.x, g.y + ${mul0('x', 'd')});`,
    ),
  f: (x) => x * normalCdf64(x),
  df: (x) => normalCdf64(x) + x * normalPdf64(x),
  dp: () => [],
});

// ---------------------------------------------------------------------------------
// GELU (tanh form, SAT's code) = x s(2u), u = sqrt(2/pi)(x + 0.044715 x^3), using
// 1/2 (1 + tanh u) = s(2u) exactly (WGSL tanh is loosely specified).
// df = s(2u) + 2x s(2u) s(-2u) sqrt(2/pi)(1 + 0.134145 x^2).
// NOTE: x is clamped to [-20, 20] inside u (x^3 overflows f32 beyond 7e12): at |x| = 20,
// |2u| = 602, so s(2u) is already exactly 0 or 1 and the derivative term exactly 0.
const GELU_TANH_2K = '1.5957691216057308'; // 2 sqrt(2/pi)
const GELU_TANH_2K_64 = 2 * Math.sqrt(2 / Math.PI);
const gelu_tanh = define({
  kind: 'gelu_tanh',
  params: [],
  learnable: false,
  wgsl: (prefix) =>
    wgslFns(
      prefix,
      'gelu_tanh',
      `  let xc = clamp(x, -20.0, 20.0);
  let z = ${GELU_TANH_2K} * (xc + 0.044715 * xc * xc * xc);
  let s = k_sigmoid(z);
  return ${mul0('x', 's')};`,
      `  let xc = clamp(x, -20.0, 20.0);
  let z = ${GELU_TANH_2K} * (xc + 0.044715 * xc * xc * xc);
  let s = k_sigmoid2(z);
  return s.x + xc * (s.x * s.y) * ${GELU_TANH_2K} * (1.0 + 0.134145 * xc * xc);`,
      ZERO2,
      `  let xc = clamp(x, -20.0, 20.0);
  let z = ${GELU_TANH_2K} * (xc + 0.044715 * xc * xc * xc);
  let s = k_sigmoid2(z);
  let sx = s.x;
  return vec2<f32>(${mul0('x', 'sx')}, s.x + xc * (s.x * s.y) * ${GELU_TANH_2K} * (1.0 + 0.134145 * xc * xc));`,
    ),
  f: (x) => {
    const xc = Math.min(Math.max(x, -40), 40); // |2u| > 4600 beyond: exactly 0/1 in f64
    return x * sigmoid64(GELU_TANH_2K_64 * (xc + 0.044715 * xc * xc * xc));
  },
  df: (x) => {
    const xc = Math.min(Math.max(x, -40), 40);
    const z = GELU_TANH_2K_64 * (xc + 0.044715 * xc * xc * xc);
    const s = sigmoid64(z);
    const sp = s * sigmoid64(-z);
    return s + xc * sp * GELU_TANH_2K_64 * (1 + 0.134145 * xc * xc);
  },
  dp: () => [],
});

// ---------------------------------------------------------------------------------
// ELU(a) = x for x > 0, a expm1(x) for x <= 0. df = 1 for x > 0, a exp(x) for x <= 0,
// so f'(0) = a (PyTorch). d/da = expm1(x) for x <= 0, else 0.
const elu = define({
  kind: 'elu',
  params: [{ name: 'a', init: 1, constraint: 'abs' }],
  learnable: false,
  wgsl: (prefix) =>
    wgslFns(
      prefix,
      'elu',
      `  if (x > 0.0) {
    return x;
  }
  return p.x * k_expm1_neg(x);`,
      `  if (x > 0.0) {
    return 1.0;
  }
  return p.x * k_exp_neg(x);`,
      `  if (x > 0.0) {
    return vec2<f32>(0.0, 0.0);
  }
  return vec2<f32>(k_expm1_neg(x), 0.0);`,
    ),
  f: (x, p) => (x > 0 ? x : p[0]! * Math.expm1(x)),
  df: (x, p) => (x > 0 ? 1 : p[0]! * Math.exp(x)),
  dp: (x) => [x > 0 ? 0 : Math.expm1(x)],
});

// ---------------------------------------------------------------------------------
// CELU(a) = x for x > 0, a expm1(x/a) for x <= 0. df = exp(x/a) for x <= 0 (f'(0) = 1).
// d/da = exp(y) - 1 - y exp(y), y = x/a, for x <= 0 (cancellation-free helper).
// NOTE: y = x/a is clamped to >= -200 (exp(y) is exactly 0 well before), which also
// keeps x/a finite for tiny a.
const CELU_Y = `  let y = max(max(x, -1e30) / p.x, -200.0);`;
const celu = define({
  kind: 'celu',
  params: [scaleParam('a', 1)],
  learnable: false,
  wgsl: (prefix) =>
    wgslFns(
      prefix,
      'celu',
      `  if (x > 0.0) {
    return x;
  }
${CELU_Y}
  return p.x * k_expm1_neg(y);`,
      `  if (x > 0.0) {
    return 1.0;
  }
${CELU_Y}
  return k_exp_neg(y);`,
      `  if (x > 0.0) {
    return vec2<f32>(0.0, 0.0);
  }
${CELU_Y}
  return vec2<f32>(k_expm1_minus_xexp(y), 0.0);`,
    ),
  f: (x, p) => (x > 0 ? x : p[0]! * Math.expm1(x / p[0]!)),
  df: (x, p) => (x > 0 ? 1 : Math.exp(x / p[0]!)),
  dp: (x, p) => [x > 0 ? 0 : expm1MinusXExp64(x / p[0]!)],
});

// ---------------------------------------------------------------------------------
// SmoothReLU(a) (SAT) = x - log1p(a x)/a for x >= 0, 0 below; a = w^2 (w init 20).
// With u = a x: f = (u - log1p(u))/a, df = u/(1+u), d/da = (log1p(u) - u/(1+u))/a^2.
// NOTE: u - log1p(u) ~ u^2/2 near 0: k_x_minus_log1p avoids the cancellation. For d/da
// with u <= 1, log1p(u) - u/(1+u) = u^2/(1+u) - (u - log1p(u)) (at most a factor-2
// cancellation); for u > 1 the direct form has no cancellation and avoids squaring u.
// The division by a^2 is done as two divisions by a.
const SRELU_U = `  let u = p.x * min(x, 1e30);`;
const smooth_relu = define({
  kind: 'smooth_relu',
  params: [{ ...scaleParam('a', 400), constraint: 'square' }],
  learnable: true,
  wgsl: (prefix) =>
    wgslFns(
      prefix,
      'smooth_relu',
      `  if (x <= 0.0) {
    return 0.0;
  }
  if (x > 1e30) {
    return x; // log1p(a x)/a < 72/a is far below half an ulp of x here
  }
${SRELU_U}
  return k_x_minus_log1p(u) / p.x;`,
      `  if (x <= 0.0) {
    return 0.0;
  }
${SRELU_U}
  return u / (1.0 + u);`,
      `  if (x <= 0.0) {
    return vec2<f32>(0.0, 0.0);
  }
  if (${IS_POS_INF_X}) {
    return vec2<f32>(x, 0.0); // log1p(a x)/a^2 grows without bound
  }
${SRELU_U}
  let r = u / (1.0 + u);
  var g: f32;
  if (u <= 1.0) {
    g = u * r - k_x_minus_log1p(u);
  } else {
    g = log(1.0 + u) - r;
  }
  return vec2<f32>(g / p.x / p.x, 0.0);`,
    ),
  f: (x, p) => (x <= 0 ? 0 : xMinusLog1p64(p[0]! * x) / p[0]!),
  df: (x, p) => {
    if (x <= 0) return 0;
    const u = p[0]! * x;
    return u / (1 + u);
  },
  dp: (x, p) => {
    if (x <= 0) return [0];
    const a = p[0]!;
    const u = a * x;
    const r = u / (1 + u);
    const g = u <= 1 ? u * r - xMinusLog1p64(u) : Math.log1p(u) - r;
    return [g / a / a];
  },
});

// ---------------------------------------------------------------------------------
// PReLU(a) = x for x > 0, a x otherwise; df = 1 for x > 0, a otherwise (f'(0) = a,
// PyTorch). d/da = x for x <= 0, else 0. PAF initialises a = 0 (starts as ReLU).
const prelu = define({
  kind: 'prelu',
  params: [{ name: 'a', init: 0, constraint: 'none' }],
  learnable: true,
  wgsl: (prefix) =>
    wgslFns(
      prefix,
      'prelu',
      `  let a = p.x;
  return select(${mul0('x', 'a')}, x, x > 0.0);`,
      `  return select(p.x, 1.0, x > 0.0);`,
      `  return vec2<f32>(select(x, 0.0, x > 0.0), 0.0);`,
    ),
  f: (x, p) => (x > 0 ? x : p[0]! * x),
  df: (x, p) => (x > 0 ? 1 : p[0]!),
  dp: (x) => [x > 0 ? 0 : x],
});

// ---------------------------------------------------------------------------------
// PSSiLU(a, b) (PAF's pssilu2) = x (s(a x) - b)/(1 - b), with a = |a_raw|, b = |b_raw|
// (the layer applies the abs chain rule). df = (s(z) - b + z s(z) s(-z))/(1 - b),
// d/da = x^2 s(z) s(-z)/(1 - b), d/db = -x s(-z)/(1 - b)^2, z = a x.
const pssilu = define({
  kind: 'pssilu',
  params: [
    { name: 'a', init: 1, constraint: 'abs' },
    { name: 'b', init: 1e-8, constraint: 'abs', domain: { lt: 1, why: 'f divides by 1 - b' } },
  ],
  learnable: true,
  wgsl: (prefix) =>
    wgslFns(
      prefix,
      'pssilu',
      `  let z = p.x * ${XCLAMP};
  let m = k_sigmoid(z) - p.y;
  return ${mul0('x', 'm')} / (1.0 - p.y);`,
      `  let z = p.x * ${XCLAMP};
  let s = k_sigmoid2(z);
  return (s.x - p.y + z * (s.x * s.y)) / (1.0 - p.y);`,
      `  let xc = ${XCLAMP};
  let z = p.x * xc;
  let s = k_sigmoid2(z);
  let omb = 1.0 - p.y;
  var da: f32 = 0.0;
  if (abs(z) <= ${SIG_TAIL}) {
    da = xc * (xc * (s.x * s.y)) / omb;
  }
  let sn = s.y;
  let db = -${mul0('x', 'sn')} / omb / omb;
  return vec2<f32>(da, db);`,
      `  let z = p.x * ${XCLAMP};
  let s = k_sigmoid2(z);
  let m = s.x - p.y;
  return vec2<f32>(${mul0('x', 'm')} / (1.0 - p.y), (s.x - p.y + z * (s.x * s.y)) / (1.0 - p.y));`,
      `  let xc = ${XCLAMP};
  let z = p.x * xc;
  let s = k_sigmoid2(z);
  let omb = 1.0 - p.y;
  let m = s.x - p.y;
  let sn = s.y;
  let da = select(xc * (xc * (s.x * s.y)) / omb, 0.0, abs(z) > ${SIG_TAIL});
  return vec4<f32>(${mul0('x', 'm')} / omb, (s.x - p.y + z * (s.x * s.y)) / omb, da, -${mul0('x', 'sn')} / omb / omb);`,
    ),
  f: (x, p) => (x * (sigmoid64(p[0]! * x) - p[1]!)) / (1 - p[1]!),
  df: (x, p) => {
    const z = p[0]! * x;
    const s = sigmoid64(z);
    return (s - p[1]! + z * (s * sigmoid64(-z))) / (1 - p[1]!);
  },
  dp: (x, p) => {
    const z = p[0]! * x;
    const omb = 1 - p[1]!;
    const sNeg = sigmoid64(-z);
    return [(x * (x * (sigmoid64(z) * sNeg))) / omb, -(x * sNeg) / omb / omb];
  },
});

// ---------------------------------------------------------------------------------
// Mish = x tanh(softplus(x)); df = t + x (1 - t^2) s(x), t = tanh(softplus(x)).
// NOTE: with n = e^{2x} + 2e^x, t = n/(n + 2) and 1 - t^2 = 4(n + 1)/(n + 2)^2, written in
// e = exp(-|x|) <= 1 so nothing overflows and WGSL's loosely specified tanh is not used:
//   x >= 0: t = (1 + 2e)/d, d = 1 + 2e + 2e^2; x (1 - t^2) s(x) = 4 x e^2 (1 + e)/d^2
//   x <  0: t = e (e + 2)/d, d = e^2 + 2e + 2;  x (1 - t^2) s(x) = 4 x e (1 + e)/d^2
// x is clamped to +-1e30 in the products (at |x| = inf, e = 0 would give inf * 0), and
// x e is formed first (|x e| <= 1/e): no intermediate overflows or needs a subnormal.
const MISH_PARTS = `  let e = k_exp_neg(-abs(x));
  let xc = ${XCLAMP};
  var t: f32;
  var g: f32;
  if (x >= 0.0) {
    let d = 1.0 + 2.0 * e * (1.0 + e);
    t = (1.0 + 2.0 * e) / d;
    g = 4.0 * ((xc * e) * e) * (1.0 + e) / (d * d);
  } else {
    let d = 2.0 + e * (e + 2.0);
    t = e * (e + 2.0) / d;
    g = 4.0 * (xc * e) * (1.0 + e) / (d * d);
  }`;
const mish = define({
  kind: 'mish',
  params: [],
  learnable: false,
  wgsl: (prefix) =>
    wgslFns(prefix, 'mish', `${MISH_PARTS}\n  return ${mul0('x', 't')};`, `${MISH_PARTS}\n  return t + g;`, ZERO2, `${MISH_PARTS}\n  return vec2<f32>(${mul0('x', 't')}, t + g);`),
  // float64: tanh(softplus(x)) is accurate in relative terms (softplus64 has no
  // cancellation) and 1 - t^2 = sech(sp)^2 via cosh, which never cancels.
  f: (x) => x * Math.tanh(softplus64(x)),
  df: (x) => {
    const sp = softplus64(x);
    const c = Math.cosh(sp);
    return Math.tanh(sp) + (x * sigmoid64(x)) / (c * c);
  },
  dp: () => [],
});

// The table. Adding an activation = one entry here (its kind name is the key).
const TABLE = {
  relu,
  softplus: makeSoftplus('softplus', false),
  psoftplus: makeSoftplus('psoftplus', true),
  silu,
  gelu,
  gelu_tanh,
  elu,
  celu,
  smooth_relu,
  prelu,
  pssilu,
  mish,
} satisfies Record<string, ActivationDef>;

export type ActivationKind = keyof typeof TABLE;

export const ACTIVATIONS: Readonly<Record<ActivationKind, ActivationDef>> = Object.freeze(TABLE);

/** Every kind, in table order. */
export const ACTIVATION_KINDS: ActivationKind[] = Object.keys(TABLE) as ActivationKind[];

/** Whether `kind` names an activation of the table. */
export function isActivationKind(kind: unknown): kind is ActivationKind {
  return typeof kind === 'string' && Object.prototype.hasOwnProperty.call(TABLE, kind);
}

/** Looks up an activation by name; throws naming the bad kind and the valid ones. */
export function activationDef(kind: string): ActivationDef {
  if (isActivationKind(kind)) return ACTIVATIONS[kind];
  throw new Error(`unknown activation kind "${kind}"; valid kinds: ${ACTIVATION_KINDS.join(', ')}`);
}

/**
 * The learnable parametrisation of parameter `param` (index or name) of `kind`: how a raw
 * (stored, optimised) value maps to the effective one. Checkpoints record it.
 */
export function activationConstraint(kind: string, param: number | string): ParamConstraint {
  const def = activationDef(kind);
  const i = typeof param === 'number' ? param : def.paramNames.indexOf(param);
  const p = def.params[i];
  if (!p) throw new Error(`activation ${kind} has no parameter ${JSON.stringify(param)}; its parameters: [${def.paramNames.join(', ')}]`);
  return p.constraint;
}
