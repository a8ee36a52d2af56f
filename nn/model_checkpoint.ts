// Model checkpoints: a model's parameters and buffers (plus optional optimizer state and
// training state) in one safetensors file whose metadata describes the model completely
// (format 2): the architecture as a module tree (every layer's widths, kernel, stride,
// padding, ...), every activation's kind, effective parameters, learnable / shared flags and
// constraint, and `step` = optimizer steps taken. modelFromCheckpoint() rebuilds the model
// from the file alone; format-1 files (no architecture) still load into a model built with
// their config, and rebuild through it for the built-in models. The format is in
// docs/library.md ("Checkpoints").
import type { Device, Tensor } from '../engine/index.ts';
import { Module } from './module.ts';
import { Activation, type ActivationSpec } from './activation.ts';
import { AvgPool2d, BatchNorm2d, Conv2d, Dropout, Flatten, GlobalAvgPool2d, Linear, MaxPool2d, Normalize, Sequential } from './layers.ts';
import { SmallCnn } from './models/small_cnn.ts';
import { MadryMnist } from './models/madry_mnist.ts';
import { PreActResNet18, WideResNet } from './models/resnet.ts';
import type { Model, ModelConfig } from './models/common.ts';
import { saveCheckpointFile, loadCheckpointFile, type NamedArray, type SaveOptions } from './checkpoint.ts';
import { activationDef, activationParamConstraint, type ActivationKind } from '../engine/index.ts';

export const CHECKPOINT_FORMAT = 'kinkless-checkpoint-2';
const FORMAT_RE = /^kinkless-checkpoint-(\d+)$/;

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

export type ParamConstraint = 'abs' | 'square' | 'none';

/**
 * How a learnable activation's raw parameters map to its effective ones: the constraint of
 * its table entry (kernels/activations.ts; every parameter of a kind shares one rule).
 * Kinds without parameters record 'none'.
 */
export function activationConstraint(kind: ActivationKind): ParamConstraint {
  return activationDef(kind).params.length ? activationParamConstraint(kind, 0) : 'none';
}

export function applyConstraint(c: ParamConstraint, raw: ArrayLike<number>): number[] {
  return Array.from(raw, (v) => (c === 'square' ? v * v : c === 'abs' ? Math.abs(v) : v));
}

/** One activation layer as written to the metadata: everything needed to evaluate it. */
export interface ActivationMeta {
  kind: ActivationKind;
  /** Effective parameter values (after the constraint), in the activation table's order. */
  params: number[];
  learnable: boolean;
  shared: boolean;
  /** Raw -> effective map of the learnable parameters ('none' when not learnable). */
  constraint: ParamConstraint;
  /** The tensor holding the raw parameters (learnable only), e.g. "act_params" or "net.1.params". */
  tensor?: string;
  /** Surrogate derivative (forward of `kind`, derivative of this). */
  backward?: { kind: ActivationKind; params?: number[] };
}

/** A module in the architecture tree; `name` is its state-dict path segment. */
export interface LayerSpec {
  name: string;
  type: string;
  children?: LayerSpec[];
  [hyper: string]: unknown;
}

export interface Architecture {
  /** The model's config.name (small_cnn, madry_mnist, preact_resnet18, wrn_d_k) or class name. */
  model: string;
  root: LayerSpec;
  /** Every Activation layer, depth-first, with its module path. */
  activations: (ActivationMeta & { path: string })[];
}

/** The architecture of `model` with every activation's current effective parameters. */
export async function describeModel(model: Module): Promise<Architecture> {
  const names = new Map<Tensor, string>(model.namedParameters().map(([n, t]) => [t, n]));
  const activations: Architecture['activations'] = [];
  const walk = async (m: Module, name: string, path: string): Promise<LayerSpec> => {
    if (m instanceof Activation) {
      const meta = await activationMeta(m, names);
      activations.push({ path, ...meta });
      return { name, type: 'Activation', ...meta };
    }
    const leaf = await leafSpec(m);
    if (leaf) return { name, ...leaf } as LayerSpec;
    const children: LayerSpec[] = [];
    for (const [n, c] of m.children()) children.push(await walk(c, n, path ? `${path}.${n}` : n));
    return { name, type: m.constructor.name, children };
  };
  const root = await walk(model, '', '');
  const cfg = (model as { config?: { name?: string } }).config;
  return { model: cfg?.name ?? model.constructor.name, root, activations };
}

