// Batched matmul and linear (x·w^T + b) with autograd. Every product, forward and
// backward, is one launch of the register-blocked kernel in kernels/matmul.ts with
// transpose flags (no transpose copies). matmulRaw is the no-autograd entry point that
// also exposes the bias + activation epilogue and the kernel choice (benchmarks, fused ops).
import { Tensor, assertSameDevice, shapeSize, shapeStr, type Shape } from '../tensor.ts';
import { isGradEnabled, record } from '../autograd.ts';
import { broadcastShapes } from '../../kernels/elementwise.ts';
import { MM_FAST_DEFAULTS, MM_MAX_BATCH_DIMS, MM_TILE, matmulEpilogueBinding, matmulNaiveWgsl, matmulTiledWgsl, matmulWgsl } from '../../kernels/matmul.ts';
import { Uniforms, alloc } from './launch.ts';
import { sumToShape } from './reduce.ts';
import { epilogueLaunch, type FusedAct } from './epilogue.ts';

export interface MatmulOptions {
  /** a is [..., K, M]: use its transpose. */
  transA?: boolean;
  /** b is [..., N, K]: use its transpose. */
  transB?: boolean;
}

export type MatmulKernel = 'fast' | 'naive' | 'tiled';

export interface MatmulRawOptions extends MatmulOptions {
  /** Bias of shape [N], added to every row before the activation. */
  bias?: Tensor;
  /** WGSL defining `fn epi_act(z: f32) -> f32`, applied in-register before the store. */
  act?: string;
  /** Kernel choice (default 'fast'); 'naive' is the baseline, 'tiled' the shared-memory variant. */
  kernel?: MatmulKernel;
  /** Rows per thread of the fast kernel (default MM_FAST_DEFAULTS). */
  tm?: 1 | 2 | 4 | 8;
  /** Columns per thread of the fast kernel (default MM_FAST_DEFAULTS). */
  tn?: 4 | 8;
  /** Workgroup size of the fast kernel (default MM_FAST_DEFAULTS). */
  wg?: [number, number];
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

/** y = op(a) · op(b) (+ bias, then act) with no autograd. Batch dims broadcast. */
export function matmulRaw(a: Tensor, b: Tensor, o: MatmulRawOptions = {}): Tensor {
  return matmulLaunch(a, b, o, o.act).y;
}

/**
 * y = act(op(a) · op(b) + bias) with the activation epilogue of `fused` (no autograd); with
 * fused.saveZ also z = op(a) · op(b) + bias from the same registers (the pre-activation a
 * fused backward needs), else z is null. `o.act` must be unset.
 */
export function matmulAct(a: Tensor, b: Tensor, o: MatmulRawOptions, fused: FusedAct): { y: Tensor; z: Tensor | null } {
  if (o.act !== undefined) throw new Error('kinkless: matmulAct: pass the activation in `fused`, not o.act');
  return matmulLaunch(a, b, o, fused);
}

function matmulLaunch(a: Tensor, b: Tensor, o: MatmulRawOptions, act: string | FusedAct | undefined): { y: Tensor; z: Tensor | null } {
  const op = 'matmul';
  const device = assertSameDevice(op, a, b, ...(o.bias ? [o.bias] : []));
  const p = plan(op, a, b, o);
  const M = p.folded ? p.M * shapeSize(a.shape.slice(0, -2)) : p.M;
  const { N, K } = p;
  if (o.bias) {
    if (o.bias.dtype !== 'f32' || o.bias.size !== N || o.bias.rank !== 1) {
      throw new Error(`kinkless: ${op}: bias must be an f32 vector of shape [${N}] (N = y's last dim), got ${o.bias.dtype} ${shapeStr(o.bias.shape)}`);
    }
  }
  const saveZ = typeof act === 'object' && act.saveZ;
  const epi = epilogueLaunch(op, act, matmulEpilogueBinding({ bias: !!o.bias, saveZ }));
  const y = alloc(device, p.yShape);
  const z = saveZ ? alloc(device, p.yShape, 'f32', 'matmul pre-activation') : null;
  if (y.size === 0) return { y, z };
  const nb = shapeSize(p.kShape);
  if (nb > MAX_GROUPS) throw new Error(`kinkless: ${op}: batch of ${nb} matrices exceeds ${MAX_GROUPS} (y shape ${shapeStr(p.yShape)})`);
  const pad = MM_MAX_BATCH_DIMS - p.kShape.length;
  const bshape = [...new Array<number>(pad).fill(1), ...p.kShape];
  const astr = [...new Array<number>(pad).fill(0), ...p.aStr];
  const bstr = [...new Array<number>(pad).fill(0), ...p.bStr];
  const un = new Uniforms().u32(M, N, K, 0).u32(...bshape).u32(...astr).u32(...bstr);
  if (epi) un.f32(...epi.uniformF32);
  const uni = un.bytes();
  const kernel = o.kernel ?? 'fast';
  const flags = { transA: o.transA, transB: o.transB, bias: !!o.bias, act: epi?.act, saveZ };
  let wgsl: string;
  let groups: [number, number, number];
  if (kernel === 'naive') {
    wgsl = matmulNaiveWgsl(flags);
    groups = [Math.ceil(N / 16), Math.ceil(M / 16), nb];
  } else if (kernel === 'tiled') {
    wgsl = matmulTiledWgsl(flags);
    groups = [Math.ceil(N / MM_TILE), Math.ceil(M / MM_TILE), nb];
  } else {
    const tm = o.tm ?? MM_FAST_DEFAULTS.tm;
    const tn = o.tn ?? MM_FAST_DEFAULTS.tn;
    const wg = o.wg ?? MM_FAST_DEFAULTS.wg;
    wgsl = matmulWgsl({
      ...flags,
      tm,
      tn,
      wg,
      vecA: (o.transA ? M % 4 === 0 && tm % 4 === 0 : K % 4 === 0),
      vecB: (o.transB ? K : N) % 4 === 0,
      vecY: N % 4 === 0,
    });
    groups = [Math.ceil(N / (tn * wg[0])), Math.ceil(M / (tm * wg[1])), nb];
  }
  if (groups[0] > MAX_GROUPS || groups[1] > MAX_GROUPS) throw new Error(`kinkless: ${op}: output [${M}, ${N}] needs more than ${MAX_GROUPS} workgroups per dimension`);
  const buffers = [a.buffer, b.buffer, ...(o.bias ? [o.bias.buffer] : []), y.buffer, ...(z ? [z.buffer] : []), ...(epi?.buffers ?? [])];
  const name = `${kernel === 'fast' ? 'matmul' : `matmul_${kernel}`}${typeof act === 'object' ? '_act' : ''}`;
  device.dispatch({ name, wgsl, buffers, uniforms: uni, workgroups: groups });
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

export interface LinearOptions {
  /**
   * WGSL defining `fn epi_act(z: f32) -> f32`, fused into the store. Forward only: when a
   * gradient is needed use linearAct (engine/ops/fused.ts), which records a fused backward.
   */
  act?: string;
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
export function linear(x: Tensor, w: Tensor, b?: Tensor | null, opts: LinearOptions = {}): Tensor {
  const op = 'linear';
  assertSameDevice(op, x, w, ...(b ? [b] : []));
  const [out, inF] = checkLinearShapes(op, x, w, b);
  const inputs = b ? [x, w, b] : [x, w];
  const needGrad = isGradEnabled() && inputs.some((t) => t.requiresGrad);
  if (opts.act && needGrad) {
    throw new Error(`kinkless: ${op}: a fused act epilogue has no backward here; call it under noGrad or use matmulRaw and record the activation's backward`);
  }
  const rows = x.size / inF || 0;
  const x2 = x.view([rows, inF]);
  const y2 = matmulRaw(x2, w, { transB: true, bias: b ?? undefined, act: opts.act });
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
