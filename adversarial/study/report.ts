// The written comparison of kink studies (`kinkless study kink` with several models): which
// model has the most stable input gradients, whether the ranking holds per sigma and at
// the PGD end points, cosines, fidelity, pre-activations near the kink and PGD accuracy.
// Every number in the lines is taken from the results.
import type { KinkStudyResult } from './kink.ts';

const num = (v: number) => (!Number.isFinite(v) ? 'n/a' : v !== 0 && (Math.abs(v) < 1e-3 || Math.abs(v) >= 1e4) ? v.toExponential(2) : Number(v.toPrecision(3)).toString());
const par = (v: number) => String(v);
const cosFmt = (v: number) => (Number.isFinite(v) ? Number(v.toPrecision(4)).toString() : 'n/a');
const pc = (v: number) => (Number.isFinite(v) ? `${(100 * v).toFixed(v < 0.01 ? 3 : 1)}%` : 'n/a');
const geoMean = (v: number[]) => (v.length && v.every((x) => x > 0 && Number.isFinite(x)) ? Math.exp(v.reduce((a, x) => a + Math.log(x), 0) / v.length) : NaN);

export interface KinkComparison {
  /** Label with the lowest stability score (null with no finite score). */
  mostStable: string | null;
  /** Per label: geometric mean over sigmas of the median stability ratio at the clean points. */
  stabilityScore: Record<string, number>;
  /** Markdown bullet lines, every number taken from the results. */
  lines: string[];
}

/**
 * The written summary of one or more kink studies. "Most stable gradients" = the lowest
 * geometric mean over sigmas of the median ||g(x+xi) - g(x)|| / ||g(x)|| at the clean points;
 * the lines state whether that ranking holds at every sigma and at the PGD end points.
 */
