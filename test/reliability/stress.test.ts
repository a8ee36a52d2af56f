// Opt-in stress test (KINKLESS_STRESS=1): 1000 fast-AT steps of SmallCnn at batch 4 with
// catastrophic-overfitting checks, a NaN guard and periodic checkpoints; live buffers and
// bytes must be the same at the end as after the warm-up epoch. Prints wall time and the
// memory counters. Without the flag the suite is not collected at all.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import { SmallCnn } from '../../nn/models/small_cnn.ts';
import { SGD } from '../../nn/optim.ts';
import { constantLr } from '../../nn/schedule.ts';
import type { ImageSet } from '../../nn/data/loader.ts';
import { FastAt } from '../../adversarial/train/fast_at.ts';
import { trainWithCheckpoints } from '../../adversarial/resume.ts';

describe.runIf(process.env.KINKLESS_STRESS === '1')('stress (KINKLESS_STRESS=1)', () => {
  it('1000 fast-AT steps of SmallCnn (batch 4) keep live buffers and bytes flat', async () => {
    const d = await testDevice();
    const n = 40; // 10 batches of 4 per epoch
    const images = new Float32Array(n * 784);
    for (let i = 0; i < images.length; i++) {
      const v = Math.sin(i * 12.9898) * 43758.5453;
      images[i] = v - Math.floor(v);
    }
    const data: ImageSet = { images, labels: Int32Array.from({ length: n }, (_, i) => i % 10), n, shape: [1, 28, 28] };
    const model = new SmallCnn(d, { activation: 'softplus', seed: 1 });
    const opt = new SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
    const loop = new FastAt({ eps: 0.1, seed: 1, co: { every: 100, pgdSteps: 3, probeSize: 4, earlyStop: false } });
    const ctx = { device: d, model, opt, schedule: constantLr(0.01) };
    const dir = mkdtempSync(join(tmpdir(), 'kinkless-stress-'));
    const common = { batchSize: 4, seed: 0, logEvery: 50, nanGuardEvery: 50, checkpoint: { path: join(dir, 'stress.safetensors'), everyEpochs: 20 } };
    try {
      await trainWithCheckpoints(loop, ctx, data, { ...common, epochs: 1, hooks: loop.hooks() });
      await d.sync();
      const start = d.stats();
      const t0 = performance.now();
      const samples: string[] = [];
      const res = await trainWithCheckpoints(loop, ctx, data, {
        ...common,
        epochs: 101,
        startStep: 10,
        iteratorState: { seed: 0, epoch: 1, position: 0, n, batchSize: 4, shuffle: true, dropLast: false },
        hooks: {
          ...loop.hooks(),
          onEpoch: async (s) => {
            await loop.hooks().onEpoch!(s);
            if (s.epoch % 25 === 0) samples.push(`epoch ${s.epoch}: ${d.stats().liveBuffers} buffers / ${d.stats().liveBytes} B live`);
          },
        },
      });
      await d.sync();
      const end = d.stats();
      const secs = (performance.now() - t0) / 1000;
      console.log(
        `stress: ${res.step - 10} FastAt steps (SmallCnn, batch 4) in ${secs.toFixed(1)} s (${((1000 * secs) / (res.step - 10)).toFixed(1)} ms/step)\n` +
          `  start: ${start.liveBuffers} live buffers, ${start.liveBytes} live bytes, ${start.pooledBuffers} pooled (${start.pooledBytes} B)\n` +
          `  end:   ${end.liveBuffers} live buffers, ${end.liveBytes} live bytes, ${end.pooledBuffers} pooled (${end.pooledBytes} B)\n  ${samples.join('\n  ')}\n` +
          `  final train loss ${res.epochs.at(-1)!.trainLoss.toFixed(4)}, CO detected: ${loop.coState!.coDetected}`,
      );
      expect(res.step - 10).toBe(1000);
      expect(end.liveBuffers).toBe(start.liveBuffers);
      expect(end.liveBytes).toBe(start.liveBytes);
      expect(end.pooledBytes).toBeLessThanOrEqual(start.pooledBytes + 1024 * 1024);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      loop.dispose();
      opt.dispose();
      model.dispose();
    }
  }, 600_000);
});
