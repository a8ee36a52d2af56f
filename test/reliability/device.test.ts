// Device faults: losing the device (simulated with device.gpu.destroy()) in the middle of
// training rejects the training promise quickly with a clear error that names the last
// checkpoint, which then resumes on a fresh device; a readback in flight when the device
// goes away settles instead of hanging; later calls fail with DeviceLostError.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createDevice, DeviceLostError, Tensor, add, sum, type Device } from '../../engine/index.ts';
import { Sequential, Conv2d, Flatten, Linear } from '../../nn/layers.ts';
import { Activation } from '../../nn/activation.ts';
import { SGD } from '../../nn/optim.ts';
import { constantLr } from '../../nn/schedule.ts';
import type { ImageSet } from '../../nn/data/loader.ts';
import { train } from '../../adversarial/trainer.ts';
import { FastAt } from '../../adversarial/train/fast_at.ts';
import { resumeTraining, trainWithCheckpoints, TrainingError } from '../../adversarial/resume.ts';

const dir = mkdtempSync(join(tmpdir(), 'kinkless-rel-dev-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const DATA: ImageSet = { images: Float32Array.from({ length: 24 * 64 }, (_, i) => ((i * 37) % 101) / 101), labels: Int32Array.from({ length: 24 }, (_, i) => i % 10), n: 24, shape: [1, 8, 8] };

function setup(d: Device) {
  const model = new Sequential(new Conv2d(d, 1, 4, 3, { seed: 1 }), new Activation(d, 'gelu'), new Flatten(), new Linear(d, 4 * 6 * 6, 10, { seed: 2 }));
  const opt = new SGD(model.parameters(), { lr: 0.05, momentum: 0.9 });
  const loop = new FastAt({ eps: 0.1, seed: 9 });
  return { model, opt, loop, ctx: { device: d, model, opt, schedule: constantLr(0.05) } };
}

/** Settles within ms or fails the test (instead of hanging it). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([p, new Promise<T>((_, rej) => setTimeout(() => rej(new Error(`HANG: ${what} did not settle within ${ms} ms`)), ms))]);
}

describe('device loss', () => {
  it('mid-training: the promise rejects quickly, naming the device loss and the last checkpoint; the checkpoint resumes on a new device', async () => {
    const d = await createDevice();
    const path = join(dir, 'lost.safetensors');
    const s = setup(d);
    let destroyedAt = 0;
    // 3 batches per epoch: checkpoints after epochs 1 and 2 (steps 3 and 6); lose the device at step 7.
    const run = trainWithCheckpoints(s.loop, s.ctx, DATA, {
      epochs: 5,
      batchSize: 8,
      seed: 1,
      logEvery: 1,
      checkpoint: { path },
      hooks: {
        onStep: (i) => {
          if (i.step === 7) {
            destroyedAt = performance.now();
            d.gpu.destroy();
          }
        },
      },
    });
    const err = (await within(run.then(() => null, (e: unknown) => e), 10_000, 'training after device loss')) as TrainingError;
    const latency = performance.now() - destroyedAt;
    console.log(`device loss -> rejection in ${latency.toFixed(1)} ms: ${err.message}`);
    expect(err).toBeInstanceOf(TrainingError);
    expect(err.message).toMatch(/^kinkless: training failed after step 7: kinkless: GPU device lost \(destroyed\).*; last checkpoint: .*lost\.safetensors \(step 6\); resume it with resumeTraining\(\)$/);
    expect(err.cause).toBeInstanceOf(DeviceLostError);
    expect(err.checkpoint).toBe(path);
    expect(err.checkpointStep).toBe(6);
    expect(latency).toBeLessThan(2000);
    // Every later call fails fast with DeviceLostError.
    expect(() => Tensor.from(d, [1, 2])).toThrow(/kinkless: GPU device lost \(destroyed\).*no further GPU work is possible on this Device/);
    d.destroy();

    // The named checkpoint resumes on a fresh device.
    const d2 = await createDevice();
    try {
      const t = setup(d2);
      const r = resumeTraining(path, t);
      expect(r.startStep).toBe(6);
      const res = await train(t.loop, t.ctx, DATA, { epochs: 3, batchSize: 8, seed: 1, startStep: r.startStep, iteratorState: r.iteratorState });
      expect(res.step).toBe(9);
      expect(Number.isFinite(res.epochs[0]!.trainLoss)).toBe(true);
    } finally {
      d2.destroy();
    }
  });

  it('plain train(): device loss from a hook rejects with DeviceLostError; the wrapper says no checkpoint was written', async () => {
    for (const wrapped of [false, true]) {
      const d = await createDevice();
      const s = setup(d);
      const opts = { epochs: 3, batchSize: 8, seed: 1, logEvery: 1, hooks: { onStep: (i: { step: number }) => void (i.step === 2 && d.gpu.destroy()) } };
      const run = wrapped ? trainWithCheckpoints(s.loop, s.ctx, DATA, opts) : train(s.loop, s.ctx, DATA, opts);
      if (wrapped) await expect(within(run, 10_000, 'training')).rejects.toThrow(/training failed after step 2: kinkless: GPU device lost .*; no checkpoint was written$/);
      else await expect(within(run, 10_000, 'training')).rejects.toThrow(DeviceLostError);
      d.destroy();
    }
  });

  it('a readback in flight when the device is destroyed settles (no hang)', async () => {
    const d = await createDevice();
    const x = Tensor.from(d, new Float32Array(1 << 16).fill(1));
    const y = add(x, x);
    const p = sum(y).item();
    d.gpu.destroy();
    const r = await within(p.then((v) => `value ${v}`, (e: Error) => e.message), 5000, 'readback');
    // Either the copy completed before the loss, or it reports the loss.
    expect(r).toMatch(/^value 131072$|device lost|readback failed/);
    await expect(within(d.sync(), 5000, 'sync')).rejects.toThrow(DeviceLostError);
    d.destroy();
  });
});
