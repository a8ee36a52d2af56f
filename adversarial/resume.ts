// Save and resume the whole training state: parameters and buffers, optimizer slots and
// step count, the global step (schedule position), the data order position (BatchIterator
// state) and every RngState cursor the loop owns (attack random starts, FreeLB/YOPO inits),
// in one atomically written safetensors file readable by nn/model_checkpoint.loadModel.
// Resuming with the same seed continues with bit-identical losses on the same adapter.
// Also: checkpoint hooks for train(), hook merging, and trainWithCheckpoints, which turns
// any failure (device loss, NaN guard, out of memory) into an error naming the last
// checkpoint written.
import { RngState, type RngStateJSON } from '../engine/ops/random.ts';
import type { Tensor } from '../engine/index.ts';
import { saveCheckpointFile, type NamedArray, type SaveOptions } from '../nn/checkpoint.ts';
import { checkpointMetadata, loadModel, type OptimizerLike } from '../nn/model_checkpoint.ts';
import type { BatchIteratorState, ImageSet } from '../nn/data/loader.ts';
import type { Module } from '../nn/module.ts';
import { Dropout } from '../nn/layers.ts';
import { train, type EpochStats, type StepInfo, type TrainContext, type TrainHooks, type TrainLoop, type TrainOptions } from './trainer.ts';
import { nanGuard, NonFiniteError } from './guard_nan.ts';

export const TRAINING_FORMAT = 'kinkless-training-1';

/** The JSON stored under the checkpoint's "training" metadata. */
export interface TrainingSnapshot {
  format: string;
  /** Global steps completed: train()'s startStep on resume. */
  step: number;
  /** Data order position: train()'s iteratorState on resume. */
  iterator: BatchIteratorState;
  /** The loop's RngState cursors by property path (e.g. "attack.rng"). */
  rng: Record<string, RngStateJSON>;
  /** Optimizer steps taken (Adam's bias correction). */
  optimizerSteps: number;
  /** Loop name, checked on resume. */
  loop: string;
  /** Catastrophic-overfitting detector state (FastAt with co), when present. */
  co?: unknown;
  /** Dropout layers' mask counters by module path (their masks are drawn at offset calls * size). */
  dropout?: Record<string, number>;
}

/** An optimizer as saved here: nn/optim's SGD, Adam, AdamW. */
export type ResumableOptimizer = OptimizerLike & { stateTensors(): Record<string, Tensor> };

/**
 * Every RngState reachable from the loop through its own fields, up to two levels deep
 * (loop.rng, loop.attack.rng, loop.checkPgd.rng, ...), keyed by the dotted path.
 */
export function findRngStates(loop: object): Map<string, RngState> {
  const out = new Map<string, RngState>();
  const seen = new Set<unknown>();
  const walk = (o: unknown, path: string, depth: number): void => {
    if (o === null || typeof o !== 'object' || seen.has(o)) return;
    seen.add(o);
    if (o instanceof RngState) {
      out.set(path, o);
      return;
    }
    if (depth > 2 || (o as { __isTensor?: boolean }).__isTensor || Array.isArray(o) || ArrayBuffer.isView(o)) return;
    for (const k of Object.keys(o).sort()) walk((o as Record<string, unknown>)[k], path ? `${path}.${k}` : k, depth + 1);
  };
  walk(loop, '', 0);
  return out;
}

/**
 * The iterator state train() has after `stepsDone` batches of `epoch` (train() always
 * shuffles and keeps the last partial batch). stepsDone = batches per epoch: next epoch.
 */
export function iteratorStateAt(data: { n: number }, opts: { batchSize: number; seed: number }, epoch: number, stepsDone: number): BatchIteratorState {
  const perEpoch = Math.ceil(data.n / opts.batchSize);
  if (!Number.isInteger(stepsDone) || stepsDone < 0 || stepsDone > perEpoch) throw new Error(`kinkless: iteratorStateAt: stepsDone must be an integer in [0, ${perEpoch}], got ${String(stepsDone)}`);
  const done = stepsDone === perEpoch;
  return { seed: opts.seed, epoch: done ? epoch + 1 : epoch, position: done ? 0 : stepsDone * opts.batchSize, n: data.n, batchSize: opts.batchSize, shuffle: true, dropLast: false };
}

/** Every Dropout layer of the model by module path (the mask counter is the layer's only state). */
function dropoutLayers(model: Module, prefix = '', out = new Map<string, { calls: number }>()): Map<string, { calls: number }> {
  if (model instanceof Dropout) out.set(prefix || '(root)', model as unknown as { calls: number });
  for (const [n, c] of model.children()) dropoutLayers(c, prefix ? `${prefix}.${n}` : n, out);
  return out;
}

function slotsOf(stateNames: string[]): number {
  let k = 0;
  for (const n of stateNames) k = Math.max(k, Number(n.split('.')[1]) + 1);
  return k;
}

// NOTE: the same layout as nn/model_checkpoint.saveModel (optimizer tensors under this
// prefix, checkpointMetadata(), optimizer_slots / optimizer_steps / training metadata),
// written here directly so that SaveOptions (the _failAfterBytes test hook) reach
// saveCheckpointFile.
const OPT_PREFIX = '__optim__.';

