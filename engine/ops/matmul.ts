// Batched matmul and linear (x·w^T + b) with autograd. Every product, forward and
// backward, is one GEMM launch with transpose flags (no transpose copies): the subgroup
// GEMM (kernels/matmul_subgroup.ts, plus kernels/matmul_splitk.ts for split-K) where the
// adapter's subgroup size is the one it was written for, else the register-blocked kernel
// of kernels/matmul.ts; chooseMatmulKernel picks per shape. matmulRaw is the no-autograd
// entry point that also exposes the bias epilogue and the kernel choice (benchmarks, conv's
// GEMM path); matmulAct adds a fused activation epilogue.
import { Tensor, assertSameDevice, shapeSize, shapeStr, type Shape } from '../tensor.ts';
import { isGradEnabled, record } from '../autograd.ts';
import { MM_FAST_DEFAULTS, MM_MAX_BATCH_DIMS, MM_TILE, matmulEpilogueBinding, matmulFastKernel, matmulNaiveKernel, matmulTiledKernel } from '../../kernels/matmul.ts';
import { matmulSgKernel, sgTile, type SgLayout } from '../../kernels/matmul_subgroup.ts';
import { SPLITK_WG, splitKEpilogueBinding, splitKReduceKernel } from '../../kernels/matmul_splitk.ts';
import { broadcastShapes, grid1d } from '../../kernels/elementwise.ts';
import type { Kernel } from '../../kernels/kernel.ts';
import type { Device } from '../device.ts';
import { Uniforms, alloc } from './launch.ts';
import { sumToShape } from './reduce.ts';
import { epilogueLaunch, type FusedAct } from './epilogue.ts';

export interface MatmulOptions {
  /** a is [..., K, M]: use its transpose. */
  transA?: boolean;
  /** b is [..., N, K]: use its transpose. */
  transB?: boolean;
}

/**
 * 'auto' (default): chooseMatmulKernel's pick for the shape and device. 'fast': the
 * register-blocked kernel; 'naive': one output per thread (baseline); 'tiled': shared-memory
 * tiles (benchmark only); 'subgroup' / 'mirror': the subgroup GEMM (A or B broadcast);
 * 'splitk': the subgroup GEMM split along K plus a reduce. The subgroup kernels need an
 * adapter whose subgroup size is fixed at SG_LANES (subgroupGemmSupported).
 */
export type MatmulKernel = 'auto' | 'fast' | 'naive' | 'tiled' | 'subgroup' | 'mirror' | 'splitk';
export const MATMUL_KERNELS: readonly MatmulKernel[] = ['auto', 'fast', 'naive', 'tiled', 'subgroup', 'mirror', 'splitk'];

/** A subgroup GEMM tile (kernels/matmul_subgroup.ts). */
export interface SgTile {
  layout: SgLayout;
  rows: number;
  vecs: 1 | 2;
}

export interface MatmulRawOptions extends MatmulOptions {
  /** Bias of shape [N], added to every row before the activation. */
  bias?: Tensor;
  /** Kernel choice (default 'auto'; env KINKLESS_MATMUL_KERNEL overrides 'auto'). */
  kernel?: MatmulKernel;
  /** Rows per thread of the fast kernel (default MM_FAST_DEFAULTS). */
  tm?: 1 | 2 | 4 | 8;
  /** Columns per thread of the fast kernel (default MM_FAST_DEFAULTS). */
  tn?: 4 | 8;
  /** Workgroup size of the fast kernel (default MM_FAST_DEFAULTS). */
  wg?: [number, number];
  /** Subgroup tile override (tile searches; default: chooseMatmulKernel's). */
  sg?: Partial<SgTile>;
  /** K slices of the split-K kernel (default: chooseMatmulKernel's; 1 = no split). */
  splitK?: number;
}

