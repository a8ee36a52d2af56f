// Determinism: the same seed on the same adapter gives bit-identical per-step losses and
// final parameters across runs with fresh objects (FastAt with random starts, PGD-AT,
// batch norm, Adam, a cosine schedule), also on a second Device in the same process; a
// different seed gives different losses; the data order is a pure function of (seed, epoch).
import { describe, expect, it } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import { createDevice, randomUniform, type Device } from '../../engine/index.ts';
import { Sequential, Conv2d, BatchNorm2d, Flatten, Linear } from '../../nn/layers.ts';
import { Activation } from '../../nn/activation.ts';
import { Adam } from '../../nn/optim.ts';
import { cosineLr } from '../../nn/schedule.ts';
import { BatchIterator, type ImageSet } from '../../nn/data/loader.ts';
import { train, type TrainLoop } from '../../adversarial/trainer.ts';
import { FastAt } from '../../adversarial/train/fast_at.ts';
import { PgdAt } from '../../adversarial/train/pgd_at.ts';

const N = 36;
const DATA: ImageSet = {
  images: Float32Array.from({ length: N * 64 }, (_, i) => {
    const v = Math.sin(i * 78.233) * 43758.5453;
    return v - Math.floor(v);
  }),
  labels: Int32Array.from({ length: N }, (_, i) => (i * 3) % 10),
  n: N,
  shape: [1, 8, 8],
};

async function run(d: Device, makeLoop: () => TrainLoop, seed: number): Promise<{ losses: number[]; params: Float32Array[] }> {
  const model = new Sequential(new Conv2d(d, 1, 4, 3, { seed: 1 }), new BatchNorm2d(d, 4), new Activation(d, 'softplus'), new Flatten(), new Linear(d, 144, 10, { seed: 2 }));
  const opt = new Adam(model.parameters(), { lr: 0.01 });
  const losses: number[] = [];
  await train(makeLoop(), { device: d, model, opt, schedule: cosineLr(0.01, 10) }, DATA, {
    epochs: 2,
    batchSize: 8,
    seed,
    logEvery: 1,
    hooks: { onStep: (i) => void losses.push(i.loss) },
  });
  const params: Float32Array[] = [];
  for (const [, t] of [...model.namedParameters(), ...model.namedBuffers()]) params.push((await t.data()) as Float32Array);
  model.dispose();
  opt.dispose();
  return { losses, params };
}

function bitsEqual(a: Float32Array[], b: Float32Array[]): boolean {
  return a.length === b.length && a.every((x, i) => Buffer.from(x.buffer).equals(Buffer.from(b[i]!.buffer)));
}

const loops: [string, () => TrainLoop][] = [
  ['FastAt (random starts)', () => new FastAt({ eps: 0.1, seed: 4 })],
  ['PgdAt (3 steps, random start, bn train)', () => new PgdAt({ eps: 0.1, alpha: 0.04, steps: 3, bnMode: 'train', seed: 4 })],
];

describe('same seed, same adapter: bit-identical', () => {
  for (const [name, make] of loops) {
    it(`${name}: two runs with fresh objects give identical per-step losses and parameters`, async () => {
      const d = await testDevice();
      const a = await run(d, make, 11);
      const b = await run(d, make, 11);
      expect(a.losses.length).toBe(10);
      expect(a.losses.every(Number.isFinite)).toBe(true);
      expect(b.losses).toEqual(a.losses);
      expect(bitsEqual(a.params, b.params)).toBe(true);
      // A different data seed changes the run.
      const c = await run(d, make, 12);
      expect(c.losses).not.toEqual(a.losses);
    });
  }

  it('a second Device in the same process reproduces the run exactly', async () => {
    const d = await testDevice();
    const a = await run(d, loops[0]![1], 11);
    const d2 = await createDevice();
    try {
      const b = await run(d2, loops[0]![1], 11);
      expect(b.losses).toEqual(a.losses);
      expect(bitsEqual(a.params, b.params)).toBe(true);
    } finally {
      d2.destroy();
    }
  });

  it('uniform random bits and the data order depend only on (seed, offset) and (seed, epoch)', async () => {
    const d = await testDevice();
    const u1 = await randomUniform(d, [1000], { seed: 7, offset: 40 }).f32();
    const whole = await randomUniform(d, [1040], { seed: 7 }).f32();
    expect(Buffer.from(u1.buffer).equals(Buffer.from(whole.slice(40).buffer))).toBe(true);
    const it1 = new BatchIterator(N, { batchSize: 8, seed: 3 });
    const seen: number[] = [];
    for (let k = 0; k < 7; k++) seen.push(...it1.next().indices);
    const it2 = new BatchIterator(N, { batchSize: 8, seed: 3 });
    it2.restore({ ...it1.state(), epoch: 1, position: 16 });
    expect(Array.from(it2.next().indices)).toEqual(Array.from(new BatchIterator(N, { batchSize: 8, seed: 3 }).order(1).slice(16, 24)));
    expect(seen.slice(36)).toEqual(Array.from(it1.order(1).slice(0, 16)));
  });
});
