// Shared CLI plumbing: datasets, models, activation specs and attacks from flags.
import { existsSync } from 'node:fs';
import { loadCheckpointFile } from '../nn/checkpoint.ts';
import type { Device } from '../engine/index.ts';
import { loadMnist } from '../nn/data/mnist.ts';
import { loadCifar10 } from '../nn/data/cifar.ts';
import type { ImageSet } from '../nn/data/loader.ts';
import { SmallCnn } from '../nn/models/small_cnn.ts';
import { MadryMnist } from '../nn/models/madry_mnist.ts';
import { PreActResNet18, WideResNet } from '../nn/models/resnet.ts';
import type { Model } from '../nn/models/common.ts';
import type { ActivationSpec } from '../nn/activation.ts';
import { ACTIVATION_KINDS, type ActivationKind } from '../engine/index.ts';
import { UsageError, type FlagSpec } from './args.ts';

export const MODELS = ['small_cnn', 'madry_mnist', 'preact_resnet18', 'wrn'] as const;

export const DATA_FLAGS: Record<string, FlagSpec> = {
  dataset: { type: 'string', help: 'dataset', choices: ['mnist', 'cifar10'], default: 'mnist' },
  dataDir: { type: 'string', help: 'directory with the dataset files (MNIST IDX or CIFAR-10 binary); default MNIST: the embedded copy' },
  trainLimit: { type: 'int', help: 'use only the first N training images', min: 1 },
  testLimit: { type: 'int', help: 'evaluate on the first N test images', min: 1 },
};

export const MODEL_FLAGS: Record<string, FlagSpec> = {
  model: { type: 'string', help: 'architecture', choices: [...MODELS], default: 'small_cnn' },
  activation: { type: 'string', help: 'activation kind', choices: ACTIVATION_KINDS, default: 'relu' },
  actParams: { type: 'list', help: 'activation parameters (effective values), e.g. 10 for softplus a=10' },
  actLearnable: { type: 'bool', help: 'learn the activation parameters (default: per kind)' },
  actShared: { type: 'bool', help: 'one activation parameter set for the whole network (PAF) instead of per layer (SAT)', default: false },
  surrogate: { type: 'string', help: 'surrogate derivative "kind[:p1[:p2]]", e.g. softplus:10 (SAT ablation)' },
  seed: { type: 'int', help: 'seed for init, data order and attacks', default: 0 },
};

export function loadData(flags: Record<string, unknown>): { train: ImageSet; test: ImageSet; name: string } {
  const dir = flags.dataDir as string | undefined;
  if (dir !== undefined && !existsSync(dir)) throw new UsageError(`--data-dir: directory "${dir}" does not exist`);
  let train: ImageSet;
  let test: ImageSet;
  if (flags.dataset === 'cifar10') {
    if (!dir) throw new UsageError('--dataset cifar10 needs --data-dir (the directory with data_batch_1.bin ... test_batch.bin)');
    train = loadCifar10(dir, { train: true });
    test = loadCifar10(dir, { train: false });
  } else {
    const m = loadMnist(dir ? { dir } : {});
    train = m.train;
    test = m.test;
  }
  const lim = (s: ImageSet, n: unknown): ImageSet => (typeof n === 'number' && n < s.n ? { ...s, n } : s);
  return { train: lim(train, flags.trainLimit), test: lim(test, flags.testLimit), name: (flags.dataset as string) ?? 'mnist' };
}

export function activationSpec(flags: Record<string, unknown>): ActivationSpec {
  const spec: ActivationSpec = { kind: flags.activation as ActivationKind };
  const ps = flags.actParams as string[] | undefined;
  if (ps) spec.params = ps.map((p) => {
    const v = Number(p);
    if (!Number.isFinite(v)) throw new UsageError(`--act-params: "${p}" is not a number`);
    return v;
  });
  if (flags.actLearnable !== undefined) spec.learnable = flags.actLearnable as boolean;
  if (flags.actShared) spec.shared = true;
  if (flags.surrogate) {
    const [kind, ...rest] = String(flags.surrogate).split(':');
    if (!ACTIVATION_KINDS.includes(kind as ActivationKind)) throw new UsageError(`--surrogate: "${kind}" is not an activation kind (${ACTIVATION_KINDS.join(', ')})`);
    const params = rest.map(Number);
    if (params.some((v) => !Number.isFinite(v))) throw new UsageError(`--surrogate: parameters must be numbers, got "${flags.surrogate}"`);
    spec.backward = { kind: kind as ActivationKind, ...(params.length ? { params } : {}) };
  }
  return spec;
}

export function buildModel(device: Device, flags: Record<string, unknown>, data: ImageSet): Model {
  const cfg = { activation: activationSpec(flags), inChannels: data.shape[0], numClasses: 10, seed: flags.seed as number };
  switch (flags.model) {
    case 'madry_mnist':
      return new MadryMnist(device, cfg);
    case 'preact_resnet18':
      return new PreActResNet18(device, cfg);
    case 'wrn':
      return new WideResNet(device, 16, 4, cfg);
    default:
      if (data.shape[1] !== 28) throw new UsageError(`--model small_cnn needs 28x28 inputs; the dataset has ${data.shape.join('x')}`);
      return new SmallCnn(device, cfg);
  }
}

/** Model flags rebuilt from a checkpoint's metadata "config" (eval, attack, study). */
export function modelFlagsFromCheckpoint(path: string, flags: Record<string, unknown>): Record<string, unknown> {
  if (!existsSync(path)) throw new UsageError(`--checkpoint: file "${path}" does not exist`);
  let cfg: Record<string, unknown>;
  try {
    cfg = JSON.parse(loadCheckpointFile(path).metadata.config ?? '{}') as Record<string, unknown>;
  } catch {
    throw new UsageError(`--checkpoint: "${path}" has no readable model config in its metadata`);
  }
  const act = (cfg.activation ?? 'relu') as string | { kind: string; params?: number[]; learnable?: boolean; shared?: boolean; backward?: { kind: string; params?: number[] } };
  const spec = typeof act === 'string' ? { kind: act } : act;
  const name = String(cfg.name ?? 'small_cnn');
  return {
    ...flags,
    model: name === 'madry_mnist' || name === 'preact_resnet18' ? name : name.startsWith('wrn') ? 'wrn' : 'small_cnn',
    activation: spec.kind,
    actParams: spec.params?.map(String),
    actLearnable: spec.learnable,
    actShared: spec.shared,
    surrogate: spec.backward ? [spec.backward.kind, ...(spec.backward.params ?? [])].join(':') : undefined,
    seed: (cfg.seed as number | undefined) ?? flags.seed,
  };
}
