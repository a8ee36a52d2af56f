// WGSL builders for activations with PER-CHANNEL learnable params (one parameter set per
// channel, like PyTorch's PReLU(num_parameters = C)): x is contiguous [N, C, S...] (the
// channel is dim 1; S = the product of the dims after it), the raw params are [C, P]
// row-major, and element i belongs to channel c = (i / S) % C. The activation math comes
// from the table (activations.ts) through activationWgsl's 'channel' param source.
// engine/ops/activation.ts launches these kernels.
//
// Kernels (scalar: one f32 per item; a channel's elements are not vec4-aligned in general):
//   forward:   y[i] = f(x[i], params(c(i)))                     (grid1d over n)
//   backward:  dx only: dx[i] = dy[i] f'(x[i], params(c(i)))    (grid1d over n)
//              with dp: workgroups [G, C]; workgroup (g, c) walks channel c's N*S elements
//              grid-stride, writes dx on the way and one vec2 partial sum of dy * df/dp
//              (partials[c * G + g]); dx and the partials from ONE read of x and dy
//   param grad: one workgroup per channel sums its G partials and applies each param's
//              constraint chain (sign(raw) under abs, 2 raw under square), writing g[c, k]
import { activationDef, type ActivationKind } from './activations.ts';
import { ACT_WG, activationWgsl, constraintChainWgsl, paramGradConstraints } from './activation_kernels.ts';
import { wgReduceVec2, wgReduceVec2Decl } from './wgsl_workgroup_reduce.ts';
import { gridMain } from './wgsl_grid.ts';

/** Minimum grid-stride items per thread of the per-channel backward with param grads. */
const MIN_ITEMS = 8;
/** Cap on partials per channel (G) and on G * C. */
const MAX_G = 256;
const MAX_PARTIALS = 65536;

/** Workgroups per channel (G) of the per-channel backward with param grads. */
export function actChannelGroups(perChannel: number, channels: number): number {
  const want = Math.ceil(perChannel / (ACT_WG * MIN_ITEMS));
  return Math.max(1, Math.min(want, MAX_G, Math.floor(MAX_PARTIALS / Math.max(1, channels))));
}

export interface ActChannelConfig {
  kind: ActivationKind;
  /** Surrogate derivative kind (its params are u.p.zw). */
  surrogate: ActivationKind | null;
}

function uniformStruct(): string {
  // n: element count; gx: threads per grid row (flat kernels); C: channels; S: elements per
  // channel per sample; G: workgroups per channel (dp kernel); p.zw: surrogate params.
  return `struct U { n: u32, gx: u32, C: u32, S: u32, G: u32, pad0: u32, pad1: u32, pad2: u32, p: vec4<f32> };
@group(0) @binding(0) var<uniform> u: U;`;
}

/** Uniform block bytes layout (8 u32 then 4 f32) for the kernels below. */
export function actChannelUniformWords(n: number, gx: number, C: number, S: number, G: number): number[] {
  return [n, gx, C, S, G, 0, 0, 0];
}

/** Forward. Bindings: 0 uniforms, 1 x, 2 raw params [C, P], 3 y. */
export function activationChannelForwardWgsl(cfg: ActChannelConfig, math: string): string {
  return `// activation_${cfg.kind} forward (per-channel params)
${uniformStruct()}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
${math}
${activationWgsl({ kind: cfg.kind, params: { from: 'channel', binding: 2 } })}
${gridMain(ACT_WG, 'i', 'u.n')}
  y[i] = act_f(x[i], act_params_c((i / u.S) % u.C));
}
`;
}

/**
 * Backward. Bindings: 0 uniforms, 1 x, 2 dy, 3 raw params [C, P], then [dx if want.dx],
 * then [partials: array<vec2<f32>> of C * G entries if want.dp]. The raw params are always
 * bound (f' of the forward kind and df/dp read them; a surrogate's f' ignores them).
 */
