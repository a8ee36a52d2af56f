// The trainer skeleton shared by every training loop: seeded batching over host data,
// per-step LR schedule, hooks for logging / evaluation / checkpoints, clean evaluation.
// A loop only implements trainBatch(); standard training is the simplest one.
import { Tensor, scope, scopeAsync, noGrad, backward, add, type Device } from '../engine/index.ts';
import { softmaxCrossEntropy, accuracyCount } from '../engine/ops/loss.ts';
import { BatchIterator, augmentBatch, deriveSeed, gatherBatch, type AugmentOptions, type ImageSet } from '../nn/data/loader.ts';
import type { Module } from '../nn/module.ts';
import type { LrSchedule } from '../nn/schedule.ts';

export interface Optim {
  step(lr?: number): void;
  zeroGrad(): void;
}

export interface StepInfo {
  epoch: number;
  step: number;
  stepInEpoch: number;
  stepsPerEpoch: number;
  lr: number;
  /** Loss of this batch (read back only every `logEvery` steps; NaN otherwise). */
  loss: number;
}

export interface EpochStats {
  epoch: number;
  trainLoss: number;
  trainAcc: number;
  seconds: number;
  lr: number;
  /** Filled by hooks (evaluation, robust accuracy, ...). */
  [key: string]: number;
}

export interface TrainHooks {
  /** Called every `logEvery` steps (and at the end of each epoch); return 'stop' to end training. */
  onStep?(info: StepInfo): void | 'stop' | Promise<void | 'stop'>;
  /** Called after each epoch; may add fields to stats (e.g. test accuracy). Return 'stop' to end training. */
  onEpoch?(stats: EpochStats): void | 'stop' | Promise<void | 'stop'>;
}

export interface BatchResult {
  /** Sum of per-example losses of the batch (GPU scalar). */
  lossSum: Tensor;
  /** Number of correct predictions on the examples trained on (GPU scalar). */
  correct: Tensor;
}

export interface TrainContext {
  device: Device;
  model: Module;
  opt: Optim;
  schedule: LrSchedule;
  /** Global step counter (0-based) for schedules. */
  step: number;
  epoch: number;
}

/** A training loop: what to do with one batch. */
export interface TrainLoop {
  readonly name: string;
  /** Train on one batch (x in [0,1], y int32 labels); must call ctx.opt.step(). */
  trainBatch(ctx: TrainContext, x: Tensor, y: Tensor): BatchResult;
  /** Epoch multiplier semantics (Free-AT replays each batch m times). */
  readonly replays?: number;
}

export interface TrainOptions {
  epochs: number;
  batchSize: number;
  seed: number;
  /** Read the loss back every N steps for onStep (default 20). */
  logEvery?: number;
  hooks?: TrainHooks;
  /** Restore the data order position (resume). */
  iteratorState?: ReturnType<BatchIterator['state']>;
  /** Start at this global step / epoch (resume). */
  startStep?: number;
  /**
   * CPU augmentation of each training batch (random crop after zero padding `pad`, and a
   * horizontal flip when `flip`); drawn from the seed and the global step, so a resumed
   * run sees the same crops. Default: none.
   */
  augment?: { pad: number; flip: boolean };
}

/** Upload a batch of host images/labels. */
export function uploadBatch(device: Device, data: ImageSet, idx: Int32Array, augment?: AugmentOptions): { x: Tensor; y: Tensor } {
  const sample = data.shape.reduce((a, b) => a * b, 1);
  const b = gatherBatch(data.images, data.labels, idx, sample);
  const shape = [idx.length, ...data.shape];
  const images = augment && (augment.pad > 0 || augment.flip) ? augmentBatch(b.images, shape as [number, number, number, number], augment) : b.images;
  return { x: Tensor.from(device, images, shape), y: Tensor.from(device, b.labels, [idx.length], 'i32') };
}

function checkOpts(o: TrainOptions): void {
  for (const k of ['epochs', 'batchSize'] as const) {
    if (!Number.isInteger(o[k]) || o[k] < 1) throw new Error(`kinkless: train: ${k} must be a positive integer, got ${String(o[k])}`);
  }
  if (!Number.isInteger(o.seed)) throw new Error(`kinkless: train: seed must be an integer, got ${String(o.seed)}`);
  if (o.augment) {
    const pad = o.augment.pad;
    if (!Number.isInteger(pad) || pad < 0) throw new Error(`kinkless: train: augment.pad must be an integer >= 0, got ${String(pad)}`);
  }
}