async function activationMeta(a: Activation, names: Map<Tensor, string>): Promise<ActivationMeta> {
  const s = a.spec;
  const constraint = s.learnable ? activationConstraint(s.kind) : 'none';
  const params = a.params ? applyConstraint(constraint, await a.params.f32()) : [...s.params];
  const meta: ActivationMeta = { kind: s.kind, params, learnable: s.learnable, shared: s.shared, constraint };
  if (a.params) meta.tensor = names.get(a.params) ?? '(unregistered)';
  if (s.backward) meta.backward = { kind: s.backward.kind, ...(s.backward.params ? { params: [...s.backward.params] } : {}) };
  return meta;
}

async function leafSpec(m: Module): Promise<{ type: string; [hyper: string]: unknown } | null> {
  if (m instanceof Conv2d) {
    const o = m.opts;
    return { type: 'Conv2d', in: m.inChannels, out: m.outChannels, kernel: m.kernel, stride: o.stride ?? 1, padding: o.padding ?? 0, dilation: o.dilation ?? 1, groups: o.groups ?? 1, bias: m.bias !== null };
  }
  if (m instanceof Linear) return { type: 'Linear', in: m.inFeatures, out: m.outFeatures, bias: m.bias !== null };
  if (m instanceof BatchNorm2d) return { type: 'BatchNorm2d', channels: m.channels, momentum: m.opts.momentum ?? 0.1, eps: m.opts.eps ?? 1e-5, affine: m.weight !== null };
  if (m instanceof MaxPool2d || m instanceof AvgPool2d) return { type: m instanceof MaxPool2d ? 'MaxPool2d' : 'AvgPool2d', kernel: m.kernel, stride: m.stride, padding: m.padding };
  if (m instanceof GlobalAvgPool2d) return { type: 'GlobalAvgPool2d' };
  if (m instanceof Flatten) return { type: 'Flatten', startDim: 1 };
  if (m instanceof Dropout) return { type: 'Dropout', p: m.p, seed: m.seed };
  if (m instanceof Normalize) return { type: 'Normalize', mean: Array.from(await m.mean.f32()), std: Array.from(await m.std.f32()) };
  return null; // Sequential and composite modules: described by their children
}

/** The metadata every model checkpoint carries (format 2); `extra` entries are added as-is. */
export async function checkpointMetadata(model: Module, meta: { config?: unknown; step?: number; epoch?: number; extra?: Record<string, string> } = {}): Promise<Record<string, string>> {
  const step = meta.step ?? 0;
  if (!Number.isInteger(step) || step < 0) throw new Error(`kinkless: checkpoint metadata: step (optimizer steps) must be an integer >= 0, got ${String(meta.step)}`);
  const out: Record<string, string> = {
    format: CHECKPOINT_FORMAT,
    config: JSON.stringify(meta.config ?? (model as { config?: unknown }).config ?? {}),
    architecture: JSON.stringify(await describeModel(model)),
    step: String(step),
  };
  if (meta.epoch !== undefined) out.epoch = String(meta.epoch);
  return { ...out, ...(meta.extra ?? {}) };
}

const OPT_PREFIX = '__optim__.';

/**
 * Save model (and optionally optimizer + training state) atomically to `path`. `step` is the
 * number of optimizer steps taken (default: the optimizer's stepCount, else 0).
 */
