// WGSL standard normal density and CDF (k_exp_neg_half_sq, k_normal_pdf, k_normal_cdf),
// accurate in relative terms in the tails: the building blocks of the exact GELU x Phi(x)
// and its derivative Phi(x) + x phi(x). Part of wgslMath() (kernels/wgsl_math.ts); pure f32
// functions that never call exp (so no large positive argument can reach it).

// NOTE: exp(-u^2/2) for 0 <= u <= 14.5 without the two f32 losses of exp(-0.5*u*u):
// (1) u*u is rounded (6e-8 relative, times u^2/2 in the result: ~100 ULP at u = 10);
// (2) WGSL exp is only 3 + 2|arg| ULP (lavapipe: 2.4 ULP at exp(-80)). So h = u^2/2 is kept
// exact as 0.5 uh^2 + uh ul + 0.5 ul^2 (uh = u cut to 12 significant bits: every product
// is exact) and reduced as h = k ln2/4 + r, |r| <= ln2/8, with ln2/4 = L1 + L2, L1 having
// 12 bits (k < 2^10, so k L1 and h - k L1 are exact). Then
//   exp(-h) = 2^-(k>>2) * 2^(-(k&3)/4) * (1 + p),  p = expm1(v) = v + v^2 (1/2 + v/6 + ...),
// v = -r (the dropped v^7/7! is < 1e-11). 2^(-j/4) comes as th + tl, th with 12 bits, so a
// caller multiplies a 12-bit constant by th exactly and adds the small rest: the whole
// product is then rounded about once. Returned unrounded as (p, th, tl, s), s = 2^-(k>>2)
// exact (a subnormal power of two below 2^-126, down to 2^-149, and exactly 0 from u = 14.41
// on, where phi, Phi(-u) and u Phi(-u) all round to 0 in f32: so the callers' clamp of |x|
// to 14.5 makes phi(1e30) and 1e30 phi(1e30) exactly 0). fma need not be fused (lavapipe's is
// not): the error-free steps are exact products and exact differences, no two-sum tricks
// that a compiler could reassociate away. k comes from the bits of kf + 2^23 (exact: 0 <= kf
// <= 607, so its mantissa holds k): WGSL's u32(f32) saturates, which costs compares and
// selects on top of an unsigned conversion that x86 lacks below AVX-512 (same k).
export const WGSL_EXP_NEG_HALF_SQ = /* wgsl */ `
fn k_exp_neg_half_sq(u: f32) -> vec4<f32> {
  let uh = bitcast<f32>(bitcast<u32>(u) & 0xfffff000u);
  let ul = u - uh;
  let kf = floor(0.5 * u * u * 5.7707801635558535 + 0.5);
  let r = ((0.5 * uh * uh - kf * 0x1.62ep-3) + uh * ul) + (0.5 * ul * ul - kf * 7.986546e-6);
  let v = -r;
  var q: f32 = 1.0 / 720.0;
  q = fma(q, v, 1.0 / 120.0);
  q = fma(q, v, 1.0 / 24.0);
  q = fma(q, v, 1.0 / 6.0);
  q = fma(q, v, 0.5);
  let p = fma(v * v, q, v);
  let k = bitcast<u32>(kf + 8388608.0) & 0x3ffu;
  let j = k & 3u;
  let th = select(select(1.0, 0x1.ae8p-1, j == 1u), select(0x1.6ap-1, 0x1.306p-1, j == 3u), j >= 2u);
  let tl = select(select(0.0, 7.6102754e-5, j == 1u), select(7.5531187e-5, 1.2113563e-4, j == 3u), j >= 2u);
  let e = min(k >> 2u, 150u);
  let sub = select(0.0, bitcast<f32>(1u << (149u - min(e, 149u))), e < 150u);
  let s = select(sub, bitcast<f32>((127u - min(e, 126u)) << 23u), e <= 126u);
  return vec4<f32>(p, th, tl, s);
}
`;

// NOTE: phi(x) = c exp(-x^2/2), c = 1/sqrt(2 pi) = ch + cl with ch = 0x1.988p-2 (12 bits):
// phi = s (a + rest), a = ch th exact, rest = c (th + tl) - a + c (th + tl) p small
// (|p| <= 0.09), so phi is rounded about once. |x| is clamped to 14 BEFORE squaring (x*x
// overflows f32 for |x| > 1.8e19). Max 0.74 ULP measured (lavapipe and a float32
// emulation over 1.5M points; before: exp(-0.5*t*t), 83 ULP at x = 9.7).
export const WGSL_NORMAL_PDF = /* wgsl */ `
fn k_normal_pdf(x: f32) -> f32 {
  return k_normal_pdf_w(k_exp_neg_half_sq(min(abs(x), 14.5)));
}

// phi from w = k_exp_neg_half_sq(min(|x|, 14)).
fn k_normal_pdf_w(w: vec4<f32>) -> f32 {
  let a = 0x1.988p-2 * w.y;
  var c = fma(1.649915e-5, w.z, 0x1.988p-2 * w.z);
  c = fma(1.649915e-5, w.y, c);
  c = fma(a + c, w.x, c);
  return (a + c) * w.w;
}
`;

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
// k_gelu_parts(x) = (x Phi(x), Phi(x), phi(x)) from ONE k_exp_neg_half_sq (GELU's value,
// derivative and the fused value-and-gradient kernel): Phi and phi are computed exactly as
// k_normal_cdf and k_normal_pdf compute them, only the shared exp is evaluated once.
// NOTE: x Phi(x) in the lower tail is (x m) s with q = m s (m the normal-range product of
// R and exp's mantissa part, s = 2^-k exact): the product with x happens BEFORE the scaling
// by s, so where Phi (x < -12.95) or x Phi itself (x < -13.1) is subnormal in f32 the result
// is rounded once, at the end, instead of inheriting Phi's absolute rounding of 2^-150
// times |x| (up to ~8 ULP before). x is clamped to -14.5 there (s = 0 from u = 14.41, so
// x = -inf gives (-14.5 m) 0 = 0, the limit).
/**
 * The shared body of the normal-tail evaluations (here and kernels/wgsl_gelu_forward.ts):
 * Horner in t of the polynomial R with top coefficient `top`, then `high` (the coefficients
 * above c1, highest first), c1.wzyx and c0.wz, ending in rl = R(t) - c0.x as r0 + t g; then
 * a + c = R * w.y recombined with w's split parts (a = c0.x w.y exact-ish, c the rest),
 * using w = k_exp_neg_half_sq(u). Defines g, rl, a and c.
 */
export function tailRatioWgsl(high: readonly string[], top: string): string {
  const chain = [...high, 'c1.w', 'c1.z', 'c1.y', 'c1.x', 'c0.w', 'c0.z'];
  return [
    `  var g = ${top};`,
    ...chain.map((k) => `  g = fma(g, t, ${k});`),
    '  let rl = fma(t, g, c0.y);',
    '  let a = c0.x * w.y;',
    '  var c = fma(rl, w.z, c0.x * w.z);',
    '  c = fma(rl, w.y, c);',
    '  c = fma(a + c, w.x, c);',
  ].join('\n');
}

export const WGSL_NORMAL_CDF = /* wgsl */ `
fn k_normal_cdf(x: f32) -> f32 {
  let u = min(abs(x), 14.5);
  if (k_normal_cdf_near0(x, u)) {
    return k_normal_cdf_series(x, u);
  }
  let w = k_exp_neg_half_sq(u);
  let q = k_normal_qm_w(u, w) * w.w;
  return select(q, 1.0 - q, x > 0.0);
}

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
