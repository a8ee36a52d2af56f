// The entry point of a thread-per-item WGSL kernel: the 2-D grid of workgroups that
// grid1d (kernels/elementwise.ts) sizes, `gx` threads per grid row (a `u.gx` uniform), the
// flat thread index, and an early return for the threads past the last item.

/**
 * `@compute @workgroup_size(wg) fn main(...) {`, then `let <index> = gid.x + gid.y * u.gx;`
 * and `if (<index> >= <count>) { return; }`. The caller writes the body and the closing `}`.
 */
export function gridMain(wg: number, index: string, count: string): string {
  return `@compute @workgroup_size(${wg})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let ${index} = gid.x + gid.y * u.gx;
  if (${index} >= ${count}) { return; }`;
}

/** gridMain for kernels whose uniforms are i32 (the conv family): `<index>` is an i32 and `u.gx` an i32. */
export function gridMainI32(wg: number, index: string, count: string): string {
  return `@compute @workgroup_size(${wg})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let ${index} = i32(gid.x + gid.y * u32(u.gx));
  if (${index} >= ${count}) { return; }`;
}