/** What chooseMatmulKernel looks at: the product after batch folding. */
export interface MatmulShape {
  M: number;
  N: number;
  K: number;
  /** Number of matrices in the (unfolded) batch. */
  batch: number;
  transA?: boolean;
  transB?: boolean;
}

export type MatmulChoice = { kernel: 'fast' | 'naive' | 'tiled' } | { kernel: 'subgroup'; tile: SgTile; split: number };

/** The subgroup size the subgroup GEMM is written and tuned for (llvmpipe's SIMD width). */
export const SG_LANES = 8;

/**
 * Whether the subgroup GEMM may run: the device has the `subgroups` feature and the
 * adapter's subgroup size is fixed at SG_LANES (min == max), so one workgroup of SG_LANES
 * invocations is exactly one subgroup. Anything else (a real GPU with 32/64-wide
 * subgroups, or a varying size) keeps the register-blocked kernel.
 */
export function subgroupGemmSupported(device: Device): boolean {
  const a = device.adapter;
  return device.features.includes('subgroups') && a.subgroupMinSize === SG_LANES && a.subgroupMaxSize === SG_LANES;
}

// NOTE: tiles and thresholds from the tile search in docs/matmul.md (llvmpipe, 2 cores,
// measured under load, interleaved medians). Mirror 32x8 and A-broadcast 12x32 tied on the
// large shapes (1024^3, conv2's three GEMMs), both ~1.7-1.9x the register-blocked kernel;
// narrow outputs (N <= 16: the dense layer's forward) want the 16x4 mirror tile, short ones
// (M <= 16: its filter gradient) an A-broadcast tile of exactly M rows.
/** General tile (M > 16 and N > 16): mirror, 32 rows x 8 columns per workgroup. */
export const SG_DEFAULT_TILE: SgTile = { layout: 'bcastB', rows: 4, vecs: 2 };
/** Narrow outputs (N <= 16): mirror, 16 rows x 4 columns. */
export const SG_NARROW_TILE: SgTile = { layout: 'bcastB', rows: 2, vecs: 1 };
/** Short outputs (M <= 16): A broadcast, M rows (set per shape) x 32 columns. */
export const SG_SHORT_TILE: SgTile = { layout: 'bcastA', rows: 8, vecs: 1 };
/**
 * Split K only when the output alone gives fewer workgroups than this. NOTE: llvmpipe runs
 * one workgroup per thread (one per core here), so only a single-workgroup output leaves a
 * core idle; the dense forward (24 workgroups with the narrow tile) and a 3-workgroup
 * product measured no faster split (docs/matmul.md).
 */
export const SPLITK_MIN_GROUPS = 2;
/** Every K slice keeps at least this much of K. */
export const SPLITK_MIN_SLICE = 512;
/** Slices aim at this many workgroups in all. */
const SPLITK_TARGET_GROUPS = 8;

function splitCount(groups: number, K: number, forced: boolean): number {
  const maxS = Math.max(forced ? 2 : 1, Math.floor(K / SPLITK_MIN_SLICE));
  const want = Math.max(forced ? 2 : 1, Math.ceil(SPLITK_TARGET_GROUPS / groups));
  return Math.max(1, Math.min(want, maxS, Math.floor(MAX_GROUPS / Math.max(1, groups))));
}

/**
 * The kernel (and tile, and K split) for a product of this shape on this device. 'auto'
 * picks the subgroup GEMM where subgroupGemmSupported (tile by shape, see the tiles above;
 * split-K when the output is fewer than SPLITK_MIN_GROUPS workgroups), else 'fast'.
 * 'subgroup' uses the A-broadcast layout, 'mirror' the B-broadcast one, 'splitk' forces
 * at least 2 slices. Explicit subgroup requests on an unsupported device throw.
 */
