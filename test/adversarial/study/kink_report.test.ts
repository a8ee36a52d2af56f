// The kink study's interval reporting against hand-computed statistics (no GPU): success
// entries with Wilson intervals at 0 and n successes, the distribution-free interval of a
// median in summarize, and compareKinkStudies' paired tests against ReLU on hand-made
// per-image outcomes with known discordant counts (exact binomial tails, Holm, Agresti-Min
// computed here), plus the wording of the median intervals (below / above / overlapping).
import { describe, it, expect } from 'vitest';
import { compareKinkStudies, successEntry, summarize, type KinkStudyResult, type Summary } from '../../../adversarial/study/kink.ts';
import { Z95 } from '../../../adversarial/stats.ts';

const z2 = Z95 * Z95;
const N = 40;
/** '1' on the listed index ranges [a, b), '0' elsewhere. */
function ones(...ranges: [number, number][]): string {
  const a = new Array<string>(N).fill('0');
  for (const [s, e] of ranges) for (let i = s; i < e; i++) a[i] = '1';
  return a.join('');
}
const count = (s: string) => [...s].filter((c) => c === '1').length;

/** A median with the interval [0.9 m, 1.1 m] (summaries are inputs here, not computed). */
const sm = (v: number, lo = 0.9 * v, hi = 1.1 * v): Summary => ({ n: N, mean: v, median: v, medianLo: lo, medianHi: hi, p10: v, p90: v });

function fake(clean: string, byStep: string[], medians: { clean: number[]; adv: number[] }): KinkStudyResult {
  const sigmas = [1e-4, 1e-3, 1e-2];
  const steps = byStep.length - 1;
  const ok = count(clean);
  const success = byStep.map((b, k) => successEntry(k, count(b), N, ok, [...b].filter((c, j) => clean[j] === '1' && c === '0').length));
  return {
    n: N, eps: 0.1, alpha: 0.025, steps, taus: [1e-3, 1e-2, 1e-1], sigmas, histRange: 0.25, bins: 10, cleanAccuracy: ok / N, clean: { correct: ok, n: N, accuracy: ok / N, lo: NaN, hi: NaN }, zeroGradClean: 0,
    layers: [{ path: 'net.1', perForward: 100, clean: [0.01, 0.1, 0.5], fractionByStep: [], fraction: [0.02, 0.2, 0.6], exactZero: 0, histograms: {} }],
    cosine: { byStep: [], pooled: sm(0.9), perExampleMean: sm(0.9) },
    stability: sigmas.flatMap((s, i) => [{ sigma: s, at: 'clean' as const, ratio: sm(medians.clean[i]!), signFlip: sm(0.01), zeroGrad: 0 }, { sigma: s, at: 'adv' as const, ratio: sm(medians.adv[i]!), signFlip: sm(0.01), zeroGrad: 0 }]),
    fidelity: [{ step: 1e-3, ratio: sm(0.99), relError: sm(0.01), correlation: 0.99, excluded: 0 }],
    trajectoryFidelity: { ratio: sm(1), relError: sm(0), correlation: 1, excluded: 0 },
    success,
    successAt: [success[1]!, success[steps]!],
    perImage: { clean, byStep },
    seconds: 1,
  };
}

/** Agresti-Min 95% interval of (b - c)/n, written out from docs/statistics.md. */
function agrestiMin(b: number, c: number, n: number): [number, number] {
  const M = n + 2;
  const bb = (b + 0.5) / M;
  const cc = (c + 0.5) / M;
  const d = bb - cc;
  const h = Z95 * Math.sqrt((bb + cc - d * d) / M);
  return [d - h, d + h];
}

function fixture() {
  const relu = fake(ones([0, 36]), [ones([0, 36]), ones([0, 30]), ones([0, 25]), ones([0, 20])], { clean: [1e-3, 0.1, 0.3], adv: [1e-2, 0.05, 0.2] });
  // final iterate: 10 images only silu gets right, none only ReLU
  const silu = fake(ones([0, 36]), [ones([0, 36]), ones([0, 34]), ones([0, 32]), ones([0, 30])], { clean: [2e-3, 1e-3, 1e-2], adv: [1e-3, 1e-3, 0.18] });
  // clean: 0 only gelu, 2 only ReLU; final iterate: 2 only gelu (20, 21), 1 only ReLU (0)
  const gelu = fake(ones([2, 36]), [ones([2, 36]), ones([1, 30]), ones([1, 26]), ones([1, 22])], { clean: [0.5, 0.5, 0.5], adv: [0.5, 0.5, 0.5] });
  return [
    { label: 'relu', result: relu },
    { label: 'silu', result: silu },
    { label: 'gelu', result: gelu },
  ];
}

