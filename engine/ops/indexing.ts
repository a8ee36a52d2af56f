// Indexing ops: gather (index_select along an axis), takeAlongAxis (one element per row,
// e.g. the label's logit) and oneHot, with scatter-free backwards (no f32 atomics in WGSL),
// plus explicit async range checks (a GPU kernel cannot throw; checking costs a readback).
import { Tensor, assertSameDevice, shapeStr } from '../tensor.ts';
import { record } from '../autograd.ts';
import { grid1d } from '../../kernels/elementwise.ts';
import {
  LAYOUT_WG,
  exclusiveScanKernel,
  gatherBackwardNaiveKernel,
  gatherBackwardSumKernel,
  gatherBucketKernel,
  gatherKernel,
  oneHotKernel,
  takeAlongAxisBackwardKernel,
  takeAlongAxisKernel,
} from '../../kernels/layout.ts';
import { Uniforms, alloc } from './launch.ts';
import { normAxis } from './layout.ts';

function checkTensor(op: string, arg: string, t: unknown): asserts t is Tensor {
  if (!(t instanceof Tensor)) throw new Error(`kinkless: ${op}: ${arg} must be a Tensor, got ${t === null ? 'null' : typeof t}`);
}

function checkIndexTensor(op: string, arg: string, t: unknown): asserts t is Tensor {
  checkTensor(op, arg, t);
  if (t.dtype !== 'i32') throw new Error(`kinkless: ${op}: ${arg} must be an i32 tensor, got ${t.dtype} tensor of shape ${shapeStr(t.shape)}`);
}

function gatherUniforms(outer: number, A: number, K: number, inner: number, gx: number): ArrayBuffer {
  return new Uniforms().u32(outer, A, K, inner, gx).bytes();
}

function prod(a: readonly number[]): number {
  return a.reduce((p, d) => p * d, 1);
}

// ---------------------------------------------------------------- gather

/** Which scatter-free backward gather uses: 'auto' picks by cost (see gatherBackward). */
export type GatherBackwardMode = 'auto' | 'naive' | 'bucket';

/**
 * dx = scatter-add of dy [outer, K, inner] into [outer, A, inner] at idx [K] (no autograd).
 * NOTE: cost. 'naive': one thread per dx element loops over all K indices, O(outer*A*inner*K)
 * work in one dispatch. 'bucket': four dispatches: count the hits of each destination
 * (thread per destination, O(A*K) compares), exclusive scan (one workgroup, O(A)), list each
 * destination's k in ascending order (O(A*K) compares), then one thread per dx element sums
 * its list, O(outer*inner*(A + K)) reads. Both are deterministic (ascending k) and need no
 * atomics. 'auto' uses naive when K <= 16 or outer*inner <= 4, else bucket.
 */
export function gatherBackward(dy: Tensor, idx: Tensor, outer: number, A: number, inner: number, mode: GatherBackwardMode = 'auto'): Tensor {
  const device = dy.device;
  const K = idx.size;
  const dx = alloc(device, [outer * A * inner]);
  const n = dx.size;
  if (n === 0) return dx;
  const g = grid1d(n);
  const useNaive = mode === 'naive' || (mode === 'auto' && (K <= 16 || outer * inner <= 4));
  const geometry = `outer${outer} A${A} K${K} inner${inner}`;
  if (useNaive) {
    const info = { op: 'gather_backward', geometry, flops: n * K, bytes: 4 * (outer * K * inner + K + n) };
    device.dispatch({ kernel: gatherBackwardNaiveKernel, info, buffers: [dy.buffer, idx.buffer, dx.buffer], uniforms: gatherUniforms(outer, A, K, inner, g.gx), workgroups: g.workgroups });
    return dx;
  }
  const cnt = alloc(device, [A], 'i32');
  const start = alloc(device, [A + 1], 'i32');
  const order = alloc(device, [Math.max(K, 1)], 'i32');
  const ga = grid1d(A);
  const ua = gatherUniforms(outer, A, K, inner, ga.gx);
  const op = 'gather_backward';
  device.dispatch({ kernel: gatherBucketKernel({ pass: 'count' }), info: { op, geometry, flops: 0, bytes: 4 * (K + A) }, buffers: [idx.buffer, cnt.buffer], uniforms: ua, workgroups: ga.workgroups });
  const L = Math.ceil(A / LAYOUT_WG);
  device.dispatch({ kernel: exclusiveScanKernel, info: { op, geometry, flops: 0, bytes: 4 * (2 * A + 1) }, buffers: [cnt.buffer, start.buffer], uniforms: new Uniforms().u32(A, L).bytes(), workgroups: [1, 1] });
  device.dispatch({ kernel: gatherBucketKernel({ pass: 'place' }), info: { op, geometry, flops: 0, bytes: 4 * (2 * K + A + 1) }, buffers: [idx.buffer, start.buffer, order.buffer], uniforms: ua, workgroups: ga.workgroups });
  device.dispatch({ kernel: gatherBackwardSumKernel, info: { op, geometry, flops: outer * K * inner, bytes: 4 * (outer * K * inner + A + 1 + K + n) }, buffers: [dy.buffer, start.buffer, order.buffer, dx.buffer], uniforms: gatherUniforms(outer, A, K, inner, g.gx), workgroups: g.workgroups });
  cnt.dispose();
  start.dispose();
  order.dispose();
  return dx;
}