export function chooseMatmulKernel(s: MatmulShape, device: Device, requested: MatmulKernel = 'auto', o: Pick<MatmulRawOptions, 'sg' | 'splitK'> = {}): MatmulChoice {
  if (requested === 'fast' || requested === 'naive' || requested === 'tiled') return { kernel: requested };
  if (!subgroupGemmSupported(device)) {
    if (requested === 'auto') return { kernel: 'fast' };
    const a = device.adapter;
    throw new Error(
      `kinkless: matmul: kernel '${requested}' needs the 'subgroups' feature with a fixed subgroup size of ${SG_LANES}; this adapter has ${device.features.includes('subgroups') ? '' : 'no subgroups feature, '}subgroup sizes ${a.subgroupMinSize}..${a.subgroupMaxSize}`,
    );
  }
  const short: SgTile = { ...SG_SHORT_TILE, rows: Math.min(16, Math.max(1, s.M)) };
  let base: SgTile;
  if (requested === 'mirror') base = s.N <= 16 ? SG_NARROW_TILE : SG_DEFAULT_TILE;
  else if (requested === 'subgroup') base = s.M <= 16 ? short : { layout: 'bcastA', rows: 12, vecs: 1 };
  else base = s.N <= 16 ? SG_NARROW_TILE : s.M <= 16 ? short : SG_DEFAULT_TILE;
  const tile: SgTile = { ...base, ...o.sg };
  if (requested === 'mirror') tile.layout = 'bcastB';
  const [tm, tn] = sgTile({ lanes: SG_LANES, ...tile });
  const groups = Math.ceil(s.M / tm) * Math.ceil(s.N / tn) * s.batch;
  let split = 1;
  if (o.splitK !== undefined) split = o.splitK;
  else if (requested === 'splitk') split = splitCount(groups, s.K, true);
  else if (groups < SPLITK_MIN_GROUPS && s.K >= 2 * SPLITK_MIN_SLICE) split = splitCount(groups, s.K, false);
  if (!Number.isInteger(split) || split < 1) throw new Error(`kinkless: matmul: splitK must be an integer >= 1, got ${String(o.splitK)}`);
  return { kernel: 'subgroup', tile, split };
}

function envKernel(): MatmulKernel | undefined {
  const v = process.env.KINKLESS_MATMUL_KERNEL;
  if (!v) return undefined;
  if (!MATMUL_KERNELS.includes(v as MatmulKernel)) throw new Error(`kinkless: matmul: KINKLESS_MATMUL_KERNEL must be one of ${MATMUL_KERNELS.join(', ')}, got "${v}"`);
  return v as MatmulKernel;
}

const MAX_GROUPS = 65535;

function checkMatrix(op: string, arg: string, t: Tensor): void {
  if (t.dtype !== 'f32') throw new Error(`kinkless: ${op}: ${arg} must be f32, got an ${t.dtype} tensor of shape ${shapeStr(t.shape)}`);
  if (t.rank < 2) throw new Error(`kinkless: ${op}: ${arg} must have rank >= 2 [..., rows, cols], got shape ${shapeStr(t.shape)}`);
}

interface Plan {
  M: number;
  N: number;
  K: number;
  /** Batch shape of y (right-aligned broadcast of a's and b's batch dims). */
  batch: number[];
  yShape: number[];
  /** Batch dims and element strides as sent to the kernel (after folding). */
  kShape: number[];
  aStr: number[];
  bStr: number[];
  /** a's batch folded into M (b shared, a not transposed). */
  folded: boolean;
}

function batchStrides(shape: Shape, batch: number[], matSize: number): number[] {
  const lead = batch.length - shape.length;
  const st = new Array<number>(batch.length).fill(0);
  let acc = matSize;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (shape[d] !== 1) st[lead + d] = acc;
    acc *= shape[d]!;
  }
  return st;
}

