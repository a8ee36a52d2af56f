// Shared WGSL math snippets (pure f32 functions, all names prefixed `k_`): the
// overflow-safe building blocks that activation and loss kernels concatenate into their
// shaders. WGSL has no erf/log1p/expm1 and may assume no Inf/NaN ever occurs (finite-math
// rule), so every helper here only ever calls `exp` on a non-positive, bounded argument.
// The exact exp(-u^2/2) and normal pdf (k_exp_neg_half_sq, k_normal_pdf) live in
// kernels/wgsl_normal.ts, GELU's x Phi (k_gelu_f) and its parts (k_gelu_fdf) in
// kernels/wgsl_gelu_forward.ts.
import { WGSL_EXP_NEG_HALF_SQ, WGSL_NORMAL_PDF } from './wgsl_normal.ts';
import { WGSL_GELU_FORWARD } from './wgsl_gelu_forward.ts';

export { WGSL_EXP_NEG_HALF_SQ, WGSL_GELU_FORWARD, WGSL_NORMAL_PDF };

/**
 * Horner evaluation as WGSL statements: `var <acc>: f32 = c[0];` then
 * `<acc> = fma(<acc>, <x>, c[j]);` for each later coefficient (highest power first),
 * one statement a line, later lines at `indent`.
 */
function horner(acc: string, x: string, coeffs: readonly string[], indent: string): string {
  const steps = coeffs.slice(1).map((c) => `${acc} = fma(${acc}, ${x}, ${c});`);
  return [`var ${acc}: f32 = ${coeffs[0]};`, ...steps].join(`\n${indent}`);
}

// NOTE: exp(x) for x <= 0, flushed to exactly 0 below -88. f32 underflows to subnormals
// below -87.3 and to 0 below -103.3; some drivers clamp the argument of exp2 and hand
// back a tiny nonzero value instead. Multiplied by a huge x (say 1e30, as in x*s(x) or
// z*s(z)s(-z)), such a tiny value becomes visible, so it is flushed to an exact 0. The
// argument is also clamped so `exp` never sees a huge magnitude. Positive arguments are
// clamped to 0 (callers must never pass them; this keeps the finite-math rule even so).
export const WGSL_EXP_NEG = /* wgsl */ `
fn k_exp_neg(x: f32) -> f32 {
  let e = exp(clamp(x, -88.0, 0.0));
  return select(e, 0.0, x < -88.0);
}
`;

// NOTE: stable sigmoid: 1/(1+exp(-z)) for z >= 0, e/(1+e) with e = exp(z) for z < 0
// (both are one formula in e = exp(-|z|)). 1 - s(z) must always be computed as s(-z),
// which is what k_sigmoid2 returns alongside s(z); s'(z) = s(z) s(-z) is their product.
export const WGSL_SIGMOID = /* wgsl */ `
fn k_sigmoid(z: f32) -> f32 {
  let e = k_exp_neg(-abs(z));
  let d = 1.0 + e;
  return select(e / d, 1.0 / d, z >= 0.0);
}

// (s(z), s(-z)), both from one exp(-|z|).
fn k_sigmoid2(z: f32) -> vec2<f32> {
  let e = k_exp_neg(-abs(z));
  let d = 1.0 + e;
  let s_pos = 1.0 / d;
  let s_neg = e / d;
  return select(vec2<f32>(s_neg, s_pos), vec2<f32>(s_pos, s_neg), z >= 0.0);
}
`;

// NOTE: log1p(y) for y in [0, 1] without calling log: with s = y/(2+y) (<= 1/3) and
// t = s^2, log1p(y) = 2 atanh(s) = 2s(1 + t/3 + t^2/5 + ... + t^7/15); the dropped
// t^8/17 term is < 1.5e-9 relative. Max 2.3 ULP measured (docs/numerics.md).
export const WGSL_LOG1P01 = /* wgsl */ `
fn k_log1p01(y: f32) -> f32 {
  let s = y / (2.0 + y);
  let t = s * s;
  ${horner('p', 't', ['1.0 / 15.0', '1.0 / 13.0', '1.0 / 11.0', '1.0 / 9.0', '1.0 / 7.0', '1.0 / 5.0', '1.0 / 3.0', '1.0'], '  ')}
  return 2.0 * s * p;
}
`;

// NOTE: softplus(z) = log(1 + e^z) = max(z, 0) + log1p(exp(-|z|)): never overflows.
export const WGSL_SOFTPLUS = /* wgsl */ `
fn k_softplus(z: f32) -> f32 {
  return max(z, 0.0) + k_log1p01(k_exp_neg(-abs(z)));
}
`;

// NOTE: expm1(x) for x <= 0. Near 0, exp(x) - 1 cancels catastrophically, so for
// x > -0.5 use the Taylor polynomial x(1 + x/2! + x^2/3! + ... + x^8/9!) (max 2 ULP);
// below, exp(x) - 1 is accurate (|result| >= 0.39). Positive x is clamped to 0.
export const WGSL_EXPM1_NEG = /* wgsl */ `
fn k_expm1_neg(x_in: f32) -> f32 {
  let x = min(x_in, 0.0);
  if (x > -0.5) {
    ${horner('p', 'x', ['1.0 / 362880.0', '1.0 / 40320.0', '1.0 / 5040.0', '1.0 / 720.0', '1.0 / 120.0', '1.0 / 24.0', '1.0 / 6.0', '0.5', '1.0'], '    ')}
    return x * p;
  }
  return k_exp_neg(x) - 1.0;
}
`;

