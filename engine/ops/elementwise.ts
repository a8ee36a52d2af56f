// Elementwise ops with broadcasting: binary arithmetic, unary math, comparisons, where,
// and fills. Each op has its forward and its backward side by side.
import { Tensor, assertSameDevice, shapeStr, type DType, type Shape } from '../tensor.ts';
import type { Device } from '../device.ts';
import { record } from '../autograd.ts';
import { EW_MAX_RANK, broadcastShapes, broadcastStrides, elementwiseKernel, grid1d, type ElementwiseKernel } from '../../kernels/elementwise.ts';
import { Uniforms, alloc, padTo } from './launch.ts';
import { sumToShape } from './reduce.ts';

export interface EwOptions {
  out?: DType;
  scalars?: number[];
  preamble?: string;
  /** Output shape (defaults to the broadcast of the inputs). */
  shape?: Shape;
}

function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Launch an elementwise kernel over broadcast inputs (no autograd). */
export function ew(name: string, expr: string, inputs: Tensor[], opts: EwOptions = {}): Tensor {
  const device = assertSameDevice(name, ...inputs);
  const outShape = opts.shape ?? broadcastShapes(name, ...inputs.map((t) => t.shape));
  const out = alloc(device, outShape, opts.out ?? 'f32');
  const n = out.size;
  if (n === 0) return out;
  const contiguous = inputs.every((t) => sameShape(t.shape, outShape));
  const mode: ElementwiseKernel['mode'] = contiguous ? (n % 4 === 0 ? 'vec4' : 'flat') : 'broadcast';
  if (outShape.length > EW_MAX_RANK && mode === 'broadcast') throw new Error(`kinkless: ${name}: rank ${outShape.length} exceeds ${EW_MAX_RANK}`);
  const kernel = elementwiseKernel({ name, inputs: inputs.map((t) => t.dtype), out: out.dtype, expr, mode, preamble: opts.preamble });
  const threads = mode === 'vec4' ? n / 4 : n;
  const g = grid1d(threads);
  const u = new Uniforms().u32(threads, outShape.length, g.gx, 0);
  u.u32(...padTo(outShape, 8, 1));
  for (const t of inputs) u.u32(...padTo(mode === 'broadcast' ? broadcastStrides(t.shape, outShape) : [], 8, 0));
  const sc = padTo(opts.scalars ?? [], 4, 0);
  u.f32(...sc);
  device.dispatch({ kernel, buffers: [...inputs.map((t) => t.buffer), out.buffer], uniforms: u.bytes(), workgroups: g.workgroups });
  return out;
}

function toTensor(device: Device, v: Tensor | number): Tensor {
  return typeof v === 'number' ? full(device, [], v) : v;
}

function checkNumber(op: string, arg: string, v: number): void {
  if (typeof v !== 'number' || Number.isNaN(v)) throw new Error(`kinkless: ${op}: ${arg} must be a number, got ${String(v)}`);
}

// ---------------------------------------------------------------- fills and copies

export function full(device: Device, shape: Shape, value: number, dtype: DType = 'f32'): Tensor {
  checkNumber('full', 'value', value);
  const t = alloc(device, shape, dtype);
  if (t.size === 0) return t;
  const arr = dtype === 'f32' ? new Float32Array(t.size).fill(value) : new Int32Array(t.size).fill(value);
  device.queue.upload(t.buffer, arr);
  return t;
}

export function zeros(device: Device, shape: Shape, dtype: DType = 'f32'): Tensor {
  return fill(device, shape, 0, dtype);
}

export function ones(device: Device, shape: Shape): Tensor {
  return fill(device, shape, 1, 'f32');
}

/** GPU-side fill (no upload). */
export function fill(device: Device, shape: Shape, value: number, dtype: DType = 'f32'): Tensor {
  checkNumber('fill', 'value', value);
  const dummy = alloc(device, [1], dtype);
  // NOTE: i32 fill passes the value through f32; exact for |value| < 2^24.
  const out = ew('fill', dtype === 'f32' ? 'T(s.x)' : 'T(i32(s.x))', [dummy], { shape, out: dtype, scalars: [value] });
  dummy.dispose();
  return out;
}

export function zerosLike(t: Tensor): Tensor {
  return fill(t.device, t.shape, 0, t.dtype);
}

export function onesLike(t: Tensor): Tensor {
  return fill(t.device, t.shape, 1, t.dtype);
}

/** Copy with no autograd history. */
export function clone(t: Tensor): Tensor {
  return ew('copy', 'a0', [t], { out: t.dtype });
}

/** A copy that is cut from the tape (its gradient never flows back). */
export function detach(t: Tensor): Tensor {
  return clone(t);
}

/** int32 -> float32 conversion (no gradient). */
export function toFloat(t: Tensor): Tensor {
  if (t.dtype === 'f32') return clone(t);
  return ew('to_float', 'T(a0)', [t], { out: 'f32' });
}

// ---------------------------------------------------------------- binary arithmetic

type Operand = Tensor | number;

