// Statistics for accuracy tables against hand-computed cases: Wilson intervals at 0, n and
// in between (also against the roots of the score-test quadratic, solved here
// independently), the exact McNemar test as enumerated binomial sums, the Agresti-Min
// paired interval with and without discordant pairs, and mean / spread over seeds.
import { describe, it, expect } from 'vitest';
import { Z95, wilson, binomHalfCdf, pairedTable, addTables, mcnemarExact, pairedDiffCi, spread, formatP, holm, medianCiRanks } from '../../adversarial/stats.ts';

const z2 = Z95 * Z95;

/** Roots of (1 + z^2/n) p^2 - (2 ph + z^2/n) p + ph^2 = 0: where |p - ph| = z sqrt(p(1-p)/n). */
function scoreRoots(k: number, n: number): [number, number] {
  const ph = k / n;
  const a = 1 + z2 / n;
  const b = -(2 * ph + z2 / n);
  const c = ph * ph;
  const disc = Math.sqrt(b * b - 4 * a * c);
  return [(-b - disc) / (2 * a), (-b + disc) / (2 * a)];
}

describe('wilson', () => {
  it('0 successes: [0, z^2/(n + z^2)]; n successes: [n/(n + z^2), 1]', () => {
    const a = wilson(0, 10);
    expect(a.lo).toBe(0);
    expect(a.hi).toBeCloseTo(z2 / (10 + z2), 14);
    expect(a.hi).toBeCloseTo(0.2775328, 6);
    const b = wilson(10, 10);
    expect(b.hi).toBe(1);
    expect(b.lo).toBeCloseTo(10 / (10 + z2), 14);
    const c = wilson(1, 1);
    expect(c.hi).toBe(1);
    expect(c.lo).toBeCloseTo(1 / (1 + z2), 14);
  });

  it('5/10 is [0.2366, 0.7634] (symmetric about 1/2), and matches the score-test roots', () => {
    const a = wilson(5, 10);
    expect(a.lo).toBeCloseTo(0.2365931, 6);
    expect(a.hi).toBeCloseTo(0.7634069, 6);
    expect(a.lo + a.hi).toBeCloseTo(1, 14);
    for (const [k, n] of [[81, 263], [1, 7], [999, 1000], [3, 200]] as const) {
      const w = wilson(k, n);
      const [lo, hi] = scoreRoots(k, n);
      expect(w.lo).toBeCloseTo(lo, 12);
      expect(w.hi).toBeCloseTo(hi, 12);
    }
  });

  it('rejects bad counts, naming the argument', () => {
    expect(() => wilson(3, 0)).toThrow(/n = 0; expected an integer >= 1/);
    expect(() => wilson(11, 10)).toThrow(/successes = 11; expected an integer in \[0, n = 10\]/);
    expect(() => wilson(1.5, 10)).toThrow(/successes = 1.5/);
  });
});

describe('exact McNemar test', () => {
  it('binomial(m, 1/2) CDF as exact enumerations', () => {
    expect(binomHalfCdf(1, 10)).toBeCloseTo(11 / 1024, 15);
    expect(binomHalfCdf(2, 12)).toBeCloseTo(79 / 4096, 15);
    expect(binomHalfCdf(-1, 5)).toBe(0);
    expect(binomHalfCdf(5, 5)).toBe(1);
    // symmetric: P(X <= m/2 - 1) + P(X >= m/2 + 1) + P(X = m/2) = 1 with m = 2000 (no
    // underflow; the running log C(m, i) sum loses ~1e-13)
    const m = 2000;
    const mid = binomHalfCdf(1000, m) - binomHalfCdf(999, m);
    expect(2 * binomHalfCdf(999, m) + mid).toBeCloseTo(1, 10);
  });

  it('p-values of hand-computed tables; no discordant pairs gives p = 1', () => {
    const t = (onlyA: number, onlyB: number) => ({ n: 100, both: 50, onlyA, onlyB, neither: 50 - onlyA - onlyB });
    expect(mcnemarExact(t(1, 9))).toBeCloseTo(22 / 1024, 15);
    expect(mcnemarExact(t(9, 1))).toBeCloseTo(22 / 1024, 15);
    expect(mcnemarExact(t(0, 5))).toBeCloseTo(2 / 32, 15);
    expect(mcnemarExact(t(2, 10))).toBeCloseTo(158 / 4096, 15);
    expect(mcnemarExact(t(3, 3))).toBe(1);
    expect(mcnemarExact(t(0, 0))).toBe(1);
  });

  it('pairedTable counts the four cells and checks its inputs', () => {
    const tab = pairedTable([1, 1, 0, 0, 1, 0], [1, 0, 1, 0, 0, 0]);
    expect(tab).toEqual({ n: 6, both: 1, onlyA: 2, onlyB: 1, neither: 2 });
    expect(addTables([tab, tab])).toEqual({ n: 12, both: 2, onlyA: 4, onlyB: 2, neither: 4 });
    expect(() => pairedTable([1, 0], [1])).toThrow(/differ in length \(2 and 1\)/);
    expect(() => pairedTable([1, 2], [1, 0])).toThrow(/outcome 1 is \(2, 0\); expected 0 or 1/);
  });
});

