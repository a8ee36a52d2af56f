// WGSL builders for 2-D pooling over [N, C, H, W]: max pooling (optionally writing the
// argmax index of each window) and average pooling, each with a gather-style backward
// (one thread per input element sums the outputs whose window covers it, so overlapping
// windows need no atomics and the result is deterministic).
//
// Uniform layout (u32 words, shared by all four kernels):
//   NC, H, W, OH, OW, KH, KW, SH, SW, PH, PW, gx, countIncludePad
// where gx is the number of threads along x of the (possibly 2-D) grid.

import { defineKernel, reads, writes } from './kernel.ts';
import { gridMain } from './wgsl_grid.ts';

export const POOL_WG = 256;

const HEADER = `struct U {
  NC: u32, H: u32, W: u32, OH: u32,
  OW: u32, KH: u32, KW: u32, SH: u32,
  SW: u32, PH: u32, PW: u32, gx: u32,
  includePad: u32, p0: u32, p1: u32, p2: u32,
};
@group(0) @binding(0) var<uniform> u: U;`;

/** Window of output (oh, ow) clipped to the input: [ha, hb) x [wa, wb) (i32). */
const WINDOW = `  let ow = o % u.OW;
  let t = o / u.OW;
  let oh = t % u.OH;
  let nc = t / u.OH;
  let h0 = i32(oh * u.SH) - i32(u.PH);
  let w0 = i32(ow * u.SW) - i32(u.PW);
  let ha = max(h0, 0);
  let hb = min(h0 + i32(u.KH), i32(u.H));
  let wa = max(w0, 0);
  let wb = min(w0 + i32(u.KW), i32(u.W));
  let base = nc * u.H * u.W;`;

/**
 * Outputs whose window covers input (h, w): window oh covers rows [oh*SH - PH, oh*SH - PH + KH),
 * so oh <= (h + PH) / SH =: oh1 and oh*SH + KH > h + PH. FOR_COVER(body) visits them walking
 * down from (oh1, ow1), with `o` the flat output index (one division per dim, no lower-bound
 * division).
 */
const COVER = `  let w = i % u.W;
  let t = i / u.W;
  let h = t % u.H;
  let nc = t / u.H;
  let hp = i32(h + u.PH);
  let wp = i32(w + u.PW);
  let oh1 = min(i32(u.OH) - 1, hp / i32(u.SH));
  let ow1 = min(i32(u.OW) - 1, wp / i32(u.SW));`;

function forCover(body: string): string {
  return `  for (var oh = oh1; oh >= 0 && oh * i32(u.SH) + i32(u.KH) > hp; oh--) {
    let row = (nc * u.OH + u32(oh)) * u.OW;
    for (var ow = ow1; ow >= 0 && ow * i32(u.SW) + i32(u.KW) > wp; ow--) {
      let o = row + u32(ow);
${body}
    }
  }`;
}

/**
 * max_pool2d: thread per output. Padding acts as -inf: only in-bounds elements compete
 * (the caller guarantees every window overlaps the input). NOTE: ties go to the first
 * element in row-major window order (strict >), like PyTorch; a NaN is not propagated.
 * With `withIndex`, writes idx[o] = h*W + w of the winner (an i32 plane offset).
 */
export function maxPool2dWgsl(withIndex: boolean): string {
  return `// max_pool2d${withIndex ? ' (with argmax)' : ''}
${HEADER}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
${withIndex ? '@group(0) @binding(3) var<storage, read_write> idx: array<i32>;' : ''}
${gridMain(POOL_WG, 'o', 'u.NC * u.OH * u.OW')}
${WINDOW}
  var bi = ha * i32(u.W) + wa;
  var best = x[base + u32(bi)];
  for (var h = ha; h < hb; h++) {
    let row = base + u32(h) * u.W;
    for (var w = wa; w < wb; w++) {
      let v = x[row + u32(w)];
      if (v > best) { best = v; bi = h * i32(u.W) + w; }
    }
  }
  y[o] = best;
${withIndex ? '  idx[o] = bi;' : ''}
}
`;
}

