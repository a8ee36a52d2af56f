// Fused activation op: activation(x, spec) runs one forward kernel per activation kind
// and, on the way back, one kernel that writes dx = dy * f'(x) and reduces the
// parameter gradients in the same pass, then a tiny kernel that sums the per-workgroup
// partials and applies the abs chain rule. Only x (and the params) are saved for
// backward. Also: activationBackwardFromZ (for fused matmul/conv epilogues that keep
// the pre-activation z) and activationEpilogue (the WGSL + bindings such an epilogue
// includes). The kernels are built in kernels/activation_kernels.ts.
//
// Spec semantics:
// - params: number[] (host values; effective = raw, |raw| or raw^2 per constraint;
//   default constraint 'none'; they travel in the uniform block, no buffer, no
//   pipeline per value), or a f32 Tensor of shape [P] (learnable; effective =
//   constraint(raw) computed in the shader, so no readback; default constraint 'abs'
//   as in PAF's code, except PReLU: 'none', since PAF initialises its slope to 0, where
//   abs has a zero gradient and the slope would never move). 'square' is SAT's
//   SmoothReLU parametrisation (a = w^2, w init 20). Omitted: the kind's defaults.
// - backward: a surrogate derivative: the forward is spec.kind's f, dx uses
//   backward.kind's df with its own fixed params (default: that kind's defaults).
//   NOTE: the surrogate replaces df/dx ONLY. A learnable forward param still gets the
//   exact gradient of the forward kind (sum dy * df/dp of spec.kind): the surrogate is a
//   statement about how the input gradient flows (SAT's ablation: ReLU forward,
//   softplus(a=10) derivative for x), not a change of the function being trained.
import { Tensor, assertSameDevice, shapeStr } from '../tensor.ts';
import { record } from '../autograd.ts';
import { ACTIVATION_KINDS, ACTIVATIONS, type ActivationDef, type ActivationKind } from '../../kernels/activations.ts';
import { wgslMath } from '../../kernels/wgsl_math.ts';
import {
  ACT_WG,
  actParamGroups,
  activationBackwardWgsl,
  activationForwardWgsl,
  activationParamGradWgsl,
  activationWgsl,
  backwardBindsParams,
  type ActKernelConfig,
  type ParamConstraint,
} from '../../kernels/activation_kernels.ts';
import { grid1d } from '../../kernels/elementwise.ts';
import { Uniforms, alloc } from './launch.ts';

export interface ActivationSpec {
  kind: ActivationKind;
  /** Raw parameter values: host numbers, or a learnable f32 Tensor of shape [P]. */
  params?: Tensor | readonly number[];
  /** Effective = |raw| ('abs', default for Tensor params except prelu), raw^2 ('square'), or raw ('none', default for numbers and prelu tensors). */
  constraint?: ParamConstraint;
  /** Surrogate derivative for x: forward of spec.kind, df/dx of backward.kind (fixed params). */
  backward?: { kind: ActivationKind; params?: readonly number[] };
}

export interface ActivationOptions {
  /** Force the scalar kernels (default: vec4 kernels whenever the buffers allow it). */
  vec4?: boolean;
}

/** A validated spec, ready for launching kernels. */
export interface ResolvedActivation {
  kind: ActivationKind;
  def: ActivationDef;
  /** Number of params of the kind. */
  count: number;
  /** The learnable raw params (null when the params are host numbers or P = 0). */
  tensor: Tensor | null;
  constraint: ParamConstraint;
  /** Uniform words: xy = effective forward params (host numbers), zw = surrogate params. */
  uniform: [number, number, number, number];
  surrogate: ActivationKind | null;
}

function kindOf(op: string, what: string, kind: unknown): ActivationKind {
  if (typeof kind === 'string' && Object.prototype.hasOwnProperty.call(ACTIVATIONS, kind)) return kind as ActivationKind;
  throw new Error(`kinkless: ${op}: ${what} must be one of ${ACTIVATION_KINDS.join(', ')}, got ${JSON.stringify(kind)}`);
}

// NOTE: domain checks on host (effective) values; divisions by a (softplus, celu,
// smooth_relu) and by 1 - b (pssilu) must not hit zero. Tensor params cannot be
// checked without a readback: keep them away from these points (a raw a = 0 under 'abs'
// gives an undefined result).
function checkValues(op: string, what: string, kind: ActivationKind, def: ActivationDef, v: readonly number[]): void {
  if (v.length !== def.paramNames.length) {
    throw new Error(`kinkless: ${op}: ${what} for ${kind} must have ${def.paramNames.length} value(s) [${def.paramNames.join(', ')}], got ${v.length} ([${v.join(', ')}])`);
  }
  v.forEach((x, i) => {
    const name = def.paramNames[i]!;
    if (typeof x !== 'number' || !Number.isFinite(x)) throw new Error(`kinkless: ${op}: ${what} ${name} of ${kind} must be a finite number, got ${String(x)}`);
  });
  const need = (ok: boolean, name: string, cond: string, val: number) => {
    if (!ok) throw new Error(`kinkless: ${op}: ${what} ${name} of ${kind} must be ${cond}, got ${val}`);
  };
  if (kind === 'softplus' || kind === 'psoftplus' || kind === 'celu' || kind === 'smooth_relu') need(v[0]! > 0, def.paramNames[0]!, '> 0 (effective value)', v[0]!);
  if (kind === 'pssilu') need(v[1]! < 1, 'b', '< 1 (effective value; f divides by 1 - b)', v[1]!);
}

