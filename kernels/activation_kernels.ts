// WGSL builders for the fused activation kernels (forward, and a backward that writes
// dx = dy * f'(x) and reduces the parameter gradients in the same pass), plus the
// snippet that matmul/conv epilogues include to apply an activation. The activation
// math itself comes from the table in activations.ts; this file only builds kernels
// around it. engine/ops/activation.ts launches these kernels and records autograd.
//
// Exported API (for op authors, e.g. the fused linear+bias+act and conv+bias+act kernels):
//
//   activationWgsl(opts: ActivationWgslOptions): string
//     Module-scope WGSL defining, for prefix P (default 'act'):
//       fn P_params() -> vec2<f32>             EFFECTIVE forward params (abs applied when
//                                              they come from a raw buffer with 'abs')
//       fn P_f(x: f32, p: vec2<f32>) -> f32    forward of opts.kind
//       fn P_df(x: f32, p: vec2<f32>) -> f32   df/dx: opts.kind's, or the surrogate's
//                                              (then p is ignored; the surrogate's own
//                                              params come from opts.surrogate.expr)
//       fn P_dp(x: f32, p: vec2<f32>) -> vec2<f32>  df/d(effective params) of opts.kind
//       fn P_fdf(x: f32, p: vec2<f32>) -> vec2<f32> (P_f, P_df) from one evaluation
//       fn P_fdfdp(x: f32, p: vec2<f32>) -> vec4<f32> (P_f, P_df, P_dp) likewise
//       fn P_f4 / P_df4 (x: vec4<f32>, p) -> vec4<f32>   lane-wise versions
//     and, when params come from a buffer, the binding
//       @group(0) @binding(B) var<storage, read> P_raw: array<f32>;
//     It does NOT include wgslMath(): the caller concatenates wgslMath() exactly once
//     per shader. Typical epilogue: `let p = act_params(); y = act_f(acc + bias, p);`,
//     and its backward: `dz = dy * act_df(z, p)`; or call the engine's
//     activationBackwardFromZ(z, dy, spec) (engine/ops/activation.ts), which runs the
//     kernels below on a saved pre-activation z and also returns the param gradient.
//   activationParamSource(...)           see ActivationParamSource below.
//   activationForwardWgsl(cfg), activationBackwardWgsl(cfg, want), activationParamGradWgsl(kind)
//     The standalone kernels; binding layouts are listed on each builder.
//   actParamGroups(nv, withDp): number of workgroups of the backward kernel.
//   ACT_WG: workgroup size (256).
//
// Parameter conventions: a kind has P = 0, 1 or 2 effective params (p.x, p.y). They come
// either from a uniform vec4 (host numbers: xy forward params, zw surrogate params, both
// effective) or from the raw param tensor's buffer (learnable params; effective = the
// table's constraint of each raw value: |raw| under 'abs', raw^2 under 'square', applied
// in the shader, so GPU params need no readback).

import { activationDef, type ActivationKind, type ParamConstraint } from './activations.ts';
import { wgReduceVec2, wgReduceVec2Decl } from './wgsl_workgroup_reduce.ts';
import { gridMain } from './wgsl_grid.ts';

export type { ParamConstraint };

export const ACT_WG = 256;
/** Cap on workgroups of the backward kernel when it also reduces param grads (partials buffer size). */
export const ACT_MAX_DP_GROUPS = 1024;

/** Where a kernel's forward activation params come from. */
export type ActivationParamSource =
  | { from: 'none' }
  /** A vec2<f32> WGSL expression of the EFFECTIVE params, e.g. 'u.act.xy'. */
  | { from: 'uniform'; expr: string }
  /** The raw param tensor bound at `binding` (P values); effective = the kind's constraints of raw. */
  | { from: 'buffer'; binding: number }
  /**
   * Per-channel raw params bound at `binding` ([C, P] row-major): defines
   * `fn P_params_c(c: u32) -> vec2<f32>` (channel c's effective params) instead of P_params.
   */
  | { from: 'channel'; binding: number };

export interface ActivationWgslOptions {
  kind: ActivationKind;
  /** Name prefix of the generated functions (a WGSL identifier; default 'act'). */
  prefix?: string;
  params: ActivationParamSource;
  /** Surrogate derivative: df/dx of this kind with params from `expr` (vec2, effective). */
  surrogate?: { kind: ActivationKind; expr: string };
}

/** WGSL of the effective value of a raw value `r` (an expression without side effects). */
function constrainWgsl(c: ParamConstraint, r: string): string {
  return c === 'abs' ? `abs(${r})` : c === 'square' ? `${r} * ${r}` : r;
}

