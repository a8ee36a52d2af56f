// WGSL GELU (erf form): k_gelu_f(x) = x Phi(x) for kernels that need the value only (the
// forward activation kernel and the fused epilogues' act_f) and k_gelu_fdf(x) = (x Phi,
// Phi, phi) for the derivative Phi + x phi and the one-pass value-and-gradient kernel, both
// from one exact exp(-x^2/2) and one 4-piece R. Part of wgslMath() (kernels/wgsl_math.ts).
// The form before (k_gelu_parts: 6 octave pieces plus a Taylor branch) is bench-only in
// kernels/wgsl_gelu_parts_before.ts. Error analysis and measurements: docs/numerics.md
// (GELU bullet).
import { tailRatioWgsl } from './wgsl_normal.ts';

// NOTE: R(u) = Phi(-u) exp(u^2/2) as 4 polynomials of degree 11 in t = u - c on [0, 1),
// [1, 3), [3, 7), [7, 14.5] (c = 0.5, 2, 5, 10.5), picked by three comparisons of u (3
// selects per coefficient vec4, 14 coefficients). k_gelu_parts (the form before) used 6
// octave pieces of degree 10 (5 selects per vec4, 12 coefficients) plus a Taylor branch
// of Phi near 0, and on lavapipe every lane pays for every branch and every select. Here
// the first piece starts at 0, so there is no Taylor branch: Phi(x > 0) = 1 - q also near
// 0 (q <= 1/2 is accurate, 1 - q rounds once). t = u - c is exact from u = c/2 on
// (Sterbenz); below 1/4 (first piece) it rounds by at most 2^-27, 0.2 ULP of R there. Each
// piece's tail r0l + t g stays within 0.35 R (like the octaves' 0.33), so its f32 rounding
// is scaled down, and the head r0h (R(c) cut to 12 bits) times th is exact (a = r0h w.y in
// tailRatioWgsl). Row: [r0h, r0l, r1, ..., r11]; fitted like NORMAL_CDF_R
// (kernels/wgsl_gelu_parts_before.ts: float64 iteratively reweighted least squares on the
// relative error, 1500 Chebyshev points per piece, against scipy's erfcx; coefficients
// rounded to f32 one at a time from r1 up, refitting the higher ones): max relative error
// 4.4e-10, 6.9e-10, 1.2e-9, 1.4e-9 per piece.
const GELU_FWD_R: readonly (readonly number[])[] = [
  [0.349609375, 9.459719876758754e-6, -0.22413286566734314, 0.11877620220184326, -0.05491471663117409, 0.02282964251935482, -0.008704457432031631, 0.0030808039009571075, -0.0009835036471486092, 0.00031530816340819, -0.0002480836701579392, 3.980197652708739e-5, 0.00020646495977416635],
  [0.1680908203125, 1.1180898582097143e-5, -0.06273827701807022, 0.02131272293627262, -0.006704294588416815, 0.0019760404247790575, -0.0005503508727997541, 0.00014587101759389043, -3.714547347044572e-5, 8.955224075180013e-6, -1.932038230734179e-6, 5.292055789141159e-7, -1.7172261834730307e-7],
  [0.076904296875, 1.5008033187768888e-5, -0.01434575580060482, 0.002595264697447419, -0.0004564779519569129, 7.821412873454392e-5, -1.30797607198474e-5, 2.1405408006103244e-6, -3.41520376423432e-7, 5.191541418980705e-8, -8.155772057705235e-9, 1.6021259874321458e-9, -2.2216574413480572e-10],
  [0.03765869140625, 1.6728520790820767e-7, -0.0035242638550698757, 0.0003270442539360374, -3.0100083677098155e-5, 2.748024598986376e-6, -2.489808821337647e-7, 2.2417289358145354e-8, -1.9889014879481692e-9, 1.7060734769369645e-10, -1.5989862212073547e-11, 1.7922020204702571e-12, -1.245241296144936e-13],
];
/** Lower bounds of the pieces (the first is 0) and their centres. */
const GELU_FWD_LO = [0, 1, 3, 7];
const GELU_FWD_C = [0.5, 2, 5, 10.5];

/** An f32 value as an exact WGSL literal. */
function lit(v: number): string {
  const s = String(Math.fround(v));
  return /[.e]/.test(s) ? s : `${s}.0`;
}

/**
 * `let <name> = vecK(...)` holding entries [from, from + k) of each piece's row (the
 * centre c appended after r11), picked by select(select(P0, P1, b1), select(P2, P3, b3), b2)
 * with b_i = u >= GELU_FWD_LO[i].
 */
