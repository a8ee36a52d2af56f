// WGSL standard normal density and CDF (k_exp_neg_half_sq, k_normal_pdf, k_normal_cdf),
// accurate in relative terms in the tails: the building blocks of the exact GELU x Phi(x)
// and its derivative Phi(x) + x phi(x). Part of wgslMath() (kernels/wgsl_math.ts); pure f32
// functions that never call exp (so no large positive argument can reach it).

// NOTE: exp(-u^2/2) for 0 <= u <= 14 without the two f32 losses of exp(-0.5*u*u):
// (1) u*u is rounded (6e-8 relative, times u^2/2 in the result: ~100 ULP at u = 10);
// (2) WGSL exp is only 3 + 2|arg| ULP (lavapipe: 2.4 ULP at exp(-80)). So h = u^2/2 is kept
// exact as 0.5 uh^2 + uh ul + 0.5 ul^2 (uh = u cut to 12 significant bits: every product
// is exact) and reduced as h = k ln2/4 + r, |r| <= ln2/8, with ln2/4 = L1 + L2, L1 having
// 12 bits (k < 2^10, so k L1 and h - k L1 are exact). Then
//   exp(-h) = 2^-(k>>2) * 2^(-(k&3)/4) * (1 + p),  p = expm1(v) = v + v^2 (1/2 + v/6 + ...),
// v = -r (the dropped v^7/7! is < 1e-11). 2^(-j/4) comes as th + tl, th with 12 bits, so a
// caller multiplies a 12-bit constant by th exactly and adds the small rest: the whole
// product is then rounded about once. Returned unrounded as (p, th, tl, s), s = 2^-(k>>2)
// exact (a subnormal power of two below 2^-126, and exactly 0 from u = 13.98 on, so that a
// clamped |x| = 1e30 times phi is 0, not ~1e-13). fma need not be fused (lavapipe's is
// not): the error-free steps are exact products and exact differences, no two-sum tricks
// that a compiler could reassociate away.
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
  let k = u32(kf);
  let j = k & 3u;
  let th = select(select(1.0, 0x1.ae8p-1, j == 1u), select(0x1.6ap-1, 0x1.306p-1, j == 3u), j >= 2u);
  let tl = select(select(0.0, 7.6102754e-5, j == 1u), select(7.5531187e-5, 1.2113563e-4, j == 3u), j >= 2u);
  let e = min(k >> 2u, 141u);
  let sub = select(0.0, bitcast<f32>(1u << (149u - e)), e < 141u);
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
  return k_normal_pdf_w(k_exp_neg_half_sq(min(abs(x), 14.0)));
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
// 0.029 at 13.5) as 12 polynomials in t = u - c, one per half-octave [1/4, 3/8), [3/8, 1/2),
// [1/2, 3/4), ..., [8, 12), [12, 16) (fitted on [12, 13.5]), c the piece's midpoint (u - c
// is exact). Row: [c, r0h, r0l, r1, ..., r8], R = r0h + r0l + r1 t + ... + r8 t^8, r0h with
// 12 bits (r0h th is exact), degree the lowest with a float64 fit error < 1e-10 (zeros
// above). How they were fitted: float64 least squares on the relative error, iteratively
// reweighted towards minimax, 400 Chebyshev points per piece, against mpmath's erfc at 40
// digits; then the coefficients were rounded to f32 one at a time from r0 up, refitting
// the higher ones after each rounding. Max relative error of the f32-coefficient
// polynomials (evaluated in float64): 1.4e-9 (0.02 ULP), on [4, 6] and [8, 12].
const NORMAL_CDF_R: readonly (readonly number[])[] = [
  [0.3125, 3.9611816e-1, 9.36718e-5, -2.7512607e-1, 1.5511742e-1, -7.556276e-2, 3.290624e-2, -1.0581377e-2, 0, 0, 0],
  [0.4375, 3.6401367e-1, 9.120013e-5, -2.396464e-1, 1.2962978e-1, -6.097202e-2, 2.5750887e-2, -1.1048915e-2, 0, 0, 0],
  [0.625, 3.232422e-1, 1.13981216e-4, -1.9684468e-1, 1.0016413e-1, -4.474544e-2, 1.8047696e-2, -6.804594e-3, 2.3895802e-3, 0, 0],
  [0.875, 2.796631e-1, 1.0748434e-4, -1.5414304e-1, 7.244771e-2, -3.0249352e-2, 1.1494213e-2, -4.1006757e-3, 1.353789e-3, 0, 0],
  [1.25, 2.3071289e-1, 4.7430676e-5, -1.1049188e-1, 4.6322737e-2, -1.7529428e-2, 6.1026174e-3, -1.9818393e-3, 6.090416e-4, -1.6248573e-4, 0],
  [1.75, 1.8518066e-1, 5.1000614e-5, -7.4786864e-2, 2.7177323e-2, -9.075884e-3, 2.823851e-3, -8.1550464e-4, 2.2945052e-4, -1.601128e-4, 0],
  [2.5, 1.4129639e-1, 3.494466e-5, -4.5613952e-2, 1.3648226e-2, -3.8311312e-3, 1.0175982e-3, -2.57373e-4, 6.2345716e-5, -1.4865098e-5, 3.2992916e-6],
  [3.5, 1.0632324e-1, 2.1911446e-5, -2.6734242e-2, 6.387652e-3, -1.4591689e-3, 3.2015966e-4, -6.759408e-5, 1.3810293e-5, -3.0759209e-6, 6.298522e-7],
  [5, 7.69043e-2, 1.5008099e-5, -1.4345755e-2, 2.5952635e-3, -4.564863e-4, 7.821851e-5, -1.30572125e-5, 2.1333954e-6, -3.6518375e-7, 5.7417306e-8],
  [7, 5.5892944e-2, 5.381046e-7, -7.6879035e-3, 1.0390796e-3, -1.3811425e-4, 1.8067913e-5, -2.3295445e-6, 2.9575236e-7, -3.6762327e-8, 4.5363535e-9],
  [10, 3.9505005e-2, 1.6892177e-6, -3.8753392e-3, 3.766501e-4, -3.6280173e-5, 3.4640348e-6, -3.2723955e-7, 3.0728444e-8, -3.0946912e-9, 2.8493677e-10],
  [12.75, 3.1097412e-2, 3.1484822e-6, -2.410133e-3, 1.8568333e-4, -1.4223115e-5, 1.0833443e-6, -8.291253e-8, 6.2615175e-9, 0, 0],
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
 * slower (measured); with the 11 selects per vec4 it runs at about the speed of the old
 * erf + 12-level continued fraction (~20 ms per 1M elements both, noisy).
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
// x < 0; 1 + erf(x/sqrt2) cancels there). With u = |x| (clamped to 14) and q = Phi(-u):
// - u < 1/4, or x > 0 and u < 1/2: Phi = 1/2 +- u S(u^2), S the Taylor series of
//   (Phi(u) - 1/2)/u to u^12 (truncation < 2e-12 relative); for x < 0 1/2 - u S loses
//   little (u S <= 0.1 against q >= 0.4).
// - otherwise q = exp(-u^2/2) R(u) = s (th + tl)(1 + p) (r0h + r0l + t g(t)), computed as
//   s (a + rest) with a = r0h th exact and rest small (|t g| <= 0.2 R, |p| <= 0.09), so q
//   is rounded about once; Phi(x > 0) = 1 - q.
// Measured (lavapipe, and a float32 emulation over 1.5M points): q within 1.3 ULP; GELU
// x Phi(x) within 1.7 ULP of float64 wherever Phi is a normal f32 (x > -12.95); below,
// x Phi(x) is still normal down to -13.1 but inherits Phi's subnormal rounding (2.9 ULP at
// -13, ~8 at -13.1; only a fused x Phi in the caller could avoid it); see
// test/kernels/activation_gpu.test.ts (before: 2.8 ULP on [-1.3, 0), 32 to 260 ULP in the
// lower tail). Phi is exactly 0 (x <= -13.98) or 1 far out. The exp-based erfc of Juffa's erff (k_erf) is not used: it
// needs x/sqrt2 rounded and exp(-t*t) with t*t rounded, and is only accurate in absolute
// terms beyond t = 1.75.
// k_normal_cdf_pdf(x) = (Phi(x), phi(x)) from ONE k_exp_neg_half_sq (the fused GELU
// value-and-gradient kernel): each value is computed exactly as k_normal_cdf and
// k_normal_pdf compute it, only the shared exp is evaluated once.
export const WGSL_NORMAL_CDF = /* wgsl */ `
fn k_normal_cdf(x: f32) -> f32 {
  let u = min(abs(x), 14.0);
  if (k_normal_cdf_near0(x, u)) {
    return k_normal_cdf_series(x, u);
  }
  let q = k_normal_q_w(u, k_exp_neg_half_sq(u));
  return select(q, 1.0 - q, x > 0.0);
}

fn k_normal_cdf_pdf(x: f32) -> vec2<f32> {
  let u = min(abs(x), 14.0);
  let w = k_exp_neg_half_sq(u);
  let q = k_normal_q_w(u, w);
  let tail = select(q, 1.0 - q, x > 0.0);
  let c = select(tail, k_normal_cdf_series(x, u), k_normal_cdf_near0(x, u));
  return vec2<f32>(c, k_normal_pdf_w(w));
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

// q = Phi(-u) for u >= 1/4 from w = k_exp_neg_half_sq(u) (garbage below 1/4, unused there).
fn k_normal_q_w(u: f32, w: vec4<f32>) -> f32 {
  // piece: (bits >> 22) = 2 * biased exponent + top mantissa bit, 250 at u = 1/4
  let i = min((bitcast<u32>(u) >> 22u) - 250u, 11u);
${pieceSelect('c0', 0)}
${pieceSelect('c1', 1)}
${pieceSelect('c2', 2)}
  let t = u - c0.x;
  var g = c2.z;
  g = fma(g, t, c2.y);
  g = fma(g, t, c2.x);
  g = fma(g, t, c1.w);
  g = fma(g, t, c1.z);
  g = fma(g, t, c1.y);
  g = fma(g, t, c1.x);
  g = fma(g, t, c0.w);
  let rl = fma(t, g, c0.z);
  let a = c0.y * w.y;
  var c = fma(rl, w.z, c0.y * w.z);
  c = fma(rl, w.y, c);
  c = fma(a + c, w.x, c);
  return (a + c) * w.w;
}
`;