export function compareKinkStudies(entries: { label: string; result: KinkStudyResult }[]): KinkComparison {
  const lines: string[] = [];
  const multi = entries.length > 1;
  const list = (f: (r: KinkStudyResult) => string) => entries.map((e) => `${e.label} ${f(e.result)}`).join(', ');
  const med = (r: KinkStudyResult, sigma: number, at: 'clean' | 'adv') => r.stability.find((s) => s.sigma === sigma && s.at === at)?.ratio.median ?? NaN;
  const sigmas = entries[0]?.result.sigmas ?? [];
  const score: Record<string, number> = {};
  for (const e of entries) score[e.label] = geoMean(e.result.sigmas.map((s) => med(e.result, s, 'clean')));
  const ranked = entries.filter((e) => Number.isFinite(score[e.label]!)).sort((a, b) => score[a.label]! - score[b.label]!);
  const best = ranked[0] ?? null;
  const argmin = (sigma: number, at: 'clean' | 'adv') => entries.filter((e) => Number.isFinite(med(e.result, sigma, at))).sort((a, b) => med(a.result, sigma, at) - med(b.result, sigma, at))[0]?.label;
  const ratioDef = 'median ||g(x+xi) - g(x)|| / ||g(x)||, xi ~ N(0, sigma^2)';
  const perSigma = (r: KinkStudyResult, at: 'clean' | 'adv') => r.sigmas.map((s) => num(med(r, s, at))).join(' / ');
  if (multi && best) {
    const second = ranked[1];
    lines.push(`**Most stable input gradients: ${best.label}.** ${ratioDef} at the clean points for sigma = ${sigmas.map(par).join(' / ')}: ${list((r) => perSigma(r, 'clean'))}${second ? ` (geometric mean over sigma ${num(score[best.label]!)} vs ${num(score[second.label]!)} for ${second.label}, ${num(score[second.label]! / score[best.label]!)}x smaller)` : ''}.`);
    const other = sigmas.filter((s) => argmin(s, 'clean') !== best.label);
    lines.push(other.length ? `The ranking is not uniform: at sigma = ${other.map((s) => `${par(s)} ${argmin(s, 'clean')} is lower`).join('; ')}.` : `${best.label} has the lowest median ratio at every sigma at the clean points.`);
    const advOther = sigmas.filter((s) => argmin(s, 'adv') !== best.label);
    lines.push(`At the PGD end points (${list((r) => perSigma(r, 'adv'))}) ${advOther.length ? `the ranking differs at sigma = ${advOther.map((s) => `${par(s)} (lowest: ${argmin(s, 'adv') ?? 'n/a'})`).join(', ')}` : `${best.label} is also lowest at every sigma`}.`);
  } else {
    for (const e of entries) lines.push(`Input-gradient stability of ${e.label} (${ratioDef}), sigma = ${e.result.sigmas.map(par).join(' / ')}: clean points ${perSigma(e.result, 'clean')}; PGD end points ${perSigma(e.result, 'adv')}.`);
  }
  const midSigma = sigmas[Math.floor(sigmas.length / 2)];
  if (midSigma !== undefined) lines.push(`Coordinates whose gradient sign flips under sigma = ${par(midSigma)} noise (the direction an L-inf step uses), clean points: ${list((r) => pc(r.stability.find((s) => s.sigma === midSigma && s.at === 'clean')?.signFlip.mean ?? NaN))}.`);
  const cosBest = [...entries].sort((a, b) => b.result.cosine.pooled.mean - a.result.cosine.pooled.mean)[0];
  lines.push(`Cosine between consecutive PGD input gradients (mean / median over examples and steps): ${list((r) => `${cosFmt(r.cosine.pooled.mean)} / ${cosFmt(r.cosine.pooled.median)}`)}${multi && cosBest ? `; most aligned: ${cosBest.label}` : ''}.`);
  const fid = (h: number) => {
    const row = (r: KinkStudyResult) => r.fidelity.find((f) => f.step === h);
    const closest = [...entries].filter((e) => Number.isFinite(row(e.result)?.ratio.median ?? NaN)).sort((a, b) => Math.abs(row(a.result)!.ratio.median - 1) - Math.abs(row(b.result)!.ratio.median - 1))[0];
    return `step h = ${par(h)}: median actual/predicted ${list((r) => num(row(r)?.ratio.median ?? NaN))}, correlation ${list((r) => num(row(r)?.correlation ?? NaN))}${multi && closest ? ` (closest to 1: ${closest.label})` : ''}`;
  };
  const hs = entries[0]?.result.fidelity.map((f) => f.step) ?? [];
  if (hs.length) lines.push(`First-order fidelity of L(x + h sign(g)) - L(x) against h ||g||_1 at the clean points, ${[...new Set([hs[0]!, hs[hs.length - 1]!])].map(fid).join('; ')}. Along the PGD path: median ratio ${list((r) => num(r.trajectoryFidelity.ratio.median))}, correlation ${list((r) => num(r.trajectoryFidelity.correlation))}.`);
  const tauMid = entries[0]?.result.taus[Math.floor((entries[0]?.result.taus.length ?? 1) / 2)];
  const tauIdx = (r: KinkStudyResult) => r.taus.indexOf(tauMid!);
  const pooledFrac = (r: KinkStudyResult, i: number) => {
    const w = r.layers.reduce((a, l) => a + l.perForward, 0);
    return w ? r.layers.reduce((a, l) => a + l.perForward * (l.fraction[i] ?? NaN), 0) / w : NaN;
  };
  if (tauMid !== undefined) lines.push(`Pre-activations within |z| < ${par(tauMid)} during the attack (all activation layers): ${list((r) => `${pc(pooledFrac(r, tauIdx(r)))} (per layer ${r.layers.map((l) => pc(l.fraction[tauIdx(r)] ?? NaN)).join(', ')})`)}.`);
  const settle = (r: KinkStudyResult) => {
    const fin = r.success[r.success.length - 1]!.accuracy;
    return r.success.find((s) => s.step > 0 && s.accuracy - fin <= 0.01)?.step ?? r.steps;
  };
  lines.push(`PGD accuracy (eps ${par(entries[0]?.result.eps ?? NaN)}) after ${(entries[0]?.result.successAt ?? []).map((s) => s.step).join(' / ')} steps: ${list((r) => r.successAt.map((s) => pc(s.accuracy)).join(' / '))} (clean ${list((r) => pc(r.cleanAccuracy))}); iterations until within 1 point of the final accuracy: ${list((r) => String(settle(r)))}.`);
  return { mostStable: multi ? (best?.label ?? null) : (entries[0]?.label ?? null), stabilityScore: score, lines };
}
