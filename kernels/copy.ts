// Minimal vec4 device copy kernel: y[i] = x[i] over n4 vec4 elements (n % 4 == 0).
// It is the memory-bandwidth yardstick the elementwise benchmarks compare against.

import { defineKernel, reads, writes } from './kernel.ts';

export const COPY_WORKGROUP = 256;

/** Uniforms (u32): n4 (vec4 count), gx (threads per grid row; index = gid.x + gid.y * gx). */
export function copyVec4Wgsl(): string {
  return `// copy_vec4
struct U { n4: u32, gx: u32 };
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> y: array<vec4<f32>>;
@compute @workgroup_size(${COPY_WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * u.gx;
  if (i < u.n4) { y[i] = x[i]; }
}
`;
}

const B_COPY = [...reads('x'), ...writes('y')];

/** Descriptor: copy_vec4. Bindings: x, y (vec4 arrays). */
export const copyVec4Kernel = defineKernel<void>({ name: 'copy_vec4', key: () => '', bindings: () => B_COPY, build: copyVec4Wgsl })();
