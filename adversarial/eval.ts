// Robust evaluation over a host dataset: clean accuracy, accuracy under each attack, and
// the per-example worst case (an example is robust only if it is classified correctly
// clean AND under every attack and restart), plus gradient-masking sanity checks (robust
// accuracy must not rise with eps, PGD must be no weaker than FGSM, a huge eps must drive
// accuracy to ~0, and a count of examples whose input gradient is exactly zero). Reports
// are plain JSON-able objects.
import { Tensor, argmax, eq, noGrad, scope, type Device } from '../engine/index.ts';
import { saveModes, type Module } from '../nn/module.ts';
import type { ImageSet } from '../nn/data/loader.ts';
import { linfNormPerExample, resolveThreat, checkEps, checkCount, type Norm } from './threat.ts';
import { Fgm, Fgsm, Pgd, objectiveAndGrad, withAttackMode, type Attack, type BnMode } from './attacks/index.ts';
import { accWithCi } from './stats_report.ts';

export interface AccuracyEntry {
  name: string;
  correct: number;
  accuracy: number;
  /** Wall time spent generating and classifying (all batches). */
  seconds: number;
}

export interface RobustReport {
  n: number;
  clean: AccuracyEntry;
  attacks: AccuracyEntry[];
  /** Correct clean and under every attack. */
  worstCase: { correct: number; accuracy: number; over: string[] };
  /** Examples whose input gradient of the clean loss is exactly zero (when requested). */
  zeroGradExamples?: number;
  /** 0/1 per example (when requested). */
  perExample?: { clean: number[]; attacks: number[][]; worstCase: number[] };
  seconds: number;
}

export interface RobustEvalOptions {
  attacks: Attack[];
  batchSize?: number;
  /** Evaluate only the first `limit` examples. */
  limit?: number;
  /** Include the 0/1 correctness vectors in the report. */
  perExample?: boolean;
  /** Count examples with an all-zero input gradient (clean loss, eval mode). */
  countZeroGrad?: boolean;
  /** Called after each (batch, attack) pair: examples done so far, the total, and the attack just run. */
  onProgress?: (info: { done: number; total: number; attack: string; batchEnd: number }) => void;
}

/**
 * Per-example worst case: 1 where the example is correct clean and under every attack.
 * Inputs are 0/1 vectors of equal length.
 */
export function worstCaseCorrect(clean: ArrayLike<number>, perAttack: ArrayLike<number>[]): Uint8Array {
  const n = clean.length;
  perAttack.forEach((a, i) => {
    if (a.length !== n) throw new Error(`kinkless: worstCaseCorrect: attack ${i} has ${a.length} entries, clean has ${n}`);
  });
  const out = new Uint8Array(n);
  for (let j = 0; j < n; j++) out[j] = clean[j] && perAttack.every((a) => a[j]) ? 1 : 0;
  return out;
}

function checkData(who: string, data: ImageSet): number {
  if (!data || !(data.images instanceof Float32Array) || !(data.labels instanceof Int32Array)) {
    throw new Error(`kinkless: ${who}: data must be { images: Float32Array, labels: Int32Array, n, shape: [C, H, W] }`);
  }
  const sample = data.shape.reduce((a, b) => a * b, 1);
  if (data.labels.length < data.n || data.images.length < data.n * sample) {
    throw new Error(`kinkless: ${who}: data has ${data.labels.length} labels and ${data.images.length} floats, but n = ${data.n} examples of shape [${data.shape.join(', ')}] need ${data.n} and ${data.n * sample}`);
  }
  return sample;
}

/** 1.0 where argmax(model(x)) == y (eval of logits, no tape). */
function correctFlags(model: Module, x: Tensor, y: Tensor): Tensor {
  return noGrad(() => scope(() => eq(argmax(model.forward(x), 1), y)));
}

