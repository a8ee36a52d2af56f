// WGSL builders and descriptors for the per-pixel conv2d kernels (impl 'pixel'), made for
// layers with a short reduction CK = Cg*KH*KW (a first layer on 1-3 input channels, e.g.
// the MNIST CNN's conv1, 1->32 3x3): each thread owns 4 consecutive pixels of the flattened
// output plane of one image and a block of output channels, with the taps unrolled
// (Cg, KH, KW compile-time; the forward loops over the input channels).
// - forward: the OB channels' sums stay in registers (OB vec4 accumulators); each tap is one
//   4-pixel gather of x reused by OB uniform weight loads; the stores are one aligned vec4
//   per channel when OH*OW % 4 == 0 (the packed kernel's per-row blocks store scalars).
// - filter gradient: lanes run over (image, pixel block) pairs, each accumulating OB x CK
//   partial sums of dy * x (vec4 over its 4 pixels); the workgroup then reduces its 64
//   lanes through workgroup memory (OB*CK <= 64 values per lane) and writes one partial per
//   workgroup; the caller sums the partials of the x workgroups.
// NOTE (lavapipe): the packed and direct kernels put the pixels of one output row in a
// thread and the channels in the workgroup id, so the 1-channel reduction (9 taps) is too
// short to hide their per-thread setup and scalar stores, and the direct filter gradient
// has only Cg*KH = 3 live lanes per workgroup for conv1. Measured in bench/conv2d.bench.ts.
// Uniform block: convUniformWgsl (conv2d_common.ts; gx = threads per grid row).
import { defineKernel, reads, writes } from './kernel.ts';
import { CONV_WG, convEpilogueKey, convEpilogueStore, convForwardBindings, convForwardDeclsWgsl, convUniformWgsl, range, type ConvEpilogue } from './conv2d_common.ts';

/** Compile-time shape of the per-pixel kernels. */
export interface ConvPixelSpec {
  /** Output channels per thread. */
  OB: number;
  Cg: number;
  KH: number;
  KW: number;
  /** OH*OW % 4 == 0: 4-pixel blocks never straddle planes; vec4 loads / stores. */
  vec: boolean;
}

/** Shared prologue: the thread's image n, pixel block p0 and its 4 pixels' tap origins. */
function pixelPrologue(item: string): string {
  return `  let OHW = u.OH * u.OW;
  let NPB = (OHW + 3) / 4;
  let total = u.N * NPB;
  let live = ${item} < total;
  let q = min(${item}, total - 1);
  let n = q / NPB;
  let p0 = (q % NPB) * 4;
  let pv = vec4<i32>(p0) + vec4<i32>(0, 1, 2, 3);
  let pin = pv < vec4<i32>(OHW);
  let pc = min(pv, vec4<i32>(OHW - 1));
  let ihb = (pc / u.OW) * u.sh - u.ph;
  let iwb = (pc % u.OW) * u.sw - u.pw;`;
}

/**
 * The taps: for each (ci, kh, kw) `body(k)` with xv the 4 pixels' masked x values and k the
 * tap index (WGSL). `loopCi`: ci runs as a loop (k = ci*KH*KW + const), else unrolled too.
 */
function taps(s: ConvPixelSpec, body: (k: string) => string, loopCi = false): string {
  const out: string[] = [];
  const KK = s.KH * s.KW;
  if (loopCi) out.push(`  for (var ci = 0; ci < ${s.Cg}; ci++) {`);
  for (let ci = 0; ci < (loopCi ? 1 : s.Cg); ci++) {
    out.push(loopCi ? '  { let xc = (n * u.C + g * u.Cg + ci) * u.H * u.W;' : `  { let xc = (n * u.C + g * u.Cg + ${ci}) * u.H * u.W;`);
    for (let kh = 0; kh < s.KH; kh++) {
      out.push(`    { let ih = ihb + vec4<i32>(${kh} * u.dlh); let rok = (ih >= vec4<i32>(0)) & (ih < vec4<i32>(u.H)); let xr = xc + clamp(ih, vec4<i32>(0), vec4<i32>(u.H - 1)) * u.W;`);
      for (let kw = 0; kw < s.KW; kw++) {
        const k = loopCi ? `ci * ${KK} + ${kh * s.KW + kw}` : `${(ci * s.KH + kh) * s.KW + kw}`;
        out.push(`      { let iw = iwb + vec4<i32>(${kw} * u.dlw); let ok = rok & (iw >= vec4<i32>(0)) & (iw < vec4<i32>(u.W)); let xi = xr + clamp(iw, vec4<i32>(0), vec4<i32>(u.W - 1));
        let xv = select(vec4<f32>(0.0), vec4<f32>(x[u32(xi.x)], x[u32(xi.y)], x[u32(xi.z)], x[u32(xi.w)]), ok);
${body(k)}
      }`);
      }
      out.push('    }');
    }
    out.push('  }');
  }
  if (loopCi) out.push('  }');
  return out.join('\n');
}

