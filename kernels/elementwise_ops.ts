// The engine's basic elementwise ops as one named family: fills and copies, arithmetic and
// its backward expressions, unary math, comparisons and where. engine/ops/elementwise.ts,
// reduce.ts and loss.ts launch them by name; the WGSL lives only here.
import { elementwiseFamily } from './elementwise.ts';

// NOTE: x^p computed as exp2(p*log2|x|) is undefined at 0 under finite math, so small
// integer powers are multiplied out, and |x| = 0 gives 0 (p > 0) explicitly.
const POW_PRE = `
fn k_pow(x: f32, p: f32) -> f32 {
  if (p == 0.0) { return 1.0; }
  if (p == 1.0) { return x; }
  if (p == 2.0) { return x * x; }
  if (p == 3.0) { return x * x * x; }
  if (p == 0.5) { return sqrt(max(x, 0.0)); }
  let ax = abs(x);
  if (ax == 0.0) { return select(0.0, 3.4e38, p < 0.0); }
  let r = exp2(clamp(p * log2(ax), -149.0, 127.9));
  let isInt = p == floor(p);
  let odd = isInt && (abs(p) % 2.0) == 1.0;
  if (x < 0.0) { return select(r, -r, odd); }
  return r;
}
fn k_pow4(x: vec4<f32>, p: f32) -> vec4<f32> { return vec4<f32>(k_pow(x.x, p), k_pow(x.y, p), k_pow(x.z, p), k_pow(x.w, p)); }
fn k_powT(x: T, p: f32) -> T { return KPOW(x, p); }
`;
const powPre = (vec: boolean): string => POW_PRE.replace('KPOW', vec ? 'k_pow4' : 'k_pow');

// NOTE: at ties maximum / minimum split the gradient evenly (PyTorch's rule).
const TIE_MAX = 'a0 * (select(T(0.0), T(1.0), a1 > a2) + select(T(0.0), T(0.5), a1 == a2))';
const TIE_MIN = 'a0 * (select(T(0.0), T(1.0), a1 < a2) + select(T(0.0), T(0.5), a1 == a2))';

export const ELEMENTWISE = elementwiseFamily('elementwise', {
  // fills and copies (fill reads a one-element dummy input; the value is s.x)
  fill: { arity: 1, expr: 'T(s.x)' },
  // NOTE: i32 fill passes the value through f32; exact for |value| < 2^24.
  fill_i32: { arity: 1, expr: 'T(i32(s.x))' },
  copy: { arity: 1, expr: 'a0' },
  to_float: { arity: 1, expr: 'T(a0)' },
  scale: { arity: 1, expr: 'a0 * s.x' },
  // binary arithmetic and backward pieces
  add: { arity: 2, expr: 'a0 + a1' },
  sub: { arity: 2, expr: 'a0 - a1' },
  mul: { arity: 2, expr: 'a0 * a1' },
  div: { arity: 2, expr: 'a0 / a1' },
  div_backward_b: { arity: 3, expr: '-a0 * a1 / (a2 * a2)' },
  maximum: { arity: 2, expr: 'max(a0, a1)' },
  minimum: { arity: 2, expr: 'min(a0, a1)' },
  maximum_backward: { arity: 3, expr: TIE_MAX },
  minimum_backward: { arity: 3, expr: TIE_MIN },
  // unary math
  neg: { arity: 1, expr: '-a0' },
  // NOTE: exp's argument is clamped to 88.72 (exp = 3.4e38, the largest finite float32):
  // WGSL's finite-math rule makes exp of a larger argument indeterminate, not Inf.
  exp: { arity: 1, expr: 'exp(min(a0, T(88.72)))' },
  // NOTE: log of 0 and of negative numbers is undefined under WGSL's finite-math rule;
  // the input is clamped to the smallest normal float32 (log = -87.3).
  log: { arity: 1, expr: 'log(max(a0, T(1.17549435e-38)))' },
  sqrt: { arity: 1, expr: 'sqrt(max(a0, T(0.0)))' },
  sqrt_backward: { arity: 2, expr: 'a0 / (T(2.0) * a1)' },
  abs: { arity: 1, expr: 'abs(a0)' },
  abs_backward: { arity: 2, expr: 'a0 * sign(a1)' },
  sign: { arity: 1, expr: 'sign(a0)' },
  clamp: { arity: 1, expr: 'clamp(a0, T(s.x), T(s.y))' },
  clamp_backward: { arity: 2, expr: 'a0 * select(T(0.0), T(1.0), (a1 >= T(s.x)) & (a1 <= T(s.y)))' },
  pow: { arity: 1, expr: 'k_powT(a0, s.x)', preamble: powPre },
  pow_backward: { arity: 2, expr: 'a0 * T(s.x) * k_powT(a1, s.x - 1.0)', preamble: powPre },
  // comparisons (f32 masks) and where
  gt: { arity: 2, expr: 'select(T(0.0), T(1.0), a0 > a1)' },
  ge: { arity: 2, expr: 'select(T(0.0), T(1.0), a0 >= a1)' },
  lt: { arity: 2, expr: 'select(T(0.0), T(1.0), a0 < a1)' },
  le: { arity: 2, expr: 'select(T(0.0), T(1.0), a0 <= a1)' },
  eq: { arity: 2, expr: 'select(T(0.0), T(1.0), a0 == a1)' },
  ne: { arity: 2, expr: 'select(T(0.0), T(1.0), a0 != a1)' },
  where: { arity: 3, expr: 'select(a2, a1, a0 != T(0.0))' },
  where_backward_a: { arity: 2, expr: 'select(T(0.0), a1, a0 != T(0.0))' },
  where_backward_b: { arity: 2, expr: 'select(a1, T(0.0), a0 != T(0.0))' },
  // reductions' backward: max's gradient is shared among tied maxima
  max_backward: { arity: 3, expr: 'a0 * a1 / a2' },
});

export type ElementwiseOp = keyof typeof ELEMENTWISE.ops;
