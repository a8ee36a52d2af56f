// Launches of the per-channel activation kernels (kernels/activation_channel_kernels.ts):
// a learnable raw params tensor [C, P] holds one parameter set per channel of x's dim 1
// (PyTorch's PReLU(num_parameters = C) convention). activation() and
// activationBackwardFromZ (engine/ops/activation.ts) route here when the resolved spec's
// raw tensor has rank 2; the shapes were checked there.
import type { Tensor } from '../tensor.ts';
import { actInfo, type ResolvedActivation } from './activation.ts';
import { ACT_WG } from '../../kernels/activation_kernels.ts';
import {
  actChannelGroups,
  actChannelUniformWords,
  channelParamGradBindsRaw,
} from '../../kernels/activation_channel_kernels.ts';
import { activationChannelBackwardKernel, activationChannelForwardKernel, activationChannelParamGradKernel } from '../../kernels/activation_descriptors.ts';
import { grid1d } from '../../kernels/elementwise.ts';
import { Uniforms, alloc } from './launch.ts';

/** C and S (elements per channel per sample) of x [N, C, ...]. */
function geometry(x: Tensor, r: ResolvedActivation): { C: number; S: number } {
  const C = r.raw!.shape[0]!;
  return { C, S: x.shape.slice(2).reduce((a, b) => a * b, 1) };
}

function uniforms(n: number, gx: number, C: number, S: number, G: number, r: ResolvedActivation): ArrayBuffer {
  return new Uniforms().u32(...actChannelUniformWords(n, gx, C, S, G)).f32(...r.uniform).bytes();
}

/** y = f(x) with channel c's params for the elements of channel c (no autograd). */
export function channelForward(x: Tensor, r: ResolvedActivation): Tensor {
  const device = x.device;
  const y = alloc(device, x.shape, 'f32', `activation_${r.kind}`);
  const n = x.size;
  if (n === 0) return y;
  const { C, S } = geometry(x, r);
  const g = grid1d(n, ACT_WG);
  device.dispatch({
    kernel: activationChannelForwardKernel(r.kind),
    info: actInfo('activation', x, 2 * n * 4),
    buffers: [x.buffer, r.raw!.buffer, y.buffer],
    uniforms: uniforms(n, g.gx, C, S, 0, r),
    workgroups: g.workgroups,
  });
  return y;
}

/**
 * dz = dy * f'(z) and the raw params' gradient [C, P] (per-channel sums of dy * df/dp through
 * each param's constraint), in one pass over z and dy plus one small kernel.
 */
export function channelBackward(z: Tensor, dy: Tensor, r: ResolvedActivation, want: { dx: boolean; dp: boolean }): { dz: Tensor | null; dParams: Tensor | null } {
  const device = z.device;
  const n = z.size;
  const { C, S } = geometry(z, r);
  const P = r.count;
  const dx = want.dx ? alloc(device, z.shape, 'f32', `activation_${r.kind}_backward dx`) : null;
  if (n === 0) {
    const g = want.dp ? alloc(device, [C, P]) : null;
    if (g) device.queue.upload(g.buffer, new Float32Array(C * P));
    return { dz: dx, dParams: g };
  }
  const cfg = { kind: r.kind, surrogate: r.surrogate };
  const G = actChannelGroups(n / C, C);
  const flat = grid1d(n, ACT_WG);
  const partials = want.dp ? alloc(device, [C * G, 2], 'f32', `activation_${r.kind}_backward partials`) : null;
  device.dispatch({
    kernel: activationChannelBackwardKernel({ cfg, want }),
    info: actInfo('activation_backward', z, (2 + (want.dx ? 1 : 0)) * n * 4),
    buffers: [z.buffer, dy.buffer, r.raw!.buffer, ...(dx ? [dx.buffer] : []), ...(partials ? [partials.buffer] : [])],
    uniforms: uniforms(n, flat.gx, C, S, G, r),
    workgroups: want.dp ? [G, C] : flat.workgroups,
  });
  let dParams: Tensor | null = null;
  if (partials) {
    dParams = alloc(device, [C, P], 'f32', `activation_${r.kind} param grad`);
    device.dispatch({
      kernel: activationChannelParamGradKernel(r.kind),
      info: { op: 'activation_param_grad', geometry: `${C}x${G} partials -> [${C}, ${P}]`, flops: 2 * C * G, bytes: 4 * (2 * C * G + 2 * C * P) },
      buffers: channelParamGradBindsRaw(r.kind) ? [partials.buffer, r.raw!.buffer, dParams.buffer] : [partials.buffer, dParams.buffer],
      uniforms: uniforms(n, 0, C, S, G, r),
      workgroups: [C],
    });
    partials.dispose();
  }
  return { dz: dx, dParams };
}
