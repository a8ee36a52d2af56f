// The activation model of the engine: ActivationSpec (what an activation is: kind, fixed
// or learnable params, surrogate derivative), its one resolver resolveActivation, and the
// fused activation op. activation(x, spec) runs one forward kernel per activation kind
// and, on the way back, one kernel that writes dx = dy * f'(x) and reduces the parameter
// gradients in the same pass, then a tiny kernel that sums the per-workgroup partials and
// applies the constraint chain rule. Only x (and the params) are saved for backward. Also:
// activationBackwardFromZ (for fused matmul/conv epilogues that keep the pre-activation z)
// and activationEpilogue (the WGSL + bindings such an epilogue includes). The kernels are
// built in kernels/activation_kernels.ts; each kind's parameters, defaults, domains and
// learnable parametrisations live in its table entry (kernels/activations.ts).
//
// Spec semantics (docs/activations.md):
// - params: EFFECTIVE host values (default: the kind's), checked against the kind's
//   domains; they travel in the uniform block (no buffer, no pipeline per value).
// - raw: a learnable f32 Tensor holding RAW values; effective = the table's constraint of
//   each (|raw|, raw^2 or raw), computed in the shader, so no readback. Its shape is the
//   one rule for what a parameter tensor means: [P] = one parameter set for every element;
//   [C, P] = one set per channel, the channel being x's dim 1 (PyTorch's convention for
//   [N, C, ...] and [N, features]), so x must have rank >= 2 and x.shape[1] = C.
// - learnable / shared / channels: read by the Activation layer (nn/activation.ts), which
//   creates the raw tensor ([P], or [channels, P]) from params; the op itself ignores them.
// - backward: a surrogate derivative: the forward is spec.kind's f, dx uses
//   backward.kind's df with its own fixed params (default: that kind's defaults).
//   NOTE: the surrogate replaces df/dx ONLY. A learnable forward param still gets the
//   exact gradient of the forward kind (sum dy * df/dp of spec.kind): the surrogate is a
//   statement about how the input gradient flows (SAT's ablation: ReLU forward,
//   softplus(a=10) derivative for x), not a change of the function being trained.
// Every op resolves its spec once (a ResolvedActivation passes through unchanged).
import { Tensor, assertSameDevice, shapeStr } from '../tensor.ts';
import type { Device } from '../device.ts';
import { record } from '../autograd.ts';
import {
  ACTIVATION_KINDS,
  ACTIVATIONS,
  isActivationKind,
  paramDomainError,
  type ActivationDef,
  type ActivationKind,
  type ParamConstraint,
} from '../../kernels/activations.ts';
import {
  ACT_WG,
  actParamGroups,
  activationWgsl,
  backwardBindsParams,
  type ActKernelConfig,
} from '../../kernels/activation_kernels.ts';
import { activationBackwardKernel, activationForwardKernel, activationParamGradKernel } from '../../kernels/activation_descriptors.ts';
import { grid1d } from '../../kernels/elementwise.ts';
import type { DispatchInfo } from '../queue.ts';
import { Uniforms, alloc } from './launch.ts';
import { channelBackward, channelForward } from './activation_channel.ts';

/** An activation: kind, parameters (fixed or learnable), surrogate derivative. */
export interface ActivationSpec {
  kind: ActivationKind;
  /** EFFECTIVE parameter values (default: the kind's). With `raw`, leave unset. */
  params?: readonly number[];
  /** Learnable RAW parameter tensor (f32, shape [P]); effective = the kind's constraint of each value. */
  raw?: Tensor;
  /** Layer option: learn the parameters (default: the table's hint, e.g. true for pssilu, prelu). */
  learnable?: boolean;
  /** Layer option: one parameter set for the whole network (true, PAF) or one per layer (false, SAT). */
  shared?: boolean;
  /**
   * One parameter set per channel (C sets, like PyTorch's num_parameters): the layer's raw
   * tensor is [C, P] and x's dim 1 must be C. Unset: one set for every element ([P]).
   */
  channels?: number;
  /** Surrogate derivative for x: forward of spec.kind, df/dx of backward.kind (fixed params). */
  backward?: { kind: ActivationKind; params?: readonly number[] };
}