/**
 * index_select along `axis` (numpy `take`): y.shape = x.shape[:axis] + indices.shape +
 * x.shape[axis+1:], y[..., k, ...] = x[..., indices[k], ...]. x is f32 or i32; indices are
 * i32 in [0, x.shape[axis]) (no wrap-around of negatives). NOTE: an out-of-range index reads
 * 0 and gets no gradient; call assertIndexRange first to turn it into an error.
 * Backward: deterministic scatter-add without atomics (see gatherBackward for the cost).
 */
export function gather(x: Tensor, indices: Tensor, axis = 0): Tensor {
  checkTensor('gather', 'x', x);
  checkIndexTensor('gather', 'indices', indices);
  const device = assertSameDevice('gather', x, indices);
  if (x.rank === 0) throw new Error(`kinkless: gather: x must have rank >= 1, got a scalar`);
  const a = normAxis('gather', 'axis', axis, x.rank);
  const outer = prod(x.shape.slice(0, a));
  const A = x.shape[a]!;
  const inner = prod(x.shape.slice(a + 1));
  const K = indices.size;
  const shape = [...x.shape.slice(0, a), ...indices.shape, ...x.shape.slice(a + 1)];
  const y = alloc(device, shape, x.dtype);
  if (y.size > 0) {
    const g = grid1d(y.size);
    const info = { op: 'gather', geometry: `outer${outer} A${A} K${K} inner${inner}`, flops: 0, bytes: 4 * (2 * y.size + K) };
    device.dispatch({ kernel: gatherKernel, info, buffers: [x.buffer, indices.buffer, y.buffer], uniforms: gatherUniforms(outer, A, K, inner, g.gx), workgroups: g.workgroups });
  }
  const xShape = x.shape;
  record(y, 'gather', [x], (dy) => {
    const dx = gatherBackward(dy, indices, outer, A, inner);
    const v = dx.view(xShape);
    dx.dispose();
    return [v];
  });
  return y;
}

// ---------------------------------------------------------------- takeAlongAxis

/**
 * Pick one element along `axis` for every other position: x [N, C], idx [N] -> [N] with
 * y[n] = x[n, idx[n]] (the label's logit). Generally idx.shape = x.shape without `axis`.
 * NOTE: an index outside [0, C) reads 0 and gets no gradient (see assertIndexRange).
 * Backward: dx = dy scattered into zeros (thread per dx element; no atomics needed as each
 * dx element has at most one source).
 */
