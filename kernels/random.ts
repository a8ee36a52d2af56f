// WGSL builders for the counter-based random number generator: Philox-4x32-10 (Salmon,
// Moraes, Dror and Shaw, "Parallel random numbers: as easy as 1, 2, 3", SC 2011),
// written from the paper's description with u32 arithmetic only, and the kernels that
// turn its output into uniform, normal and Bernoulli tensors.
//
// Stream layout: the key is the seed (k0 = seed mod 2^32, k1 = floor(seed / 2^32)); the
// element with absolute index e = offset + i (i the flat output index) takes word
// e % 4 of the Philox block whose counter is (b mod 2^32, floor(b / 2^32), 0, 0) with
// b = floor(e / 4). So a tensor of n values drawn at `offset` is exactly elements
// [offset, offset + n) of the seed's stream, whatever its shape, and two draws with
// disjoint element ranges share no random word.
//
// NOTE: what is bit-identical across adapters (and equal to the JS reference in
// test/reference/philox.ts):
// - the u32 words: integer ops only (WGSL u32 multiply wraps mod 2^32; the high half
//   of the 32x32 -> 64-bit product is assembled from 16-bit halves);
// - uniform on [0, 1): u = (w >> 8) * 2^-24 is an exact integer -> float conversion and
//   an exact scaling by a power of two. For another range, lo + (hi - lo) * u is one
//   multiply and one add in f32; an adapter may contract them into an fma, so those
//   values can differ in the last bit (and can round up to hi itself for some ranges);
// - Bernoulli masks: the comparison (w >> 8) < round(p * 2^24) is done on integers.
// Normal samples are NOT bit-identical: Box-Muller calls log, sqrt, cos and sin, whose
// accuracy WGSL leaves to the implementation (log is only specified to 2^-21 absolute
// error). They agree with a float64 Box-Muller of the same words to ~1e-5.

import { defineKernel, writes } from './kernel.ts';

export const RNG_WG = 256;

/** Philox-4x32-10 constants (the paper's multipliers and Weyl key increments). */
export const PHILOX_M0 = 0xd2511f53;
export const PHILOX_M1 = 0xcd9e8d57;
export const PHILOX_W0 = 0x9e3779b9;
export const PHILOX_W1 = 0xbb67ae85;

/** WGSL: `k_philox(ctr, key) -> vec4<u32>` (10 rounds). */
export const WGSL_PHILOX = /* wgsl */ `
// High 32 bits of the 64-bit product a*b, from 16-bit halves (WGSL has no u64).
fn k_mulhi(a: u32, b: u32) -> u32 {
  let a0 = a & 0xffffu;
  let a1 = a >> 16u;
  let b0 = b & 0xffffu;
  let b1 = b >> 16u;
  let p00 = a0 * b0;
  let p01 = a0 * b1;
  let p10 = a1 * b0;
  let p11 = a1 * b1;
  let mid = (p00 >> 16u) + (p01 & 0xffffu) + (p10 & 0xffffu);
  return p11 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u);
}

fn k_philox_round(c: vec4<u32>, k: vec2<u32>) -> vec4<u32> {
  let hi0 = k_mulhi(${PHILOX_M0}u, c.x);
  let lo0 = ${PHILOX_M0}u * c.x;
  let hi1 = k_mulhi(${PHILOX_M1}u, c.z);
  let lo1 = ${PHILOX_M1}u * c.z;
  return vec4<u32>(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
}

fn k_philox(ctr: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
  var c = ctr;
  var k = key;
  c = k_philox_round(c, k);
  for (var r = 1u; r < 10u; r++) {
    k = k + vec2<u32>(${PHILOX_W0}u, ${PHILOX_W1}u);
    c = k_philox_round(c, k);
  }
  return c;
}
`;

export type RandomKind = 'uniform' | 'normal' | 'bernoulli';

/**
 * One thread per Philox block. Uniforms (u32 words): n, gx, b0_lo, b0_hi, head,
 * key_lo, key_hi, thresh, then f32 a, b. Thread t handles block b0 + t (64-bit add with
 * carry) and writes output i = 4t + j - head for lanes j with 0 <= i < n.
 * uniform: y = a + b*u (a = lo, b = hi - lo); normal: y = a + b*z (a = mean, b = std);
 * bernoulli: y = 1 where (w >> 8) < thresh.
 */
export function randomWgsl(kind: RandomKind): string {
  let body: string;
  if (kind === 'uniform') {
    body = `  let v = vec4<f32>(w >> vec4<u32>(8u)) * ${2 ** -24};
  let y4 = u.a + u.b * v;`;
  } else if (kind === 'bernoulli') {
    body = `  let y4 = select(vec4<f32>(0.0), vec4<f32>(1.0), (w >> vec4<u32>(8u)) < vec4<u32>(u.thresh));`;
  } else {
    // NOTE: Box-Muller on the pairs (w.x, w.y) and (w.z, w.w). The radius uses
    // ((w >> 8) + 1) * 2^-24 in (0, 1], so log never sees 0 (max |z| = sqrt(48 ln 2) = 5.77).
    body = `  let r1 = sqrt(-2.0 * log(f32((w.x >> 8u) + 1u) * ${2 ** -24}));
  let t1 = ${2 * Math.PI} * (f32(w.y >> 8u) * ${2 ** -24});
  let r2 = sqrt(-2.0 * log(f32((w.z >> 8u) + 1u) * ${2 ** -24}));
  let t2 = ${2 * Math.PI} * (f32(w.w >> 8u) * ${2 ** -24});
  let z = vec4<f32>(r1 * cos(t1), r1 * sin(t1), r2 * cos(t2), r2 * sin(t2));
  let y4 = u.a + u.b * z;`;
  }
  return `// random_${kind} (Philox-4x32-10, thread per block of 4)
struct U { n: u32, gx: u32, b0_lo: u32, b0_hi: u32, head: u32, key_lo: u32, key_hi: u32, thresh: u32, a: f32, b: f32, p0: u32, p1: u32 };
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
${WGSL_PHILOX}
@compute @workgroup_size(${RNG_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t = gid.x + gid.y * u.gx;
  let base = 4u * t;
  if (base >= u.n + u.head) { return; }
  let lo = u.b0_lo + t;
  let hi = u.b0_hi + select(0u, 1u, lo < t);
  let w = k_philox(vec4<u32>(lo, hi, 0u, 0u), vec2<u32>(u.key_lo, u.key_hi));
${body}
  for (var j = 0u; j < 4u; j++) {
    let e = base + j;
    if (e >= u.head && e - u.head < u.n) { y[e - u.head] = y4[j]; }
  }
}
`;
}

const B_RANDOM = writes('y');

/** Descriptor: one Philox draw of `kind` into y (thread per block of 4). */
export const randomKernel = defineKernel<{ kind: RandomKind }>({
  name: 'random',
  label: (p) => `random_${p.kind}`,
  key: (p) => p.kind,
  bindings: () => B_RANDOM,
  build: (p) => randomWgsl(p.kind),
});