export interface ActivationOptions {
  /** Force the scalar kernels (default: vec4 kernels whenever the buffers allow it). */
  vec4?: boolean;
}

/** A validated spec with its defaults filled in, ready for launching kernels (immutable). */
export class ResolvedActivation {
  /** Uniform words: xy = effective forward params (host numbers), zw = surrogate params. */
  readonly uniform: readonly [number, number, number, number];
  constructor(
    readonly kind: ActivationKind,
    /** Effective host params (defaults filled in); the raw tensor's initial values when learnable. */
    readonly params: readonly number[],
    /** The learnable raw params (null when the params are host numbers or P = 0). */
    readonly raw: Tensor | null,
    /** The surrogate derivative (params filled in), or null. */
    readonly backward: { readonly kind: ActivationKind; readonly params: readonly number[] } | null,
    /** Layer options (see ActivationSpec). */
    readonly learnable: boolean,
    readonly shared: boolean,
    /** Parameter sets per channel (spec.channels, or C of a [C, P] raw tensor); null: one set. */
    readonly channels: number | null = null,
  ) {
    const u: [number, number, number, number] = [0, 0, 0, 0];
    if (!raw) params.forEach((v, i) => (u[i] = v));
    backward?.params.forEach((v, i) => (u[2 + i] = v));
    this.uniform = Object.freeze(u);
    Object.freeze(this);
  }
  get def(): ActivationDef {
    return ACTIVATIONS[this.kind];
  }
  /** Number of params of the kind. */
  get count(): number {
    return this.def.params.length;
  }
  /** Learnable parametrisation of each param (kernels/activations.ts). */
  get constraints(): ParamConstraint[] {
    return this.def.params.map((p) => p.constraint);
  }
  get surrogate(): ActivationKind | null {
    return this.backward?.kind ?? null;
  }
  /** Whether the raw params are per channel ([C, P]). */
  get perChannel(): boolean {
    return this.raw !== null && this.raw.rank === 2;
  }
  /** The same activation with other raw params and/or surrogate (already valid: not re-checked). */
  with(o: { raw?: Tensor | null; backward?: ResolvedActivation['backward'] }): ResolvedActivation {
    return new ResolvedActivation(this.kind, this.params, o.raw !== undefined ? o.raw : this.raw, o.backward !== undefined ? o.backward : this.backward, this.learnable, this.shared, this.channels);
  }
  /** Plain spec form (host params; the raw tensor, if any). */
  toSpec(): ActivationSpec {
    return {
      kind: this.kind,
      ...(this.raw ? { raw: this.raw } : { params: [...this.params] }),
      learnable: this.learnable,
      shared: this.shared,
      ...(this.channels !== null ? { channels: this.channels } : {}),
      ...(this.backward ? { backward: { kind: this.backward.kind, params: [...this.backward.params] } } : {}),
    };
  }
}

function kindOf(op: string, what: string, kind: unknown): ActivationKind {
  if (isActivationKind(kind)) return kind;
  throw new Error(`kinkless: ${op}: ${what}: unknown activation kind ${JSON.stringify(kind)}; valid kinds: ${ACTIVATION_KINDS.join(', ')}`);
}

/** Host values of `kind`'s params: count, finiteness, then each param's domain (from the table). */
function checkValues(op: string, what: string, kind: ActivationKind, v: unknown): number[] {
  const def = ACTIVATIONS[kind];
  if (!Array.isArray(v)) throw new Error(`kinkless: ${op}: ${what} must be a number array, got ${v instanceof Tensor ? 'a Tensor (learnable params go in spec.raw)' : String(v)}`);
  if (v.length !== def.params.length) {
    throw new Error(`kinkless: ${op}: ${what} for ${kind} must have ${def.params.length} value(s) [${def.paramNames.join(', ')}], got ${v.length} ([${v.join(', ')}])`);
  }
  v.forEach((x: unknown, i) => {
    const q = def.params[i]!;
    if (typeof x !== 'number' || !Number.isFinite(x)) throw new Error(`kinkless: ${op}: ${what} ${q.name} of ${kind} must be a finite number, got ${String(x)}`);
    const bad = paramDomainError(q, x);
    if (bad) throw new Error(`kinkless: ${op}: ${what} ${q.name} of ${kind} must be ${bad}, got ${x}`);
  });
  return [...(v as number[])];
}

