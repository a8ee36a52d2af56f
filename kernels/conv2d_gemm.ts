// WGSL builders for the GEMM formulation of conv2d (engine/ops/conv2d.ts, impl 'gemm'):
// im2col (x -> col), a gather-style col2im (dcol -> dx, no atomics, deterministic) and the
// filter packing that folds the bias into the GEMM. The products themselves run on the
// batched matmul kernel (kernels/matmul.ts).
//
// Layout ("pixel-major"): col is [G, N*OH*OW, Kp] per chunk of N images: for group g one
// row per output pixel (n, oh, ow) holding its taps k = (ci*KH + kh)*KW + kw < CK =
// Cg*KH*KW; columns k >= CK are zero padding, except column `ones` (all ones) when the
// forward folds the bias into the product. The products (engine/ops/conv2d.ts):
//   yT_g   = col_g · [W_g | b_g | 0]^T   [N*OH*OW, Og] (the filter packed transposed, [Kp, Og]), then one permute to NCHW
//   dcol   = dy[n, g]^T · W_g            [N, G, OH*OW, CK], then dx = col2im(dcol)
//            (or W_g^T · dy[n, g] into [N, G, CK, OH*OW] when CK < 32: see conv2d.ts)
//   dW_g   = dyP_g · col_g               (dyP = dy permuted to [G, Og, N*OH*OW]: K is long)
// NOTE: the big operand (col, dy) is the matmul's `a` (rows per workgroup, loads uniform
// across lanes) and the filter the small `b`: measured ~2x faster on lavapipe than
// W · col per image, which re-reads col once per 8 filter rows.
//
// NOTE (lavapipe): each thread handles GEMM_EPT consecutive elements (pixels) of one row
// with vec4 stores where the row length allows it; per-invocation overhead dominates
// copy kernels there and 16 per thread measured 3-4x faster than 1. The (oh, ow) walk is
// incremental (no div/mod per element); out-of-range taps read a clamped address and are
// zeroed with select, so no lane branches.
import { defineKernel, reads, writes } from './kernel.ts';
import { gridMainI32 } from './wgsl_grid.ts';

export const GEMM_WG = 64;
/** Elements (pixels) per thread of the im2col / col2im kernels (a multiple of 4). */
export const GEMM_EPT = 16;

/**
 * Uniform block (all i32): N (images in this chunk) C H W | O OH OW G | KH KW Cg Og |
 * sh sw ph pw | dlh dlw gx Kp | n0 (first image of the chunk in x / dx) ones (bias row or
 * -1) nblk (pixel blocks per row) threads.
 */
export const GEMM_UNIFORM_WGSL = `struct U {
  N: i32, C: i32, H: i32, W: i32,
  O: i32, OH: i32, OW: i32, G: i32,
  KH: i32, KW: i32, Cg: i32, Og: i32,
  sh: i32, sw: i32, ph: i32, pw: i32,
  dlh: i32, dlw: i32, gx: i32, Kp: i32,
  n0: i32, ones: i32, nblk: i32, threads: i32,
};
@group(0) @binding(0) var<uniform> u: U;`;

export interface GemmGeom {
  N: number; C: number; H: number; W: number;
  O: number; OH: number; OW: number; G: number;
  KH: number; KW: number; Cg: number; Og: number;
  sh: number; sw: number; ph: number; pw: number; dlh: number; dlw: number;
}

/** The 24 i32 words of GEMM_UNIFORM_WGSL. `Nc`: images in the chunk, `n0`: first image. */
export function gemmUniformWords(p: GemmGeom, e: { Nc: number; n0: number; gx: number; Kp: number; ones: number; nblk: number; threads: number }): number[] {
  return [e.Nc, p.C, p.H, p.W, p.O, p.OH, p.OW, p.G, p.KH, p.KW, p.Cg, p.Og, p.sh, p.sw, p.ph, p.pw, p.dlh, p.dlw, e.gx, e.Kp, e.n0, e.ones, e.nblk, e.threads];
}

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/**
 * The uniform words a kernel may bake in as constants: everything but gx, n0, threads and
 * N (the chunk's image count: no kernel divides by it, so a last, shorter chunk or another
 * batch size reuses the pipeline).
 */