function plan(op: string, a: Tensor, b: Tensor, o: MatmulOptions): Plan {
  checkMatrix(op, 'a', a);
  checkMatrix(op, 'b', b);
  const [ar, ac] = a.shape.slice(-2) as [number, number];
  const [br, bc] = b.shape.slice(-2) as [number, number];
  const [M, Ka] = o.transA ? [ac, ar] : [ar, ac];
  const [Kb, N] = o.transB ? [bc, br] : [br, bc];
  if (Ka !== Kb) {
    const an = o.transA ? 'a^T' : 'a';
    const bn = o.transB ? 'b^T' : 'b';
    throw new Error(
      `kinkless: ${op}: inner dimensions differ: ${an} is [.., ${M}, ${Ka}] (a has shape ${shapeStr(a.shape)}) but ${bn} is [.., ${Kb}, ${N}] (b has shape ${shapeStr(b.shape)}); expected ${an}'s last dim to equal ${bn}'s first`,
    );
  }
  const K = Ka;
  const aB = a.shape.slice(0, -2);
  const bB = b.shape.slice(0, -2);
  const batch = broadcastShapes(op, aB, bB);
  const yShape = [...batch, M, N];
  const bShared = bB.every((d) => d === 1);
  const folded = bShared && !o.transA && shapeSize(aB) > 1 && shapeSize(aB) === shapeSize(batch);
  let kShape: number[];
  let aStr: number[];
  let bStr: number[];
  if (folded) {
    kShape = [];
    aStr = [];
    bStr = [];
  } else {
    // Drop batch dims of size 1; they change no offsets.
    const keep = batch.map((d, i) => (d !== 1 ? i : -1)).filter((i) => i >= 0);
    const aS = batchStrides(aB, batch, M * K);
    const bS = batchStrides(bB, batch, K * N);
    kShape = keep.map((i) => batch[i]!);
    aStr = keep.map((i) => aS[i]!);
    bStr = keep.map((i) => bS[i]!);
    if (kShape.length > MM_MAX_BATCH_DIMS) {
      throw new Error(`kinkless: ${op}: at most ${MM_MAX_BATCH_DIMS} non-trivial batch dims are supported, got y batch shape ${shapeStr(batch)}`);
    }
  }
  return { M, N, K, batch, yShape, kShape, aStr, bStr, folded };
}

/** y = op(a) · op(b) (+ bias) with no autograd. Batch dims broadcast. */
export function matmulRaw(a: Tensor, b: Tensor, o: MatmulRawOptions = {}): Tensor {
  return matmulLaunch(a, b, o, undefined).y;
}

/**
 * y = act(op(a) · op(b) + bias) with the activation epilogue of `fused` (no autograd); with
 * fused.saveZ also z = op(a) · op(b) + bias from the same registers (the pre-activation a
 * fused backward needs), else z is null.
 */
export function matmulAct(a: Tensor, b: Tensor, o: MatmulRawOptions, fused: FusedAct): { y: Tensor; z: Tensor | null } {
  return matmulLaunch(a, b, o, fused);
}

