// 2-D pooling ops over [N, C, H, W]: maxPool2d, avgPool2d and globalAvgPool2d, each with
// its backward recorded on the tape. Max pooling saves the argmax of each window (an i32
// tensor, only when a gradient is needed) and routes dy there; ties go to the first
// element of the window in row-major order, like PyTorch.
import { Tensor, assertSameDevice, shapeStr } from '../tensor.ts';
import { needsGrad, record } from '../autograd.ts';
import { avgPool2dBackwardKernel, avgPool2dKernel, maxPool2dBackwardKernel, maxPool2dKernel, POOL_WG } from '../../kernels/pool.ts';
import { grid1d } from '../../kernels/elementwise.ts';
import { Uniforms, alloc } from './launch.ts';
import { mean } from './reduce.ts';
import { reshape } from './reshape.ts';

/** A size for both spatial dims, or [height, width]. */
export type PoolSize = number | readonly [number, number];

export interface Pool2dOptions {
  kernel: PoolSize;
  /** Defaults to the kernel size. */
  stride?: PoolSize;
  /** Implicit padding on both sides of each spatial dim (at most half the kernel). Default 0. */
  padding?: PoolSize;
}

export interface AvgPool2dOptions extends Pool2dOptions {
  /** Divide by the full kernel area (true, the default) or only by the in-bounds count. */
  countIncludePad?: boolean;
}

/** Resolved pooling geometry of an [N, C, H, W] input. */
export interface Pool2dGeometry {
  N: number;
  C: number;
  H: number;
  W: number;
  OH: number;
  OW: number;
  KH: number;
  KW: number;
  SH: number;
  SW: number;
  PH: number;
  PW: number;
}

function pair(op: string, arg: string, v: PoolSize | undefined, min: number): [number, number] {
  const p: readonly number[] = typeof v === 'number' ? [v, v] : Array.isArray(v) ? v : [];
  if (p.length !== 2 || !p.every((d) => Number.isInteger(d) && d >= min)) {
    const got = Array.isArray(v) ? `[${v.join(', ')}]` : String(v);
    throw new Error(`kinkless: ${op}: ${arg} must be an integer >= ${min} or a pair of them, got ${got}`);
  }
  return [p[0]!, p[1]!];
}

/** Check arguments and compute the output size (throws naming the op and the bad argument). */
export function pool2dGeometry(op: string, x: Tensor, opts: Pool2dOptions): Pool2dGeometry {
  assertSameDevice(op, x);
  if (x.rank !== 4) throw new Error(`kinkless: ${op}: x must have rank 4 [N, C, H, W], got shape ${shapeStr(x.shape)}`);
  if (x.dtype !== 'f32') throw new Error(`kinkless: ${op}: x must be f32, got an ${x.dtype} tensor of shape ${shapeStr(x.shape)}`);
  if (opts === undefined || opts === null || typeof opts !== 'object') throw new Error(`kinkless: ${op}: options { kernel, stride?, padding? } are required, got ${String(opts)}`);
  const [KH, KW] = pair(op, 'kernel', opts.kernel, 1);
  const [SH, SW] = opts.stride === undefined ? [KH, KW] : pair(op, 'stride', opts.stride, 1);
  const [PH, PW] = opts.padding === undefined ? [0, 0] : pair(op, 'padding', opts.padding, 0);
  if (2 * PH > KH || 2 * PW > KW) {
    throw new Error(`kinkless: ${op}: padding [${PH}, ${PW}] must be at most half the kernel [${KH}, ${KW}]`);
  }
  const [N, C, H, W] = x.shape as [number, number, number, number];
  const OH = Math.floor((H + 2 * PH - KH) / SH) + 1;
  const OW = Math.floor((W + 2 * PW - KW) / SW) + 1;
  if (OH <= 0 || OW <= 0 || H === 0 || W === 0) {
    throw new Error(
      `kinkless: ${op}: output size [${OH}, ${OW}] is not positive for input ${shapeStr(x.shape)}, kernel [${KH}, ${KW}], stride [${SH}, ${SW}], padding [${PH}, ${PW}]`,
    );
  }
  return { N, C, H, W, OH, OW, KH, KW, SH, SW, PH, PW };
}

function geometryStr(g: Pool2dGeometry): string {
  return `N${g.N} C${g.C} H${g.H}x${g.W} -> ${g.OH}x${g.OW} k${g.KH}x${g.KW} s${g.SH}x${g.SW} p${g.PH}x${g.PW}`;
}

function uniforms(g: Pool2dGeometry, gx: number, includePad: boolean): ArrayBuffer {
  return new Uniforms().u32(g.N * g.C, g.H, g.W, g.OH, g.OW, g.KH, g.KW, g.SH, g.SW, g.PH, g.PW, gx, includePad ? 1 : 0).bytes();
}