export function activationChannelBackwardWgsl(cfg: ActChannelConfig, want: { dx: boolean; dp: boolean }, math: string): string {
  if (!want.dx && !want.dp) throw new Error('activationChannelBackwardWgsl: nothing to compute (want.dx and want.dp are both false)');
  let b = 4;
  const dxB = want.dx ? b++ : -1;
  const partB = want.dp ? b++ : -1;
  const sur = cfg.surrogate ? { kind: cfg.surrogate, expr: 'u.p.zw' } : undefined;
  const head = `// activation_${cfg.kind}_backward (per-channel params, dx: ${want.dx}, dp: ${want.dp}${cfg.surrogate ? `, surrogate df: ${cfg.surrogate}` : ''})
${uniformStruct()}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
${want.dx ? `@group(0) @binding(${dxB}) var<storage, read_write> dx: array<f32>;` : ''}
${want.dp ? `@group(0) @binding(${partB}) var<storage, read_write> partials: array<vec2<f32>>;
${wgReduceVec2Decl(ACT_WG)}` : ''}
${math}
${activationWgsl({ kind: cfg.kind, params: { from: 'channel', binding: 3 }, surrogate: sur })}`;
  if (!want.dp) {
    return `${head}
${gridMain(ACT_WG, 'i', 'u.n')}
  dx[i] = dy[i] * act_df(x[i], act_params_c((i / u.S) % u.C));
}
`;
  }
  return `${head}
@compute @workgroup_size(${ACT_WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let c = wid.y;
  let p = act_params_c(c);
  let m = u.n / u.C; // this channel's elements: N * S
  var acc = vec2<f32>(0.0, 0.0);
  for (var j = wid.x * ${ACT_WG}u + li; j < m; j += u.G * ${ACT_WG}u) {
    let smp = j / u.S;
    let i = (smp * u.C + c) * u.S + (j - smp * u.S);
    let xv = x[i];
    let g = dy[i];
${want.dx ? '    dx[i] = g * act_df(xv, p);' : ''}
    acc += act_dp(xv, p) * g;
  }
${wgReduceVec2(ACT_WG, 'acc')}
  if (li == 0u) { partials[c * u.G + wid.x] = red[0]; }
}
`;
}

/**
 * Per-channel param grad: workgroup c sums partials[c * G .. c * G + G) and applies each
 * param's constraint chain with raw[c, k]. Bindings: 0 uniforms (u.G, u.C), 1 partials,
 * [2 raw [C, P] unless every constraint is 'none'], then g [C, P]. Dispatch [C] workgroups.
 */
/** Whether activationChannelParamGradWgsl(kind) binds the raw params. */
export function channelParamGradBindsRaw(kind: ActivationKind): boolean {
  return activationDef(kind).params.some((q) => q.constraint !== 'none');
}

export function activationChannelParamGradWgsl(kind: ActivationKind): string {
  const { cs, bindsRaw } = paramGradConstraints('activationChannelParamGradWgsl', kind);
  const P = cs.length;
  const chain = (k: number, lane: string) => constraintChainWgsl(cs[k]!, `red[0].${lane}`, `raw[c * ${P}u + ${k}u]`);
  return `// activation_param_grad per channel (${kind}: ${cs.join(', ')})
${uniformStruct()}
@group(0) @binding(1) var<storage, read> partials: array<vec2<f32>>;
${bindsRaw ? '@group(0) @binding(2) var<storage, read> raw: array<f32>;' : ''}
@group(0) @binding(${bindsRaw ? 3 : 2}) var<storage, read_write> g: array<f32>;
${wgReduceVec2Decl(ACT_WG)}
@compute @workgroup_size(${ACT_WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let c = wid.x;
  var acc = vec2<f32>(0.0, 0.0);
  for (var j = li; j < u.G; j += ${ACT_WG}u) {
    acc += partials[c * u.G + j];
  }
${wgReduceVec2(ACT_WG, 'acc')}
  if (li == 0u) {
    g[c * ${P}u] = ${chain(0, 'x')};
${P === 2 ? `    g[c * ${P}u + 1u] = ${chain(1, 'y')};` : ''}
  }
}
`;
}