/** Reduce a gradient to an operand's shape; frees g unless it is `keep` (the incoming dy). */
function reduceGrad(g: Tensor, shape: Shape, keepT?: Tensor): Tensor {
  if (sameShape(g.shape, shape)) return g;
  const r = sumToShape(g, shape);
  if (g !== keepT) g.dispose();
  return r;
}

function binary(
  name: string,
  a: Operand,
  b: Operand,
  expr: string,
  back: (dy: Tensor, A: Tensor, B: Tensor) => [Tensor | null, Tensor | null],
): Tensor {
  if (typeof a === 'number' && typeof b === 'number') throw new Error(`kinkless: ${name}: at least one operand must be a Tensor`);
  const device = (typeof a === 'number' ? (b as Tensor) : a).device;
  for (const [arg, v] of [['a', a], ['b', b]] as const) if (typeof v === 'number') checkNumber(name, arg, v);
  const A = toTensor(device, a);
  const B = toTensor(device, b);
  for (const [arg, t] of [['a', A], ['b', B]] as const) {
    if (t.dtype !== 'f32') throw new Error(`kinkless: ${name}: ${arg} must be f32, got an ${t.dtype} tensor of shape ${shapeStr(t.shape)}`);
  }
  const out = ew(name, expr, [A, B]);
  // NOTE: scalar operands become one-element tensors; freed at once when no tape keeps them.
  if (!record(out, name, [A, B], (dy) => {
    const [ga, gb] = back(dy, A, B);
    const out: (Tensor | null)[] = [null, null];
    if (ga) out[0] = A.requiresGrad ? reduceGrad(ga, A.shape, dy) : (ga !== dy && ga.dispose(), null);
    if (gb) out[1] = B.requiresGrad ? reduceGrad(gb, B.shape, dy) : (gb !== dy && gb.dispose(), null);
    return out;
  }).node) {
    if (A !== a) A.dispose();
    if (B !== b) B.dispose();
  }
  return out;
}

export function add(a: Operand, b: Operand): Tensor {
  return binary('add', a, b, 'a0 + a1', (dy, A, B) => [A.requiresGrad ? dy : null, B.requiresGrad ? dy : null]);
}

export function sub(a: Operand, b: Operand): Tensor {
  return binary('sub', a, b, 'a0 - a1', (dy, A, B) => [A.requiresGrad ? dy : null, B.requiresGrad ? ew('neg', '-a0', [dy]) : null]);
}

export function mul(a: Operand, b: Operand): Tensor {
  return binary('mul', a, b, 'a0 * a1', (dy, A, B) => [
    A.requiresGrad ? ew('mul', 'a0 * a1', [dy, B]) : null,
    B.requiresGrad ? ew('mul', 'a0 * a1', [dy, A]) : null,
  ]);
}

export function div(a: Operand, b: Operand): Tensor {
  return binary('div', a, b, 'a0 / a1', (dy, A, B) => [
    A.requiresGrad ? ew('div', 'a0 / a1', [dy, B]) : null,
    B.requiresGrad ? ew('div_backward_b', '-a0 * a1 / (a2 * a2)', [dy, A, B]) : null,
  ]);
}

// NOTE: at ties the gradient is split evenly between both operands (PyTorch's rule).
export function maximum(a: Operand, b: Operand): Tensor {
  return binary('maximum', a, b, 'max(a0, a1)', (dy, A, B) => [
    A.requiresGrad ? ew('maximum_backward', 'a0 * (select(T(0.0), T(1.0), a1 > a2) + select(T(0.0), T(0.5), a1 == a2))', [dy, A, B]) : null,
    B.requiresGrad ? ew('maximum_backward', 'a0 * (select(T(0.0), T(1.0), a1 > a2) + select(T(0.0), T(0.5), a1 == a2))', [dy, B, A]) : null,
  ]);
}

export function minimum(a: Operand, b: Operand): Tensor {
  return binary('minimum', a, b, 'min(a0, a1)', (dy, A, B) => [
    A.requiresGrad ? ew('minimum_backward', 'a0 * (select(T(0.0), T(1.0), a1 < a2) + select(T(0.0), T(0.5), a1 == a2))', [dy, A, B]) : null,
    B.requiresGrad ? ew('minimum_backward', 'a0 * (select(T(0.0), T(1.0), a1 < a2) + select(T(0.0), T(0.5), a1 == a2))', [dy, B, A]) : null,
  ]);
}

// ---------------------------------------------------------------- unary math

function unary(name: string, x: Tensor, expr: string, back: ((dy: Tensor, x: Tensor, y: Tensor) => Tensor) | null, scalars?: number[], preamble?: string): Tensor {
  assertSameDevice(name, x);
  if (x.dtype !== 'f32') throw new Error(`kinkless: ${name}: x must be f32, got an ${x.dtype} tensor of shape ${shapeStr(x.shape)}`);
  const y = ew(name, expr, [x], { scalars, preamble });
  if (back) record(y, name, [x], (dy) => [back(dy, x, y)]);
  return y;
}

export function neg(x: Tensor): Tensor {
  return unary('neg', x, '-a0', (dy) => ew('neg', '-a0', [dy]));
}

