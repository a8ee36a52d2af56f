// Kernel descriptors of the standalone activation kernels (forward, backward, the fused
// value-and-gradient pass, the per-channel variants and the parameter-gradient sums). The
// WGSL builders live in activation_kernels.ts, activation_value_grad_kernels.ts and
// activation_channel_kernels.ts; this file names each family once, with a cache key from
// its compile-time configuration and its storage bindings in order, so the engine builds
// the WGSL only on a pipeline-cache miss (kernels/kernel.ts, docs/kernels.md).
import { defineKernel, reads, writes, type Binding } from './kernel.ts';
import { wgslMath } from './wgsl_math.ts';
import type { ActivationKind } from './activations.ts';
import {
  activationBackwardWgsl,
  activationForwardWgsl,
  activationParamGradWgsl,
  backwardBindsParams,
  backwardNeedsParams,
  type ActBackwardWant,
  type ActKernelConfig,
} from './activation_kernels.ts';
import { activationValueGradWgsl, type ActValueGradWant } from './activation_value_grad_kernels.ts';
import {
  activationChannelBackwardWgsl,
  activationChannelForwardWgsl,
  activationChannelParamGradWgsl,
  channelParamGradBindsRaw,
  type ActChannelConfig,
} from './activation_channel_kernels.ts';
import { activationDef } from './activations.ts';

/** The raw params buffer as activationWgsl declares it (prefix 'act'). */
const RAW = 'act_raw';

function cfgKey(cfg: ActKernelConfig, withSurrogate: boolean): string {
  return `${cfg.kind}|${cfg.params}|${cfg.vec4 ? 'v4' : 's'}${withSurrogate ? `|${cfg.surrogate ?? '-'}` : ''}`;
}
const flag = (b: boolean, c: string): string => (b ? c : '-');

/** y = f(x). The surrogate does not enter the forward, so it is not in the key. */
export const activationForwardKernel = defineKernel<ActKernelConfig>({
  name: 'activation_forward',
  label: (c) => `activation_${c.kind}`,
  key: (c) => cfgKey(c, false),
  bindings: (c) => [...reads('x'), ...(c.params === 'buffer' ? reads(RAW) : []), ...writes('y')],
  build: (c) => activationForwardWgsl(c, wgslMath()),
});

/** dx = dy f'(x) and/or the per-workgroup partials of sum(dy df/dp). */
export const activationBackwardKernel = defineKernel<{ cfg: ActKernelConfig; want: ActBackwardWant }>({
  name: 'activation_backward',
  label: (p) => `activation_${p.cfg.kind}_backward`,
  // NOTE: a backward that reads no params (a surrogate f' without dp) builds the same source
  // whatever the params' origin, so the key names them 'none' (one key per source).
  key: (p) => `${cfgKey(backwardNeedsParams(p.cfg, p.want) ? p.cfg : { ...p.cfg, params: 'none' }, true)}|${flag(p.want.dx, 'x')}${flag(p.want.dp, 'p')}`,
  bindings: (p) => [
    ...reads('x', 'dy'),
    ...(backwardBindsParams(p.cfg, p.want) ? reads(RAW) : []),
    ...(p.want.dx ? writes('dx') : []),
    ...(p.want.dp ? writes('partials') : []),
  ],
  build: (p) => activationBackwardWgsl(p.cfg, p.want, wgslMath()),
});

/** y (optional), dx = gy f'(x) and the param partials in one pass (bindings as valueGradBindings). */
export const activationValueGradKernel = defineKernel<{ cfg: ActKernelConfig; want: ActValueGradWant }>({
  name: 'activation_value_grad',
  label: (p) => `activation_${p.cfg.kind}_value_grad`,
  key: (p) => `${cfgKey(p.cfg, true)}|${flag(p.want.gy, 'g')}${flag(p.want.y, 'y')}${flag(p.want.dp, 'p')}`,
  bindings: (p) => [
    ...reads('x'),
    ...(p.want.gy ? reads('gy') : []),
    ...(p.cfg.params === 'buffer' ? reads(RAW) : []),
    ...(p.want.y ? writes('y') : []),
    ...writes('dx'),
    ...(p.want.dp ? writes('partials') : []),
  ],
  build: (p) => activationValueGradWgsl(p.cfg, p.want, wgslMath()),
});

/** Sums the partials into the raw params' gradient (one workgroup). */
export const activationParamGradKernel = defineKernel<ActivationKind>({
  name: 'activation_param_grad',
  key: (kind) => kind,
  bindings: (kind) => [...reads('partials'), ...(activationDef(kind).params.some((q) => q.constraint !== 'none') ? reads('raw') : []), ...writes('g')],
  build: activationParamGradWgsl,
});

/** Per-channel params [C, P]: y = f(x) with channel c's params. */
export const activationChannelForwardKernel = defineKernel<ActivationKind>({
  name: 'activation_channel_forward',
  label: (kind) => `activation_${kind}_channel`,
  key: (kind) => kind,
  bindings: () => [...reads('x', RAW), ...writes('y')],
  build: (kind) => activationChannelForwardWgsl({ kind, surrogate: null }, wgslMath()),
});

/** Per-channel backward: dx and/or per-(channel, workgroup) partials. */
export const activationChannelBackwardKernel = defineKernel<{ cfg: ActChannelConfig; want: { dx: boolean; dp: boolean } }>({
  name: 'activation_channel_backward',
  label: (p) => `activation_${p.cfg.kind}_channel_backward`,
  key: (p) => `${p.cfg.kind}|${p.cfg.surrogate ?? '-'}|${flag(p.want.dx, 'x')}${flag(p.want.dp, 'p')}`,
  bindings: (p): Binding[] => [...reads('x', 'dy', RAW), ...(p.want.dx ? writes('dx') : []), ...(p.want.dp ? writes('partials') : [])],
  build: (p) => activationChannelBackwardWgsl(p.cfg, p.want, wgslMath()),
});

/** Per-channel sums of the partials into the raw params' gradient [C, P]. */
export const activationChannelParamGradKernel = defineKernel<ActivationKind>({
  name: 'activation_param_grad_channel',
  key: (kind) => kind,
  bindings: (kind) => [...reads('partials'), ...(channelParamGradBindsRaw(kind) ? reads('raw') : []), ...writes('g')],
  build: activationChannelParamGradWgsl,
});