/** 1.0 where the input gradient of the clean loss is exactly zero for the whole example. */
function zeroGradFlags(model: Module, x: Tensor, y: Tensor, bnMode: BnMode): Tensor {
  return scope(() => {
    const { g } = withAttackMode(model, bnMode, () => objectiveAndGrad(model, x, null, y, false, true));
    const m = linfNormPerExample(g!);
    return eq(m.view([x.shape[0]!]), 0);
  });
}

async function readFlags(t: Tensor): Promise<Float32Array> {
  const v = await t.f32();
  t.dispose();
  return v;
}

/** Clean and robust accuracy of `model` on `data` (inputs in the attacks' box, labels in [0, C)). */
export async function evaluateRobust(device: Device, model: Module, data: ImageSet, opts: RobustEvalOptions): Promise<RobustReport> {
  const who = 'evaluateRobust';
  const sample = checkData(who, data);
  const attacks = opts.attacks ?? [];
  for (const a of attacks) {
    if ((a as { targeted?: boolean }).targeted) throw new Error(`kinkless: ${who}: attack ${a.name} is targeted; robust accuracy needs untargeted attacks`);
  }
  const n = Math.min(data.n, opts.limit ?? data.n);
  if (!(n > 0)) throw new Error(`kinkless: ${who}: no examples to evaluate (n = ${data.n}, limit = ${String(opts.limit)})`);
  const bs = opts.batchSize ?? 100;
  checkCount(who, 'batchSize', bs, 1);
  const t0 = performance.now();
  const clean = new Uint8Array(n);
  const per = attacks.map(() => new Uint8Array(n));
  const secs = attacks.map(() => 0);
  let cleanSecs = 0;
  let zeroGrad = 0;
  const restoreModes = saveModes(model);
  model.eval();
  try {
    for (let s = 0; s < n; s += bs) {
      const e = Math.min(n, s + bs);
      const x = Tensor.from(device, data.images.subarray(s * sample, e * sample), [e - s, ...data.shape]);
      const y = Tensor.from(device, data.labels.subarray(s, e), [e - s], 'i32');
      try {
        let t = performance.now();
        const c = await readFlags(correctFlags(model, x, y));
        cleanSecs += (performance.now() - t) / 1000;
        c.forEach((v, i) => (clean[s + i] = v));
        for (let a = 0; a < attacks.length; a++) {
          t = performance.now();
          const fl = scope(() => correctFlags(model, attacks[a]!.generate(model, x, y), y));
          const v = await readFlags(fl);
          secs[a]! += (performance.now() - t) / 1000;
          v.forEach((f, i) => (per[a]![s + i] = f));
          opts.onProgress?.({ done: s + ((e - s) * (a + 1)) / attacks.length, total: n, attack: attacks[a]!.name, batchEnd: e });
        }
        if (opts.countZeroGrad) {
          const z = await readFlags(zeroGradFlags(model, x, y, 'eval'));
          zeroGrad += z.reduce((acc, v) => acc + v, 0);
        }
      } finally {
        x.dispose();
        y.dispose();
      }
    }
  } finally {
    restoreModes();
  }
  const worst = worstCaseCorrect(clean, per);
  const count = (a: Uint8Array) => a.reduce((acc, v) => acc + v, 0);
  const entry = (name: string, a: Uint8Array, seconds: number): AccuracyEntry => ({ name, correct: count(a), accuracy: count(a) / n, seconds });
  const report: RobustReport = {
    n,
    clean: entry('clean', clean, cleanSecs),
    attacks: attacks.map((a, i) => entry(a.name, per[i]!, secs[i]!)),
    worstCase: { correct: count(worst), accuracy: count(worst) / n, over: ['clean', ...attacks.map((a) => a.name)] },
    seconds: (performance.now() - t0) / 1000,
  };
  if (opts.countZeroGrad) report.zeroGradExamples = zeroGrad;
  if (opts.perExample) report.perExample = { clean: Array.from(clean), attacks: per.map((a) => Array.from(a)), worstCase: Array.from(worst) };
  return report;
}

