// float64 references for layout and indexing ops, written as explicit coordinate loops
// (independent of the strided GPU formulation), plus each op's adjoint (the backward).
import { size, coordsOf } from './ops64.ts';

export type Arr = Float64Array;

function flat(c: readonly number[], shape: readonly number[]): number {
  let i = 0;
  for (let d = 0; d < shape.length; d++) i = i * shape[d]! + c[d]!;
  return i;
}

export function permute64(x: Arr, shape: readonly number[], perm: readonly number[]): { y: Arr; shape: number[] } {
  const p = perm.map((a) => (a < 0 ? a + shape.length : a));
  const ys = p.map((a) => shape[a]!);
  const y = new Float64Array(size(ys));
  for (let i = 0; i < y.length; i++) {
    const c = coordsOf(i, ys);
    const xc = new Array<number>(shape.length);
    p.forEach((a, k) => (xc[a] = c[k]!));
    y[i] = x[flat(xc, shape)]!;
  }
  return { y, shape: ys };
}

/**
 * Indices selected by x[start:end:step] on an axis of length n, by brute force: keep each
 * i in [0, n) that lies between the (end-relative) start and end and sits a whole number of
 * steps from the start; only the start needs Python's clamp (the range bounds the rest).
 * ±Infinity act as huge bounds (an omitted bound).
 */
export function sliceRange64(n: number, start: number, end: number, step: number): number[] {
  const s0 = start < 0 ? start + n : start;
  const e = end < 0 ? end + n : end;
  const s = step > 0 ? Math.max(s0, 0) : Math.min(s0, n - 1);
  const out: number[] = [];
  const all = Array.from({ length: n }, (_, i) => i);
  if (step < 0) all.reverse();
  for (const i of all) {
    const between = step > 0 ? i >= s && i < e : i <= s && i > e;
    if (between && Math.abs(i - s) % Math.abs(step) === 0) out.push(i);
  }
  return out;
}

export function slice64(x: Arr, shape: readonly number[], ranges: number[][]): { y: Arr; shape: number[] } {
  const R = shape.map((n, d) => ranges[d] ?? Array.from({ length: n }, (_, i) => i));
  const ys = R.map((r) => r.length);
  const y = new Float64Array(size(ys));
  for (let i = 0; i < y.length; i++) {
    const c = coordsOf(i, ys);
    y[i] = x[flat(c.map((v, d) => R[d]![v]!), shape)]!;
  }
  return { y, shape: ys };
}

/** Adjoint of slice64: dy scattered into zeros of the input shape. */
export function slice64Backward(dy: Arr, shape: readonly number[], ranges: number[][]): Arr {
  const R = shape.map((n, d) => ranges[d] ?? Array.from({ length: n }, (_, i) => i));
  const ys = R.map((r) => r.length);
  const dx = new Float64Array(size(shape));
  for (let i = 0; i < dy.length; i++) {
    const c = coordsOf(i, ys);
    dx[flat(c.map((v, d) => R[d]![v]!), shape)]! += dy[i]!;
  }
  return dx;
}

export function concat64(xs: Arr[], shapes: number[][], axis: number): { y: Arr; shape: number[] } {
  const a = axis < 0 ? axis + shapes[0]!.length : axis;
  const ys = [...shapes[0]!];
  ys[a] = shapes.reduce((s, sh) => s + sh[a]!, 0);
  const y = new Float64Array(size(ys));
  for (let i = 0; i < y.length; i++) {
    const c = coordsOf(i, ys);
    let k = 0;
    let v = c[a]!;
    while (v >= shapes[k]![a]!) v -= shapes[k++]![a]!;
    const xc = [...c];
    xc[a] = v;
    y[i] = xs[k]![flat(xc, shapes[k]!)]!;
  }
  return { y, shape: ys };
}

export function concat64Backward(dy: Arr, shapes: number[][], axis: number): Arr[] {
  const a = axis < 0 ? axis + shapes[0]!.length : axis;
  const ys = [...shapes[0]!];
  ys[a] = shapes.reduce((s, sh) => s + sh[a]!, 0);
  let off = 0;
  return shapes.map((sh) => {
    const g = new Float64Array(size(sh));
    for (let i = 0; i < g.length; i++) {
      const c = coordsOf(i, sh);
      c[a]! += off;
      g[i] = dy[flat(c, ys)]!;
    }
    off += sh[a]!;
    return g;
  });
}

