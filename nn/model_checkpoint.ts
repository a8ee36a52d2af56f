// Model checkpoints: a model's parameters and buffers (plus optional optimizer state and
// training state) in one safetensors file, with metadata (model config, activation, step).
import type { Module } from './module.ts';
import { saveCheckpointFile, loadCheckpointFile, type NamedArray } from './checkpoint.ts';

export interface OptimizerLike {
  stateTensors(): Record<string, { data(): Promise<Float32Array | Int32Array>; shape: readonly number[] }>;
  loadStateArrays(arrays: Record<string, Float32Array>, slotsPerParam: number, stepCount: number): void;
  stepCount: number;
}

export interface TrainingState {
  /** Global step, epoch, data-iterator state, RNG counters, ... (JSON). */
  [key: string]: unknown;
}

export interface CheckpointContents {
  metadata: Record<string, string>;
  training: TrainingState | null;
}

const OPT_PREFIX = '__optim__.';

/** Save model (and optionally optimizer + training state) atomically to `path`. */
export async function saveModel(
  path: string,
  model: Module,
  meta: { config?: unknown; step?: number; extra?: Record<string, string> } = {},
  optim?: { opt: OptimizerLike; slotsPerParam: number },
  training?: TrainingState,
): Promise<void> {
  const tensors: Record<string, NamedArray> = await model.stateDict();
  if (optim) {
    for (const [k, t] of Object.entries(optim.opt.stateTensors())) {
      tensors[OPT_PREFIX + k] = { dtype: 'F32', shape: [...t.shape], data: (await t.data()) as Float32Array };
    }
  }
  const metadata: Record<string, string> = {
    format: 'kinkless-checkpoint-1',
    config: JSON.stringify(meta.config ?? {}),
    step: String(meta.step ?? 0),
    ...(meta.extra ?? {}),
  };
  if (optim) {
    metadata.optimizer_slots = String(optim.slotsPerParam);
    metadata.optimizer_steps = String(optim.opt.stepCount);
  }
  if (training) metadata.training = JSON.stringify(training);
  saveCheckpointFile(path, tensors, metadata);
}

/** Load a checkpoint into an existing model (and optimizer). Errors name the tensor on mismatch. */
export function loadModel(path: string, model: Module, opt?: OptimizerLike): CheckpointContents {
  const { tensors, metadata } = loadCheckpointFile(path);
  const modelPart: Record<string, NamedArray> = {};
  const optPart: Record<string, Float32Array> = {};
  for (const [k, v] of Object.entries(tensors)) {
    if (k.startsWith(OPT_PREFIX)) optPart[k.slice(OPT_PREFIX.length)] = v.data as Float32Array;
    else modelPart[k] = v;
  }
  model.loadStateDict(modelPart, path);
  if (opt && metadata.optimizer_slots) {
    opt.loadStateArrays(optPart, Number(metadata.optimizer_slots), Number(metadata.optimizer_steps ?? 0));
  }
  let training: TrainingState | null = null;
  if (metadata.training) {
    try {
      training = JSON.parse(metadata.training) as TrainingState;
    } catch {
      throw new Error(`kinkless: checkpoint ${path}: the "training" metadata is not valid JSON`);
    }
  }
  return { metadata, training };
}
