// Elementwise ops with broadcasting: binary arithmetic, unary math, comparisons, where,
// and fills. Each op has its forward and its backward side by side.
import { Tensor, assertSameDevice, shapeStr, type DType, type Shape } from '../tensor.ts';
import type { Device } from '../device.ts';
import { record } from '../autograd.ts';
import { ELEMENTWISE, type ElementwiseOp } from '../../kernels/elementwise_ops.ts';
import { launchEw, type EwOptions } from './ew_launch.ts';
import { alloc } from './launch.ts';
import { sumToShape } from './reduce.ts';

function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Launch one of the engine's basic elementwise ops (kernels/elementwise_ops.ts); no autograd. */
function ew(op: ElementwiseOp, inputs: Tensor[], opts?: EwOptions): Tensor {
  return launchEw(ELEMENTWISE, op, inputs, opts);
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
  const out = ew(dtype === 'f32' ? 'fill' : 'fill_i32', [dummy], { shape, out: dtype, scalars: [value] });
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
  return ew('copy', [t], { out: t.dtype });
}

/** A copy that is cut from the tape (its gradient never flows back). */
export function detach(t: Tensor): Tensor {
  return clone(t);
}

/** int32 -> float32 conversion (no gradient). */
export function toFloat(t: Tensor): Tensor {
  if (t.dtype === 'f32') return clone(t);
  return ew('to_float', [t], { out: 'f32' });
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
  name: 'add' | 'sub' | 'mul' | 'div' | 'maximum' | 'minimum',
  a: Operand,
  b: Operand,
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
  const out = ew(name, [A, B]);
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
  return binary('add', a, b, (dy, A, B) => [A.requiresGrad ? dy : null, B.requiresGrad ? dy : null]);
}

export function sub(a: Operand, b: Operand): Tensor {
  return binary('sub', a, b, (dy, A, B) => [A.requiresGrad ? dy : null, B.requiresGrad ? ew('neg', [dy]) : null]);
}

export function mul(a: Operand, b: Operand): Tensor {
  return binary('mul', a, b, (dy, A, B) => [
    A.requiresGrad ? ew('mul', [dy, B]) : null,
    B.requiresGrad ? ew('mul', [dy, A]) : null,
  ]);
}

export function div(a: Operand, b: Operand): Tensor {
  return binary('div', a, b, (dy, A, B) => [
    A.requiresGrad ? ew('div', [dy, B]) : null,
    B.requiresGrad ? ew('div_backward_b', [dy, A, B]) : null,
  ]);
}

// NOTE: at ties the gradient is split evenly between both operands (PyTorch's rule).
export function maximum(a: Operand, b: Operand): Tensor {
  return binary('maximum', a, b, (dy, A, B) => [
    A.requiresGrad ? ew('maximum_backward', [dy, A, B]) : null,
    B.requiresGrad ? ew('maximum_backward', [dy, B, A]) : null,
  ]);
}

export function minimum(a: Operand, b: Operand): Tensor {
  return binary('minimum', a, b, (dy, A, B) => [
    A.requiresGrad ? ew('minimum_backward', [dy, A, B]) : null,
    B.requiresGrad ? ew('minimum_backward', [dy, B, A]) : null,
  ]);
}

// ---------------------------------------------------------------- unary math

function unary(name: 'neg' | 'exp' | 'log' | 'sqrt' | 'abs' | 'sign' | 'clamp' | 'pow', x: Tensor, back: ((dy: Tensor, x: Tensor, y: Tensor) => Tensor) | null, scalars?: number[]): Tensor {
  assertSameDevice(name, x);
  if (x.dtype !== 'f32') throw new Error(`kinkless: ${name}: x must be f32, got an ${x.dtype} tensor of shape ${shapeStr(x.shape)}`);
  const y = ew(name, [x], { scalars });
  if (back) record(y, name, [x], (dy) => [back(dy, x, y)]);
  return y;
}

export function neg(x: Tensor): Tensor {
  return unary('neg', x, (dy) => ew('neg', [dy]));
}

