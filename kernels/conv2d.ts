// WGSL builders for 2-D convolution (NCHW input, OIHW filter, groups, stride, padding,
// dilation): register-blocked "uniform-operand" kernels for the forward pass, the input
// gradient (dx) and the filter gradient (dw). The naive one-output-per-thread kernels
// that serve as baseline and oracle live in conv2d_naive.ts.
//
// Design (measured on lavapipe): llvmpipe runs the invocations of a workgroup as SIMD
// lanes; a storage load whose address is the same for every lane (it depends only on the
// workgroup id and loop counters) becomes one scalar load plus a broadcast, while a
// per-lane address becomes a gather. So each kernel puts one operand's index in the
// workgroup id (filter rows for fwd/dx, dy rows for dw), keeps all loop bounds uniform,
// and register-blocks the other operand: each thread gathers a few x (or dy) values and
// reuses each across a block of output channels. Out-of-range taps (padding) are read
// at a clamped address and zeroed with select, so no lane branches. No workgroup memory.
//
// Packed kernels (the default 'fast' path where >= 4 channels per group): x is first
// copied into a zero-padded layout with rows of a multiple of 4 floats and the filter
// into [G, Cg, KH, KW, Og rounded up], so that each thread loads its x span as aligned
// vec4s once per (ci, kh), builds every tap by swizzles, and loads weights as uniform
// vec4s; measured ~2.5x the direct kernels on lavapipe. The stride-1 input gradient runs
// as a packed forward conv of dy with the flipped, transposed filter.
//
// Uniform block (all i32, see convUniformWords): N C H W | O OH OW G | KH KW Cg Og |
// sh sw ph pw | dlh dlw gx rows | S p0 p1 p2 (packed kernels: p0 = padded rows Hp,
// p1 = padded row length / 4, p2 = padded channels per group / 4), then, for forward
// kernels with an activation epilogue, act: vec4<f32> (the activation's parameters).

export const CONV_WG = 64;

/** The uniform block; `act` appends the epilogue's `act: vec4<f32>` field (words 24-27, f32). */
export function convUniformWgsl(act = false): string {
  return `struct U {
  N: i32, C: i32, H: i32, W: i32,
  O: i32, OH: i32, OW: i32, G: i32,
  KH: i32, KW: i32, Cg: i32, Og: i32,
  sh: i32, sw: i32, ph: i32, pw: i32,
  dlh: i32, dlw: i32, gx: i32, rows: i32,
  S: i32, p0: i32, p1: i32, p2: i32,${act ? '\n  act: vec4<f32>,' : ''}
};
@group(0) @binding(0) var<uniform> u: U;`;
}

export const CONV_UNIFORM_WGSL = convUniformWgsl(false);

/** Resolved convolution geometry (all sizes in elements). */
export interface ConvGeom {
  N: number; C: number; H: number; W: number;
  O: number; OH: number; OW: number; G: number;
  KH: number; KW: number; Cg: number; Og: number;
  sh: number; sw: number; ph: number; pw: number; dlh: number; dlw: number;
}

/** The 24 i32 uniform words in CONV_UNIFORM_WGSL order. */
export function convUniformWords(p: ConvGeom, gx = 0, rows = 0, S = 0): number[] {
  return [p.N, p.C, p.H, p.W, p.O, p.OH, p.OW, p.G, p.KH, p.KW, p.Cg, p.Og, p.sh, p.sw, p.ph, p.pw, p.dlh, p.dlw, gx, rows, S, 0, 0, 0];
}

/**
 * Optional fused forward epilogue: bias add and/or an activation `fn epi_act(z: f32) -> f32`.
 * With `act` the uniform block gains `act: vec4<f32>` (see convUniformWgsl) and the snippet
 * may declare bindings from convEpilogueBinding(epi) on. With `saveZ` the pre-activation
 * z = conv + bias is stored too, to an output bound right after y, from the same registers.
 */
export interface ConvEpilogue {
  bias: boolean;
  /** WGSL defining `fn epi_act(z: f32) -> f32` (plus any helpers and bindings it needs). */
  act?: string;
  /** Also write z (the value before epi_act) to a second output (needs `act`). */
  saveZ?: boolean;
}

