// One training run from a plain options object: model, loop (standard or adversarial),
// optimizer and schedule, per-epoch evaluation, checkpoints, Ctrl-C handling. Used by
// `kinkless train` and by `kinkless reproduce sat` (one call per activation).
import { type Device } from '../engine/index.ts';
import { train, evaluateClean, StandardTraining, type TrainLoop, type EpochStats, type TrainHooks } from '../adversarial/trainer.ts';
import { PgdAt, FastAt, FreeAt, Yopo, FreeLb, chainHooks, activationParamGroups, RobustOverfitGuard, type GuardRecord } from '../adversarial/train/index.ts';
import { Pgd } from '../adversarial/attacks/index.ts';
import { Adam, SGD } from '../nn/optim.ts';
import { makeSchedule, type LrSchedule } from '../nn/schedule.ts';
import { subsetImages, trainValSplit, type ImageSet } from '../nn/data/loader.ts';
import type { Model } from '../nn/models/common.ts';
import { saveModel } from '../nn/model_checkpoint.ts';
import { UsageError, type FlagSpec } from './args.ts';
import type { RunDir } from './rundir.ts';

export const LOOPS = ['standard', 'pgd', 'fast', 'free', 'yopo', 'freelb'] as const;
export type LoopKind = (typeof LOOPS)[number];

export const TRAIN_FLAGS: Record<string, FlagSpec> = {
  loop: { type: 'string', help: 'training loop', choices: [...LOOPS], default: 'standard' },
  epochs: { type: 'int', help: 'epochs (Free-AT: divided by --replays)', default: 1, min: 1 },
  batchSize: { type: 'int', help: 'batch size', default: 128, min: 1 },
  optimizer: { type: 'string', help: 'optimizer', choices: ['adam', 'sgd'], default: 'adam' },
  lr: { type: 'number', help: 'peak learning rate', default: 1e-3, min: 0 },
  schedule: { type: 'string', help: 'LR schedule', choices: ['constant', 'cosine', 'one_cycle'], default: 'constant' },
  momentum: { type: 'number', help: 'SGD momentum', default: 0.9, min: 0 },
  weightDecay: { type: 'number', help: 'weight decay', default: 0, min: 0 },
  eps: { type: 'number', help: 'L-inf radius of the training attack', default: 0.1, min: 0 },
  alpha: { type: 'number', help: 'attack step (default: 1.25 eps for fast, eps/4 for pgd)', min: 0 },
  steps: { type: 'int', help: 'PGD steps (pgd loop) or K (freelb)', default: 7, min: 1 },
  replays: { type: 'int', help: 'Free-AT replays m / YOPO m', default: 4, min: 1 },
  bnMode: { type: 'string', help: 'batch-norm mode during the attack', choices: ['eval', 'train'], default: 'eval' },
  attackerSmooth: { type: 'bool', help: 'SAT ablation: surrogate derivative in the attacker backward', default: true },
  optimizerSmooth: { type: 'bool', help: 'SAT ablation: surrogate derivative in the optimizer backward', default: true },
  coRestore: { type: 'bool', help: 'fast-AT: after a catastrophic-overfitting alarm, restore the parameters of the best PGD check (Wong et al.)', default: true },
  coCheckEvery: { type: 'int', help: 'fast-AT: catastrophic-overfitting check every N steps (0: off)', default: 50, min: 0 },
  augmentCrop: { type: 'int', help: 'augmentation: random crop after zero padding of N pixels per side (0: off)', default: 0, min: 0 },
  augmentFlip: { type: 'bool', help: 'augmentation: random horizontal flip (not for digits)', default: false },
  epsWarmup: { type: 'int', help: 'pgd loop: ramp eps (and alpha) linearly from 0 over the first N steps (0: off)', default: 0, min: 0 },
  stopAfter: { type: 'int', help: 'stop after N epochs while keeping the LR schedule planned for --epochs (one slice of a longer run)', min: 1 },
  evalEvery: { type: 'int', help: 'evaluate clean test accuracy every N epochs (0: only at the end)', default: 1, min: 0 },
  robustVal: { type: 'int', help: 'robust-overfitting guard: after each epoch, clean and PGD-10 (--eps, step eps/4, random start) accuracy on N held-out images; the best epoch is saved as <model>_best.safetensors (0: off)', default: 0, min: 0 },
  robustValFrom: { type: 'string', help: 'where --robust-val takes its images: train (a seeded random N, removed from training) or test (the LAST N test images, disjoint from a first-M evaluation while M + N <= 10000)', choices: ['train', 'test'], default: 'train' },
};

export interface TrainRunResult {
  epochs: EpochStats[];
  testAcc: number;
  seconds: number;
  steps: number;
  interrupted: boolean;
  coDetected: boolean | null;
  coDetail: unknown;
  /** Fast-AT after a catastrophic-overfitting alarm: the step whose parameters were restored (else null). */
  restoredStep: number | null;
  /** --robust-val: the guard's per-epoch records and the best one (else null). */
  robustVal: { from: string; n: number; history: GuardRecord[]; best: GuardRecord | null } | null;
}