function matmulLaunch(a: Tensor, b: Tensor, o: MatmulRawOptions, act: FusedAct | undefined): { y: Tensor; z: Tensor | null } {
  const op = 'matmul';
  const device = assertSameDevice(op, a, b, ...(o.bias ? [o.bias] : []));
  if ((o as { act?: unknown }).act !== undefined) throw new Error(`kinkless: ${op}: option act (a WGSL epi_act string) was removed; pass the activation to matmulAct(a, b, o, { spec, saveZ })`);
  if (o.kernel !== undefined && !MATMUL_KERNELS.includes(o.kernel)) throw new Error(`kinkless: ${op}: kernel must be one of ${MATMUL_KERNELS.join(', ')}, got "${String(o.kernel)}"`);
  const p = plan(op, a, b, o);
  const M = p.folded ? p.M * shapeSize(a.shape.slice(0, -2)) : p.M;
  const { N, K } = p;
  if (o.bias) {
    if (o.bias.dtype !== 'f32' || o.bias.size !== N || o.bias.rank !== 1) {
      throw new Error(`kinkless: ${op}: bias must be an f32 vector of shape [${N}] (N = y's last dim), got ${o.bias.dtype} ${shapeStr(o.bias.shape)}`);
    }
  }
  const saveZ = act?.saveZ ?? false;
  const y = alloc(device, p.yShape);
  const z = saveZ ? alloc(device, p.yShape, 'f32', 'matmul pre-activation') : null;
  if (y.size === 0) return { y, z };
  const nb = shapeSize(p.kShape);
  if (nb > MAX_GROUPS) throw new Error(`kinkless: ${op}: batch of ${nb} matrices exceeds ${MAX_GROUPS} (y shape ${shapeStr(p.yShape)})`);
  const requested = o.kernel === undefined || o.kernel === 'auto' ? (envKernel() ?? 'auto') : o.kernel;
  const choice = chooseMatmulKernel({ M, N, K, batch: nb, transA: o.transA, transB: o.transB }, device, requested, o);
  const split = choice.kernel === 'subgroup' ? choice.split : 1;
  const bias = !!o.bias;
  const epi = epilogueLaunch(op, act, split > 1 ? splitKEpilogueBinding({ bias, saveZ }) : matmulEpilogueBinding({ bias, saveZ }));
  const epiBindings = epi?.buffers.length ?? 0;
  const pad = MM_MAX_BATCH_DIMS - p.kShape.length;
  const bshape = [...new Array<number>(pad).fill(1), ...p.kShape];
  const astr = [...new Array<number>(pad).fill(0), ...p.aStr];
  const bstr = [...new Array<number>(pad).fill(0), ...p.bStr];
  const tA = !!o.transA;
  const tB = !!o.transB;
  const info = {
    op,
    geometry: `M${M} K${K} N${N}${nb > 1 ? ` x${nb}` : ''}${tA ? ' tA' : ''}${tB ? ' tB' : ''}`,
    flops: 2 * M * N * K * nb,
    bytes: 4 * (a.size + b.size + y.size + (z ? z.size : 0)),
  };
  const flags = { transA: tA, transB: tB, bias, act: epi?.act, saveZ, epiBindings };
  const vecB = (tB ? K : N) % 4 === 0;
  const vecY = N % 4 === 0;
  const outBufs = [...(o.bias ? [o.bias.buffer] : []), y.buffer, ...(z ? [z.buffer] : []), ...(epi?.buffers ?? [])];
  const uniforms = (kWord: number) => {
    const un = new Uniforms().u32(M, N, K, kWord).u32(...bshape).u32(...astr).u32(...bstr);
    if (epi && split === 1) un.f32(...epi.uniformF32);
    return un.bytes();
  };
  const checkGrid = (g: [number, number, number]) => {
    if (g[0] > MAX_GROUPS || g[1] > MAX_GROUPS || g[2] > MAX_GROUPS) throw new Error(`kinkless: ${op}: output [${M}, ${N}] x ${nb} needs more than ${MAX_GROUPS} workgroups per dimension`);
    return g;
  };
  if (choice.kernel !== 'subgroup') {
    let kernel: Kernel;
    let groups: [number, number, number];
    if (choice.kernel === 'naive') {
      kernel = matmulNaiveKernel(flags);
      groups = [Math.ceil(N / 16), Math.ceil(M / 16), nb];
    } else if (choice.kernel === 'tiled') {
      kernel = matmulTiledKernel(flags);
      groups = [Math.ceil(N / MM_TILE), Math.ceil(M / MM_TILE), nb];
    } else {
      const tm = o.tm ?? MM_FAST_DEFAULTS.tm;
      const tn = o.tn ?? MM_FAST_DEFAULTS.tn;
      const wg = o.wg ?? MM_FAST_DEFAULTS.wg;
      kernel = matmulFastKernel({ ...flags, tm, tn, wg, vecA: tA ? M % 4 === 0 && tm % 4 === 0 : K % 4 === 0, vecB, vecY });
      groups = [Math.ceil(N / (tn * wg[0])), Math.ceil(M / (tm * wg[1])), nb];
    }
    device.dispatch({ kernel, buffers: [a.buffer, b.buffer, ...outBufs], uniforms: uniforms(0), workgroups: checkGrid(groups), info });
    return { y, z };
  }
  const { tile } = choice;
  const [tileM, tileN] = sgTile({ lanes: SG_LANES, ...tile });
  // NOTE: which batch dims exceed 1 is baked into the subgroup kernel (SgMatmulParams.batchDims).
  const sg = { lanes: SG_LANES, ...tile, transA: tA, transB: tB, vecA: !tA && K % 4 === 0, vecB, vecY, batchDims: bshape.map((d) => d > 1) };
  const gx = Math.ceil(N / tileN);
  const gy = Math.ceil(M / tileM);
  if (split === 1) {
    const kernel = matmulSgKernel({ ...sg, ...flags, act: epi?.act, splitK: false });
    device.dispatch({ kernel, buffers: [a.buffer, b.buffer, ...outBufs], uniforms: uniforms(0), workgroups: checkGrid([gx, gy, nb]), info });
    return { y, z };
  }
  // Split-K: S partial products over K slices of KS (a multiple of the lane count), then one
  // reduce that sums them and applies bias and the epilogue.
  const KS = Math.ceil(K / split / SG_LANES) * SG_LANES;
  const S = Math.ceil(K / KS);
  const partial = alloc(device, [nb * S, M, N], 'f32', 'matmul split-K partials');
  const kernel = matmulSgKernel({ ...sg, transA: tA, transB: tB, bias: false, saveZ: false, epiBindings: 0, splitK: true });
  device.dispatch({ kernel, buffers: [a.buffer, b.buffer, partial.buffer], uniforms: uniforms(KS), workgroups: checkGrid([gx, gy, nb * S]), info: { ...info, geometry: `${info.geometry} splitK ${S}` } });
  const vec = vecY;
  const threads = (nb * M * N) / (vec ? 4 : 1);
  const g = grid1d(threads, SPLITK_WG);
  const ru = new Uniforms().u32(threads, M * N, N, S, g.gx, 0, 0, 0);
  if (epi) ru.f32(...epi.uniformF32);
  const red = splitKReduceKernel({ vec, bias, act: epi?.act, saveZ, epiBindings });
  device.dispatch({ kernel: red, buffers: [partial.buffer, ...outBufs], uniforms: ru.bytes(), workgroups: g.workgroups, info: { op, geometry: `${info.geometry} reduce ${S}`, flops: nb * M * N * S, bytes: 4 * (partial.size + y.size) } });
  partial.dispose();
  return { y, z };
}

