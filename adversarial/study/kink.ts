// The gradient-quality study at ReLU's kink (`kinkless study kink`): for one model and a
// batch of test images, how often pre-activations sit near 0 during a PGD attack (per
// activation layer, per step), how well consecutive PGD input gradients agree (cosine), how
// much the input gradient moves under tiny Gaussian input noise, how well the first-order
// prediction g.delta matches the actual loss change, and the attack's accuracy after each
// step. The GPU computes per-example quantities; the host reads back [N] vectors and
// summarises them (mean, median, quantiles, correlation). Comparisons between models and
// the written conclusions live in summarizeKinkStudies(), computed from these numbers.
import { Tensor, abs, add, argmax, clone, diffOverNorm, eq, grad, keep, lt, mul, ne, noGrad, normalizePerExample, scope, sign, sub, sum, zerosLike, type Device } from '../../engine/index.ts';
import { softmaxCrossEntropy } from '../../engine/ops/loss.ts';
import { RngState, randomNormal } from '../../engine/ops/random.ts';
import { Activation } from '../../nn/activation.ts';
import type { Module } from '../../nn/module.ts';
import type { ImageSet } from '../../nn/data/loader.ts';
import { applyDelta, checkCount, checkPositive, exampleAxes, l2NormPerExample, randomStart, resolveThreat, stepDelta, type ResolvedThreat } from '../threat.ts';
import { withAttackMode, type BnMode } from '../attacks/common.ts';

// NOTE: divisions by per-example norms are guarded in the engine ops (an all-zero gradient
// gives 0); zero-gradient examples are detected on the host from the norms and excluded
// from ratios and cosines.

// ---------------------------------------------------------------- statistics (host)

export interface Summary {
  n: number;
  mean: number;
  median: number;
  p10: number;
  p90: number;
}