/**
 * --robust-val N: the held-out split of the robust-overfitting guard and the training set
 * without it. From 'train': a seeded random N (trainValSplit); from 'test': the last N
 * test images (a first-M evaluation stays disjoint while M + N <= the test set's size).
 */
export function robustValSplit(data: { train: ImageSet; test: ImageSet }, n: number, from: string, seed: number): { train: ImageSet; val: ImageSet } {
  if (from === 'test') {
    if (n > data.test.n) throw new UsageError(`--robust-val: ${n} images asked from the test set, which has ${data.test.n}`);
    const idx = Array.from({ length: n }, (_, i) => data.test.n - n + i);
    return { train: data.train, val: subsetImages(data.test, idx) };
  }
  if (n >= data.train.n) throw new UsageError(`--robust-val: ${n} held-out images would leave no training images (the training set has ${data.train.n})`);
  const s = trainValSplit(data.train.n, n, seed);
  return { train: subsetImages(data.train, s.train), val: subsetImages(data.train, s.val) };
}

/** Ctrl-C: the first SIGINT asks the run to stop at the next step (the last checkpoint is kept). */
export class Interrupt {
  requested = false;
  private readonly handler = () => {
    if (this.requested) process.exit(130);
    this.requested = true;
    process.stderr.write('\nkinkless: interrupt received; stopping after this step (Ctrl-C again to quit at once)\n');
  };
  install(): this {
    process.on('SIGINT', this.handler);
    return this;
  }
  remove(): void {
    process.off('SIGINT', this.handler);
  }
}

export class InterruptedError extends Error {
  constructor() {
    super('kinkless: interrupted');
    this.name = 'InterruptedError';
  }
}

export function makeLoop(kind: LoopKind, f: Record<string, unknown>): TrainLoop {
  const eps = f.eps as number;
  const seed = f.seed as number;
  const sw = { attackerSmooth: f.attackerSmooth as boolean, optimizerSmooth: f.optimizerSmooth as boolean };
  switch (kind) {
    case 'standard':
      return new StandardTraining();
    case 'pgd':
      return new PgdAt({ eps, alpha: (f.alpha as number | undefined) ?? eps / 4, steps: f.steps as number, bnMode: f.bnMode as 'eval' | 'train', seed, epsWarmupSteps: (f.epsWarmup as number | undefined) ?? 0, ...sw });
    case 'fast':
      return new FastAt({
        eps,
        alpha: (f.alpha as number | undefined) ?? 1.25 * eps,
        bnMode: f.bnMode as 'eval' | 'train',
        seed,
        ...sw,
        ...((f.coCheckEvery as number) > 0 ? { co: { every: f.coCheckEvery as number, probeSize: 128, pgdSteps: 10 } } : {}),
      });
    case 'free':
      if (sw.attackerSmooth !== sw.optimizerSmooth) throw new UsageError('--loop free shares one backward for attack and update: --attacker-smooth and --optimizer-smooth must agree');
      return new FreeAt({ eps, replays: f.replays as number, ...sw });
    case 'yopo':
      return new Yopo({ eps, m: f.replays as number, n: 3, sigma: (f.alpha as number | undefined) ?? eps / 4, seed, ...sw });
    case 'freelb':
      return new FreeLb({ K: f.steps as number, alpha: (f.alpha as number | undefined) ?? eps / 4, eps, norm: 'linf', seed, ...sw });
    default:
      throw new UsageError(`unknown loop "${String(kind)}"`);
  }
}

function makeScheduleFromFlags(f: Record<string, unknown>, totalSteps: number): LrSchedule {
  const lr = f.lr as number;
  switch (f.schedule) {
    case 'cosine':
      return makeSchedule({ kind: 'cosine', lr, total: totalSteps });
    case 'one_cycle':
      return makeSchedule({ kind: 'one_cycle', max: lr, peakAt: Math.max(1, Math.floor(totalSteps * 0.4)), total: totalSteps });
    default:
      return makeSchedule({ kind: 'constant', lr });
  }
}

