// Fused bias + activation epilogues with autograd: conv2dAct and linearAct compute
// y = act(conv(x, w) + b) / act(x · w^T + b) in ONE forward pass that, when a gradient is
// needed, also writes the pre-activation z. Their single recorded backward runs
// activationBackwardFromZ on z (dz = dy * f'(z), the surrogate's f' when the spec has one,
// and the raw activation params' gradient through their constraints, in one pass), then
// db = sum of dz over the non-channel axes and dx, dw with the ordinary conv / matmul
// backward kernels. Same results as conv2d / linear followed by activation(), with one
// launch and one full write of the output fewer in the forward pass.
import { Tensor, assertSameDevice, shapeStr } from '../tensor.ts';
import { needsGrad, record } from '../autograd.ts';
import type { ActivationKind } from '../../kernels/activations.ts';
import { activationBackwardFromZ, resolveActivation, type ActivationSpec, type ResolvedActivation } from './activation.ts';
import { conv2dBackward, conv2dCall, conv2dForwardAct, type Conv2dOptions } from './conv2d.ts';
import { checkLinearShapes, matmulAct, matmulRaw } from './matmul.ts';
import { sumToShape } from './reduce.ts';

/** Resolve once; per-channel params cannot ride in the epilogue (it applies one parameter set). */
function resolveFused(op: string, act: ActivationSpec | ActivationKind | ResolvedActivation, x: Tensor): ResolvedActivation {
  const r = resolveActivation(op, act, x.device);
  if (r.perChannel) throw new Error(`kinkless: ${op}: per-channel activation params (raw ${shapeStr(r.raw!.shape)}) are not supported in fused epilogues; apply activation() after the op`);
  return r;
}

/**
 * Whether the backward can read the activation's output y in place of its pre-activation
 * z, so that the forward writes no z: plain ReLU (no surrogate derivative, no params).
 * NOTE: relu'(relu(z)) = relu'(z) for every z: z > 0 gives y = z; z <= 0 gives y = 0,
 * where relu' is 0 as at z (relu'(0) = 0 by convention); z = NaN gives y = NaN (the
 * activation kernels propagate NaN through f and f'), so relu'(y) = NaN = relu'(z).
 */
export function backwardFromOutput(r: ResolvedActivation): boolean {
  return r.kind === 'relu' && r.backward === null && r.raw === null;
}

function checkF32(op: string, named: [string, Tensor | null | undefined][]): void {
  for (const [nm, t] of named) {
    if (t && !(t instanceof Tensor)) throw new Error(`kinkless: ${op}: ${nm} must be a Tensor, got ${String(t)}`);
    if (t && t.dtype !== 'f32') throw new Error(`kinkless: ${op}: ${nm} must be f32, got an ${t.dtype} tensor of shape ${shapeStr(t.shape)}`);
  }
}

/**
 * y = act(conv2d(x, w, b, opts)) with the activation fused into the convolution's store
 * (x [N, C, H, W], w [O, C/groups, KH, KW], b? [O]; `act` an activation spec as for
 * activation(): fixed or learnable raw params, surrogate derivative; resolved once).
 * Records one backward for x, w, b and a learnable params tensor.
 */
export function conv2dAct(x: Tensor, w: Tensor, b: Tensor | null | undefined, act: ActivationSpec | ActivationKind | ResolvedActivation, opts: Conv2dOptions = {}): Tensor {
  const op = 'conv2dAct';
  const { p, run } = conv2dCall(op, x, w, b, opts);
  const base = b ? [x, w, b] : [x, w];
  // NOTE: resolved once: the immutable ResolvedActivation is what the forward and the
  // backward both use, so a caller mutating its spec object in between changes nothing.
  const r = resolveFused(op, act, x);
  const inputs = r.raw ? [...base, r.raw] : base;
  const grad = needsGrad(inputs);
  const fromY = grad && backwardFromOutput(r);
  const { y, z, saved } = conv2dForwardAct(x, w, b ?? null, p, run, { spec: r, saveZ: grad && !fromY }, grad);
  if (!grad) return y;
  // NOTE: z (or, for ReLU, a view of y) is captured by the backward closure and freed with
  // the enclosing scope (as the unfused conv2d output would be, which activation() saves).
  const zs = fromY ? y.view(y.shape) : z!;
  record(y, 'conv2d_act', inputs, (dy) => {
    const wantDz = x.requiresGrad || w.requiresGrad || !!b?.requiresGrad;
    const g = activationBackwardFromZ(zs, dy, r, { dz: wantDz, dParams: !!r.raw?.requiresGrad });
    const dz = g.dz;
    const grads = conv2dBackward(dz, saved);
    dz?.dispose();
    if (r.raw) grads.push(g.dParams);
    return grads;
  });
  return y;
}

/**
 * y = act(x · w^T + b) with x [..., in], w [out, in] (PyTorch layout), b? [out], the bias and
 * activation fused into the matmul's store. Records one backward for x, w, b and a
 * learnable params tensor.
 */
export function linearAct(x: Tensor, w: Tensor, b: Tensor | null | undefined, act: ActivationSpec | ActivationKind | ResolvedActivation): Tensor {
  const op = 'linearAct';
  checkF32(op, [['x', x], ['w', w], ['b', b]]);
  const base = b ? [x, w, b] : [x, w];
  assertSameDevice(op, ...base);
  const [out, inF] = checkLinearShapes(op, x, w, b);
  const r = resolveFused(op, act, x);
  const inputs = r.raw ? [...base, r.raw] : base;
  const grad = needsGrad(inputs);
  const fromY = grad && backwardFromOutput(r);
  const rows = x.size / inF || 0;
  const x2 = x.view([rows, inF]);
  const { y: y2, z } = matmulAct(x2, w, { transB: true, bias: b ?? undefined }, { spec: r, saveZ: grad && !fromY });
  x2.dispose();
  const xShape = x.shape;
  const y = y2.view([...xShape.slice(0, -1), out]);
  if (!grad) {
    y2.dispose();
    return y;
  }
  // NOTE: for ReLU the backward reads y ([rows, out], a view kept with the scope) as z.
  const zs = fromY ? y2 : z!;
  if (!fromY) y2.dispose();
  record(y, 'linear_act', inputs, (dy) => {
    const wantDz = x.requiresGrad || w.requiresGrad || !!b?.requiresGrad;
    const g = activationBackwardFromZ(zs, dy, r, { dz: wantDz, dParams: !!r.raw?.requiresGrad });
    const dz = g.dz; // [rows, out]
    let dx: Tensor | null = null;
    if (dz && x.requiresGrad) {
      const t = matmulRaw(dz, w);
      dx = t.view(xShape);
      t.dispose();
    }
    let dw: Tensor | null = null;
    if (dz && w.requiresGrad) {
      const xv = x.view([rows, inF]);
      dw = matmulRaw(dz, xv, { transA: true });
      xv.dispose();
    }
    const grads: (Tensor | null)[] = [dx, dw];
    if (b) grads.push(dz && b.requiresGrad ? sumToShape(dz, [out]) : null);
    dz?.dispose();
    if (r.raw) grads.push(g.dParams);
    return grads;
  });
  return y;
}
