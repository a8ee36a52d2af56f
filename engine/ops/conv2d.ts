// 2-D convolution (NCHW x, OIHW w, optional bias) with stride, padding, dilation and
// groups (depthwise included), with autograd: dx, dw and db. Launches the fast
// register-blocked kernels of kernels/conv2d.ts, the GEMM path (im2col / col2im of
// kernels/conv2d_gemm.ts around the batched matmul, chunked over the batch to bound its
// temporaries), or the naive kernels (kernels/conv2d_naive.ts) on request or when a
// launch grid would exceed the device's per-dimension limit. The default 'auto' picks per
// direction (forward, dx, dw) with the measured heuristic of chooseConvImpl.
// conv2dForwardAct is the forward with a fused activation epilogue (y = act(conv + b)
// and optionally the pre-activation z from the same pass), used by engine/ops/fused.ts.
import { Tensor, assertSameDevice, shapeStr, type Shape } from '../tensor.ts';
import { needsGrad, record } from '../autograd.ts';
import {
  CONV_WG,
  conv2dBackwardFilterFastWgsl,
  conv2dBackwardInputFastWgsl,
  conv2dFastWgsl,
  conv2dPackFilterWgsl,
  conv2dPackedWgsl,
  conv2dPadWgsl,
  convBlock,
  convEpilogueBinding,
  convPackedSpan,
  type ConvEpilogue,
  convUniformWords,
  type ConvGeom,
} from '../../kernels/conv2d.ts';
import { CONV_NAIVE_WG, conv2dBackwardFilterNaiveWgsl, conv2dBackwardInputNaiveWgsl, conv2dNaiveWgsl } from '../../kernels/conv2d_naive.ts';
import { GEMM_EPT, GEMM_WG, col2imWgsl, gemmPackFilterWgsl, gemmUniformWords, im2colWgsl } from '../../kernels/conv2d_gemm.ts';
import { GEMM_EPI_EPT, GEMM_EPI_WG, gemmEpilogueBinding, gemmPermuteActWgsl } from '../../kernels/conv2d_epilogue.ts';
import { grid1d } from '../../kernels/elementwise.ts';
import { Uniforms, alloc } from './launch.ts';
import { matmulRaw } from './matmul.ts';
import { epilogueLaunch, type EpilogueLaunch, type FusedAct } from './epilogue.ts';
import { stridedCopy } from './layout.ts';
import { sum } from './reduce.ts';
import { add } from './elementwise.ts';

export type Pair = number | readonly [number, number];
/**
 * 'auto' (default): per direction, the implementation chooseConvImpl picks for the shape.
 * 'fast': packed kernels where they apply (>= 4 channels per group; stride 1 for dx),
 * else 'direct'. 'direct': the register-blocked kernels on unpadded tensors (any options).
 * 'gemm': im2col + batched matmul (+ gather col2im for dx); falls back to 'fast' where a
 * single image's temporaries exceed the buffer cap. 'naive': one output per thread
 * (oracle and baseline).
 */
export type ConvImpl = 'auto' | 'fast' | 'gemm' | 'direct' | 'naive';
const CONV_IMPLS: readonly string[] = ['auto', 'fast', 'gemm', 'direct', 'naive'];

/** Which pass a kernel choice is for. */
export type ConvDir = 'fwd' | 'dx' | 'dw';

export interface Conv2dOptions {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  groups?: number;
  /** Kernel family (default 'auto'; see ConvImpl). */
  impl?: ConvImpl;
  /**
   * Fused forward epilogue: WGSL defining `fn epi_act(z: f32) -> f32`, applied to
   * conv + bias before the store. Forward only: throws when a gradient is needed (for a
   * fused activation with a backward, use conv2dAct of engine/ops/fused.ts).
   */
  act?: string;
}

export type { ConvGeom };

const MAX_GROUPS = 65535;

function pair(op: string, name: string, v: Pair | undefined, dflt: number, min: number): [number, number] {
  const p: readonly unknown[] = v === undefined ? [dflt, dflt] : typeof v === 'number' ? [v, v] : Array.isArray(v) ? v : [];
  if (p.length !== 2 || !p.every((d) => Number.isInteger(d) && (d as number) >= min)) {
    throw new Error(`kinkless: ${op}: ${name} must be an integer >= ${min} or a pair [h, w] of them, got ${JSON.stringify(v)}`);
  }
  return [p[0] as number, p[1] as number];
}