/** Module-scope WGSL for applying (and differentiating) one activation; see the header. */
export function activationWgsl(o: ActivationWgslOptions): string {
  const P = o.prefix ?? 'act';
  const def = activationDef(o.kind);
  const parts: string[] = [def.wgsl(`${P}_fwd`)];
  if (o.surrogate) parts.push(activationDef(o.surrogate.kind).wgsl(`${P}_sur`));
  let params: string;
  const src = o.params;
  const count = def.params.length;
  if (src.from === 'none') params = 'vec2<f32>(0.0, 0.0)';
  else if (src.from === 'uniform') params = src.expr;
  else {
    if (count === 0) throw new Error(`activationWgsl: ${o.kind} has no parameters to read from a buffer`);
    parts.push(`@group(0) @binding(${src.binding}) var<storage, read> ${P}_raw: array<f32>;`);
    const at = (i: number) => (src.from === 'channel' ? `${P}_raw[c * ${count}u + ${i}u]` : `${P}_raw[${i}]`);
    const eff = def.params.map((q, i) => constrainWgsl(q.constraint, at(i)));
    params = `vec2<f32>(${eff[0]}, ${eff[1] ?? '0.0'})`;
  }
  const df = o.surrogate ? `${P}_sur_df(x, ${o.surrogate.expr})` : `${P}_fwd_df(x, p)`;
  const fdf = o.surrogate ? `vec2<f32>(${P}_fwd_f(x, p), ${df})` : `${P}_fwd_fdf(x, p)`;
  const all = o.surrogate ? `vec4<f32>(${P}_fwd_f(x, p), ${df}, ${P}_fwd_dp(x, p))` : `${P}_fwd_fdfdp(x, p)`;
  const paramsFn = src.from === 'channel' ? `fn ${P}_params_c(c: u32) -> vec2<f32>` : `fn ${P}_params() -> vec2<f32>`;
  parts.push(`
${paramsFn} {
  return ${params};
}
fn ${P}_f(x: f32, p: vec2<f32>) -> f32 {
  return ${P}_fwd_f(x, p);
}
fn ${P}_df(x: f32, p: vec2<f32>) -> f32 {
  return ${df};
}
fn ${P}_dp(x: f32, p: vec2<f32>) -> vec2<f32> {
  return ${P}_fwd_dp(x, p);
}
fn ${P}_fdf(x: f32, p: vec2<f32>) -> vec2<f32> {
  return ${fdf};
}
fn ${P}_fdfdp(x: f32, p: vec2<f32>) -> vec4<f32> {
  return ${all};
}
fn ${P}_f4(x: vec4<f32>, p: vec2<f32>) -> vec4<f32> {
  return vec4<f32>(${P}_f(x.x, p), ${P}_f(x.y, p), ${P}_f(x.z, p), ${P}_f(x.w, p));
}
fn ${P}_df4(x: vec4<f32>, p: vec2<f32>) -> vec4<f32> {
  return vec4<f32>(${P}_df(x.x, p), ${P}_df(x.y, p), ${P}_df(x.z, p), ${P}_df(x.w, p));
}
`);
  return parts.join('\n');
}

/** Compile-time configuration of the standalone kernels. */
export interface ActKernelConfig {
  kind: ActivationKind;
  /** Params from the uniform block (u.p.xy) or from the raw tensor buffer. 'none' for P = 0. */
  params: 'none' | 'uniform' | 'buffer';
  /** Surrogate derivative kind (its params are u.p.zw). */
  surrogate: ActivationKind | null;
  /**
   * vec4 path: the arrays are vec4 and the last vec4 may be partial. NOTE: every pool
   * buffer is a multiple of 64 bytes, so the partial vec4 lies inside the buffer; its
   * lanes >= n are masked to 0 on load (so padding garbage never enters a sum) and the
   * values written there land in the output's padding, which no one reads.
   */
  vec4: boolean;
}

function uniformStruct(): string {
  // n: element count; nv: number of T items (vec4s or scalars); gx: threads per grid row
  // (forward) or workgroup count (backward); p: xy forward params, zw surrogate params.
  return `struct U { n: u32, nv: u32, gx: u32, pad: u32, p: vec4<f32> };
@group(0) @binding(0) var<uniform> u: U;`;
}

function source(cfg: ActKernelConfig, binding: number): ActivationParamSource {
  if (cfg.params === 'uniform') return { from: 'uniform', expr: 'u.p.xy' };
  if (cfg.params === 'buffer') return { from: 'buffer', binding };
  return { from: 'none' };
}

function maskedLoad(arr: string, vec4: boolean): string {
  if (!vec4) return `${arr}[i]`;
  return `select(vec4<f32>(0.0), ${arr}[i], vec4<u32>(i * 4u) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(u.n))`;
}

/**
 * activation_<kind> forward. Bindings: 0 uniforms, 1 x, [2 raw params if cfg.params ==
 * 'buffer'], then y. One T item per thread; 2-D grid, i = gid.x + gid.y * u.gx.
 */
