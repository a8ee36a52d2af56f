// Training-input options of the trainer skeleton: CPU crop augmentation of each batch
// (checked against an independent shift search on the raw images) and the PGD-AT eps
// warm-up (each warm-up step's perturbation stays inside the scaled ball).
import { describe, it, expect } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import { Tensor, sub, abs, max, scope, keep, clone } from '../../engine/index.ts';
import { Flatten, Linear, Sequential } from '../../nn/layers.ts';
import { SGD } from '../../nn/optim.ts';
import { constantLr } from '../../nn/schedule.ts';
import { train, type BatchResult, type TrainContext, type TrainLoop } from '../../adversarial/trainer.ts';
import { PgdAt } from '../../adversarial/train/index.ts';
import type { ImageSet } from '../../nn/data/loader.ts';

/** A loop that records the images it is given and takes no step. */
class Recorder implements TrainLoop {
  readonly name = 'recorder';
  seen: Float32Array[] = [];
  trainBatch(ctx: TrainContext, x: Tensor): BatchResult {
    const n = x.shape[0]!;
    // NOTE: the trainer's scope frees x after the step; keep a copy to read back later.
    this.pending.push(keep(clone(x)));
    ctx.opt.step();
    return { lossSum: Tensor.from(ctx.device, new Float32Array([0]), []), correct: Tensor.from(ctx.device, new Float32Array([n]), []) };
  }
  pending: Tensor[] = [];
}

function dataset(n: number, h: number, w: number): ImageSet {
  const images = new Float32Array(n * h * w);
  // Distinct, nonzero pixel values so every shift is recognisable.
  for (let i = 0; i < images.length; i++) images[i] = 1 + (i % 997) / 997;
  return { images, labels: new Int32Array(n).fill(0), n, shape: [1, h, w] };
}

/** The (dy, dx) in [-pad, pad]^2 with out[y][x] = in[y+dy][x+dx] (zero outside), or null. */
function findShift(out: Float32Array, src: Float32Array, h: number, w: number, pad: number): [number, number] | null {
  for (let dy = -pad; dy <= pad; dy++) {
    for (let dx = -pad; dx <= pad; dx++) {
      let ok = true;
      for (let y = 0; y < h && ok; y++) {
        for (let x = 0; x < w && ok; x++) {
          const sy = y + dy;
          const sx = x + dx;
          const want = sy >= 0 && sy < h && sx >= 0 && sx < w ? src[sy * w + sx]! : 0;
          if (out[y * w + x] !== want) ok = false;
        }
      }
      if (ok) return [dy, dx];
    }
  }
  return null;
}

describe('trainer augmentation', () => {
  async function run(pad: number, seed: number): Promise<{ seen: Float32Array[]; order: number[][] }> {
    const device = await testDevice();
    const model = new Sequential(new Flatten(), new Linear(device, 35, 2, { seed: 1 }));
    const rec = new Recorder();
    const order: number[][] = [];
    const data = dataset(10, 5, 7);
    const opt = new SGD(model.parameters(), { lr: 0 });
    await train(rec, { device, model, opt, schedule: constantLr(0) }, data, { epochs: 2, batchSize: 4, seed, augment: { pad, flip: false } });
    const seen: Float32Array[] = [];
    for (const t of rec.pending) {
      seen.push(await t.f32());
      t.dispose();
    }
    return { seen, order };
  }

  it('pad 0 passes the images through; pad 2 gives each image a shift in [-2, 2]^2 with zero fill, varied and reproducible', async () => {
    const data = dataset(10, 5, 7);
    const plain = await run(0, 3);
    const raws = Array.from({ length: 10 }, (_, i) => data.images.subarray(i * 35, (i + 1) * 35));
    for (const b of plain.seen) {
      for (let i = 0; i < b.length / 35; i++) {
        const img = b.subarray(i * 35, (i + 1) * 35);
        expect(raws.some((r) => r.every((v, k) => v === img[k])), 'pad 0 leaves images unchanged').toBe(true);
      }
    }
    const aug = await run(2, 3);
    expect(aug.seen.length).toBe(6); // 3 batches (4, 4, 2) x 2 epochs
    const shifts = new Set<string>();
    for (const b of aug.seen) {
      for (let i = 0; i < b.length / 35; i++) {
        const img = b.subarray(i * 35, (i + 1) * 35);
        const found = raws.map((r) => findShift(img, r, 5, 7, 2)).find((s) => s !== null);
        expect(found, `batch image ${i} is a shifted training image`).toBeTruthy();
        shifts.add(found!.join(','));
      }
    }
    expect(shifts.size, 'several distinct shifts drawn').toBeGreaterThan(4);
    const again = await run(2, 3);
    expect(again.seen.map((b) => Array.from(b))).toEqual(aug.seen.map((b) => Array.from(b)));
  });

  it('rejects a bad pad', async () => {
    const device = await testDevice();
    const model = new Sequential(new Flatten(), new Linear(device, 35, 2, { seed: 1 }));
    const opt = new SGD(model.parameters(), { lr: 0 });
    await expect(train(new Recorder(), { device, model, opt, schedule: constantLr(0) }, dataset(4, 5, 7), { epochs: 1, batchSize: 4, seed: 0, augment: { pad: -1, flip: false } })).rejects.toThrow(/augment.pad must be an integer >= 0, got -1/);
  });
});

describe('PGD-AT eps warm-up', () => {
  it('step s of N attacks with eps*(s+1)/N and alpha*(s+1)/N; the perturbation stays in that ball; full eps after', async () => {
    const device = await testDevice();
    const model = new Sequential(new Flatten(), new Linear(device, 12, 3, { seed: 2 }));
    const loop = new PgdAt({ eps: 0.3, alpha: 0.1, steps: 3, bnMode: 'eval', epsWarmupSteps: 4 });
    const xs = new Float32Array(24).map((_, i) => 0.2 + 0.6 * ((i * 7) % 11) / 11);
    const x = Tensor.from(device, xs, [2, 1, 3, 4]);
    const y = Tensor.from(device, new Int32Array([0, 2]), [2], 'i32');
    for (const [step, want] of [[0, 0.075], [1, 0.15], [2, 0.225], [3, 0.3], [50, 0.3]] as const) {
      const a = loop.attackAt(step);
      expect(a.threat.eps).toBeCloseTo(want, 12);
      expect(a.alpha).toBeCloseTo((0.1 * want) / 0.3, 12);
      const d = scope(() => {
        const adv = a.generate(model, x, y);
        return max(abs(sub(adv, x)));
      });
      const dv = (await d.f32())[0]!;
      d.dispose();
      expect(dv).toBeLessThanOrEqual(want * (1 + 1e-6) + 1e-7);
      expect(dv).toBeGreaterThan(want * 0.5);
    }
    expect(() => new PgdAt({ eps: 0.3, alpha: 0.1, steps: 3, bnMode: 'eval', epsWarmupSteps: 1.5 })).toThrow(/epsWarmupSteps must be an integer >= 0, got 1.5/);
    x.dispose();
    y.dispose();
  });
});
