// Float64 reference math for kernel tests: erf/erfc, stable sigmoid/softplus and the
// cancellation-free special forms the activation references need. Pure JS, no GPU.

const TWO_OVER_SQRT_PI = 1.1283791670955126; // 2/sqrt(pi)
const ONE_OVER_SQRT_PI = 0.5641895835477563; // 1/sqrt(pi)
const ONE_OVER_SQRT_2PI = 0.3989422804014327; // 1/sqrt(2 pi)
const SQRT1_2 = Math.SQRT1_2;

// NOTE: below ERF_SERIES_MAX erf uses the all-positive series
//   erf(x) = 2/sqrt(pi) e^{-x^2} sum_n 2^n x^{2n+1} / (1*3*...*(2n+1)),
// which has no cancellation (unlike the alternating Taylor series). Above it, erfc
// comes from its continued fraction, which converges quickly there; erf = 1 - erfc.
const ERF_SERIES_MAX = 2.5;

function erfSeries(x: number): number {
  const x2 = x * x;
  let term = x;
  let sum = x;
  for (let n = 1; n < 200; n++) {
    term *= (2 * x2) / (2 * n + 1);
    sum += term;
    if (Math.abs(term) <= 1e-17 * Math.abs(sum)) break;
  }
  return TWO_OVER_SQRT_PI * Math.exp(-x2) * sum;
}

// erfc(x) for x > 0 by the continued fraction
//   erfc(x) = e^{-x^2}/sqrt(pi) / (x + (1/2)/(x + (2/2)/(x + (3/2)/(x + ...)))),
// evaluated with the modified Lentz method. It converges in a few dozen terms for
// x >= ERF_SERIES_MAX and still converges (slowly: maxIter large) down to x = 0.5.
function erfcContinuedFraction(x: number, maxIter = 500): number {
  const tiny = 1e-300;
  let f = x;
  let c = x;
  let d = 0;
  for (let n = 1; n < maxIter; n++) {
    const an = n / 2;
    d = x + an * d;
    if (d === 0) d = tiny;
    c = x + an / c;
    if (c === 0) c = tiny;
    d = 1 / d;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-17) break;
  }
  return (ONE_OVER_SQRT_PI * Math.exp(-x * x)) / f;
}

/** erf(x) in float64, max relative error ~1e-15. */
export function erf64(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const ax = Math.abs(x);
  if (ax < ERF_SERIES_MAX) return erfSeries(x);
  if (ax > 6) return Math.sign(x); // erfc(6) = 2e-17 < half an ulp of 1
  const r = 1 - erfcContinuedFraction(ax);
  return x < 0 ? -r : r;
}

/** erfc(x) = 1 - erf(x) in float64, accurate in relative terms in the right tail too. */
export function erfc64(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x < 0) return 2 - erfc64(-x); // >= 1: no cancellation
  if (x < 0.5) return 1 - erfSeries(x); // erfc >= 0.47: 1 - erf loses < 1 bit
  if (x < ERF_SERIES_MAX) return erfcMid(x);
  if (x > 27.3) return 0; // below the smallest subnormal
  return erfcContinuedFraction(x);
}

// NOTE: erfc on [0.5, 2.5) without the 1 - erf cancellation: Taylor-expand erfc
// around the nearest grid point c (spacing 0.125) using the recurrence for the
// derivatives of e^{-t^2}: with H_n the Hermite polynomials,
//   erfc(c + h) = erfc(c) - 2/sqrt(pi) e^{-c^2} sum_{n>=0} (-1)^n H_n(c) h^{n+1}/(n+1)!.
// erfc(c) at the grid points comes from the continued fraction (evaluated with many
// more terms, where it still converges for c >= 0.5) and is cached.
const ERFC_GRID_STEP = 0.125;
const erfcGridCache = new Map<number, number>();

function erfcAtGrid(c: number): number {
  let v = erfcGridCache.get(c);
  if (v === undefined) {
    v = erfcContinuedFraction(c, 200000);
    erfcGridCache.set(c, v);
  }
  return v;
}