/** Reduce g to `shape` over broadcast batch dims, disposing g when a reduction was needed. */
function reduceTo(g: Tensor, shape: Shape): Tensor {
  if (g.rank === shape.length && g.shape.every((d, i) => d === shape[i])) return g;
  if (g.size === shapeSize(shape)) {
    const v = g.view(shape);
    g.dispose();
    return v;
  }
  const r = sumToShape(g, shape);
  g.dispose();
  return r;
}

/** Flatten the batch of a matrix-stack tensor into its rows: [..., R, C] -> [prod * R, C]. */
function rowsView(t: Tensor): Tensor {
  return t.view([shapeSize(t.shape.slice(0, -1)), t.shape[t.rank - 1]!]);
}

/**
 * Batched matmul: a [..., M, K] (or [..., K, M] with transA) times b [..., K, N] (or
 * [..., N, K] with transB) -> [..., M, N]; batch dims broadcast (numpy rules).
 * Backward: dA = dY·B^T, dB = A^T·dY via transpose flags, summed over broadcast batch dims.
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const tA = !!opts.transA;
  const tB = !!opts.transB;
  const y = matmulRaw(a, b, { transA: tA, transB: tB });
  if (!isGradEnabled() || !(a.requiresGrad || b.requiresGrad)) return y;
  const aShape = a.shape;
  const bShape = b.shape;
  const bShared = bShape.slice(0, -2).every((d) => d === 1) && aShape.length > 2;
  record(y, 'matmul', [a, b], (dy) => {
    let da: Tensor | null = null;
    let db: Tensor | null = null;
    if (a.requiresGrad) {
      da = tA ? matmulRaw(b, dy, { transA: tB, transB: true }) : matmulRaw(dy, b, { transB: !tB });
      da = reduceTo(da, aShape);
    }
    if (b.requiresGrad) {
      if (bShared && !tA) {
        // b is shared across a's batch: one product over the stacked rows of a and dy.
        const af = rowsView(a);
        const df = rowsView(dy);
        const g = tB ? matmulRaw(df, af, { transA: true }) : matmulRaw(af, df, { transA: true });
        af.dispose();
        df.dispose();
        db = reduceTo(g, bShape);
      } else {
        db = tB ? matmulRaw(dy, a, { transA: true, transB: tA }) : matmulRaw(a, dy, { transA: !tA });
        db = reduceTo(db, bShape);
      }
    }
    return [da, db];
  });
  return y;
}

/** Shape checks shared by linear and linearAct; returns [out, in]. */
export function checkLinearShapes(op: string, x: Tensor, w: Tensor, b?: Tensor | null): [number, number] {
  if (w.rank !== 2) throw new Error(`kinkless: ${op}: w must have rank 2 [out, in], got shape ${shapeStr(w.shape)}`);
  if (x.rank < 1) throw new Error(`kinkless: ${op}: x must have rank >= 1 [..., in], got shape ${shapeStr(x.shape)}`);
  const [out, inF] = w.shape as [number, number];
  const xin = x.shape[x.rank - 1]!;
  if (xin !== inF) throw new Error(`kinkless: ${op}: x's last dim ${xin} (x shape ${shapeStr(x.shape)}) must equal w's in-features ${inF} (w shape ${shapeStr(w.shape)} = [out, in])`);
  if (b && (b.rank !== 1 || b.shape[0] !== out)) throw new Error(`kinkless: ${op}: b must have shape [${out}] (w's out-features), got ${shapeStr(b.shape)}`);
  return [out, inF];
}