/** Validate and normalise a spec (`op` names the calling op in errors). */
export function resolveActivation(op: string, spec: ActivationSpec | ActivationKind, device?: Tensor['device']): ResolvedActivation {
  const s: ActivationSpec = typeof spec === 'string' ? { kind: spec } : spec;
  if (!s || typeof s !== 'object') throw new Error(`kinkless: ${op}: spec must be an activation kind or { kind, params?, constraint?, backward? }, got ${String(spec)}`);
  const kind = kindOf(op, 'spec.kind', s.kind);
  const def = ACTIVATIONS[kind];
  const count = def.paramNames.length;
  if (s.constraint !== undefined && s.constraint !== 'abs' && s.constraint !== 'square' && s.constraint !== 'none') {
    throw new Error(`kinkless: ${op}: spec.constraint must be 'abs', 'square' or 'none', got ${JSON.stringify(s.constraint)}`);
  }
  const uniform: [number, number, number, number] = [0, 0, 0, 0];
  let tensor: Tensor | null = null;
  let constraint: ParamConstraint;
  const p = s.params;
  if (p instanceof Tensor) {
    constraint = s.constraint ?? (kind === 'prelu' ? 'none' : 'abs');
    if (count === 0) throw new Error(`kinkless: ${op}: ${kind} has no parameters, but spec.params is a tensor of shape ${shapeStr(p.shape)}`);
    if (p.dtype !== 'f32' || p.rank !== 1 || p.shape[0] !== count) {
      throw new Error(`kinkless: ${op}: spec.params for ${kind} must be an f32 tensor of shape [${count}] ([${def.paramNames.join(', ')}]), got ${p.dtype} ${shapeStr(p.shape)}`);
    }
    if (p.isDisposed) throw new Error(`kinkless: ${op}: spec.params tensor was already disposed`);
    if (device && p.device !== device) throw new Error(`kinkless: ${op}: spec.params lives on device #${p.device.id}, x on #${device.id}`);
    tensor = p;
  } else {
    constraint = s.constraint ?? 'none';
    if (p !== undefined && !Array.isArray(p)) throw new Error(`kinkless: ${op}: spec.params must be a number array or an f32 Tensor, got ${String(p)}`);
    const raw = p === undefined ? def.defaults : [...p];
    const eff = raw.map((v) => (constraint === 'abs' ? Math.abs(v) : constraint === 'square' ? v * v : v));
    checkValues(op, 'spec.params', kind, def, eff);
    eff.forEach((v, i) => (uniform[i] = v));
  }
  let surrogate: ActivationKind | null = null;
  if (s.backward !== undefined) {
    if (!s.backward || typeof s.backward !== 'object') throw new Error(`kinkless: ${op}: spec.backward must be { kind, params? }, got ${String(s.backward)}`);
    surrogate = kindOf(op, 'spec.backward.kind', s.backward.kind);
    const sdef = ACTIVATIONS[surrogate];
    const sv = s.backward.params === undefined ? sdef.defaults : [...s.backward.params];
    checkValues(op, 'spec.backward.params', surrogate, sdef, sv);
    sv.forEach((v, i) => (uniform[2 + i] = v));
  }
  return { kind, def, count, tensor, constraint, uniform, surrogate };
}

function kernelConfig(r: ResolvedActivation, vec4: boolean): ActKernelConfig {
  return {
    kind: r.kind,
    params: r.count === 0 ? 'none' : r.tensor ? 'buffer' : 'uniform',
    count: r.count,
    constraint: r.constraint,
    surrogate: r.surrogate,
    vec4,
  };
}

/** vec4 kernels cover ceil(n/4) vec4 items: every buffer involved must hold them. */
function canVec4(n: number, bufs: GPUBuffer[], opt: boolean | undefined): boolean {
  if (opt === false) return false;
  const need = Math.ceil(n / 4) * 16;
  return bufs.every((b) => b.size >= need);
}

function uniformsFor(n: number, nv: number, gx: number, r: ResolvedActivation): ArrayBuffer {
  return new Uniforms().u32(n, nv, gx, 0).f32(...r.uniform).bytes();
}