/** The first binding free for an epilogue's own buffers (after x, w, [b], y, [z]). */
export function convEpilogueBinding(epi: { bias: boolean; saveZ?: boolean }): number {
  return (epi.bias ? 4 : 3) + (epi.saveZ ? 2 : 1);
}

/** WGSL declarations of the forward kernels' outputs y and [z]. */
export function convOutputBindings(epi: ConvEpilogue): string {
  if (epi.saveZ && !epi.act) throw new Error('conv2d kernel: saveZ needs an act epilogue');
  const yb = epi.bias ? 4 : 3;
  const lines = [`@group(0) @binding(${yb}) var<storage, read_write> y: array<f32>;`];
  if (epi.saveZ) lines.push(`@group(0) @binding(${yb + 1}) var<storage, read_write> z: array<f32>;`);
  return lines.join('\n');
}

/**
 * The activation epilogue's stores of a forward kernel: the OB accumulators acc0.. (type T,
 * PB pixels each) go through a loop over channels j < min(OB, `left`) with output channel
 * `oExpr` (WGSL, in j), adding the bias, storing y = epi_act(v) (and z = v with saveZ).
 * NOTE: a loop with a data-dependent trip count is not unrolled, so the activation is
 * inlined PB times instead of OB*PB times: unrolled, lavapipe's LLVM spends most of a
 * cold shader compile on the 32 inlined activations (measured for the matmul tile:
 * 2.6 s vs 1.1 s with GELU), and the stores are a small part of the run time.
 */
function actStoreLoop(OB: number, T: string, left: string, oExpr: string, PB: number, epi: ConvEpilogue): string {
  const lines = [
    `  var accs = array<${T}, ${OB}>(${range(OB).map((j) => `acc${j}`).join(', ')});`,
    `  let nj = min(${OB}, ${left});`,
    '  for (var j = 0; j < nj; j++) {',
    `    let o = ${oExpr};`,
    '    let yb = ((n * u.O + o) * u.OH + oh) * u.OW + ow0;',
    `    var v = accs[j];`,
  ];
  if (epi.bias) lines.push(`    v += ${T}(b[u32(o)]);`);
  comps('v', PB).forEach((c, p) => lines.push(`    if (ow0 + ${p} < u.OW) { ${convEpilogueStore(epi, `u32(yb + ${p})`, c)} }`));
  lines.push('  }');
  return lines.join('\n');
}

/** Stores of one output value `v` at flat index `idx` (y = epi_act(v) and, with saveZ, z = v). */
export function convEpilogueStore(epi: ConvEpilogue, idx: string, v: string): string {
  if (!epi.act) return `y[${idx}] = ${v};`;
  return epi.saveZ ? `{ let zv = ${v}; y[${idx}] = epi_act(zv); z[${idx}] = zv; }` : `y[${idx}] = epi_act(${v});`;
}

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/** Split a width into vector chunks of at most 4 lanes (e.g. 7 -> [4, 3]). */
function chunks(n: number): number[] {
  const r: number[] = [];
  for (let left = n; left > 0; left -= 4) r.push(Math.min(4, left));
  return r;
}

function vt(width: number): string {
  return width === 1 ? 'f32' : `vec${width}<f32>`;
}
function vi(width: number): string {
  return width === 1 ? 'i32' : `vec${width}<i32>`;
}
/** Components of a vector expression (or the expression itself for width 1). */
function comps(e: string, width: number): string[] {
  return width === 1 ? [e] : range(width).map((j) => `${e}.${'xyzw'[j]}`);
}
/** vecN<i32>(0, 1, ..., N-1) or 0. */
function iota(width: number): string {
  return width === 1 ? '0' : `${vi(width)}(${range(width).join(', ')})`;
}

/**
 * Masked gather of `width` values of buffer `buf` at row offset `row` (i32) plus columns
 * `col` (vecN<i32>), valid where `ok` (vecN<bool>): reads at clamped columns (always in
 * bounds), zeros where not ok.
 */
