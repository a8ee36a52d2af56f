// WGSL exact exp(-u^2/2) and standard normal density (k_exp_neg_half_sq, k_normal_pdf,
// k_normal_pdf_w), accurate in relative terms in the tails, and the shared normal-tail
// Horner builder (tailRatioWgsl): the building blocks of the exact GELU x Phi(x) and its
// derivative Phi(x) + x phi(x) (kernels/wgsl_gelu_forward.ts). Part of wgslMath()
// (kernels/wgsl_math.ts); pure f32 functions that never call exp (so no large positive
// argument can reach it).

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

/**
 * The shared body of the normal-tail evaluations (kernels/wgsl_gelu_forward.ts and the
 * bench-only kernels/wgsl_gelu_parts_before.ts):
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