describe('kink study intervals', () => {
  it('success entries: Wilson intervals at 0 and n, and no rate without clean-correct images', () => {
    // nothing survives: accuracy 0 of 40 -> [0, z^2/(40 + z^2)]; every clean-correct image is broken: 36/36 -> [36/(36 + z^2), 1]
    const a = successEntry(5, 0, 40, 36, 36);
    expect([a.step, a.correct, a.n, a.accuracy, a.lo]).toEqual([5, 0, 40, 0, 0]);
    expect(a.hi).toBeCloseTo(z2 / (40 + z2), 14);
    expect(a.successRate).toBe(1);
    expect(a.successLo).toBeCloseTo(36 / (36 + z2), 14);
    expect(a.successHi).toBe(1);
    // everything survives: 40/40 -> [40/(40 + z^2), 1]; 0 of 40 successes -> [0, z^2/(40 + z^2)]
    const b = successEntry(0, 40, 40, 40, 0);
    expect(b.lo).toBeCloseTo(40 / (40 + z2), 14);
    expect(b.hi).toBe(1);
    expect([b.successRate, b.successLo]).toEqual([0, 0]);
    expect(b.successHi).toBeCloseTo(z2 / (40 + z2), 14);
    // no clean-correct image: no success rate
    const c = successEntry(1, 0, 10, 0, 0);
    expect([c.successRate, c.successLo, c.successHi].every(Number.isNaN)).toBe(true);
    // 20 of 40: Wilson [0.35200, 0.64800] (centre 1/2, half-width z/(1 + z^2/40) sqrt(1/160 + z^2/6400))
    const d = successEntry(3, 20, 40, 36, 16);
    const half = (Z95 / (1 + z2 / 40)) * Math.sqrt(0.25 / 40 + z2 / 6400);
    expect(d.lo).toBeCloseTo(0.5 - half, 14);
    expect(d.hi).toBeCloseTo(0.5 + half, 14);
    expect(d.lo).toBeCloseTo(0.35200, 5);
  });

  it('summarize: the median interval is the order statistics [x_(j), x_(m+1-j)]', () => {
    // 10 values: j = 2 -> [2nd smallest, 9th smallest]
    const s = summarize([10, 3, 7, 1, 9, 4, 8, 2, 6, 5]);
    expect([s.median, s.medianLo, s.medianHi]).toEqual([5.5, 2, 9]);
    // 6 values: [min, max]; non-finite values are dropped first
    const t = summarize([NaN, 6, 1, 5, 2, 4, 3, Infinity]);
    expect([t.n, t.medianLo, t.medianHi]).toEqual([6, 1, 6]);
    // 5 values: no interval
    const u = summarize([1, 2, 3, 4, 5]);
    expect(u.median).toBe(3);
    expect(Number.isNaN(u.medianLo) && Number.isNaN(u.medianHi)).toBe(true);
  });

  it('paired tests against ReLU: exact McNemar, Holm over the models, Agresti-Min; sentences from those numbers', () => {
    const c = compareKinkStudies(fixture());
    expect(c.reference).toBe('relu');
    const silu = c.paired.find((p) => p.label === 'silu')!;
    const gelu = c.paired.find((p) => p.label === 'gelu')!;
    expect(silu.pgd.table).toEqual({ n: 40, both: 20, onlyA: 10, onlyB: 0, neither: 10 });
    expect(gelu.pgd.table).toEqual({ n: 40, both: 19, onlyA: 2, onlyB: 1, neither: 18 });
    expect(gelu.clean.table).toEqual({ n: 40, both: 34, onlyA: 0, onlyB: 2, neither: 4 });
    // silu PGD: b = 10, c = 0 -> p = 2/2^10; gelu PGD: b = 2, c = 1 -> p = 2 P(X <= 1 | 3) = 2 * 4/8 = 1.
    expect(silu.pgd.p).toBeCloseTo(2 / 1024, 15);
    expect(gelu.pgd.p).toBe(1);
    // Holm over 2: silu first, 2 p = 4/1024; gelu max(4/1024, 1) = 1.
    expect(silu.pgd.pAdjusted).toBeCloseTo(4 / 1024, 15);
    expect(gelu.pgd.pAdjusted).toBe(1);
    expect([silu.pgd.significant, gelu.pgd.significant]).toEqual([true, false]);
    // clean: silu has no discordant image (p = 1); gelu 0 vs 2 -> p = 2 * 1/4 = 0.5, Holm 2 * 0.5 = 1
    expect(silu.clean.p).toBe(1);
    expect(gelu.clean.p).toBe(0.5);
    expect(gelu.clean.pAdjusted).toBe(1);
    const [lo, hi] = agrestiMin(10, 0, 40);
    expect(silu.pgd.lo).toBeCloseTo(lo, 14);
    expect(silu.pgd.hi).toBeCloseTo(hi, 14);
    expect(silu.pgd.diff).toBe(0.25);
    const text = c.lines.join('\n');
    // Agresti-Min for (10, 0, 40): [0.10109, 0.37510]; (2, 1, 40): [-0.06924, 0.11686]; (0, 0, 40): +-0.04667; (0, 2, 40): [-0.12715, 0.03192]
    expect(text).toContain('**silu** is more accurate under PGD-3 than ReLU by 25.0 points (95% CI +10.1 to +37.5 points; exact McNemar p = 0.002, Holm-adjusted over 2 comparisons 0.0039) (40 images).');
    expect(text).toContain('**gelu**: no significant difference from ReLU in accuracy under PGD-3 (eps 0.1) (exact McNemar p = 1, Holm-adjusted over 2 comparisons 1; difference +2.5 points, 95% CI -6.9 to +11.7 points) (40 images).');
    expect(text).toContain('**silu**: no significant difference from ReLU in clean accuracy (exact McNemar p = 1, Holm-adjusted over 2 comparisons 1; difference +0.0 points, 95% CI -4.7 to +4.7 points) (40 images).');
    expect(text).toContain('**gelu**: no significant difference from ReLU in clean accuracy (exact McNemar p = 0.5, Holm-adjusted over 2 comparisons 1; difference -5.0 points, 95% CI -12.7 to +3.2 points) (40 images).');
    // Wilson: 30/40 = [59.8, 85.8], 20/40 = [35.2, 64.8], 36/40 = [76.9, 96.0]
    expect(text).toContain('relu 75.0% [59.8, 85.8] / 50.0% [35.2, 64.8]');
    // no sentence names a winner of the accuracy comparisons beyond the tests
    expect(text).not.toMatch(/most aligned|closest to 1|Most stable/);
  });

  it('median intervals: the lowest is named as a point estimate, with where its interval lies', () => {
    const c = compareKinkStudies(fixture());
    expect(c.mostStable).toBe('silu'); // geometric means: silu cbrt(2e-8) < relu cbrt(3e-5) < gelu 0.5
    // clean: sigma 1e-4: silu [1.8e-3, 2.2e-3] lies above relu [0.9e-3, 1.1e-3]; 1e-3, 1e-2: below both others
    expect(c.stabilitySeparated).toEqual([1e-3, 1e-2]);
    const text = c.lines.join('\n');
    expect(text).toContain("**Lowest median gradient change at the clean points (point estimate): silu.**");
    expect(text).toContain("At the clean points the 95% interval of silu's median lies below every other model's at sigma = 0.001, 0.01; lies above another model's at sigma = 0.0001.");
    expect(text).toContain('at sigma = 0.0001 relu has the lower median');
    // PGD end points: 0.18 [0.162, 0.198] against relu 0.2 [0.18, 0.22] overlaps at sigma 1e-2
    expect(text).toContain("the 95% interval of silu's median lies below every other model's at sigma = 0.0001, 0.001; overlaps another model's at sigma = 0.01 (these 40 images do not rank them there).");
    expect(text).toContain('relu 0.001 [9.00e-4, 0.0011] / 0.1 [0.09, 0.11] / 0.3 [0.27, 0.33]');
  });

  it('no ReLU, other images, or a reference that is not there', () => {
    const [relu, silu, gelu] = fixture();
    const noRef = compareKinkStudies([silu!, gelu!]);
    expect(noRef.reference).toBeNull();
    expect(noRef.paired).toEqual([]);
    expect(noRef.lines.join('\n')).toContain('No paired accuracy test: no ReLU model ("relu")');
    const other = { label: 'x', result: { ...gelu!.result, n: 39 } };
    expect(compareKinkStudies([relu!, other]).lines.join('\n')).toContain('x is not compared with relu image by image: different images (39 vs 40).');
    expect(() => compareKinkStudies([relu!, silu!], { reference: 'tanh' })).toThrow(/reference "tanh" is not among the entries \(relu, silu\)/);
    // an explicit reference with another label; the sentence names it
    const named = compareKinkStudies([{ label: 'relu:ckpt', result: relu!.result }, silu!], { reference: 'relu:ckpt' });
    expect(named.lines.join('\n')).toContain('**silu** is more accurate under PGD-3 than relu:ckpt by 25.0 points');
  });
});