function gather(buf: string, row: string, col: string, ok: string, hi: string, width: number): string {
  const cl = `clamp(${col}, ${vi(width)}(0), ${vi(width)}(${hi}))`;
  if (width === 1) return `select(0.0, ${buf}[u32(${row} + ${cl})], ${ok})`;
  const loads = comps(`(${cl})`, width).map((e) => `${buf}[u32(${row} + ${e})]`);
  return `select(${vt(width)}(0.0), ${vt(width)}(${loads.join(', ')}), ${ok})`;
}

/** Heuristic output-channel block for the fast kernels. */
export function convBlock(perGroup: number, max = 8): number {
  return Math.max(1, Math.min(max, perGroup));
}

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
${convUniformWgsl(!!epi.act)}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
${epi.bias ? '@group(0) @binding(3) var<storage, read> b: array<f32>;' : ''}
${convOutputBindings(epi)}
${epi.act ?? ''}
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

/**
 * Zero-padding copy for the packed kernels: xp[n, c, i, j] = x[n, c, i - ph, j - pw] inside
 * the image, 0 elsewhere, xp of shape [N, C, u.p0 (Hp), 4 * u.p1 (Wp)]. One thread per
 * element (index gid.x + gid.y * u.gx). Bindings: x, xp.
 */
export function conv2dPadWgsl(): string {
  return `// conv2d_pad
${CONV_UNIFORM_WGSL}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> xp: array<f32>;
@compute @workgroup_size(${CONV_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = i32(gid.x + gid.y * u32(u.gx));
  let Wp = 4 * u.p1;
  if (i >= u.N * u.C * u.p0 * Wp) { return; }
  let j = i % Wp;
  let r = i / Wp;
  let ii = r % u.p0;
  let nc = r / u.p0;
  let ih = ii - u.ph;
  let iw = j - u.pw;
  let ok = ih >= 0 && ih < u.H && iw >= 0 && iw < u.W;
  let src = (nc * u.H + clamp(ih, 0, u.H - 1)) * u.W + clamp(iw, 0, u.W - 1);
  xp[u32(i)] = select(0.0, x[u32(src)], ok);
}
`;
}

/**
 * Filter packing for the packed kernels: wt[g, a, kh, kw, q] (q < 4 * u.p2 = OgP, zero for
 * q >= u.Og) with, when `flip` is false (forward), wt = w[g*Og + q, a, kh, kw]; when true
 * (input gradient as a forward conv over dy), the roles of the channel axes swap and the
 * taps are flipped: wt[g, a, kh, kw, q] = w[g*Cg' + a, q, KH-1-kh, KW-1-kw] where the
 * uniforms describe the dx-as-forward geometry (Cg = Og of w, Og = Cg of w). Bindings: w, wt.
 */
export function conv2dPackFilterWgsl(flip: boolean): string {
  return `// conv2d_pack_filter${flip ? ' (flipped, transposed)' : ''}
${CONV_UNIFORM_WGSL}
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> wt: array<f32>;
@compute @workgroup_size(${CONV_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = i32(gid.x + gid.y * u32(u.gx));
  let OgP = 4 * u.p2;
  if (i >= u.G * u.Cg * u.KH * u.KW * OgP) { return; }
  let q = i % OgP;
  var r = i / OgP;
  let kw = r % u.KW; r = r / u.KW;
  let kh = r % u.KH; r = r / u.KH;
  let a = r % u.Cg;
  let g = r / u.Cg;
  let qc = min(q, u.Og - 1);
${
  flip
    ? '  let src = (((g * u.Cg + a) * u.Og + qc) * u.KH + (u.KH - 1 - kh)) * u.KW + (u.KW - 1 - kw);'
    : '  let src = (((g * u.Og + qc) * u.Cg + a) * u.KH + kh) * u.KW + kw;'
}
  wt[u32(i)] = select(0.0, w[u32(src)], q < u.Og);
}
`;
}

/** Compile-time shape of a packed forward kernel. */
export interface ConvPackedSpec {
  /** Output channels per thread (multiple of 4). */
  OB: number;
  KW: number;
  sw: number;
  dlw: number;
  epi?: ConvEpilogue;
}

/** Number of vec4 loads of one padded x row a thread needs (4 outputs, all KW taps). */
export function convPackedSpan(s: { KW: number; sw: number; dlw: number }): number {
  return Math.ceil((3 * s.sw + (s.KW - 1) * s.dlw + 1) / 4);
}

