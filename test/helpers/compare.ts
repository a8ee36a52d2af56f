// Tolerance checks of GPU results against float64 references, with readable failures.
import { expect } from 'vitest';

export interface Tol {
  /** Absolute tolerance. */
  atol?: number;
  /** Relative tolerance. */
  rtol?: number;
}

/** Assert |got - want| <= atol + rtol*|want| elementwise, and no NaN in `got`. */
export function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, tol: Tol = {}, what = 'values'): void {
  const atol = tol.atol ?? 1e-5;
  const rtol = tol.rtol ?? 1e-5;
  expect(got.length, `${what}: length`).toBe(want.length);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < want.length; i++) {
    const g = got[i]!;
    const w = want[i]!;
    if (Number.isNaN(g) && !Number.isNaN(w)) throw new Error(`${what}: NaN at index ${i} (want ${w})`);
    if (!Number.isFinite(w) && g === w) continue;
    const excess = Math.abs(g - w) - (atol + rtol * Math.abs(w));
    if (excess > worstExcess) {
      worstExcess = excess;
      worst = i;
    }
  }
  if (worst >= 0) {
    throw new Error(`${what}: mismatch at index ${worst}: got ${got[worst]}, want ${want[worst]} (atol ${atol}, rtol ${rtol})`);
  }
}

export function expectNoNaN(got: ArrayLike<number>, what = 'values'): void {
  for (let i = 0; i < got.length; i++) if (Number.isNaN(got[i]!)) throw new Error(`${what}: NaN at index ${i}`);
}

/** Deterministic pseudo-random float64 values in [lo, hi) (test data only). */
export function randArray(n: number, seed = 1, lo = -1, hi = 1): Float64Array {
  const out = new Float64Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = lo + ((s >>> 0) / 4294967296) * (hi - lo);
  }
  return out;
}

/** Round float64 values to float32 (inputs as the GPU sees them). */
export function f32(a: ArrayLike<number>): Float64Array {
  return Float64Array.from(Float32Array.from(a as ArrayLike<number>));
}