/**
 * The one resolver: validates and normalises a spec (`op` names the calling op in
 * errors; `device`, when given, must hold the raw tensor). A ResolvedActivation passes
 * through (its raw tensor re-checked: alive, on `device`).
 */
export function resolveActivation(op: string, spec: ActivationSpec | ActivationKind | ResolvedActivation, device?: Tensor['device']): ResolvedActivation {
  if (spec instanceof ResolvedActivation) {
    if (spec.raw) checkRaw(op, spec.kind, spec.raw, device);
    return spec;
  }
  const s: ActivationSpec = typeof spec === 'string' ? { kind: spec } : spec;
  if (!s || typeof s !== 'object') throw new Error(`kinkless: ${op}: spec must be an activation kind or { kind, params?, raw?, backward? }, got ${String(spec)}`);
  const kind = kindOf(op, 'spec.kind', s.kind);
  const def = ACTIVATIONS[kind];
  let raw: Tensor | null = null;
  if (s.raw !== undefined) {
    if (!(s.raw instanceof Tensor)) throw new Error(`kinkless: ${op}: spec.raw must be an f32 Tensor, got ${String(s.raw)}`);
    if (s.params !== undefined) throw new Error(`kinkless: ${op}: spec.params and spec.raw are exclusive (the raw tensor holds the learnable values), got both`);
    checkRaw(op, kind, s.raw, device);
    raw = s.raw;
  }
  const params = s.params === undefined ? [...def.defaults] : checkValues(op, 'spec.params', kind, s.params);
  let backward: ResolvedActivation['backward'] = null;
  if (s.backward !== undefined) {
    if (!s.backward || typeof s.backward !== 'object') throw new Error(`kinkless: ${op}: spec.backward must be { kind, params? }, got ${String(s.backward)}`);
    const bk = kindOf(op, 'spec.backward.kind', s.backward.kind);
    const bp = s.backward.params === undefined ? [...ACTIVATIONS[bk].defaults] : checkValues(op, 'spec.backward.params', bk, s.backward.params);
    backward = Object.freeze({ kind: bk, params: Object.freeze(bp) });
  }
  for (const [k, v] of [['learnable', s.learnable], ['shared', s.shared]] as const) {
    if (v !== undefined && typeof v !== 'boolean') throw new Error(`kinkless: ${op}: spec.${k} must be a boolean, got ${String(v)}`);
  }
  let channels: number | null = raw && raw.rank === 2 ? raw.shape[0]! : null;
  if (s.channels !== undefined) {
    if (!Number.isInteger(s.channels) || s.channels < 1) throw new Error(`kinkless: ${op}: spec.channels must be a positive integer, got ${String(s.channels)}`);
    if (def.params.length === 0) throw new Error(`kinkless: ${op}: spec.channels needs a kind with parameters, ${kind} has none`);
    if (raw && channels !== s.channels) throw new Error(`kinkless: ${op}: spec.channels = ${s.channels} but spec.raw has shape ${shapeStr(raw.shape)}`);
    channels = s.channels;
  }
  const learnable = (s.learnable ?? def.learnable) && def.params.length > 0;
  return new ResolvedActivation(kind, Object.freeze(params), raw, backward, learnable, s.shared ?? false, channels);
}