/** Stores of channel o's 4 pixels v (vec4) with the epilogue (y = epi_act(v), z = v). */
function storeChannel(s: ConvPixelSpec, epi: ConvEpilogue): string {
  if (s.vec) {
    const yv = epi.act ? 'vec4<f32>(epi_act(v.x), epi_act(v.y), epi_act(v.z), epi_act(v.w))' : 'v';
    return `    let yb = u32(((n * u.O + o) * OHW + p0) / 4);
    y[yb] = ${yv};${epi.saveZ ? '\n    z[yb] = v;' : ''}`;
  }
  return `    let yb = (n * u.O + o) * OHW + p0;
${range(4)
  .map((e) => `    if (p0 + ${e} < OHW) { ${convEpilogueStore(epi, `u32(yb + ${e})`, `v.${'xyzw'[e]}`)} }`)
  .join('\n')}`;
}

/**
 * Per-pixel forward: y[n, o, pix] for 4 consecutive flat pixels and OB channels per thread.
 * Grid: x, y = a 2-D grid over the N * ceil(OH*OW / 4) pixel blocks (u.gx threads per grid
 * row), z = group * channel block. Bindings: x, w, [b], y, [z], [act params].
 */
export function conv2dPixelWgsl(s: ConvPixelSpec, epi: ConvEpilogue = { bias: false }): string {
  const obs = range(s.OB);
  const CK = s.Cg * s.KH * s.KW;
  return `// conv2d_pixel (${s.OB} channels x 4 flat pixels per thread, Cg=${s.Cg} ${s.KH}x${s.KW} taps unrolled${s.vec ? ', vec4 stores' : ''}${epi.saveZ ? ', saveZ' : ''})
${convForwardDeclsWgsl(epi, ['x', 'w'], 'f32', s.vec ? 'vec4<f32>' : 'f32')}
@compute @workgroup_size(${CONV_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
${pixelPrologue('i32(gid.x + gid.y * u32(u.gx))')}
  let nb = (u.Og + ${s.OB - 1}) / ${s.OB};
  let g = i32(wid.z) / nb;
  let o0 = g * u.Og + (i32(wid.z) % nb) * ${s.OB};
  let omax = g * u.Og + u.Og - 1;
${obs.map((j) => `  let wb${j} = min(o0 + ${j}, omax) * ${CK};`).join('\n')}
${obs.map((j) => `  var acc${j} = vec4<f32>(0.0);`).join('\n')}
${taps(s, (k) => obs.map((j) => `        acc${j} += w[u32(wb${j} + ${k})] * xv;`).join('\n'), s.Cg > 1)}
  if (!live) { return; }
  var accs = array<vec4<f32>, ${s.OB}>(${obs.map((j) => `acc${j}`).join(', ')});
  // NOTE: a loop with a data-dependent trip count (not unrolled): the activation is inlined 4 times, not 4*OB.
  let nj = min(${s.OB}, omax - o0 + 1);
  for (var j = 0; j < nj; j++) {
    let o = o0 + j;
    var v = accs[j];${epi.bias ? '\n    v += vec4<f32>(b[u32(o)]);' : ''}
${storeChannel(s, epi)}
  }
}
`;
}

/** Channels per thread of the per-pixel filter gradient: OB * CK <= 64 (one reduction pass), a power of 2 <= 8. */
export function convPixelDwBlock(Og: number, CK: number): number {
  let OB = 1;
  while (OB * 2 <= Math.min(8, Og) && OB * 2 * CK <= 64) OB *= 2;
  return OB;
}

/**
 * Per-pixel filter gradient, partial per x workgroup: part[wx, o, k] = sum over the
 * (image, pixel block) items t = (it * nwg.x + wx) * 64 + lane of dy[n, o, pix] * x-tap k.
 * Grid: x = the partials (any count), y = group * channel block. Needs OB * CK <= 64.
 * Bindings: dy, x, part.
 */
