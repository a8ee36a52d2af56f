// Softmax, log-softmax and the fused softmax cross-entropy loss (label smoothing, mean /
// sum / none reductions), each with its backward; label validation and a GPU-side count
// of correct predictions. Kernels and float64 references live in kernels/softmax_xent.ts.
import { Tensor, assertSameDevice, shapeSize, shapeStr } from '../tensor.ts';
import { record } from '../autograd.ts';
import { SX_WG, correctKernel, softmaxBackwardKernel, softmaxKernel, xentBackwardKernel, xentKernel } from '../../kernels/softmax_xent.ts';
import { grid1d } from '../../kernels/elementwise.ts';
import { Uniforms, alloc } from './launch.ts';
import { normAxes, sum } from './reduce.ts';
import { ELEMENTWISE } from '../../kernels/elementwise_ops.ts';
import { launchEw } from './ew_launch.ts';

function checkF32(op: string, arg: string, t: Tensor): void {
  assertSameDevice(op, t);
  if (t.dtype !== 'f32') throw new Error(`kinkless: ${op}: ${arg} must be f32, got an ${t.dtype} tensor of shape ${shapeStr(t.shape)}`);
}

/** [outer, R, inner] around `axis`. */
function rowsOf(op: string, x: Tensor, axis: number): { outer: number; R: number; inner: number } {
  if (x.rank === 0) throw new Error(`kinkless: ${op}: x must have rank >= 1, got a scalar`);
  const a = normAxes(op, axis, x.rank)[0]!;
  return { outer: shapeSize(x.shape.slice(0, a)), R: x.shape[a]!, inner: shapeSize(x.shape.slice(a + 1)) };
}

function softmaxLike(op: 'softmax' | 'log_softmax', x: Tensor, axis: number): Tensor {
  checkF32(op, 'x', x);
  const { outer, R, inner } = rowsOf(op, x, axis);
  const log = op === 'log_softmax';
  const device = x.device;
  const y = alloc(device, x.shape);
  const rows = outer * inner;
  const n = y.size;
  const geometry = `outer${outer} R${R} inner${inner}`;
  if (n > 0) {
    const g = grid1d(rows, SX_WG);
    const u = new Uniforms().u32(outer, R, inner, g.gx);
    // flops: online max/sum-exp (compare, subtract, exp, add: 4 per element) then the write (2 per element).
    const info = { op, geometry, flops: 6 * n, bytes: 8 * n };
    device.dispatch({ kernel: softmaxKernel({ log }), info, buffers: [x.buffer, y.buffer], uniforms: u.bytes(), workgroups: g.workgroups });
  }
  record(y, op, [x], (dy) => {
    const dx = alloc(device, x.shape);
    if (dx.size === 0) return [dx];
    const g = grid1d(rows, SX_WG);
    const u = new Uniforms().u32(outer, R, inner, g.gx);
    const info = { op: `${op}_backward`, geometry, flops: (log ? 4 : 5) * n, bytes: 12 * n };
    device.dispatch({ kernel: softmaxBackwardKernel({ log }), info, buffers: [y.buffer, dy.buffer, dx.buffer], uniforms: u.bytes(), workgroups: g.workgroups });
    return [dx];
  });
  return y;
}

/**
 * log(softmax(x)) along `axis`, computed as (x - max) - log(sum exp(x - max)).
 * Backward: dx = dy - softmax(x) * sum(dy) (from the saved output, exp(y) = softmax).
 */
export function logSoftmax(x: Tensor, axis = -1): Tensor {
  return softmaxLike('log_softmax', x, axis);
}

/** softmax along `axis`; backward dx = y * (dy - sum(dy * y)). */
export function softmax(x: Tensor, axis = -1): Tensor {
  return softmaxLike('softmax', x, axis);
}

export type Reduction = 'mean' | 'sum' | 'none';

export interface CrossEntropyOptions {
  /** PyTorch's label smoothing: target = (1 - ls) * onehot + ls / C. In [0, 1]; default 0. */
  labelSmoothing?: number;
  /** 'mean' (default, over the N examples), 'sum', or 'none' (per-example losses [N]). */
  reduction?: Reduction;
}

function checkLogitsLabels(op: string, logits: Tensor, labels: Tensor): { N: number; C: number } {
  assertSameDevice(op, logits, labels);
  if (logits.dtype !== 'f32' || logits.rank !== 2) throw new Error(`kinkless: ${op}: logits must be an f32 tensor [N, C], got ${logits.dtype} ${shapeStr(logits.shape)}`);
  const [N, C] = logits.shape as [number, number];
  if (labels.dtype !== 'i32' || labels.rank !== 1 || labels.shape[0] !== N) {
    throw new Error(`kinkless: ${op}: labels must be an i32 tensor [${N}] to match logits ${shapeStr(logits.shape)}, got ${labels.dtype} ${shapeStr(labels.shape)}`);
  }
  if (C === 0) throw new Error(`kinkless: ${op}: logits ${shapeStr(logits.shape)} have no classes (C = 0)`);
  return { N, C };
}