function pick(name: string, from: number, k: number): string {
  const rows = GELU_FWD_R.map((r, i) => [...r, GELU_FWD_C[i]!]);
  const v = (i: number) => `vec${k}<f32>(${rows[i]!.slice(from, from + k).map(lit).join(', ')})`;
  return `  let ${name} = select(select(${v(0)}, ${v(1)}, b1), select(${v(2)}, ${v(3)}, b3), b2);`;
}

// NOTE: the same rounding structure as k_gelu_parts before: m = R (th + tl)(1 + p) rounded about
// once (a = r0h th exact, the rest small), then x q = (x m) s with x before the exact power
// of two s (a subnormal result is rounded once), and GELU = x q for x <= 0, x - x q for
// x > 0 (x (1 - q) rounds 1 - q too: 2.1 ULP near 0+ in the emulation below, x - x q 1.4).
// x is clamped to +-14.5 where s = 0 already, so x = +-inf gives +inf and -0, never inf 0. Float32 emulation
// (unfused fma), 400001 points per region: max 2.1 ULP on (0, 10], 1.7 on [-1.3, 0), 2.3 on
// [-5, -1.3) and [-10, -5), 1.8 on [-13, -10); the same emulation of k_gelu_parts gives
// 1.9, 2.3 and 1.6 on the last three (the GPU test's 10001 points per region see less).
// On lavapipe, 2^22 + 3 points of [-14.5, 14.5]: max 2.23 ULP (k_gelu_parts: 2.37).
/**
 * The shared body of k_gelu_f and k_gelu_fdf: u, w = k_exp_neg_half_sq(u), the piece
 * selects and the Horner/recombination ending in m = a + c (q = Phi(-u) = m w.w).
 */
const R_BODY = [
  '  let u = min(abs(x), 14.5);',
  '  let w = k_exp_neg_half_sq(u);',
  `  let b1 = u >= ${lit(GELU_FWD_LO[1]!)};`,
  `  let b2 = u >= ${lit(GELU_FWD_LO[2]!)};`,
  `  let b3 = u >= ${lit(GELU_FWD_LO[3]!)};`,
  pick('c0', 0, 4),
  pick('c1', 4, 4),
  pick('c2', 8, 4),
  pick('c3', 12, 2),
  '  let t = u - c3.y;',
  tailRatioWgsl(['c2.w', 'c2.z', 'c2.y', 'c2.x'], 'c3.x'),
].join('\n');

// NOTE: k_gelu_fdf(x) = (x Phi(x), Phi(x), phi(x)) for GELU's derivative Phi + x phi and
// the one-pass value-and-gradient kernel, from the same ONE exp and ONE R as k_gelu_f: the
// value is k_gelu_f's expression (the same WGSL text, so the same bits); Phi = q (x <= 0)
// or 1 - q (x > 0), q = m s rounded once (also where it is subnormal, x < -12.95); near
// 0+ q is close to 1/2, so 1 - q is exact-ish and no Taylor branch is needed; phi =
// k_normal_pdf_w(w) from the same s, th, tl, p. x = +inf: (inf, 1, 0); x = -inf: (-0, 0,
// 0) (u and x clamped to 14.5, where s = 0); NaN: whatever k_gelu_f gives (WGSL min/clamp
// of NaN are indeterminate). Measured on lavapipe, 2^22 + 3 points of [-14.5, 14.5], the
// derivative Phi + x phi per region from [-14.5, -13) to [10, 14.5]: 8.29 (phi subnormal:
// x phi inherits its absolute rounding), 2.17, 2.44, 2.84, 2.48 (in ULP of the larger term
// near the zero at -0.7518), 1.48, 0 ULP max; k_gelu_parts: the same except 1.98 and 1.47
// (docs/numerics.md, GELU bullet).
export const WGSL_GELU_FORWARD = /* wgsl */ `
fn k_gelu_f(x: f32) -> f32 {
${R_BODY}
  let xq = (clamp(x, -14.5, 14.5) * (a + c)) * w.w;
  return select(xq, x - xq, x > 0.0);
}

fn k_gelu_fdf(x: f32) -> vec3<f32> {
${R_BODY}
  let xq = (clamp(x, -14.5, 14.5) * (a + c)) * w.w;
  let q = (a + c) * w.w;
  return vec3<f32>(select(xq, x - xq, x > 0.0), select(q, 1.0 - q, x > 0.0), k_normal_pdf_w(w));
}
`;