/** Mean, median and 10/90% quantiles (linear interpolation) of the finite values. */
export function summarize(values: ArrayLike<number>): Summary {
  const v = Array.from(values).filter(Number.isFinite).sort((a, b) => a - b);
  const q = (p: number) => {
    if (!v.length) return NaN;
    const i = p * (v.length - 1);
    const lo = Math.floor(i);
    return v[lo]! + (v[Math.min(lo + 1, v.length - 1)]! - v[lo]!) * (i - lo);
  };
  return { n: v.length, mean: v.length ? v.reduce((a, b) => a + b, 0) / v.length : NaN, median: q(0.5), p10: q(0.1), p90: q(0.9) };
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

async function read(t: Tensor): Promise<Float32Array> {
  const v = await t.f32();
  t.dispose();
  return v;
}

// ---------------------------------------------------------------- per-example GPU helpers

/** Per-example sum over every axis but the batch axis, [N, 1, ..., 1]. */
function perExampleSum(t: Tensor): Tensor {
  return sum(t, exampleAxes(t), true);
}

/** g / ||g||_2 per example (0 where g is all zero). */
function unit(g: Tensor, n: Tensor): Tensor {
  return normalizePerExample(g, n);
}

interface Point {
  /** Per-example cross-entropy [N]. */
  obj: Tensor;
  /** d(sum CE)/dx, shaped like x (null without wantGrad). */
  g: Tensor | null;
  /** 1.0 where argmax(logits) == y, [N]. */
  correct: Tensor;
}

/** CE, input gradient and correctness at x + delta (delta null: at x), one forward. */
function evalPoint(model: Module, x: Tensor, delta: Tensor | null, y: Tensor, wantGrad: boolean): Point {
  return scope(() => {
    const xa = noGrad(() => (delta ? add(x, delta) : clone(x)));
    if (!wantGrad) {
      return noGrad(() => {
        const logits = model.forward(xa);
        return { obj: softmaxCrossEntropy(logits, y, { reduction: 'none' }), g: null, correct: eq(argmax(logits, 1), y) };
      });
    }
    xa.requiresGrad = true;
    const logits = model.forward(xa);
    const ce = softmaxCrossEntropy(logits, y, { reduction: 'none' });
    const total = sum(ce);
    const g = total.requiresGrad ? (grad(total, [xa]) as [Tensor])[0] : zerosLike(x);
    return noGrad(() => ({ obj: clone(ce), g, correct: eq(argmax(logits, 1), y) }));
  });
}

/** Cross-entropy per example [N] and its input gradient at x (model in attack mode). */
export async function inputGradient(model: Module, x: Tensor, y: Tensor, bnMode: BnMode = 'eval'): Promise<{ obj: Float32Array; g: Float32Array }> {
  const p = withAttackMode(model, bnMode, () => evalPoint(model, x, null, y, true));
  p.correct.dispose();
  return { obj: await read(p.obj), g: await read(p.g!) };
}

// ---------------------------------------------------------------- pre-activation recorder

/** Dotted module paths of a model's Activation layers, depth-first (activationLayers order). */
export function activationPaths(model: Module): { layer: Activation; path: string }[] {
  const out: { layer: Activation; path: string }[] = [];
  const walk = (m: Module, path: string) => {
    if (m instanceof Activation) out.push({ layer: m, path: path || '(root)' });
    for (const [name, c] of m.children()) walk(c, path ? `${path}.${name}` : name);
  };
  walk(model, '');
  return out;
}

export interface LayerPreActStats {
  path: string;
  /** Pre-activations seen per forward (all examples). */
  perForward: number;
  /** [tau]: fraction with |z| < tau at the clean point (forwards tagged step < 0). */
  clean: number[];
  /** [step][tau]: fraction with |z| < tau in the forwards tagged with that step (>= 0). */
  fractionByStep: number[][];
  /** [tau]: over every forward tagged step >= 0 (the attack's). */
  fraction: number[];
  /** Fraction exactly 0, over the attack's forwards. */
  exactZero: number;
  /** Histograms of z on [-range, range] from snapshot forwards (fraction of ALL values per bin). */
  histograms: Record<string, number[]>;
}

/**
 * Counts, during the forwards it sees, how many inputs of each Activation layer of `model`
 * lie within |z| < tau (on the GPU: one indicator and one sum per layer and tau), bucketed
 * by `step` (set it before each forward). Forwards whose step `snapshotFor` maps to a key
 * have their pre-activations copied for host-side histograms (under that key). Installs Activation.observe between
 * start() and stop(); only one recorder can be active.
 */
export class PreActRecorder {
  readonly paths: { layer: Activation; path: string }[];
  step = 0;
  /** Which forwards to copy for histograms: a key for the current step, or null (default: none). */
  snapshotFor: (step: number) => string | null = () => null;
  private readonly index = new Map<Activation, number>();
  private counts: { layer: number; step: number; total: number; t: Tensor[] }[] = [];
  private snaps: { layer: number; key: string; t: Tensor }[] = [];
  private hist = new Map<string, Float64Array>();
  private histTotal = new Map<string, number>();
  private byStep = new Map<string, { n: number; hits: number[] }>();
  private sizes = new Map<number, number>();

  constructor(
    model: Module,
    readonly taus: number[],
    readonly histRange = 0.25,
    readonly bins = 50,
  ) {
    for (const t of taus) checkPositive('PreActRecorder', 'tau', t);
    checkPositive('PreActRecorder', 'histRange', histRange);
    checkCount('PreActRecorder', 'bins', bins, 1);
    this.paths = activationPaths(model);
    this.paths.forEach((p, i) => this.index.set(p.layer, i));
  }

  private readonly hook = (layer: Activation, z: Tensor): void => this.observe(layer, z);

  start(): this {
    if (Activation.observe && Activation.observe !== this.hook) throw new Error('kinkless: PreActRecorder: another Activation.observe hook is installed');
    Activation.observe = this.hook;
    return this;
  }

  stop(): void {
    if (Activation.observe === this.hook) Activation.observe = undefined;
  }

  private observe(layer: Activation, z: Tensor): void {
    const li = this.index.get(layer);
    if (li === undefined) return; // a layer of another model
    noGrad(() => {
      const az = abs(z);
      const t = [...this.taus.map((tau) => lt(az, tau)), eq(z, 0)];
      az.dispose();
      const sums = t.map((m) => {
        const s = keep(sum(m));
        m.dispose();
        return s;
      });
      this.counts.push({ layer: li, step: this.step, total: z.size, t: sums });
      this.sizes.set(li, z.size);
      const key = this.snapshotFor(this.step);
      if (key !== null) this.snaps.push({ layer: li, key, t: keep(clone(z)) });
    });
  }

  /** Read back and fold the pending counts and snapshots (call between batches to bound memory). */
  async flush(): Promise<void> {
    for (const c of this.counts) {
      const vals: number[] = [];
      for (const t of c.t) vals.push((await read(t))[0]!);
      const k = `${c.layer}:${c.step}`;
      const e = this.byStep.get(k) ?? { n: 0, hits: new Array<number>(vals.length).fill(0) };
      e.n += c.total;
      vals.forEach((v, i) => (e.hits[i]! += v));
      this.byStep.set(k, e);
    }
    this.counts = [];
    for (const s of this.snaps) {
      const v = await read(s.t);
      const k = `${s.layer}:${s.key}`;
      const h = this.hist.get(k) ?? new Float64Array(this.bins);
      const w = (2 * this.histRange) / this.bins;
      for (let i = 0; i < v.length; i++) {
        const b = Math.floor((v[i]! + this.histRange) / w);
        if (b >= 0 && b < this.bins) h[b]!++;
        else if (v[i] === this.histRange) h[this.bins - 1]!++;
      }
      this.hist.set(k, h);
      this.histTotal.set(k, (this.histTotal.get(k) ?? 0) + v.length);
    }
    this.snaps = [];
  }

  /**
   * Per-layer statistics (flushes first). Forwards tagged step < 0 (the clean point) give
   * `clean`; the others give `fractionByStep` and the overall `fraction` / `exactZero`.
   */
  async result(): Promise<LayerPreActStats[]> {
    await this.flush();
    const T = this.taus.length;
    return this.paths.map((p, li) => {
      const steps = [...this.byStep.keys()].filter((k) => k.startsWith(`${li}:`)).map((k) => Number(k.split(':')[1])).sort((a, b) => a - b);
      const fractionByStep: number[][] = [];
      let clean: number[] = this.taus.map(() => NaN);
      let n = 0;
      const hits = new Array<number>(T + 1).fill(0);
      for (const s of steps) {
        const e = this.byStep.get(`${li}:${s}`)!;
        const f = e.hits.slice(0, T).map((h) => h / e.n);
        if (s < 0) {
          clean = f;
          continue;
        }
        fractionByStep[s] = f;
        n += e.n;
        e.hits.forEach((h, i) => (hits[i]! += h));
      }
      const histograms: Record<string, number[]> = {};
      for (const [k, h] of this.hist) {
        const i = k.indexOf(':');
        if (Number(k.slice(0, i)) === li) histograms[k.slice(i + 1)] = Array.from(h, (c) => c / this.histTotal.get(k)!);
      }
      return { path: p.path, perForward: this.sizes.get(li) ?? 0, clean, fractionByStep, fraction: hits.slice(0, T).map((h) => (n ? h / n : NaN)), exactZero: n ? hits[T]! / n : NaN, histograms };
    });
  }

  /** Dispose anything not yet read back and uninstall the hook. */
  dispose(): void {
    this.stop();
    for (const c of this.counts) for (const t of c.t) t.dispose();
    for (const s of this.snaps) s.t.dispose();
    this.counts = [];
    this.snaps = [];
  }
}

// ---------------------------------------------------------------- instrumented PGD

export interface TrajectoryOptions {
  eps: number;
  /** L-inf step per coordinate (default eps / 4). */
  alpha?: number;
  steps: number;
  /** Start from U(-eps, eps) (default true), drawn exactly as Pgd does with the same seed. */
  randomStart?: boolean;
  seed?: number;
  bnMode?: BnMode;
  bounds?: [number, number];
}

export interface Trajectory {
  n: number;
  steps: number;
  /** [k][N] for iterates k = 0..steps (k = 0: the start point). */
  obj: Float32Array[];
  correct: Float32Array[];
  gradNorm: Float32Array[];
  /** [k-1][N]: cos(g_k, g_{k-1}) for k = 1..steps (NaN where either gradient is zero). */
  cosine: Float32Array[];
  /** [k][N]: g_k . (delta_{k+1} - delta_k), the first-order prediction of obj_{k+1} - obj_k. */
  predicted: Float32Array[];
  /** Clean point (delta = 0): CE, correctness and gradient norm [N]. */
  clean: { obj: Float32Array; correct: Float32Array; gradNorm: Float32Array };
}

/**
 * L-inf PGD on the CE loss with every iterate instrumented: the iterates are exactly those of
 * attacks/pgd.ts (same random start for the same seed, same step and projection kernels), so
 * the accuracy at iterate k is PGD-k's accuracy. One forward+backward per iterate (the final
 * iterate's gradient is computed too, for the last cosine). The recorder (optional) sees
 * every forward, tagged step -1 for the clean point and k for iterate k. Returns the
 * measurements and the final adversarial batch (caller disposes).
 */
export async function pgdTrajectory(model: Module, x: Tensor, y: Tensor, opts: TrajectoryOptions, recorder?: PreActRecorder): Promise<{ traj: Trajectory; xAdv: Tensor }> {
  const who = 'pgdTrajectory';
  const threat: ResolvedThreat = resolveThreat({ norm: 'linf', eps: opts.eps, bounds: opts.bounds }, who);
  const alpha = opts.alpha ?? opts.eps / 4;
  checkPositive(who, 'alpha', alpha);
  checkCount(who, 'steps', opts.steps, 0);
  const rng = new RngState(opts.seed ?? 0);
  const N = x.shape[0]!;
  const pending: { obj: Tensor[]; correct: Tensor[]; gn: Tensor[]; cos: Tensor[]; pred: Tensor[] } = { obj: [], correct: [], gn: [], cos: [], pred: [] };
  let clean: { obj: Tensor; correct: Tensor; gn: Tensor } | null = null;
  const xAdv = withAttackMode(model, opts.bnMode ?? 'eval', () => {
    if (recorder) recorder.step = -1;
    clean = scope(() => {
      const p = evalPoint(model, x, null, y, true);
      return { obj: p.obj, correct: p.correct, gn: l2NormPerExample(p.g!) };
    });
    let delta = (opts.randomStart ?? true) ? randomStart(x.device, x, threat, (n) => rng.next(n)) : zerosLike(x);
    let prevUnit: Tensor | null = null;
    for (let k = 0; k <= opts.steps; k++) {
      if (recorder) recorder.step = k;
      const r = scope(() => {
        const p = evalPoint(model, x, delta, y, true);
        const gn = l2NormPerExample(p.g!);
        const u = unit(p.g!, gn);
        const cos = prevUnit ? perExampleSum(mul(u, prevUnit)) : null;
        let next: Tensor | null = null;
        let pred: Tensor | null = null;
        if (k < opts.steps) {
          next = stepDelta(x, delta, sign(p.g!), alpha, threat);
          pred = perExampleSum(mul(p.g!, sub(next, delta)));
        }
        return { obj: p.obj, correct: p.correct, gn, u, cos, next, pred };
      });
      pending.obj.push(r.obj);
      pending.correct.push(r.correct);
      pending.gn.push(r.gn);
      if (r.cos) pending.cos.push(r.cos);
      if (r.pred) pending.pred.push(r.pred);
      prevUnit?.dispose();
      prevUnit = r.u;
      if (r.next) {
        delta.dispose();
        delta = r.next;
      }
    }
    prevUnit?.dispose();
    const xa = applyDelta(x, delta, threat);
    delta.dispose();
    return xa;
  });
  const readAll = async (ts: Tensor[]) => {
    const out: Float32Array[] = [];
    for (const t of ts) out.push(await read(t));
    return out;
  };
  const c = clean as unknown as { obj: Tensor; correct: Tensor; gn: Tensor };
  const gn = await readAll(pending.gn);
  const cosRaw = await readAll(pending.cos);
  // NaN where either gradient is zero (the unit vector is 0 there, so the dot is 0, not a cosine).
  const cosine = cosRaw.map((v, i) => v.map((c0, j) => (gn[i]![j]! > 0 && gn[i + 1]![j]! > 0 ? c0 : NaN)));
  const traj: Trajectory = {
    n: N,
    steps: opts.steps,
    obj: await readAll(pending.obj),
    correct: await readAll(pending.correct),
    gradNorm: gn,
    cosine,
    predicted: await readAll(pending.pred),
    clean: { obj: await read(c.obj), correct: await read(c.correct), gradNorm: await read(c.gn) },
  };
  return { traj, xAdv };
}

// ---------------------------------------------------------------- stability and fidelity

export interface StabilityPerExample {
  /** ||g(x + xi) - g(x)||_2 / ||g(x)||_2 (NaN where g(x) = 0). */
  ratio: Float32Array;
  /** Fraction of coordinates where sign(g(x + xi)) != sign(g(x)) (what an L-inf step uses). */
  signFlip: Float32Array;
  /** ||g(x)||_2. */
  gradNorm: Float32Array;
}

/**
 * Gradient stability under a given input perturbation xi (same shape as x; not clipped to
 * the box: this probes the function, not the threat model).
 */
export async function gradientStability(model: Module, x: Tensor, y: Tensor, xi: Tensor, bnMode: BnMode = 'eval'): Promise<StabilityPerExample> {
  if (xi.shape.length !== x.shape.length || xi.shape.some((d, i) => d !== x.shape[i])) throw new Error(`kinkless: gradientStability: xi must have x's shape [${x.shape.join(', ')}], got [${xi.shape.join(', ')}]`);
  const D = x.size / x.shape[0]!;
  const r = withAttackMode(model, bnMode, () =>
    scope(() => {
      const a = evalPoint(model, x, null, y, true);
      const b = evalPoint(model, x, xi, y, true);
      const gn = l2NormPerExample(a.g!);
      const diff = diffOverNorm(b.g!, a.g!, gn);
      const ratio = l2NormPerExample(diff);
      const flips = mul(perExampleSum(ne(sign(a.g!), sign(b.g!))), 1 / D);
      return { ratio, flips, gn };
    }),
  );
  const gradNorm = await read(r.gn);
  const ratio = (await read(r.ratio)).map((v, i) => (gradNorm[i]! > 0 ? v : NaN));
  return { ratio, signFlip: await read(r.flips), gradNorm };
}

/** Gaussian noise N(0, sigma^2) shaped like x from the key `seed`, stream `stream`. */
export function gaussianNoise(device: Device, shape: readonly number[], sigma: number, seed: number, stream: number): Tensor {
  checkPositive('gaussianNoise', 'sigma', sigma);
  const rng = new RngState(seed);
  const size = shape.reduce((a, b) => a * b, 1);
  rng.counter = stream * Math.ceil(size / 4) * 4;
  return randomNormal(device, [...shape], { ...rng.next(size), std: sigma });
}

export interface FidelityPerExample {
  /** L(x + delta) - L(x). */
  actual: Float32Array;
  /** g(x) . delta. */
  predicted: Float32Array;
}

/** First-order fidelity of the loss for an explicit step delta (not clipped). */
export async function firstOrderFidelity(model: Module, x: Tensor, y: Tensor, delta: Tensor, bnMode: BnMode = 'eval'): Promise<FidelityPerExample> {
  const r = withAttackMode(model, bnMode, () =>
    scope(() => {
      const a = evalPoint(model, x, null, y, true);
      const b = evalPoint(model, x, delta, y, false);
      return { actual: sub(b.obj, a.obj), predicted: perExampleSum(mul(a.g!, delta)) };
    }),
  );
  return { actual: await read(r.actual), predicted: await read(r.predicted) };
}

/** The L-inf steepest-ascent step h * sign(g(x)) at x (a fresh tensor). */
export function signStep(model: Module, x: Tensor, y: Tensor, h: number, bnMode: BnMode = 'eval'): Tensor {
  return withAttackMode(model, bnMode, () =>
    scope(() => {
      const p = evalPoint(model, x, null, y, true);
      return mul(sign(p.g!), h);
    }),
  );
}

// ---------------------------------------------------------------- the whole study

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
  /** Iterates at which attack success is reported (clipped to steps). */
  successSteps?: number[];
  histRange?: number;
  bins?: number;
  /** Fidelity: examples whose |predicted change| is below this are excluded (float32 noise of CE differences). */
  minPredicted?: number;
  onProgress?: (msg: string) => void;
}