/**
 * Softmax cross-entropy of logits [N, C] against integer labels [N] (i32), fused: one
 * kernel computes every example's loss (row max, log-sum-exp, label and smoothing terms),
 * then the losses are reduced. Backward is one kernel: dlogits = (softmax - target) * dy,
 * scaled by 1/N for 'mean'.
 *
 * NOTE: labels outside [0, C) are not checked on the host (that would need a readback);
 * the kernels turn such an example's loss and its whole gradient row into NaN (never an
 * out-of-bounds read), so the reduced loss is NaN. Use `await checkLabels(labels, C)` to
 * find the offending label.
 */
export function softmaxCrossEntropy(logits: Tensor, labels: Tensor, opts: CrossEntropyOptions = {}): Tensor {
  const op = 'softmaxCrossEntropy';
  const { N, C } = checkLogitsLabels(op, logits, labels);
  const ls = opts.labelSmoothing ?? 0;
  const reduction = opts.reduction ?? 'mean';
  if (typeof ls !== 'number' || !(ls >= 0 && ls <= 1)) throw new Error(`kinkless: ${op}: labelSmoothing must be a number in [0, 1], got ${String(ls)}`);
  if (reduction !== 'mean' && reduction !== 'sum' && reduction !== 'none') {
    throw new Error(`kinkless: ${op}: reduction must be 'mean', 'sum' or 'none', got ${JSON.stringify(reduction)}`);
  }
  if (reduction === 'mean' && N === 0) throw new Error(`kinkless: ${op}: the mean of an empty batch (logits ${shapeStr(logits.shape)}) is undefined; use reduction 'sum' or 'none'`);
  const device = logits.device;
  const losses = alloc(device, [N]);
  if (N > 0) {
    const g = grid1d(N, SX_WG);
    const u = new Uniforms().u32(N, C, 1, g.gx).f32(ls, 0).u32(0, 0);
    const info = { op: 'softmax_cross_entropy', geometry: `N${N} C${C}`, flops: 6 * N * C, bytes: 4 * (N * C + 2 * N) };
    device.dispatch({ kernel: xentKernel, info, buffers: [logits.buffer, labels.buffer, losses.buffer], uniforms: u.bytes(), workgroups: g.workgroups });
  }
  let y: Tensor;
  if (reduction === 'none') y = losses;
  else {
    const s = sum(losses);
    losses.dispose();
    if (reduction === 'sum') y = s;
    else {
      y = launchEw(ELEMENTWISE, 'scale', [s], { scalars: [1 / N] });
      s.dispose();
    }
  }
  const scale = reduction === 'mean' ? 1 / N : 1;
  record(y, 'softmax_cross_entropy', [logits], (dy) => {
    const dx = alloc(device, logits.shape);
    if (N === 0) return [dx];
    const g = grid1d(N, SX_WG);
    const u = new Uniforms().u32(N, C, 1, g.gx).f32(ls, scale).u32(reduction === 'none' ? 1 : 0, 0);
    device.dispatch({
      kernel: xentBackwardKernel,
      info: { op: 'softmax_cross_entropy_backward', geometry: `N${N} C${C}`, flops: 8 * N * C, bytes: 4 * (2 * N * C + 2 * N) },
      buffers: [logits.buffer, labels.buffer, dy.buffer, dx.buffer],
      uniforms: u.bytes(),
      workgroups: g.workgroups,
    });
    return [dx];
  });
  return y;
}

/**
 * Read the labels back and throw if any is outside [0, C), naming the first bad label and
 * its index. Costs a readback (flushes queued GPU work); call it once per dataset or batch.
 */
export async function checkLabels(labels: Tensor, C: number): Promise<void> {
  if (!Number.isInteger(C) || C <= 0) throw new Error(`kinkless: checkLabels: C must be a positive integer, got ${String(C)}`);
  assertSameDevice('checkLabels', labels);
  if (labels.dtype !== 'i32') throw new Error(`kinkless: checkLabels: labels must be i32, got an ${labels.dtype} tensor of shape ${shapeStr(labels.shape)}`);
  const v = await labels.data();
  let bad = 0;
  let first = -1;
  for (let i = 0; i < v.length; i++) {
    const y = v[i]!;
    if (y < 0 || y >= C) {
      if (first < 0) first = i;
      bad++;
    }
  }
  if (first >= 0) {
    throw new Error(`kinkless: checkLabels: label ${v[first]} at index ${first} is outside [0, ${C})${bad > 1 ? ` (${bad} bad labels in all)` : ''}`);
  }
}

/**
 * Number of rows whose first argmax equals the label, as an f32 scalar tensor (computed
 * on the GPU, no gradient, no readback). A label outside [0, C) never counts as correct.
 */
export function accuracyCount(logits: Tensor, labels: Tensor): Tensor {
  const { N, C } = checkLogitsLabels('accuracyCount', logits, labels);
  const device = logits.device;
  const flags = alloc(device, [N]);
  if (N > 0) {
    const g = grid1d(N, SX_WG);
    const u = new Uniforms().u32(N, C, 1, g.gx);
    const info = { op: 'accuracy_count', geometry: `N${N} C${C}`, flops: N * C, bytes: 4 * (N * C + 2 * N) };
    device.dispatch({ kernel: correctKernel, info, buffers: [logits.buffer, labels.buffer, flags.buffer], uniforms: u.bytes(), workgroups: g.workgroups });
  }
  const r = sum(flags);
  flags.dispose();
  return r;
}