/**
 * Packed forward: the same conv as conv2dFastWgsl, over a zero-padded x (xp, rows of
 * 4*u.p1 floats, u.p0 rows; padding already applied, so no bounds checks) and a packed
 * filter (wt, see conv2dPackFilterWgsl, OgP = 4*u.p2). Each thread computes OB output
 * channels x 4 consecutive ow. Per (ci, kh) it loads the x span it needs as aligned
 * vec4s once and builds every tap's 4-pixel vector by swizzles (KW, sw, dlw are
 * compile-time); per tap the OB weights are OB/4 uniform vec4 loads. Bindings: xp, wt, [b], y, [z].
 */
export function conv2dPackedWgsl(s: ConvPackedSpec): string {
  const epi = s.epi ?? { bias: false };
  const NV = convPackedSpan(s);
  const Q = s.OB / 4;
  const qs = range(Q);
  const obs = range(s.OB);
  const el = (k: number): string => `v${Math.floor(k / 4)}.${'xyzw'[k % 4]}`;
  const taps = range(s.KW)
    .map((kw) => {
      const xv = `vec4<f32>(${range(4).map((j) => el(kw * s.dlw + j * s.sw)).join(', ')})`;
      const lines = [`      { let xv = ${xv};`];
      for (const q of qs) {
        lines.push(`        let w${q} = wt[u32(wk + ${kw} * u.p2 + ${q})];`);
        for (let k = 0; k < 4; k++) lines.push(`        acc${4 * q + k} += w${q}.${'xyzw'[k]} * xv;`);
      }
      lines.push('      }');
      return lines.join('\n');
    })
    .join('\n');
  return `// conv2d (packed: ${s.OB} channels x 4 pixels per thread, KW=${s.KW} sw=${s.sw} dlw=${s.dlw}${epi.saveZ ? ', saveZ' : ''})
${convUniformWgsl(!!epi.act)}
@group(0) @binding(1) var<storage, read> xp: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> wt: array<vec4<f32>>;
${epi.bias ? '@group(0) @binding(3) var<storage, read> b: array<f32>;' : ''}
${convOutputBindings(epi)}
${epi.act ?? ''}
@compute @workgroup_size(${CONV_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let OWB = (u.OW + 3) / 4;
  let npix = u.OH * OWB;
  let t = min(i32(gid.x), npix - 1);
  let oh = t / OWB;
  let ow0 = (t % OWB) * 4;
  let nb = u.p2 / ${Q};
  let g = i32(wid.y) / nb;
  let ol0 = (i32(wid.y) % nb) * ${s.OB};
  let n = i32(wid.z);
  let xcol = (ow0 * ${s.sw}) / 4;
${obs.map((j) => `  var acc${j} = vec4<f32>(0.0);`).join('\n')}
  for (var ci = 0; ci < u.Cg; ci++) {
    let xc = (n * u.C + g * u.Cg + ci) * u.p0 + oh * u.sh;
    let wc = (g * u.Cg + ci) * u.KH;
    for (var kh = 0; kh < u.KH; kh++) {
      let xr = (xc + kh * u.dlh) * u.p1 + xcol;
${range(NV).map((k) => `      let v${k} = xp[u32(xr + ${k})];`).join('\n')}
      let wk = ((wc + kh) * ${s.KW}) * u.p2 + ol0 / 4;
${taps}
    }
  }
  if (i32(gid.x) >= npix) { return; }
${
  epi.act
    ? actStoreLoop(obs.length, 'vec4<f32>', 'u.Og - ol0', 'g * u.Og + ol0 + j', 4, epi)
    : obs
        .map((j) => {
          const lines = [`  if (ol0 + ${j} < u.Og) {`, `    let o = g * u.Og + ol0 + ${j};`, `    let yb = ((n * u.O + o) * u.OH + oh) * u.OW + ow0;`];
          lines.push(`    var v = acc${j};`);
          if (epi.bias) lines.push(`    v += vec4<f32>(b[u32(o)]);`);
          comps('v', 4).forEach((c, p) => {
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
