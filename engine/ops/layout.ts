// Layout ops: permute / transpose, slice (Python semantics, any step), concat and pad, each
// with its backward. All are pure copies of 32-bit words, so f32 and i32 tensors both work
// (gradients flow only through f32). Kernels live in kernels/layout.ts.
import { Tensor, assertSameDevice, shapeStr, type Shape } from '../tensor.ts';
import type { Device } from '../device.ts';
import { record } from '../autograd.ts';
import { grid1d } from '../../kernels/elementwise.ts';
import {
  COPY_EPT,
  LAYOUT_MAX_RANK,
  collapseDims,
  collapsePadDims,
  contiguousStrides,
  padGatherKernel,
  stridedCopyKernel,
  transposeBlock4Kernel,
} from '../../kernels/layout.ts';
import { Uniforms, alloc, padTo } from './launch.ts';

// ---------------------------------------------------------------- shared launchers

/** Raw 32-bit pattern of `value` in dtype (the fill word of pad_gather). */
function fillBits(value: number, dtype: 'f32' | 'i32'): number {
  return dtype === 'f32' ? new Uint32Array(new Float32Array([value]).buffer)[0]! : value >>> 0;
}

/**
 * Copy x[sbase + sum c*sst] into y[dbase + sum c*dst] for every coordinate c of `shape`
 * (no autograd; y must already exist). Dims are collapsed first.
 */
export function stridedCopy(
  x: Tensor,
  y: Tensor,
  shape: readonly number[],
  sbase: number,
  sst: readonly number[],
  dbase: number,
  dst: readonly number[],
): void {
  const n = shape.reduce((a, b) => a * b, 1);
  if (n === 0) return;
  const c = collapseDims(shape, sst, dst);
  if (transposeBlock4(x, y, c, sbase, dbase)) return;
  if (c.shape.length > LAYOUT_MAX_RANK) throw new Error(`kinkless: strided_copy: rank ${c.shape.length} after merging contiguous dims exceeds ${LAYOUT_MAX_RANK}`);
  const r = c.shape.length;
  // NOTE: vec4 path when the innermost dim is contiguous on both sides and everything else
  // is 4-aligned (concat off the last axis, permutes that keep the last dim, unit-step slices).
  const vec4 =
    c.sst[r - 1] === 1 && c.dst[r - 1] === 1 && c.shape[r - 1]! % 4 === 0 && sbase % 4 === 0 && dbase % 4 === 0 &&
    c.sst.every((v, d) => d === r - 1 || v % 4 === 0) && c.dst.every((v, d) => d === r - 1 || v % 4 === 0);
  const q = vec4 ? 4 : 1;
  const dims = c.shape.map((v, d) => (d === r - 1 ? v / q : v));
  const inner = dims[r - 1]!;
  const chunks = Math.ceil(inner / COPY_EPT);
  const threads = (n / q / inner) * chunks;
  const g = grid1d(threads);
  const u = new Uniforms().u32(threads, r, g.gx, chunks).i32(sbase / q).u32(dbase / q, 0, 0);
  const div = (a: number[]) => a.map((v, d) => (d === r - 1 ? v : v / q));
  u.u32(...padTo(dims, 8, 1)).i32(...padTo(div(c.sst), 8, 0)).u32(...padTo(div(c.dst), 8, 0));
  const info = { op: 'strided_copy', geometry: `[${c.shape.join(', ')}]${vec4 ? ' vec4' : ''}`, flops: 0, bytes: 8 * n };
  x.device.dispatch({ kernel: stridedCopyKernel({ vec4 }), info, buffers: [x.buffer, y.buffer], uniforms: u.bytes(), workgroups: g.workgroups });
}

/**
 * Fast path: a batched transpose of the last two dims ([B, C, R] read from contiguous
 * [B, R, C] into contiguous y) with R, C multiples of 4 moves 4x4 blocks per thread.
 */
