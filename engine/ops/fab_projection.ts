// FAB's box-constrained projection onto a hyperplane, per example (kernels/fab_projection.ts):
// the smallest L-inf or L2 step d with w.d = -c and p + d in [lo, hi]. Not differentiable
// (FAB uses it on detached tensors). Nothing here reads back.
import { Tensor, assertSameDevice, shapeStr } from '../tensor.ts';
import { fabProjectionKernel, type FabProjNorm } from '../../kernels/fab_projection.ts';
import { grid1d } from '../../kernels/elementwise.ts';
import { Uniforms, alloc } from './launch.ts';

export interface FabProjectionOptions {
  norm: FabProjNorm;
  /** The box [lo, hi]: finite, lo < hi, hi - lo <= 1e15. */
  bounds: readonly [number, number];
}

/**
 * Per example i of p [M, ...]: the step d (shaped like p) of least L-inf or L2 norm with
 *   sum_j w[i, j] d[i, j] = -c[i]  and  lo <= p[i, j] + d[i, j] <= hi,
 * i.e. the projection of p onto the hyperplane {z : w.(z - p) + c = 0} inside the box
 * (for a hyperplane {z : w.z + b = 0} pass c = w.p + b). For L-inf the optimum is not
 * unique; the one returned moves every coordinate of nonzero weight by min(lambda, room).
 * Infeasible rows (the hyperplane misses the box) get the box corner nearest to it:
 * d_j = the whole room towards the hyperplane for every coordinate of nonzero weight.
 * c = 0 or w = 0 gives d = 0. p must lie in the box (not checked: no readback); a coordinate
 * outside it gets no room to move further out.
 */
export function fabProjection(p: Tensor, w: Tensor, c: Tensor, opts: FabProjectionOptions): Tensor {
  const op = 'fabProjection';
  assertSameDevice(op, p, w, c);
  for (const [nm, t] of [['p', p], ['w', w], ['c', c]] as const) {
    if (t.dtype !== 'f32') throw new Error(`kinkless: ${op}: ${nm} must be f32, got an ${t.dtype} tensor of shape ${shapeStr(t.shape)}`);
  }
  if (p.rank < 2) throw new Error(`kinkless: ${op}: p must be a batch [M, ...] of rank >= 2, got ${shapeStr(p.shape)}`);
  if (w.rank !== p.rank || w.shape.some((v, i) => v !== p.shape[i])) throw new Error(`kinkless: ${op}: w must have p's shape ${shapeStr(p.shape)}, got ${shapeStr(w.shape)}`);
  const M = p.shape[0]!;
  if (c.size !== M || c.shape[0] !== M) throw new Error(`kinkless: ${op}: c must hold one value per example ([${M}] or [${M}, 1, ...]), got ${shapeStr(c.shape)}`);
  const norm = opts?.norm;
  if (norm !== 'linf' && norm !== 'l2') throw new Error(`kinkless: ${op}: norm must be 'linf' or 'l2', got ${JSON.stringify(norm)}`);
  const b = opts.bounds;
  if (!Array.isArray(b) || b.length !== 2 || !Number.isFinite(b[0]) || !Number.isFinite(b[1]) || !(b[0] < b[1]) || b[1] - b[0] > 1e15) {
    throw new Error(`kinkless: ${op}: bounds must be [lo, hi], finite, lo < hi, hi - lo <= 1e15, got ${JSON.stringify(b)}`);
  }
  const D = p.size / Math.max(M, 1);
  const out = alloc(p.device, p.shape);
  if (M === 0 || D === 0) return out;
  const g = grid1d(M, 1);
  p.device.dispatch({
    kernel: fabProjectionKernel({ norm }),
    buffers: [p.buffer, w.buffer, c.buffer, out.buffer],
    uniforms: new Uniforms().u32(M, D, g.gx, 0).f32(b[0], b[1]).bytes(),
    workgroups: g.workgroups,
    // 34 passes over w and p (max, Lambda, 32 bisection steps, the step); ~6 flops each.
    info: { op: 'fab_projection', geometry: `M${M} D${D} ${norm}`, flops: 34 * 6 * M * D, bytes: 4 * (3 * M * D + M) },
  });
  return out;
}
