// The gradient-quality study at ReLU's kink (`kinkless study kink`): for one model and a
// batch of test images, how often pre-activations sit near 0 during a PGD attack (per
// activation layer, per step; recorder.ts), how well consecutive PGD input gradients agree
// (cosine), how much the input gradient moves under tiny Gaussian input noise, how well the
// first-order prediction g.delta matches the actual loss change, and the attack's accuracy
// after each step (measure.ts). This file runs them batch by batch and folds the numbers
// (statistics.ts; accuracies with Wilson intervals and per-image outcomes for paired
// tests); the written comparison between models is report.ts.
import { Tensor, type Device } from '../../engine/index.ts';
import type { Module } from '../../nn/module.ts';
import type { ImageSet } from '../../nn/data/loader.ts';
import type { BnMode } from '../attacks/common.ts';
import { checkCount, checkPositive } from '../threat.ts';
import { firstOrderFidelity, gaussianNoise, gradientStability, pgdTrajectory, signStep, type Trajectory } from './measure.ts';
import { PreActRecorder, type LayerPreActStats } from './recorder.ts';
import { fidelitySummary, summarize, type FidelitySummary, type Summary } from './statistics.ts';
import { accWithCi, outcomeBits, type Acc } from '../stats_report.ts';
import { wilson } from '../stats.ts';

export * from './statistics.ts';
export * from './recorder.ts';
export * from './measure.ts';
export * from './report.ts';

export interface KinkStudyOptions {
  /** First N examples of `data` (default 200). */
  limit?: number;
  batchSize?: number;
  eps?: number;
  alpha?: number;
  steps?: number;
  randomStart?: boolean;
  seed?: number;
  bnMode?: BnMode;
  taus?: number[];
  sigmas?: number[];
  /** Step sizes h of the first-order check delta = h sign(g) at the clean points. */
  fidelitySteps?: number[];
  /** Iterates at which attack success is reported (clipped to steps: larger ones report the final iterate). */
  successSteps?: number[];
  histRange?: number;
  bins?: number;
  /** Fidelity: examples whose |predicted change| is below this are excluded (float32 noise of CE differences). */
  minPredicted?: number;
  onProgress?: (msg: string) => void;
}

export const KINK_DEFAULTS = { limit: 200, batchSize: 200, eps: 0.1, steps: 20, randomStart: true, seed: 0, bnMode: 'eval' as BnMode, taus: [1e-3, 1e-2, 1e-1], sigmas: [1e-4, 1e-3, 1e-2], fidelitySteps: [1e-3, 5e-3, 2.5e-2], successSteps: [1, 2, 5, 10, 20], histRange: 0.25, bins: 50, minPredicted: 1e-4 };

/** PGD iterate k on the studied images: accuracy and attack success, each with its Wilson 95% interval. */
export interface SuccessEntry extends Acc {
  step: number;
  /** Clean-correct examples: the denominator of the success rate. */
  cleanCorrect: number;
  /** Clean-correct examples misclassified at iterate k. */
  successes: number;
  /** successes / cleanCorrect with its Wilson 95% interval (NaN when no example is clean-correct). */
  successRate: number;
  successLo: number;
  successHi: number;
}

/** One success entry from counts (pure; the study calls it per iterate). */
export function successEntry(step: number, correct: number, n: number, cleanCorrect: number, successes: number): SuccessEntry {
  const w = cleanCorrect > 0 ? wilson(successes, cleanCorrect) : { lo: NaN, hi: NaN };
  return { step, ...accWithCi(correct, n), cleanCorrect, successes, successRate: cleanCorrect > 0 ? successes / cleanCorrect : NaN, successLo: w.lo, successHi: w.hi };
}

