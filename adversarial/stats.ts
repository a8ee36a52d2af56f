// Small-sample statistics for accuracy tables: Wilson score interval for one accuracy,
// the exact McNemar test and an Agresti-Min interval for the difference of two accuracies
// measured on the same images (paired 0/1 outcomes), and mean / spread over seeds.
// Pure float64 functions, no engine. Formulas and sources: docs/statistics.md.

/** Two-sided 95% normal quantile z_{0.975}. */
export const Z95 = 1.959963984540054;

export interface Interval {
  lo: number;
  hi: number;
}

function checkCounts(who: string, k: number, n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new Error(`kinkless: ${who}: n = ${n}; expected an integer >= 1 (the number of evaluated images)`);
  if (!Number.isInteger(k) || k < 0 || k > n) throw new Error(`kinkless: ${who}: successes = ${k}; expected an integer in [0, n = ${n}]`);
}

/**
 * Wilson score interval for a binomial proportion k/n (default 95%).
 * NOTE: Wilson instead of Wald: Wald collapses to [p, p] at k = 0 and k = n, while Wilson
 * gives [0, z^2/(n+z^2)] and [n/(n+z^2), 1] there and keeps near-nominal coverage for
 * accuracies close to 0 or 1 (Brown, Cai and DasGupta 2001). The endpoints are clamped to
 * [0, 1] and set exactly to 0 (k = 0) and 1 (k = n), which the formula gives analytically.
 */
export function wilson(k: number, n: number, z = Z95): Interval {
  checkCounts('wilson', k, n);
  const p = k / n;
  const z2 = z * z;
  const denom = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denom;
  const half = (z / denom) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  return { lo: k === 0 ? 0 : Math.max(0, centre - half), hi: k === n ? 1 : Math.min(1, centre + half) };
}

/** P(X <= k) for X ~ Binomial(m, 1/2), summed in log space (no underflow for large m). */
export function binomHalfCdf(k: number, m: number): number {
  if (k < 0) return 0;
  if (k >= m) return 1;
  const ln2m = m * Math.LN2;
  // terms C(m, i) / 2^m for i = 0..k, accumulated with a running log C(m, i)
  let logC = 0;
  let sum = Math.exp(-ln2m);
  for (let i = 1; i <= k; i++) {
    logC += Math.log(m - i + 1) - Math.log(i);
    sum += Math.exp(logC - ln2m);
  }
  return Math.min(1, sum);
}

/** The 2x2 table of two paired 0/1 outcome vectors (same images, same order). */
export interface PairedTable {
  n: number;
  /** Both correct. */
  both: number;
  /** A correct, B wrong. */
  onlyA: number;
  /** A wrong, B correct. */
  onlyB: number;
  /** Both wrong. */
  neither: number;
}

/** Counts the paired outcomes; the vectors hold 0/1 per image and must have equal length. */
export function pairedTable(a: ArrayLike<number>, b: ArrayLike<number>): PairedTable {
  if (a.length !== b.length) throw new Error(`kinkless: pairedTable: outcome vectors differ in length (${a.length} and ${b.length}); pairing needs the same images`);
  if (a.length === 0) throw new Error('kinkless: pairedTable: empty outcome vectors; expected at least one image');
  const t: PairedTable = { n: a.length, both: 0, onlyA: 0, onlyB: 0, neither: 0 };
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if ((x !== 0 && x !== 1) || (y !== 0 && y !== 1)) throw new Error(`kinkless: pairedTable: outcome ${i} is (${x}, ${y}); expected 0 or 1`);
    if (x && y) t.both++;
    else if (x) t.onlyA++;
    else if (y) t.onlyB++;
    else t.neither++;
  }
  return t;
}

/** Adds tables (pooling strata, e.g. seeds). */
export function addTables(ts: PairedTable[]): PairedTable {
  if (ts.length === 0) throw new Error('kinkless: addTables: no tables');
  return ts.reduce((s, t) => ({ n: s.n + t.n, both: s.both + t.both, onlyA: s.onlyA + t.onlyA, onlyB: s.onlyB + t.onlyB, neither: s.neither + t.neither }));
}

