// Reductions over axes (sum, mean, max, argmax) and sumToShape (the adjoint of broadcasting).
import { Tensor, assertSameDevice, shapeSize, shapeStr, type Shape } from '../tensor.ts';
import { record } from '../autograd.ts';
import { argmaxKernel, reduceChunksKernel, reduceRowsKernel, type ReduceOp } from '../../kernels/reduce.ts';
import { grid1d } from '../../kernels/elementwise.ts';
import { Uniforms, alloc } from './launch.ts';
import { ELEMENTWISE } from '../../kernels/elementwise_ops.ts';
import { launchEw } from './ew_launch.ts';

export function normAxes(op: string, axes: number | readonly number[] | undefined, rank: number): number[] {
  if (axes === undefined) return Array.from({ length: rank }, (_, i) => i);
  const list = typeof axes === 'number' ? [axes] : [...axes];
  const out = list.map((a) => {
    if (!Number.isInteger(a) || a < -rank || a >= rank) throw new Error(`kinkless: ${op}: axis ${a} is out of range for a tensor of rank ${rank}`);
    return a < 0 ? a + rank : a;
  });
  if (new Set(out).size !== out.length) throw new Error(`kinkless: ${op}: repeated axis in [${list.join(', ')}]`);
  return out.sort((a, b) => a - b);
}

/** Reduce the contiguous axis range [start, end) of x (no autograd). */
function reduceRange(x: Tensor, start: number, end: number, op: ReduceOp): Tensor {
  const device = x.device;
  const outer = shapeSize(x.shape.slice(0, start));
  const R = shapeSize(x.shape.slice(start, end));
  const inner = shapeSize(x.shape.slice(end));
  const outShape = [...x.shape.slice(0, start), ...x.shape.slice(end)];
  const nOut = outer * inner;
  if (R === 0) {
    if (op === 'max') throw new Error(`kinkless: max: cannot reduce an empty axis of ${shapeStr(x.shape)}`);
    return launchEw(ELEMENTWISE, 'fill', [x.view([x.size])], { shape: outShape, scalars: [0] });
  }
  if (R >= 2048 && nOut < 2048) {
    // Few outputs, long rows: each thread reduces a slice of ~256 rows into partials.
    const C = Math.min(Math.ceil(R / 256), Math.max(1, Math.floor((1 << 22) / nOut)));
    const L = Math.ceil(R / C);
    const part = alloc(device, [outer, C, inner]);
    const g = grid1d(nOut * C);
    const u = new Uniforms().u32(outer, R, inner, L, C, g.gx);
    const info = { op: `reduce_${op}`, geometry: `outer${outer} R${R} inner${inner} -> ${C} chunks`, flops: x.size, bytes: 4 * (x.size + part.size) };
    device.dispatch({ kernel: reduceChunksKernel({ op }), info, buffers: [x.buffer, part.buffer], uniforms: u.bytes(), workgroups: g.workgroups });
    const r = reduceRange(part, 1, 2, op);
    part.dispose();
    const v = r.view(outShape);
    r.dispose();
    return v;
  }
  const out = alloc(device, outShape);
  const g = grid1d(nOut);
  const u = new Uniforms().u32(outer, R, inner, g.gx);
  const info = { op: `reduce_${op}`, geometry: `outer${outer} R${R} inner${inner}`, flops: x.size, bytes: 4 * (x.size + nOut) };
  device.dispatch({ kernel: reduceRowsKernel({ op }), info, buffers: [x.buffer, out.buffer], uniforms: u.bytes(), workgroups: g.workgroups });
  return out;
}

/** Reduce a sorted axis list: contiguous groups from the last one backwards. */
function reduceAxes(x: Tensor, axes: number[], op: ReduceOp): Tensor {
  let cur = x;
  let i = axes.length - 1;
  while (i >= 0) {
    let j = i;
    while (j > 0 && axes[j - 1] === axes[j]! - 1) j--;
    const next = reduceRange(cur, axes[j]!, axes[i]! + 1, op);
    if (cur !== x) cur.dispose();
    cur = next;
    i = j - 1;
  }
  return cur === x ? launchEw(ELEMENTWISE, 'copy', [x]) : cur;
}

function keptShape(shape: Shape, axes: number[]): number[] {
  return shape.map((d, i) => (axes.includes(i) ? 1 : d));
}

function checkF32(op: string, x: Tensor): void {
  assertSameDevice(op, x);
  if (x.dtype !== 'f32') throw new Error(`kinkless: ${op}: x must be f32, got an ${x.dtype} tensor of shape ${shapeStr(x.shape)}`);
}

/** Broadcast dy (reduced over `axes`) back to `shape`, times `scale`. */
function expandGrad(dy: Tensor, shape: Shape, axes: number[], scale: number): Tensor {
  const v = dy.view(keptShape(shape, axes));
  const r = launchEw(ELEMENTWISE, scale === 1 ? 'copy' : 'scale', [v], { shape, scalars: [scale] });
  v.dispose();
  return r;
}

