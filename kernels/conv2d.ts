// WGSL builders and descriptors for the direct 2-D convolution kernels (NCHW input, OIHW
// filter, groups, stride, padding, dilation): register-blocked "uniform-operand" kernels
// for the forward pass, the input gradient (dx) and the filter gradient (dw). The packed
// forward lives in conv2d_packed.ts, the per-pixel kernels for few input channels in
// conv2d_pixel.ts, the naive oracle kernels in conv2d_naive.ts, shared pieces in
// conv2d_common.ts.
//
// Design (measured on lavapipe): llvmpipe runs the invocations of a workgroup as SIMD
// lanes; a storage load whose address is the same for every lane (it depends only on the
// workgroup id and loop counters) becomes one scalar load plus a broadcast, while a
// per-lane address becomes a gather. So each kernel puts one operand's index in the
// workgroup id (filter rows for fwd/dx, dy rows for dw), keeps all loop bounds uniform,
// and register-blocks the other operand: each thread gathers a few x (or dy) values and
// reuses each across a block of output channels. Out-of-range taps (padding) are read
// at a clamped address and zeroed with select, so no lane branches. No workgroup memory.
// Uniform block: convUniformWgsl (conv2d_common.ts).
import { defineKernel, reads, writes } from './kernel.ts';
import {
  CONV_UNIFORM_WGSL, CONV_WG, actStoreLoop, chunks, comps, convEpilogueKey, convForwardBindings, convForwardDeclsWgsl,
  gather, iota, range, vi, vt, type ConvEpilogue,
} from './conv2d_common.ts';

/**
 * Fast forward: y[n, o, oh, ow] = sum_{ci, kh, kw} x[n, g*Cg+ci, ih, iw] * w[o, ci, kh, kw] (+ b[o]).
 * Workgroup (x: pixel blocks, y: group * channel block, z: n); each thread computes OB
 * output channels x PB consecutive ow. Bindings: x, w, [b], y, [z] (see ConvEpilogue).
 */