function checkRaw(op: string, kind: ActivationKind, p: Tensor, device: Tensor['device'] | undefined): void {
  const def = ACTIVATIONS[kind];
  const count = def.params.length;
  if (count === 0) throw new Error(`kinkless: ${op}: ${kind} has no parameters, but spec.raw is a tensor of shape ${shapeStr(p.shape)}`);
  const ok = p.dtype === 'f32' && ((p.rank === 1 && p.shape[0] === count) || (p.rank === 2 && p.shape[1] === count && p.shape[0]! >= 1));
  if (!ok) {
    throw new Error(`kinkless: ${op}: spec.raw for ${kind} must be an f32 tensor of shape [${count}] ([${def.paramNames.join(', ')}]) or [C, ${count}] (per channel), got ${p.dtype} ${shapeStr(p.shape)}`);
  }
  if (p.isDisposed) throw new Error(`kinkless: ${op}: spec.raw tensor was already disposed`);
  if (device && p.device !== device) throw new Error(`kinkless: ${op}: spec.raw lives on device #${p.device.id}, x on #${device.id}`);
}

export function kernelConfig(r: ResolvedActivation, vec4: boolean): ActKernelConfig {
  return { kind: r.kind, params: r.count === 0 ? 'none' : r.raw ? 'buffer' : 'uniform', surrogate: r.surrogate, vec4 };
}

/** vec4 kernels cover ceil(n/4) vec4 items: every buffer involved must hold them. */
export function canVec4(n: number, bufs: GPUBuffer[], opt: boolean | undefined): boolean {
  if (opt === false) return false;
  const need = Math.ceil(n / 4) * 16;
  return bufs.every((b) => b.size >= need);
}

export function uniformsFor(n: number, nv: number, gx: number, r: ResolvedActivation): ArrayBuffer {
  return new Uniforms().u32(n, nv, gx, 0).f32(...r.uniform).bytes();
}

/**
 * Profile info of an elementwise activation launch over x: `bytes` is the caller's
 * minimum traffic. NOTE: flops are not counted (an activation is transcendental-bound,
 * and its cost per element differs by kind), so they are reported as 0.
 */
export function actInfo(op: string, x: Tensor, bytes: number): DispatchInfo {
  return { op, geometry: `${shapeStr(x.shape)}`, flops: 0, bytes };
}

/** Per-channel params need x's dim 1 to be their channel count. */
export function checkChannels(op: string, x: Tensor, r: ResolvedActivation): void {
  const C = r.raw!.shape[0]!;
  if (x.rank < 2 || x.shape[1] !== C) {
    throw new Error(`kinkless: ${op}: per-channel params [${C}, ${r.count}] need x with rank >= 2 and ${C} channels in dim 1, got x ${shapeStr(x.shape)}`);
  }
  if (C > 65535) throw new Error(`kinkless: ${op}: per-channel params support at most 65535 channels, got ${C}`);
}

export function checkX(op: string, x: Tensor): void {
  if (!(x instanceof Tensor)) throw new Error(`kinkless: ${op}: x must be a Tensor, got ${String(x)}`);
  assertSameDevice(op, x);
  if (x.dtype !== 'f32') throw new Error(`kinkless: ${op}: x must be f32, got an ${x.dtype} tensor of shape ${shapeStr(x.shape)}`);
}

/** Forward launch with no autograd. */
function forwardRaw(x: Tensor, r: ResolvedActivation, opts: ActivationOptions): Tensor {
  const device = x.device;
  const y = alloc(device, x.shape, 'f32', `activation_${r.kind}`);
  const n = x.size;
  if (n === 0) return y;
  const vec4 = canVec4(n, [x.buffer, y.buffer], opts.vec4);
  const nv = vec4 ? Math.ceil(n / 4) : n;
  const g = grid1d(nv, ACT_WG);
  const cfg = kernelConfig(r, vec4);
  const buffers = [x.buffer, ...(r.raw ? [r.raw.buffer] : []), y.buffer];
  device.dispatch({ kernel: activationForwardKernel(cfg), info: actInfo('activation', x, 2 * n * 4), buffers, uniforms: uniformsFor(n, nv, g.gx, r), workgroups: g.workgroups });
  return y;
}

