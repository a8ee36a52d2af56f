// The one conv2d backward (used by conv2d and by the fused conv2dAct of engine/ops/fused.ts):
// dx, dw and db from the output gradient, each by the implementation the run resolves for
// its direction (conv2d_plan.ts), the filter gradient reusing the forward's im2col when
// the forward kept one. Also the no-autograd dx / dw launches.
import type { Tensor } from '../tensor.ts';
import type { ConvGeom } from '../../kernels/conv2d_common.ts';
import { sum } from './reduce.ts';
import { directBackwardFilter, directBackwardInput } from './conv2d_direct.ts';
import { gemmBackwardFilter, gemmBackwardInput, type KeptIm2col } from './conv2d_gemm.ts';
import { convRun, resolveImpl, type Conv2dOptions, type ConvImpl, type ConvRun } from './conv2d_plan.ts';

/** What a conv forward leaves for its backward. */
export interface ConvSaved {
  x: Tensor;
  w: Tensor;
  b: Tensor | null;
  p: ConvGeom;
  run: ConvRun;
  /** The forward's im2col of the whole batch, when it kept it for dw (freed after its use). */
  kept: KeptIm2col | null;
}

/** Input gradient dx [N, C, H, W] from dy [N, O, OH, OW] (no autograd). `o`: an impl or the run options. */
export function conv2dBackwardInput(dy: Tensor, w: Tensor, p: ConvGeom, o: ConvImpl | Conv2dOptions | ConvRun = 'auto'): Tensor {
  const run = convRun('conv2d', o);
  const impl = resolveImpl(p, 'dx', run, dy.device);
  return impl === 'gemm' ? gemmBackwardInput(dy, w, p, run) : directBackwardInput(dy, w, p, impl, run.bakeGeometry);
}

/** Filter gradient dw [O, Cg, KH, KW] from dy and x (no autograd); `kept`: the forward's im2col, if it kept one. */
export function conv2dBackwardFilter(dy: Tensor, x: Tensor, p: ConvGeom, o: ConvImpl | Conv2dOptions | ConvRun = 'auto', kept: KeptIm2col | null = null): Tensor {
  const run = convRun('conv2d', o);
  const impl = resolveImpl(p, 'dw', run, dy.device);
  return impl === 'gemm' ? gemmBackwardFilter(dy, x, p, run, kept).dw : directBackwardFilter(dy, x, p, impl);
}

/**
 * Gradients [dx, dw, (db when there is a bias)] of a conv forward from its output
 * gradient dy (null: none flows, all null), each only where its input requires a gradient.
 * NOTE: the kept im2col is used once and freed at once (it is the largest temporary of
 * the step); a second backward through the same forward rebuilds it.
 */
export function conv2dBackward(dy: Tensor | null, s: ConvSaved): (Tensor | null)[] {
  const { x, w, b, p, run } = s;
  const kept = s.kept && !s.kept.col.isDisposed ? s.kept : null;
  const dx = dy && x.requiresGrad ? conv2dBackwardInput(dy, w, p, run) : null;
  const wantDb = !!(dy && b && b.requiresGrad);
  let dw: Tensor | null = null;
  let db: Tensor | null = null;
  if (dy && w.requiresGrad) {
    const impl = resolveImpl(p, 'dw', run, dy.device);
    if (impl === 'gemm') {
      // NOTE: the GEMM filter gradient also yields db when its im2col has a ones column.
      const r = gemmBackwardFilter(dy, x, p, run, kept, wantDb);
      dw = r.dw;
      db = r.db;
    } else {
      dw = directBackwardFilter(dy, x, p, impl);
    }
  }
  if (kept) kept.col.dispose();
  const grads = [dx, dw];
  if (b) grads.push(wantDb ? (db ?? sum(dy!, [0, 2, 3])) : null);
  return grads;
}
