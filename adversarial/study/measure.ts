// The kink study's GPU measurements: the loss, input gradient and correctness at a point,
// L-inf PGD with every iterate instrumented (attacks/pgd.ts's pgdLoop), gradient stability
// under input noise, and the first-order fidelity of the loss. The GPU computes
// per-example quantities; these functions read back [N] vectors.
import { Tensor, add, argmax, clone, diffOverNorm, eq, grad, keep, mul, ne, noGrad, normalizePerExample, scope, sign, sub, sum, zerosLike, type Device } from '../../engine/index.ts';
import { softmaxCrossEntropy } from '../../engine/ops/loss.ts';
import { RngState, randomNormal } from '../../engine/ops/random.ts';
import type { Module } from '../../nn/module.ts';
import { applyDelta, checkCount, checkPositive, exampleAxes, l2NormPerExample, randomStart, resolveThreat, type ResolvedThreat } from '../threat.ts';
import { withAttackMode, type BnMode } from '../attacks/common.ts';
import { pgdLoop } from '../attacks/pgd.ts';
import type { PreActRecorder } from './recorder.ts';

// NOTE: divisions by per-example norms are guarded in the engine ops (an all-zero gradient
// gives 0); zero-gradient examples are detected on the host from the norms and excluded
// from ratios and cosines.

async function read(t: Tensor): Promise<Float32Array> {
  const v = await t.f32();
  t.dispose();
  return v;
}

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
 * attacks/pgd.ts (the same pgdLoop, the same random start for the same seed), so
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
    let prevUnit: Tensor | null = null;
    const delta = pgdLoop({
      x,
      threat,
      alpha,
      steps: opts.steps,
      start: (opts.randomStart ?? true) ? randomStart(x.device, x, threat, (n) => rng.next(n)) : zerosLike(x),
      evaluate: (d, k) => {
        if (recorder) recorder.step = k;
        return evalPoint(model, x, d, y, true);
      },
      // The final iterate's gradient too, for the last cosine.
      final: 'grad',
      observe: (_k, d, p, next) => {
        const gn = l2NormPerExample(p.g!);
        const u = unit(p.g!, gn);
        if (prevUnit) pending.cos.push(keep(perExampleSum(mul(u, prevUnit))));
        if (next) pending.pred.push(keep(perExampleSum(mul(p.g!, sub(next, d)))));
        pending.obj.push(keep(p.obj));
        pending.correct.push(keep(p.correct));
        pending.gn.push(keep(gn));
        prevUnit?.dispose();
        prevUnit = keep(u);
      },
    });
    (prevUnit as Tensor | null)?.dispose();
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
