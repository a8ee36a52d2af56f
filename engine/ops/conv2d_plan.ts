// conv2d planning: the public option types, validation of shapes and options into a
// resolved geometry and run options, and the choice of implementation per direction
// (forward, dx, dw) and per adapter (chooseConvImpl). Also the GEMM path's chunking and
// the profile info (op, geometry, flops, bytes) every conv dispatch carries.
import { shapeStr, type Shape } from '../tensor.ts';
import { isLlvmpipe, type Device } from '../device.ts';
import type { DispatchInfo } from '../queue.ts';
import type { ConvGeom } from '../../kernels/conv2d_common.ts';
import { convPackedSpan } from '../../kernels/conv2d_packed.ts';
import { CONV_WG } from '../../kernels/conv2d_common.ts';

export type { ConvGeom };
export type Pair = number | readonly [number, number];

/**
 * 'auto' (default): per direction, the implementation chooseConvImpl picks for the shape
 * and adapter. 'fast': packed kernels where they apply (>= 4 channels per group; stride 1
 * for dx), else 'direct'. 'direct': the register-blocked kernels on unpadded tensors (any
 * options). 'gemm': im2col + batched matmul (+ gather col2im for dx); falls back to 'fast'
 * where a single image's temporaries exceed the buffer cap. 'pixel': per-pixel kernels
 * holding a block of output channels in registers, for a short reduction (Cg*KH*KW <= 32,
 * forward; <= 64, dw); elsewhere, and for dx, it runs 'fast'. 'naive': one output per
 * thread (oracle and baseline).
 */
export type ConvImpl = 'auto' | 'fast' | 'gemm' | 'direct' | 'pixel' | 'naive';
export const CONV_IMPLS: readonly ConvImpl[] = ['auto', 'fast', 'gemm', 'direct', 'pixel', 'naive'];

/** Which pass a kernel choice is for. */
export type ConvDir = 'fwd' | 'dx' | 'dw';

/** Default cap on one GEMM temporary per chunk of images: 64 MiB. */
export const DEFAULT_GEMM_CHUNK_BYTES = 64 << 20;
/** Default cap on the forward im2col kept for the filter gradient: 64 MiB. */
export const DEFAULT_KEEP_IM2COL_BYTES = 64 << 20;

export interface Conv2dOptions {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  groups?: number;
  /** Kernel family (default 'auto'; see ConvImpl). */
  impl?: ConvImpl;
  /**
   * Cap in bytes on one GEMM temporary (im2col, dcol, permuted dy) per chunk of images;
   * the batch is split into chunks that fit (default DEFAULT_GEMM_CHUNK_BYTES, 64 MiB;
   * also capped by the device's maxStorageBufferBindingSize).
   */
  gemmChunkBytes?: number;
  /**
   * Largest forward im2col (bytes) that the GEMM forward keeps for the filter gradient
   * when w needs one and dw also runs on the GEMM path, instead of rebuilding it in the
   * backward; kept only when the whole batch fits one chunk, freed after its use or with
   * the enclosing scope (default DEFAULT_KEEP_IM2COL_BYTES, 64 MiB; 0: never keep).
   */
  keepIm2colBytes?: number;
  /**
   * col2im of the GEMM input gradient for strided convs: 'phase' (default) visits only the
   * taps of each pixel's stride phase; 'taps' tests every tap per pixel (the older kernel,
   * kept for comparison). Stride 1 always runs 'taps' (every tap is valid there).
   */
  col2im?: 'phase' | 'taps';
  /**
   * Layout of the GEMM input gradient's dcol: 'auto' (default: chooseDcolLayout), 'pixel'
   * (dcol [N, G, OH*OW, CK] = dy^T · W, dy permuted first) or 'k' (dcol [N, G, CK, OH*OW] =
   * W^T · dy per image, the filter packed transposed, dy read in place).
   */
  dcol?: DcolLayout;
  /**
   * Orientation of the GEMM forward: 'auto' (default: chooseGemmForward), 'permute'
   * (yT = col · W^T [N*OH*OW, O], then a permute to NCHW that applies the bias and the
   * activation) or 'direct' (y_n = W · col_n^T per image, written in NCHW by the matmul with
   * the bias as a ones column and the activation in its epilogue; one group and one chunk
   * of images only, else 'permute').
   */
  gemmForward?: GemmForward;
  /**
   * Bake each layer's geometry into the kernels that split their thread index with integer
   * division (the GEMM path's im2col, col2im and epilogue; the packed kernels and their
   * padding) as constants (default true: one pipeline per layer shape, the batch size stays
   * a uniform; division by a constant compiles to multiplies on lavapipe, by a uniform to
   * scalar divisions); false: read it from the uniforms (one pipeline for every shape).
   */
  bakeGeometry?: boolean;
}