export const GEMM_BAKED_FIELDS = ['C', 'H', 'W', 'O', 'OH', 'OW', 'G', 'KH', 'KW', 'Cg', 'Og', 'sh', 'sw', 'ph', 'pw', 'dlh', 'dlw', 'Kp', 'ones', 'nblk'] as const;
export type GemmBaked = Record<(typeof GEMM_BAKED_FIELDS)[number], number>;

/** The baked fields of a uniform word list (gemmUniformWords' order). */
export function gemmBakedFromWords(words: number[]): GemmBaked {
  const names = ['N', 'C', 'H', 'W', 'O', 'OH', 'OW', 'G', 'KH', 'KW', 'Cg', 'Og', 'sh', 'sw', 'ph', 'pw', 'dlh', 'dlw', 'gx', 'Kp', 'n0', 'ones', 'nblk', 'threads'];
  const out = {} as GemmBaked;
  for (const f of GEMM_BAKED_FIELDS) out[f] = words[names.indexOf(f)]!;
  return out;
}

/** Key text of a baked geometry ('u' when none). */
export function gemmBakedKey(b: GemmBaked | null | undefined): string {
  return b ? GEMM_BAKED_FIELDS.map((f) => b[f]).join(',') : 'u';
}

/**
 * Bake a geometry into a kernel's body: each uniform field u.F of GEMM_BAKED_FIELDS
 * becomes a function-scope constant (or, unbaked, a let of the uniform), declared at the
 * top of main. NOTE (lavapipe): x86 has no vector integer division, so `%` and `/` by a
 * uniform run as one scalar division per lane; by a constant they become multiplies and
 * shifts (im2col and col2im decompose their thread index with several of them).
 */