/**
 * The fused activation: y = f(x) elementwise, with `spec.kind`'s f (see the file header
 * for params, constraints and surrogates). Records autograd on x and a learnable params
 * tensor; their gradients come from one fused backward pass.
 */
export function activation(x: Tensor, spec: ActivationSpec | ActivationKind | ResolvedActivation, opts: ActivationOptions = {}): Tensor {
  checkX('activation', x);
  const r = resolveActivation('activation', spec, x.device);
  if (r.perChannel) checkChannels('activation', x, r);
  const y = r.perChannel ? channelForward(x, r) : forwardRaw(x, r, opts);
  const inputs = r.raw ? [x, r.raw] : [x];
  record(y, `activation_${r.kind}`, inputs, (dy) => {
    const { dz, dParams } = backwardResolved(x, dy, r, { dz: x.requiresGrad, dParams: !!r.raw?.requiresGrad }, opts);
    return r.raw ? [dz, dParams] : [dz];
  });
  return y;
}

export interface ActivationBackwardResult {
  /** dy * f'(z) (f' of the surrogate if any); null when not requested. */
  dz: Tensor | null;
  /** Gradient of the RAW params tensor (its shape, [P] or [C, P]); null without a learnable params tensor or when not requested. */
  dParams: Tensor | null;
}

function backwardResolved(z: Tensor, dy: Tensor, r: ResolvedActivation, want: { dz?: boolean; dParams?: boolean }, opts: ActivationOptions): ActivationBackwardResult {
  const op = 'activationBackwardFromZ';
  const device = assertSameDevice(op, z, dy);
  if (dy.dtype !== 'f32' || dy.size !== z.size) {
    throw new Error(`kinkless: ${op}: dy must be an f32 tensor with as many elements as z ${shapeStr(z.shape)}, got ${dy.dtype} ${shapeStr(dy.shape)}`);
  }
  const wantDx = want.dz ?? true;
  const wantDp = (want.dParams ?? true) && r.raw !== null;
  if (!wantDx && !wantDp) return { dz: null, dParams: null };
  if (r.perChannel) return channelBackward(z, dy, r, { dx: wantDx, dp: wantDp });
  const n = z.size;
  const dx = wantDx ? alloc(device, z.shape, 'f32', `activation_${r.kind}_backward dx`) : null;
  if (n === 0) {
    const g = wantDp ? alloc(device, [r.count]) : null;
    if (g) device.queue.upload(g.buffer, new Float32Array(r.count));
    return { dz: dx, dParams: g };
  }
  const vec4 = canVec4(n, [z.buffer, dy.buffer, ...(dx ? [dx.buffer] : [])], opts.vec4);
  const nv = vec4 ? Math.ceil(n / 4) : n;
  const groups = actParamGroups(nv, true);
  const flat = grid1d(nv, ACT_WG);
  const cfg = kernelConfig(r, vec4);
  const kw = { dx: wantDx, dp: wantDp };
  const partials = wantDp ? alloc(device, [groups, 2], 'f32', `activation_${r.kind}_backward partials`) : null;
  const buffers = [z.buffer, dy.buffer];
  if (backwardBindsParams(cfg, kw)) buffers.push(r.raw!.buffer);
  if (dx) buffers.push(dx.buffer);
  if (partials) buffers.push(partials.buffer);
  device.dispatch({
    kernel: activationBackwardKernel({ cfg, want: kw }),
    info: actInfo('activation_backward', z, (2 + (wantDx ? 1 : 0)) * n * 4),
    buffers,
    uniforms: uniformsFor(n, nv, wantDp ? groups : flat.gx, r),
    workgroups: wantDp ? [groups] : flat.workgroups,
  });
  const dParams = partials ? reduceParamPartials(device, r, partials, groups) : null;
  return { dz: dx, dParams };
}