export type DcolLayout = 'auto' | 'pixel' | 'k';
export type GemmForward = 'auto' | 'permute' | 'direct';

/** Run options with their defaults filled in. */
export interface ConvRun {
  impl: ConvImpl;
  gemmChunkBytes: number;
  keepIm2colBytes: number;
  col2im: 'phase' | 'taps';
  dcol: DcolLayout;
  gemmForward: GemmForward;
  bakeGeometry: boolean;
}

const MAX_GROUPS = 65535;

function pair(op: string, name: string, v: Pair | undefined, dflt: number, min: number): [number, number] {
  const p: readonly unknown[] = v === undefined ? [dflt, dflt] : typeof v === 'number' ? [v, v] : Array.isArray(v) ? v : [];
  if (p.length !== 2 || !p.every((d) => Number.isInteger(d) && (d as number) >= min)) {
    throw new Error(`kinkless: ${op}: ${name} must be an integer >= ${min} or a pair [h, w] of them, got ${JSON.stringify(v)}`);
  }
  return [p[0] as number, p[1] as number];
}

/** Validate and fill in the run options (impl, byte caps, col2im). `o` may be just an impl. */
export function convRun(op: string, o: ConvImpl | Conv2dOptions | ConvRun = {}): ConvRun {
  const opts: Conv2dOptions = typeof o === 'string' ? { impl: o } : o;
  const impl = opts.impl ?? 'auto';
  if (!CONV_IMPLS.includes(impl)) throw new Error(`kinkless: ${op}: impl must be one of ${CONV_IMPLS.map((v) => `'${v}'`).join(', ')}, got ${String(impl)}`);
  const bytes = (name: 'gemmChunkBytes' | 'keepIm2colBytes', dflt: number, min: number): number => {
    const v = opts[name];
    if (v === undefined) return dflt;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw new Error(`kinkless: ${op}: ${name} must be an integer >= ${min} (bytes), got ${String(v)}`);
    return v;
  };
  const col2im = opts.col2im ?? 'phase';
  if (col2im !== 'phase' && col2im !== 'taps') throw new Error(`kinkless: ${op}: col2im must be 'phase' or 'taps', got ${String(col2im)}`);
  const dcol = opts.dcol ?? 'auto';
  if (dcol !== 'auto' && dcol !== 'pixel' && dcol !== 'k') throw new Error(`kinkless: ${op}: dcol must be 'auto', 'pixel' or 'k', got ${String(dcol)}`);
  const gemmForward = opts.gemmForward ?? 'auto';
  if (gemmForward !== 'auto' && gemmForward !== 'permute' && gemmForward !== 'direct') {
    throw new Error(`kinkless: ${op}: gemmForward must be 'auto', 'permute' or 'direct', got ${String(gemmForward)}`);
  }
  const bakeGeometry = opts.bakeGeometry ?? true;
  if (typeof bakeGeometry !== 'boolean') throw new Error(`kinkless: ${op}: bakeGeometry must be a boolean, got ${String(bakeGeometry)}`);
  return { impl, gemmChunkBytes: bytes('gemmChunkBytes', DEFAULT_GEMM_CHUNK_BYTES, 4), keepIm2colBytes: bytes('keepIm2colBytes', DEFAULT_KEEP_IM2COL_BYTES, 0), col2im, dcol, gemmForward, bakeGeometry };
}