export interface SaveTrainingParts {
  model: Module;
  opt: ResumableOptimizer;
  loop: TrainLoop;
  /** Global steps completed. */
  step: number;
  iterator: BatchIteratorState;
  /** Model config for the checkpoint's metadata. */
  config?: unknown;
  extra?: Record<string, string>;
}

/** Write model + optimizer + training state atomically (the previous file survives a failed write). */
export async function saveTrainingCheckpoint(path: string, parts: SaveTrainingParts, opts: SaveOptions = {}): Promise<TrainingSnapshot> {
  const { model, opt, loop } = parts;
  if (!Number.isInteger(parts.step) || parts.step < 0) throw new Error(`kinkless: saveTrainingCheckpoint: step must be an integer >= 0, got ${String(parts.step)}`);
  const tensors: Record<string, NamedArray> = await model.stateDict();
  const optState = opt.stateTensors();
  for (const [k, t] of Object.entries(optState)) tensors[OPT_PREFIX + k] = { dtype: 'F32', shape: [...t.shape], data: (await t.data()) as Float32Array };
  const rng: Record<string, RngStateJSON> = {};
  for (const [k, r] of findRngStates(loop)) rng[k] = r.toJSON();
  const snap: TrainingSnapshot = { format: TRAINING_FORMAT, step: parts.step, iterator: { ...parts.iterator }, rng, optimizerSteps: opt.stepCount, loop: loop.name };
  const drop = dropoutLayers(model);
  if (drop.size) snap.dropout = Object.fromEntries([...drop].map(([k, l]) => [k, l.calls]));
  const co = (loop as { coState?: unknown }).coState;
  if (co) snap.co = JSON.parse(JSON.stringify(co));
  // The model metadata (format, config, architecture, step = optimizer steps) as saveModel writes it.
  const metadata = await checkpointMetadata(model, { config: parts.config ?? (model as { config?: unknown }).config, step: opt.stepCount, extra: parts.extra });
  metadata.training = JSON.stringify(snap);
  const slots = slotsOf(Object.keys(optState));
  if (slots > 0) {
    metadata.optimizer_slots = String(slots);
    metadata.optimizer_steps = String(opt.stepCount);
  }
  saveCheckpointFile(path, tensors, metadata, opts);
  return snap;
}

export interface ResumeResult {
  /** Pass as train()'s startStep. */
  startStep: number;
  /** Pass as train()'s iteratorState. */
  iteratorState: BatchIteratorState;
  snapshot: TrainingSnapshot;
  metadata: Record<string, string>;
}

/**
 * Load a checkpoint written by saveTrainingCheckpoint into fresh model / optimizer / loop
 * objects built with the original configuration, and return train()'s resume options.
 */
export function resumeTraining(path: string, parts: { model: Module; opt: ResumableOptimizer; loop: TrainLoop }): ResumeResult {
  const { metadata, training } = loadModel(path, parts.model, parts.opt);
  const snap = training as TrainingSnapshot | null;
  if (!snap || snap.format !== TRAINING_FORMAT) {
    throw new Error(`kinkless: resumeTraining: ${path} holds no training state (format ${JSON.stringify(snap?.format ?? null)}, expected "${TRAINING_FORMAT}"); it was not written by saveTrainingCheckpoint`);
  }
  if (snap.loop !== parts.loop.name) throw new Error(`kinkless: resumeTraining: ${path} was written by loop "${snap.loop}", resuming with "${parts.loop.name}"`);
  parts.opt.stepCount = snap.optimizerSteps;
  const rngs = findRngStates(parts.loop);
  const savedKeys = Object.keys(snap.rng).sort();
  const haveKeys = [...rngs.keys()].sort();
  if (savedKeys.join(',') !== haveKeys.join(',')) {
    throw new Error(`kinkless: resumeTraining: ${path} has RNG cursors [${savedKeys.join(', ')}], the loop has [${haveKeys.join(', ')}]`);
  }
  for (const [k, r] of rngs) {
    const s = snap.rng[k]!;
    if (s.seed !== r.seed) throw new Error(`kinkless: resumeTraining: RNG "${k}" was saved with seed ${s.seed}, the loop uses seed ${r.seed}`);
    r.counter = RngState.fromJSON(s).counter;
  }
  for (const [k, l] of dropoutLayers(parts.model)) {
    const c = snap.dropout?.[k];
    if (c === undefined) throw new Error(`kinkless: resumeTraining: ${path} has no mask counter for Dropout layer "${k}"`);
    l.calls = c;
  }
  const det = (parts.loop as { detector?: { state: object } | null }).detector;
  if (det && snap.co) Object.assign(det.state, snap.co);
  return { startStep: snap.step, iteratorState: snap.iterator, snapshot: snap, metadata };
}

