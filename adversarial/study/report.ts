// The written comparison of kink studies (`kinkless study kink` with several models): the
// median gradient-change ratios with their 95% intervals (and whether the lowest is
// separated from the others), cosines, fidelity, pre-activations near the kink, PGD
// accuracy with Wilson intervals, and each model against ReLU on the same images (exact
// McNemar, Holm, Agresti-Min; the sentences are generated from those tests only). Every
// number in the lines is taken from the results; docs/statistics.md explains the tests.
import type { KinkStudyResult } from './kink.ts';
import type { Summary } from './statistics.ts';
import { comparisonSentence, holmFamily, pairedComparison, unbits, withCi, type MetricWording, type PairedComparison } from '../stats_report.ts';

const num = (v: number) => (!Number.isFinite(v) ? 'n/a' : v !== 0 && (Math.abs(v) < 1e-3 || Math.abs(v) >= 1e4) ? v.toExponential(2) : Number(v.toPrecision(3)).toString());
const par = (v: number) => String(v);
const cosFmt = (v: number) => (Number.isFinite(v) ? Number(v.toPrecision(4)).toString() : 'n/a');
const pc = (v: number) => (Number.isFinite(v) ? `${(100 * v).toFixed(v < 0.01 ? 3 : 1)}%` : 'n/a');
const geoMean = (v: number[]) => (v.length && v.every((x) => x > 0 && Number.isFinite(x)) ? Math.exp(v.reduce((a, x) => a + Math.log(x), 0) / v.length) : NaN);

/** One model against the reference (ReLU) on the same images; Holm over the models, per metric. */
export interface KinkPairedResult {
  label: string;
  clean: PairedComparison;
  /** Accuracy at the final PGD iterate. */
  pgd: PairedComparison;
}

export interface KinkComparison {
  /** Label with the lowest stability score, a point estimate (null with no finite score); see stabilitySeparated. */
  mostStable: string | null;
  /** Per label: geometric mean over sigmas of the median stability ratio at the clean points. */
  stabilityScore: Record<string, number>;
  /** Sigmas at which mostStable's 95% interval of the median (clean points) lies below every other model's. */
  stabilitySeparated: number[];
  /** The reference of the paired tests (null: none among the entries). */
  reference: string | null;
  /** Every other model against the reference on the same images. */
  paired: KinkPairedResult[];
  /** Markdown bullet lines, every number taken from the results. */
  lines: string[];
}

/** "0.0123 [0.0101, 0.0150]": a median with its 95% interval (n/a below 6 values). */
const medCi = (x: Summary | undefined) => (x ? `${num(x.median)} [${Number.isFinite(x.medianLo) ? `${num(x.medianLo)}, ${num(x.medianHi)}` : 'n/a'}]` : 'n/a');

/**
 * The written summary of one or more kink studies. The lowest geometric mean over sigmas of
 * the median ||g(x+xi) - g(x)|| / ||g(x)|| at the clean points is named as a point estimate,
 * with the sigmas at which its median's 95% interval lies below every other model's; the
 * accuracies carry Wilson intervals, and every model is compared with the reference (the
 * entry labelled "relu" unless `reference` names another) image by image: exact McNemar on
 * clean accuracy and on the final PGD iterate's accuracy, Holm over the models per metric.
 */
