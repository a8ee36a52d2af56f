// WGSL builder of the fused activation value-and-gradient kernel: ONE pass reads x (and
// the upstream gradient gy when given; gy = 1 otherwise, i.e. the gradient of sum(f(x)))
// and writes y = f(x) (optional), dx = gy * f'(x), and, for learnable params, one vec2
// partial per workgroup of sum(gy * df/dp), summed afterwards by activationParamGradWgsl
// (kernels/activation_kernels.ts) exactly as the backward does. f and f' come from the
// table's `_fdf` (kernels/activations.ts), which shares the exp / sigmoid / normal tail
// of the two. engine/ops/activation_value_grad.ts launches it.
import { ACT_WG, actKernelParamSource, actMaskedLoad, actUniformStruct, activationWgsl, type ActKernelConfig, type ActivationParamSource } from './activation_kernels.ts';
import { wgReduceVec2, wgReduceVec2Decl } from './wgsl_workgroup_reduce.ts';
import { gridMain } from './wgsl_grid.ts';

/** What the fused kernel reads and writes. */
export interface ActValueGradWant {
  /** Read gy (else gy = 1 on every element: the gradient of sum(f(x))). */
  gy: boolean;
  /** Write y = f(x). */
  y: boolean;
  /** Reduce sum(gy * df/dp) per workgroup into partials (needs cfg.params == 'buffer'). */
  dp: boolean;
}

/** Bindings of the fused kernel, in order from 1 (-1: absent). */
export function valueGradBindings(cfg: ActKernelConfig, want: ActValueGradWant): { gy: number; raw: number; y: number; dx: number; partials: number } {
  let b = 2;
  const gy = want.gy ? b++ : -1;
  const raw = cfg.params === 'buffer' ? b++ : -1;
  const y = want.y ? b++ : -1;
  const dx = b++;
  const partials = want.dp ? b++ : -1;
  return { gy, raw, y, dx, partials };
}

/**
 * activation_<kind>_value_grad. Bindings: 0 uniforms (as the forward/backward: n, nv, gx,
 * pad, p), 1 x, then in order [gy], [raw params if cfg.params == 'buffer'], [y], dx,
 * [partials: array<vec2<f32>>, one per workgroup, if want.dp] (valueGradBindings).
 * With want.dp: a 1-D grid of u.gx workgroups (actParamGroups(nv, true)) looping
 * grid-stride, then the shared workgroup tree; without: one item per thread on a 2-D grid.
 * NOTE (vec4): lanes >= n of the last vec4 load x = 0 and gy = 0 (also when gy is the
 * implicit 1), so they add nothing to the parameter sums; what they write lands in padding.
 */
export function activationValueGradWgsl(cfg: ActKernelConfig, want: ActValueGradWant, math: string): string {
  if (want.dp && cfg.params !== 'buffer') throw new Error('activationValueGradWgsl: param gradients need params from a buffer');
  const T = cfg.vec4 ? 'vec4<f32>' : 'f32';
  const b = valueGradBindings(cfg, want);
  const src: ActivationParamSource = actKernelParamSource(cfg, b.raw);
  const sur = cfg.surrogate ? { kind: cfg.surrogate, expr: 'u.p.zw' } : undefined;
  const lanes = ['x', 'y', 'z', 'w'];
  const gyLoad = want.gy
    ? actMaskedLoad('gy', cfg.vec4)
    : cfg.vec4
      ? 'select(vec4<f32>(0.0), vec4<f32>(1.0), vec4<u32>(i * 4u) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(u.n))'
      : '1.0';
  // NOTE: with param grads, _fdfdp gives f, f' and df/dp from one evaluation (one exp).
  const fn = want.dp ? 'act_fdfdp' : 'act_fdf';
  const body = cfg.vec4
    ? `    let xv = ${actMaskedLoad('x', true)};
    let g = ${gyLoad};
${lanes.map((l, k) => `    let r${k} = ${fn}(xv.${l}, p);`).join('\n')}
${want.y ? '    y[i] = vec4<f32>(r0.x, r1.x, r2.x, r3.x);' : ''}
    dx[i] = g * vec4<f32>(r0.y, r1.y, r2.y, r3.y);`
    : `    let xv = x[i];
    let g = ${gyLoad};
    let r = ${fn}(xv, p);
${want.y ? '    y[i] = r.x;' : ''}
    dx[i] = g * r.y;`;
  const dpTerm = cfg.vec4 ? lanes.map((l, k) => `r${k}.zw * g.${l}`).join(' + ') : 'r.zw * g';
  const head = `// activation_${cfg.kind}_value_grad (${cfg.vec4 ? 'vec4' : 'scalar'}, gy: ${want.gy ? 'read' : '1'}, y: ${want.y}, dp: ${want.dp}${cfg.surrogate ? `, surrogate df: ${cfg.surrogate}` : ''})
${actUniformStruct()}
@group(0) @binding(1) var<storage, read> x: array<${T}>;
${want.gy ? `@group(0) @binding(${b.gy}) var<storage, read> gy: array<${T}>;` : ''}
${want.y ? `@group(0) @binding(${b.y}) var<storage, read_write> y: array<${T}>;` : ''}
@group(0) @binding(${b.dx}) var<storage, read_write> dx: array<${T}>;
${want.dp ? `@group(0) @binding(${b.partials}) var<storage, read_write> partials: array<vec2<f32>>;\n${wgReduceVec2Decl(ACT_WG)}` : ''}
${math}
${activationWgsl({ kind: cfg.kind, params: src, surrogate: sur })}`;
  if (!want.dp) {
    return `${head}
${gridMain(ACT_WG, 'i', 'u.nv')}
  let p = act_params();
${body}
}
`;
  }
  return `${head}
@compute @workgroup_size(${ACT_WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let p = act_params();
  var acc = vec2<f32>(0.0, 0.0);
  let stride = u.gx * ${ACT_WG}u;
  for (var i = wid.x * ${ACT_WG}u + li; i < u.nv; i += stride) {
${body}
    acc += ${dpTerm};
  }
${wgReduceVec2(ACT_WG, 'acc')}
  if (li == 0u) { partials[wid.x] = red[0]; }
}
`;
}
