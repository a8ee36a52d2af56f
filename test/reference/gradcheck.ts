// float64 central-difference gradient check for reference functions.

/** Numerical gradient of a scalar function f at x (central differences, step h*(1+|x_i|)). */
export function numericGrad(f: (x: Float64Array) => number, x: Float64Array, h = 1e-6): Float64Array {
  const g = new Float64Array(x.length);
  const xp = Float64Array.from(x);
  for (let i = 0; i < x.length; i++) {
    const step = h * (1 + Math.abs(x[i]!));
    xp[i] = x[i]! + step;
    const fp = f(xp);
    xp[i] = x[i]! - step;
    const fm = f(xp);
    xp[i] = x[i]!;
    g[i] = (fp - fm) / (2 * step);
  }
  return g;
}

/** Max |a - b| / max(1, |b|). */
export function maxRelErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!) / Math.max(1, Math.abs(b[i]!)));
  return m;
}

/** Dot product of two arrays (to turn a vector function into a scalar one with a random cotangent). */
export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}