export interface MaskingCheckOptions {
  norm?: Norm;
  eps: number;
  bounds?: [number, number];
  /** eps values for the monotonicity check (default eps/4, eps/2, eps, 2 eps); 0 = clean. */
  epsList?: number[];
  /** PGD steps (default 20); step size alpha = 2.5 eps / steps (Madry's rule). */
  steps?: number;
  restarts?: number;
  /** The "unbounded" radius (default: the box width, any image reachable in L-inf). */
  hugeEps?: number;
  /** Accuracy at hugeEps that counts as ~0 (default 0.05). */
  hugeEpsMaxAccuracy?: number;
  /** Slack for the monotonicity comparisons, in accuracy units (default 0). */
  tolerance?: number;
  batchSize?: number;
  limit?: number;
  seed?: number;
  bnMode?: BnMode;
}

/** One point of the robust-vs-eps curve: accuracy, and (from maskingChecks) the correct count of n with its Wilson 95% interval. */
export interface EpsCurvePoint {
  eps: number;
  accuracy: number;
  correct?: number;
  n?: number;
  lo?: number;
  hi?: number;
}

export interface MaskingReport {
  n: number;
  norm: Norm;
  eps: number;
  cleanAccuracy: number;
  /** PGD accuracy at each eps, ascending (clean accuracy at eps 0); maskingChecks adds the count and its Wilson 95% interval. */
  epsCurve: EpsCurvePoint[];
  monotoneInEps: boolean;
  /** FGSM (L-inf) or FGM (L2) at eps, and PGD at eps. */
  singleStepAccuracy: number;
  pgdAccuracy: number;
  pgdNoWeakerThanSingleStep: boolean;
  hugeEps: number;
  hugeEpsAccuracy: number;
  hugeEpsNearZero: boolean;
  zeroGradExamples: number;
  zeroGradFraction: number;
  /** Every check passed. */
  passed: boolean;
  /** One line per failed check, naming the numbers. */
  warnings: string[];
}

/** Gradient-masking sanity checks (one pass over the data, every attack per batch). */
export async function maskingChecks(device: Device, model: Module, data: ImageSet, opts: MaskingCheckOptions): Promise<MaskingReport> {
  const who = 'maskingChecks';
  const threat = resolveThreat({ norm: opts.norm ?? 'linf', eps: opts.eps, bounds: opts.bounds }, who);
  const { norm, eps } = threat;
  const [lo, hi] = threat.bounds;
  if (!(eps > 0)) throw new Error(`kinkless: ${who}: eps must be > 0, got ${eps}`);
  const steps = opts.steps ?? 20;
  checkCount(who, 'steps', steps, 1);
  const epsList = [...new Set(opts.epsList ?? [eps / 4, eps / 2, eps, 2 * eps])].sort((a, b) => a - b);
  for (const e of epsList) checkEps(who, 'epsList entry', e);
  const hugeEps = opts.hugeEps ?? (norm === 'linf' ? hi - lo : (hi - lo) * Math.sqrt(data.shape.reduce((a, b) => a * b, 1)));
  checkEps(who, 'hugeEps', hugeEps);
  const common = { norm, bounds: threat.bounds, restarts: opts.restarts, seed: opts.seed, bnMode: opts.bnMode };
  const pgdAt = (e: number) => new Pgd({ ...common, eps: e, steps, alpha: (2.5 * e) / steps });
  const curve = epsList.filter((e) => e > 0).map(pgdAt);
  const single = norm === 'linf' ? new Fgsm({ eps, bounds: threat.bounds, seed: opts.seed, bnMode: opts.bnMode }) : new Fgm({ eps, bounds: threat.bounds, seed: opts.seed, bnMode: opts.bnMode });
  const atEps = epsList.includes(eps) ? curve[epsList.filter((e) => e > 0).indexOf(eps)]! : pgdAt(eps);
  const huge = pgdAt(hugeEps);
  const attacks: Attack[] = [...curve, ...(epsList.includes(eps) ? [] : [atEps]), single, huge];
  const r = await evaluateRobust(device, model, data, { attacks, batchSize: opts.batchSize, limit: opts.limit, countZeroGrad: true });
  const acc = (a: Attack) => r.attacks[attacks.indexOf(a)]!.accuracy;
  const point = (eps: number, correct: number): EpsCurvePoint => ({ eps, ...accWithCi(correct, r.n) });
  const epsCurve = [point(0, r.clean.correct), ...curve.map((a, i) => point(epsList.filter((e) => e > 0)[i]!, r.attacks[attacks.indexOf(a)]!.correct))];
  return maskingVerdict(
    { n: r.n, norm, eps, epsCurve, singleStepName: single.name, singleStepAccuracy: acc(single), pgdAccuracy: acc(atEps), hugeEps, hugeEpsAccuracy: acc(huge), zeroGradExamples: r.zeroGradExamples ?? 0 },
    { tolerance: opts.tolerance, hugeEpsMaxAccuracy: opts.hugeEpsMaxAccuracy },
  );
}

