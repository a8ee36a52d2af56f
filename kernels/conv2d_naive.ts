// Naive 2-D convolution kernels: one output element per thread, direct loops, no
// blocking. Kept as the correctness oracle for the fast kernels (conv2d.ts) and as the
// speed baseline in bench/conv2d.bench.ts. Same uniform block and bindings as the fast ones.
import { defineKernel, reads, writes } from './kernel.ts';
import { CONV_UNIFORM_WGSL, convEpilogueKey, convEpilogueStore, convForwardBindings, convForwardDeclsWgsl, type ConvEpilogue } from './conv2d_common.ts';
import { gridMainI32 } from './wgsl_grid.ts';

export const CONV_NAIVE_WG = 64;

/** y[n, o, oh, ow], one per thread (index gid.x + gid.y * u.gx). Bindings: x, w, [b], y, [z] (see ConvEpilogue). */
export function conv2dNaiveWgsl(epi: ConvEpilogue = { bias: false }): string {
  return `// conv2d (naive${epi.saveZ ? ', saveZ' : ''})
${convForwardDeclsWgsl(epi)}
${gridMainI32(CONV_NAIVE_WG, 'i', 'u.N * u.O * u.OH * u.OW')}
  let ow = i % u.OW;
  let oh = (i / u.OW) % u.OH;
  let o = (i / (u.OW * u.OH)) % u.O;
  let n = i / (u.OW * u.OH * u.O);
  let g = o / u.Og;
  var acc = 0.0;
  for (var ci = 0; ci < u.Cg; ci++) {
    for (var kh = 0; kh < u.KH; kh++) {
      let ih = oh * u.sh - u.ph + kh * u.dlh;
      if (ih < 0 || ih >= u.H) { continue; }
      for (var kw = 0; kw < u.KW; kw++) {
        let iw = ow * u.sw - u.pw + kw * u.dlw;
        if (iw < 0 || iw >= u.W) { continue; }
        acc += x[u32(((n * u.C + g * u.Cg + ci) * u.H + ih) * u.W + iw)] * w[u32(((o * u.Cg + ci) * u.KH + kh) * u.KW + kw)];
      }
    }
  }
  ${epi.bias ? 'acc += b[u32(o)];' : ''}
  ${convEpilogueStore(epi, 'u32(i)', 'acc')}
}
`;
}

/** dx[n, c, ih, iw], one per thread: gathers every (o, kh, kw) whose output reads this pixel. Bindings: dy, w, dx. */
export function conv2dBackwardInputNaiveWgsl(): string {
  return `// conv2d_backward_input (naive)
${CONV_UNIFORM_WGSL}
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
${gridMainI32(CONV_NAIVE_WG, 'i', 'u.N * u.C * u.H * u.W')}
  let iw = i % u.W;
  let ih = (i / u.W) % u.H;
  let c = (i / (u.W * u.H)) % u.C;
  let n = i / (u.W * u.H * u.C);
  let g = c / u.Cg;
  let ci = c % u.Cg;
  var acc = 0.0;
  for (var ol = 0; ol < u.Og; ol++) {
    let o = g * u.Og + ol;
    for (var kh = 0; kh < u.KH; kh++) {
      let th = ih + u.ph - kh * u.dlh;
      if (th < 0 || th % u.sh != 0) { continue; }
      let oh = th / u.sh;
      if (oh >= u.OH) { continue; }
      for (var kw = 0; kw < u.KW; kw++) {
        let tw = iw + u.pw - kw * u.dlw;
        if (tw < 0 || tw % u.sw != 0) { continue; }
        let ow = tw / u.sw;
        if (ow >= u.OW) { continue; }
        acc += dy[u32(((n * u.O + o) * u.OH + oh) * u.OW + ow)] * w[u32(((o * u.Cg + ci) * u.KH + kh) * u.KW + kw)];
      }
    }
  }
  dx[u32(i)] = acc;
}
`;
}

/** dw[o, ci, kh, kw], one per thread: a full loop over n, oh, ow. Bindings: dy, x, dw. */
export function conv2dBackwardFilterNaiveWgsl(): string {
  return `// conv2d_backward_filter (naive)
${CONV_UNIFORM_WGSL}
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> dw: array<f32>;
${gridMainI32(CONV_NAIVE_WG, 'i', 'u.O * u.Cg * u.KH * u.KW')}
  let kw = i % u.KW;
  let kh = (i / u.KW) % u.KH;
  let ci = (i / (u.KW * u.KH)) % u.Cg;
  let o = i / (u.KW * u.KH * u.Cg);
  let c = (o / u.Og) * u.Cg + ci;
  var acc = 0.0;
  for (var n = 0; n < u.N; n++) {
    for (var oh = 0; oh < u.OH; oh++) {
      let ih = oh * u.sh - u.ph + kh * u.dlh;
      if (ih < 0 || ih >= u.H) { continue; }
      for (var ow = 0; ow < u.OW; ow++) {
        let iw = ow * u.sw - u.pw + kw * u.dlw;
        if (iw < 0 || iw >= u.W) { continue; }
        acc += dy[u32(((n * u.O + o) * u.OH + oh) * u.OW + ow)] * x[u32(((n * u.C + c) * u.H + ih) * u.W + iw)];
      }
    }
  }
  dw[u32(i)] = acc;
}
`;
}

/** Descriptor of the naive forward. Bindings: x, w, [b], y, [z], [act params]. */
export const conv2dNaiveKernel = defineKernel<{ epi: ConvEpilogue }>({
  name: 'conv2d_naive',
  label: (p) => (p.epi.act ? 'conv2d_naive_act' : 'conv2d_naive'),
  key: (p) => convEpilogueKey(p.epi),
  bindings: (p) => convForwardBindings(['x', 'w'], p.epi),
  build: (p) => conv2dNaiveWgsl(p.epi),
});

/** Descriptor of the naive input gradient. Bindings: dy, w, dx. */
export const conv2dDxNaiveKernel = defineKernel<Record<string, never>>({
  name: 'conv2d_backward_input_naive',
  key: () => '',
  bindings: () => [...reads('dy', 'w'), ...writes('dx')],
  build: () => conv2dBackwardInputNaiveWgsl(),
});

/** Descriptor of the naive filter gradient. Bindings: dy, x, dw. */
export const conv2dDwNaiveKernel = defineKernel<Record<string, never>>({
  name: 'conv2d_backward_filter_naive',
  key: () => '',
  bindings: () => [...reads('dy', 'x'), ...writes('dw')],
  build: () => conv2dBackwardFilterNaiveWgsl(),
});
