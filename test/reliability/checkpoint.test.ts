// Checkpoints under faults and resume equivalence: an interrupted write (the
// _failAfterBytes hook) leaves the previous checkpoint intact and loadable; 2 epochs in
// one go equal 1 epoch + save + restore into fresh objects + 1 epoch, loss for loss and
// bit for bit (FastAt: attack RNG cursor; Adam: slots and step count; cosine schedule:
// global step; BatchIterator: data order; BatchNorm: running statistics), also from the
// middle of an epoch.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import type { Device } from '../../engine/index.ts';
import { Sequential, Conv2d, BatchNorm2d, Dropout, Flatten, Linear } from '../../nn/layers.ts';
import { Activation } from '../../nn/activation.ts';
import { Adam, SGD } from '../../nn/optim.ts';
import { constantLr, cosineLr } from '../../nn/schedule.ts';
import { loadModel } from '../../nn/model_checkpoint.ts';
import type { ImageSet } from '../../nn/data/loader.ts';
import { StandardTraining, train, type StepInfo } from '../../adversarial/trainer.ts';
import { FastAt } from '../../adversarial/train/fast_at.ts';
import { checkpointHooks, findRngStates, mergeHooks, resumeTraining, saveTrainingCheckpoint, iteratorStateAt } from '../../adversarial/resume.ts';

const dir = mkdtempSync(join(tmpdir(), 'kinkless-rel-ckpt-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function tinyModel(d: Device, seed: number): Sequential {
  return new Sequential(new Conv2d(d, 1, 4, 3, { seed }), new BatchNorm2d(d, 4), new Activation(d, 'silu'), new Flatten(), new Linear(d, 4 * 6 * 6, 10, { seed: seed + 7 }));
}

function dataset(n: number): ImageSet {
  const images = new Float32Array(n * 64);
  for (let i = 0; i < images.length; i++) {
    const v = Math.sin(i * 12.9898) * 43758.5453;
    images[i] = v - Math.floor(v);
  }
  const labels = Int32Array.from({ length: n }, (_, i) => (i * 7) % 10);
  return { images, labels, n, shape: [1, 8, 8] };
}

const DATA = dataset(44); // batch 8: 6 batches per epoch, the last one of 4
const OPTS = { batchSize: 8, seed: 5, logEvery: 1 };
const TOTAL = 12;

function setup(d: Device, modelSeed: number) {
  const model = tinyModel(d, modelSeed);
  const opt = new Adam(model.parameters(), { lr: 0.01 });
  const loop = new FastAt({ eps: 0.1, seed: 3 });
  const schedule = cosineLr(0.01, TOTAL);
  return { model, opt, loop, schedule, ctx: { device: d, model, opt, schedule } };
}

function dispose(s: ReturnType<typeof setup>): void {
  s.model.dispose();
  s.opt.dispose();
}

async function params(s: ReturnType<typeof setup>): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (const [, t] of [...s.model.namedParameters(), ...s.model.namedBuffers()]) out.push((await t.data()) as Float32Array);
  return out;
}

const lossLog = (out: number[]) => ({ onStep: (i: StepInfo) => void out.push(i.loss) });

