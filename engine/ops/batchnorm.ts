// Batch normalisation: batchNorm2d over [N, C, H, W] and batchNorm1d over [N, C] or
// [N, C, L], forward and backward. Training mode normalises with the batch statistics
// (biased variance) and moves the running statistics in place on the GPU (unbiased
// variance, PyTorch's convention); eval mode normalises with the running statistics and
// updates nothing. The backward goes through the batch statistics in training mode and is
// the plain affine map in eval mode. Numerics are described in kernels/batchnorm.ts.
import { Tensor, assertSameDevice, shapeStr } from '../tensor.ts';
import { record } from '../autograd.ts';
import {
  BN_CH_WG,
  BN_SEG,
  BN_WG,
  batchnormBackwardKernel,
  batchnormBackwardReduceFinishKernel,
  batchnormBackwardReduceKernel,
  batchnormEvalStatsKernel,
  batchnormForwardKernel,
  batchnormStatsFinishKernel,
  batchnormStatsKernel,
} from '../../kernels/batchnorm.ts';
import type { DispatchInfo } from '../queue.ts';
import { grid1d } from '../../kernels/elementwise.ts';
import { Uniforms, alloc } from './launch.ts';

/** Running statistics, [C] each, updated in place in training mode. */
export interface RunningStats {
  mean: Tensor;
  var: Tensor;
}

export interface BatchNormOptions {
  /** true: batch statistics (and running-stat updates); false: running statistics. */
  training: boolean;
  /** Weight of the batch statistics in the running update. Default 0.1. */
  momentum?: number;
  /** Added to the variance before the square root. Default 1e-5. */
  eps?: number;
}


function checkVec(op: string, arg: string, t: unknown, C: number): void {
  if (t === null) return;
  if (!(t instanceof Tensor)) throw new Error(`kinkless: ${op}: ${arg} must be a Tensor of shape [${C}] or null, got ${String(t)}`);
  if (t.rank !== 1 || t.shape[0] !== C || t.dtype !== 'f32') {
    throw new Error(`kinkless: ${op}: ${arg} must be an f32 tensor of shape [${C}] (one value per channel), got ${t.dtype} ${shapeStr(t.shape)}`);
  }
}

/**
 * Segmentation of the M elements of each channel: P segments of SEG, one thread each.
 * NOTE: SEG grows past BN_SEG only to keep the per-channel combine loop under 4096 partials.
 */
function segments(M: number, C: number): { P: number; SEG: number; workgroups: [number, number] } {
  const SEG = Math.max(BN_SEG, Math.ceil(M / 4096));
  const P = Math.max(1, Math.ceil(M / SEG));
  if (C > 65535) throw new Error(`kinkless: batchNorm: at most 65535 channels are supported, got ${C}`);
  return { P, SEG, workgroups: [Math.ceil(P / BN_CH_WG), C] };
}

function ewGrid(x: Tensor, C: number, HW: number, invM: number): { vec4: boolean; workgroups: [number, number]; uniforms: ArrayBuffer } {
  const vec4 = HW % 4 === 0;
  const n = vec4 ? x.size / 4 : x.size;
  const g = grid1d(n, BN_WG);
  return { vec4, workgroups: g.workgroups, uniforms: new Uniforms().u32(n, C, HW, g.gx).f32(invM).bytes() };
}