function transposeBlock4(x: Tensor, y: Tensor, c: { shape: number[]; sst: number[]; dst: number[] }, sbase: number, dbase: number): boolean {
  const r = c.shape.length;
  if (sbase !== 0 || dbase !== 0 || (r !== 2 && r !== 3)) return false;
  const [C, R] = c.shape.slice(r - 2) as [number, number];
  const B = r === 3 ? c.shape[0]! : 1;
  const want = { sst: [R * C, 1, C].slice(3 - r), dst: [C * R, R, 1].slice(3 - r) };
  if (R % 4 !== 0 || C % 4 !== 0 || c.sst.some((v, i) => v !== want.sst[i]) || c.dst.some((v, i) => v !== want.dst[i])) return false;
  const g = grid1d((B * R * C) / 16);
  const u = new Uniforms().u32(B, R / 4, C / 4, g.gx);
  const info = { op: 'transpose', geometry: `B${B} R${R} C${C}`, flops: 0, bytes: 8 * B * R * C };
  x.device.dispatch({ kernel: transposeBlock4Kernel, info, buffers: [x.buffer, y.buffer], uniforms: u.bytes(), workgroups: g.workgroups });
  return true;
}

/**
 * New contiguous tensor of `shape`: element c reads x[sum k_d * sstr_d] with
 * k_d = (c_d - off_d) / step_d when that is an exact in-range coordinate of `sshape`,
 * otherwise `value` (no autograd). x must be contiguous with shape `sshape`.
 */
export function padGather(x: Tensor, shape: readonly number[], off: readonly number[], step: readonly number[], value: number): Tensor {
  const y = alloc(x.device, shape, x.dtype);
  if (y.size === 0) return y;
  const c = collapsePadDims(shape, off, step, x.shape, contiguousStrides(x.shape));
  const unit = c.step.every((v) => v === 1);
  const inner = c.shape[c.shape.length - 1]!;
  const chunks = Math.ceil(inner / COPY_EPT);
  const threads = (y.size / inner) * chunks;
  const g = grid1d(threads);
  const u = new Uniforms().u32(threads, c.shape.length, g.gx, fillBits(value, x.dtype as 'f32' | 'i32'), chunks, 0, 0, 0);
  u.u32(...padTo(c.shape, 8, 1)).i32(...padTo(c.off, 8, 0)).i32(...padTo(c.step, 8, 1));
  u.u32(...padTo(c.sshape, 8, 1)).u32(...padTo(c.sstr, 8, 0));
  const info = { op: 'pad_gather', geometry: `[${c.sshape.join(', ')}] -> [${c.shape.join(', ')}]`, flops: 0, bytes: 4 * (x.size + y.size) };
  x.device.dispatch({ kernel: padGatherKernel({ unit }), info, buffers: [x.buffer, y.buffer], uniforms: u.bytes(), workgroups: g.workgroups });
  return y;
}

function checkTensor(op: string, x: unknown, arg = 'x'): asserts x is Tensor {
  if (!(x instanceof Tensor)) throw new Error(`kinkless: ${op}: ${arg} must be a Tensor, got ${x === null ? 'null' : typeof x}`);
  assertSameDevice(op, x);
  if (x.rank > LAYOUT_MAX_RANK) throw new Error(`kinkless: ${op}: ${arg} has rank ${x.rank} (shape ${shapeStr(x.shape)}); at most ${LAYOUT_MAX_RANK} is supported`);
}

/** Normalise one axis (negative counts from the end). */
export function normAxis(op: string, arg: string, axis: number, rank: number): number {
  if (!Number.isInteger(axis) || axis < -rank || axis >= rank) {
    throw new Error(`kinkless: ${op}: ${arg} ${axis} is out of range for a tensor of rank ${rank} (expected an integer in [${-rank}, ${rank - 1}])`);
  }
  return axis < 0 ? axis + rank : axis;
}

// ---------------------------------------------------------------- permute / transpose

/** Reorder dims: y.shape[i] = x.shape[perm[i]] (negative entries count from the end). */
export function permute(x: Tensor, perm: readonly number[]): Tensor {
  checkTensor('permute', x);
  if (!Array.isArray(perm as unknown) || perm.length !== x.rank) {
    throw new Error(`kinkless: permute: perm must list all ${x.rank} dims of ${shapeStr(x.shape)}, got ${Array.isArray(perm) ? `[${perm.join(', ')}]` : String(perm)}`);
  }
  const p = perm.map((a) => normAxis('permute', `perm entry`, a, x.rank));
  if (new Set(p).size !== p.length) throw new Error(`kinkless: permute: perm [${perm.join(', ')}] repeats a dim; expected a permutation of 0..${x.rank - 1}`);
  const xs = contiguousStrides(x.shape);
  const shape = p.map((a) => x.shape[a]!);
  const y = alloc(x.device, shape, x.dtype);
  stridedCopy(x, y, shape, 0, p.map((a) => xs[a]!), 0, contiguousStrides(shape));
  const inv = new Array<number>(p.length);
  p.forEach((a, i) => (inv[a] = i));
  record(y, 'permute', [x], (dy) => [permute(dy, inv)]);
  return y;
}