export const KINK_DEFAULTS = { limit: 200, batchSize: 200, eps: 0.1, steps: 20, randomStart: true, seed: 0, bnMode: 'eval' as BnMode, taus: [1e-3, 1e-2, 1e-1], sigmas: [1e-4, 1e-3, 1e-2], fidelitySteps: [1e-3, 5e-3, 2.5e-2], successSteps: [1, 2, 5, 10, 20], histRange: 0.25, bins: 50, minPredicted: 1e-4 };

export interface FidelitySummary {
  /** actual / predicted per example. */
  ratio: Summary;
  /** |actual - predicted| / |predicted| per example. */
  relError: Summary;
  /** Pearson correlation of actual and predicted across examples. */
  correlation: number;
  excluded: number;
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
  zeroGradClean: number;
  layers: LayerPreActStats[];
  /** Cosine of consecutive PGD input gradients: per transition k-1 -> k, and pooled. */
  cosine: { byStep: { step: number; mean: number; median: number }[]; pooled: Summary; perExampleMean: Summary };
  stability: { sigma: number; at: 'clean' | 'adv'; ratio: Summary; signFlip: Summary; zeroGrad: number }[];
  fidelity: ({ step: number } & FidelitySummary)[];
  /** Along the PGD path: obj_{k+1} - obj_k against g_k . (delta_{k+1} - delta_k), pooled. */
  trajectoryFidelity: FidelitySummary;
  /** Iterates k = 0..steps: accuracy and success rate (among clean-correct examples). */
  success: { step: number; accuracy: number; successRate: number }[];
  successAt: { step: number; accuracy: number; successRate: number }[];
  seconds: number;
}

