// Report helpers on top of stats.ts, shared by `reproduce sat` (cli/sat_summary.ts), the
// kink study (adversarial/study/report.ts) and `eval`: an accuracy with its Wilson 95%
// interval, per-image 0/1 outcomes as compact '0'/'1' strings, a paired comparison of two
// networks on the same images (exact McNemar, Agresti-Min interval, Holm over a family),
// and the one sentence a comparison may generate. Formulas: docs/statistics.md.
import { wilson, pairedTable, addTables, mcnemarExact, pairedDiffCi, holm, formatP, type PairedTable } from './stats.ts';

/** Significance level of the generated sentences (after Holm's adjustment). */
export const ALPHA = 0.05;

export interface Acc {
  correct: number;
  n: number;
  accuracy: number;
  /** Wilson 95% interval. */
  lo: number;
  hi: number;
}

/** correct / n with its Wilson 95% interval. */
export function accWithCi(correct: number, n: number): Acc {
  const w = wilson(correct, n);
  return { correct, n, accuracy: correct / n, lo: w.lo, hi: w.hi };
}

export const pct = (v: number) => `${(100 * v).toFixed(1)}%`;
/** "98.1% [97.2, 98.8]": accuracy and its 95% interval in percent. */
export const withCi = (a: { accuracy: number; lo: number; hi: number }) => `${pct(a.accuracy)} [${(100 * a.lo).toFixed(1)}, ${(100 * a.hi).toFixed(1)}]`;
/** A difference of accuracies in percentage points with its sign: "+3.7", "-0.5". */
export const points = (d: number) => `${d >= 0 ? '+' : '-'}${Math.abs(100 * d).toFixed(1)}`;

/** Per-image 0/1 outcomes as a string of '1' (correct) and '0'. */
export const outcomeBits = (a: ArrayLike<number>) => Array.from(a, (v) => (v ? '1' : '0')).join('');

/** Decodes a per-image string back to 0/1 numbers. */
export function unbits(s: string): number[] {
  return Array.from(s, (c) => (c === '1' ? 1 : 0));
}

/** Network A against a reference B on the same images (strata, e.g. seeds, pooled). */
export interface PairedComparison {
  table: PairedTable;
  /** acc(A) - acc(B) on the pooled pairs, with the Agresti-Min 95% interval. */
  diff: number;
  lo: number;
  hi: number;
  /** Exact McNemar two-sided p-value. */
  p: number;
  /** Holm-adjusted over the comparisons of one family (NaN until holmFamily). */
  pAdjusted: number;
  significant: boolean;
}

/** Compares per-image outcomes of A and B, one pair of vectors per stratum (the same images, in order). */
export function pairedComparison(pairs: { a: ArrayLike<number>; b: ArrayLike<number> }[]): PairedComparison {
  const table = addTables(pairs.map((p) => pairedTable(p.a, p.b)));
  const ci = pairedDiffCi(table);
  return { table, diff: ci.diff, lo: ci.lo, hi: ci.hi, p: mcnemarExact(table), pAdjusted: NaN, significant: false };
}

/** Holm-adjusts a family of comparisons in place and marks those below ALPHA significant. */
export function holmFamily(family: PairedComparison[], alpha = ALPHA): void {
  const adj = holm(family.map((c) => c.p));
  family.forEach((c, i) => {
    c.pAdjusted = adj[i]!;
    c.significant = c.pAdjusted < alpha;
  });
}

/** How a sentence names a metric: "robust (worst-case) accuracy", "more robust than", "less robust than". */
export interface MetricWording {
  what: string;
  up: string;
  down: string;
}

/**
 * The one sentence a comparison generates, from the test alone: "no significant difference
 * from <reference> in <what> (p ...; difference ..., 95% CI ...)" or "<label> is <up|down>
 * <reference> by d points (95% CI ...; p ...)". `family` is the size of the Holm family;
 * `extent` says what was paired, e.g. " (100 images)".
 */
export function comparisonSentence(label: string, c: PairedComparison, family: number, wording: MetricWording, extent: string, reference = 'ReLU'): string {
  const ci = `95% CI ${points(c.lo)} to ${points(c.hi)} points`;
  const p = `exact McNemar p = ${formatP(c.p)}${family > 1 ? `, Holm-adjusted over ${family} comparisons ${formatP(c.pAdjusted)}` : ''}`;
  if (!c.significant) return `**${label}**: no significant difference from ${reference} in ${wording.what} (${p}; difference ${points(c.diff)} points, ${ci})${extent}.`;
  return `**${label}** is ${c.diff > 0 ? wording.up : wording.down} ${reference} by ${Math.abs(100 * c.diff).toFixed(1)} points (${ci}; ${p})${extent}.`;
}