/** Validate shapes and options; returns the resolved geometry. */
export function conv2dGeometry(xShape: Shape, wShape: Shape, opts: Conv2dOptions = {}, bShape?: Shape | null): ConvGeom {
  const op = 'conv2d';
  if (xShape.length !== 4) throw new Error(`kinkless: ${op}: x must have rank 4 [N, C, H, W], got shape ${shapeStr(xShape)}`);
  if (wShape.length !== 4) throw new Error(`kinkless: ${op}: w must have rank 4 [O, C/groups, KH, KW], got shape ${shapeStr(wShape)}`);
  const [N, C, H, W] = xShape as [number, number, number, number];
  const [O, Cg, KH, KW] = wShape as [number, number, number, number];
  for (const [nm, s] of [['x', xShape], ['w', wShape]] as const) {
    if (s.some((d) => d < 1)) throw new Error(`kinkless: ${op}: ${nm} must have no empty dimension, got shape ${shapeStr(s)}`);
  }
  const G = opts.groups ?? 1;
  if (!Number.isInteger(G) || G < 1) throw new Error(`kinkless: ${op}: groups must be a positive integer, got ${String(opts.groups)}`);
  if (C % G !== 0) throw new Error(`kinkless: ${op}: input channels C=${C} (x shape ${shapeStr(xShape)}) must be divisible by groups=${G}`);
  if (O % G !== 0) throw new Error(`kinkless: ${op}: output channels O=${O} (w shape ${shapeStr(wShape)}) must be divisible by groups=${G}`);
  if (Cg !== C / G) {
    throw new Error(`kinkless: ${op}: w shape ${shapeStr(wShape)} has ${Cg} channels per group, expected C/groups = ${C}/${G} = ${C / G} for x shape ${shapeStr(xShape)}`);
  }
  const [sh, sw] = pair(op, 'stride', opts.stride, 1, 1);
  const [ph, pw] = pair(op, 'padding', opts.padding, 0, 0);
  const [dlh, dlw] = pair(op, 'dilation', opts.dilation, 1, 1);
  const OH = Math.floor((H + 2 * ph - dlh * (KH - 1) - 1) / sh) + 1;
  const OW = Math.floor((W + 2 * pw - dlw * (KW - 1) - 1) / sw) + 1;
  if (OH <= 0 || OW <= 0) {
    throw new Error(
      `kinkless: ${op}: output size ${OH}x${OW} is not positive: input ${H}x${W}, kernel ${KH}x${KW}, stride [${sh}, ${sw}], padding [${ph}, ${pw}], dilation [${dlh}, ${dlw}]`,
    );
  }
  if (bShape && (bShape.length !== 1 || bShape[0] !== O)) throw new Error(`kinkless: ${op}: b must have shape [${O}] (one per output channel), got ${shapeStr(bShape)}`);
  return { N, C, H, W, O, OH, OW, G, KH, KW, Cg, Og: O / G, sh, sw, ph, pw, dlh, dlw };
}

function uniforms(p: ConvGeom, gx = 0, rows = 0, S = 0, extra: number[] = [0, 0, 0], epi: EpilogueLaunch | null = null): ArrayBuffer {
  const words = convUniformWords(p, gx, rows, S);
  words.splice(21, 3, ...extra);
  const u = new Uniforms().i32(...words);
  if (epi) u.f32(...epi.uniformF32);
  return u.bytes();
}

/** A forward's outputs: y, and the pre-activation z when the epilogue saves it. */
interface FwdOut {
  y: Tensor;
  z: Tensor | null;
}

/** Epilogue of the direct kernels (fast / packed / naive): bindings after x, w, [b], y, [z]. */
function directEpilogue(b: Tensor | null, act: string | FusedAct | undefined): { epi: ConvEpilogue; launch: EpilogueLaunch | null } {
  const saveZ = typeof act === 'object' && act.saveZ;
  const launch = epilogueLaunch('conv2d', act, convEpilogueBinding({ bias: b !== null, saveZ }));
  return { epi: { bias: b !== null, act: launch?.act, saveZ }, launch };
}

function outBuffers(o: FwdOut, launch: EpilogueLaunch | null): GPUBuffer[] {
  return [o.y.buffer, ...(o.z ? [o.z.buffer] : []), ...(launch?.buffers ?? [])];
}

function fits(...dims: number[]): boolean {
  return dims.every((d) => d <= MAX_GROUPS);
}

/** Largest x span (vec4 loads per row) the packed kernel unrolls. */
const PACKED_MAX_SPAN = 6;

/** Whether the packed forward kernel applies: >= 4 channels per group and a short row span. */
function packedOk(p: ConvGeom): boolean {
  return p.Og >= 4 && convPackedSpan({ KW: p.KW, sw: p.sw, dlw: p.dlw }) <= PACKED_MAX_SPAN;
}