/** Shared body of batchNorm1d/2d on an [N, C, HW] layout. */
function batchNorm(op: string, x: Tensor, N: number, C: number, HW: number, gamma: Tensor | null, beta: Tensor | null, running: RunningStats | null, opts: BatchNormOptions): Tensor {
  const device = assertSameDevice(op, x, ...[gamma, beta, running?.mean, running?.var].filter((t): t is Tensor => t instanceof Tensor));
  if (x.dtype !== 'f32') throw new Error(`kinkless: ${op}: x must be f32, got an ${x.dtype} tensor of shape ${shapeStr(x.shape)}`);
  if (opts === undefined || opts === null || typeof opts.training !== 'boolean') {
    throw new Error(`kinkless: ${op}: opts.training must be a boolean, got ${String(opts?.training)}`);
  }
  const { training } = opts;
  const momentum = opts.momentum ?? 0.1;
  const eps = opts.eps ?? 1e-5;
  if (typeof momentum !== 'number' || !(momentum >= 0 && momentum <= 1)) throw new Error(`kinkless: ${op}: momentum must be a number in [0, 1], got ${String(momentum)}`);
  if (typeof eps !== 'number' || !(eps > 0) || !Number.isFinite(eps)) throw new Error(`kinkless: ${op}: eps must be a finite number > 0, got ${String(eps)}`);
  checkVec(op, 'gamma', gamma, C);
  checkVec(op, 'beta', beta, C);
  if (running !== null) {
    if (typeof running !== 'object') throw new Error(`kinkless: ${op}: running must be { mean, var } or null, got ${String(running)}`);
    for (const k of ['mean', 'var'] as const) {
      if (running[k] === null) throw new Error(`kinkless: ${op}: running.${k} must be a Tensor of shape [${C}], got null`);
      checkVec(op, `running.${k}`, running[k], C);
    }
  } else if (!training) {
    throw new Error(`kinkless: ${op}: eval mode (training: false) needs running statistics, got running = null`);
  }
  const M = N * HW;
  if (training && M <= 1) {
    throw new Error(`kinkless: ${op}: training needs more than one value per channel (N*H*W > 1), got x of shape ${shapeStr(x.shape)}`);
  }
  const y = alloc(device, x.shape);
  if (x.size === 0) return y;

  // Per-channel statistics [shift, mean - shift, invstd].
  const stats = alloc(device, [3, C]);
  const chGroups: [number, number] = [Math.ceil(C / BN_CH_WG), 1];
  const sg = segments(M, C);
  const su = new Uniforms().u32(C, HW, M, sg.SEG, sg.P).bytes();
  const n = x.size;
  const geometry = `N${N} C${C} HW${HW}`;
  const info = (suffix: string, flops: number, bytes: number): DispatchInfo => ({ op: `${op}${suffix}`, geometry, flops, bytes });
  if (training) {
    const part = alloc(device, [C, sg.P, 2]);
    // flops: pass 1 subtracts and adds (2 per element), pass 2 subtracts twice, squares and adds (4).
    device.dispatch({ kernel: batchnormStatsKernel, info: info(' stats', 6 * n, 4 * (n + 2 * C * sg.P)), buffers: [x.buffer, part.buffer], uniforms: su, workgroups: sg.workgroups });
    const update = running !== null;
    const bufs = [x.buffer, part.buffer, stats.buffer];
    if (running) bufs.push(running.mean.buffer, running.var.buffer);
    device.dispatch({
      kernel: batchnormStatsFinishKernel({ update }),
      info: info(' stats_finish', 8 * C * sg.P, 4 * (2 * C * sg.P + 3 * C + (update ? 4 * C : 0))),
      buffers: bufs,
      uniforms: new Uniforms().u32(C, HW, M, sg.SEG, sg.P).f32(momentum, eps).bytes(),
      workgroups: chGroups,
    });
    part.dispose();
  } else {
    device.dispatch({
      kernel: batchnormEvalStatsKernel,
      info: info(' eval_stats', 3 * C, 4 * 5 * C),
      buffers: [running!.mean.buffer, running!.var.buffer, stats.buffer],
      uniforms: new Uniforms().u32(C).f32(eps).bytes(),
      workgroups: chGroups,
    });
  }
  const eg = ewGrid(x, C, HW, 1 / M);
  const fb = [x.buffer, stats.buffer];
  if (gamma) fb.push(gamma.buffer);
  if (beta) fb.push(beta.buffer);
  fb.push(y.buffer);
  device.dispatch({
    kernel: batchnormForwardKernel({ vec4: eg.vec4, gamma: gamma !== null, beta: beta !== null }),
    info: info('', (3 + (beta ? 1 : 0)) * n, 4 * (2 * n + 3 * C + (gamma ? C : 0) + (beta ? C : 0))),
    buffers: fb,
    uniforms: eg.uniforms,
    workgroups: eg.workgroups,
  });

  const inputs = [x, gamma, beta].filter((t): t is Tensor => t !== null);
  // NOTE: stats is captured by the backward closure and freed with the enclosing scope.
  record(y, op, inputs, (dy) => {
    const needX = x.requiresGrad;
    const needG = gamma?.requiresGrad ?? false;
    const needB = beta?.requiresGrad ?? false;
    let sdy: Tensor | null = null;
    let sdyx: Tensor | null = null;
    if ((training && needX) || needG || needB) {
      const part = alloc(device, [C, sg.P, 2]);
      device.dispatch({
        kernel: batchnormBackwardReduceKernel,
        info: info('_backward reduce', 5 * n, 4 * (2 * n + 3 * C + 2 * C * sg.P)),
        buffers: [x.buffer, dy.buffer, stats.buffer, part.buffer],
        uniforms: su,
        workgroups: sg.workgroups,
      });
      sdy = alloc(device, [C]);
      sdyx = alloc(device, [C]);
      device.dispatch({
        kernel: batchnormBackwardReduceFinishKernel,
        info: info('_backward reduce_finish', 2 * C * sg.P, 4 * (2 * C * sg.P + 2 * C)),
        buffers: [part.buffer, sdy.buffer, sdyx.buffer],
        uniforms: su,
        workgroups: chGroups,
      });
      part.dispose();
    }
    let dx: Tensor | null = null;
    if (needX) {
      dx = alloc(device, x.shape);
      const bufs = training ? [x.buffer, dy.buffer, stats.buffer] : [dy.buffer, stats.buffer];
      if (gamma) bufs.push(gamma.buffer);
      if (training) bufs.push(sdy!.buffer, sdyx!.buffer);
      bufs.push(dx.buffer);
      device.dispatch({
        kernel: batchnormBackwardKernel({ vec4: eg.vec4, gamma: gamma !== null, training }),
        info: info('_backward', (training ? 8 : 1) * n, 4 * ((training ? 3 : 2) * n + 3 * C + (gamma ? C : 0) + (training ? 2 * C : 0))),
        buffers: bufs,
        uniforms: eg.uniforms,
        workgroups: eg.workgroups,
      });
    }
    const dgamma = needG ? sdyx : null;
    const dbeta = needB ? sdy : null;
    if (!needG) sdyx?.dispose();
    if (!needB) sdy?.dispose();
    const grads: (Tensor | null)[] = [dx];
    if (gamma) grads.push(dgamma);
    if (beta) grads.push(dbeta);
    return grads;
  });
  if (!y.node) stats.dispose();
  return y;
}