export function sum(x: Tensor, axes?: number | readonly number[], keepdims = false): Tensor {
  return sumScaled('sum', x, axes, keepdims);
}

export function mean(x: Tensor, axes?: number | readonly number[], keepdims = false): Tensor {
  return sumScaled('mean', x, axes, keepdims);
}

/** sum, or mean (the sum times 1/count of the reduced elements), with the gradient broadcast back. */
function sumScaled(op: 'sum' | 'mean', x: Tensor, axes: number | readonly number[] | undefined, keepdims: boolean): Tensor {
  checkF32(op, x);
  const ax = normAxes(op, axes, x.rank);
  const count = ax.reduce((a, d) => a * x.shape[d]!, 1);
  if (op === 'mean' && count === 0) throw new Error(`kinkless: mean: reducing over an empty axis of ${shapeStr(x.shape)}`);
  const scale = op === 'mean' ? 1 / count : 1;
  let r = reduceAxes(x, ax, 'sum');
  if (op === 'mean') {
    const s = r;
    r = launchEw(ELEMENTWISE, 'scale', [s], { scalars: [scale] });
    s.dispose();
  }
  const y = keepdims ? viewAndDispose(r, keptShape(x.shape, ax)) : r;
  record(y, op, [x], (dy) => [expandGrad(dy, x.shape, ax, scale)]);
  return y;
}

/** Max over axes. NOTE: the gradient is shared evenly among tied maxima (amax rule). */
export function max(x: Tensor, axes?: number | readonly number[], keepdims = false): Tensor {
  checkF32('max', x);
  const ax = normAxes('max', axes, x.rank);
  const r = reduceAxes(x, ax, 'max');
  const y = keepdims ? viewAndDispose(r, keptShape(x.shape, ax)) : r;
  record(y, 'max', [x], (dy) => {
    const kept = keptShape(x.shape, ax);
    const m = y.view(kept);
    const mask = launchEw(ELEMENTWISE, 'eq', [x, m]);
    const cnt = reduceAxes(mask, ax, 'sum');
    const cv = cnt.view(kept);
    const dv = dy.view(kept);
    const dx = launchEw(ELEMENTWISE, 'max_backward', [mask, dv, cv]);
    for (const t of [m, mask, cnt, cv, dv]) t.dispose();
    return [dx];
  });
  return y;
}

/** Index of the largest value along `axis` (first on ties), as int32. */
export function argmax(x: Tensor, axis = -1, keepdims = false): Tensor {
  checkF32('argmax', x);
  const [a] = normAxes('argmax', axis, x.rank);
  const outer = shapeSize(x.shape.slice(0, a));
  const R = x.shape[a]!;
  const inner = shapeSize(x.shape.slice(a! + 1));
  if (R === 0) throw new Error(`kinkless: argmax: axis ${axis} of ${shapeStr(x.shape)} is empty`);
  const outShape = keepdims ? keptShape(x.shape, [a!]) : x.shape.filter((_, i) => i !== a);
  const out = alloc(x.device, outShape, 'i32');
  const g = grid1d(outer * inner);
  const u = new Uniforms().u32(outer, R, inner, g.gx);
  const info = { op: 'argmax', geometry: `outer${outer} R${R} inner${inner}`, flops: x.size, bytes: 4 * (x.size + out.size) };
  x.device.dispatch({ kernel: argmaxKernel, info, buffers: [x.buffer, out.buffer], uniforms: u.bytes(), workgroups: g.workgroups });
  return out;
}

function viewAndDispose(t: Tensor, shape: Shape): Tensor {
  const v = t.view(shape);
  t.dispose();
  return v;
}

/** Sum g over its broadcast dims so that it has `shape` (the adjoint of broadcasting); no autograd. */
export function sumToShape(g: Tensor, shape: Shape): Tensor {
  const r = g.rank;
  if (shape.length > r) throw new Error(`kinkless: sumToShape: cannot reduce ${shapeStr(g.shape)} to higher-rank ${shapeStr(shape)}`);
  const lead = r - shape.length;
  const axes: number[] = [];
  for (let d = 0; d < r; d++) {
    const t = d < lead ? 1 : shape[d - lead]!;
    if (d < lead || (t === 1 && g.shape[d] !== 1)) axes.push(d);
    else if (t !== g.shape[d]) throw new Error(`kinkless: sumToShape: ${shapeStr(g.shape)} does not broadcast from ${shapeStr(shape)}`);
  }
  const red = axes.length ? reduceAxes(g, axes, 'sum') : launchEw(ELEMENTWISE, 'copy', [g]);
  return viewAndDispose(red, shape);
}