/**
 * Packed forward: zero-pad x into rows of a multiple of 4 floats, pack the filter as
 * [G, Cg, KH, KW, OgP] (optionally flipped and transposed), run conv2dPackedWgsl.
 * `flip`: w is the ORIGINAL filter of a stride-1 conv whose input gradient this computes.
 */
function packedForward(x: Tensor, w: Tensor, b: Tensor | null, p: ConvGeom, act: string | FusedAct | undefined, flip: boolean): FwdOut {
  const device = x.device;
  const OB = p.Og >= 8 ? 8 : 4;
  const OgP = Math.ceil(p.Og / OB) * OB;
  const NV = convPackedSpan({ KW: p.KW, sw: p.sw, dlw: p.dlw });
  const OWB = Math.ceil(p.OW / 4);
  const Hp = p.H + 2 * p.ph;
  const Wp = Math.max(Math.ceil((p.W + 2 * p.pw) / 4) * 4, 4 * (OWB - 1) * p.sw + 4 * NV);
  const xp = alloc(device, [p.N, p.C, Hp, Wp]);
  const gp = grid1d(xp.size, CONV_WG);
  device.dispatch({ name: 'conv2d_pad', wgsl: conv2dPadWgsl(), buffers: [x.buffer, xp.buffer], uniforms: uniforms(p, gp.gx, 0, 0, [Hp, Wp / 4, OgP / 4]), workgroups: gp.workgroups });
  const wt = alloc(device, [p.G, p.Cg, p.KH, p.KW, OgP]);
  const gw = grid1d(wt.size, CONV_WG);
  device.dispatch({ name: 'conv2d_pack_filter', wgsl: conv2dPackFilterWgsl(flip), buffers: [w.buffer, wt.buffer], uniforms: uniforms(p, gw.gx, 0, 0, [Hp, Wp / 4, OgP / 4]), workgroups: gw.workgroups });
  const { epi, launch } = directEpilogue(b, act);
  const out = allocOut(device, p, epi.saveZ);
  const gx = Math.ceil((p.OH * OWB) / CONV_WG);
  const gy = p.G * (OgP / OB);
  const bufs = [xp.buffer, wt.buffer, ...(b ? [b.buffer] : []), ...outBuffers(out, launch)];
  device.dispatch({
    name: typeof act === 'object' ? 'conv2d_packed_act' : 'conv2d_packed',
    wgsl: conv2dPackedWgsl({ OB, KW: p.KW, sw: p.sw, dlw: p.dlw, epi }),
    buffers: bufs,
    uniforms: uniforms(p, 0, 0, 0, [Hp, Wp / 4, OgP / 4], launch),
    workgroups: [gx, gy, p.N],
  });
  xp.dispose();
  wt.dispose();
  return out;
}

function allocOut(device: Tensor['device'], p: ConvGeom, saveZ: boolean | undefined): FwdOut {
  const shape = [p.N, p.O, p.OH, p.OW];
  return { y: alloc(device, shape), z: saveZ ? alloc(device, shape, 'f32', 'conv2d pre-activation') : null };
}

// ---------------------------------------------------------------- GEMM path

/**
 * Cap on one GEMM temporary (col, dcol, permuted dy) per chunk of images, in bytes (also
 * capped by the device's maxStorageBufferBindingSize). Mutable for tests of the chunking.
 */
export const conv2dGemmLimits = { maxBytes: 64 << 20 };

/**
 * Images per chunk so that `floatsPerImage` floats fit conv2dGemmLimits.maxBytes and the
 * device's maxStorageBufferBindingSize, the matmul batch (images x groups) fits one grid
 * dimension and so do the forward product's rows (8 per workgroup: images x OH*OW);
 * balanced over the chunks. null when even one image does not fit.
 */
function gemmChunk(p: ConvGeom, device: Tensor['device'], floatsPerImage: number): number | null {
  const limit = Math.min(conv2dGemmLimits.maxBytes, device.limits.maxStorageBufferBindingSize ?? conv2dGemmLimits.maxBytes);
  const cap = Math.min(p.N, Math.floor(limit / (4 * floatsPerImage)), Math.floor(MAX_GROUPS / p.G), Math.floor((8 * MAX_GROUPS) / (p.OH * p.OW)));
  if (cap < 1) return null;
  return Math.ceil(p.N / Math.ceil(p.N / cap));
}