/** Run several hook sets in order; 'stop' from any of them stops training. */
export function mergeHooks(...all: (TrainHooks | undefined)[]): TrainHooks {
  const hs = all.filter((h): h is TrainHooks => !!h);
  return {
    onStep: async (info: StepInfo) => {
      let stop = false;
      for (const h of hs) if (h.onStep && (await h.onStep(info)) === 'stop') stop = true;
      return stop ? 'stop' : undefined;
    },
    onEpoch: async (stats: EpochStats) => {
      let stop = false;
      for (const h of hs) if (h.onEpoch && (await h.onEpoch(stats)) === 'stop') stop = true;
      return stop ? 'stop' : undefined;
    },
  };
}

export interface CheckpointSchedule {
  path: string;
  /** Save after every N epochs (default 1; 0: never at epoch ends). */
  everyEpochs?: number;
  /** Also save every N global steps (checked on logged steps only; default 0: off). */
  everySteps?: number;
  config?: unknown;
}

export interface CheckpointHooks extends TrainHooks {
  /** Path of the last checkpoint written (null before the first). */
  lastPath(): string | null;
  /** Global step of the last checkpoint written (-1 before the first). */
  readonly lastStep: number;
}

/** Hooks that save a training checkpoint on schedule (train()'s shuffle/batch settings). */
export function checkpointHooks(sched: CheckpointSchedule, parts: { model: Module; opt: ResumableOptimizer; loop: TrainLoop }, data: { n: number }, opts: { batchSize: number; seed: number }): CheckpointHooks {
  if (!sched || typeof sched.path !== 'string' || !sched.path) throw new Error(`kinkless: checkpointHooks: path must be a non-empty string, got ${String(sched?.path)}`);
  const everyEpochs = sched.everyEpochs ?? 1;
  const everySteps = sched.everySteps ?? 0;
  for (const [k, v] of [['everyEpochs', everyEpochs], ['everySteps', everySteps]] as const) {
    if (!Number.isInteger(v) || v < 0) throw new Error(`kinkless: checkpointHooks: ${k} must be an integer >= 0, got ${String(v)}`);
  }
  const st = { last: null as string | null, lastStep: -1, seenStep: -1 };
  const save = async (step: number, iterator: BatchIteratorState): Promise<void> => {
    if (step === st.lastStep) return;
    await saveTrainingCheckpoint(sched.path, { ...parts, step, iterator, config: sched.config });
    st.last = sched.path;
    st.lastStep = step;
  };
  return {
    onStep: async (info) => {
      st.seenStep = info.step;
      if (everySteps > 0 && (info.step + 1) % everySteps === 0) await save(info.step + 1, iteratorStateAt(data, opts, info.epoch, info.stepInEpoch));
    },
    onEpoch: async (stats) => {
      if (everyEpochs > 0 && (stats.epoch + 1) % everyEpochs === 0 && st.seenStep >= 0) {
        await save(st.seenStep + 1, iteratorStateAt(data, opts, stats.epoch + 1, 0));
      }
    },
    lastPath: () => st.last,
    get lastStep() {
      return st.lastStep;
    },
  };
}

/** A training failure with the last checkpoint named; `cause` is the original error. */
export class TrainingError extends Error {
  constructor(
    message: string,
    readonly checkpoint: string | null,
    readonly checkpointStep: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'TrainingError';
  }
}

export interface TrainWithCheckpointsOptions extends TrainOptions {
  checkpoint?: CheckpointSchedule;
  /** NaN/Inf guard every N steps (false: off; default: off). */
  nanGuardEvery?: number | false;
}

/**
 * train() with scheduled checkpoints, an optional NaN/Inf guard, and errors that name the
 * last checkpoint written. Resume with resumeTraining() and the same options.
 */
export async function trainWithCheckpoints(
  loop: TrainLoop,
  ctx: Omit<TrainContext, 'step' | 'epoch'> & { opt: ResumableOptimizer },
  data: ImageSet,
  opts: TrainWithCheckpointsOptions,
): ReturnType<typeof train> {
  const ck = opts.checkpoint ? checkpointHooks(opts.checkpoint, { model: ctx.model, opt: ctx.opt, loop }, data, opts) : null;
  const guard = opts.nanGuardEvery ? nanGuard({ model: ctx.model, every: opts.nanGuardEvery, checkpoint: () => ck?.lastPath() ?? null }) : undefined;
  let lastStep = opts.startStep ?? 0;
  const track: TrainHooks = { onStep: (i) => void (lastStep = i.step) };
  // The guard first: a non-finite state is never saved as a good checkpoint.
  const hooks = mergeHooks(track, guard, ck ?? undefined, opts.hooks);
  try {
    return await train(loop, ctx, data, { ...opts, hooks });
  } catch (e) {
    if (e instanceof NonFiniteError) throw e;
    const err = e as Error;
    const where = ck?.lastPath() ? `last checkpoint: ${ck.lastPath()} (step ${ck.lastStep}); resume it with resumeTraining()` : 'no checkpoint was written';
    throw new TrainingError(`kinkless: training failed after step ${lastStep}: ${err.message}; ${where}`, ck?.lastPath() ?? null, ck?.lastStep ?? -1, { cause: e });
  }
}