export async function saveModel(
  path: string,
  model: Module,
  meta: { config?: unknown; step?: number; epoch?: number; extra?: Record<string, string> } = {},
  optim?: { opt: OptimizerLike; slotsPerParam: number },
  training?: TrainingState,
  opts: SaveOptions = {},
): Promise<void> {
  const tensors: Record<string, NamedArray> = await model.stateDict();
  if (optim) {
    for (const [k, t] of Object.entries(optim.opt.stateTensors())) {
      tensors[OPT_PREFIX + k] = { dtype: 'F32', shape: [...t.shape], data: (await t.data()) as Float32Array };
    }
  }
  const metadata = await checkpointMetadata(model, { ...meta, step: meta.step ?? optim?.opt.stepCount ?? 0 });
  if (optim) {
    metadata.optimizer_slots = String(optim.slotsPerParam);
    metadata.optimizer_steps = String(optim.opt.stepCount);
  }
  if (training) metadata.training = JSON.stringify(training);
  saveCheckpointFile(path, tensors, metadata, opts);
}

/** The format version of a checkpoint's metadata; clear errors for files kinkless cannot read. */
export function checkpointVersion(metadata: Record<string, string>, source: string): number {
  const m = FORMAT_RE.exec(metadata.format ?? '');
  if (!m) throw new Error(`kinkless: checkpoint ${source}: metadata "format" is ${JSON.stringify(metadata.format ?? null)}; expected "${CHECKPOINT_FORMAT}" (not a kinkless model checkpoint?)`);
  const v = Number(m[1]);
  if (v > 2) throw new Error(`kinkless: checkpoint ${source} has format ${v}, newer than this kinkless reads (2); upgrade kinkless`);
  return v;
}