function bake(wgsl: string, b: GemmBaked | null | undefined): string {
  const used = GEMM_BAKED_FIELDS.filter((f) => new RegExp(`\\bu\\.${f}\\b`).test(wgsl));
  const decl = used.map((f) => (b ? `  const g_${f} = ${b[f]}i;` : `  let g_${f} = u.${f};`)).join('\n');
  const body = wgsl.replace(new RegExp(`\\bu\\.(${GEMM_BAKED_FIELDS.join('|')})\\b`, 'g'), 'g_$1');
  const out = body.replace(/(fn main\(.*\) \{\n)/, `$1${decl}\n`);
  if (out === body) throw new Error('conv2d_gemm: bake: no main() to declare the geometry in');
  return out;
}

/** Stores of E values v0..v{E-1} at flat offset `base` (row position p0, row length `len`). */
function stores(buf: string, base: string, p0: string, len: string, E: number, vec: boolean): string {
  if (vec) {
    return range(E / 4)
      .map((q) => `  if (${p0} + ${4 * q} < ${len}) { ${buf}[u32((${base}) / 4 + ${q})] = vec4<f32>(${range(4).map((j) => `v${4 * q + j}`).join(', ')}); }`)
      .join('\n');
  }
  return range(E).map((e) => `  if (${p0} + ${e} < ${len}) { ${buf}[u32(${base} + ${e})] = v${e}; }`).join('\n');
}

/**
 * im2col, pixel-major: col[g, n*OH*OW + p, k] (k < Kp) = x[n0 + n, g*Cg + ci, oh*sh - ph +
 * kh*dlh, ow*sw - pw + kw*dlw] for k = (ci*KH + kh)*KW + kw < CK (0 outside the image), 1 for
 * k == ones, 0 for other k >= CK; p = oh*OW + ow. One thread per E consecutive k of one
 * pixel row (threads = G*N*OH*OW*nblk, nblk = ceil(Kp / E)); the (ci, kh, kw) walk is
 * incremental. `vec`: Kp % 4 == 0 (vec4 stores; E must then be a multiple of 4).
 * `oneGroup`: G == 1 (row / (OH*OW) is the image, no division by N). Bindings: x, col.
 */
export function im2colWgsl(vec: boolean, E = GEMM_EPT, oneGroup = false): string {
  const es = range(E);
  return `// conv2d_im2col (pixel-major, ${E} taps per thread${vec ? ', vec4 stores' : ''})
${GEMM_UNIFORM_WGSL}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> col: array<${vec ? 'vec4<f32>' : 'f32'}>;
${gridMainI32(GEMM_WG, 't', 'u.threads')}
  let blk = t % u.nblk;
  let row = t / u.nblk;
  let OHW = u.OH * u.OW;
  let pix = row % OHW;
  let gn = row / OHW;
${oneGroup ? '  let n = gn;\n  let g = 0;' : '  let n = gn % u.N;\n  let g = gn / u.N;'}
  let ihb = (pix / u.OW) * u.sh - u.ph;
  let iwb = (pix % u.OW) * u.sw - u.pw;
  let HW = u.H * u.W;
  let xb = ((u.n0 + n) * u.C + g * u.Cg) * HW;
  let CK = u.Cg * u.KH * u.KW;
  let k0 = blk * ${E};
  let kc = min(k0, CK - 1);
  var kw = kc % u.KW;
  var kh = (kc / u.KW) % u.KH;
  var ci = kc / (u.KW * u.KH);
${es
  .map(
    (e) => `  let ih${e} = ihb + kh * u.dlh;
  let iw${e} = iwb + kw * u.dlw;
  let v${e} = select(select(0.0, 1.0, k0 + ${e} == u.ones), x[u32(xb + min(ci, u.Cg - 1) * HW + clamp(ih${e}, 0, u.H - 1) * u.W + clamp(iw${e}, 0, u.W - 1))], k0 + ${e} < CK && ih${e} >= 0 && ih${e} < u.H && iw${e} >= 0 && iw${e} < u.W);${
      e < E - 1 ? `\n  kw += 1; if (kw == u.KW) { kw = 0; kh += 1; if (kh == u.KH) { kh = 0; ci += 1; } }` : ''
    }`,
  )
  .join('\n')}
${stores('col', 'row * u.Kp + k0', 'k0', 'u.Kp', E, vec)}
}
`;
}

/**
 * col2im as a gather: dx[n0 + n, c, ih, iw] = sum over taps (kh, kw) with
 * oh = (ih + ph - kh*dlh) / sh and ow = (iw + pw - kw*dlw) / sw exact and in range of
 * dcol[n, g, oh*OW + ow, (ci*KH + kh)*KW + kw] (c = g*Cg + ci; u.Kp = CK), or with
 * `kMajor` of dcol[n, g, (ci*KH + kh)*KW + kw, oh*OW + ow]. Every dx pixel sums its own taps in a fixed order: deterministic, no atomics.
 * One thread per E pixels of one (n, c) plane (threads = N*C*nblk). Strides are
 * compile-time (stride 1 needs no division). `vec`: H*W % 4 == 0 (vec4 stores).
 * Bindings: dcol, dx.
 */
export function col2imWgsl(sh: number, sw: number, vec: boolean, kMajor = false, E = GEMM_EPT): string {
  const es = range(E);
  const ps = kMajor ? '' : ' * u.Kp';
  const tap = (e: number): string => {
    const hq = sh === 1 ? `th${e}` : `th${e} / ${sh}`;
    const wq = sw === 1 ? `tw${e}` : `tw${e} / ${sw}`;
    const hm = sh === 1 ? '' : ` && th${e} % ${sh} == 0`;
    const wm = sw === 1 ? '' : ` && tw${e} % ${sw} == 0`;
    return `      { let th${e} = ih${e} + offh; let tw${e} = iw${e} + offw;
        let oh = ${hq}; let ow = ${wq};
        let ok = th${e} >= 0 && tw${e} >= 0 && oh < u.OH && ow < u.OW${hm}${wm};
        v${e} += select(0.0, dcol[u32(rb + (clamp(oh, 0, u.OH - 1) * u.OW + clamp(ow, 0, u.OW - 1))${ps})], ok); }`;
  };
  return `// conv2d_col2im (gather, ${kMajor ? 'k-major' : 'pixel-major'} dcol, ${E} pixels per thread, stride ${sh}x${sw}${vec ? ', vec4 stores' : ''})
${GEMM_UNIFORM_WGSL}
@group(0) @binding(1) var<storage, read> dcol: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<${vec ? 'vec4<f32>' : 'f32'}>;
${gridMainI32(GEMM_WG, 't', 'u.threads')}
  let blk = t % u.nblk;
  let plane = t / u.nblk;
  let c = plane % u.C;
  let n = plane / u.C;
  let g = c / u.Cg;
  let ci = c % u.Cg;
  let HW = u.H * u.W;
  let OHW = u.OH * u.OW;
  let KK = u.KH * u.KW;
  let p0 = blk * ${E};
  var ih = p0 / u.W;
  var iw = p0 % u.W;
${es.map((e) => `  let ih${e} = ih; let iw${e} = iw;${e < E - 1 ? ' iw += 1; if (iw == u.W) { iw = 0; ih += 1; }' : ''}`).join('\n')}
${es.map((e) => `  var v${e} = 0.0;`).join('\n')}
  let base = (n * u.G + g) * OHW * u.Kp + ci * KK${kMajor ? ' * OHW' : ''};
  for (var kh = 0; kh < u.KH; kh++) {
    let offh = u.ph - kh * u.dlh;
    for (var kw = 0; kw < u.KW; kw++) {
      let offw = u.pw - kw * u.dlw;
      let rb = base + (kh * u.KW + kw)${kMajor ? ' * OHW' : ''};
${es.map(tap).join('\n')}
    }
  }
${stores('dx', '((u.n0 + n) * u.C + c) * HW + p0', 'p0', 'HW', E, vec)}
}
`;
}

/**
 * col2im by stride phase (strided convs): the same sums as col2imWgsl, but each thread
 * owns E pixels of one stride phase (ih mod sh, iw mod sw) of one row of one (n, c) plane
 * (iw = phw + j*sw for consecutive j), so the taps that reach its pixels are the same for
 * all of them and are found by a test per tap, not per pixel: only the kernel offsets
 * congruent with the phase (about 1/(sh*sw) of them) are visited, and for a visited tap
 * the E pixels read consecutive output columns ow = j + (phw + pw - kw*dlw)/sw.
 * NOTE: the phase varies slower than the channel, row and block of the thread index (only
 * the image varies slower), so the lanes of a workgroup share it (the tap tests agree
 * across lanes except at phase boundaries). Threads = N * sh*sw * C * ceil(H/sh) * nblk (nblk = ceil(ceil(W/sw) / E)); threads of
 * rows past their phase's last row return. Bindings: dcol, dx.
 */
export function col2imPhaseWgsl(sh: number, sw: number, kMajor: boolean, E: number): string {
  const es = range(E);
  const ps = kMajor ? '' : ' * u.Kp';
  return `// conv2d_col2im_phase (${kMajor ? 'k-major' : 'pixel-major'} dcol, ${E} pixels of one stride phase per thread, stride ${sh}x${sw})
${GEMM_UNIFORM_WGSL}
@group(0) @binding(1) var<storage, read> dcol: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
${gridMainI32(GEMM_WG, 't', 'u.threads')}
  let RH = (u.H + ${sh - 1}) / ${sh};
  let blk = t % u.nblk;
  var r = t / u.nblk;
  let i = r % RH; r = r / RH;
  let c = r % u.C; r = r / u.C;
  let phz = r % ${sh * sw};
  let n = r / ${sh * sw};
  let phh = phz / ${sw};
  let phw = phz % ${sw};
  let ih = phh + i * ${sh};
  if (ih >= u.H) { return; }
  let cols = (u.W - phw + ${sw - 1}) / ${sw};
  let j0 = blk * ${E};
  let g = c / u.Cg;
  let ci = c % u.Cg;
  let OHW = u.OH * u.OW;
  let KK = u.KH * u.KW;
${es.map((e) => `  var v${e} = 0.0;`).join('\n')}
  let base = (n * u.G + g) * OHW * u.Kp + ci * KK${kMajor ? ' * OHW' : ''};
  for (var kh = 0; kh < u.KH; kh++) {
    let th = phh + u.ph - kh * u.dlh;
    if (th % ${sh} != 0) { continue; }
    let oh = i + th / ${sh};
    let rok = oh >= 0 && oh < u.OH;
    let ohc = clamp(oh, 0, u.OH - 1) * u.OW;
    for (var kw = 0; kw < u.KW; kw++) {
      let tw = phw + u.pw - kw * u.dlw;
      if (tw % ${sw} != 0) { continue; }
      let owb = j0 + tw / ${sw};
      let rb = base + (kh * u.KW + kw)${kMajor ? ' * OHW' : ''};
${es
  .map((e) => `      { let ow = owb + ${e}; v${e} += select(0.0, dcol[u32(rb + (ohc + clamp(ow, 0, u.OW - 1))${ps})], rok && ow >= 0 && ow < u.OW); }`)
  .join('\n')}
    }
  }
  let xb = ((u.n0 + n) * u.C + c) * u.H * u.W + ih * u.W + phw;
${es.map((e) => `  if (j0 + ${e} < cols) { dx[u32(xb + (j0 + ${e}) * ${sw})] = v${e}; }`).join('\n')}
}
`;
}

/** Pixels per thread of the phase col2im: the phase row's width split into near-equal blocks of at most GEMM_EPT. */
export function col2imPhaseEpt(W: number, sw: number): number {
  const cols = Math.ceil(W / sw);
  return Math.ceil(cols / Math.ceil(cols / GEMM_EPT));
}

/**
 * Filter packing for the forward GEMM: waug[o, k] (k < Kp) = w[o, k] for k < CK, b[o] for
 * k == ones (when `bias`), 0 otherwise; stored transposed per group, [G, Kp, Og] (the
 * pixel-major product col · waug), or with `rows` as [G, Og, Kp] (the per-image product
 * waug · col_n^T). One thread per element (threads = O*Kp). Bindings: w, [b], waug.
 */
export function gemmPackFilterWgsl(bias: boolean, rows = false): string {
  return `// conv2d_gemm_pack_filter${bias ? ' (bias column)' : ''}: W [G*Og, CK] -> ${rows ? '[G, Og, Kp]' : 'W^T [G, Kp, Og]'}
${GEMM_UNIFORM_WGSL}
@group(0) @binding(1) var<storage, read> w: array<f32>;
${bias ? '@group(0) @binding(2) var<storage, read> b: array<f32>;' : ''}
@group(0) @binding(${bias ? 3 : 2}) var<storage, read_write> waug: array<f32>;
${gridMainI32(GEMM_WG, 'i', 'u.threads')}
${
  rows
    ? `  let o = i / u.Kp;
  let k = i % u.Kp;`
    : `  let per = u.Kp * u.Og;
  let g = i / per;
  let r = i % per;
  let k = r / u.Og;
  let o = g * u.Og + r % u.Og;`
}
  let CK = u.Cg * u.KH * u.KW;
  var v = select(0.0, w[u32(o * CK + min(k, CK - 1))], k < CK);
${bias ? '  v = select(v, b[u32(o)], k == u.ones);' : ''}
  waug[u32(i)] = v;
}
`;
}

/** Descriptor of im2col. Bindings: x, col. */
export const conv2dIm2colKernel = defineKernel<{ vec: boolean; E: number; baked?: GemmBaked | null }>({
  name: 'conv2d_im2col',
  key: (p) => `${p.vec ? 'v' : 's'}${p.E}:${gemmBakedKey(p.baked)}`,
  bindings: () => [...reads('x'), ...writes('col')],
  build: (p) => bake(im2colWgsl(p.vec, p.E, p.baked?.G === 1), p.baked),
});

/** Descriptor of the all-taps gather col2im. Bindings: dcol, dx. */
export const conv2dCol2imKernel = defineKernel<{ sh: number; sw: number; vec: boolean; kMajor: boolean; baked?: GemmBaked | null }>({
  name: 'conv2d_col2im',
  key: (p) => `${p.sh}x${p.sw}:${p.vec ? 'v' : 's'}:${p.kMajor ? 'k' : 'p'}:${gemmBakedKey(p.baked)}`,
  bindings: () => [...reads('dcol'), ...writes('dx')],
  build: (p) => bake(col2imWgsl(p.sh, p.sw, p.vec, p.kMajor), p.baked),
});

/** Descriptor of the stride-phase col2im. Bindings: dcol, dx. */
export const conv2dCol2imPhaseKernel = defineKernel<{ sh: number; sw: number; kMajor: boolean; E: number; baked?: GemmBaked | null }>({
  name: 'conv2d_col2im_phase',
  key: (p) => `${p.sh}x${p.sw}:${p.kMajor ? 'k' : 'p'}:${p.E}:${gemmBakedKey(p.baked)}`,
  bindings: () => [...reads('dcol'), ...writes('dx')],
  build: (p) => bake(col2imPhaseWgsl(p.sh, p.sw, p.kMajor, p.E), p.baked),
});

/** Descriptor of the forward GEMM's filter packing (`rows`: [G, Og, Kp], else transposed). Bindings: w, [b], waug. */
export const conv2dGemmPackFilterKernel = defineKernel<{ bias: boolean; rows?: boolean }>({
  name: 'conv2d_gemm_pack_filter',
  key: (p) => `${p.bias ? 'b' : ''}${p.rows ? 'r' : ''}`,
  bindings: (p) => [...reads('w', ...(p.bias ? ['b'] : [])), ...writes('waug')],
  build: (p) => gemmPackFilterWgsl(p.bias, !!p.rows),
});
