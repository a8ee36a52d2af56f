// Self-describing checkpoints (format 2): the metadata records the architecture and every
// activation's effective parameters (checked against the raw tensors in the file, with the
// constraint applied here), `step` counts optimizer steps, the file alone rebuilds the
// model (same logits), and old / foreign / newer files give clear errors or migrate.
import { describe, it, expect } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testDevice } from '../helpers/device.ts';
import * as E from '../../engine/index.ts';
import { SmallCnn } from '../../nn/models/small_cnn.ts';
import { MadryMnist } from '../../nn/models/madry_mnist.ts';
import { Adam } from '../../nn/optim.ts';
import { Module } from '../../nn/module.ts';
import { Activation } from '../../nn/activation.ts';
import { Linear, Sequential, Flatten } from '../../nn/layers.ts';
import { loadCheckpointFile, saveCheckpointFile } from '../../nn/checkpoint.ts';
import { saveModel, loadModel, modelFromCheckpoint, checkpointInfo, type Architecture, type LayerSpec } from '../../nn/model_checkpoint.ts';

const dir = mkdtempSync(join(tmpdir(), 'kinkless-mckpt-'));

function images(n: number, seed: number): Float32Array {
  return Float32Array.from({ length: n * 784 }, (_, i) => 0.5 + 0.5 * Math.sin(i * 0.37 + seed));
}

async function trainedStep(d: E.Device, model: Module, steps = 1): Promise<Adam> {
  const opt = new Adam(model.parameters(), { lr: 0.05 });
  const x = E.Tensor.from(d, images(4, 1), [4, 1, 28, 28]);
  const y = E.Tensor.from(d, new Int32Array([1, 2, 3, 4]), [4], 'i32');
  for (let s = 0; s < steps; s++) {
    opt.zeroGrad();
    E.backward(E.softmaxCrossEntropy(model.forward(x), y));
    opt.step();
  }
  return opt;
}

function find(root: LayerSpec, path: string): LayerSpec {
  let n = root;
  for (const seg of path.split('.')) n = n.children!.find((c) => c.name === seg)!;
  return n;
}