/**
 * Batch normalisation of x [N, C, H, W] per channel. gamma/beta [C] (or null: no scale /
 * no shift). running {mean, var} [C] is read in eval mode and updated in place in training
 * mode (may be null in training mode: batch statistics only).
 */
export function batchNorm2d(x: Tensor, gamma: Tensor | null, beta: Tensor | null, running: RunningStats | null, opts: BatchNormOptions): Tensor {
  assertSameDevice('batchNorm2d', x);
  if (x.rank !== 4) throw new Error(`kinkless: batchNorm2d: x must have rank 4 [N, C, H, W], got shape ${shapeStr(x.shape)}`);
  const [N, C, H, W] = x.shape as [number, number, number, number];
  return batchNorm('batchNorm2d', x, N, C, H * W, gamma, beta, running, opts);
}

/** Batch normalisation of x [N, C] or [N, C, L] per channel C (same semantics as batchNorm2d). */
export function batchNorm1d(x: Tensor, gamma: Tensor | null, beta: Tensor | null, running: RunningStats | null, opts: BatchNormOptions): Tensor {
  assertSameDevice('batchNorm1d', x);
  if (x.rank !== 2 && x.rank !== 3) throw new Error(`kinkless: batchNorm1d: x must have rank 2 [N, C] or 3 [N, C, L], got shape ${shapeStr(x.shape)}`);
  const [N, C] = x.shape as [number, number];
  return batchNorm('batchNorm1d', x, N, C, x.rank === 3 ? x.shape[2]! : 1, gamma, beta, running, opts);
}