// NOTE: exp's argument is clamped to 88.72 (exp = 3.4e38, the largest finite float32):
// WGSL's finite-math rule makes exp of a larger argument indeterminate, not Inf.
export function exp(x: Tensor): Tensor {
  return unary('exp', x, (dy, _x, y) => ew('mul', [dy, y]));
}

// NOTE: log of 0 and of negative numbers is undefined under WGSL's finite-math rule;
// the input is clamped to the smallest normal float32 (log = -87.3).
export function log(x: Tensor): Tensor {
  return unary('log', x, (dy, x) => ew('div', [dy, x]));
}

export function sqrt(x: Tensor): Tensor {
  return unary('sqrt', x, (dy, _x, y) => ew('sqrt_backward', [dy, y]));
}

export function abs(x: Tensor): Tensor {
  return unary('abs', x, (dy, x) => ew('abs_backward', [dy, x]));
}

/** sign(x) with sign(0) = 0; its gradient is zero. */
export function sign(x: Tensor): Tensor {
  return unary('sign', x, null);
}

/** Clamp to [lo, hi]; the gradient passes where lo <= x <= hi (PyTorch's rule). */
export function clamp(x: Tensor, lo: number, hi: number): Tensor {
  checkNumber('clamp', 'lo', lo);
  checkNumber('clamp', 'hi', hi);
  if (lo > hi) throw new Error(`kinkless: clamp: lo (${lo}) must be <= hi (${hi})`);
  return unary('clamp', x, (dy, x) => ew('clamp_backward', [dy, x], { scalars: [lo, hi] }), [lo, hi]);
}

// NOTE: pow's kernel multiplies small integer powers out and handles |x| = 0 explicitly
// (kernels/elementwise_ops.ts).
/** x^p for a scalar p (negative bases allowed for integer p). */
export function powScalar(x: Tensor, p: number): Tensor {
  checkNumber('powScalar', 'p', p);
  return unary('pow', x, (dy, x) => ew('pow_backward', [dy, x], { scalars: [p] }), [p]);
}

// ---------------------------------------------------------------- comparisons and where

function compare(name: 'gt' | 'ge' | 'lt' | 'le' | 'eq' | 'ne', a: Operand, b: Operand): Tensor {
  const device = (typeof a === 'number' ? (b as Tensor) : a).device;
  const A = typeof a === 'number' ? full(device, [], a, (b as Tensor).dtype) : a;
  const B = typeof b === 'number' ? full(device, [], b, A.dtype) : b;
  if (A.dtype !== B.dtype) throw new Error(`kinkless: ${name}: operands must have the same dtype, got ${A.dtype} and ${B.dtype}`);
  const r = ew(name, [A, B], { out: 'f32' });
  if (A !== a) A.dispose();
  if (B !== b) B.dispose();
  return r;
}

/** 1.0 where a > b, else 0.0 (f32 mask, no gradient). */
export const gt = (a: Operand, b: Operand) => compare('gt', a, b);
export const ge = (a: Operand, b: Operand) => compare('ge', a, b);
export const lt = (a: Operand, b: Operand) => compare('lt', a, b);
export const le = (a: Operand, b: Operand) => compare('le', a, b);
export const eq = (a: Operand, b: Operand) => compare('eq', a, b);
export const ne = (a: Operand, b: Operand) => compare('ne', a, b);

/** where(cond != 0, a, b) with broadcasting; cond is an f32 mask and gets no gradient. */
export function where(cond: Tensor, a: Operand, b: Operand): Tensor {
  const device = cond.device;
  const A = toTensor(device, a);
  const B = toTensor(device, b);
  if (cond.dtype !== 'f32') throw new Error(`kinkless: where: cond must be an f32 mask, got ${cond.dtype}`);
  const out = ew('where', [cond, A, B]);
  record(out, 'where', [A, B], (dy) => [
    A.requiresGrad ? reduceGrad(ew('where_backward_a', [cond, dy]), A.shape) : null,
    B.requiresGrad ? reduceGrad(ew('where_backward_b', [cond, dy]), B.shape) : null,
  ]);
  return out;
}