export function conv2dFastWgsl(OB: number, PB = 4, epi: ConvEpilogue = { bias: false }): string {
  const T = vt(PB);
  const I = vi(PB);
  const obs = range(OB);
  return `// conv2d (fast: ${OB} channels x ${PB} pixels per thread${epi.saveZ ? ', saveZ' : ''})
${convForwardDeclsWgsl(epi)}
@compute @workgroup_size(${CONV_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let OWB = (u.OW + ${PB - 1}) / ${PB};
  let npix = u.OH * OWB;
  let t = min(i32(gid.x), npix - 1);
  let oh = t / OWB;
  let ow0 = (t % OWB) * ${PB};
  let nb = (u.Og + ${OB - 1}) / ${OB};
  let g = i32(wid.y) / nb;
  let o0 = g * u.Og + (i32(wid.y) % nb) * ${OB};
  let omax = g * u.Og + u.Og - 1;
  let n = i32(wid.z);
  let KK = u.KH * u.KW;
  let CKK = u.Cg * KK;
${obs.map((j) => `  let wb${j} = min(o0 + ${j}, omax) * CKK;`).join('\n')}
${obs.map((j) => `  var acc${j} = ${T}(0.0);`).join('\n')}
  let ihb = oh * u.sh - u.ph;
  let iwb = ${I}(ow0 * u.sw - u.pw) + ${iota(PB)} * u.sw;
  for (var ci = 0; ci < u.Cg; ci++) {
    let xc = (n * u.C + g * u.Cg + ci) * u.H;
    let wc = ci * KK;
    for (var kh = 0; kh < u.KH; kh++) {
      let ih = ihb + kh * u.dlh;
      let rok = ih >= 0 && ih < u.H;
      let xr = (xc + clamp(ih, 0, u.H - 1)) * u.W;
      let wk = wc + kh * u.KW;
      for (var kw = 0; kw < u.KW; kw++) {
        let iw = iwb + ${I}(kw * u.dlw);
        let ok = (iw >= ${I}(0)) & (iw < ${I}(u.W)) & ${I === 'i32' ? 'rok' : `${vt(PB).replace('f32', 'bool')}(rok)`};
        let xv = ${gather('x', 'xr', 'iw', 'ok', 'u.W - 1', PB)};
        let wi = wk + kw;
${obs.map((j) => `        acc${j} += w[u32(wb${j} + wi)] * xv;`).join('\n')}
      }
    }
  }
  if (i32(gid.x) >= npix) { return; }
${
  epi.act
    ? actStoreLoop(obs.length, T, 'omax - o0 + 1', 'o0 + j', PB, epi)
    : obs
        .map((j) => {
          const lines = [`  if (o0 + ${j} <= omax) {`, `    let yb = ((n * u.O + o0 + ${j}) * u.OH + oh) * u.OW + ow0;`];
          lines.push(`    var v = acc${j};`);
          if (epi.bias) lines.push(`    v += ${T}(b[u32(o0 + ${j})]);`);
          comps('v', PB).forEach((c, p) => {
            lines.push(`    if (ow0 + ${p} < u.OW) { y[u32(yb + ${p})] = ${c}; }`);
          });
          lines.push('  }');
          return lines.join('\n');
        })
        .join('\n')
}
}
`;
}

/**
 * Fast input gradient: dx[n, c, ih, iw] = sum_{o in group, kh, kw} dy[n, o, oh, ow] * w[o, c-g*Cg, kh, kw]
 * with ih = oh*sh - ph + kh*dlh (same for w). The pixels are split by stride phase
 * (ih mod sh, iw mod sw), one phase per workgroup z, so whether a tap (kh, kw) reaches a
 * pixel is uniform: no lane wastes work on taps that the stride skips.
 * Workgroup (x: pixel blocks of the phase, y: group * channel block, z: n * sh * sw);
 * each thread computes IB input channels x PB pixels (iw stepping by sw). Bindings: dy, w, dx.
 */
export function conv2dBackwardInputFastWgsl(IB: number, PB = 4): string {
  const T = vt(PB);
  const I = vi(PB);
  const ibs = range(IB);
  return `// conv2d_backward_input (fast: ${IB} channels x ${PB} pixels per thread, stride phases)
${CONV_UNIFORM_WGSL}
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
@compute @workgroup_size(${CONV_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let SS = u.sh * u.sw;
  let n = i32(wid.z) / SS;
  let phz = i32(wid.z) % SS;
  let phh = phz / u.sw;
  let phw = phz % u.sw;
  let rows = (u.H - phh + u.sh - 1) / u.sh;
  let cols = (u.W - phw + u.sw - 1) / u.sw;
  let CB = (cols + ${PB - 1}) / ${PB};
  let npix = rows * CB;
  let live = i32(gid.x) < npix;
  let t = min(i32(gid.x), max(npix - 1, 0));
  let i = t / CB;
  let j0 = (t % CB) * ${PB};
  let nb = (u.Cg + ${IB - 1}) / ${IB};
  let g = i32(wid.y) / nb;
  let c0 = (i32(wid.y) % nb) * ${IB};
  let KK = u.KH * u.KW;
  let CKK = u.Cg * KK;
${ibs.map((j) => `  let wb${j} = min(c0 + ${j}, u.Cg - 1) * KK;`).join('\n')}
${ibs.map((j) => `  var acc${j} = ${T}(0.0);`).join('\n')}
  let jv = ${I}(j0) + ${iota(PB)};
  for (var ol = 0; ol < u.Og; ol++) {
    let o = g * u.Og + ol;
    let dyo = (n * u.O + o) * u.OH;
    let wo = o * CKK;
    for (var kh = 0; kh < u.KH; kh++) {
      let th = phh + u.ph - kh * u.dlh;
      if (th % u.sh != 0) { continue; }
      let oh = i + th / u.sh;
      let rok = oh >= 0 && oh < u.OH;
      let dyr = (dyo + clamp(oh, 0, u.OH - 1)) * u.OW;
      let wk = wo + kh * u.KW;
      for (var kw = 0; kw < u.KW; kw++) {
        let tw = phw + u.pw - kw * u.dlw;
        if (tw % u.sw != 0) { continue; }
        let ow = jv + ${I}(tw / u.sw);
        let ok = (ow >= ${I}(0)) & (ow < ${I}(u.OW)) & ${I === 'i32' ? 'rok' : `${T.replace('f32', 'bool')}(rok)`};
        let dv = ${gather('dy', 'dyr', 'ow', 'ok', 'u.OW - 1', PB)};
        let wi = wk + kw;
${ibs.map((j) => `        acc${j} += w[u32(wb${j} + wi)] * dv;`).join('\n')}
      }
    }
  }
  if (!live) { return; }
  let ih = phh + i * u.sh;
${ibs
  .map((j) => {
    const lines = [`  if (c0 + ${j} < u.Cg) {`, `    let xb = ((n * u.C + g * u.Cg + c0 + ${j}) * u.H + ih) * u.W;`];
    comps(`acc${j}`, PB).forEach((c, p) => {
      lines.push(`    { let iw = phw + (j0 + ${p}) * u.sw; if (iw < u.W) { dx[u32(xb + iw)] = ${c}; } }`);
    });
    lines.push('  }');
    return lines.join('\n');
  })
  .join('\n')}
}
`;
}

/**
 * Fast filter gradient, split over the reduction: dw_part[s, o, ci, kh, kw] = sum over rows
 * r = n*OH + oh in chunk s (u.rows rows each) and ow of dy[n, o, oh, ow] * x[n, g*Cg+ci, ih, iw].
 * Workgroup (x: (ci, kh) positions, y: group * channel block, z: chunk s); each thread
 * computes OB output channels x all KW taps (KW compile-time, in vec4 chunks). The dy
 * loads are uniform across the workgroup. The caller sums the S partials. Bindings: dy, x, dw.
 */
export function conv2dBackwardFilterFastWgsl(OB: number, KW: number, wg = CONV_WG): string {
  const obs = range(OB);
  const cks = chunks(KW);
  const offs = cks.map((_, q) => q * 4);
  return `// conv2d_backward_filter (fast: ${OB} channels x ${KW} taps per thread, split reduction)
${CONV_UNIFORM_WGSL}
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> dw: array<f32>;
@compute @workgroup_size(${wg})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let P = u.Cg * u.KH;
  let live = i32(gid.x) < P;
  let pc = min(i32(gid.x), P - 1);
  let ci = pc / u.KH;
  let kh = pc % u.KH;
  let nb = (u.Og + ${OB - 1}) / ${OB};
  let g = i32(wid.y) / nb;
  let o0 = g * u.Og + (i32(wid.y) % nb) * ${OB};
  let omax = g * u.Og + u.Og - 1;
  let s = i32(wid.z);
  let r0 = s * u.rows;
  let r1 = min(r0 + u.rows, u.N * u.OH);
  let c = g * u.Cg + ci;
${obs.map((j) => `  let oo${j} = min(o0 + ${j}, omax);`).join('\n')}
${obs.map((j) => cks.map((wd, q) => `  var acc${j}_${q} = ${vt(wd)}(0.0);`).join('\n')).join('\n')}
${cks.map((wd, q) => `  let kwv${q} = (${vi(wd)}(${offs[q]}) + ${iota(wd)}) * u.dlw - u.pw;`).join('\n')}
  for (var r = r0; r < r1; r++) {
    let n = r / u.OH;
    let oh = r % u.OH;
    let ih = oh * u.sh - u.ph + kh * u.dlh;
    let rok = ih >= 0 && ih < u.H;
    let xr = ((n * u.C + c) * u.H + clamp(ih, 0, u.H - 1)) * u.W;
${obs.map((j) => `    let dr${j} = ((n * u.O + oo${j}) * u.OH + oh) * u.OW;`).join('\n')}
    for (var ow = 0; ow < u.OW; ow++) {
      let iwb = ow * u.sw;
${cks
  .map((wd, q) => {
    const I = vi(wd);
    const okRok = wd === 1 ? 'rok' : `vec${wd}<bool>(rok)`;
    return `      let iw${q} = kwv${q} + ${I}(iwb);
      let xv${q} = ${gather('x', 'xr', `iw${q}`, `(iw${q} >= ${I}(0)) & (iw${q} < ${I}(u.W)) & ${okRok}`, 'u.W - 1', wd)};`;
  })
  .join('\n')}
${obs.map((j) => `      let d${j} = dy[u32(dr${j} + ow)];\n${cks.map((_, q) => `      acc${j}_${q} += d${j} * xv${q};`).join('\n')}`).join('\n')}
    }
  }
  if (!live) { return; }
${obs
  .map((j) => {
    const lines = [`  if (o0 + ${j} <= omax) {`, `    let db = (((s * u.O + o0 + ${j}) * u.Cg + ci) * u.KH + kh) * u.KW;`];
    cks.forEach((wd, q) => comps(`acc${j}_${q}`, wd).forEach((cexp, k) => {
      const kw = offs[q]! + k;
      lines.push(`    dw[u32(db + ${kw})] = ${cexp};`);
    }));
    lines.push('  }');
    return lines.join('\n');
  })
  .join('\n')}
}
`;
}


/** Descriptor of the fast forward kernel. Bindings: x, w, [b], y, [z], [act params]. */
export const conv2dFastKernel = defineKernel<{ OB: number; PB: number; epi: ConvEpilogue }>({
  name: 'conv2d_direct',
  label: (p) => (p.epi.act ? 'conv2d_direct_act' : 'conv2d_direct'),
  key: (p) => `${p.OB}x${p.PB}:${convEpilogueKey(p.epi)}`,
  bindings: (p) => convForwardBindings(['x', 'w'], p.epi),
  build: (p) => conv2dFastWgsl(p.OB, p.PB, p.epi),
});

/** Descriptor of the fast input gradient (stride phases). Bindings: dy, w, dx. */
export const conv2dDxFastKernel = defineKernel<{ IB: number; PB: number }>({
  name: 'conv2d_backward_input',
  key: (p) => `${p.IB}x${p.PB}`,
  bindings: () => [...reads('dy', 'w'), ...writes('dx')],
  build: (p) => conv2dBackwardInputFastWgsl(p.IB, p.PB),
});

/** Descriptor of the fast filter gradient (split reduction). Bindings: dy, x, dw. */
export const conv2dDwFastKernel = defineKernel<{ OB: number; KW: number; wg: number }>({
  name: 'conv2d_backward_filter',
  key: (p) => `${p.OB}:${p.KW}:${p.wg}`,
  bindings: () => [...reads('dy', 'x'), ...writes('dw')],
  build: (p) => conv2dBackwardFilterFastWgsl(p.OB, p.KW, p.wg),
});