/** The measurements maskingVerdict judges. */
export interface MaskingMeasurements {
  n: number;
  norm: Norm;
  eps: number;
  /** Accuracy against eps, eps ascending, the first point at eps 0 (clean). */
  epsCurve: EpsCurvePoint[];
  singleStepName?: string;
  singleStepAccuracy: number;
  pgdAccuracy: number;
  hugeEps: number;
  hugeEpsAccuracy: number;
  zeroGradExamples: number;
}

/** Judge the measurements (pure): which checks pass, with one warning per failure. */
export function maskingVerdict(m: MaskingMeasurements, opts: { tolerance?: number; hugeEpsMaxAccuracy?: number } = {}): MaskingReport {
  const tol = opts.tolerance ?? 0;
  const warnings: string[] = [];
  let monotone = true;
  const c = m.epsCurve;
  for (let i = 1; i < c.length; i++) {
    if (c[i]!.accuracy > c[i - 1]!.accuracy + tol) {
      monotone = false;
      warnings.push(`robust accuracy rises with eps: ${c[i - 1]!.accuracy} at eps ${c[i - 1]!.eps} -> ${c[i]!.accuracy} at eps ${c[i]!.eps}`);
    }
  }
  const pgdOk = m.pgdAccuracy <= m.singleStepAccuracy + tol;
  if (!pgdOk) warnings.push(`PGD (${m.pgdAccuracy}) is weaker than ${m.singleStepName ?? 'the single-step attack'} (${m.singleStepAccuracy}) at eps ${m.eps}`);
  const hugeMax = opts.hugeEpsMaxAccuracy ?? 0.05;
  const hugeOk = m.hugeEpsAccuracy <= hugeMax;
  if (!hugeOk) warnings.push(`accuracy under PGD at huge eps ${m.hugeEps} is ${m.hugeEpsAccuracy} (> ${hugeMax}): gradients may be masked`);
  if (m.zeroGradExamples > 0) warnings.push(`${m.zeroGradExamples} of ${m.n} examples have an all-zero input gradient`);
  return {
    n: m.n,
    norm: m.norm,
    eps: m.eps,
    cleanAccuracy: c[0]?.accuracy ?? NaN,
    epsCurve: c,
    monotoneInEps: monotone,
    singleStepAccuracy: m.singleStepAccuracy,
    pgdAccuracy: m.pgdAccuracy,
    pgdNoWeakerThanSingleStep: pgdOk,
    hugeEps: m.hugeEps,
    hugeEpsAccuracy: m.hugeEpsAccuracy,
    hugeEpsNearZero: hugeOk,
    zeroGradExamples: m.zeroGradExamples,
    zeroGradFraction: m.zeroGradExamples / m.n,
    passed: warnings.length === 0,
    warnings,
  };
}