/**
 * Exact McNemar test: two-sided p-value of the discordant counts b = onlyA, c = onlyB under
 * H0 "each discordant image is equally likely to favour A or B", i.e. b ~ Binomial(b + c, 1/2):
 * p = min(1, 2 P(X <= min(b, c))). No discordant pairs: p = 1 (no evidence either way).
 */
export function mcnemarExact(t: PairedTable): number {
  const m = t.onlyA + t.onlyB;
  if (m === 0) return 1;
  return Math.min(1, 2 * binomHalfCdf(Math.min(t.onlyA, t.onlyB), m));
}

/**
 * 95% interval for the paired difference of accuracies acc(A) - acc(B) = (onlyA - onlyB)/n.
 * NOTE: Agresti-Min (2005) adjusted Wald interval: add 1/2 to each of the four cells
 * (n + 2 pairs), then Wald with the paired variance ((b + c) - (b - c)^2)/(n + 2) on the
 * adjusted proportions. Unlike plain Wald it does not collapse to [0, 0] with no discordant
 * pairs, and its coverage is near nominal for small n. Clamped to [-1, 1]. The point
 * estimate reported beside it is the unadjusted (onlyA - onlyB)/n.
 */
export function pairedDiffCi(t: PairedTable, z = Z95): Interval & { diff: number } {
  const N = t.n + 2;
  const b = (t.onlyA + 0.5) / N;
  const c = (t.onlyB + 0.5) / N;
  const d = b - c;
  const se = Math.sqrt((b + c - d * d) / N);
  return { diff: (t.onlyA - t.onlyB) / t.n, lo: Math.max(-1, d - z * se), hi: Math.min(1, d + z * se) };
}

export interface Spread {
  n: number;
  mean: number;
  /** Sample standard deviation (n - 1 in the denominator); 0 for a single value. */
  sd: number;
  min: number;
  max: number;
}

/** Mean and spread of per-seed values. */
export function spread(xs: readonly number[]): Spread {
  if (xs.length === 0) throw new Error('kinkless: spread: no values; expected at least one seed');
  for (const [i, x] of xs.entries()) if (!Number.isFinite(x)) throw new Error(`kinkless: spread: value ${i} is ${x}; expected a finite number`);
  const n = xs.length;
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  const sd = n > 1 ? Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (n - 1)) : 0;
  return { n, mean, sd, min: Math.min(...xs), max: Math.max(...xs) };
}

/** A p-value for reports: 2 significant digits, "< 0.001" below 0.001, "1" at 1. */
export function formatP(p: number): string {
  if (p < 0.001) return '< 0.001';
  if (p >= 0.995) return '1';
  return String(Number(p.toPrecision(2)));
}

/**
 * Holm's step-down adjustment of m p-values (family-wise error control over a table's
 * comparisons): sort ascending, p'_(i) = max_{j <= i} min(1, (m - j + 1) p_(j)); returned
 * in the input order.
 */
export function holm(ps: readonly number[]): number[] {
  const m = ps.length;
  const order = ps.map((p, i) => [p, i] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const out = new Array<number>(m);
  let run = 0;
  order.forEach(([p, i], j) => {
    if (!(p >= 0 && p <= 1)) throw new Error(`kinkless: holm: p-value ${i} is ${p}; expected a number in [0, 1]`);
    run = Math.max(run, Math.min(1, (m - j) * p));
    out[i] = run;
  });
  return out;
}

/**
 * Distribution-free 95% interval for the median of m values: the order statistics
 * [x_(j), x_(m+1-j)] (1-based, sorted ascending) with j the largest integer such that
 * P(X <= j - 1) <= 0.025 for X ~ Binomial(m, 1/2); its coverage 1 - 2 P(X <= j - 1) is at
 * least 95% for any continuous distribution. Null for m < 6, where even [min, max] covers
 * less than 95% (1 - 2^(1-m)).
 */
export function medianCiRanks(m: number): { j: number; k: number; coverage: number } | null {
  if (!Number.isInteger(m) || m < 0) throw new Error(`kinkless: medianCiRanks: m = ${m}; expected an integer >= 0 (the number of values)`);
  let j = 0;
  while (binomHalfCdf(j, m) <= 0.025) j++;
  // now P(X <= j - 1) <= 0.025 < P(X <= j)
  if (j === 0) return null;
  return { j, k: m + 1 - j, coverage: 1 - 2 * binomHalfCdf(j - 1, m) };
}