/** pads: [before, after] per axis (full rank here). */
export function pad64(x: Arr, shape: readonly number[], pads: [number, number][], value: number): { y: Arr; shape: number[] } {
  const ys = shape.map((n, d) => n + pads[d]![0] + pads[d]![1]);
  const y = new Float64Array(size(ys));
  for (let i = 0; i < y.length; i++) {
    const c = coordsOf(i, ys).map((v, d) => v - pads[d]![0]);
    y[i] = c.every((v, d) => v >= 0 && v < shape[d]!) ? x[flat(c, shape)]! : value;
  }
  return { y, shape: ys };
}

export function pad64Backward(dy: Arr, shape: readonly number[], pads: [number, number][]): Arr {
  const ys = shape.map((n, d) => n + pads[d]![0] + pads[d]![1]);
  const dx = new Float64Array(size(shape));
  for (let i = 0; i < dy.length; i++) {
    const c = coordsOf(i, ys).map((v, d) => v - pads[d]![0]);
    if (c.every((v, d) => v >= 0 && v < shape[d]!)) dx[flat(c, shape)]! += dy[i]!;
  }
  return dx;
}

/** numpy take: out-of-range indices give 0 (the engine's documented behaviour). */
export function gather64(x: Arr, shape: readonly number[], idx: ArrayLike<number>, idxShape: readonly number[], axis: number): { y: Arr; shape: number[] } {
  const a = axis < 0 ? axis + shape.length : axis;
  const ys = [...shape.slice(0, a), ...idxShape, ...shape.slice(a + 1)];
  const y = new Float64Array(size(ys));
  const r = idxShape.length;
  for (let i = 0; i < y.length; i++) {
    const c = coordsOf(i, ys);
    const k = flat(c.slice(a, a + r), idxShape);
    const j = idx[k]!;
    if (j < 0 || j >= shape[a]!) continue;
    const xc = [...c.slice(0, a), j, ...c.slice(a + r)];
    y[i] = x[flat(xc, shape)]!;
  }
  return { y, shape: ys };
}

export function gather64Backward(dy: Arr, shape: readonly number[], idx: ArrayLike<number>, idxShape: readonly number[], axis: number): Arr {
  const a = axis < 0 ? axis + shape.length : axis;
  const ys = [...shape.slice(0, a), ...idxShape, ...shape.slice(a + 1)];
  const dx = new Float64Array(size(shape));
  const r = idxShape.length;
  for (let i = 0; i < dy.length; i++) {
    const c = coordsOf(i, ys);
    const j = idx[flat(c.slice(a, a + r), idxShape)]!;
    if (j < 0 || j >= shape[a]!) continue;
    dx[flat([...c.slice(0, a), j, ...c.slice(a + r)], shape)]! += dy[i]!;
  }
  return dx;
}

export function takeAlongAxis64(x: Arr, shape: readonly number[], idx: ArrayLike<number>, axis: number): { y: Arr; shape: number[] } {
  const a = axis < 0 ? axis + shape.length : axis;
  const ys = shape.filter((_, d) => d !== a);
  const y = new Float64Array(size(ys));
  for (let i = 0; i < y.length; i++) {
    const c = coordsOf(i, ys);
    const j = idx[i]!;
    if (j < 0 || j >= shape[a]!) continue;
    y[i] = x[flat([...c.slice(0, a), j, ...c.slice(a)], shape)]!;
  }
  return { y, shape: ys };
}

export function takeAlongAxis64Backward(dy: Arr, shape: readonly number[], idx: ArrayLike<number>, axis: number): Arr {
  const a = axis < 0 ? axis + shape.length : axis;
  const ys = shape.filter((_, d) => d !== a);
  const dx = new Float64Array(size(shape));
  for (let i = 0; i < dy.length; i++) {
    const c = coordsOf(i, ys);
    const j = idx[i]!;
    if (j < 0 || j >= shape[a]!) continue;
    dx[flat([...c.slice(0, a), j, ...c.slice(a)], shape)]! += dy[i]!;
  }
  return dx;
}

export function oneHot64(labels: ArrayLike<number>, C: number): Arr {
  const y = new Float64Array(labels.length * C);
  for (let n = 0; n < labels.length; n++) {
    const l = labels[n]!;
    if (l >= 0 && l < C) y[n * C + l] = 1;
  }
  return y;
}