/** Whether the GEMM path can run this geometry (one image's temporaries fit; the matmul grids fit). */
export function gemmOk(p: ConvGeom, device: Tensor['device']): boolean {
  const CK = p.Cg * p.KH * p.KW;
  const OHW = p.OH * p.OW;
  const Kp = Math.ceil((CK + 1) / 4) * 4;
  return gemmChunk(p, device, Math.max(p.G * Kp * OHW, p.O * OHW, p.O * CK)) !== null && fits(Math.ceil(OHW / 8), Math.ceil(Kp / 8), Math.ceil(p.Og / 8));
}

/** im2col of images [n0, n0 + Nc) into col [G, Nc*OH*OW, Kp] (column `ones` all ones, or -1). */
export function conv2dIm2col(x: Tensor, p: ConvGeom, n0: number, Nc: number, Kp: number, ones: number): Tensor {
  const device = x.device;
  const rows = p.G * Nc * p.OH * p.OW;
  const col = alloc(device, [p.G, Nc * p.OH * p.OW, Kp]);
  const E = Math.min(GEMM_EPT, Kp);
  const nblk = Math.ceil(Kp / E);
  const threads = rows * nblk;
  const g = grid1d(threads, GEMM_WG);
  const u = new Uniforms().i32(...gemmUniformWords(p, { Nc, n0, gx: g.gx, Kp, ones, nblk, threads })).bytes();
  device.dispatch({ name: 'conv2d_im2col', wgsl: im2colWgsl(Kp % 4 === 0, E), buffers: [x.buffer, col.buffer], uniforms: u, workgroups: g.workgroups });
  return col;
}

/** Images [n0, n0 + Nc) of t [N, ...] as a [Nc, ...rest] tensor (a view when it is all of t). */
function batchSlice(t: Tensor, n0: number, Nc: number, rest: number[]): Tensor {
  const per = rest.reduce((a, b) => a * b, 1);
  if (n0 === 0 && Nc === t.shape[0]) return t.view([Nc, ...rest]);
  const r = alloc(t.device, [Nc, ...rest]);
  stridedCopy(t, r, [Nc * per], n0 * per, [1], 0, [1]);
  return r;
}

/**
 * GEMM forward: per chunk of images, col = im2col(x) (with a ones column when there is a
 * bias), yT_g = col_g · [W_g | b_g | 0]^T (a legacy act string in the matmul epilogue), then
 * one permute of yT [G, Nc, OH*OW, Og] into y [N, O, OH, OW].
 * NOTE: a fused activation (FusedAct) runs in the permute instead (gemmPermuteActWgsl):
 * the permute is the one pass over the output anyway, and there it writes y = act(z) and z
 * together in NCHW order (in the matmul epilogue, z would need a second permute).
 */
function gemmForward(x: Tensor, w: Tensor, b: Tensor | null, p: ConvGeom, act: string | FusedAct | undefined): FwdOut {
  const device = x.device;
  const CK = p.Cg * p.KH * p.KW;
  const OHW = p.OH * p.OW;
  // NOTE: K padded to a multiple of 4 (zero columns) so that both operands load as vec4.
  const Kp = Math.ceil((CK + (b ? 1 : 0)) / 4) * 4;
  const ones = b ? CK : -1;
  // NOTE: the filter is packed transposed, [G, Kp, Og], so the product is a plain A·B:
  // measured 12-26% faster than A·B^T on MNIST conv2's shape ([18432, 292] x [292, 64]).
  const wa = alloc(device, [p.G, Kp, p.Og]);
  const threads = p.O * Kp;
  const g = grid1d(threads, GEMM_WG);
  const u = new Uniforms().i32(...gemmUniformWords(p, { Nc: 0, n0: 0, gx: g.gx, Kp, ones, nblk: 0, threads })).bytes();
  device.dispatch({ name: 'conv2d_gemm_pack_filter', wgsl: gemmPackFilterWgsl(!!b), buffers: b ? [w.buffer, b.buffer, wa.buffer] : [w.buffer, wa.buffer], uniforms: u, workgroups: g.workgroups });
  const Nc = gemmChunk(p, device, Math.max(p.G * Kp * OHW, p.O * OHW))!;
  const fused = typeof act === 'object' ? act : null;
  const launch = fused ? epilogueLaunch('conv2d', fused, gemmEpilogueBinding(fused.saveZ)) : null;
  const out = allocOut(device, p, fused?.saveZ);
  const { y } = out;
  for (let n0 = 0; n0 < p.N; n0 += Nc) {
    const nc = Math.min(Nc, p.N - n0);
    const col = conv2dIm2col(x, p, n0, nc, Kp, ones);
    const yt = matmulRaw(col, wa, { act: typeof act === 'string' ? act : undefined });
    col.dispose();
    if (launch) {
      const threads = nc * p.O * Math.ceil(OHW / GEMM_EPI_EPT);
      const g = grid1d(threads, GEMM_EPI_WG);
      const u = new Uniforms().i32(nc, p.O, OHW, p.Og, n0, g.gx, threads, 0).f32(...launch.uniformF32).bytes();
      device.dispatch({ name: 'conv2d_gemm_epilogue', wgsl: gemmPermuteActWgsl(launch.act, launch.saveZ), buffers: [yt.buffer, ...outBuffers(out, launch)], uniforms: u, workgroups: g.workgroups });
    } else {
      // yt [G, nc, OHW, Og] -> y[n0 + n, g*Og + o, pix], iterated in y's order (n, g, o, pix).
      stridedCopy(yt, y, [nc, p.G, p.Og, OHW], 0, [OHW * p.Og, nc * OHW * p.Og, 1, p.Og], n0 * p.O * OHW, [p.O * OHW, p.Og * OHW, OHW, 1]);
    }
    yt.dispose();
  }
  wa.dispose();
  return out;
}

