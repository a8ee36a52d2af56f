// Every training loop under train() (adversarial/trainer.ts).
import { describe, it, expect } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import { randArray } from '../helpers/compare.ts';
import { type Device } from '../../engine/index.ts';
import { Conv2d, Flatten, Linear, Sequential } from '../../nn/layers.ts';
import { Activation } from '../../nn/activation.ts';
import { SGD } from '../../nn/optim.ts';
import { constantLr } from '../../nn/schedule.ts';
import { train, type TrainLoop } from '../../adversarial/trainer.ts';
import { FastAt, FreeAt, FreeLb, PgdAt, Yopo } from '../../adversarial/train/index.ts';

// ---------------------------------------------------------------- all loops under train()

describe('every loop under train()', () => {
  const tiny = (d: Device) => new Sequential(new Conv2d(d, 1, 3, 3, { seed: 1 }), new Activation(d, 'relu'), new Flatten(), new Linear(d, 3 * 6 * 6, 3, { seed: 2 }));
  const data = {
    images: Float32Array.from(randArray(10 * 64, 4, 0, 1)),
    labels: Int32Array.from({ length: 10 }, (_, i) => i % 3),
    n: 10,
    shape: [1, 8, 8] as [number, number, number],
  };
  const loops: [string, () => TrainLoop][] = [
    ['pgd-at', () => new PgdAt({ eps: 0.1, alpha: 0.03, steps: 2, bnMode: 'train' })],
    ['fast-at', () => new FastAt({ eps: 0.1, co: { every: 1, pgdSteps: 2, probeSize: 2 } })],
    ['free-at', () => new FreeAt({ eps: 0.1, replays: 2 })],
    ['yopo', () => new Yopo({ eps: 0.1, m: 2, n: 2, sigma: 0.02 })],
    ['freelb', () => new FreeLb({ K: 2, alpha: 0.1, eps: 0.2, initMag: 0.1, norm: 'linf' })],
  ];
  for (const [name, make] of loops) {
    it(`${name}: two epochs with a smaller last batch, finite stats, flat GPU memory`, async () => {
      const d = await testDevice();
      const model = tiny(d);
      const opt = new SGD(model.parameters(), { lr: 0.05, momentum: 0.9 });
      const loop = make();
      const hooks = loop instanceof FastAt ? loop.hooks() : undefined;
      const r1 = await train(loop, { device: d, model, opt, schedule: constantLr(0.05) }, data, { epochs: 1, batchSize: 4, seed: 1, hooks });
      const live = d.stats().liveBuffers;
      const r2 = await train(loop, { device: d, model, opt, schedule: constantLr(0.05) }, data, { epochs: 2, batchSize: 4, seed: 1, hooks, iteratorState: r1.iterator.state(), startStep: r1.step });
      expect(d.stats().liveBuffers).toBe(live);
      for (const e of [...r1.epochs, ...r2.epochs]) {
        expect(Number.isFinite(e.trainLoss)).toBe(true);
        expect(e.trainAcc).toBeGreaterThanOrEqual(0);
      }
      if (loop instanceof FastAt) {
        expect(loop.coState!.history.length).toBe(6);
        loop.dispose();
      }
      if (loop instanceof FreeAt) loop.dispose();
      opt.dispose();
      model.dispose();
    });
  }
});
