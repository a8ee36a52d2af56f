// Independent JS implementation of the Philox-4x32-10 stream used by engine/ops/random.ts,
// for bit-exact comparison with the GPU. The 32x32 -> 64-bit product is formed with exact
// float64 arithmetic on a 16-bit split of one factor (a different decomposition from the
// WGSL one), cross-checked against BigInt in the tests.

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;

/** [hi, lo] of the 64-bit product of two u32 values. */
export function mulhilo(a: number, b: number): [number, number] {
  const bl = b & 0xffff;
  const bh = b >>> 16;
  // a*b = 2^16 * (a*bh + floor(a*bl / 2^16)) + (a*bl mod 2^16); every term < 2^49 is exact.
  const low = a * bl;
  const t = a * bh + Math.floor(low / 65536);
  const hi = Math.floor(t / 65536) >>> 0;
  const lo = Math.imul(a, b) >>> 0;
  return [hi, lo];
}

/** Philox-4x32-10 of a 4-word counter under a 2-word key (Random123's word order). */
export function philox4x32(ctr: readonly number[], key: readonly number[]): [number, number, number, number] {
  let [c0, c1, c2, c3] = ctr.map((v) => v >>> 0) as [number, number, number, number];
  let [k0, k1] = key.map((v) => v >>> 0) as [number, number];
  for (let r = 0; r < 10; r++) {
    if (r > 0) {
      k0 = (k0 + W0) >>> 0;
      k1 = (k1 + W1) >>> 0;
    }
    const [hi0, lo0] = mulhilo(M0, c0);
    const [hi1, lo1] = mulhilo(M1, c2);
    [c0, c1, c2, c3] = [(hi1 ^ c1 ^ k0) >>> 0, lo1, (hi0 ^ c3 ^ k1) >>> 0, lo0];
  }
  return [c0, c1, c2, c3];
}

/** The raw u32 words for elements [offset, offset + n) of seed's stream. */
export function philoxWords(seed: number, offset: number, n: number): Uint32Array {
  const out = new Uint32Array(n);
  const key = [seed % 2 ** 32, Math.floor(seed / 2 ** 32)];
  let block = -1;
  let w: number[] = [];
  for (let i = 0; i < n; i++) {
    const e = offset + i;
    const b = Math.floor(e / 4);
    if (b !== block) {
      block = b;
      w = philox4x32([b % 2 ** 32, Math.floor(b / 2 ** 32), 0, 0], key);
    }
    out[i] = w[e % 4]!;
  }
  return out;
}

/** Uniforms on [0, 1) exactly as the GPU makes them: (w >> 8) * 2^-24, as float32. */
export function uniform01(seed: number, offset: number, n: number): Float32Array {
  const w = philoxWords(seed, offset, n);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (w[i]! >>> 8) * 2 ** -24;
  return out;
}

/** Bernoulli(p) masks exactly as the GPU makes them. */
export function bernoulli(seed: number, offset: number, n: number, p: number): Float32Array {
  const w = philoxWords(seed, offset, n);
  const th = Math.round(p * 2 ** 24);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = w[i]! >>> 8 < th ? 1 : 0;
  return out;
}

/** float64 Box-Muller of the same words (pairs of lanes 0,1 and 2,3 of each block). */
export function normal64(seed: number, offset: number, n: number, mean = 0, std = 1): Float64Array {
  const b0 = Math.floor(offset / 4);
  const nb = Math.ceil(((offset % 4) + n) / 4);
  const out = new Float64Array(n);
  const key = [seed % 2 ** 32, Math.floor(seed / 2 ** 32)];
  for (let t = 0; t < nb; t++) {
    const b = b0 + t;
    const w = philox4x32([b % 2 ** 32, Math.floor(b / 2 ** 32), 0, 0], key);
    const z: number[] = [];
    for (const [a, c] of [[w[0], w[1]], [w[2], w[3]]] as [number, number][]) {
      const r = Math.sqrt(-2 * Math.log(((a >>> 8) + 1) * 2 ** -24));
      const th = 2 * Math.PI * (c >>> 8) * 2 ** -24;
      z.push(r * Math.cos(th), r * Math.sin(th));
    }
    for (let j = 0; j < 4; j++) {
      const i = 4 * b + j - offset;
      if (i >= 0 && i < n) out[i] = mean + std * z[j]!;
    }
  }
  return out;
}