describe('Agresti-Min paired difference interval', () => {
  it('no discordant pairs: centred on 0 with half-width z/(n + 2)', () => {
    const ci = pairedDiffCi({ n: 10, both: 7, onlyA: 0, onlyB: 0, neither: 3 });
    expect(ci.diff).toBe(0);
    // adjusted b = c = 0.5/12; variance (1/12)/12 = 1/144
    expect(ci.hi).toBeCloseTo(Z95 / 12, 14);
    expect(ci.lo).toBeCloseTo(-Z95 / 12, 14);
  });

  it('3 vs 1 discordant of 20: hand-computed [-0.10465, 0.28646]', () => {
    const ci = pairedDiffCi({ n: 20, both: 10, onlyA: 3, onlyB: 1, neither: 6 });
    expect(ci.diff).toBeCloseTo(0.1, 15);
    expect(ci.lo).toBeCloseTo(-0.1046450, 6);
    expect(ci.hi).toBeCloseTo(0.2864632, 6);
  });

  it('all pairs discordant one way stays inside [-1, 1]', () => {
    const ci = pairedDiffCi({ n: 5, both: 0, onlyA: 5, onlyB: 0, neither: 0 });
    expect(ci.diff).toBe(1);
    expect(ci.hi).toBeLessThanOrEqual(1);
    expect(ci.lo).toBeGreaterThan(0);
  });
});

describe('spread over seeds', () => {
  it('mean, sample sd, min, max', () => {
    const s = spread([0.9, 0.92, 0.94]);
    expect(s.mean).toBeCloseTo(0.92, 15);
    expect(s.sd).toBeCloseTo(0.02, 15);
    expect([s.min, s.max]).toEqual([0.9, 0.94]);
    expect(spread([0.5])).toEqual({ n: 1, mean: 0.5, sd: 0, min: 0.5, max: 0.5 });
    expect(() => spread([])).toThrow(/no values/);
    expect(() => spread([1, NaN])).toThrow(/value 1 is NaN/);
  });

  it('Holm adjustment: hand-computed step-down values in input order', () => {
    // sorted 0.01, 0.02, 0.03, 0.5 -> 4*0.01 = 0.04, 3*0.02 = 0.06, max(0.06, 2*0.03) = 0.06, max(0.06, 0.5) = 0.5
    const h = holm([0.03, 0.5, 0.01, 0.02]);
    expect(h[0]).toBeCloseTo(0.06, 15);
    expect(h[1]).toBeCloseTo(0.5, 15);
    expect(h[2]).toBeCloseTo(0.04, 15);
    expect(h[3]).toBeCloseTo(0.06, 15);
    expect(holm([0.4, 0.6])).toEqual([0.8, 0.8]);
    expect(holm([])).toEqual([]);
    expect(() => holm([0.1, 2])).toThrow(/p-value 1 is 2/);
  });

  it('formats p-values', () => {
    expect(formatP(0.0004)).toBe('< 0.001');
    expect(formatP(0.0053)).toBe('0.0053');
    expect(formatP(0.0486)).toBe('0.049');
    expect(formatP(0.34)).toBe('0.34');
    expect(formatP(1)).toBe('1');
  });
});

describe('distribution-free interval of a median', () => {
  it('ranks from binomial(m, 1/2) tails enumerated by hand', () => {
    // m = 5: P(X <= 0) = 1/32 = 0.031 > 0.025, so not even [min, max] reaches 95%.
    expect(medianCiRanks(5)).toBeNull();
    expect(medianCiRanks(0)).toBeNull();
    // m = 6: P(X <= 0) = 1/64 <= 0.025 < P(X <= 1) = 7/64: [x_(1), x_(6)], coverage 1 - 2/64.
    expect(medianCiRanks(6)).toEqual({ j: 1, k: 6, coverage: 1 - 2 / 64 });
    // m = 10: P(X <= 1) = 11/1024 = 0.0107 <= 0.025 < P(X <= 2) = 56/1024: [x_(2), x_(9)].
    const r10 = medianCiRanks(10)!;
    expect([r10.j, r10.k]).toEqual([2, 9]);
    expect(r10.coverage).toBeCloseTo(1 - 22 / 1024, 14);
    // m = 20: P(X <= 5) = (1 + 20 + 190 + 1140 + 4845 + 15504)/2^20 = 21700/1048576 = 0.0207,
    // P(X <= 6) = (21700 + 38760)/2^20 = 0.0577: j = 6, k = 15.
    const r20 = medianCiRanks(20)!;
    expect([r20.j, r20.k]).toEqual([6, 15]);
    expect(r20.coverage).toBeCloseTo(1 - (2 * 21700) / 1048576, 14);
    expect(() => medianCiRanks(-1)).toThrow(/medianCiRanks: m = -1/);
  });
});
