// float64 references for the core ops (broadcasting, reductions), independent of the GPU code.

export type Arr = Float64Array;

export function size(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function broadcastShape(a: readonly number[], b: readonly number[]): number[] {
  const r = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    const x = a[a.length - r + i] ?? 1;
    const y = b[b.length - r + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) throw new Error('not broadcastable');
    out.push(Math.max(x, y));
  }
  return out;
}

/** Index into `shape` (right-aligned, broadcast) for the out-coordinate list. */
function bIndex(shape: readonly number[], coords: number[]): number {
  let idx = 0;
  const off = coords.length - shape.length;
  for (let d = 0; d < shape.length; d++) idx = idx * shape[d]! + (shape[d] === 1 ? 0 : coords[off + d]!);
  return idx;
}

export function coordsOf(i: number, shape: readonly number[]): number[] {
  const c = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    c[d] = i % shape[d]!;
    i = Math.floor(i / shape[d]!);
  }
  return c;
}

export function binary64(a: Arr, as: readonly number[], b: Arr, bs: readonly number[], f: (x: number, y: number) => number): { y: Arr; shape: number[] } {
  const shape = broadcastShape(as, bs);
  const n = size(shape);
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const c = coordsOf(i, shape);
    y[i] = f(a[bIndex(as, c)]!, b[bIndex(bs, c)]!);
  }
  return { y, shape };
}

/** Sum `g` (of shape `gs`) down to broadcast-source shape `s`. */
export function sumTo64(g: Arr, gs: readonly number[], s: readonly number[]): Arr {
  const out = new Float64Array(size(s));
  for (let i = 0; i < g.length; i++) out[bIndex(s, coordsOf(i, gs))]! += g[i]!;
  return out;
}

export function reduce64(x: Arr, shape: readonly number[], axes: number[], f: 'sum' | 'max' | 'mean'): Arr {
  const outShape = shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const out = new Float64Array(size(outShape)).fill(f === 'max' ? -Infinity : 0);
  for (let i = 0; i < x.length; i++) {
    const j = bIndex(outShape, coordsOf(i, shape));
    out[j] = f === 'max' ? Math.max(out[j]!, x[i]!) : out[j]! + x[i]!;
  }
  if (f === 'mean') {
    const cnt = axes.reduce((a, d) => a * shape[d]!, 1);
    for (let j = 0; j < out.length; j++) out[j]! /= cnt;
  }
  return out;
}