function checkX(op: string, x: Tensor): void {
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
  const buffers = [x.buffer, ...(r.tensor ? [r.tensor.buffer] : []), y.buffer];
  device.dispatch({ name: `activation_${r.kind}`, wgsl: activationForwardWgsl(cfg, wgslMath()), buffers, uniforms: uniformsFor(n, nv, g.gx, r), workgroups: g.workgroups });
  return y;
}

/**
 * The fused activation: y = f(x) elementwise, with `spec.kind`'s f (see the file header
 * for params, constraints and surrogates). Records autograd on x and a learnable params
 * tensor; their gradients come from one fused backward pass.
 */
export function activation(x: Tensor, spec: ActivationSpec | ActivationKind, opts: ActivationOptions = {}): Tensor {
  checkX('activation', x);
  const r = resolveActivation('activation', spec, x.device);
  const y = forwardRaw(x, r, opts);
  const inputs = r.tensor ? [x, r.tensor] : [x];
  record(y, `activation_${r.kind}`, inputs, (dy) => {
    const { dz, dParams } = backwardResolved(x, dy, r, { dz: x.requiresGrad, dParams: !!r.tensor?.requiresGrad }, opts);
    return r.tensor ? [dz, dParams] : [dz];
  });
  return y;
}

export interface ActivationBackwardResult {
  /** dy * f'(z) (f' of the surrogate if any); null when not requested. */
  dz: Tensor | null;
  /** Gradient of the RAW params tensor (shape [P]); null without a learnable params tensor or when not requested. */
  dParams: Tensor | null;
}

function backwardResolved(z: Tensor, dy: Tensor, r: ResolvedActivation, want: { dz?: boolean; dParams?: boolean }, opts: ActivationOptions): ActivationBackwardResult {
  const op = 'activationBackwardFromZ';
  const device = assertSameDevice(op, z, dy);
  if (dy.dtype !== 'f32' || dy.size !== z.size) {
    throw new Error(`kinkless: ${op}: dy must be an f32 tensor with as many elements as z ${shapeStr(z.shape)}, got ${dy.dtype} ${shapeStr(dy.shape)}`);
  }
  const wantDx = want.dz ?? true;
  const wantDp = (want.dParams ?? true) && r.tensor !== null;
  if (!wantDx && !wantDp) return { dz: null, dParams: null };
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
  if (backwardBindsParams(cfg, kw)) buffers.push(r.tensor!.buffer);
  if (dx) buffers.push(dx.buffer);
  if (partials) buffers.push(partials.buffer);
  device.dispatch({
    name: `activation_${r.kind}_backward`,
    wgsl: activationBackwardWgsl(cfg, kw, wgslMath()),
    buffers,
    uniforms: uniformsFor(n, nv, wantDp ? groups : flat.gx, r),
    workgroups: wantDp ? [groups] : flat.workgroups,
  });
  let dParams: Tensor | null = null;
  if (partials) {
    dParams = alloc(device, [r.count], 'f32', `activation_${r.kind} param grad`);
    const pb = r.constraint !== 'none' ? [partials.buffer, r.tensor!.buffer, dParams.buffer] : [partials.buffer, dParams.buffer];
    device.dispatch({
      name: 'activation_param_grad',
      wgsl: activationParamGradWgsl(r.count, r.constraint),
      buffers: pb,
      uniforms: new Uniforms().u32(groups).bytes(),
      workgroups: [1],
    });
    partials.dispose();
  }
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
  spec: ActivationSpec | ActivationKind,
  want: { dz?: boolean; dParams?: boolean } = {},
  opts: ActivationOptions = {},
): ActivationBackwardResult {
  checkX('activationBackwardFromZ', z);
  const r = resolveActivation('activationBackwardFromZ', spec, z.device);
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
 * `binding` is the binding a params tensor would take (used only when spec.params is a
 * Tensor). Include wgslMath() once in the host shader.
 */
export function activationEpilogue(
  op: string,
  spec: ActivationSpec | ActivationKind,
  where: { binding: number; uniformField: string; prefix?: string },
): ActivationEpilogue {
  const r = resolveActivation(op, spec);
  const params =
    r.count === 0
      ? ({ from: 'none' } as const)
      : r.tensor
        ? ({ from: 'buffer', binding: where.binding, count: r.count, constraint: r.constraint } as const)
        : ({ from: 'uniform', expr: `${where.uniformField}.xy` } as const);
  const wgsl = activationWgsl({
    kind: r.kind,
    prefix: where.prefix,
    params,
    surrogate: r.surrogate ? { kind: r.surrogate, expr: `${where.uniformField}.zw` } : undefined,
  });
  return { wgsl, buffers: r.tensor ? [r.tensor.buffer] : [], uniformF32: r.uniform, inputs: r.tensor ? [r.tensor] : [], resolved: r };
}