function fidelitySummary(actual: number[], predicted: number[], minPredicted: number): FidelitySummary {
  const a: number[] = [];
  const p: number[] = [];
  let excluded = 0;
  actual.forEach((v, i) => {
    if (Math.abs(predicted[i]!) >= minPredicted && Number.isFinite(v)) (a.push(v), p.push(predicted[i]!));
    else excluded++;
  });
  return { ratio: summarize(a.map((v, i) => v / p[i]!)), relError: summarize(a.map((v, i) => Math.abs(v - p[i]!) / Math.abs(p[i]!))), correlation: pearson(a, p), excluded };
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
  const success = acc.correct.map((c, k) => ({ step: k, accuracy: c.reduce((a, v) => a + v, 0) / n, successRate: nOk ? c.filter((v, j) => cleanOk[j] === 1 && v === 0).length / nOk : NaN }));
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
    zeroGradClean: acc.zeroClean,
    layers,
    cosine: { byStep: acc.cos.map((c, k) => ({ step: k + 1, ...(({ mean, median }) => ({ mean, median }))(summarize(c)) })), pooled: summarize(acc.cos.flat()), perExampleMean: summarize(acc.cosEx) },
    stability: [...acc.stab.entries()].map(([k, m]) => ({ sigma: Number(k.split(':')[0]), at: k.split(':')[1] as 'clean' | 'adv', ratio: summarize(m.ratio), signFlip: summarize(m.flip), zeroGrad: m.zero })),
    fidelity: o.fidelitySteps.map((h, i) => ({ step: h, ...fidelitySummary(acc.fidA[i]!, acc.fidP[i]!, o.minPredicted) })),
    trajectoryFidelity: fidelitySummary(acc.trajA, acc.trajP, o.minPredicted),
    success,
    successAt: o.successSteps.filter((k) => k <= o.steps).map((k) => success[k]!),
    seconds: (performance.now() - t0) / 1000,
  };
}

// ---------------------------------------------------------------- comparison (written summary)

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