describe('self-describing checkpoints', () => {
  it('records the architecture, effective shared PSSiLU parameters (|raw|) and optimizer steps; the file alone rebuilds it', async () => {
    const d = await testDevice();
    const a = new SmallCnn(d, { activation: { kind: 'pssilu', shared: true }, seed: 3 });
    const opt = await trainedStep(d, a, 3);
    const path = join(dir, 'pssilu.safetensors');
    await saveModel(path, a, { config: a.config, epoch: 1 }, { opt, slotsPerParam: 2 });
    const { tensors, metadata } = loadCheckpointFile(path);
    const info = checkpointInfo(metadata, path);
    expect(info.version).toBe(2);
    expect(info.step).toBe(3); // optimizer steps, not epochs
    expect(info.epoch).toBe(1);
    const arch = info.architecture!;
    expect(arch.model).toBe('small_cnn');
    expect(find(arch.root, 'net').type).toBe('Sequential');
    expect(find(arch.root, 'net.0')).toMatchObject({ type: 'Conv2d', in: 1, out: 32, kernel: 3, stride: 1, padding: 0, dilation: 1, groups: 1, bias: true });
    expect(find(arch.root, 'net.2')).toMatchObject({ type: 'Conv2d', in: 32, out: 64, kernel: 3, stride: 2, padding: 0 });
    expect(find(arch.root, 'net.4')).toMatchObject({ type: 'Flatten' });
    expect(find(arch.root, 'net.5')).toMatchObject({ type: 'Linear', in: 9216, out: 10, bias: true });
    expect(arch.activations.map((x) => x.path)).toEqual(['net.1', 'net.3']);
    const raw = Array.from(tensors.act_params!.data as Float32Array);
    expect(raw[1]).not.toBeCloseTo(1e-8, 6); // trained away from its init, possibly negative raw
    for (const act of arch.activations) {
      expect(act).toMatchObject({ kind: 'pssilu', learnable: true, shared: true, constraint: 'abs', tensor: 'act_params' });
      expect(act.params).toEqual(raw.map((v) => Math.abs(v)));
    }
    const x = E.Tensor.from(d, images(2, 7), [2, 1, 28, 28]);
    const want = Array.from(await a.forward(x).f32());
    const { model: b } = await modelFromCheckpoint(d, path);
    expect(b).toBeInstanceOf(SmallCnn);
    expect(Array.from(await b.forward(x).f32())).toEqual(want);
  });

  it('per-layer SmoothReLU records a = w^2 per layer; ReLU with a surrogate records the surrogate', async () => {
    const d = await testDevice();
    const a = new SmallCnn(d, { activation: { kind: 'smooth_relu', learnable: true }, seed: 1 });
    await trainedStep(d, a);
    const path = join(dir, 'smooth.safetensors');
    await saveModel(path, a, { config: a.config, step: 1 });
    const { tensors, metadata } = loadCheckpointFile(path);
    const arch = JSON.parse(metadata.architecture!) as Architecture;
    for (const act of arch.activations) {
      const w = (tensors[`${act.path}.params`]!.data as Float32Array)[0]!;
      expect(act).toMatchObject({ kind: 'smooth_relu', learnable: true, shared: false, constraint: 'square', tensor: `${act.path}.params` });
      expect(act.params[0]).toBeCloseTo(w * w, 3);
    }
    const r = new SmallCnn(d, { activation: { kind: 'relu', backward: { kind: 'softplus', params: [10] } } });
    const p2 = join(dir, 'relu_sur.safetensors');
    await saveModel(p2, r);
    const arch2 = JSON.parse(loadCheckpointFile(p2).metadata.architecture!) as Architecture;
    expect(arch2.activations[0]).toEqual({ path: 'net.1', kind: 'relu', params: [], learnable: false, shared: false, constraint: 'none', backward: { kind: 'softplus', params: [10] } });
  });

  it('the Madry net records padding and pooling; a model of generic layers rebuilds without its class', async () => {
    const d = await testDevice();
    const m = new MadryMnist(d, {});
    const path = join(dir, 'madry.safetensors');
    await saveModel(path, m);
    const arch = JSON.parse(loadCheckpointFile(path).metadata.architecture!) as Architecture;
    expect(find(arch.root, 'net.0')).toMatchObject({ type: 'Conv2d', in: 1, out: 32, kernel: 5, padding: 2 });
    expect(find(arch.root, 'net.2')).toMatchObject({ type: 'MaxPool2d', kernel: 2, stride: 2, padding: 0 });
    m.dispose();

    class Tiny extends Module {
      readonly body: Sequential;
      constructor(dev: E.Device) {
        super();
        this.body = this.registerModule('body', new Sequential(new Flatten(), new Linear(dev, 784, 16, { seed: 4 }), new Activation(dev, { kind: 'softplus', params: [3] }), new Linear(dev, 16, 10, { seed: 5 })));
      }
      forward(x: E.Tensor): E.Tensor {
        return this.body.forward(x);
      }
    }
    const t = new Tiny(d);
    const p2 = join(dir, 'tiny.safetensors');
    await saveModel(p2, t);
    const x = E.Tensor.from(d, images(3, 2), [3, 1, 28, 28]);
    const { model, info } = await modelFromCheckpoint(d, p2);
    expect(info.architecture!.model).toBe('Tiny');
    expect(info.architecture!.activations[0]).toMatchObject({ kind: 'softplus', params: [3], learnable: false });
    expect(Array.from(await model.forward(x).f32())).toEqual(Array.from(await t.forward(x).f32()));
  });

  it('format-1 files migrate through their config; unknown, newer and tampered files fail clearly', async () => {
    const d = await testDevice();
    const a = new SmallCnn(d, { activation: 'silu', seed: 5 });
    const state = await a.stateDict();
    const old = join(dir, 'old.safetensors');
    saveCheckpointFile(old, state, { format: 'kinkless-checkpoint-1', config: JSON.stringify(a.config), step: '2' });
    const x = E.Tensor.from(d, images(2, 3), [2, 1, 28, 28]);
    const { model, info } = await modelFromCheckpoint(d, old);
    expect(info.version).toBe(1);
    expect(info.step).toBeNull(); // format 1 wrote epochs there
    expect(Array.from(await model.forward(x).f32())).toEqual(Array.from(await a.forward(x).f32()));
    loadModel(old, new SmallCnn(d, { activation: 'silu' })); // still loads into a built model

    const foreign = join(dir, 'foreign.safetensors');
    saveCheckpointFile(foreign, state, { format: 'kinkless-checkpoint-1', config: JSON.stringify({ name: 'my_net' }) });
    await expect(modelFromCheckpoint(d, foreign)).rejects.toThrow(/foreign\.safetensors is format 1 .*records no architecture.*"my_net".*loadModel/);
    const newer = join(dir, 'newer.safetensors');
    saveCheckpointFile(newer, state, { format: 'kinkless-checkpoint-3' });
    expect(() => loadModel(newer, a)).toThrow(/newer\.safetensors has format 3, newer than this kinkless reads \(2\)/);
    const none = join(dir, 'none.safetensors');
    saveCheckpointFile(none, state, {});
    expect(() => loadModel(none, a)).toThrow(/none\.safetensors: metadata "format" is null; expected "kinkless-checkpoint-2"/);

    const good = join(dir, 'good.safetensors');
    await saveModel(good, a);
    const f = loadCheckpointFile(good);
    const arch = JSON.parse(f.metadata.architecture!) as Architecture;
    find(arch.root, 'net.2').stride = 1;
    const bad = join(dir, 'tampered.safetensors');
    saveCheckpointFile(bad, f.tensors, { ...f.metadata, architecture: JSON.stringify(arch) });
    await expect(modelFromCheckpoint(d, bad)).rejects.toThrow(/tampered\.safetensors: its architecture differs from what small_cnn builds now/);
  });
});