export interface KinkStudyResult {
  n: number;
  eps: number;
  alpha: number;
  steps: number;
  taus: number[];
  sigmas: number[];
  histRange: number;
  bins: number;
  cleanAccuracy: number;
  /** Clean accuracy with its Wilson 95% interval. */
  clean: Acc;
  zeroGradClean: number;
  layers: LayerPreActStats[];
  /** Cosine of consecutive PGD input gradients: per transition k-1 -> k, and pooled. */
  cosine: { byStep: { step: number; mean: number; median: number }[]; pooled: Summary; perExampleMean: Summary };
  stability: { sigma: number; at: 'clean' | 'adv'; ratio: Summary; signFlip: Summary; zeroGrad: number }[];
  fidelity: ({ step: number } & FidelitySummary)[];
  /** Along the PGD path: obj_{k+1} - obj_k against g_k . (delta_{k+1} - delta_k), pooled. */
  trajectoryFidelity: FidelitySummary;
  /** Iterates k = 0..steps: accuracy and success rate (among clean-correct examples). */
  success: SuccessEntry[];
  successAt: SuccessEntry[];
  /** Per studied image, '1' correct / '0' wrong: clean, and at every PGD iterate k = 0..steps (for paired tests). */
  perImage: { clean: string; byStep: string[] };
  seconds: number;
}