describe('checkpoint faults', () => {
  it('a write interrupted partway keeps the previous checkpoint intact and loadable', async () => {
    const d = await testDevice();
    const s = setup(d, 1);
    const path = join(dir, 'interrupted.safetensors');
    await train(s.loop, s.ctx, DATA, { ...OPTS, epochs: 1 });
    const snap1 = await saveTrainingCheckpoint(path, { model: s.model, opt: s.opt, loop: s.loop, step: 6, iterator: iteratorStateAt(DATA, OPTS, 1, 0) });
    const bytes1 = readFileSync(path);
    const p1 = await params(s);
    // Train on, then fail the next save after 100 bytes, and after all but the last byte.
    await train(s.loop, s.ctx, DATA, { ...OPTS, epochs: 2, startStep: 6, iteratorState: iteratorStateAt(DATA, OPTS, 1, 0) });
    for (const failAt of [100, bytes1.length - 1]) {
      await expect(saveTrainingCheckpoint(path, { model: s.model, opt: s.opt, loop: s.loop, step: 12, iterator: iteratorStateAt(DATA, OPTS, 2, 0) }, { _failAfterBytes: failAt })).rejects.toThrow(
        /write failed, previous file \(if any\) left intact: simulated failure/,
      );
      expect(readFileSync(path).equals(bytes1)).toBe(true);
    }
    expect(readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
    // The intact file loads into fresh objects and restores exactly the saved values.
    const t = setup(d, 99);
    const r = resumeTraining(path, t);
    expect(r.startStep).toBe(6);
    expect(r.snapshot).toEqual(snap1);
    const p2 = await params(t);
    p1.forEach((a, i) => expect(Buffer.from(p2[i]!.buffer).equals(Buffer.from(a.buffer))).toBe(true));
    expect(t.opt.stepCount).toBe(6);
    // nn/model_checkpoint.loadModel reads the same file (shared layout).
    const u = setup(d, 98);
    const c = loadModel(path, u.model, u.opt);
    expect(JSON.parse(c.metadata.training!).step).toBe(6);
    for (const x of [s, t, u]) dispose(x);
  });

  it('resumeTraining rejects a plain model checkpoint and a mismatched loop with clear errors', async () => {
    const d = await testDevice();
    const s = setup(d, 1);
    const path = join(dir, 'plain.safetensors');
    const { saveModel } = await import('../../nn/model_checkpoint.ts');
    await saveModel(path, s.model);
    expect(() => resumeTraining(path, s)).toThrow(/holds no training state .* not written by saveTrainingCheckpoint/);
    await saveTrainingCheckpoint(path, { ...s, step: 0, iterator: iteratorStateAt(DATA, OPTS, 0, 0) });
    const other = { ...s, loop: new FastAt({ eps: 0.2, seed: 3 }) };
    expect(() => resumeTraining(path, other)).toThrow(/written by loop "fast-at\(eps=0.1, alpha=0.125\)", resuming with "fast-at\(eps=0.2/);
    const otherSeed = { ...s, loop: new FastAt({ eps: 0.1, seed: 4 }) };
    expect(() => resumeTraining(path, otherSeed)).toThrow(/RNG "attack.rng" was saved with seed 3, the loop uses seed 4/);
    dispose(s);
  });
});

describe('resume', () => {
  it('FastAt keeps its random-start randomness in RngState cursors that the checkpoint saves', () => {
    const l = new FastAt({ eps: 0.1, seed: 3, co: { every: 5 } });
    expect([...findRngStates(l).keys()]).toEqual(['attack.rng', 'checkFgsm.rng', 'checkPgd.rng']);
  });

  it('2 epochs straight == 1 epoch + save + fresh restore + 1 epoch (bit-identical per-step losses)', async () => {
    const d = await testDevice();
    // Uninterrupted reference run.
    const a = setup(d, 1);
    const lossA: number[] = [];
    const resA = await train(a.loop, a.ctx, DATA, { ...OPTS, epochs: 2, hooks: lossLog(lossA) });
    expect(resA.step).toBe(TOTAL);
    const pA = await params(a);

    // First half with checkpoint hooks, then a fresh model / optimizer / loop (other init).
    const path = join(dir, 'resume.safetensors');
    const b = setup(d, 1);
    const lossB: number[] = [];
    const ck = checkpointHooks({ path }, b, DATA, OPTS);
    await train(b.loop, b.ctx, DATA, { ...OPTS, epochs: 1, hooks: mergeHooks(lossLog(lossB), ck) });
    expect(ck.lastPath()).toBe(path);
    expect(ck.lastStep).toBe(6);
    dispose(b);
    const c = setup(d, 42);
    const r = resumeTraining(path, c);
    expect(r.startStep).toBe(6);
    expect(r.iteratorState).toMatchObject({ epoch: 1, position: 0 });
    expect(r.snapshot.rng['attack.rng']!.counter).toBeGreaterThan(0);
    await train(c.loop, c.ctx, DATA, { ...OPTS, epochs: 2, startStep: r.startStep, iteratorState: r.iteratorState, hooks: lossLog(lossB) });
    expect(lossB.length).toBe(TOTAL);
    expect(lossA.every(Number.isFinite)).toBe(true);
    expect(lossB).toEqual(lossA); // exact float equality, step by step
    const pC = await params(c);
    pA.forEach((x, i) => expect(Buffer.from(pC[i]!.buffer).equals(Buffer.from(x.buffer))).toBe(true));
    dispose(a);
    dispose(c);
  });

  it('resumes from the middle of an epoch (everySteps) with identical remaining losses', async () => {
    const d = await testDevice();
    const a = setup(d, 2);
    const lossA: number[] = [];
    await train(a.loop, a.ctx, DATA, { ...OPTS, epochs: 2, hooks: lossLog(lossA) });
    const path = join(dir, 'mid.safetensors');
    const b = setup(d, 2);
    const ck = checkpointHooks({ path, everyEpochs: 0, everySteps: 4 }, b, DATA, OPTS);
    // Stop after step 9 (global), i.e. inside epoch 1; the last save is after 8 steps.
    await train(b.loop, b.ctx, DATA, { ...OPTS, epochs: 2, hooks: mergeHooks(ck, { onStep: (i) => (i.step === 9 ? 'stop' : undefined) }) });
    expect(ck.lastStep).toBe(8);
    dispose(b);
    const c = setup(d, 77);
    const r = resumeTraining(path, c);
    expect(r.iteratorState).toMatchObject({ epoch: 1, position: 16 });
    const lossC: number[] = [];
    await train(c.loop, c.ctx, DATA, { ...OPTS, epochs: 2, startStep: r.startStep, iteratorState: r.iteratorState, hooks: lossLog(lossC) });
    expect(lossC).toEqual(lossA.slice(8));
    expect(existsSync(path)).toBe(true);
    dispose(a);
    dispose(c);
  });

  it('a model with dropout resumes with the same masks (the Dropout call counter is saved)', async () => {
    const d = await testDevice();
    const make = (seed: number) => {
      const model = new Sequential(new Flatten(), new Linear(d, 64, 16, { seed }), new Activation(d, 'relu'), new Dropout(0.5, 3), new Linear(d, 16, 10, { seed: seed + 1 }));
      const opt = new SGD(model.parameters(), { lr: 0.05, momentum: 0.9 });
      return { model, opt, loop: new StandardTraining(), ctx: { device: d, model, opt, schedule: constantLr(0.05) } };
    };
    const a = make(1);
    const lossA: number[] = [];
    await train(a.loop, a.ctx, DATA, { ...OPTS, epochs: 2, hooks: lossLog(lossA) });
    const path = join(dir, 'dropout.safetensors');
    const b = make(1);
    const ck = checkpointHooks({ path }, b, DATA, OPTS);
    await train(b.loop, b.ctx, DATA, { ...OPTS, epochs: 1, hooks: ck });
    const c = make(5);
    const r = resumeTraining(path, c);
    expect(r.snapshot.dropout).toEqual({ '3': 6 });
    const lossC: number[] = [];
    await train(c.loop, c.ctx, DATA, { ...OPTS, epochs: 2, startStep: r.startStep, iteratorState: r.iteratorState, hooks: lossLog(lossC) });
    expect(lossC).toEqual(lossA.slice(6));
    for (const x of [a, b, c]) {
      x.model.dispose();
      x.opt.dispose();
    }
  });
});
