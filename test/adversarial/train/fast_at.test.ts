// The catastrophic-overfitting detector of FAST-AT (adversarial/train/fast_at.ts) on
// synthetic sequences and under FastAt.
import { describe, it, expect } from 'vitest';
import { testDevice } from '../../helpers/device.ts';
import { Tensor, scope } from '../../../engine/index.ts';
import { Linear, Sequential } from '../../../nn/layers.ts';
import { SGD } from '../../../nn/optim.ts';
import { CoDetector, FastAt, PgdAt } from '../../../adversarial/train/index.ts';
import { ctxOf, inputs } from '../../helpers/train_loops.ts';

// ---------------------------------------------------------------- CO detector

describe('catastrophic-overfitting detector', () => {
  const run = (pgd: number[], fgsm: number[]) => {
    const det = new CoDetector();
    const fired = pgd.map((p, i) => det.observe({ step: i * 100, pgdAcc: p, fgsmAcc: fgsm[i]! }));
    return { det, fired };
  };
  it('stays quiet on a healthy run (including noisy dips and a run where both accuracies fall)', () => {
    expect(run([0.1, 0.3, 0.5, 0.62, 0.58, 0.66, 0.7], [0.15, 0.4, 0.6, 0.7, 0.66, 0.74, 0.78]).det.coDetected).toBe(false);
    // Divergence, not masking: FGSM falls with PGD.
    expect(run([0.4, 0.6, 0.1], [0.5, 0.7, 0.15]).det.coDetected).toBe(false);
    // Early noise below minBest.
    expect(run([0.05, 0.0, 0.02], [0.3, 0.9, 0.9]).det.coDetected).toBe(false);
  });
  it('fires when PGD accuracy collapses while FGSM accuracy stays high, and records the check', () => {
    const { det, fired } = run([0.2, 0.45, 0.6, 0.55, 0.04, 0.01], [0.3, 0.55, 0.7, 0.7, 0.92, 0.97]);
    expect(fired).toEqual([false, false, false, false, true, false]);
    expect(det.state.detectedAt).toEqual({ step: 400, pgdAcc: 0.04, fgsmAcc: 0.92 });
    expect(det.state.best!.step).toBe(200);
    expect(det.state.history.length).toBe(6);
    // Masking from the start (the real MNIST eps 0.3 fast-AT run's first checks, PGD-10 /
    // FGSM on 128 probe images): never robust, FGSM far above PGD; fires on the 3rd check
    // in a row with a gap >= 0.3 (steps 100, 150, 200).
    const masked = run([0, 0.203, 0.344, 0.219, 0.281, 0.234], [0, 0.406, 0.648, 0.695, 0.742, 0.781]);
    expect(masked.fired).toEqual([false, false, false, false, true, false]);
    expect(masked.det.state.detectedAt!.step).toBe(400);
    // Two wide gaps then a narrow one: the run of gaps restarts, no alarm.
    expect(run([0.3, 0.3, 0.3, 0.3], [0.7, 0.7, 0.35, 0.7]).det.coDetected).toBe(false);
    expect(() => new CoDetector({ maskChecks: 0 })).toThrow(/maskChecks must be an integer >= 1, got 0/);
    // Wong's rule alone (a drop of >= 0.2 from the best) also fires.
    expect(run([0.8, 0.55], [0.85, 0.9]).det.coDetected).toBe(true);
    expect(() => new CoDetector({ fraction: 2 })).toThrow(/fraction must be a number in \[0, 1\], got 2/);
    expect(() => new FastAt({ eps: 0.1, co: { every: 0 } })).toThrow(/co.every must be an integer >= 1, got 0/);
    expect(() => new FastAt({ eps: 0.1, alpha: 0 })).toThrow(/alpha must be a finite number > 0, got 0/);
    expect(() => new PgdAt({ eps: 0.1, alpha: 0.01, steps: 3 } as never)).toThrow(/bnMode must be 'eval' .* or 'train' .*, got undefined/);
    expect(() => new PgdAt({ eps: 0.1, alpha: 0.01, steps: 3, bnMode: 'eval', attackerSmooth: 1 as never })).toThrow(/attackerSmooth must be a boolean, got 1/);
  });

  it('FastAt queues checks on the GPU, flushes them into the detector, and restores the best checked parameters', async () => {
    const d = await testDevice();
    const model = new Sequential(new Linear(d, 8, 3, { seed: 2 }));
    const opt = new SGD(model.parameters(), { lr: 2 });
    const loop = new FastAt({ eps: 0.1, co: { every: 2, pgdSteps: 3 } });
    const ctx = ctxOf(d, model, opt);
    const snaps = new Map<number, Float32Array>();
    for (let k = 0; k < 5; k++) {
      ctx.step = k;
      snaps.set(k, await model.parameters()[0]!.f32());
      const x = Tensor.from(d, inputs(6, 8, 40 + k), [6, 8]);
      const y = Tensor.from(d, [0, 1, 2, 0, 1, 2], [6], 'i32');
      scope(() => loop.trainBatch(ctx, x, y));
      x.dispose();
      y.dispose();
    }
    const s = (await loop.flush())!;
    expect(s.history.map((h) => h.step)).toEqual([0, 2, 4]);
    for (const h of s.history) for (const v of [h.pgdAcc, h.fgsmAcc]) expect(v * 6).toBeCloseTo(Math.round(v * 6), 6);
    const best = loop.bestStep!;
    expect(best).toBe(s.best!.step);
    expect(loop.restoreBest()).toBe(true);
    expect(Array.from(await model.parameters()[0]!.f32())).toEqual(Array.from(snaps.get(best)!));
    loop.dispose();
    opt.dispose();
    model.dispose();
  });
});
