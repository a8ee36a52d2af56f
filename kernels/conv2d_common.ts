// Shared pieces of the conv2d WGSL builders (conv2d.ts, conv2d_packed.ts, conv2d_pixel.ts,
// conv2d_naive.ts): the conv uniform block and its named word builder, the resolved
// geometry, the fused forward epilogue (bias, activation, saved pre-activation z) with its
// bindings and stores, and small WGSL vector helpers. Pure: imports nothing from engine/.
import { reads, writes, type Binding } from './kernel.ts';

export const CONV_WG = 64;

/** Resolved convolution geometry (all sizes in elements). */
export interface ConvGeom {
  N: number; C: number; H: number; W: number;
  O: number; OH: number; OW: number; G: number;
  KH: number; KW: number; Cg: number; Og: number;
  sh: number; sw: number; ph: number; pw: number; dlh: number; dlw: number;
}

/**
 * The uniform block (all i32): N C H W | O OH OW G | KH KW Cg Og | sh sw ph pw |
 * dlh dlw gx rows | S Hp Wq OgQ, then, for forward kernels with an activation epilogue,
 * act: vec4<f32> (the activation's parameters). gx: threads per grid row of a 2-D grid;
 * rows, S: the split reduction of the filter gradient; Hp, Wq, OgQ: the packed kernels'
 * padded rows, padded row length / 4 and padded channels per group / 4.
 */
export function convUniformWgsl(act = false): string {
  return `struct U {
  N: i32, C: i32, H: i32, W: i32,
  O: i32, OH: i32, OW: i32, G: i32,
  KH: i32, KW: i32, Cg: i32, Og: i32,
  sh: i32, sw: i32, ph: i32, pw: i32,
  dlh: i32, dlw: i32, gx: i32, rows: i32,
  S: i32, Hp: i32, Wq: i32, OgQ: i32,${act ? '\n  act: vec4<f32>,' : ''}
};
@group(0) @binding(0) var<uniform> u: U;`;
}

export const CONV_UNIFORM_WGSL = convUniformWgsl(false);

/** The launch-dependent fields of the uniform block (0 when a kernel does not use them). */
export interface ConvUniformExtra {
  gx?: number;
  rows?: number;
  S?: number;
  Hp?: number;
  Wq?: number;
  OgQ?: number;
}

/** The 24 i32 words of convUniformWgsl, in order. */
export function convUniformWords(p: ConvGeom, e: ConvUniformExtra = {}): number[] {
  return [
    p.N, p.C, p.H, p.W, p.O, p.OH, p.OW, p.G, p.KH, p.KW, p.Cg, p.Og, p.sh, p.sw, p.ph, p.pw, p.dlh, p.dlw,
    e.gx ?? 0, e.rows ?? 0, e.S ?? 0, e.Hp ?? 0, e.Wq ?? 0, e.OgQ ?? 0,
  ];
}

/**
 * Optional fused forward epilogue: bias add and/or an activation `fn epi_act(z: f32) -> f32`.
 * With `act` the uniform block gains `act: vec4<f32>` and the snippet may declare
 * `actBuffers` read-only storage bindings from convEpilogueBinding(epi) on. With `saveZ` the
 * pre-activation z = conv + bias is stored too, to an output bound right after y.
 */
export interface ConvEpilogue {
  bias: boolean;
  /** WGSL defining `fn epi_act(z: f32) -> f32` (plus any helpers and bindings it needs). */
  act?: string;
  /** Read-only storage buffers the act snippet declares (a learnable params tensor). */
  actBuffers?: number;
  /** Also write z (the value before epi_act) to a second output (needs `act`). */
  saveZ?: boolean;
}

/** Pipeline-key part of an epilogue. */
export function convEpilogueKey(epi: ConvEpilogue): string {
  return `b${epi.bias ? 1 : 0}z${epi.saveZ ? 1 : 0}n${epi.actBuffers ?? 0}:${epi.act ?? ''}`;
}

/** The first binding free for an epilogue's own buffers (after x, w, [b], y, [z]). */
export function convEpilogueBinding(epi: { bias: boolean; saveZ?: boolean }): number {
  return (epi.bias ? 4 : 3) + (epi.saveZ ? 2 : 1);
}