/** Validate shapes and options; returns the resolved geometry. */
export function conv2dGeometry(xShape: Shape, wShape: Shape, opts: Conv2dOptions = {}, bShape?: Shape | null, op = 'conv2d'): ConvGeom {
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

export function fits(...dims: number[]): boolean {
  return dims.every((d) => d <= MAX_GROUPS);
}

/** Largest x span (vec4 loads per row) the packed kernel unrolls. */
const PACKED_MAX_SPAN = 6;

/** Whether the packed forward kernel applies: >= 4 channels per group and a short row span. */
export function packedOk(p: ConvGeom): boolean {
  return p.Og >= 4 && convPackedSpan({ KW: p.KW, sw: p.sw, dlw: p.dlw }) <= PACKED_MAX_SPAN;
}

/**
 * The dx-as-forward geometry when the packed kernel computes the input gradient, else null.
 * NOTE: with stride 1 the input gradient is a forward conv of dy with the flipped,
 * channel-transposed filter and padding (K-1)*dilation - padding.
 */
export function packedDxGeom(p: ConvGeom): ConvGeom | null {
  if (p.sh !== 1 || p.sw !== 1 || p.ph > (p.KH - 1) * p.dlh || p.pw > (p.KW - 1) * p.dlw) return null;
  const q: ConvGeom = {
    ...p, C: p.O, H: p.OH, W: p.OW, O: p.C, OH: p.H, OW: p.W, Cg: p.Og, Og: p.Cg,
    ph: (p.KH - 1) * p.dlh - p.ph, pw: (p.KW - 1) * p.dlw - p.pw,
  };
  return packedOk(q) && fits(Math.ceil((q.OH * Math.ceil(q.OW / 4)) / CONV_WG), q.G * Math.ceil(q.Og / 4), q.N) ? q : null;
}

/** Longest reduction (Cg*KH*KW) the per-pixel forward unrolls, and the per-pixel dw. */
export const PIXEL_MAX_CK = 32;
export const PIXEL_DW_MAX_CK = 64;

/** Whether the per-pixel kernel of a direction applies (dx has none). */
export function pixelOk(p: ConvGeom, dir: ConvDir): boolean {
  const CK = p.Cg * p.KH * p.KW;
  if (dir === 'fwd') return CK <= PIXEL_MAX_CK;
  if (dir === 'dw') return CK <= PIXEL_DW_MAX_CK;
  return false;
}

/**
 * Images per chunk so that `floatsPerImage` floats fit `chunkBytes` and the device's
 * maxStorageBufferBindingSize, the matmul batch (images x groups) fits one grid dimension
 * and so do the forward product's rows (8 per workgroup: images x OH*OW); balanced over
 * the chunks. null when even one image does not fit.
 */
export function gemmChunk(p: ConvGeom, device: Device, floatsPerImage: number, chunkBytes: number): number | null {
  const limit = Math.min(chunkBytes, device.limits.maxStorageBufferBindingSize ?? chunkBytes);
  const cap = Math.min(p.N, Math.floor(limit / (4 * floatsPerImage)), Math.floor(MAX_GROUPS / p.G), Math.floor((8 * MAX_GROUPS) / (p.OH * p.OW)));
  if (cap < 1) return null;
  return Math.ceil(p.N / Math.ceil(p.N / cap));
}

/** The K of the forward GEMM: CK plus a bias column, padded to a multiple of 4. */
export function gemmKp(p: ConvGeom, bias: boolean): number {
  return Math.ceil((p.Cg * p.KH * p.KW + (bias ? 1 : 0)) / 4) * 4;
}

/** Whether the GEMM path can run this geometry (one image's temporaries fit; the matmul grids fit). */
export function gemmOk(p: ConvGeom, device: Device, chunkBytes = DEFAULT_GEMM_CHUNK_BYTES): boolean {
  const CK = p.Cg * p.KH * p.KW;
  const OHW = p.OH * p.OW;
  const Kp = gemmKp(p, true);
  return gemmChunk(p, device, Math.max(p.G * Kp * OHW, p.O * OHW, p.O * CK), chunkBytes) !== null && fits(Math.ceil(OHW / 8), Math.ceil(Kp / 8), Math.ceil(p.Og / 8));
}

/**
 * The implementation 'auto' uses for one direction of a geometry (never 'auto'). Measured
 * on lavapipe (see bench/conv2d.bench.ts): the packed kernels win the stride-1 layers with
 * many channels per group; the GEMM path wins where they do not apply or are weak:
 * - fwd: 'gemm' when Og >= 16, CK = Cg*KH*KW >= 16 and the conv is strided or the packed
 *   kernel does not apply (MNIST conv2: 1.5x); else 'fast'. ('pixel' measured no faster
 *   than the packed kernel on MNIST conv1, 9.0 vs 8.3 ms: not chosen.)
 * - dx: 'gemm' when Og >= 8 and the packed dx-as-forward path does not apply (stride > 1,
 *   or < 4 input channels per group): MNIST conv2 2.4x, conv1 4x; else 'fast'.
 * - dw: 'gemm' when Og >= 8 and CK >= 32 (1.4-2x on every 32+ channel layer measured);
 *   else, on lavapipe, 'gemm' where it runs one image per slice (gemmDwPerImage: MNIST
 *   conv1, with db from the product's ones column), else 'pixel' (CK < 32: 1.65x over
 *   'fast'); elsewhere 'fast' (for CK < 32 the product's 32-column blocks run mostly idle).
 * Any case the GEMM temporaries cannot hold one image of goes to 'fast' (or 'pixel').
 * NOTE: the 'pixel' choices are per adapter: they were measured on lavapipe only, so any
 * other adapter keeps the packed / direct kernels.
 */
export function chooseConvImpl(p: ConvGeom, dir: ConvDir, device: Device, chunkBytes = DEFAULT_GEMM_CHUNK_BYTES): Exclude<ConvImpl, 'auto'> {
  const CK = p.Cg * p.KH * p.KW;
  const soft = isLlvmpipe(device.adapter);
  const small = dir === 'dw' && soft && CK < 32;
  const fallback = small && pixelOk(p, dir) ? 'pixel' : 'fast';
  if (!gemmOk(p, device, chunkBytes)) return fallback;
  const strided = p.sh > 1 || p.sw > 1;
  if (dir === 'fwd') return p.Og >= 16 && CK >= 16 && (strided || !packedOk(p)) ? 'gemm' : fallback;
  if (dir === 'dx') return p.Og >= 8 && packedDxGeom(p) === null ? 'gemm' : 'fast';
  if (p.Og >= 8 && CK >= 32) return 'gemm';
  return small && p.Og >= 8 && gemmDwPerImage(p, gemmKp(p, true)) ? 'gemm' : fallback;
}

/**
 * Whether the GEMM input gradient runs k-major (dcol [N, G, CK, OH*OW] = W_g^T · dy[n, g])
 * rather than pixel-major (dcol [N, G, OH*OW, CK] = dy[n, g]^T · W_g).
 * NOTE: CK < 32 always runs k-major (the pixel-major product's 32-column blocks would be
 * mostly idle: measured ~3x slower on 1->32 3x3). 'auto' otherwise: k-major on lavapipe
 * (MNIST conv2's dx 30.3 vs 33.9 ms there: no permute of dy, and the col2im reads runs of
 * consecutive pixels; docs/conv2d.md), pixel-major on any other adapter (not measured).
 */
export function chooseDcolLayout(p: ConvGeom, run: ConvRun, device: Device): 'pixel' | 'k' {
  const CK = p.Cg * p.KH * p.KW;
  if (CK < 32) return 'k';
  if (run.dcol !== 'auto') return run.dcol;
  return isLlvmpipe(device.adapter) ? 'k' : 'pixel';
}

/**
 * The GEMM forward's orientation for a run (before the one-group / one-chunk check).
 * NOTE: 'auto' is 'permute': MNIST conv2's forward + dw + db (relu) measured 58.5 ms
 * permute vs 64.5 ms direct on lavapipe (interleaved A/B, docs/conv2d.md).
 */
export function chooseGemmForward(_p: ConvGeom, run: ConvRun, _device: Device): 'permute' | 'direct' {
  return run.gemmForward === 'auto' ? 'permute' : run.gemmForward;
}

/**
 * Whether the GEMM filter gradient runs one image per K slice with dy in place (no permute
 * of dy): one group and a product no wider than 1/8 of an image's pixels, so that the
 * per-image partials [N, Og, Kc] stay small next to dy (MNIST conv1: 12 columns, 676 pixels).
 */
export function gemmDwPerImage(p: ConvGeom, Kc: number): boolean {
  return p.G === 1 && 8 * Kc <= p.OH * p.OW;
}

/** The implementation a run uses for one direction (resolving 'auto' and inapplicable choices). */
export function resolveImpl(p: ConvGeom, dir: ConvDir, run: ConvRun, device: Device): Exclude<ConvImpl, 'auto'> {
  const impl = run.impl;
  if (impl === 'auto') return chooseConvImpl(p, dir, device, run.gemmChunkBytes);
  if (impl === 'gemm' && !gemmOk(p, device, run.gemmChunkBytes)) return 'fast';
  if (impl === 'pixel' && !pixelOk(p, dir)) return 'fast';
  return impl;
}

/** 'N128 C32 H26x26 -> O64 3x3 s2' (plus p, d, g where not the default). */
export function convGeometryText(p: ConvGeom): string {
  const two = (a: number, b: number): string => (a === b ? `${a}` : `${a}x${b}`);
  let s = `N${p.N} C${p.C} H${p.H}x${p.W} -> O${p.O} ${p.KH}x${p.KW} s${two(p.sh, p.sw)}`;
  if (p.ph || p.pw) s += ` p${two(p.ph, p.pw)}`;
  if (p.dlh > 1 || p.dlw > 1) s += ` d${two(p.dlh, p.dlw)}`;
  if (p.G > 1) s += ` g${p.G}`;
  return s;
}

/** Profile info of one conv dispatch: `what` (e.g. 'fwd', 'dx im2col') prefixes the geometry. */
export function convInfo(p: ConvGeom, what: string, flops: number, bytes: number): DispatchInfo {
  return { op: 'conv2d', geometry: `${what} ${convGeometryText(p)}`, flops, bytes };
}

/** Multiply-add FLOPs of one full conv pass (forward, dx and dw alike). */
export function convFlops(p: ConvGeom): number {
  return 2 * p.N * p.O * p.OH * p.OW * p.Cg * p.KH * p.KW;
}

/** Bytes of the tensors of a geometry: x, w, y (f32). */
export function convBytes(p: ConvGeom): { x: number; w: number; y: number } {
  return { x: 4 * p.N * p.C * p.H * p.W, w: 4 * p.O * p.Cg * p.KH * p.KW, y: 4 * p.N * p.O * p.OH * p.OW };
}