// NOTE: exp's argument is clamped to 88.72 (exp = 3.4e38, the largest finite float32):
// WGSL's finite-math rule makes exp of a larger argument indeterminate, not Inf.
export function exp(x: Tensor): Tensor {
  return unary('exp', x, 'exp(min(a0, T(88.72)))', (dy, _x, y) => ew('mul', 'a0 * a1', [dy, y]));
}

// NOTE: log of 0 and of negative numbers is undefined under WGSL's finite-math rule;
// the input is clamped to the smallest normal float32 (log = -87.3).
export function log(x: Tensor): Tensor {
  return unary('log', x, 'log(max(a0, T(1.17549435e-38)))', (dy, x) => ew('div', 'a0 / a1', [dy, x]));
}

export function sqrt(x: Tensor): Tensor {
  return unary('sqrt', x, 'sqrt(max(a0, T(0.0)))', (dy, _x, y) => ew('sqrt_backward', 'a0 / (T(2.0) * a1)', [dy, y]));
}

export function abs(x: Tensor): Tensor {
  return unary('abs', x, 'abs(a0)', (dy, x) => ew('abs_backward', 'a0 * sign(a1)', [dy, x]));
}

/** sign(x) with sign(0) = 0; its gradient is zero. */
export function sign(x: Tensor): Tensor {
  return unary('sign', x, 'sign(a0)', null);
}

/** Clamp to [lo, hi]; the gradient passes where lo <= x <= hi (PyTorch's rule). */
export function clamp(x: Tensor, lo: number, hi: number): Tensor {
  checkNumber('clamp', 'lo', lo);
  checkNumber('clamp', 'hi', hi);
  if (lo > hi) throw new Error(`kinkless: clamp: lo (${lo}) must be <= hi (${hi})`);
  return unary('clamp', x, 'clamp(a0, T(s.x), T(s.y))', (dy, x) => ew('clamp_backward', 'a0 * select(T(0.0), T(1.0), (a1 >= T(s.x)) & (a1 <= T(s.y)))', [dy, x], { scalars: [lo, hi] }), [lo, hi]);
}

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

/** x^p for a scalar p (negative bases allowed for integer p). */
export function powScalar(x: Tensor, p: number): Tensor {
  checkNumber('powScalar', 'p', p);
  const pre = (vec: boolean) => POW_PRE.replace('KPOW', vec ? 'k_pow4' : 'k_pow');
  const vec = x.size % 4 === 0;
  return unary('pow', x, 'k_powT(a0, s.x)', (dy, x) => ew('pow_backward', 'a0 * T(s.x) * k_powT(a1, s.x - 1.0)', [dy, x], { scalars: [p], preamble: pre(dy.size % 4 === 0) }), [p], pre(vec));
}

// ---------------------------------------------------------------- comparisons and where

function compare(name: string, op: string, a: Operand, b: Operand): Tensor {
  const device = (typeof a === 'number' ? (b as Tensor) : a).device;
  const A = typeof a === 'number' ? full(device, [], a, (b as Tensor).dtype) : a;
  const B = typeof b === 'number' ? full(device, [], b, A.dtype) : b;
  if (A.dtype !== B.dtype) throw new Error(`kinkless: ${name}: operands must have the same dtype, got ${A.dtype} and ${B.dtype}`);
  const r = ew(name, `select(T(0.0), T(1.0), a0 ${op} a1)`, [A, B], { out: 'f32' });
  if (A !== a) A.dispose();
  if (B !== b) B.dispose();
  return r;
}

/** 1.0 where a > b, else 0.0 (f32 mask, no gradient). */
export const gt = (a: Operand, b: Operand) => compare('gt', '>', a, b);
export const ge = (a: Operand, b: Operand) => compare('ge', '>=', a, b);
export const lt = (a: Operand, b: Operand) => compare('lt', '<', a, b);
export const le = (a: Operand, b: Operand) => compare('le', '<=', a, b);
export const eq = (a: Operand, b: Operand) => compare('eq', '==', a, b);
export const ne = (a: Operand, b: Operand) => compare('ne', '!=', a, b);

/** where(cond != 0, a, b) with broadcasting; cond is an f32 mask and gets no gradient. */
export function where(cond: Tensor, a: Operand, b: Operand): Tensor {
  const device = cond.device;
  const A = toTensor(device, a);
  const B = toTensor(device, b);
  if (cond.dtype !== 'f32') throw new Error(`kinkless: where: cond must be an f32 mask, got ${cond.dtype}`);
  const out = ew('where', 'select(a2, a1, a0 != T(0.0))', [cond, A, B]);
  record(out, 'where', [A, B], (dy) => [
    A.requiresGrad ? reduceGrad(ew('where_backward', 'select(T(0.0), a1, a0 != T(0.0))', [cond, dy]), A.shape) : null,
    B.requiresGrad ? reduceGrad(ew('where_backward', 'select(a1, T(0.0), a0 != T(0.0))', [cond, dy]), B.shape) : null,
  ]);
  return out;
}