/** Run `loop` for opts.epochs epochs over `data`. Returns per-epoch stats. */
export async function train(loop: TrainLoop, ctx: Omit<TrainContext, 'step' | 'epoch'>, data: ImageSet, opts: TrainOptions): Promise<{ epochs: EpochStats[]; iterator: BatchIterator; step: number }> {
  checkOpts(opts);
  if (data.n === 0) throw new Error('kinkless: train: the training set is empty');
  const it = new BatchIterator(data.n, { batchSize: opts.batchSize, seed: opts.seed, shuffle: true, dropLast: false });
  if (opts.iteratorState) it.restore(opts.iteratorState);
  const full: TrainContext = { ...ctx, step: opts.startStep ?? 0, epoch: it.epoch };
  const logEvery = opts.logEvery ?? 20;
  const stats: EpochStats[] = [];
  const device = ctx.device;
  ctx.model.train(true);
  let stopped = false;
  while (it.epoch < opts.epochs && !stopped) {
    const epoch = it.epoch;
    full.epoch = epoch;
    const t0 = performance.now();
    let lossAcc: Tensor | null = null;
    let corrAcc: Tensor | null = null;
    let seen = 0;
    const steps = it.batchesPerEpoch;
    let lr = ctx.schedule.lr(full.step);
    try {
    while (it.epoch === epoch) {
      const batch = it.next();
      lr = ctx.schedule.lr(full.step);
      const r = scope(() => {
        const aug = opts.augment ? { ...opts.augment, seed: deriveSeed(opts.seed, 0x617567, full.step) } : undefined;
        const { x, y } = uploadBatch(device, data, batch.indices, aug);
        (ctx.opt as { lr?: number }).lr = lr;
        const res = loop.trainBatch(full, x, y);
        const l: Tensor = lossAcc ? add(lossAcc, res.lossSum) : res.lossSum;
        const c: Tensor = corrAcc ? add(corrAcc, res.correct) : res.correct;
        return { l, c, last: res.lossSum };
      });
      lossAcc?.dispose();
      corrAcc?.dispose();
      lossAcc = r.l;
      corrAcc = r.c;
      seen += batch.indices.length;
      const stepInEpoch = it.epoch === epoch ? it.position / opts.batchSize : steps;
      if (opts.hooks?.onStep && (full.step % logEvery === 0 || stepInEpoch === steps)) {
        const loss = (await r.last.item()) / batch.indices.length;
        if ((await opts.hooks.onStep({ epoch, step: full.step, stepInEpoch, stepsPerEpoch: steps, lr, loss })) === 'stop') stopped = true;
      }
      if (r.last !== r.l) r.last.dispose();
      full.step++;
      if (stopped) break;
    }
    } catch (e) {
      // NOTE: free the running sums before propagating (a hook or a step failed).
      lossAcc?.dispose();
      corrAcc?.dispose();
      throw e;
    }
    const trainLoss = (await lossAcc!.item()) / seen;
    const trainAcc = (await corrAcc!.item()) / seen;
    lossAcc!.dispose();
    corrAcc!.dispose();
    const s: EpochStats = { epoch, trainLoss, trainAcc, seconds: (performance.now() - t0) / 1000, lr };
    stats.push(s);
    if (opts.hooks?.onEpoch && (await opts.hooks.onEpoch(s)) === 'stop') stopped = true;
  }
  return { epochs: stats, iterator: it, step: full.step };
}

/** Standard (clean) training: cross-entropy on the batch, one optimizer step. */
export class StandardTraining implements TrainLoop {
  readonly name = 'standard';
  constructor(readonly opts: { labelSmoothing?: number } = {}) {}
  trainBatch(ctx: TrainContext, x: Tensor, y: Tensor): BatchResult {
    ctx.opt.zeroGrad();
    const logits = ctx.model.forward(x);
    const lossSum = softmaxCrossEntropy(logits, y, { reduction: 'sum', labelSmoothing: this.opts.labelSmoothing });
    const n = x.shape[0]!;
    backward(lossSum, Tensor.from(ctx.device, [1 / n], []));
    ctx.opt.step();
    const correct = noGrad(() => accuracyCount(logits, y));
    return { lossSum, correct };
  }
}

/** Clean accuracy of `model` (eval mode) on a dataset, in batches; one readback at the end. */
export async function evaluateClean(device: Device, model: Module, data: ImageSet, opts: { batchSize?: number; limit?: number } = {}): Promise<number> {
  const n = Math.min(data.n, opts.limit ?? data.n);
  if (n === 0) throw new Error('kinkless: evaluateClean: no examples to evaluate');
  const bs = opts.batchSize ?? 500;
  const wasTraining = model.training;
  model.eval();
  let acc: Tensor | null = null;
  try {
    for (let s = 0; s < n; s += bs) {
      const idx = Int32Array.from({ length: Math.min(bs, n - s) }, (_, i) => s + i);
      const next = noGrad(() =>
        scope(() => {
          const { x, y } = uploadBatch(device, data, idx);
          const c = accuracyCount(model.forward(x), y);
          return acc ? add(acc, c) : c;
        }),
      );
      acc?.dispose();
      acc = next;
    }
    const correct = await acc!.item();
    return correct / n;
  } finally {
    acc?.dispose();
    model.train(wasTraining);
  }
}

export { scopeAsync };