/**
 * GEMM input gradient: dcol[n, g] = dy[n, g]^T · W_g ([OH*OW, CK]; dy[n, g]^T materialised), then a gather col2im
 * into dx. NOTE: when CK < 32 the product's 32-column blocks would be mostly idle, so it
 * runs transposed, W_g^T · dy[n, g] -> [CK, OH*OW] (measured ~3x faster for 1->32 3x3).
 */
function gemmBackwardInput(dy: Tensor, w: Tensor, p: ConvGeom): Tensor {
  const device = dy.device;
  const CK = p.Cg * p.KH * p.KW;
  const kMajor = CK < 32;
  const OHW = p.OH * p.OW;
  const HW = p.H * p.W;
  const dx = alloc(device, [p.N, p.C, p.H, p.W]);
  const wv = w.view([p.G, p.Og, CK]);
  const Nc = gemmChunk(p, device, Math.max(p.G * CK * OHW, p.O * OHW))!;
  for (let n0 = 0; n0 < p.N; n0 += Nc) {
    const nc = Math.min(Nc, p.N - n0);
    let dcol: Tensor;
    if (kMajor) {
      const dyc = batchSlice(dy, n0, nc, [p.G, p.Og, OHW]);
      dcol = matmulRaw(wv, dyc, { transA: true });
      dyc.dispose();
    } else {
      // NOTE: dy is permuted to [nc, G, OHW, Og] first so the product is a plain A·B: the
      // copy plus A·B measured 12-20% faster than A^T·B on MNIST conv2's dx (interleaved A/B).
      const dyT = alloc(device, [nc, p.G, OHW, p.Og]);
      stridedCopy(dy, dyT, [nc, p.G, OHW, p.Og], n0 * p.O * OHW, [p.O * OHW, p.Og * OHW, 1, OHW], 0, [p.G * OHW * p.Og, OHW * p.Og, p.Og, 1]);
      dcol = matmulRaw(dyT, wv);
      dyT.dispose();
    }
    const nblk = Math.ceil(HW / GEMM_EPT);
    const threads = nc * p.C * nblk;
    const g = grid1d(threads, GEMM_WG);
    const u = new Uniforms().i32(...gemmUniformWords(p, { Nc: nc, n0, gx: g.gx, Kp: CK, ones: -1, nblk, threads })).bytes();
    device.dispatch({ name: 'conv2d_col2im', wgsl: col2imWgsl(p.sh, p.sw, HW % 4 === 0, kMajor), buffers: [dcol.buffer, dx.buffer], uniforms: u, workgroups: g.workgroups });
    dcol.dispose();
  }
  wv.dispose();
  return dx;
}

/** Target number of matmul workgroups for the filter gradient (the K split fills the rest). */
const GEMM_DW_TARGET_GROUPS = 32;

/**
 * GEMM filter gradient: dW_g = dyP_g · col_g with K = images x OH*OW; dy is permuted to
 * dyP [G, S, Og, Ns*OH*OW] so that the long K can be split into S chunks of Ns images
 * (batched, partials summed) when the output alone gives too few workgroups.
 */