function erfcMid(x: number): number {
  const c = Math.round(x / ERFC_GRID_STEP) * ERFC_GRID_STEP;
  const h = x - c;
  // sum_{n>=0} (-1)^n H_n(c) h^{n+1}/(n+1)!, with H_0 = 1, H_1 = 2c,
  // H_{n+1} = 2c H_n - 2n H_{n-1}.
  let hPrev = 1; // H_0
  let hCur = 2 * c; // H_1
  let pw = h; // h^{n+1}/(n+1)!, n = 0
  let sum = pw; // n = 0 term
  for (let n = 1; n < 60; n++) {
    pw *= h / (n + 1);
    const term = (n % 2 === 0 ? 1 : -1) * hCur * pw;
    sum += term;
    if (Math.abs(term) < 1e-18 * Math.abs(sum) && n > 4) break;
    const hNext = 2 * c * hCur - 2 * n * hPrev;
    hPrev = hCur;
    hCur = hNext;
  }
  return erfcAtGrid(c) - TWO_OVER_SQRT_PI * Math.exp(-c * c) * sum;
}

/** Standard normal density phi(x). */
export function normalPdf64(x: number): number {
  return ONE_OVER_SQRT_2PI * Math.exp(-0.5 * x * x);
}

/** Standard normal CDF Phi(x) = erfc(-x/sqrt2)/2, accurate in both tails. */
export function normalCdf64(x: number): number {
  return 0.5 * erfc64(-x * SQRT1_2);
}

/** Stable logistic sigmoid: never evaluates exp of a positive argument. */
export function sigmoid64(z: number): number {
  if (z >= 0) return 1 / (1 + Math.exp(-z));
  const e = Math.exp(z);
  return e / (1 + e);
}

/** s(z) s(-z) = sigmoid'(z), computed from one exp(-|z|) without cancellation. */
export function sigmoidPrime64(z: number): number {
  const e = Math.exp(-Math.abs(z));
  const d = 1 + e;
  return e / (d * d);
}

/** softplus(z) = log(1 + e^z) = max(z,0) + log1p(exp(-|z|)); never overflows. */
export function softplus64(z: number): number {
  return Math.max(z, 0) + Math.log1p(Math.exp(-Math.abs(z)));
}

export const log1p64 = (x: number): number => Math.log1p(x);
export const expm1_64 = (x: number): number => Math.expm1(x);

/**
 * u - log1p(u) for u >= 0 without cancellation near 0.
 * NOTE: for u <= 1, with s = u/(2+u), t = s^2: log1p(u) = 2s(1 + t/3 + t^2/5 + ...) and
 * u - 2s = u s, so u - log1p(u) = u s - 2 s t (1/3 + t/5 + t^2/7 + ...). t <= 1/9,
 * so 20 terms reach float64 precision. For u > 1 the plain form loses < 3 bits.
 */
export function xMinusLog1p64(u: number): number {
  if (u > 1) return u - Math.log1p(u);
  const s = u / (2 + u);
  const t = s * s;
  let p = 0;
  for (let k = 20; k >= 0; k--) p = p * t + 1 / (2 * k + 3);
  return u * s - 2 * s * t * p;
}

// c_j = (j+1)/(j+2)!, j = 0..21 (the last term is < 1e-21 for |y| < 1)
const EXPM1_MINUS_XEXP_COEFFS: number[] = (() => {
  const c: number[] = [];
  let fact = 2; // (j+2)! at j = 0
  for (let j = 0; j <= 21; j++) {
    if (j > 0) fact *= j + 2;
    c.push((j + 1) / fact);
  }
  return c;
})();

/**
 * e^y - 1 - y e^y (the CELU parameter derivative) for y <= 0, without cancellation.
 * NOTE: for |y| < 1 use the series -y^2 sum_{j>=0} (j+1)/(j+2)! y^j (both expm1(y) and
 * y e^y are ~y there, so the direct difference cancels); otherwise e^y (1 - y) - 1,
 * whose magnitude is >= 0.26, directly.
 */
export function expm1MinusXExp64(y: number): number {
  if (y <= -1) return Math.exp(y) * (1 - y) - 1;
  let p = 0;
  for (let j = EXPM1_MINUS_XEXP_COEFFS.length - 1; j >= 0; j--) p = p * y + EXPM1_MINUS_XEXP_COEFFS[j]!;
  return -y * y * p;
}
