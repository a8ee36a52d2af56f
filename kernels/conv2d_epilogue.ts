// WGSL for the epilogue of the GEMM conv2d path (engine/ops/conv2d_gemm.ts, impl 'gemm',
// with a fused activation and/or a bias not folded into the product): the product leaves
// the pre-activation in pixel-major order zT [G, Nc, OH*OW, Og], and the permute to NCHW
// is the one pass over the output, so the epilogue lives there: one read of zT, one write
// of y = epi_act(z + b) and, when the backward needs it, one write of z + b.
//
// Uniform block: Nc O OHW Og | n0 gx threads 0 | act: vec4<f32> (the activation's params).
// Bindings: zt, y, [z], [b], then the epilogue's own buffers (from gemmEpilogueBinding).

import { defineKernel, reads, writes } from './kernel.ts';
import { gridMainI32 } from './wgsl_grid.ts';

export const GEMM_EPI_WG = 64;
/** Consecutive output pixels per thread (per-invocation overhead dominates copies on lavapipe). */
export const GEMM_EPI_EPT = 8;

/** The first binding free for the epilogue's own buffers (after zt, y, [z], [b]). */
export function gemmEpilogueBinding(saveZ: boolean, bias = false): number {
  return 3 + (saveZ ? 1 : 0) + (bias ? 1 : 0);
}

/**
 * y[n0 + n, o, pix] = epi_act(zt[g, n, pix, ol] (+ b[o])) (o = g*Og + ol), z likewise with the
 * raw value when `saveZ`. One thread per GEMM_EPI_EPT consecutive pixels of one (n, o)
 * plane: threads = Nc * O * ceil(OHW / EPT), index gid.x + gid.y * u.gx. `act` defines
 * `fn epi_act(z: f32) -> f32` (and may declare bindings from gemmEpilogueBinding on); null:
 * none (a plain permute + bias).
 */
export function gemmPermuteActWgsl(act: string | null, saveZ: boolean, bias = false, baked: GemmEpiBaked | null = null): string {
  const E = GEMM_EPI_EPT;
  if (saveZ && act === null) throw new Error('conv2d_gemm_epilogue: saveZ needs an act');
  const wgsl = permuteActWgsl(act, saveZ, bias, E);
  if (!baked) return wgsl;
  // NOTE (lavapipe): the thread index is split with % and / by O, OHW and Og; as constants
  // they compile to multiplies (by uniforms, to scalar divisions: no vector integer division on x86).
  const out = wgsl.replace(/\bu\.(O|OHW|Og)\b/g, (_m, f: keyof GemmEpiBaked) => `${baked[f]}i`);
  return out;
}

/** The geometry an epilogue kernel may bake in (the image count Nc stays a uniform). */
export interface GemmEpiBaked {
  O: number;
  OHW: number;
  Og: number;
}

function permuteActWgsl(act: string | null, saveZ: boolean, bias: boolean, E: number): string {
  return `// conv2d_gemm_epilogue (permute zT -> NCHW, y = ${act === null ? 'z' : 'act(z)'}${bias ? ' + bias' : ''}${saveZ ? ', saveZ' : ''}, ${E} pixels per thread)
struct U { Nc: i32, O: i32, OHW: i32, Og: i32, n0: i32, gx: i32, threads: i32, pad: i32, act: vec4<f32> };
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> zt: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
${saveZ ? '@group(0) @binding(3) var<storage, read_write> z: array<f32>;' : ''}
${bias ? `@group(0) @binding(${saveZ ? 4 : 3}) var<storage, read> b: array<f32>;` : ''}
${act ?? ''}
${gridMainI32(GEMM_EPI_WG, 't', 'u.threads')}
  let nblk = (u.OHW + ${E - 1}) / ${E};
  let blk = t % nblk;
  let plane = t / nblk;
  let o = plane % u.O;
  let n = plane / u.O;
  let g = o / u.Og;
  let src = (g * u.Nc + n) * u.OHW * u.Og + o % u.Og;
  let dst = ((u.n0 + n) * u.O + o) * u.OHW;
  let p0 = blk * ${E};
  // NOTE: a loop, not unrolled (data-dependent trip count): one inlined activation.
  let p1 = min(p0 + ${E}, u.OHW);${bias ? '\n  let bo = b[u32(o)];' : ''}
  for (var pix = p0; pix < p1; pix++) {
    let zv = zt[u32(src + pix * u.Og)]${bias ? ' + bo' : ''};
    y[u32(dst + pix)] = ${act === null ? 'zv' : 'epi_act(zv)'};${saveZ ? '\n    z[u32(dst + pix)] = zv;' : ''}
  }
}
`;
}

/** Descriptor of the GEMM path's permute + activation / bias. Bindings: zt, y, [z], [b], [act params]. */
export const conv2dGemmEpilogueKernel = defineKernel<{ act: string | null; actBuffers: number; saveZ: boolean; bias: boolean; baked?: GemmEpiBaked | null }>({
  name: 'conv2d_gemm_epilogue',
  key: (p) => `z${p.saveZ ? 1 : 0}b${p.bias ? 1 : 0}n${p.actBuffers}:${p.baked ? `${p.baked.O},${p.baked.OHW},${p.baked.Og}` : 'u'}:${p.act ?? '-'}`,
  bindings: (p) => [
    ...reads('zt'),
    ...writes('y', ...(p.saveZ ? ['z'] : [])),
    ...reads(...(p.bias ? ['b'] : []), ...Array.from({ length: p.actBuffers }, () => 'act_raw')),
  ],
  build: (p) => gemmPermuteActWgsl(p.act, p.saveZ, p.bias, p.baked ?? null),
});