function gemmBackwardFilter(dy: Tensor, x: Tensor, p: ConvGeom): Tensor {
  const device = dy.device;
  const CK = p.Cg * p.KH * p.KW;
  const OHW = p.OH * p.OW;
  const Nc = gemmChunk(p, device, Math.max(p.G * CK * OHW, p.O * OHW))!;
  const groups = Math.ceil(CK / 32) * Math.ceil(p.Og / 8) * p.G;
  let acc: Tensor | null = null;
  for (let n0 = 0; n0 < p.N; n0 += Nc) {
    const nc = Math.min(Nc, p.N - n0);
    // S: the largest divisor of nc with S * groups <= target (at least 1).
    let S = 1;
    for (let d = 1; d <= nc; d++) if (nc % d === 0 && d * groups <= Math.max(GEMM_DW_TARGET_GROUPS, groups)) S = d;
    const Ns = nc / S;
    const col = conv2dIm2col(x, p, n0, nc, CK, -1);
    const colv = col.view([p.G, S, Ns * OHW, CK]);
    col.dispose();
    const dyP = alloc(device, [p.G, S, p.Og, Ns * OHW]);
    // dyP[g, s, o, m, pix] = dy[n0 + s*Ns + m, g*Og + o, pix]
    stridedCopy(dy, dyP, [p.G, S, p.Og, Ns, OHW], n0 * p.O * OHW, [p.Og * OHW, Ns * p.O * OHW, OHW, p.O * OHW, 1], 0, [S * p.Og * Ns * OHW, p.Og * Ns * OHW, Ns * OHW, OHW, 1]);
    const prod = matmulRaw(dyP, colv);
    colv.dispose();
    dyP.dispose();
    const red = S > 1 ? sum(prod, 1) : prod;
    if (red !== prod) prod.dispose();
    const part = red.view([p.O * CK]);
    red.dispose();
    if (acc) {
      const t = add(acc, part);
      acc.dispose();
      part.dispose();
      acc = t;
    } else {
      acc = part;
    }
  }
  const dw = acc!.view([p.O, p.Cg, p.KH, p.KW]);
  acc!.dispose();
  return dw;
}

/**
 * The implementation 'auto' uses for one direction of a geometry (never 'auto'). Measured
 * on lavapipe (see bench/conv2d.bench.ts): the packed kernels win the stride-1 layers with
 * many channels per group; the GEMM path wins where they do not apply or are weak:
 * - fwd: 'gemm' when Og >= 16, CK = Cg*KH*KW >= 16 and the conv is strided or the packed
 *   kernel does not apply (MNIST conv2: 1.5x); else 'fast' (the GEMM's im2col and permute
 *   passes cost more than they save on short reductions such as 1->32 3x3).
 * - dx: 'gemm' when Og >= 8 and the packed dx-as-forward path does not apply (stride > 1,
 *   or < 4 input channels per group): MNIST conv2 2.4x, conv1 4x; else 'fast'.
 * - dw: 'gemm' when Og >= 8 and CK >= 32 (1.4-2x on every 32+ channel layer measured);
 *   else 'fast' (for CK < 32 the product's 32-column blocks run mostly idle).
 * Any case the GEMM temporaries cannot hold one image of goes to 'fast'.
 */
export function chooseConvImpl(p: ConvGeom, dir: ConvDir, device: Tensor['device']): Exclude<ConvImpl, 'auto'> {
  if (!gemmOk(p, device)) return 'fast';
  const CK = p.Cg * p.KH * p.KW;
  const strided = p.sh > 1 || p.sw > 1;
  if (dir === 'fwd') return p.Og >= 16 && CK >= 16 && (strided || !packedOk(p)) ? 'gemm' : 'fast';
  if (dir === 'dx') return p.Og >= 8 && packedDxGeom(p) === null ? 'gemm' : 'fast';
  return p.Og >= 8 && CK >= 32 ? 'gemm' : 'fast';
}

function resolveImpl(p: ConvGeom, dir: ConvDir, impl: ConvImpl, device: Tensor['device']): Exclude<ConvImpl, 'auto'> {
  if (impl === 'auto') return chooseConvImpl(p, dir, device);
  if (impl === 'gemm' && !gemmOk(p, device)) return 'fast';
  return impl;
}

/** Forward kernel launch (no autograd); `act`: a legacy WGSL epi_act string (forward only). */
export function conv2dForward(x: Tensor, w: Tensor, b: Tensor | null, p: ConvGeom, impl: ConvImpl = 'auto', act?: string): Tensor {
  return forwardLaunch(x, w, b, p, impl, act).y;
}

/**
 * Forward with a fused activation epilogue (no autograd): y = act(conv(x, w) + b) and, with
 * fused.saveZ, the pre-activation z = conv(x, w) + b written by the same pass, on every impl
 * (packed, direct and naive kernels: from the accumulator registers; GEMM: in the permute).
 */
