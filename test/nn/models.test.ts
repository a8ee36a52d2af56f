// Models: checkpoint round trip gives identical logits; PreAct ResNet-18 runs forward
// and backward on a CIFAR-shaped batch with the parameter count of the architecture;
// shared activation parameters appear once; layer errors are clear.
import { describe, it, expect } from 'vitest';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testDevice } from '../helpers/device.ts';
import * as E from '../../engine/index.ts';
import { SmallCnn } from '../../nn/models/small_cnn.ts';
import { MadryMnist } from '../../nn/models/madry_mnist.ts';
import { PreActResNet18, WideResNet } from '../../nn/models/resnet.ts';
import { saveModel, loadModel } from '../../nn/model_checkpoint.ts';
import { Adam } from '../../nn/optim.ts';
import { Linear } from '../../nn/layers.ts';

function images(n: number, c: number, h: number, w: number, seed: number): Float32Array {
  return Float32Array.from({ length: n * c * h * w }, (_, i) => 0.5 + 0.5 * Math.sin(i * 0.37 + seed));
}

describe('models', () => {
  it('a checkpoint saved and loaded into a fresh model gives identical logits (and optimizer state)', async () => {
    const d = await testDevice();
    const dir = mkdtempSync(join(tmpdir(), 'kinkless-ckpt-'));
    const a = new SmallCnn(d, { activation: { kind: 'pssilu', shared: true }, seed: 1 });
    const opt = new Adam(a.parameters(), { lr: 1e-2 });
    const x = E.Tensor.from(d, images(3, 1, 28, 28, 1), [3, 1, 28, 28]);
    const y = E.Tensor.from(d, new Int32Array([1, 2, 3]), [3], 'i32');
    // one training step so that weights and optimizer state are not at their init
    E.backward(E.softmaxCrossEntropy(a.forward(x), y));
    opt.step();
    const path = join(dir, 'model.safetensors');
    await saveModel(path, a, { config: a.config, step: 1 }, { opt, slotsPerParam: 2 }, { epoch: 0, step: 1 });
    const b = new SmallCnn(d, { activation: { kind: 'pssilu', shared: true }, seed: 2 });
    const optB = new Adam(b.parameters(), { lr: 1e-2 });
    const before = await b.forward(x).f32();
    const la = await a.forward(x).f32();
    expect(Array.from(before)).not.toEqual(Array.from(la));
    const meta = loadModel(path, b, optB);
    expect(meta.training).toEqual({ epoch: 0, step: 1 });
    expect(JSON.parse(meta.metadata.config!).activation).toEqual({ kind: 'pssilu', shared: true });
    expect(Array.from(await b.forward(x).f32())).toEqual(Array.from(la));
    // the next step is identical too (optimizer moments restored)
    for (const [m, o] of [[a, opt], [b, optB]] as const) {
      m.zeroGrad();
      E.backward(E.softmaxCrossEntropy(m.forward(x), y));
      o.step();
    }
    expect(Array.from(await b.forward(x).f32())).toEqual(Array.from(await a.forward(x).f32()));
    // loading into a different architecture names the tensor
    const c = new MadryMnist(d, {});
    expect(() => loadModel(path, c)).toThrow(/cannot load .*model\.safetensors.*(missing|shape)/);
    // a truncated file gives a clear error
    const bytes = readFileSync(path);
    writeFileSync(join(dir, 'cut.safetensors'), bytes.subarray(0, bytes.length - 100));
    expect(() => loadModel(join(dir, 'cut.safetensors'), b)).toThrow(/cut\.safetensors/);
  });

  it('shared activation parameters are one tensor; per-layer ones are separate', async () => {
    const d = await testDevice();
    const shared = new SmallCnn(d, { activation: { kind: 'pssilu', shared: true } });
    const per = new SmallCnn(d, { activation: { kind: 'pssilu', shared: false } });
    const actParams = (m: SmallCnn) => m.namedParameters().filter(([n]) => n.includes('act') || n.endsWith('params'));
    expect(actParams(shared).length).toBe(1);
    expect(actParams(per).length).toBe(2);
    // PSSiLU b starts at 1e-8, not 0 (abs has zero gradient at 0)
    const v = await actParams(shared)[0]![1].f32();
    expect(v[0]).toBeCloseTo(1, 6);
    expect(v[1]).toBeCloseTo(1e-8, 12);
  });

  it('PreAct ResNet-18 forward and backward on a CIFAR-shaped batch; parameter count matches the architecture', async () => {
    const d = await testDevice();
    const m = new PreActResNet18(d, { activation: 'silu' });
    // count from the architecture: stem conv, 8 pre-activation blocks, final BN, linear
    const block = (i: number, o: number, proj: boolean) => 2 * i + i * o * 9 + 2 * o + o * o * 9 + (proj ? i * o : 0);
    const expected =
      3 * 64 * 9 +
      2 * block(64, 64, false) +
      block(64, 128, true) + block(128, 128, false) +
      block(128, 256, true) + block(256, 256, false) +
      block(256, 512, true) + block(512, 512, false) +
      2 * 512 + 512 * 10 + 10;
    console.log(`PreAct ResNet-18 parameters: ${m.parameterCount()} (architecture: ${expected})`);
    expect(m.parameterCount()).toBe(expected);
    const x = E.Tensor.from(d, images(2, 3, 32, 32, 3), [2, 3, 32, 32]);
    const y = E.Tensor.from(d, new Int32Array([3, 7]), [2], 'i32');
    const logits = m.forward(x);
    expect(logits.shape).toEqual([2, 10]);
    E.backward(E.softmaxCrossEntropy(logits, y));
    for (const [n, p] of m.namedParameters()) {
      expect(p.grad, n).not.toBeNull();
    }
    const g = await m.parameters()[0]!.grad!.f32();
    expect(g.some((v) => v !== 0)).toBe(true);
    expect(g.every((v) => Number.isFinite(v))).toBe(true);
  });

  it('WideResNet validates depth and builds', async () => {
    const d = await testDevice();
    expect(() => new WideResNet(d, 27, 2)).toThrow(/depth must be 6n \+ 4/);
    const w = new WideResNet(d, 10, 1);
    expect(w.parameterCount()).toBeGreaterThan(0);
  });

  it('layers reject bad shapes with clear errors', async () => {
    const d = await testDevice();
    const l = new Linear(d, 4, 3);
    expect(() => l.forward(E.Tensor.from(d, new Float32Array(10), [2, 5]))).toThrow(/Linear\(4 -> 3\): input must be \[N, 4\], got \[2, 5\]/);
    const m = new SmallCnn(d);
    expect(() => m.forward(E.Tensor.from(d, new Float32Array(2 * 32 * 32), [2, 1, 32, 32]))).toThrow(/SmallCnn: input must be \[N, 1, 28, 28\]/);
    expect(() => new SmallCnn(d, { activation: 'swish' as never })).toThrow(/unknown activation kind "swish"/);
  });
});