export function activationForwardWgsl(cfg: ActKernelConfig, math: string): string {
  const T = cfg.vec4 ? 'vec4<f32>' : 'f32';
  const pb = cfg.params === 'buffer' ? 1 : 0;
  const fn = cfg.vec4 ? 'act_f4' : 'act_f';
  return `// activation_${cfg.kind} forward (${cfg.vec4 ? 'vec4' : 'scalar'}, params: ${cfg.params})
${uniformStruct()}
@group(0) @binding(1) var<storage, read> x: array<${T}>;
@group(0) @binding(${2 + pb}) var<storage, read_write> y: array<${T}>;
${math}
${activationWgsl({ kind: cfg.kind, params: source(cfg, 2) })}
${gridMain(ACT_WG, 'i', 'u.nv')}
  let p = act_params();
  y[i] = ${fn}(${maskedLoad('x', cfg.vec4)}, p);
}
`;
}

/** Which outputs the backward kernel writes. At least one must be true. */
export interface ActBackwardWant {
  dx: boolean;
  /** Reduce sum(dy * df/dp) per workgroup into partials (needs cfg.params == 'buffer'). */
  dp: boolean;
}

/** Whether the backward kernel reads the forward params (a surrogate without dp does not). */
export function backwardNeedsParams(cfg: ActKernelConfig, want: ActBackwardWant): boolean {
  return cfg.params !== 'none' && (want.dp || cfg.surrogate === null);
}

/** Whether the backward kernel binds the raw params buffer (at binding 3). */
export function backwardBindsParams(cfg: ActKernelConfig, want: ActBackwardWant): boolean {
  return cfg.params === 'buffer' && backwardNeedsParams(cfg, want);
}

/** Minimum grid-stride items per thread of the backward kernel with param grads. */
export const ACT_DP_MIN_ITEMS = 8;

/**
 * Workgroups of the backward kernel with param grads (grid-stride loop over nv items;
 * without param grads it uses grid1d like the forward, and withDp = false gives 1 item per thread).
 * NOTE: with param grads, each workgroup ends in a shared-memory tree (8 barriers) and
 * writes one partial; at least ACT_DP_MIN_ITEMS items per thread keep that tail small
 * (on lavapipe the barriers of 1024 one-item workgroups cost 4x the streaming work),
 * and the cap bounds the partials buffer while leaving 256K threads for large inputs.
 */
export function actParamGroups(nv: number, withDp: boolean): number {
  const perGroup = ACT_WG * (withDp ? ACT_DP_MIN_ITEMS : 1);
  return Math.max(1, Math.min(Math.ceil(nv / perGroup), withDp ? ACT_MAX_DP_GROUPS : 65535));
}

/**
 * activation_<kind>_backward. Bindings: 0 uniforms, 1 x, 2 dy, [3 raw params if
 * backwardBindsParams], then [dx if want.dx], then [partials:
 * array<vec2<f32>> of one entry per workgroup if want.dp].
 * With want.dp: a 1-D grid of u.gx workgroups (actParamGroups) looping grid-stride.
 * NOTE: dx and the param-gradient partials come from ONE read of x and dy; each thread
 * accumulates its grid-stride items, then a shared-memory tree reduces the workgroup.
 * Without: one item per thread on a 2-D grid, i = gid.x + gid.y * u.gx (as the forward).
 */
