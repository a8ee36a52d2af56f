// Deterministic host-side benchmark inputs: one LCG stream shared by our benches and the
// peers (TF.js, jax-js), so every side of a comparison gets the same values.

/** Deterministic uniform values in [-scale, scale) (an LCG; the same stream for every bench and peer). */
export function hostRand(n: number, seed: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    a[i] = (s / 2 ** 31 - 1) * scale;
  }
  return a;
}
