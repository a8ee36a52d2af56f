// WGSL builders for reductions over the middle axis of an [outer, R, inner] view:
// a thread-per-output kernel (many outputs), a workgroup-per-output-chunk kernel with a
// shared-memory tree (few outputs, long rows), and argmax.

import { defineKernel, reads, writes } from './kernel.ts';
import { gridMain } from './wgsl_grid.ts';

export type ReduceOp = 'sum' | 'max';

export const RED_WG = 256;

const IDENT: Record<ReduceOp, string> = { sum: '0.0', max: '-3.4e38' };
const COMB: Record<ReduceOp, (a: string, b: string) => string> = {
  sum: (a, b) => `${a} + ${b}`,
  max: (a, b) => `max(${a}, ${b})`,
};

/**
 * The module head of the thread-per-output kernels (reduce_rows, argmax): uniforms outer,
 * R, inner, gx; bindings x (f32) and y (`yType`); output o = ou * inner + iv, and `base`
 * indexes x at row 0 of output o (add u.inner per row).
 */
function perOutputHead(title: string, yType: string): string {
  return `// ${title} (thread per output)
struct U { outer: u32, R: u32, inner: u32, gx: u32 };
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<${yType}>;
${gridMain(RED_WG, 'o', 'u.outer * u.inner')}
  let ou = o / u.inner;
  let iv = o % u.inner;
  var base = ou * u.R * u.inner + iv;`;
}

/** One thread per output (o = outer index * inner + inner index). Uniforms: outer, R, inner, gx. */
export function reduceRowsWgsl(op: ReduceOp): string {
  return `${perOutputHead(`reduce_${op}`, 'f32')}
  var acc = ${IDENT[op]};
  for (var r = 0u; r < u.R; r++) {
    acc = ${COMB[op]('acc', 'x[base]')};
    base += u.inner;
  }
  y[o] = acc;
}
`;
}

/**
 * Thread (o, c) reduces rows r in [c*L, min((c+1)*L, R)) of output o into y[(ou*C + c)*inner + iv]
 * (an [outer, C, inner] tensor of partials). Uniforms: outer, R, inner, L, C, gx.
 * NOTE: no workgroup memory or barriers: on lavapipe a barrier tree cost ~0.2 ms per
 * workgroup, while independent per-thread slices run at memory speed.
 */
export function reduceChunksWgsl(op: ReduceOp): string {
  return `// reduce_${op} (thread per output chunk)
struct U { outer: u32, R: u32, inner: u32, L: u32, C: u32, gx: u32, p1: u32, p2: u32 };
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
${gridMain(RED_WG, 't', 'u.outer * u.inner * u.C')}
  let o = t / u.C;
  let c = t % u.C;
  let ou = o / u.inner;
  let iv = o % u.inner;
  let r0 = c * u.L;
  let r1 = min(r0 + u.L, u.R);
  var acc = ${IDENT[op]};
  for (var r = r0; r < r1; r++) {
    acc = ${COMB[op]('acc', 'x[(ou * u.R + r) * u.inner + iv]')};
  }
  y[(ou * u.C + c) * u.inner + iv] = acc;
}
`;
}

/** argmax over the middle axis, first index on ties; output i32. Uniforms: outer, R, inner, gx. */
export function argmaxWgsl(): string {
  return `${perOutputHead('argmax', 'i32')}
  var best = x[base];
  var bi = 0u;
  for (var r = 1u; r < u.R; r++) {
    base += u.inner;
    let v = x[base];
    if (v > best) { best = v; bi = r; }
  }
  y[o] = i32(bi);
}
`;
}

const B_X_Y = [...reads('x'), ...writes('y')];

/** Descriptor: thread-per-output reduction. Bindings: x, y. */
export const reduceRowsKernel = defineKernel<{ op: ReduceOp }>({
  name: 'reduce_rows',
  label: (p) => `reduce_${p.op}`,
  key: (p) => p.op,
  bindings: () => B_X_Y,
  build: (p) => reduceRowsWgsl(p.op),
});

/** Descriptor: thread-per-output-chunk partial reduction. Bindings: x, y (partials). */
export const reduceChunksKernel = defineKernel<{ op: ReduceOp }>({
  name: 'reduce_chunks',
  label: (p) => `reduce_${p.op}_chunks`,
  key: (p) => p.op,
  bindings: () => B_X_Y,
  build: (p) => reduceChunksWgsl(p.op),
});

/** Descriptor: argmax over the middle axis (i32 output). Bindings: x, y. */
export const argmaxKernel = defineKernel<void>({ name: 'argmax', key: () => '', bindings: () => B_X_Y, build: argmaxWgsl })();
