// WGSL builders and descriptors for the packed forward convolution (the default 'fast'
// path where >= 4 channels per group): x is first copied into a zero-padded layout with
// rows of a multiple of 4 floats and the filter into [G, Cg, KH, KW, Og rounded up], so
// that each thread loads its x span as aligned vec4s once per (ci, kh), builds every tap
// by swizzles, and loads weights as uniform vec4s; measured ~2.5x the direct kernels on
// lavapipe. The stride-1 input gradient runs as a packed forward conv of dy with the
// flipped, transposed filter. Uniform block: convUniformWgsl (conv2d_common.ts; Hp, Wq,
// OgQ are the padded rows, the padded row length / 4 and the padded channels / 4).
import { defineKernel, reads, writes } from './kernel.ts';
import {
  CONV_UNIFORM_WGSL, CONV_WG, actStoreLoop, comps, convEpilogueKey, convForwardBindings, convForwardDeclsWgsl,
  range, type ConvEpilogue,
} from './conv2d_common.ts';
import { gridMainI32 } from './wgsl_grid.ts';

/**
 * Zero-padding copy for the packed kernels: xp[n, c, i, j] = x[n, c, i - ph, j - pw] inside
 * the image, 0 elsewhere, xp of shape [N, C, u.Hp (Hp), 4 * u.Wq (Wp)]. One thread per
 * element (index gid.x + gid.y * u.gx). Bindings: x, xp.
 */
export function conv2dPadWgsl(baked: { Hp: number; Wq: number } | null = null): string {
  return bakeFields(padWgsl(), baked);
}

function padWgsl(): string {
  return `// conv2d_pad
${CONV_UNIFORM_WGSL}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> xp: array<f32>;
${gridMainI32(CONV_WG, 'i', 'u.N * u.C * u.Hp * 4 * u.Wq')}
  let Wp = 4 * u.Wq;
  let j = i % Wp;
  let r = i / Wp;
  let ii = r % u.Hp;
  let nc = r / u.Hp;
  let ih = ii - u.ph;
  let iw = j - u.pw;
  let ok = ih >= 0 && ih < u.H && iw >= 0 && iw < u.W;
  let src = (nc * u.H + clamp(ih, 0, u.H - 1)) * u.W + clamp(iw, 0, u.W - 1);
  xp[u32(i)] = select(0.0, x[u32(src)], ok);
}
`;
}

/**
 * Filter packing for the packed kernels: wt[g, a, kh, kw, q] (q < 4 * u.OgQ = OgP, zero for
 * q >= u.Og) with, when `flip` is false (forward), wt = w[g*Og + q, a, kh, kw]; when true
 * (input gradient as a forward conv over dy), the roles of the channel axes swap and the
 * taps are flipped: wt[g, a, kh, kw, q] = w[g*Cg' + a, q, KH-1-kh, KW-1-kw] where the
 * uniforms describe the dx-as-forward geometry (Cg = Og of w, Og = Cg of w). Bindings: w, wt.
 */
export function conv2dPackFilterWgsl(flip: boolean): string {
  return `// conv2d_pack_filter${flip ? ' (flipped, transposed)' : ''}
${CONV_UNIFORM_WGSL}
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> wt: array<f32>;
${gridMainI32(CONV_WG, 'i', 'u.G * u.Cg * u.KH * u.KW * 4 * u.OgQ')}
  let OgP = 4 * u.OgQ;
  let q = i % OgP;
  var r = i / OgP;
  let kw = r % u.KW; r = r / u.KW;
  let kh = r % u.KH; r = r / u.KH;
  let a = r % u.Cg;
  let g = r / u.Cg;
  let qc = min(q, u.Og - 1);
${
  flip
    ? '  let src = (((g * u.Cg + a) * u.Og + qc) * u.KH + (u.KH - 1 - kh)) * u.KW + (u.KW - 1 - kw);'
    : '  let src = (((g * u.Og + qc) * u.Cg + a) * u.KH + kh) * u.KW + kw;'
}
  wt[u32(i)] = select(0.0, w[u32(src)], q < u.Og);
}
`;
}

/** Compile-time shape of a packed forward kernel. */
export interface ConvPackedSpec {
  /** Output channels per thread (multiple of 4). */
  OB: number;
  KW: number;
  sw: number;
  dlw: number;
  epi?: ConvEpilogue;
  /**
   * The output size and padded channel count baked in as constants (else read from the
   * uniforms). NOTE (lavapipe): the thread index is split with % and / by OW and OgQ; x86
   * has no vector integer division, so by uniforms they run as scalar divisions per lane.
   */
  baked?: { OH: number; OW: number; OgQ: number } | null;
}

/** Replace the uniform fields `u.F` of `vals` by their values (i32 literals). */
function bakeFields(wgsl: string, vals: Record<string, number> | null | undefined): string {
  if (!vals) return wgsl;
  const names = Object.keys(vals);
  return wgsl.replace(new RegExp(`\\bu\\.(${names.join('|')})\\b`, 'g'), (_m, f: string) => `${vals[f]}i`);
}

/** Number of vec4 loads of one padded x row a thread needs (4 outputs, all KW taps). */
export function convPackedSpan(s: { KW: number; sw: number; dlw: number }): number {
  return Math.ceil((3 * s.sw + (s.KW - 1) * s.dlw + 1) / 4);
}