export function compareKinkStudies(entries: { label: string; result: KinkStudyResult }[], opts: { reference?: string | null } = {}): KinkComparison {
  const lines: string[] = [];
  const multi = entries.length > 1;
  const list = (f: (r: KinkStudyResult) => string) => entries.map((e) => `${e.label} ${f(e.result)}`).join(', ');
  const st = (r: KinkStudyResult, sigma: number, at: 'clean' | 'adv') => r.stability.find((s) => s.sigma === sigma && s.at === at)?.ratio;
  const med = (r: KinkStudyResult, sigma: number, at: 'clean' | 'adv') => st(r, sigma, at)?.median ?? NaN;
  const sigmas = entries[0]?.result.sigmas ?? [];
  const score: Record<string, number> = {};
  for (const e of entries) score[e.label] = geoMean(e.result.sigmas.map((s) => med(e.result, s, 'clean')));
  const ranked = entries.filter((e) => Number.isFinite(score[e.label]!)).sort((a, b) => score[a.label]! - score[b.label]!);
  const best = ranked[0] ?? null;
  const argmin = (sigma: number, at: 'clean' | 'adv') => entries.filter((e) => Number.isFinite(med(e.result, sigma, at))).sort((a, b) => med(a.result, sigma, at) - med(b.result, sigma, at))[0]?.label;
  // NOTE: best's 95% interval of the median against the others' at one sigma: "below" every
  // other model's (non-overlapping intervals imply a difference), "above" some other model's,
  // or overlapping (which does not show equality: these images just do not rank them).
  type Relation = 'below' | 'above' | 'overlap' | 'none';
  const relation = (sigma: number, at: 'clean' | 'adv'): Relation => {
    const b = best ? st(best.result, sigma, at) : undefined;
    const others = entries.filter((e) => e !== best).map((e) => st(e.result, sigma, at));
    if (!b || !Number.isFinite(b.medianLo) || others.some((o) => !o || !Number.isFinite(o.medianLo))) return 'none';
    if (others.every((o) => b.medianHi < o!.medianLo)) return 'below';
    return others.some((o) => o!.medianHi < b.medianLo) ? 'above' : 'overlap';
  };
  const relationText = (at: 'clean' | 'adv') => {
    const by = (r: Relation) => sigmas.filter((s) => relation(s, at) === r).map(par).join(', ');
    const parts = [
      by('below') && `lies below every other model's at sigma = ${by('below')}`,
      by('overlap') && `overlaps another model's at sigma = ${by('overlap')} (these ${entries[0]!.result.n} images do not rank them there)`,
      by('above') && `lies above another model's at sigma = ${by('above')}`,
      by('none') && `is not available at sigma = ${by('none')} (fewer than 6 finite ratios)`,
    ].filter(Boolean);
    return `the 95% interval of ${best!.label}'s median ${parts.join('; ')}`;
  };
  const ratioDef = 'median ||g(x+xi) - g(x)|| / ||g(x)|| [distribution-free 95% interval], xi ~ N(0, sigma^2)';
  const perSigma = (r: KinkStudyResult, at: 'clean' | 'adv') => r.sigmas.map((s) => medCi(st(r, s, at))).join(' / ');
  const sepClean = multi && best ? sigmas.filter((s) => relation(s, 'clean') === 'below') : [];
  if (multi && best) {
    const second = ranked[1];
    lines.push(`**Lowest median gradient change at the clean points (point estimate): ${best.label}.** ${ratioDef}, sigma = ${sigmas.map(par).join(' / ')}: ${list((r) => perSigma(r, 'clean'))}${second ? ` (geometric mean over sigma ${num(score[best.label]!)} vs ${num(score[second.label]!)} for ${second.label})` : ''}.`);
    const rt = relationText('clean');
    lines.push(`At the clean points ${rt}.`);
    const other = sigmas.filter((s) => argmin(s, 'clean') !== best.label);
    if (other.length) lines.push(`The point estimates do not rank uniformly: at sigma = ${other.map((s) => `${par(s)} ${argmin(s, 'clean')} has the lower median`).join('; ')}.`);
    lines.push(`At the PGD end points: ${list((r) => perSigma(r, 'adv'))}; ${relationText('adv')}.`);
  } else {
    for (const e of entries) lines.push(`Input-gradient stability of ${e.label} (${ratioDef}), sigma = ${e.result.sigmas.map(par).join(' / ')}: clean points ${perSigma(e.result, 'clean')}; PGD end points ${perSigma(e.result, 'adv')}.`);
  }
  const midSigma = sigmas[Math.floor(sigmas.length / 2)];
  if (midSigma !== undefined) lines.push(`Coordinates whose gradient sign flips under sigma = ${par(midSigma)} noise (the direction an L-inf step uses), mean over the clean points: ${list((r) => pc(r.stability.find((s) => s.sigma === midSigma && s.at === 'clean')?.signFlip.mean ?? NaN))}.`);
  lines.push(`Cosine between consecutive PGD input gradients (mean; median [95% interval] over examples and steps, pairs of the same example not independent, so the interval is optimistic): ${list((r) => `${cosFmt(r.cosine.pooled.mean)}; ${cosFmt(r.cosine.pooled.median)} [${cosFmt(r.cosine.pooled.medianLo)}, ${cosFmt(r.cosine.pooled.medianHi)}]`)}.`);
  const fid = (h: number) => {
    const row = (r: KinkStudyResult) => r.fidelity.find((f) => f.step === h);
    return `step h = ${par(h)}: median actual/predicted [95% interval] ${list((r) => medCi(row(r)?.ratio))}, correlation ${list((r) => num(row(r)?.correlation ?? NaN))}`;
  };
  const hs = entries[0]?.result.fidelity.map((f) => f.step) ?? [];
  if (hs.length) lines.push(`First-order fidelity of L(x + h sign(g)) - L(x) against h ||g||_1 at the clean points, ${[...new Set([hs[0]!, hs[hs.length - 1]!])].map(fid).join('; ')}. Along the PGD path (steps of one example pooled): median ratio ${list((r) => num(r.trajectoryFidelity.ratio.median))}, correlation ${list((r) => num(r.trajectoryFidelity.correlation))}.`);
  const tauMid = entries[0]?.result.taus[Math.floor((entries[0]?.result.taus.length ?? 1) / 2)];
  const tauIdx = (r: KinkStudyResult) => r.taus.indexOf(tauMid!);
  const pooledFrac = (r: KinkStudyResult, i: number) => {
    const w = r.layers.reduce((a, l) => a + l.perForward, 0);
    return w ? r.layers.reduce((a, l) => a + l.perForward * (l.fraction[i] ?? NaN), 0) / w : NaN;
  };
  if (tauMid !== undefined) lines.push(`Pre-activations within |z| < ${par(tauMid)} during the attack (all activation layers): ${list((r) => `${pc(pooledFrac(r, tauIdx(r)))} (per layer ${r.layers.map((l) => pc(l.fraction[tauIdx(r)] ?? NaN)).join(', ')})`)}.`);
  const eps = entries[0]?.result.eps ?? NaN;
  lines.push(`PGD accuracy (eps ${par(eps)}; Wilson 95% intervals over ${[...new Set(entries.map((e) => e.result.n))].join(' / ')} images) after ${(entries[0]?.result.successAt ?? []).map((s) => s.step).join(' / ')} steps: ${list((r) => r.successAt.map(withCi).join(' / '))} (clean ${list((r) => withCi(r.clean))}).`);
  // Paired tests against the reference on the same images.
  const refLabel = opts.reference === undefined ? (entries.some((e) => e.label === 'relu') ? 'relu' : null) : opts.reference;
  const ref = refLabel === null ? undefined : entries.find((e) => e.label === refLabel);
  if (refLabel !== null && !ref) throw new Error(`kinkless: compareKinkStudies: reference "${refLabel}" is not among the entries (${entries.map((e) => e.label).join(', ')})`);
  const paired: KinkPairedResult[] = [];
  if (ref && multi) {
    const rr = ref.result;
    for (const e of entries) {
      if (e === ref) continue;
      const r = e.result;
      if (r.n !== rr.n || r.steps !== rr.steps || !r.perImage || !rr.perImage) {
        lines.push(`${e.label} is not compared with ${ref.label} image by image: ${r.n !== rr.n ? `different images (${r.n} vs ${rr.n})` : r.steps !== rr.steps ? `different PGD steps (${r.steps} vs ${rr.steps})` : 'no per-image outcomes'}.`);
        continue;
      }
      const one = (a: string, b: string) => pairedComparison([{ a: unbits(a), b: unbits(b) }]);
      paired.push({ label: e.label, clean: one(r.perImage.clean, rr.perImage.clean), pgd: one(r.perImage.byStep[r.steps]!, rr.perImage.byStep[rr.steps]!) });
    }
    holmFamily(paired.map((p) => p.clean));
    holmFamily(paired.map((p) => p.pgd));
    const steps = rr.steps;
    const words: Record<'pgd' | 'clean', MetricWording> = {
      pgd: { what: `accuracy under PGD-${steps} (eps ${par(eps)})`, up: `more accurate under PGD-${steps} than`, down: `less accurate under PGD-${steps} than` },
      clean: { what: 'clean accuracy', up: 'more accurate on clean images than', down: 'less accurate on clean images than' },
    };
    for (const m of ['pgd', 'clean'] as const) for (const p of paired) lines.push(comparisonSentence(p.label, p[m], paired.length, words[m], ` (${p[m].table.n} images)`, ref.label === 'relu' ? 'ReLU' : ref.label));
  } else if (multi) {
    lines.push('No paired accuracy test: no ReLU model ("relu") among the studied models to compare with.');
  }
  return { mostStable: multi ? (best?.label ?? null) : (entries[0]?.label ?? null), stabilityScore: score, stabilitySeparated: sepClean, reference: ref && multi ? ref.label : null, paired, lines };
}
