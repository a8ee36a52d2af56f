// 2-D convolution (NCHW x, OIHW w, optional bias) with stride, padding, dilation and
// groups (depthwise included), with autograd: dx, dw and db. The forward launches one of
// the kernel families, chosen per direction and adapter by conv2d_plan.ts: the packed,
// direct, per-pixel and naive kernels (conv2d_direct.ts) or the GEMM path (im2col + matmul,
// conv2d_gemm.ts); the one backward lives in conv2d_backward.ts. conv2dForwardAct is the
// forward with a fused activation epilogue (y = act(conv + b) and optionally the
// pre-activation z from the same pass), used by conv2dAct of engine/ops/fused.ts.
import { Tensor, assertSameDevice, shapeStr } from '../tensor.ts';
import { needsGrad, record } from '../autograd.ts';
import type { FusedAct } from './epilogue.ts';
import { directForward, type FwdOut } from './conv2d_direct.ts';
import { gemmForward } from './conv2d_gemm.ts';
import { conv2dBackward, type ConvSaved } from './conv2d_backward.ts';
import { conv2dGeometry, convRun, resolveImpl, type Conv2dOptions, type ConvGeom, type ConvImpl, type ConvRun } from './conv2d_plan.ts';

export {
  CONV_IMPLS, DEFAULT_GEMM_CHUNK_BYTES, DEFAULT_KEEP_IM2COL_BYTES, chooseConvImpl, chooseDcolLayout, chooseGemmForward, conv2dGeometry, convRun, gemmOk,
  type Conv2dOptions, type ConvDir, type ConvGeom, type ConvImpl, type ConvRun, type DcolLayout, type GemmForward, type Pair,
} from './conv2d_plan.ts';
export { conv2dBackward, conv2dBackwardFilter, conv2dBackwardInput, type ConvSaved } from './conv2d_backward.ts';
export { conv2dIm2col } from './conv2d_gemm.ts';

/**
 * The forward launch; `keepFor`: whether to keep the GEMM im2col for a filter gradient (w
 * needs one and dw also runs on the GEMM path), bounded by run.keepIm2colBytes.
 */
function forwardLaunch(x: Tensor, w: Tensor, b: Tensor | null, p: ConvGeom, run: ConvRun, act: FusedAct | undefined, keepFor: boolean): FwdOut & { saved: ConvSaved } {
  const device = x.device;
  const impl = resolveImpl(p, 'fwd', run, device);
  if (impl === 'gemm') {
    const keep = keepFor && run.keepIm2colBytes > 0 && resolveImpl(p, 'dw', run, device) === 'gemm';
    const r = gemmForward(x, w, b, p, act, run, keep);
    return { y: r.y, z: r.z, saved: { x, w, b, p, run, kept: r.kept } };
  }
  const r = directForward(x, w, b, p, impl, act, run.bakeGeometry);
  return { ...r, saved: { x, w, b, p, run, kept: null } };
}

/** Forward kernel launch (no autograd). `o`: an impl or the run options. */
export function conv2dForward(x: Tensor, w: Tensor, b: Tensor | null, p: ConvGeom, o: ConvImpl | Conv2dOptions | ConvRun = 'auto'): Tensor {
  return forwardLaunch(x, w, b, p, convRun('conv2d', o), undefined, false).y;
}

/**
 * Forward with a fused activation epilogue: y = act(conv(x, w) + b) and, with
 * fused.saveZ, the pre-activation z = conv(x, w) + b written by the same pass, on every impl
 * (packed, direct, pixel and naive kernels: from the accumulator registers; GEMM: in the
 * permute). Records nothing: `saved` is what conv2dBackward needs (it may hold the
 * forward's im2col when w needs a gradient). `grad` (default fused.saveZ): whether a
 * backward will follow (it may, without z, when the backward reads y instead).
 */
export function conv2dForwardAct(x: Tensor, w: Tensor, b: Tensor | null, p: ConvGeom, o: ConvImpl | Conv2dOptions | ConvRun, fused: FusedAct, grad = fused.saveZ): { y: Tensor; z: Tensor | null; saved: ConvSaved } {
  return forwardLaunch(x, w, b, p, convRun('conv2d', o), fused, grad && needsGrad([w]));
}

/** Checks of conv2d and conv2dAct: f32 tensors on one device, shapes, options. */
export function conv2dCall(op: string, x: Tensor, w: Tensor, b: Tensor | null | undefined, opts: Conv2dOptions): { p: ConvGeom; run: ConvRun } {
  for (const [nm, t] of [['x', x], ['w', w], ['b', b]] as const) {
    if (t && !(t instanceof Tensor)) throw new Error(`kinkless: ${op}: ${nm} must be a Tensor, got ${String(t)}`);
    if (t && t.dtype !== 'f32') throw new Error(`kinkless: ${op}: ${nm} must be f32, got an ${t.dtype} tensor of shape ${shapeStr(t.shape)}`);
  }
  assertSameDevice(op, ...(b ? [x, w, b] : [x, w]));
  const legacy = (opts as { act?: unknown }).act;
  if (legacy !== undefined) throw new Error(`kinkless: ${op}: opts.act must be unset (a fused activation is conv2dAct's 'act' argument), got ${typeof legacy}`);
  const run = convRun(op, opts);
  return { p: conv2dGeometry(x.shape, w.shape, opts, b ? b.shape : null, op), run };
}

/**
 * conv2d(x [N, C, H, W], w [O, C/groups, KH, KW], b? [O], opts) -> y [N, O, OH, OW] with
 * OH = floor((H + 2*ph - dlh*(KH-1) - 1)/sh) + 1 (same for OW). Records dx, dw and db.
 */
export function conv2d(x: Tensor, w: Tensor, b?: Tensor | null, opts: Conv2dOptions = {}): Tensor {
  const op = 'conv2d';
  const { p, run } = conv2dCall(op, x, w, b, opts);
  const inputs = b ? [x, w, b] : [x, w];
  const { y, saved } = forwardLaunch(x, w, b ?? null, p, run, undefined, needsGrad([w]));
  record(y, op, inputs, (dy) => conv2dBackward(dy, saved));
  return y;
}
