// Split-K reduce: y[b] = epi(sum over s of partial[b * S + s] (+ bias[n])), the second pass
// of a split-K GEMM (kernels/matmul_subgroup.ts with splitK writes the S partial products,
// one per K slice, as partial [batch * S, M, N]). Optional activation epilogue (same
// `fn epi_act` hook and `act: vec4<f32>` uniform field as the GEMM kernels) and saveZ.
//
// Uniforms (u32 words): n (threads), MN (= M * N), N, S, gx (threads per grid row), 3 pad,
// then act (vec4<f32>) when there is an epilogue. Bindings: 1 partial, [2 bias], y, [z],
// then the epilogue's own.
// NOTE: the S partials are summed in slice order by one thread: deterministic, and the
// rounding matches a K-ordered sum regrouped into S blocks (no atomics).

import { defineKernel, reads, writes, type Binding } from './kernel.ts';
import { gridMain } from './wgsl_grid.ts';

export const SPLITK_WG = 64;

export interface SplitKReduceParams {
  /** N % 4 == 0: one vec4 of a row per thread. */
  vec: boolean;
  bias: boolean;
  act?: string;
  saveZ: boolean;
  epiBindings: number;
}

/** The first binding free for an epilogue's buffers (after partial, [bias], y, [z]). */
export function splitKEpilogueBinding(o: { bias: boolean; saveZ: boolean }): number {
  return 3 + (o.bias ? 1 : 0) + (o.saveZ ? 1 : 0);
}

export function splitKReduceWgsl(p: SplitKReduceParams): string {
  if (p.saveZ && !p.act) throw new Error('matmul_splitk_reduce: saveZ needs an act epilogue');
  const T = p.vec ? 'vec4<f32>' : 'f32';
  const decl = [`@group(0) @binding(1) var<storage, read> partial: array<${T}>;`];
  let nb = 2;
  if (p.bias) decl.push(`@group(0) @binding(${nb++}) var<storage, read> bias: array<f32>;`);
  decl.push(`@group(0) @binding(${nb++}) var<storage, read_write> y: array<${T}>;`);
  if (p.saveZ) decl.push(`@group(0) @binding(${nb++}) var<storage, read_write> z: array<${T}>;`);
  const w = p.vec ? 4 : 1;
  const biasV = p.vec ? 'vec4<f32>(bias[n], bias[n + 1u], bias[n + 2u], bias[n + 3u])' : 'bias[n]';
  const act = p.act ? (p.vec ? 'vec4<f32>(epi_act(zv.x), epi_act(zv.y), epi_act(zv.z), epi_act(zv.w))' : 'epi_act(zv)') : 'zv';
  return `// matmul_splitk_reduce (vec=${p.vec}${p.bias ? ', bias' : ''}${p.act ? ', act' : ''}${p.saveZ ? ', saveZ' : ''})
struct U { n: u32, MN: u32, N: u32, S: u32, gx: u32, p0: u32, p1: u32, p2: u32${p.act ? ', act: vec4<f32>' : ''} };
@group(0) @binding(0) var<uniform> u: U;
${decl.join('\n')}
${p.act ?? ''}
${gridMain(SPLITK_WG, 'i', 'u.n')}
  let e = i * ${w}u;
  let bt = e / u.MN;
  let r = e % u.MN;
  let base = bt * u.S * u.MN + r;
  var acc = ${T}(0.0);
  for (var s = 0u; s < u.S; s++) {
    acc += partial[(base + s * u.MN) / ${w}u];
  }
  let n = r % u.N;
  let zv = acc${p.bias ? ` + ${biasV}` : ''};
  y[i] = ${act};${p.saveZ ? '\n  z[i] = zv;' : ''}
}
`;
}

function bindings(p: SplitKReduceParams): Binding[] {
  const out = reads('partial');
  if (p.bias) out.push(...reads('bias'));
  out.push(...writes('y'));
  if (p.saveZ) out.push(...writes('z'));
  for (let i = 0; i < p.epiBindings; i++) out.push(...reads(i === 0 ? 'act_raw' : `epi${i}`));
  return out;
}

export const splitKReduceKernel = defineKernel<SplitKReduceParams>({
  name: 'matmul_splitk_reduce',
  label: (p) => `matmul_splitk_reduce${p.act ? '_act' : ''}`,
  key: (p) => [+p.vec, +p.bias, +p.saveZ, p.epiBindings, p.act ?? ''].join(':'),
  bindings,
  build: splitKReduceWgsl,
});