export function conv2dForwardAct(x: Tensor, w: Tensor, b: Tensor | null, p: ConvGeom, impl: ConvImpl, fused: FusedAct): { y: Tensor; z: Tensor | null } {
  return forwardLaunch(x, w, b, p, impl, fused);
}

function forwardLaunch(x: Tensor, w: Tensor, b: Tensor | null, p: ConvGeom, impl: ConvImpl, act: string | FusedAct | undefined): FwdOut {
  const device = x.device;
  impl = resolveImpl(p, 'fwd', impl, device);
  if (impl === 'gemm') return gemmForward(x, w, b, p, act);
  const OB = convBlock(p.Og);
  const gx = Math.ceil((p.OH * Math.ceil(p.OW / 4)) / CONV_WG);
  const gy = p.G * Math.ceil(p.Og / OB);
  if (impl === 'fast' && packedOk(p) && fits(gx, gy, p.N)) return packedForward(x, w, b, p, act, false);
  const { epi, launch } = directEpilogue(b, act);
  const out = allocOut(device, p, epi.saveZ);
  const bufs = [x.buffer, w.buffer, ...(b ? [b.buffer] : []), ...outBuffers(out, launch)];
  const sfx = typeof act === 'object' ? '_act' : '';
  if (impl !== 'naive' && fits(gx, gy, p.N)) {
    device.dispatch({ name: `conv2d${sfx}`, wgsl: conv2dFastWgsl(OB, 4, epi), buffers: bufs, uniforms: uniforms(p, 0, 0, 0, undefined, launch), workgroups: [gx, gy, p.N] });
  } else {
    const g = grid1d(out.y.size, CONV_NAIVE_WG);
    device.dispatch({ name: `conv2d_naive${sfx}`, wgsl: conv2dNaiveWgsl(epi), buffers: bufs, uniforms: uniforms(p, g.gx, 0, 0, undefined, launch), workgroups: g.workgroups });
  }
  return out;
}

/**
 * The dx-as-forward geometry when the packed kernel computes the input gradient, else null.
 * NOTE: with stride 1 the input gradient is a forward conv of dy with the flipped,
 * channel-transposed filter and padding (K-1)*dilation - padding.
 */
function packedDxGeom(p: ConvGeom): ConvGeom | null {
  if (p.sh !== 1 || p.sw !== 1 || p.ph > (p.KH - 1) * p.dlh || p.pw > (p.KW - 1) * p.dlw) return null;
  const q: ConvGeom = {
    ...p, C: p.O, H: p.OH, W: p.OW, O: p.C, OH: p.H, OW: p.W, Cg: p.Og, Og: p.Cg,
    ph: (p.KH - 1) * p.dlh - p.ph, pw: (p.KW - 1) * p.dlw - p.pw,
  };
  return packedOk(q) && fits(Math.ceil((q.OH * Math.ceil(q.OW / 4)) / CONV_WG), q.G * Math.ceil(q.Og / 4), q.N) ? q : null;
}

/** Input gradient dx [N, C, H, W] from dy [N, O, OH, OW] (no autograd). */
export function conv2dBackwardInput(dy: Tensor, w: Tensor, p: ConvGeom, impl: ConvImpl = 'auto'): Tensor {
  const device = dy.device;
  impl = resolveImpl(p, 'dx', impl, device);
  if (impl === 'gemm') return gemmBackwardInput(dy, w, p);
  const q = impl === 'fast' ? packedDxGeom(p) : null;
  if (q) return packedForward(dy, w, null, q, undefined, true).y;
  const dx = alloc(device, [p.N, p.C, p.H, p.W]);
  const IB = convBlock(p.Cg);
  const gx = Math.ceil((Math.ceil(p.H / p.sh) * Math.ceil(Math.ceil(p.W / p.sw) / 4)) / CONV_WG);
  const gy = p.G * Math.ceil(p.Cg / IB);
  const gz = p.N * p.sh * p.sw;
  // NOTE: with stride > kernel extent some dx pixels get no tap at all; the fast kernel
  // still visits (and writes zeros to) every pixel of every phase.
  if (impl !== 'naive' && fits(gx, gy, gz)) {
    device.dispatch({ name: 'conv2d_backward_input', wgsl: conv2dBackwardInputFastWgsl(IB, 4), buffers: [dy.buffer, w.buffer, dx.buffer], uniforms: uniforms(p), workgroups: [gx, gy, gz] });
  } else {
    const g = grid1d(dx.size, CONV_NAIVE_WG);
    device.dispatch({ name: 'conv2d_backward_input_naive', wgsl: conv2dBackwardInputNaiveWgsl(), buffers: [dy.buffer, w.buffer, dx.buffer], uniforms: uniforms(p, g.gx), workgroups: g.workgroups });
  }
  return dx;
}

