// Host-side statistics of the kink study: summaries (mean, median with its distribution-free
// 95% interval, 10/90% quantiles), Pearson correlation, and the first-order fidelity
// summary. Pure functions of numbers read back from the GPU.
import { medianCiRanks } from '../stats.ts';

export interface Summary {
  n: number;
  mean: number;
  median: number;
  /** Distribution-free 95% interval of the median (order statistics; NaN below 6 values). */
  medianLo: number;
  medianHi: number;
  p10: number;
  p90: number;
}

/** Mean, median (with its 95% interval, docs/statistics.md) and 10/90% quantiles (linear interpolation) of the finite values. */
export function summarize(values: ArrayLike<number>): Summary {
  const v = Array.from(values).filter(Number.isFinite).sort((a, b) => a - b);
  const q = (p: number) => {
    if (!v.length) return NaN;
    const i = p * (v.length - 1);
    const lo = Math.floor(i);
    return v[lo]! + (v[Math.min(lo + 1, v.length - 1)]! - v[lo]!) * (i - lo);
  };
  const r = medianCiRanks(v.length);
  return { n: v.length, mean: v.length ? v.reduce((a, b) => a + b, 0) / v.length : NaN, median: q(0.5), medianLo: r ? v[r.j - 1]! : NaN, medianHi: r ? v[r.k - 1]! : NaN, p10: q(0.1), p90: q(0.9) };
}

/** Pearson correlation of paired values (pairs with a non-finite member are dropped). */
export function pearson(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const xs: number[] = [];
  const ys: number[] = [];
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (Number.isFinite(a[i]!) && Number.isFinite(b[i]!)) (xs.push(a[i]!), ys.push(b[i]!));
  const n = xs.length;
  if (n < 2) return NaN;
  const mx = xs.reduce((s, v) => s + v, 0) / n;
  const my = ys.reduce((s, v) => s + v, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i]! - mx) * (ys[i]! - my);
    sxx += (xs[i]! - mx) ** 2;
    syy += (ys[i]! - my) ** 2;
  }
  return sxx > 0 && syy > 0 ? sxy / Math.sqrt(sxx * syy) : NaN;
}

export interface FidelitySummary {
  /** actual / predicted per example. */
  ratio: Summary;
  /** |actual - predicted| / |predicted| per example. */
  relError: Summary;
  /** Pearson correlation of actual and predicted across examples. */
  correlation: number;
  excluded: number;
}

/** Ratio, relative error and correlation of actual vs predicted changes; |predicted| < minPredicted is excluded. */
export function fidelitySummary(actual: number[], predicted: number[], minPredicted: number): FidelitySummary {
  const a: number[] = [];
  const p: number[] = [];
  let excluded = 0;
  actual.forEach((v, i) => {
    if (Math.abs(predicted[i]!) >= minPredicted && Number.isFinite(v)) (a.push(v), p.push(predicted[i]!));
    else excluded++;
  });
  return { ratio: summarize(a.map((v, i) => v / p[i]!)), relError: summarize(a.map((v, i) => Math.abs(v - p[i]!) / Math.abs(p[i]!))), correlation: pearson(a, p), excluded };
}