export function takeAlongAxis(x: Tensor, idx: Tensor, axis = -1): Tensor {
  checkTensor('takeAlongAxis', 'x', x);
  checkIndexTensor('takeAlongAxis', 'idx', idx);
  const device = assertSameDevice('takeAlongAxis', x, idx);
  if (x.rank === 0) throw new Error(`kinkless: takeAlongAxis: x must have rank >= 1, got a scalar`);
  const a = normAxis('takeAlongAxis', 'axis', axis, x.rank);
  const want = x.shape.filter((_, d) => d !== a);
  if (idx.rank !== want.length || idx.shape.some((d, i) => d !== want[i])) {
    throw new Error(`kinkless: takeAlongAxis: idx must have shape ${shapeStr(want)} (x ${shapeStr(x.shape)} without axis ${a}), got ${shapeStr(idx.shape)}`);
  }
  const outer = prod(x.shape.slice(0, a));
  const A = x.shape[a]!;
  const inner = prod(x.shape.slice(a + 1));
  const y = alloc(device, want, x.dtype);
  if (y.size > 0) {
    const g = grid1d(y.size);
    const info = { op: 'take_along_axis', geometry: `outer${outer} A${A} inner${inner}`, flops: 0, bytes: 4 * 3 * y.size };
    device.dispatch({ kernel: takeAlongAxisKernel, info, buffers: [x.buffer, idx.buffer, y.buffer], uniforms: gatherUniforms(outer, A, 1, inner, g.gx), workgroups: g.workgroups });
  }
  const xShape = x.shape;
  record(y, 'takeAlongAxis', [x], (dy) => {
    const dx = alloc(device, xShape);
    if (dx.size > 0) {
      const g = grid1d(dx.size);
      const info = { op: 'take_along_axis_backward', geometry: `outer${outer} A${A} inner${inner}`, flops: 0, bytes: 4 * (2 * outer * inner + dx.size) };
      device.dispatch({ kernel: takeAlongAxisBackwardKernel, info, buffers: [dy.buffer, idx.buffer, dx.buffer], uniforms: gatherUniforms(outer, A, 1, inner, g.gx), workgroups: g.workgroups });
    }
    return [dx];
  });
  return y;
}

// ---------------------------------------------------------------- oneHot

function checkClasses(op: string, numClasses: number): void {
  if (!Number.isInteger(numClasses) || numClasses < 1) throw new Error(`kinkless: ${op}: numClasses must be a positive integer, got ${String(numClasses)}`);
}

/**
 * labels i32 [...] -> f32 [..., numClasses] with 1 at each label (no gradient).
 * NOTE: the kernel cannot report errors: a label outside [0, numClasses) gives an all-zero
 * row. Use `await assertLabelRange(labels, numClasses)` or `await oneHotChecked(...)`
 * (one readback) to get an error naming the label and its index instead.
 */
export function oneHot(labels: Tensor, numClasses: number): Tensor {
  checkIndexTensor('oneHot', 'labels', labels);
  assertSameDevice('oneHot', labels);
  checkClasses('oneHot', numClasses);
  const y = alloc(labels.device, [...labels.shape, numClasses]);
  if (y.size > 0) {
    const g = grid1d(y.size);
    const info = { op: 'one_hot', geometry: `n${labels.size} C${numClasses}`, flops: 0, bytes: 4 * (labels.size + y.size) };
    labels.device.dispatch({ kernel: oneHotKernel, info, buffers: [labels.buffer, y.buffer], uniforms: new Uniforms().u32(labels.size, numClasses, g.gx).bytes(), workgroups: g.workgroups });
  }
  return y;
}

/**
 * Reads `indices` back and throws on the first entry outside [0, size):
 * `kinkless: <op>: <what> 12 at index 5 is out of range [0, 10)`. Costs one readback (a flush).
 */
export async function assertIndexRange(indices: Tensor, size: number, op = 'assertIndexRange', what = 'index'): Promise<void> {
  checkIndexTensor(op, what === 'label' ? 'labels' : 'indices', indices);
  const v = await indices.data();
  for (let i = 0; i < v.length; i++) {
    const k = v[i]!;
    if (k < 0 || k >= size) {
      const at = indices.rank > 1 ? ` (coords [${coordsOf(i, indices.shape).join(', ')}])` : '';
      throw new Error(`kinkless: ${op}: ${what} ${k} at index ${i}${at} is out of range [0, ${size})`);
    }
  }
}

function coordsOf(i: number, shape: readonly number[]): number[] {
  const c = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    c[d] = i % shape[d]!;
    i = Math.floor(i / shape[d]!);
  }
  return c;
}

/** Throws `kinkless: oneHot: label L at index i is out of range [0, C)` for the first bad label. */
export async function assertLabelRange(labels: Tensor, numClasses: number): Promise<void> {
  checkClasses('oneHot', numClasses);
  await assertIndexRange(labels, numClasses, 'oneHot', 'label');
}

/** oneHot after assertLabelRange (one readback). */
export async function oneHotChecked(labels: Tensor, numClasses: number): Promise<Tensor> {
  await assertLabelRange(labels, numClasses);
  return oneHot(labels, numClasses);
}