/**
 * y = x · w^T + b with x [..., in], w [out, in] (PyTorch layout), b [out] -> [..., out].
 * Backward: dx = dy·w, dw = dy^T·x, db = sum of dy over rows.
 */
export function linear(x: Tensor, w: Tensor, b?: Tensor | null): Tensor {
  const op = 'linear';
  assertSameDevice(op, x, w, ...(b ? [b] : []));
  const [out, inF] = checkLinearShapes(op, x, w, b);
  const inputs = b ? [x, w, b] : [x, w];
  const needGrad = isGradEnabled() && inputs.some((t) => t.requiresGrad);
  const rows = x.size / inF || 0;
  const x2 = x.view([rows, inF]);
  const y2 = matmulRaw(x2, w, { transB: true, bias: b ?? undefined });
  x2.dispose();
  const yShape = [...x.shape.slice(0, -1), out];
  const y = y2.view(yShape);
  y2.dispose();
  if (!needGrad) return y;
  const xShape = x.shape;
  record(y, op, inputs, (dy) => {
    const d2 = dy.view([rows, out]);
    let dx: Tensor | null = null;
    let dw: Tensor | null = null;
    let db: Tensor | null = null;
    if (x.requiresGrad) {
      const g = matmulRaw(d2, w);
      dx = g.view(xShape);
      g.dispose();
    }
    if (w.requiresGrad) {
      const xv = x.view([rows, inF]);
      dw = matmulRaw(d2, xv, { transA: true });
      xv.dispose();
    }
    if (b && b.requiresGrad) db = sumToShape(d2, [out]);
    d2.dispose();
    return b ? [dx, dw, db] : [dx, dw];
  });
  return y;
}