/** Target number of workgroups for the split reduction of the filter gradient. */
const DW_TARGET_GROUPS = 48;
/** Cap on the partials buffer (floats). */
const DW_MAX_PARTIAL = 1 << 24;

/** Filter gradient dw [O, Cg, KH, KW] from dy and x (no autograd). */
export function conv2dBackwardFilter(dy: Tensor, x: Tensor, p: ConvGeom, impl: ConvImpl = 'auto'): Tensor {
  const device = dy.device;
  impl = resolveImpl(p, 'dw', impl, device);
  if (impl === 'gemm') return gemmBackwardFilter(dy, x, p);
  const wShape = [p.O, p.Cg, p.KH, p.KW];
  const wSize = p.O * p.Cg * p.KH * p.KW;
  const P = p.Cg * p.KH;
  let wg = 8;
  while (wg < P && wg < CONV_WG) wg *= 2;
  const OB = convBlock(p.Og, p.KW <= 4 ? 8 : 4);
  const gx = Math.ceil(P / wg);
  const gy = p.G * Math.ceil(p.Og / OB);
  const R = p.N * p.OH;
  let S = Math.min(R, Math.max(1, Math.ceil(DW_TARGET_GROUPS / (gx * gy))), Math.max(1, Math.floor(DW_MAX_PARTIAL / wSize)), MAX_GROUPS);
  const rows = Math.ceil(R / S);
  S = Math.ceil(R / rows);
  if (impl !== 'naive' && fits(gx, gy)) {
    const part = alloc(device, S === 1 ? wShape : [S, wSize]);
    device.dispatch({
      name: 'conv2d_backward_filter',
      wgsl: conv2dBackwardFilterFastWgsl(OB, p.KW, wg),
      buffers: [dy.buffer, x.buffer, part.buffer],
      uniforms: uniforms(p, 0, rows, S),
      workgroups: [gx, gy, S],
    });
    if (S === 1) return part;
    const s = sum(part, 0);
    part.dispose();
    const r = s.view(wShape);
    s.dispose();
    return r;
  }
  const dw = alloc(device, wShape);
  const g = grid1d(wSize, CONV_NAIVE_WG);
  device.dispatch({ name: 'conv2d_backward_filter_naive', wgsl: conv2dBackwardFilterNaiveWgsl(), buffers: [dy.buffer, x.buffer, dw.buffer], uniforms: uniforms(p, g.gx), workgroups: g.workgroups });
  return dw;
}

/**
 * conv2d(x [N, C, H, W], w [O, C/groups, KH, KW], b? [O], opts) -> y [N, O, OH, OW] with
 * OH = floor((H + 2*ph - dlh*(KH-1) - 1)/sh) + 1 (same for OW). Records dx, dw and db.
 */
export function conv2d(x: Tensor, w: Tensor, b?: Tensor | null, opts: Conv2dOptions = {}): Tensor {
  const op = 'conv2d';
  const inputs = b ? [x, w, b] : [x, w];
  assertSameDevice(op, ...inputs);
  for (const [nm, t] of [['x', x], ['w', w], ['b', b]] as const) {
    if (t && t.dtype !== 'f32') throw new Error(`kinkless: ${op}: ${nm} must be f32, got an ${t.dtype} tensor of shape ${shapeStr(t.shape)}`);
  }
  const impl = opts.impl ?? 'auto';
  if (!CONV_IMPLS.includes(impl)) throw new Error(`kinkless: ${op}: impl must be one of ${CONV_IMPLS.map((v) => `'${v}'`).join(', ')}, got ${String(impl)}`);
  const p = conv2dGeometry(x.shape, w.shape, opts, b ? b.shape : null);
  if (opts.act !== undefined) {
    if (typeof opts.act !== 'string' || !/fn\s+epi_act\s*\(/.test(opts.act)) throw new Error(`kinkless: ${op}: act must be WGSL defining fn epi_act(z: f32) -> f32`);
    if (needsGrad(inputs)) throw new Error(`kinkless: ${op}: the fused act epilogue is forward-only; apply the activation as a separate op when a gradient is needed`);
  }
  const y = conv2dForward(x, w, b ?? null, p, impl, opts.act);
  record(y, op, inputs, (dy) => [
    x.requiresGrad ? conv2dBackwardInput(dy, w, p, impl) : null,
    w.requiresGrad ? conv2dBackwardFilter(dy, x, p, impl) : null,
    ...(b ? [b.requiresGrad ? sum(dy, [0, 2, 3]) : null] : []),
  ]);
  return y;
}