/**
 * Backward of an activation from its saved input (the pre-activation z of a fused
 * epilogue): dz = dy * f'(z) and the raw params' gradient, in one pass plus a small
 * sum. No autograd. `want` defaults to both; dParams is null without a params tensor.
 */
export function activationBackwardFromZ(
  z: Tensor,
  dy: Tensor,
  spec: ActivationSpec | ActivationKind | ResolvedActivation,
  want: { dz?: boolean; dParams?: boolean } = {},
  opts: ActivationOptions = {},
): ActivationBackwardResult {
  checkX('activationBackwardFromZ', z);
  const r = resolveActivation('activationBackwardFromZ', spec, z.device);
  if (r.perChannel) checkChannels('activationBackwardFromZ', z, r);
  return backwardResolved(z, dy, r, want, opts);
}

/** What a fused matmul/conv epilogue needs to apply an activation. */
export interface ActivationEpilogue {
  /** Module-scope WGSL: act_params/act_f/act_df/act_dp/act_f4/act_df4 (see kernels/activation_kernels.ts). No wgslMath(). */
  wgsl: string;
  /** Storage buffers to bind at `binding` (empty, or the raw params tensor's buffer). */
  buffers: GPUBuffer[];
  /** Four f32 uniform words to place in the host kernel's uniform block at `uniformField` (a vec4<f32>). */
  uniformF32: [number, number, number, number];
  /** Tensors to list as autograd inputs of the fused op (the params tensor, if any). */
  inputs: Tensor[];
  resolved: ResolvedActivation;
}

/**
 * WGSL and bindings for an activation inside another kernel. `uniformField` is the WGSL
 * path of a vec4<f32> uniform field (e.g. 'u.act') that receives `uniformF32`;
 * `binding` is the binding a params tensor would take (used only when the spec has a raw
 * tensor). Include wgslMath() once in the host shader.
 */
export function activationEpilogue(
  op: string,
  spec: ActivationSpec | ActivationKind | ResolvedActivation,
  where: { binding: number; uniformField: string; prefix?: string },
): ActivationEpilogue {
  const r = resolveActivation(op, spec);
  if (r.perChannel) throw new Error(`kinkless: ${op}: per-channel activation params (raw ${shapeStr(r.raw!.shape)}) are not supported in fused epilogues; apply activation() after the op`);
  const params =
    r.count === 0
      ? ({ from: 'none' } as const)
      : r.raw
        ? ({ from: 'buffer', binding: where.binding } as const)
        : ({ from: 'uniform', expr: `${where.uniformField}.xy` } as const);
  const wgsl = activationWgsl({
    kind: r.kind,
    prefix: where.prefix,
    params,
    surrogate: r.surrogate ? { kind: r.surrogate, expr: `${where.uniformField}.zw` } : undefined,
  });
  return { wgsl, buffers: r.raw ? [r.raw.buffer] : [], uniformF32: [r.uniform[0], r.uniform[1], r.uniform[2], r.uniform[3]], inputs: r.raw ? [r.raw] : [], resolved: r };
}

/**
 * Sums the per-workgroup parameter-gradient partials [groups, 2] into the raw parameters'
 * gradient [count] (through the constraint's chain rule when there is one) and disposes
 * the partials. Shared by the backward and the one-pass value-and-gradient op.
 */
export function reduceParamPartials(device: Device, r: ResolvedActivation, partials: Tensor, groups: number): Tensor {
  const dParams = alloc(device, [r.count], 'f32', `activation_${r.kind} param grad`);
  const pb = r.constraints.some((c) => c !== 'none') ? [partials.buffer, r.raw!.buffer, dParams.buffer] : [partials.buffer, dParams.buffer];
  device.dispatch({
    kernel: activationParamGradKernel(r.kind),
    info: { op: 'activation_param_grad', geometry: `${groups} partials -> ${r.count}`, flops: 2 * groups, bytes: 4 * (2 * groups + 2 * r.count) },
    buffers: pb,
    uniforms: new Uniforms().u32(groups).bytes(),
    workgroups: [1],
  });
  partials.dispose();
  return dParams;
}