/** Run every measurement of the kink study on the first `limit` examples of `data`. */
export async function studyKink(device: Device, model: Module, data: ImageSet, options: KinkStudyOptions = {}): Promise<KinkStudyResult> {
  const o = { ...KINK_DEFAULTS, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) } as typeof KINK_DEFAULTS & KinkStudyOptions;
  const who = 'studyKink';
  const alpha = o.alpha ?? o.eps / 4;
  checkCount(who, 'limit', o.limit, 1);
  checkCount(who, 'batchSize', o.batchSize, 1);
  for (const s of [...o.sigmas, ...o.fidelitySteps]) checkPositive(who, 'sigma / fidelity step', s);
  const n = Math.min(o.limit, data.n);
  if (!(n > 0)) throw new Error(`kinkless: ${who}: no examples (data.n = ${data.n})`);
  const sample = data.shape.reduce((a, b) => a * b, 1);
  const t0 = performance.now();
  const rec = new PreActRecorder(model, o.taus, o.histRange, o.bins);
  rec.snapshotFor = (k) => (k < 0 ? 'clean' : k === o.steps ? 'adv' : null);
  const acc = {
    cleanCorrect: [] as number[],
    zeroClean: 0,
    correct: Array.from({ length: o.steps + 1 }, () => [] as number[]),
    cos: Array.from({ length: o.steps }, () => [] as number[]),
    cosEx: [] as number[],
    trajA: [] as number[],
    trajP: [] as number[],
    stab: new Map<string, { ratio: number[]; flip: number[]; zero: number }>(),
    fidA: o.fidelitySteps.map(() => [] as number[]),
    fidP: o.fidelitySteps.map(() => [] as number[]),
  };
  const progress = o.onProgress ?? (() => {});
  for (let s = 0, b = 0; s < n; s += o.batchSize, b++) {
    const e = Math.min(n, s + o.batchSize);
    const x = Tensor.from(device, data.images.subarray(s * sample, e * sample), [e - s, ...data.shape]);
    const y = Tensor.from(device, data.labels.subarray(s, e), [e - s], 'i32');
    let xAdv: Tensor | null = null;
    try {
      progress(`PGD-${o.steps} on examples ${s}..${e - 1}`);
      rec.start();
      let traj: Trajectory;
      try {
        ({ traj, xAdv } = await pgdTrajectory(model, x, y, { eps: o.eps, alpha, steps: o.steps, randomStart: o.randomStart, seed: o.seed + b, bnMode: o.bnMode }, rec));
      } finally {
        rec.stop();
      }
      await rec.flush();
      acc.cleanCorrect.push(...traj.clean.correct);
      acc.zeroClean += traj.clean.gradNorm.filter((v) => v === 0).length;
      traj.correct.forEach((c, k) => acc.correct[k]!.push(...c));
      traj.cosine.forEach((c, k) => acc.cos[k]!.push(...c));
      for (let j = 0; j < e - s; j++) acc.cosEx.push(summarize(traj.cosine.map((c) => c[j]!)).mean);
      for (let k = 0; k < o.steps; k++) for (let j = 0; j < e - s; j++) (acc.trajA.push(traj.obj[k + 1]![j]! - traj.obj[k]![j]!), acc.trajP.push(traj.predicted[k]![j]!));
      progress(`gradient stability (${o.sigmas.length} sigmas, clean and PGD end points)`);
      for (const [si, sigma] of o.sigmas.entries()) {
        for (const [pi, at] of (['clean', 'adv'] as const).entries()) {
          const xi = gaussianNoise(device, x.shape, sigma, o.seed + 1000 + b, si * 2 + pi);
          try {
            const st = await gradientStability(model, at === 'clean' ? x : xAdv, y, xi, o.bnMode);
            const k = `${sigma}:${at}`;
            const m = acc.stab.get(k) ?? { ratio: [], flip: [], zero: 0 };
            m.ratio.push(...st.ratio);
            m.flip.push(...st.signFlip);
            m.zero += st.gradNorm.filter((v) => v === 0).length;
            acc.stab.set(k, m);
          } finally {
            xi.dispose();
          }
        }
      }
      progress(`first-order fidelity (${o.fidelitySteps.length} step sizes)`);
      for (const [hi, h] of o.fidelitySteps.entries()) {
        const d = signStep(model, x, y, h, o.bnMode);
        try {
          const f = await firstOrderFidelity(model, x, y, d, o.bnMode);
          acc.fidA[hi]!.push(...f.actual);
          acc.fidP[hi]!.push(...f.predicted);
        } finally {
          d.dispose();
        }
      }
    } finally {
      rec.dispose();
      xAdv?.dispose();
      x.dispose();
      y.dispose();
    }
  }
  const layers = await rec.result();
  const cleanOk = acc.cleanCorrect;
  const nOk = cleanOk.filter((v) => v === 1).length;
  const success = acc.correct.map((c, k) => successEntry(k, c.filter((v) => v === 1).length, n, nOk, c.filter((v, j) => cleanOk[j] === 1 && v === 0).length));
  return {
    n,
    eps: o.eps,
    alpha,
    steps: o.steps,
    taus: o.taus,
    sigmas: o.sigmas,
    histRange: o.histRange,
    bins: o.bins,
    cleanAccuracy: nOk / n,
    clean: accWithCi(nOk, n),
    zeroGradClean: acc.zeroClean,
    layers,
    cosine: { byStep: acc.cos.map((c, k) => ({ step: k + 1, ...(({ mean, median }) => ({ mean, median }))(summarize(c)) })), pooled: summarize(acc.cos.flat()), perExampleMean: summarize(acc.cosEx) },
    stability: [...acc.stab.entries()].map(([k, m]) => ({ sigma: Number(k.split(':')[0]), at: k.split(':')[1] as 'clean' | 'adv', ratio: summarize(m.ratio), signFlip: summarize(m.flip), zeroGrad: m.zero })),
    fidelity: o.fidelitySteps.map((h, i) => ({ step: h, ...fidelitySummary(acc.fidA[i]!, acc.fidP[i]!, o.minPredicted) })),
    trajectoryFidelity: fidelitySummary(acc.trajA, acc.trajP, o.minPredicted),
    success,
    // steps beyond the attack's are clipped to its final iterate (the one the paired tests use)
    successAt: [...new Set(o.successSteps.map((k) => Math.min(k, o.steps)))].sort((a, b) => a - b).map((k) => success[k]!),
    perImage: { clean: outcomeBits(cleanOk), byStep: acc.correct.map(outcomeBits) },
    seconds: (performance.now() - t0) / 1000,
  };
}