/** Swap two dims (default: the last two). */
export function transpose(x: Tensor, dim0 = -2, dim1 = -1): Tensor {
  checkTensor('transpose', x);
  const a = normAxis('transpose', 'dim0', dim0, x.rank);
  const b = normAxis('transpose', 'dim1', dim1, x.rank);
  const perm = Array.from({ length: x.rank }, (_, i) => (i === a ? b : i === b ? a : i));
  return permute(x, perm);
}

// ---------------------------------------------------------------- slice

export interface SliceAxis {
  start: number;
  step: number;
  len: number;
}

/**
 * Python's slice.indices for one axis of size n: negative start/end count from the end and
 * out-of-range values clamp; ±Infinity mean "from the beginning / to the end".
 */
export function sliceIndices(n: number, start: number, end: number, step: number): SliceAxis {
  const norm = (v: number, lo: number, hi: number): number => {
    if (v < 0) {
      v += n;
      return v < lo ? lo : v;
    }
    return v > hi ? hi : v;
  };
  let s: number;
  let e: number;
  if (step > 0) {
    s = norm(start, 0, n);
    e = norm(end, 0, n);
    return { start: s, step, len: e > s ? Math.floor((e - s - 1) / step) + 1 : 0 };
  }
  s = norm(start, -1, n - 1);
  e = norm(end, -1, n - 1);
  return { start: s, step, len: s > e ? Math.floor((s - e - 1) / -step) + 1 : 0 };
}

function checkIndexArray(op: string, arg: string, v: unknown, rank: number, allowInf: boolean): number[] {
  if (!Array.isArray(v)) throw new Error(`kinkless: ${op}: ${arg} must be an array of integers, got ${String(v)}`);
  if (v.length > rank) throw new Error(`kinkless: ${op}: ${arg} has ${v.length} entries but the tensor has rank ${rank}`);
  for (const a of v) {
    if (!(Number.isInteger(a) || (allowInf && (a === Infinity || a === -Infinity)))) {
      throw new Error(`kinkless: ${op}: ${arg} must hold integers${allowInf ? ' (or ±Infinity)' : ''}, got [${v.join(', ')}]`);
    }
  }
  return v as number[];
}

/**
 * Basic slicing of the leading starts.length axes (the rest are kept whole), like
 * x[s0:e0:k0, s1:e1:k1, ...] in Python: negative indices count from the end, out-of-range
 * bounds clamp, steps may be negative (never 0); ±Infinity stand for an omitted bound.
 */
export function slice(x: Tensor, starts: readonly number[], ends: readonly number[], steps?: readonly number[]): Tensor {
  checkTensor('slice', x);
  const st = checkIndexArray('slice', 'starts', starts, x.rank, true);
  const en = checkIndexArray('slice', 'ends', ends, x.rank, true);
  const sp = steps === undefined ? st.map(() => 1) : checkIndexArray('slice', 'steps', steps, x.rank, false);
  if (en.length !== st.length || sp.length !== st.length) {
    throw new Error(`kinkless: slice: starts, ends and steps must have the same length, got ${st.length}, ${en.length} and ${sp.length}`);
  }
  const zi = sp.indexOf(0);
  if (zi >= 0) throw new Error(`kinkless: slice: steps[${zi}] is 0; a step must be a non-zero integer`);
  const ax: SliceAxis[] = x.shape.map((n, d) => (d < st.length ? sliceIndices(n, st[d]!, en[d]!, sp[d]!) : { start: 0, step: 1, len: n }));
  const shape = ax.map((a) => a.len);
  const xs = contiguousStrides(x.shape);
  const y = alloc(x.device, shape, x.dtype);
  const sbase = ax.reduce((acc, a, d) => acc + a.start * xs[d]!, 0);
  stridedCopy(x, y, shape, sbase, ax.map((a, d) => a.step * xs[d]!), 0, contiguousStrides(shape));
  const xShape: Shape = x.shape;
  record(y, 'slice', [x], (dy) => [
    padGather(
      dy,
      xShape,
      ax.map((a) => a.start),
      ax.map((a) => a.step),
      0,
    ),
  ]);
  return y;
}