/** Descriptor bindings of a forward kernel: `ins` (x, w), [b], y, [z], the act's buffers. */
export function convForwardBindings(ins: [string, string], epi: ConvEpilogue): Binding[] {
  return [
    ...reads(...ins, ...(epi.bias ? ['b'] : [])),
    ...writes('y', ...(epi.saveZ ? ['z'] : [])),
    ...reads(...Array.from({ length: epi.actBuffers ?? 0 }, () => 'act_raw')),
  ];
}

/** WGSL declarations of the forward kernels' outputs y and [z] (element type `T`). */
export function convOutputBindings(epi: ConvEpilogue, T = 'f32'): string {
  if (epi.saveZ && !epi.act) throw new Error('conv2d kernel: saveZ needs an act epilogue');
  const yb = epi.bias ? 4 : 3;
  const lines = [`@group(0) @binding(${yb}) var<storage, read_write> y: array<${T}>;`];
  if (epi.saveZ) lines.push(`@group(0) @binding(${yb + 1}) var<storage, read_write> z: array<${T}>;`);
  return lines.join('\n');
}

/**
 * The module header of a forward kernel, in convForwardBindings' order: the uniform block,
 * the inputs `ins` (x, w) as arrays of `inT`, [b], y and [z] as arrays of `yT`, then the
 * epilogue's WGSL (`fn epi_act` and its bindings).
 */
export function convForwardDeclsWgsl(epi: ConvEpilogue, ins: [string, string] = ['x', 'w'], inT = 'f32', yT = 'f32'): string {
  return `${convUniformWgsl(!!epi.act)}
@group(0) @binding(1) var<storage, read> ${ins[0]}: array<${inT}>;
@group(0) @binding(2) var<storage, read> ${ins[1]}: array<${inT}>;
${epi.bias ? '@group(0) @binding(3) var<storage, read> b: array<f32>;' : ''}
${convOutputBindings(epi, yT)}
${epi.act ?? ''}`;
}

/** Stores of one output value `v` at flat index `idx` (y = epi_act(v) and, with saveZ, z = v). */
export function convEpilogueStore(epi: ConvEpilogue, idx: string, v: string): string {
  if (!epi.act) return `y[${idx}] = ${v};`;
  return epi.saveZ ? `{ let zv = ${v}; y[${idx}] = epi_act(zv); z[${idx}] = zv; }` : `y[${idx}] = epi_act(${v});`;
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
export function actStoreLoop(OB: number, T: string, left: string, oExpr: string, PB: number, epi: ConvEpilogue): string {
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

export const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/** Split a width into vector chunks of at most 4 lanes (e.g. 7 -> [4, 3]). */
export function chunks(n: number): number[] {
  const r: number[] = [];
  for (let left = n; left > 0; left -= 4) r.push(Math.min(4, left));
  return r;
}

export function vt(width: number): string {
  return width === 1 ? 'f32' : `vec${width}<f32>`;
}
export function vi(width: number): string {
  return width === 1 ? 'i32' : `vec${width}<i32>`;
}
/** Components of a vector expression (or the expression itself for width 1). */
export function comps(e: string, width: number): string[] {
  return width === 1 ? [e] : range(width).map((j) => `${e}.${'xyzw'[j]}`);
}
/** vecN<i32>(0, 1, ..., N-1) or 0. */
export function iota(width: number): string {
  return width === 1 ? '0' : `${vi(width)}(${range(width).join(', ')})`;
}

/**
 * Masked gather of `width` values of buffer `buf` at row offset `row` (i32) plus columns
 * `col` (vecN<i32>), valid where `ok` (vecN<bool>): reads at clamped columns (always in
 * bounds), zeros where not ok.
 */
export function gather(buf: string, row: string, col: string, ok: string, hi: string, width: number): string {
  const cl = `clamp(${col}, ${vi(width)}(0), ${vi(width)}(${hi}))`;
  if (width === 1) return `select(0.0, ${buf}[u32(${row} + ${cl})], ${ok})`;
  const loads = comps(`(${cl})`, width).map((e) => `${buf}[u32(${row} + ${e})]`);
  return `select(${vt(width)}(0.0), ${vt(width)}(${loads.join(', ')}), ${ok})`;
}

/** Heuristic output-channel block for the fast kernels. */
export function convBlock(perGroup: number, max = 8): number {
  return Math.max(1, Math.min(max, perGroup));
}
