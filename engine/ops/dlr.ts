// The DLR loss (difference of logits ratio) of logits [N, C] against labels [N], untargeted
// or targeted, per example, with autograd. The attacks of AutoAttack maximise it
// (docs/autoattack.md). Kernels: kernels/dlr.ts.
import { Tensor, assertSameDevice, shapeStr } from '../tensor.ts';
import { record } from '../autograd.ts';
import { DLR_WG, dlrKernel, rankClassKernel } from '../../kernels/dlr.ts';
import { grid1d } from '../../kernels/elementwise.ts';
import { Uniforms, alloc } from './launch.ts';

export interface DlrOptions {
  /** Target classes i32 [N]: the targeted DLR loss (needs C >= 4). Default: untargeted (C >= 3). */
  targets?: Tensor | null;
}

/**
 * Per-example DLR losses [N]:
 *   untargeted  -(z_y - max_{i != y} z_i) / (z_(1) - z_(3) + 1e-12)
 *   targeted    -(z_y - z_t) / (z_(1) - (z_(3) + z_(4)) / 2 + 1e-12)
 * with z_(k) the k-th largest logit. Labels outside [0, C) are not checked (no readback).
 */
export function dlrLoss(logits: Tensor, labels: Tensor, opts: DlrOptions = {}): Tensor {
  const op = 'dlrLoss';
  const t = opts.targets ?? null;
  assertSameDevice(op, logits, labels, ...(t ? [t] : []));
  if (logits.dtype !== 'f32' || logits.rank !== 2) throw new Error(`kinkless: ${op}: logits must be an f32 tensor [N, C], got ${logits.dtype} ${shapeStr(logits.shape)}`);
  const [N, C] = logits.shape as [number, number];
  for (const [name, v] of [['labels', labels], ['targets', t]] as const) {
    if (v && (v.dtype !== 'i32' || v.rank !== 1 || v.shape[0] !== N)) {
      throw new Error(`kinkless: ${op}: ${name} must be an i32 tensor [${N}] to match logits ${shapeStr(logits.shape)}, got ${v.dtype} ${shapeStr(v.shape)}`);
    }
  }
  const need = t ? 4 : 3;
  if (C < need) throw new Error(`kinkless: ${op}: the ${t ? 'targeted ' : ''}DLR loss needs at least ${need} classes, got logits ${shapeStr(logits.shape)}`);
  const device = logits.device;
  const targeted = !!t;
  const loss = alloc(device, [N]);
  const extra = t ? [t.buffer] : [];
  const info = { op: 'dlr_loss', geometry: `N${N} C${C}${targeted ? ' targeted' : ''}`, bytes: 4 * (N * C + 3 * N) };
  if (N > 0) {
    const g = grid1d(N, DLR_WG);
    device.dispatch({
      kernel: dlrKernel({ targeted, backward: false }),
      buffers: [logits.buffer, labels.buffer, ...extra, loss.buffer],
      uniforms: new Uniforms().u32(N, C, g.gx).f32(1).bytes(),
      workgroups: g.workgroups,
      info,
    });
  }
  return record(loss, 'dlr_loss', [logits], (dy) => {
    const dx = alloc(device, logits.shape);
    if (N === 0) return [dx];
    const g = grid1d(N, DLR_WG);
    device.dispatch({
      kernel: dlrKernel({ targeted, backward: true }),
      buffers: [logits.buffer, labels.buffer, ...extra, dy.buffer, dx.buffer],
      uniforms: new Uniforms().u32(N, C, g.gx).f32(1).bytes(),
      workgroups: g.workgroups,
      info: { ...info, op: 'dlr_loss_backward', bytes: 4 * (2 * N * C + 4 * N) },
    });
    return [dx];
  });
}

/** Per row of logits [N, C], the index (i32 [N]) of the k-th largest logit (k = 1: argmax; ties to the lower index). */
export function rankedClass(logits: Tensor, k: number): Tensor {
  const op = 'rankedClass';
  assertSameDevice(op, logits);
  if (logits.dtype !== 'f32' || logits.rank !== 2) throw new Error(`kinkless: ${op}: logits must be an f32 tensor [N, C], got ${logits.dtype} ${shapeStr(logits.shape)}`);
  const [N, C] = logits.shape as [number, number];
  if (!Number.isInteger(k) || k < 1 || k > C) throw new Error(`kinkless: ${op}: k must be an integer in [1, ${C}] for logits ${shapeStr(logits.shape)}, got ${String(k)}`);
  const out = alloc(logits.device, [N], 'i32');
  if (N === 0) return out;
  const g = grid1d(N, DLR_WG);
  logits.device.dispatch({
    kernel: rankClassKernel({}),
    buffers: [logits.buffer, out.buffer],
    uniforms: new Uniforms().u32(N, C, g.gx, k).bytes(),
    workgroups: g.workgroups,
    info: { op: 'ranked_class', geometry: `N${N} C${C} k${k}`, bytes: 4 * (N * C + N) },
  });
  return out;
}
