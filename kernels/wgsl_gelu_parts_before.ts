// Bench-only WGSL: the GELU parts of the form before k_gelu_f / k_gelu_fdf
// (kernels/wgsl_gelu_forward.ts): k_gelu_parts(x) = (x Phi(x), Phi(x), phi(x)) with R(u) on
// 6 octave pieces of degree 10 (5 selects per coefficient vec4) plus a Taylor branch of Phi
// near 0. NOT part of wgslMath() (no engine kernel uses it since GELU's derivative and
// value-and-gradient kernels moved to k_gelu_fdf); bench/gelu_baseline.ts appends it to a
// shader that includes wgslMath() (it needs k_exp_neg_half_sq and k_normal_pdf_w) for the
// "before" rows. Error analysis: docs/numerics.md (GELU bullet).
import { tailRatioWgsl } from './wgsl_normal.ts';

// NOTE: R(u) = Phi(-u) exp(u^2/2) (the Mills ratio over sqrt(2 pi): 0.41 at u = 1/4 down to
// 0.027 at 14.5) as 6 polynomials in t = u - c, one per octave [1/4, 1/2), [1/2, 1), [1, 2),
// [2, 4), [4, 8), [8, 14.5], c = 1.5 2^e the octave's midpoint (computed from the bits of u,
// not selected; u - c is exact). Row: [r0h, r0l, r1, ..., r10], R = r0h + r0l + r1 t + ...
// + r10 t^10, r0h = R(c) cut to 12 bits (r0h th is exact). How they were fitted: float64
// least squares on the relative error, iteratively reweighted towards minimax, 400
// Chebyshev points per piece, against mpmath's erfc at 40 digits; then the coefficients
// were rounded to f32 one at a time from r1 up, refitting the higher ones after each
// rounding (the high coefficients of the first pieces are fitting noise: t^10 < 1e-9
// there). Max relative error of the f32-coefficient polynomials: 2.5e-9 (on [4, 8)); in a
// float32 emulation of the kernel (unfused fma), 20001 points per octave, the head plus
// the rounded tail r0l + t g(t) is within 0.61 ULP of R (|tail| <= 0.33 R: its rounding
// is scaled down). The previous 12 half-octave pieces (33 vec4 selects of their
// coefficients, the main cost of GELU on lavapipe: docs/engine.md) reached 0.33 ULP; see
// docs/numerics.md for the error budget.
const NORMAL_CDF_R: readonly (readonly number[])[] = [
  [0.3795166015625, 8.782630902715027e-05, -0.2565906345844269, 0.14169147610664368, -0.06780628114938736, 0.029059216380119324, -0.014262775890529156, 0.005639178678393364, 0.24432000517845154, -0.13687659800052643, -6.991013526916504, 4.055572509765625],
  [0.3001708984375, 6.156390008982271e-05, -0.17376793920993805, 0.08495326340198517, -0.036683134734630585, 0.014358814805746078, -0.0052520036697387695, 0.001805572770535946, 0.0009250253206118941, -0.0010229317704215646, -0.010578285902738571, 0.008063695393502712],
  [0.20574951171875, 3.1155257602222264e-05, -0.09027127921581268, 0.03518687188625336, -0.01249703112989664, 0.0041104089468717575, -0.0012656827457249165, 0.0003677581262309104, -0.00010523010132601485, 3.0336268537212163e-05, -1.0629165672071395e-06, -3.7842321489733877e-06],
  [0.121490478515625, 2.3469840016332455e-05, -0.03440043702721596, 0.009156322106719017, -0.002310466254130006, 0.0005562019068747759, -0.00012846500612795353, 2.8552023650263436e-05, -5.977788077871082e-06, 1.223517642756633e-06, -3.340915952776413e-07, 7.34099998567217e-08],
  [0.06475830078125, 2.101354402839206e-05, -0.010266395285725594, 0.0015904739266261458, -0.00024118016881402582, 3.584205114748329e-05, -5.230262104305439e-06, 7.48810180084547e-07, -1.0294560581769474e-07, 1.4239009971106498e-08, -2.4812012444641596e-09, 3.3391112097547193e-10],
  [0.0330047607421875, 1.4210335393727291e-05, -0.0027146274223923683, 0.0002217207511421293, -1.799319579731673e-05, 1.4508916592603782e-06, -1.1621177264942162e-07, 9.297857594958714e-09, -7.466910978415342e-10, 5.1018748253861546e-11, -3.894056518211064e-12, 8.178269801824289e-13],
];

/** An f32 value as an exact WGSL literal. */
function wgslF32(v: number): string {
  const s = String(Math.fround(v));
  return /[.e]/.test(s) ? s : `${s}.0`;
}

/**
 * WGSL lines `let <name> = vec4(...)` holding slot `slot` (row entries 4 slot .. 4 slot + 3)
 * of piece `i`, picked with a binary tree of selects on the bits of i.
 * NOTE: not a const array indexed by i: on lavapipe that made the GELU kernel ~2.5x
 * slower (measured). 6 pieces take 5 selects per vec4 (12 half-octave pieces took 11).
 */