/** max_pool2d_backward: dx[i] = sum of dy[o] over covering outputs o whose argmax is i. */
export function maxPool2dBackwardWgsl(): string {
  return `// max_pool2d_backward (gather)
${HEADER}
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> idx: array<i32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
${gridMain(POOL_WG, 'i', 'u.NC * u.H * u.W')}
${COVER}
  let me = i32(h * u.W + w);
  var acc = 0.0;
${forCover('      if (idx[o] == me) { acc += dy[o]; }')}
  dx[i] = acc;
}
`;
}

/** Divisor of window (h0, w0): KH*KW with countIncludePad, else the in-bounds count. */
const DIVISOR = `fn divisor(h0: i32, w0: i32) -> f32 {
  if (u.includePad != 0u) { return f32(u.KH * u.KW); }
  let hn = min(h0 + i32(u.KH), i32(u.H)) - max(h0, 0);
  let wn = min(w0 + i32(u.KW), i32(u.W)) - max(w0, 0);
  return f32(hn * wn);
}`;

/** avg_pool2d: thread per output. */
export function avgPool2dWgsl(): string {
  return `// avg_pool2d
${HEADER}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
${DIVISOR}
${gridMain(POOL_WG, 'o', 'u.NC * u.OH * u.OW')}
${WINDOW}
  var acc = 0.0;
  for (var h = ha; h < hb; h++) {
    let row = base + u32(h) * u.W;
    for (var w = wa; w < wb; w++) { acc += x[row + u32(w)]; }
  }
  y[o] = acc / divisor(h0, w0);
}
`;
}

/** avg_pool2d_backward: dx[i] = sum over covering outputs o of dy[o] / divisor(o). */
export function avgPool2dBackwardWgsl(): string {
  return `// avg_pool2d_backward (gather)
${HEADER}
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
${DIVISOR}
${gridMain(POOL_WG, 'i', 'u.NC * u.H * u.W')}
${COVER}
  var acc = 0.0;
${forCover('      acc += dy[o] / divisor(oh * i32(u.SH) - i32(u.PH), ow * i32(u.SW) - i32(u.PW));')}
  dx[i] = acc;
}
`;
}

// ---------------------------------------------------------------- descriptors

const B_MAX = [...reads('x'), ...writes('y')];
const B_MAX_IDX = [...reads('x'), ...writes('y', 'idx')];

/** Descriptor: max_pool2d. Bindings: x, y, and idx (argmax) when `withIndex`. */
export const maxPool2dKernel = defineKernel<{ withIndex: boolean }>({
  name: 'max_pool2d',
  key: (p) => (p.withIndex ? 'idx' : 'plain'),
  bindings: (p) => (p.withIndex ? B_MAX_IDX : B_MAX),
  build: (p) => maxPool2dWgsl(p.withIndex),
});

const B_MAXB = [...reads('dy', 'idx'), ...writes('dx')];

/** Descriptor: max_pool2d_backward (gather). Bindings: dy, idx, dx. */
export const maxPool2dBackwardKernel = defineKernel<void>({ name: 'max_pool2d_backward', key: () => '', bindings: () => B_MAXB, build: maxPool2dBackwardWgsl })();

/** Descriptor: avg_pool2d. Bindings: x, y. */
export const avgPool2dKernel = defineKernel<void>({ name: 'avg_pool2d', key: () => '', bindings: () => B_MAX, build: avgPool2dWgsl })();

const B_AVGB = [...reads('dy'), ...writes('dx')];

/** Descriptor: avg_pool2d_backward (gather). Bindings: dy, dx. */
export const avgPool2dBackwardKernel = defineKernel<void>({ name: 'avg_pool2d_backward', key: () => '', bindings: () => B_AVGB, build: avgPool2dBackwardWgsl })();