/** Max pooling; the padding acts as -inf. The gradient goes to the (first) argmax of each window. */
export function maxPool2d(x: Tensor, opts: Pool2dOptions): Tensor {
  const g = pool2dGeometry('maxPool2d', x, opts);
  const device = x.device;
  const outShape = [g.N, g.C, g.OH, g.OW];
  const y = alloc(device, outShape);
  if (y.size === 0) return y;
  const withIndex = needsGrad([x]);
  const idx = withIndex ? alloc(device, outShape, 'i32') : null;
  const grid = grid1d(y.size, POOL_WG);
  const geometry = geometryStr(g);
  const nIn = x.size;
  const nOut = y.size;
  // NOTE: flops count one compare (max) or add (avg) per window element, windows clipped or not.
  const winFlops = nOut * g.KH * g.KW;
  device.dispatch({
    kernel: maxPool2dKernel({ withIndex }),
    info: { op: 'max_pool2d', geometry, flops: winFlops, bytes: 4 * (nIn + nOut * (withIndex ? 2 : 1)) },
    buffers: idx ? [x.buffer, y.buffer, idx.buffer] : [x.buffer, y.buffer],
    uniforms: uniforms(g, grid.gx, false),
    workgroups: grid.workgroups,
  });
  if (!idx) return y;
  // NOTE: idx is captured by the backward closure and freed with the enclosing scope.
  record(y, 'maxPool2d', [x], (dy) => {
    const dx = alloc(device, x.shape);
    const gb = grid1d(dx.size, POOL_WG);
    device.dispatch({
      kernel: maxPool2dBackwardKernel,
      info: { op: 'max_pool2d_backward', geometry, flops: winFlops, bytes: 4 * (2 * nOut + nIn) },
      buffers: [dy.buffer, idx.buffer, dx.buffer],
      uniforms: uniforms(g, gb.gx, false),
      workgroups: gb.workgroups,
    });
    return [dx];
  });
  return y;
}

/** Average pooling (countIncludePad = true divides by the kernel area, like PyTorch's default). */
export function avgPool2d(x: Tensor, opts: AvgPool2dOptions): Tensor {
  const g = pool2dGeometry('avgPool2d', x, opts);
  const includePad = opts.countIncludePad ?? true;
  if (typeof includePad !== 'boolean') throw new Error(`kinkless: avgPool2d: countIncludePad must be a boolean, got ${String(includePad)}`);
  const device = x.device;
  const y = alloc(device, [g.N, g.C, g.OH, g.OW]);
  if (y.size === 0) return y;
  const grid = grid1d(y.size, POOL_WG);
  const geometry = geometryStr(g);
  const nIn = x.size;
  const nOut = y.size;
  const winFlops = nOut * (g.KH * g.KW + 1);
  device.dispatch({
    kernel: avgPool2dKernel,
    info: { op: 'avg_pool2d', geometry, flops: winFlops, bytes: 4 * (nIn + nOut) },
    buffers: [x.buffer, y.buffer],
    uniforms: uniforms(g, grid.gx, includePad),
    workgroups: grid.workgroups,
  });
  record(y, 'avgPool2d', [x], (dy) => {
    const dx = alloc(device, x.shape);
    const gb = grid1d(dx.size, POOL_WG);
    device.dispatch({
      kernel: avgPool2dBackwardKernel,
      info: { op: 'avg_pool2d_backward', geometry, flops: 2 * nOut * g.KH * g.KW, bytes: 4 * (nOut + nIn) },
      buffers: [dy.buffer, dx.buffer],
      uniforms: uniforms(g, gb.gx, includePad),
      workgroups: gb.workgroups,
    });
    return [dx];
  });
  return y;
}

/** Mean over H and W: [N, C, H, W] -> [N, C] (or [N, C, 1, 1] with keepdims). */
export function globalAvgPool2d(x: Tensor, opts: { keepdims?: boolean } = {}): Tensor {
  assertSameDevice('globalAvgPool2d', x);
  if (x.rank !== 4) throw new Error(`kinkless: globalAvgPool2d: x must have rank 4 [N, C, H, W], got shape ${shapeStr(x.shape)}`);
  if (x.shape[2] === 0 || x.shape[3] === 0) throw new Error(`kinkless: globalAvgPool2d: x has an empty spatial dim, shape ${shapeStr(x.shape)}`);
  const [N, C] = x.shape as [number, number];
  // NOTE: reshaped explicitly: mean's long-row (chunked) path can return [N*C, 1] instead of [N, C].
  const m = mean(x, [2, 3], false);
  const y = reshape(m, opts.keepdims ? [N, C, 1, 1] : [N, C]);
  if (!y.node) m.dispose(); // y's view keeps the storage alive
  return y;
}