function pieceSelect(name: string, slot: number): string {
  let level = NORMAL_CDF_R.map((row) => `vec4<f32>(${[0, 1, 2, 3].map((k) => wgslF32(row[4 * slot + k] ?? 0)).join(', ')})`);
  const lines: string[] = [];
  for (let bit = 0; level.length > 1; bit++) {
    const next: string[] = [];
    for (let k = 0; k < level.length; k += 2) {
      if (k + 1 === level.length) {
        next.push(level[k]!);
        continue;
      }
      const v = `${name}_${bit}_${k >> 1}`;
      lines.push(`  let ${v} = select(${level[k]}, ${level[k + 1]}, (i & ${1 << bit}u) != 0u);`);
      next.push(v);
    }
    level = next;
  }
  lines.push(`  let ${name} = ${level[0]};`);
  return lines.join('\n');
}

// NOTE: Phi(x), accurate in relative terms in the LOWER tail too (GELU's x Phi(x) for
// x < 0; 1 + erf(x/sqrt2) cancels there). With u = |x| (clamped to 14.5) and q = Phi(-u):
// - u < 1/4, or x > 0 and u < 1/2: Phi = 1/2 +- u S(u^2), S the Taylor series of
//   (Phi(u) - 1/2)/u to u^12 (truncation < 2e-12 relative); for x < 0 1/2 - u S loses
//   little (u S <= 0.1 against q >= 0.4).
// - otherwise q = exp(-u^2/2) R(u) = s (th + tl)(1 + p) (r0h + r0l + t g(t)), computed as
//   s (a + rest) with a = r0h th exact and rest small (|t g| <= 0.33 R, |p| <= 0.09), so q
//   is rounded about once; Phi(x > 0) = 1 - q.
// Measured on lavapipe: GELU x Phi(x) (k_gelu_parts, which fuses x into the product before
// the scaling by s) within 1.8 ULP of float64 over the whole f32 range, subnormal results
// included; see test/kernels/activation_gelu_ulp.test.ts (before the piecewise form: 2.8
// ULP on [-1.3, 0), 32 to 260 ULP in the lower tail). Phi is exactly 0 (x <= -14.41) or 1
// far out. The exp-based erfc of Juffa's erff (k_erf) is not used: it
// needs x/sqrt2 rounded and exp(-t*t) with t*t rounded, and is only accurate in absolute
// terms beyond t = 1.75.
// k_gelu_parts(x) = (x Phi(x), Phi(x), phi(x)) from ONE k_exp_neg_half_sq.
// NOTE: x Phi(x) in the lower tail is (x m) s with q = m s (m the normal-range product of
// R and exp's mantissa part, s = 2^-k exact): the product with x happens BEFORE the scaling
// by s, so where Phi (x < -12.95) or x Phi itself (x < -13.1) is subnormal in f32 the result
// is rounded once, at the end, instead of inheriting Phi's absolute rounding of 2^-150
// times |x| (up to ~8 ULP before). x is clamped to -14.5 there (s = 0 from u = 14.41, so
// x = -inf gives (-14.5 m) 0 = 0, the limit).
export const WGSL_GELU_PARTS_BEFORE = /* wgsl */ `
fn k_gelu_parts(x: f32) -> vec3<f32> {
  let u = min(abs(x), 14.5);
  let w = k_exp_neg_half_sq(u);
  let m = k_normal_qm_w(u, w);
  let q = m * w.w;
  let near0 = k_normal_cdf_near0(x, u);
  let ser = k_normal_cdf_series(x, u);
  let c = select(select(q, 1.0 - q, x > 0.0), ser, near0);
  let xc = max(x, -14.5);
  let xphi = select(select((xc * m) * w.w, x * c, x > 0.0), x * ser, near0);
  return vec3<f32>(xphi, c, k_normal_pdf_w(w));
}

// Whether Phi(x) (u = min(|x|, 14)) comes from the series around 0.
fn k_normal_cdf_near0(x: f32, u: f32) -> bool {
  return u < 0.25 || (x > 0.0 && u < 0.5);
}

// Phi(x) = 1/2 +- u S(u^2) near 0.
fn k_normal_cdf_series(x: f32, u: f32) -> f32 {
  let s = u * u;
  var m: f32 = 6.6596935e-7;
  m = fma(m, s, -9.444656e-6);
  m = fma(m, s, 1.1543469e-4);
  m = fma(m, s, -1.1873282e-3);
  m = fma(m, s, 9.973557e-3);
  m = fma(m, s, -6.649038e-2);
  m = fma(m, s, 3.989423e-1);
  let t = u * m;
  return select(0.5 - t, 0.5 + t, x > 0.0);
}

// m with q = Phi(-u) = m w.w, for u >= 1/4, from w = k_exp_neg_half_sq(u) (m is in the
// normal range; garbage below 1/4, unused there).
fn k_normal_qm_w(u: f32, w: vec4<f32>) -> f32 {
  // piece: the octave of u, (bits >> 23) = biased exponent, 125 at u = 1/4
  let bits = bitcast<u32>(u);
  let i = min((bits >> 23u) - 125u, 5u);
${pieceSelect('c0', 0)}
${pieceSelect('c1', 1)}
${pieceSelect('c2', 2)}
  let t = u - bitcast<f32>((bits & 0xff800000u) | 0x00400000u);
${tailRatioWgsl(['c2.z', 'c2.y', 'c2.x'], 'c2.w')}
  return a + c;
}
`;
