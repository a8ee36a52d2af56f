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
import { conv2dBackwardFilter, conv2dBackwardInput, conv2dForwardAct, conv2dGeometry, type Conv2dOptions, type ConvImpl } from './conv2d.ts';
import { checkLinearShapes, matmulAct, matmulRaw } from './matmul.ts';
import { sum, sumToShape } from './reduce.ts';

const CONV_IMPLS: readonly string[] = ['auto', 'fast', 'gemm', 'direct', 'naive'];

/** Resolve once; per-channel params cannot ride in the epilogue (it applies one parameter set). */
function resolveFused(op: string, act: ActivationSpec | ActivationKind | ResolvedActivation, x: Tensor): ResolvedActivation {
  const r = resolveActivation(op, act, x.device);
  if (r.perChannel) throw new Error(`kinkless: ${op}: per-channel activation params (raw ${shapeStr(r.raw!.shape)}) are not supported in fused epilogues; apply activation() after the op`);
  return r;
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
  checkF32(op, [['x', x], ['w', w], ['b', b]]);
  const base = b ? [x, w, b] : [x, w];
  assertSameDevice(op, ...base);
  const legacy = (opts as { act?: unknown }).act;
  if (legacy !== undefined) throw new Error(`kinkless: ${op}: opts.act must be unset (the activation is the 'act' argument), got ${typeof legacy}`);
  const impl: ConvImpl = opts.impl ?? 'auto';
  if (!CONV_IMPLS.includes(impl)) throw new Error(`kinkless: ${op}: impl must be one of ${CONV_IMPLS.map((v) => `'${v}'`).join(', ')}, got ${String(impl)}`);
  const p = conv2dGeometry(x.shape, w.shape, opts, b ? b.shape : null);
  // NOTE: resolved once: the immutable ResolvedActivation is what the forward and the
  // backward both use, so a caller mutating its spec object in between changes nothing.
  const r = resolveFused(op, act, x);
  const inputs = r.raw ? [...base, r.raw] : base;
  const saveZ = needsGrad(inputs);
  const { y, z } = conv2dForwardAct(x, w, b ?? null, p, impl, { spec: r, saveZ });
  if (!saveZ) return y;
  // NOTE: z is captured by the backward closure and freed with the enclosing scope (as the
  // unfused conv2d output would be, which activation() saves).
  record(y, 'conv2d_act', inputs, (dy) => {
    const wantDz = x.requiresGrad || w.requiresGrad || !!b?.requiresGrad;
    const g = activationBackwardFromZ(z!, dy, r, { dz: wantDz, dParams: !!r.raw?.requiresGrad });
    const dz = g.dz;
    const grads: (Tensor | null)[] = [
      dz && x.requiresGrad ? conv2dBackwardInput(dz, w, p, impl) : null,
      dz && w.requiresGrad ? conv2dBackwardFilter(dz, x, p, impl) : null,
    ];
    if (b) grads.push(dz && b.requiresGrad ? sum(dz, [0, 2, 3]) : null);
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
  const saveZ = needsGrad(inputs);
  const rows = x.size / inF || 0;
  const x2 = x.view([rows, inF]);
  const { y: y2, z } = matmulAct(x2, w, { transB: true, bias: b ?? undefined }, { spec: r, saveZ });
  x2.dispose();
  const xShape = x.shape;
  const y = y2.view([...xShape.slice(0, -1), out]);
  y2.dispose();
  if (!saveZ) return y;
  record(y, 'linear_act', inputs, (dy) => {
    const wantDz = x.requiresGrad || w.requiresGrad || !!b?.requiresGrad;
    const g = activationBackwardFromZ(z!, dy, r, { dz: wantDz, dParams: !!r.raw?.requiresGrad });
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