export function conv2dBackwardFilterPixelWgsl(s: ConvPixelSpec): string {
  const obs = range(s.OB);
  const CK = s.Cg * s.KH * s.KW;
  const V = s.OB * CK;
  if (V > 64) throw new Error(`conv2d_backward_filter_pixel: OB * CK = ${V} exceeds 64`);
  const ks = range(CK);
  const dyLoad = (j: number): string =>
    s.vec
      ? `select(vec4<f32>(0.0), dy[u32(((n * u.O + oo${j}) * OHW + p0) / 4)], live)`
      : `select(vec4<f32>(0.0), vec4<f32>(${range(4).map((e) => `dy[u32((n * u.O + oo${j}) * OHW + pc.${'xyzw'[e]})]`).join(', ')}), pin & vec4<bool>(live))`;
  return `// conv2d_backward_filter_pixel (${s.OB} channels x ${CK} taps per lane, 4 flat pixels, Cg=${s.Cg} ${s.KH}x${s.KW}${s.vec ? ', vec4 dy' : ''})
${convUniformWgsl(false)}
@group(0) @binding(1) var<storage, read> dy: array<${s.vec ? 'vec4<f32>' : 'f32'}>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> part: array<f32>;
var<workgroup> red: array<f32, ${V * CONV_WG}>;
@compute @workgroup_size(${CONV_WG})
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let lane = i32(lid.x);
  let wx = i32(wid.x);
  let S = i32(nwg.x);
  let nb = (u.Og + ${s.OB - 1}) / ${s.OB};
  let g = i32(wid.y) / nb;
  let o0 = g * u.Og + (i32(wid.y) % nb) * ${s.OB};
  let omax = g * u.Og + u.Og - 1;
${obs.map((j) => `  let oo${j} = min(o0 + ${j}, omax);`).join('\n')}
${obs.map((j) => ks.map((k) => `  var a${j}_${k} = vec4<f32>(0.0);`).join(' ')).join('\n')}
  let items = u.N * ((u.OH * u.OW + 3) / 4);
  let iters = (items + S * ${CONV_WG} - 1) / (S * ${CONV_WG});
  for (var it = 0; it < iters; it++) {
${pixelPrologue(`(it * S + wx) * ${CONV_WG} + lane`)
  .split('\n')
  .map((l) => `  ${l}`)
  .join('\n')}
${obs.map((j) => `    let d${j} = ${dyLoad(j)};`).join('\n')}
${taps(s, (k) => obs.map((j) => `        a${j}_${k} += d${j} * xv;`).join('\n'))
  .split('\n')
  .map((l) => `  ${l}`)
  .join('\n')}
  }
${obs.map((j) => ks.map((k) => `  red[${(j * CK + k) * CONV_WG} + lane] = dot(a${j}_${k}, vec4<f32>(1.0));`).join('\n')).join('\n')}
  workgroupBarrier();
  if (lane >= ${V}) { return; }
  var s = 0.0;
  for (var l = 0; l < ${CONV_WG}; l++) { s += red[lane * ${CONV_WG} + l]; }
  let j = lane / ${CK};
  let k = lane % ${CK};
  if (o0 + j <= omax) { part[u32((wx * u.O + o0 + j) * ${CK} + k)] = s; }
}
`;
}

/** Descriptor of the per-pixel forward. Bindings: x, w, [b], y, [z], [act params]. */
export const conv2dPixelKernel = defineKernel<ConvPixelSpec & { epi: ConvEpilogue }>({
  name: 'conv2d_pixel',
  label: (p) => (p.epi.act ? 'conv2d_pixel_act' : 'conv2d_pixel'),
  key: (p) => `${p.OB}:${p.Cg}:${p.KH}x${p.KW}:${p.vec ? 'v' : 's'}:${convEpilogueKey(p.epi)}`,
  bindings: (p) => convForwardBindings(['x', 'w'], p.epi),
  build: (p) => conv2dPixelWgsl(p, p.epi),
});

/** Descriptor of the per-pixel filter gradient. Bindings: dy, x, part. */
export const conv2dDwPixelKernel = defineKernel<ConvPixelSpec>({
  name: 'conv2d_backward_filter_pixel',
  key: (p) => `${p.OB}:${p.Cg}:${p.KH}x${p.KW}:${p.vec ? 'v' : 's'}`,
  bindings: () => [...reads('dy', 'x'), ...writes('part')],
  build: conv2dBackwardFilterPixelWgsl,
});