// ---------------------------------------------------------------- concat

/** Join tensors along `axis` (all other dims must match; same dtype and device). */
export function concat(tensors: readonly Tensor[], axis = 0): Tensor {
  if (!Array.isArray(tensors as unknown) || tensors.length === 0) throw new Error(`kinkless: concat: tensors must be a non-empty array of Tensors`);
  tensors.forEach((t, i) => checkTensor('concat', t, `tensors[${i}]`));
  const first = tensors[0]!;
  const device: Device = assertSameDevice('concat', ...tensors);
  if (first.rank === 0) throw new Error(`kinkless: concat: cannot concatenate rank-0 tensors; unsqueeze them first`);
  const a = normAxis('concat', 'axis', axis, first.rank);
  tensors.forEach((t, i) => {
    if (t.dtype !== first.dtype) throw new Error(`kinkless: concat: tensors[${i}] is ${t.dtype} but tensors[0] is ${first.dtype}`);
    if (t.rank !== first.rank || t.shape.some((d, k) => k !== a && d !== first.shape[k])) {
      throw new Error(`kinkless: concat: tensors[${i}] has shape ${shapeStr(t.shape)}, which does not match tensors[0] ${shapeStr(first.shape)} outside axis ${a}`);
    }
  });
  const shape = [...first.shape];
  shape[a] = tensors.reduce((acc, t) => acc + t.shape[a]!, 0);
  const y = alloc(device, shape, first.dtype);
  const ys = contiguousStrides(shape);
  const offsets: number[] = [];
  let off = 0;
  for (const t of tensors) {
    offsets.push(off);
    stridedCopy(t, y, t.shape, 0, contiguousStrides(t.shape), off * ys[a]!, ys);
    off += t.shape[a]!;
  }
  record(y, 'concat', [...tensors], (dy) =>
    tensors.map((t, i) => {
      if (!t.requiresGrad) return null;
      const g = alloc(device, t.shape, dy.dtype);
      stridedCopy(dy, g, t.shape, offsets[i]! * ys[a]!, ys, 0, contiguousStrides(t.shape));
      return g;
    }),
  );
  return y;
}

// ---------------------------------------------------------------- pad

/**
 * Pad with a constant: pads[j] = [before, after] for each of the last pads.length axes
 * (pads.length <= rank; earlier axes are untouched). NOTE: negative amounts crop, as long
 * as no dim becomes negative. `value` must be an integer for i32 tensors.
 */
export function pad(x: Tensor, pads: readonly (readonly [number, number])[], value = 0): Tensor {
  checkTensor('pad', x);
  if (!Array.isArray(pads as unknown) || pads.length > x.rank) {
    throw new Error(`kinkless: pad: pads must be an array of at most ${x.rank} [before, after] pairs for ${shapeStr(x.shape)}, got ${JSON.stringify(pads)}`);
  }
  for (const p of pads) {
    if (!Array.isArray(p) || p.length !== 2 || !Number.isInteger(p[0]) || !Number.isInteger(p[1])) {
      throw new Error(`kinkless: pad: each pad must be a pair of integers [before, after], got ${JSON.stringify(p)} in ${JSON.stringify(pads)}`);
    }
  }
  if (typeof value !== 'number' || Number.isNaN(value) || (x.dtype === 'i32' && !Number.isInteger(value))) {
    throw new Error(`kinkless: pad: value must be ${x.dtype === 'i32' ? 'an integer for an i32 tensor' : 'a number'}, got ${String(value)}`);
  }
  const lead = x.rank - pads.length;
  const before = x.shape.map((_, d) => (d < lead ? 0 : pads[d - lead]![0]));
  const after = x.shape.map((_, d) => (d < lead ? 0 : pads[d - lead]![1]));
  const shape = x.shape.map((n, d) => n + before[d]! + after[d]!);
  const bad = shape.findIndex((n) => n < 0);
  if (bad >= 0) throw new Error(`kinkless: pad: pads ${JSON.stringify(pads)} make dim ${bad} of ${shapeStr(x.shape)} negative (${shape[bad]})`);
  const ones = x.shape.map(() => 1);
  const y = padGather(x, shape, before, ones, value);
  const xShape: Shape = x.shape;
  record(y, 'pad', [x], (dy) => [padGather(dy, xShape, before.map((b) => -b), ones, 0)]);
  return y;
}
