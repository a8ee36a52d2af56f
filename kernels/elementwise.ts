// WGSL builders for elementwise kernels with up to 4 inputs: a contiguous vec4 path, a
// contiguous scalar path, and a broadcasting path (strides in uniforms, rank <= 8).
// The expression refers to inputs a0..a3, scalars s.x..s.w, and the value type T.

import { defineKernel, type Kernel } from './kernel.ts';
import { gridMain } from './wgsl_grid.ts';

export type EwDType = 'f32' | 'i32';

export const EW_WORKGROUP = 256;
export const EW_MAX_RANK = 8;

export interface ElementwiseKernel {
  /** Input dtypes, bound in order at bindings 1..k (output at k+1). */
  inputs: EwDType[];
  out: EwDType;
  /** WGSL expression of a0..a{k-1}, s (vec4<f32> of scalars) and T (output value type, f32 or vec4<f32>). */
  expr: string;
  /** 'vec4': contiguous, n % 4 == 0; 'flat': contiguous; 'broadcast': strided inputs. */
  mode: 'vec4' | 'flat' | 'broadcast';
  /** Extra WGSL helper functions the expression calls. */
  preamble?: string;
}

function vt(dt: EwDType, vec: boolean): string {
  return vec ? `vec4<${dt}>` : dt;
}

/**
 * Uniform layout (u32 words): [n, rank, grid_x_threads, 0] then out_shape (8 words),
 * then strides of each input (8 words each), then 4 f32 scalars at word 8 + 8 + 8k.
 */
export function elementwiseWgsl(k: ElementwiseKernel): string {
  const vec = k.mode === 'vec4';
  const T = vt(k.out, vec);
  const n = k.inputs.length;
  const decls = k.inputs
    .map((dt, i) => `@group(0) @binding(${i + 1}) var<storage, read> in${i}: array<${vt(dt, vec)}>;`)
    .join('\n');
  const stridesFields = k.inputs.map((_, i) => `  st${i}: array<vec4<u32>, 2>,`).join('\n');
  let load: string;
  if (k.mode === 'broadcast') {
    const offs = k.inputs.map((_, i) => `var o${i} = 0u;`).join(' ');
    const accum = k.inputs.map((_, i) => `o${i} += c * u.st${i}[d / 4u][d % 4u];`).join(' ');
    const reads = k.inputs.map((_, i) => `  let a${i} = in${i}[o${i}];`).join('\n');
    load = `  var rem = i; ${offs}
  for (var j = 0u; j < u.rank; j++) {
    let d = u.rank - 1u - j;
    let dim = u.shape[d / 4u][d % 4u];
    let c = rem % dim; rem = rem / dim;
    ${accum}
  }
${reads}`;
  } else {
    load = k.inputs.map((_, i) => `  let a${i} = in${i}[i];`).join('\n');
  }
  return `// elementwise (${k.mode}): ${k.expr}
struct U {
  n: u32, rank: u32, gx: u32, pad: u32,
  shape: array<vec4<u32>, 2>,
${stridesFields}
  s: vec4<f32>,
};
@group(0) @binding(0) var<uniform> u: U;
${decls}
@group(0) @binding(${n + 1}) var<storage, read_write> out: array<${T}>;
alias T = ${T};
${k.preamble ?? ''}
${gridMain(EW_WORKGROUP, 'i', 'u.n')}
  let s = u.s;
${load}
  out[i] = ${k.expr};
}
`;
}

/**
 * One named elementwise op of a family: its WGSL expression (of a0..a{arity-1}, s and T, as
 * in ElementwiseKernel.expr) and any helper functions it calls (a builder when they differ
 * between the vec4 and the scalar paths).
 */
export interface EwOpDef {
  arity: number;
  expr: string;
  preamble?: string | ((vec: boolean) => string);
}

/** Kernel parameters of a family member: which op, and how it is launched. */
export interface EwLaunch<K extends string> {
  op: K;
  inputs: EwDType[];
  out: EwDType;
  mode: ElementwiseKernel['mode'];
}

/** A family of named elementwise ops (its kernel descriptor and its op table). */
export interface EwFamily<K extends string> {
  readonly name: string;
  readonly ops: Readonly<Record<K, EwOpDef>>;
  readonly kernel: (p: EwLaunch<K>) => Kernel;
}

/**
 * Describe a family of named elementwise ops: one kernel descriptor, keyed by op name,
 * launch mode and dtypes (the expression is fixed per op, so the key is short).
 */
export function elementwiseFamily<K extends string>(name: string, ops: Record<K, EwOpDef>): EwFamily<K> {
  const kernel = defineKernel<EwLaunch<K>>({
    name,
    label: (p) => p.op,
    key: (p) => `${p.op}:${p.mode}:${p.inputs.join(',')}>${p.out}`,
    bindings: (p) => [...p.inputs.map((_, i) => ({ name: `in${i}`, access: 'read' as const })), { name: 'out', access: 'read_write' as const }],
    build: (p) => {
      const d = ops[p.op];
      const pre = typeof d.preamble === 'function' ? d.preamble(p.mode === 'vec4') : d.preamble;
      return elementwiseWgsl({ inputs: p.inputs, out: p.out, mode: p.mode, expr: d.expr, preamble: pre });
    },
  });
  return { name, ops, kernel };
}

/** Workgroup grid covering `threads` invocations of EW_WORKGROUP (2D when above 65535 groups). */
export function grid1d(threads: number, wg = EW_WORKGROUP, maxPerDim = 65535): { workgroups: [number, number]; gx: number } {
  const groups = Math.max(1, Math.ceil(threads / wg));
  if (groups <= maxPerDim) return { workgroups: [groups, 1], gx: groups * wg };
  const x = Math.min(maxPerDim, Math.ceil(Math.sqrt(groups)));
  const y = Math.ceil(groups / x);
  return { workgroups: [x, y], gx: x * wg };
}

/** float64 broadcasting of shapes (numpy rules); throws naming both shapes. */
export function broadcastShapes(op: string, ...shapes: (readonly number[])[]): number[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: number[] = [];
  for (let d = 0; d < rank; d++) {
    let v = 1;
    for (const s of shapes) {
      const x = s[s.length - rank + d] ?? 1;
      if (x === 1) continue;
      if (v !== 1 && v !== x) {
        throw new Error(`kinkless: ${op}: shapes ${shapes.map((s) => `[${s.join(', ')}]`).join(' and ')} cannot be broadcast together (dim ${d}: ${v} vs ${x})`);
      }
      v = x;
    }
    out.push(v);
  }
  return out;
}

/** Element strides of `shape` when broadcast to `outShape` (0 on broadcast dims). */
export function broadcastStrides(shape: readonly number[], outShape: readonly number[]): number[] {
  const r = outShape.length;
  const st = new Array<number>(r).fill(0);
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    const od = r - shape.length + d;
    st[od] = shape[d] === 1 && outShape[od] !== 1 ? 0 : acc;
    acc *= shape[d]!;
  }
  return st;
}
