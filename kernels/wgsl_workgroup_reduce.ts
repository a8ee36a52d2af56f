// The shared-memory tree reduction that ends the activation backward kernels (flat and
// per-channel) and their parameter-gradient sums: each of the WG threads of a workgroup
// holds a vec2<f32> partial, the tree halves the active threads log2(WG) times, and
// thread 0 is left with the workgroup's sum. One WGSL snippet, included by
// kernels/activation_kernels.ts, kernels/activation_channel_kernels.ts and
// kernels/activation_value_grad_kernels.ts.

/** Module-scope declaration of the shared array `name` of `wg` vec2<f32> (wg a power of 2). */
export function wgReduceVec2Decl(wg: number, name = 'red'): string {
  if (!Number.isInteger(wg) || wg < 1 || (wg & (wg - 1)) !== 0) throw new Error(`wgReduceVec2Decl: workgroup size must be a power of 2, got ${wg}`);
  return `var<workgroup> ${name}: array<vec2<f32>, ${wg}>;`;
}

/**
 * Statements (inside the entry point, in uniform control flow: every thread of the
 * workgroup must reach them) that store each thread's `value` at `name[li]` and reduce the
 * array; afterwards `name[0]` holds the workgroup's sum (read it in thread 0 only).
 * NOTE: the tree adds in a fixed order (element li + s into li), so a sum is reproducible
 * run to run; its rounding is that of a balanced binary tree (error ~log2(wg) ulp relative
 * to the sum of |terms|).
 */
export function wgReduceVec2(wg: number, value: string, li = 'li', name = 'red'): string {
  if (!Number.isInteger(wg) || wg < 1 || (wg & (wg - 1)) !== 0) throw new Error(`wgReduceVec2: workgroup size must be a power of 2, got ${wg}`);
  return `  ${name}[${li}] = ${value};
  workgroupBarrier();
  for (var s = ${wg / 2}u; s > 0u; s = s >> 1u) {
    if (${li} < s) { ${name}[${li}] = ${name}[${li}] + ${name}[${li} + s]; }
    workgroupBarrier();
  }`;
}