// NOTE: e^y - 1 - y e^y for y <= 0 (the CELU parameter derivative). For |y| < 1 both
// expm1(y) and y e^y are ~y and their difference ~ -y^2/2 cancels, so use the series
// -y^2 sum_j (j+1)/(j+2)! y^j, j = 0..11 (next term < 4e-10 relative); for y <= -1 the
// direct e^y (1 - y) - 1 has magnitude >= 0.26 and loses at most ~2 bits.
export const WGSL_EXPM1_MINUS_XEXP = /* wgsl */ `
fn k_expm1_minus_xexp(y_in: f32) -> f32 {
  let y = min(y_in, 0.0);
  if (y > -1.0) {
    ${horner('p', 'y', ['1.0 / 518918400.0', '1.0 / 43545600.0', '1.0 / 3991680.0', '1.0 / 403200.0', '1.0 / 45360.0', '1.0 / 5760.0', '1.0 / 840.0', '1.0 / 144.0', '1.0 / 30.0', '1.0 / 8.0', '1.0 / 3.0', '0.5'], '    ')}
    return -(y * y) * p;
  }
  return k_exp_neg(y) * (1.0 - y) - 1.0;
}
`;

// NOTE: erf with the branch structure and constants of N. Juffa's widely used erff
// (max error < 1.2 ULP in f32). The argument is clamped to [-4, 4] (erf is exactly 1.0
// in f32 from 3.92). For t = |a| > 0.927734375, erfc(t) ~= exp(r(t)) with r from
// k_erf_tail_r; below, an odd polynomial. Abramowitz-Stegun 7.1.26 is NOT used: its
// relative error is 100% near 0. `fma` may or may not be fused (WGSL does not promise
// it); either is fine here. erf is accurate in absolute terms only near |a| = 4: the
// normal CDF's lower tail (GELU) uses k_gelu_f / k_gelu_fdf (wgsl_gelu_forward.ts), not 1 + erf.
export const WGSL_ERF = /* wgsl */ `
// r(t) with erfc(t) ~= exp(r(t)) for t in (0.927734375, 4]; r < 0 there.
fn k_erf_tail_r(t: f32) -> f32 {
  let s = t * t;
  var r = fma(fma(-1.72853470e-5, t, 3.83197126e-4), s, fma(-3.88396438e-3, t, 2.42546219e-2));
  r = fma(r, t, -1.06777877e-1);
  r = fma(r, t, -6.34846687e-1);
  r = fma(r, t, -1.28717512e-1);
  r = fma(r, t, -t);
  return r;
}

fn k_erf(a_in: f32) -> f32 {
  let a = clamp(a_in, -4.0, 4.0);
  let t = abs(a);
  if (t > 0.927734375) {
    let v = 1.0 - exp(min(k_erf_tail_r(t), 0.0));
    return select(v, -v, a < 0.0);
  }
  let s = a * a;
  ${horner('r', 's', ['-5.96761703e-4', '4.99119423e-3', '-2.67681349e-2', '1.12819925e-1', '-3.76125336e-1', '1.28379166e-1'], '  ')}
  return fma(r, a, a);
}
`;

// NOTE: u - log1p(u) for u >= 0 (SmoothReLU). For u <= 1, with s = u/(2+u), t = s^2:
// u - 2s = u s, so u - log1p(u) = u s - 2 s t (1/3 + t/5 + ... + t^7/17) with no
// cancellation near 0 (where the result is ~u^2/2). For u > 1 the plain u - log(1+u)
// (>= 0.3) is fine. Negative u is clamped to 0.
export const WGSL_X_MINUS_LOG1P = /* wgsl */ `
fn k_x_minus_log1p(u_in: f32) -> f32 {
  let u = max(u_in, 0.0);
  if (u > 1.0) {
    return u - log(1.0 + u);
  }
  let s = u / (2.0 + u);
  let t = s * s;
  ${horner('p', 't', ['1.0 / 17.0', '1.0 / 15.0', '1.0 / 13.0', '1.0 / 11.0', '1.0 / 9.0', '1.0 / 7.0', '1.0 / 5.0', '1.0 / 3.0'], '  ')}
  return u * s - 2.0 * s * t * p;
}
`;

/** Every k_ function defined by wgslMath(), for clash checks. */
export const WGSL_MATH_FUNCTIONS: readonly string[] = [
  'k_exp_neg',
  'k_sigmoid',
  'k_sigmoid2',
  'k_log1p01',
  'k_softplus',
  'k_expm1_neg',
  'k_expm1_minus_xexp',
  'k_erf_tail_r',
  'k_erf',
  'k_exp_neg_half_sq',
  'k_normal_pdf',
  'k_normal_pdf_w',
  'k_gelu_f',
  'k_gelu_fdf',
  'k_x_minus_log1p',
];

/**
 * All snippets concatenated. WGSL resolves module-scope declarations regardless of
 * order, but dependencies still come first for readability. Include it once per shader.
 */
export function wgslMath(): string {
  return [
    WGSL_EXP_NEG,
    WGSL_SIGMOID,
    WGSL_LOG1P01,
    WGSL_SOFTPLUS,
    WGSL_EXPM1_NEG,
    WGSL_EXPM1_MINUS_XEXP,
    WGSL_ERF,
    WGSL_EXP_NEG_HALF_SQ,
    WGSL_NORMAL_PDF,
    WGSL_GELU_FORWARD,
    WGSL_X_MINUS_LOG1P,
  ].join('');
}