/**
 * Packed forward: the same conv as conv2dFastWgsl, over a zero-padded x (xp, rows of
 * 4*u.Wq floats, u.Hp rows; padding already applied, so no bounds checks) and a packed
 * filter (wt, see conv2dPackFilterWgsl, OgP = 4*u.OgQ). Each thread computes OB output
 * channels x 4 consecutive ow. Per (ci, kh) it loads the x span it needs as aligned
 * vec4s once and builds every tap's 4-pixel vector by swizzles (KW, sw, dlw are
 * compile-time); per tap the OB weights are OB/4 uniform vec4 loads. Bindings: xp, wt, [b], y, [z].
 */
export function conv2dPackedWgsl(s: ConvPackedSpec): string {
  return bakeFields(packedWgsl(s), s.baked);
}

function packedWgsl(s: ConvPackedSpec): string {
  const epi = s.epi ?? { bias: false };
  const NV = convPackedSpan(s);
  const Q = s.OB / 4;
  const qs = range(Q);
  const obs = range(s.OB);
  const el = (k: number): string => `v${Math.floor(k / 4)}.${'xyzw'[k % 4]}`;
  const taps = range(s.KW)
    .map((kw) => {
      const xv = `vec4<f32>(${range(4).map((j) => el(kw * s.dlw + j * s.sw)).join(', ')})`;
      const lines = [`      { let xv = ${xv};`];
      for (const q of qs) {
        lines.push(`        let w${q} = wt[u32(wk + ${kw} * u.OgQ + ${q})];`);
        for (let k = 0; k < 4; k++) lines.push(`        acc${4 * q + k} += w${q}.${'xyzw'[k]} * xv;`);
      }
      lines.push('      }');
      return lines.join('\n');
    })
    .join('\n');
  return `// conv2d (packed: ${s.OB} channels x 4 pixels per thread, KW=${s.KW} sw=${s.sw} dlw=${s.dlw}${epi.saveZ ? ', saveZ' : ''})
${convForwardDeclsWgsl(epi, ['xp', 'wt'], 'vec4<f32>')}
@compute @workgroup_size(${CONV_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let OWB = (u.OW + 3) / 4;
  let npix = u.OH * OWB;
  let t = min(i32(gid.x), npix - 1);
  let oh = t / OWB;
  let ow0 = (t % OWB) * 4;
  let nb = u.OgQ / ${Q};
  let g = i32(wid.y) / nb;
  let ol0 = (i32(wid.y) % nb) * ${s.OB};
  let n = i32(wid.z);
  let xcol = (ow0 * ${s.sw}) / 4;
${obs.map((j) => `  var acc${j} = vec4<f32>(0.0);`).join('\n')}
  for (var ci = 0; ci < u.Cg; ci++) {
    let xc = (n * u.C + g * u.Cg + ci) * u.Hp + oh * u.sh;
    let wc = (g * u.Cg + ci) * u.KH;
    for (var kh = 0; kh < u.KH; kh++) {
      let xr = (xc + kh * u.dlh) * u.Wq + xcol;
${range(NV).map((k) => `      let v${k} = xp[u32(xr + ${k})];`).join('\n')}
      let wk = ((wc + kh) * ${s.KW}) * u.OgQ + ol0 / 4;
${taps}
    }
  }
  if (i32(gid.x) >= npix) { return; }
${
  epi.act
    ? actStoreLoop(obs.length, 'vec4<f32>', 'u.Og - ol0', 'g * u.Og + ol0 + j', 4, epi)
    : obs
        .map((j) => {
          const lines = [`  if (ol0 + ${j} < u.Og) {`, `    let o = g * u.Og + ol0 + ${j};`, `    let yb = ((n * u.O + o) * u.OH + oh) * u.OW + ow0;`];
          lines.push(`    var v = acc${j};`);
          if (epi.bias) lines.push(`    v += vec4<f32>(b[u32(o)]);`);
          comps('v', 4).forEach((c, p) => {
            lines.push(`    if (ow0 + ${p} < u.OW) { y[u32(yb + ${p})] = ${c}; }`);
          });
          lines.push('  }');
          return lines.join('\n');
        })
        .join('\n')
}
}
`;
}

/** Descriptor of the zero-padding copy. Bindings: x, xp. */
export const conv2dPadKernel = defineKernel<{ baked?: { Hp: number; Wq: number } | null }>({
  name: 'conv2d_pad',
  key: (p) => (p.baked ? `${p.baked.Hp}x${p.baked.Wq}` : 'u'),
  bindings: () => [...reads('x'), ...writes('xp')],
  build: (p) => conv2dPadWgsl(p.baked ?? null),
});

/** Descriptor of the packed filter layout (optionally flipped and transposed). Bindings: w, wt. */
export const conv2dPackFilterKernel = defineKernel<{ flip: boolean }>({
  name: 'conv2d_pack_filter',
  key: (p) => (p.flip ? 'flip' : ''),
  bindings: () => [...reads('w'), ...writes('wt')],
  build: (p) => conv2dPackFilterWgsl(p.flip),
});

/** Descriptor of the packed forward. Bindings: xp, wt, [b], y, [z], [act params]. */
export const conv2dPackedKernel = defineKernel<ConvPackedSpec>({
  name: 'conv2d_packed',
  label: (p) => (p.epi?.act ? 'conv2d_packed_act' : 'conv2d_packed'),
  key: (p) => `${p.OB}:${p.KW}:${p.sw}:${p.dlw}:${p.baked ? `${p.baked.OH},${p.baked.OW},${p.baked.OgQ}` : 'u'}:${convEpilogueKey(p.epi ?? { bias: false })}`,
  bindings: (p) => convForwardBindings(['xp', 'wt'], p.epi ?? { bias: false }),
  build: conv2dPackedWgsl,
});