/** Train `model` on `data` with the options in `f`; evaluates clean test accuracy per epoch. */
export async function trainRun(
  device: Device,
  model: Model,
  data: { train: ImageSet; test: ImageSet },
  f: Record<string, unknown>,
  opts: { run?: RunDir; label?: string; hooks?: TrainHooks; interrupt?: Interrupt; evalLimit?: number } = {},
): Promise<TrainRunResult> {
  const kind = f.loop as LoopKind;
  const loop = makeLoop(kind, f);
  const valN = (f.robustVal as number | undefined) ?? 0;
  let guard: RobustOverfitGuard | null = null;
  if (valN > 0) {
    const split = robustValSplit(data, valN, (f.robustValFrom as string | undefined) ?? 'train', f.seed as number);
    data = { train: split.train, test: data.test };
    const eps = f.eps as number;
    guard = new RobustOverfitGuard(device, model, split.val, { attack: new Pgd({ eps, alpha: eps / 4, steps: 10, randomStart: true, bnMode: f.bnMode as 'eval' | 'train', seed: f.seed as number }) });
  }
  const replays = kind === 'free' ? (f.replays as number) : 1;
  const epochs = Math.max(1, Math.round((f.epochs as number) / replays));
  const bs = f.batchSize as number;
  const totalSteps = epochs * Math.ceil(data.train.n / bs);
  const schedule = makeScheduleFromFlags(f, totalSteps);
  const groups = activationParamGroups(model, {});
  const opt = f.optimizer === 'sgd' ? new SGD(groups, { lr: f.lr as number, momentum: f.momentum as number, weightDecay: f.weightDecay as number }) : new Adam(groups, { lr: f.lr as number, weightDecay: f.weightDecay as number });
  const t0 = performance.now();
  const label = opts.label ?? model.config.name;
  const interrupt = opts.interrupt;
  let interrupted = false;
  const loopHooks = (loop as { hooks?: () => TrainHooks }).hooks?.call(loop);
  const evalEvery = f.evalEvery as number;
  const stopAfter = f.stopAfter as number | undefined;
  // NOTE: kept here too so that an interrupted run still reports its completed epochs.
  const completed: EpochStats[] = [];
  let stepsDone = 0;
  const baseHooks: TrainHooks = {
    onStep: (i) => {
      stepsDone = i.step + 1;
      if (interrupt?.requested) throw new InterruptedError();
    },
    onEpoch: async (s) => {
      completed.push(s);
      const lastEpoch = s.epoch + 1 === epochs || (stopAfter !== undefined && s.epoch + 1 === stopAfter);
      if (evalEvery > 0 && ((s.epoch + 1) % evalEvery === 0 || lastEpoch)) {
        s.testAcc = await evaluateClean(device, model, data.test, { limit: opts.evalLimit });
      }
      if (guard) await guard.onEpoch(s);
      opts.run?.metric({ run: label, epoch: s.epoch + 1, train_loss: s.trainLoss, train_acc: s.trainAcc, test_acc: s.testAcc ?? NaN, lr: s.lr, seconds: s.seconds, ...(guard ? { val_clean: s.valClean!, val_robust: s.valRobust! } : {}) });
      if (opts.run) await saveModel(opts.run.path(`${label}.safetensors`), model, { config: model.config, step: opt.stepCount, epoch: s.epoch + 1 });
      if (opts.run && guard && s.bestEpoch === s.epoch) await saveModel(opts.run.path(`${label}_best.safetensors`), model, { config: model.config, step: opt.stepCount, epoch: s.epoch + 1 });
      if (stopAfter !== undefined && s.epoch + 1 >= stopAfter && s.epoch + 1 < epochs) {
        return 'stop';
      }
    },
  };
  const hooks = chainHooks(baseHooks, loopHooks, opts.hooks);
  let r: Awaited<ReturnType<typeof train>> | null = null;
  try {
    r = await train(loop, { device, model, opt, schedule }, data.train, { epochs, batchSize: bs, seed: f.seed as number, hooks, logEvery: 10, augment: { pad: (f.augmentCrop as number | undefined) ?? 0, flip: (f.augmentFlip as boolean | undefined) ?? false } });
  } catch (e) {
    if (!(e instanceof InterruptedError)) throw e;
    interrupted = true;
  } finally {
    opt.dispose();
  }
  const co = (loop as { detector?: { state: { coDetected: boolean } } | null }).detector ?? null;
  const epochStats = r?.epochs ?? completed;
  const last = epochStats[epochStats.length - 1];
  // Interrupted: the saved checkpoint is the last completed epoch's, so is the accuracy.
  let testAcc = interrupted ? last?.testAcc ?? NaN : last?.testAcc ?? (await evaluateClean(device, model, data.test, { limit: opts.evalLimit }));
  // Wong et al.'s early stop: after a catastrophic-overfitting alarm, keep the parameters of
  // the best PGD check (before the collapse), not the collapsed ones.
  let restoredStep: number | null = null;
  if (!interrupted && co?.state.coDetected && loop instanceof FastAt && f.coRestore !== false && loop.restoreBest()) {
    restoredStep = loop.bestStep;
    testAcc = await evaluateClean(device, model, data.test, { limit: opts.evalLimit });
    if (opts.run) await saveModel(opts.run.path(`${label}.safetensors`), model, { config: model.config, step: restoredStep ?? 0 });
    process.stderr.write(`kinkless: catastrophic overfitting detected; restored the parameters of step ${restoredStep} (test acc ${(100 * testAcc).toFixed(2)}%)\n`);
  }
  return {
    epochs: epochStats,
    testAcc,
    restoredStep,
    seconds: (performance.now() - t0) / 1000,
    steps: r?.step ?? stepsDone,
    interrupted,
    coDetected: co ? co.state.coDetected : null,
    coDetail: co ? co.state : null,
    robustVal: guard ? { from: (f.robustValFrom as string | undefined) ?? 'train', n: valN, history: guard.history, best: guard.best } : null,
  };
}
