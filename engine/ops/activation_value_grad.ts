// activationValueAndGrad: an activation's value and exact gradient from ONE kernel pass
// (kernels/activation_value_grad_kernels.ts): y = f(x), dx = gy * f'(x) (f' of the
// surrogate if the spec has one) and the learnable raw params' gradient sum(gy * df/dp)
// through the table's constraint chain (then the same small partials-sum kernel as the
// backward). gy omitted = 1 everywhere: the gradient of sum(f(x)), i.e. what
// jit(grad(sum(f))) computes, in one read of x. No autograd is recorded: this is the
// forward and backward of a leaf computation done together (for a graph, use
// activation() and grad()). Per-channel params ([C, P] raw) run the per-channel forward
// and backward kernels (two passes).
import { Tensor, assertSameDevice, shapeStr } from '../tensor.ts';
import { ACT_WG, actParamGroups } from '../../kernels/activation_kernels.ts';
import { valueGradBindings } from '../../kernels/activation_value_grad_kernels.ts';
import { activationValueGradKernel } from '../../kernels/activation_descriptors.ts';
import { grid1d } from '../../kernels/elementwise.ts';
import { alloc } from './launch.ts';
import { channelBackward, channelForward } from './activation_channel.ts';
import { fill } from './elementwise.ts';
import {
  actInfo,
  canVec4,
  checkChannels,
  checkX,
  kernelConfig,
  reduceParamPartials,
  resolveActivation,
  uniformsFor,
  type ActivationOptions,
  type ActivationSpec,
  type ResolvedActivation,
} from './activation.ts';
import type { ActivationKind } from '../../kernels/activations.ts';

export interface ActivationValueAndGradOptions extends ActivationOptions {
  /** Write y = f(x) (default true). false: only the gradients (read x [, gy], write dx). */
  value?: boolean;
}

export interface ActivationValueAndGrad {
  /** f(x), x's shape; null with opts.value = false. */
  y: Tensor | null;
  /** gy * f'(x) (gy = 1 when omitted), x's shape. */
  dx: Tensor;
  /** Gradient of the RAW params tensor (its shape, [P] or [C, P]); null without spec.raw. */
  dParams: Tensor | null;
}

const OP = 'activationValueAndGrad';

/**
 * y = f(x), dx = gy * f'(x) and the raw params' gradient in one pass (see the file
 * header). gy: the upstream gradient (f32, as many elements as x); omitted = 1.
 */
export function activationValueAndGrad(
  x: Tensor,
  spec: ActivationSpec | ActivationKind | ResolvedActivation,
  gy?: Tensor,
  opts: ActivationValueAndGradOptions = {},
): ActivationValueAndGrad {
  checkX(OP, x);
  const r = resolveActivation(OP, spec, x.device);
  if (gy !== undefined) {
    if (!(gy instanceof Tensor)) throw new Error(`kinkless: ${OP}: gy must be a Tensor or omitted, got ${String(gy)}`);
    assertSameDevice(OP, x, gy);
    if (gy.dtype !== 'f32' || gy.size !== x.size) throw new Error(`kinkless: ${OP}: gy must be an f32 tensor with as many elements as x ${shapeStr(x.shape)}, got ${gy.dtype} ${shapeStr(gy.shape)}`);
  }
  const wantY = opts.value ?? true;
  if (r.perChannel) return perChannel(x, r, gy, wantY);
  const device = x.device;
  const n = x.size;
  const y = wantY ? alloc(device, x.shape, 'f32', `activation_${r.kind}_value_grad y`) : null;
  const dx = alloc(device, x.shape, 'f32', `activation_${r.kind}_value_grad dx`);
  const wantDp = r.raw !== null;
  if (n === 0) {
    const g = wantDp ? alloc(device, [...r.raw!.shape]) : null;
    if (g) device.queue.upload(g.buffer, new Float32Array(r.count));
    return { y, dx, dParams: g };
  }
  const vec4 = canVec4(n, [x.buffer, dx.buffer, ...(gy ? [gy.buffer] : []), ...(y ? [y.buffer] : [])], opts.vec4);
  const nv = vec4 ? Math.ceil(n / 4) : n;
  const cfg = kernelConfig(r, vec4);
  const want = { gy: gy !== undefined, y: wantY, dp: wantDp };
  const groups = actParamGroups(nv, true);
  const flat = grid1d(nv, ACT_WG);
  const partials = wantDp ? alloc(device, [groups, 2], 'f32', `activation_${r.kind}_value_grad partials`) : null;
  const b = valueGradBindings(cfg, want);
  const bound: [number, GPUBuffer | undefined][] = [
    [b.gy, gy?.buffer],
    [b.raw, r.raw?.buffer],
    [b.y, y?.buffer],
    [b.dx, dx.buffer],
    [b.partials, partials?.buffer],
  ];
  const buffers = [x.buffer, ...bound.filter(([i]) => i >= 0).sort((p, q) => p[0] - q[0]).map(([, buf]) => buf!)];
  device.dispatch({
    kernel: activationValueGradKernel({ cfg, want }),
    info: actInfo('activation_value_grad', x, (2 + (gy ? 1 : 0) + (wantY ? 1 : 0)) * n * 4),
    buffers,
    uniforms: uniformsFor(n, nv, wantDp ? groups : flat.gx, r),
    workgroups: wantDp ? [groups] : flat.workgroups,
  });
  const dParams = partials ? reduceParamPartials(device, r, partials, groups) : null;
  return { y, dx, dParams };
}

/** Per-channel params: the per-channel forward and backward kernels (two passes). */
function perChannel(x: Tensor, r: ResolvedActivation, gy: Tensor | undefined, wantY: boolean): ActivationValueAndGrad {
  checkChannels(OP, x, r);
  const y = wantY ? channelForward(x, r) : null;
  const ones = gy ? null : fill(x.device, x.shape, 1);
  const { dz, dParams } = channelBackward(x, gy ?? ones!, r, { dx: true, dp: true });
  ones?.dispose();
  return { y, dx: dz!, dParams };
}