/** Load a checkpoint into an existing model (and optimizer). Errors name the tensor on mismatch. */
export function loadModel(path: string, model: Module, opt?: OptimizerLike): CheckpointContents {
  const { tensors, metadata } = loadCheckpointFile(path);
  checkpointVersion(metadata, path);
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

export interface CheckpointInfo {
  version: number;
  config: (ModelConfig & { name?: string; depth?: number; widen?: number }) | null;
  /** null for format-1 files (no architecture recorded). */
  architecture: Architecture | null;
  /** Optimizer steps; null for format-1 files, whose "step" was not always optimizer steps. */
  step: number | null;
  epoch: number | null;
  metadata: Record<string, string>;
}

function parseJson<T>(metadata: Record<string, string>, key: string, source: string): T | null {
  if (metadata[key] === undefined) return null;
  try {
    return JSON.parse(metadata[key]!) as T;
  } catch {
    throw new Error(`kinkless: checkpoint ${source}: the "${key}" metadata is not valid JSON`);
  }
}

/** What a checkpoint's metadata says about its model (no tensors are checked). */
export function checkpointInfo(metadata: Record<string, string>, source: string): CheckpointInfo {
  const version = checkpointVersion(metadata, source);
  const architecture = version >= 2 ? parseJson<Architecture>(metadata, 'architecture', source) : null;
  if (version >= 2 && !architecture?.root) throw new Error(`kinkless: checkpoint ${source}: format ${version} but no "architecture" metadata`);
  const num = (k: string) => (metadata[k] !== undefined && Number.isFinite(Number(metadata[k])) ? Number(metadata[k]) : null);
  return { version, config: parseJson(metadata, 'config', source), architecture, step: version >= 2 ? num('step') : null, epoch: num('epoch'), metadata };
}

/** Built-in models by config name: the constructor the architecture came from. */
function builtIn(device: Device, config: CheckpointInfo['config']): Model | null {
  const c = { ...(config ?? {}) };
  const name = c.name ?? '';
  const wrn = /^wrn_(\d+)_(\d+)$/.exec(name);
  if (name === 'small_cnn') return new SmallCnn(device, c);
  if (name === 'madry_mnist') return new MadryMnist(device, c);
  if (name === 'preact_resnet18') return new PreActResNet18(device, c);
  if (wrn) return new WideResNet(device, Number(wrn[1]), Number(wrn[2]), c);
  return null;
}

/** A model rebuilt from an architecture tree of the generic layers (Sequential chains). */
export class ArchitectureModel extends Module {
  /** `childName`: the root's child in the recorded tree (state-dict prefix), usually "net". */
  constructor(readonly root: Module, childName = 'net') {
    super();
    this.registerModule(childName, root);
  }
  forward(x: Tensor): Tensor {
    return this.root.forward(x);
  }
}

function specOf(a: ActivationMeta): ActivationSpec {
  return { kind: a.kind, params: a.params, learnable: a.learnable, shared: a.shared, ...(a.backward ? { backward: a.backward } : {}) };
}

function buildLayer(device: Device, s: LayerSpec, source: string): Module {
  const n = (k: string) => s[k] as number;
  switch (s.type) {
    case 'Sequential':
      return new Sequential(...(s.children ?? []).map((c) => buildLayer(device, c, source)));
    case 'Conv2d':
      return new Conv2d(device, n('in'), n('out'), n('kernel'), { stride: n('stride'), padding: n('padding'), dilation: n('dilation'), groups: n('groups'), bias: s.bias as boolean });
    case 'Linear':
      return new Linear(device, n('in'), n('out'), { bias: s.bias as boolean });
    case 'BatchNorm2d':
      return new BatchNorm2d(device, n('channels'), { momentum: n('momentum'), eps: n('eps'), affine: s.affine as boolean });
    case 'MaxPool2d':
      return new MaxPool2d(n('kernel'), n('stride'), n('padding'));
    case 'AvgPool2d':
      return new AvgPool2d(n('kernel'), n('stride'), n('padding'));
    case 'GlobalAvgPool2d':
      return new GlobalAvgPool2d();
    case 'Flatten':
      return new Flatten();
    case 'Dropout':
      return new Dropout(n('p'), n('seed'));
    case 'Normalize':
      return new Normalize(device, s.mean as number[], s.std as number[]);
    case 'Activation': {
      const a = s as unknown as ActivationMeta;
      if (a.learnable && a.shared) throw new Error(`kinkless: checkpoint ${source}: shared learnable activations need the model class that owns them ("${a.tensor}"); not rebuildable from layers alone`);
      return new Activation(device, specOf(a));
    }
    default:
      throw new Error(`kinkless: checkpoint ${source}: cannot rebuild layer type "${s.type}" from the architecture alone (known: Sequential, Conv2d, Linear, BatchNorm2d, MaxPool2d, AvgPool2d, GlobalAvgPool2d, Flatten, Dropout, Normalize, Activation)`);
  }
}

/** The architecture without values that live in tensors (learnable activation parameters). */
function structure(root: LayerSpec): unknown {
  return JSON.parse(JSON.stringify(root, (k, v) => (k === 'params' || k === 'tensor' ? undefined : v)));
}

/**
 * Rebuild a model from a checkpoint file alone and load its tensors. Built-in models come
 * from their class (checked against the recorded architecture); other models must be a
 * chain of the generic layers under one child. Format-1 files rebuild through their config
 * (built-in models only).
 */
export async function modelFromCheckpoint(device: Device, path: string): Promise<{ model: Module; info: CheckpointInfo }> {
  const { metadata } = loadCheckpointFile(path);
  const info = checkpointInfo(metadata, path);
  let model: Module | null = builtIn(device, info.config);
  if (info.architecture) {
    const arch = info.architecture;
    if (model) {
      const got = await describeModel(model);
      if (JSON.stringify(structure(got.root)) !== JSON.stringify(structure(arch.root))) {
        model.dispose();
        throw new Error(`kinkless: checkpoint ${path}: its architecture differs from what ${arch.model} builds now (written by another kinkless version?)`);
      }
    } else {
      const kids = arch.root.children ?? [];
      if (kids.length !== 1) throw new Error(`kinkless: checkpoint ${path}: model "${arch.model}" is not built in and its root has ${kids.length} children; only a single chain of generic layers rebuilds from the architecture alone`);
      model = new ArchitectureModel(buildLayer(device, kids[0]!, path), kids[0]!.name);
    }
  } else if (!model) {
    throw new Error(`kinkless: checkpoint ${path} is format ${info.version} (older kinkless): it records no architecture, and its config names no built-in model (${JSON.stringify(info.config?.name ?? null)}); build the model with its original code and use loadModel()`);
  }
  try {
    loadModel(path, model);
  } catch (e) {
    model.dispose();
    throw e;
  }
  return { model, info };
}