export function activationBackwardWgsl(cfg: ActKernelConfig, want: ActBackwardWant, math: string): string {
  if (!want.dx && !want.dp) throw new Error('activationBackwardWgsl: nothing to compute (want.dx and want.dp are both false)');
  if (want.dp && cfg.params !== 'buffer') throw new Error('activationBackwardWgsl: param gradients need params from a buffer');
  const T = cfg.vec4 ? 'vec4<f32>' : 'f32';
  const readsP = backwardNeedsParams(cfg, want);
  let b = 3;
  const pBinding = backwardBindsParams(cfg, want) ? b++ : -1;
  const dxBinding = want.dx ? b++ : -1;
  const partBinding = want.dp ? b++ : -1;
  const src: ActivationParamSource = readsP ? source(cfg, pBinding) : { from: 'none' };
  const sur = cfg.surrogate ? { kind: cfg.surrogate, expr: 'u.p.zw' } : undefined;
  // NOTE: f', df/dp from one act_fdfdp per element (one exp; its unused f is dead code).
  const lanes = cfg.vec4 ? ['x', 'y', 'z', 'w'] : [''];
  const evals = lanes.map((l, k) => `    let r${k} = act_fdfdp(xv${l && `.${l}`}, p);`).join('\n');
  const dpTerm = lanes.map((l, k) => `r${k}.zw * g${l && `.${l}`}`).join(' + ');
  const dfv = cfg.vec4 ? 'vec4<f32>(r0.y, r1.y, r2.y, r3.y)' : 'r0.y';
  return `// activation_${cfg.kind}_backward (${cfg.vec4 ? 'vec4' : 'scalar'}, dx: ${want.dx}, dp: ${want.dp}${cfg.surrogate ? `, surrogate df: ${cfg.surrogate}` : ''})
${uniformStruct()}
@group(0) @binding(1) var<storage, read> x: array<${T}>;
@group(0) @binding(2) var<storage, read> dy: array<${T}>;
${want.dx ? `@group(0) @binding(${dxBinding}) var<storage, read_write> dx: array<${T}>;` : ''}
${want.dp ? `@group(0) @binding(${partBinding}) var<storage, read_write> partials: array<vec2<f32>>;
${wgReduceVec2Decl(ACT_WG)}` : ''}
${math}
${activationWgsl({ kind: cfg.kind, params: src, surrogate: sur })}
${want.dp ? `@compute @workgroup_size(${ACT_WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let p = act_params();
  var acc = vec2<f32>(0.0, 0.0);
  let stride = u.gx * ${ACT_WG}u;
  for (var i = wid.x * ${ACT_WG}u + li; i < u.nv; i += stride) {
    let xv = ${maskedLoad('x', cfg.vec4)};
    let g = ${maskedLoad('dy', cfg.vec4)};
${evals}
${want.dx ? `    dx[i] = g * ${dfv};` : ''}
    acc += ${dpTerm};
  }
${wgReduceVec2(ACT_WG, 'acc')}
  if (li == 0u) { partials[wid.x] = red[0]; }
}` : `${gridMain(ACT_WG, 'i', 'u.nv')}
  let p = act_params();
  dx[i] = ${maskedLoad('dy', cfg.vec4)} * ${cfg.vec4 ? 'act_df4' : 'act_df'}(${maskedLoad('x', cfg.vec4)}, p);
}`}
`;
}

/**
 * The constraints of `kind`'s params, for a param-gradient kernel (`who` names it in the
 * error when the kind has none), and whether that kernel binds the raw params (some
 * constraint is not 'none').
 */
export function paramGradConstraints(who: string, kind: ActivationKind): { cs: ParamConstraint[]; bindsRaw: boolean } {
  const cs = activationDef(kind).params.map((q) => q.constraint);
  if (cs.length < 1) throw new Error(`${who}: ${kind} has no parameters`);
  return { cs, bindsRaw: cs.some((c) => c !== 'none') };
}

/**
 * WGSL of the gradient of a RAW param from `g`, the gradient of its effective value, by the
 * constraint's chain rule at raw value `raw`: abs: g sign(raw) (sign(0) = 0); square:
 * g 2 raw; none: g.
 */
export function constraintChainWgsl(con: ParamConstraint, g: string, raw: string): string {
  return con === 'abs' ? `${g} * sign(${raw})` : con === 'square' ? `${g} * (2.0 * ${raw})` : g;
}

/**
 * activation_param_grad: sums the backward kernel's per-workgroup partials and applies
 * each parameter's constraint chain rule (abs: multiply by sign(raw), sign(0) = 0;
 * square: by 2 raw), writing the gradient of the RAW params. Bindings: 0 uniforms (u.n =
 * number of partials), 1 partials, [2 raw params unless every constraint is 'none'], then
 * g (P floats). One workgroup.
 */
export function activationParamGradWgsl(kind: ActivationKind): string {
  const { cs, bindsRaw } = paramGradConstraints('activationParamGradWgsl', kind);
  const count = cs.length;
  const chain = (k: number, c: string) => constraintChainWgsl(cs[k]!, `red[0].${c}`, `raw[${k}]`);
  return `// activation_param_grad (${kind}: ${cs.join(', ')})
struct U { n: u32, p0: u32, p1: u32, p2: u32 };
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> partials: array<vec2<f32>>;
${bindsRaw ? '@group(0) @binding(2) var<storage, read> raw: array<f32>;' : ''}
@group(0) @binding(${bindsRaw ? 3 : 2}) var<storage, read_write> g: array<f32>;
${wgReduceVec2Decl(ACT_WG)}
@compute @workgroup_size(${ACT_WG})
fn main(@builtin(local_invocation_index) li: u32) {
  var acc = vec2<f32>(0.0, 0.0);
  for (var j = li; j < u.n; j += ${ACT_WG}u) {
    acc += partials[j];
  }
${wgReduceVec2(ACT_WG, 'acc')}
  if (li == 0u) {
    g[0] = ${chain(0, 'x')};
${count === 2 ? `    g[1] = ${chain(1, 'y')};` : ''}
  }
}
`;
}

/** Shared with the fused value-and-grad kernel (kernels/activation_value_grad_kernels.ts). */
export { uniformStruct as actUniformStruct, source as actKernelParamSource, maskedLoad as actMaskedLoad };
