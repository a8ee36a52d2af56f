// Numerical faults: the NaN/Inf guard's GPU gradient norms against a float64 reference
// (finite norms for huge and tiny gradients, NaN for any NaN/Inf entry); the guard names
// the step, the first parameter with a non-finite gradient and the last good checkpoint,
// also inside a real training run; activations fed |x| up to 3e38, and SmallCnn fed 1e30
// inputs with every activation, produce no NaN forward or backward.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import { Tensor, backward, grad, keep, sum, type Device } from '../../engine/index.ts';
import { activation } from '../../engine/ops/activation.ts';
import { softmaxCrossEntropy } from '../../engine/ops/loss.ts';
import { ACTIVATION_KINDS, activationDef } from '../../kernels/activations.ts';
import { Sequential, Conv2d, Flatten, Linear } from '../../nn/layers.ts';
import { Activation } from '../../nn/activation.ts';
import { SmallCnn } from '../../nn/models/small_cnn.ts';
import { SGD } from '../../nn/optim.ts';
import { constantLr } from '../../nn/schedule.ts';
import type { ImageSet } from '../../nn/data/loader.ts';
import { StandardTraining } from '../../adversarial/trainer.ts';
import { gradNorms, nanGuard, NonFiniteError } from '../../adversarial/guard_nan.ts';
import { resumeTraining, trainWithCheckpoints } from '../../adversarial/resume.ts';

const dir = mkdtempSync(join(tmpdir(), 'kinkless-rel-num-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** float64 L2 norm, scaled like the guard's (exact for the inputs used here). */
function norm64(v: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < v.length; i++) m = Math.max(m, Math.abs(v[i]!));
  if (m === 0) return 0;
  let s = 0;
  for (let i = 0; i < v.length; i++) s += (v[i]! / m) ** 2;
  return m * Math.sqrt(s);
}

function withGrad(d: Device, values: number[]): Tensor {
  const p = keep(Tensor.from(d, values.map(() => 0)));
  p.requiresGrad = true;
  p.grad = keep(Tensor.from(d, values));
  return p;
}

describe('NaN/Inf guard', () => {
  it('gradNorms: finite norms for huge and tiny gradients (float64 reference), NaN for any NaN or Inf entry, 0 without a gradient', async () => {
    const d = await testDevice();
    const cases: number[][] = [
      [3, -4],
      Array.from({ length: 1000 }, (_, i) => Math.fround(Math.sin(i) * 1e30)), // squares overflow f32
      Array.from({ length: 333 }, (_, i) => Math.fround(Math.cos(i) * 1e-30)), // squares underflow f32
      [0, 0, 0],
      [1, NaN, 2],
      [1, Infinity, 2],
      [-Infinity, 0],
      [3.0e38, 3.0e38], // the norm itself (4.2e38) overflows f32
    ];
    const params = cases.map((c) => withGrad(d, c));
    const bare = keep(Tensor.from(d, [1, 2]));
    params.push(bare);
    const g = await gradNorms(d, params).f32();
    for (let i = 0; i < 4; i++) {
      const want = norm64(Float32Array.from(cases[i]!));
      expect(Math.abs(g[i]! - want)).toBeLessThanOrEqual(1e-5 * want);
    }
    for (let i = 4; i < 8; i++) expect(Number.isFinite(g[i]!)).toBe(false);
    expect(g[8]).toBe(0);
    for (const p of params) p.dispose();
  });

  it('names the step, the first parameter with a non-finite gradient and the checkpoint', async () => {
    const d = await testDevice();
    const model = new Sequential(new Linear(d, 3, 4, { seed: 1 }), new Activation(d, 'relu'), new Linear(d, 4, 2, { seed: 2 }));
    const guard = nanGuard({ model, every: 5, checkpoint: '/runs/a/model.safetensors' });
    const names = model.namedParameters().map(([n]) => n);
    expect(names).toEqual(['0.weight', '0.bias', '2.weight', '2.bias']);
    const info = (step: number, loss: number) => ({ epoch: 0, step, stepInEpoch: step + 1, stepsPerEpoch: 100, lr: 0.1, loss });
    for (const p of model.parameters()) p.grad = keep(Tensor.from(d, new Float32Array(p.size).fill(0.5), p.shape));
    await guard.onStep!(info(5, 0.7));
    expect(guard.lastGoodStep).toBe(5);
    await guard.onStep!(info(6, NaN)); // not a multiple of `every`: skipped
    expect(guard.checks).toBe(1);
    const p2 = model.parameters()[2]!;
    p2.grad!.dispose();
    p2.grad = keep(Tensor.from(d, Float32Array.from({ length: 8 }, (_, i) => (i === 5 ? Infinity : 1)), p2.shape));
    const bias = model.parameters()[3]!;
    bias.grad!.dispose();
    bias.grad = keep(Tensor.from(d, [NaN, 0]));
    const err = (await Promise.resolve(guard.onStep!(info(10, 1.25))).catch((e: unknown) => e)) as NonFiniteError;
    expect(err).toBeInstanceOf(NonFiniteError);
    expect(err.message).toBe(
      'kinkless: nanGuard: non-finite training state at step 10 (epoch 0, batch 11 of 100, lr 0.1); loss = 1.25; first parameter with a non-finite gradient: "2.weight" (gradient L2 norm NaN; 2 of 4 parameters affected); last good check at step 5; last good checkpoint: /runs/a/model.safetensors',
    );
    expect([err.step, err.parameter, err.checkpoint]).toEqual([10, '2.weight', '/runs/a/model.safetensors']);
    // A non-finite loss alone also stops training.
    for (const p of model.parameters()) p.zeroGrad();
    await expect(Promise.resolve(guard.onStep!(info(15, Infinity)))).rejects.toThrow(/step 15 .*loss = Infinity; every gradient is finite; last good check at step 5; last good checkpoint/);
    model.dispose();
    expect(() => nanGuard({ model, every: 0 })).toThrow(/nanGuard: every must be an integer >= 1, got 0/);
  });

  it('in training: poisoned data after a checkpoint stops training at that step, naming the first parameter and the last good checkpoint (which resumes)', async () => {
    const d = await testDevice();
    const n = 24;
    const data: ImageSet = { images: Float32Array.from({ length: n * 64 }, (_, i) => ((i * 13) % 29) / 29), labels: Int32Array.from({ length: n }, (_, i) => i % 10), n, shape: [1, 8, 8] };
    const make = () => {
      const model = new Sequential(new Conv2d(d, 1, 4, 3, { seed: 3 }), new Activation(d, 'silu'), new Flatten(), new Linear(d, 144, 10, { seed: 4 }));
      const opt = new SGD(model.parameters(), { lr: 0.05, momentum: 0.9 });
      // NOTE: StandardTraining: an adversarial loop's box projection clamps NaN pixels into [0, 1].
      return { model, opt, loop: new StandardTraining(), ctx: { device: d, model, opt, schedule: constantLr(0.05) } };
    };
    const s = make();
    const path = join(dir, 'guarded.safetensors');
    const clean = data.images.slice();
    const run = trainWithCheckpoints(s.loop, s.ctx, data, {
      epochs: 3,
      batchSize: 8,
      seed: 0,
      logEvery: 1,
      nanGuardEvery: 1,
      checkpoint: { path },
      // After epoch 0 is saved (3 steps), one pixel of every image becomes NaN.
      hooks: { onEpoch: (st) => void (st.epoch === 0 && data.images.forEach((_, i) => i % 64 === 10 && (data.images[i] = NaN))) },
    });
    const err = (await run.catch((e: unknown) => e)) as NonFiniteError;
    expect(err).toBeInstanceOf(NonFiniteError);
    console.log(`guard: ${err.message}`);
    expect(err.message).toMatch(/^kinkless: nanGuard: non-finite training state at step 3 \(epoch 1, batch 1 of 3, lr 0.05\); loss = NaN; first parameter with a non-finite gradient: "0.weight" \(gradient L2 norm NaN; [1-4] of 4 parameters affected\); last good check at step 2; last good checkpoint: .*guarded\.safetensors$/);
    // The named checkpoint is good: it resumes and trains on (clean data) with finite losses.
    data.images.set(clean);
    const t = make();
    const r = resumeTraining(path, t);
    expect(r.startStep).toBe(3);
    const res = await trainWithCheckpoints(t.loop, t.ctx, data, { epochs: 2, batchSize: 8, seed: 0, nanGuardEvery: 1, logEvery: 1, startStep: r.startStep, iteratorState: r.iteratorState });
    expect(Number.isFinite(res.epochs[0]!.trainLoss)).toBe(true);
    for (const x of [s, t]) {
      x.model.dispose();
      x.opt.dispose();
    }
  });

  it('out-of-range labels (not checked on the host) are caught by the guard as a NaN loss', async () => {
    const d = await testDevice();
    const n = 8;
    const data: ImageSet = { images: new Float32Array(n * 64).fill(0.5), labels: Int32Array.from({ length: n }, (_, i) => (i === 3 ? 10 : i)), n, shape: [1, 8, 8] };
    const model = new Sequential(new Flatten(), new Linear(d, 64, 10, { seed: 1 }));
    const opt = new SGD(model.parameters(), { lr: 0.1 });
    const run = trainWithCheckpoints(new StandardTraining(), { device: d, model, opt, schedule: constantLr(0.1) }, data, { epochs: 1, batchSize: 8, seed: 0, nanGuardEvery: 1 });
    await expect(run).rejects.toThrow(/non-finite training state at step 0 .*loss = NaN/);
    model.dispose();
    opt.dispose();
  });
});

describe('overflowing activation inputs', () => {
  const extremes = [0, 1e-30, -1e-30, 1, -1, 20, -20, 88, 89, -88, -89, 1e4, -1e4, 1e20, -1e20, 1e30, -1e30, 3e38, -3e38];

  it('every activation: forward and backward at |x| up to 3e38 have no NaN, and match the float64 reference where it is finite', async () => {
    const d = await testDevice();
    for (const kind of ACTIVATION_KINDS) {
      const def = activationDef(kind);
      const x = Tensor.from(d, extremes);
      x.requiresGrad = true;
      const y = activation(x, { kind, params: def.defaults });
      const [dx] = grad(sum(y), [x]);
      const yv = await y.f32();
      const dv = await dx!.f32();
      extremes.forEach((xi, i) => {
        const what = `${kind}(${xi})`;
        expect(Number.isNaN(yv[i]!), `${what} forward is NaN`).toBe(false);
        expect(Number.isNaN(dv[i]!), `${what} derivative is NaN`).toBe(false);
        const want = def.f(Math.fround(xi), def.defaults);
        if (Number.isFinite(Math.fround(want)) && Math.abs(xi) <= 1e30) {
          expect(Math.abs(yv[i]! - want), what).toBeLessThanOrEqual(1e-5 * Math.abs(want) + 1e-6);
        }
        const wantD = def.df(Math.fround(xi), def.defaults);
        if (Number.isFinite(wantD) && Math.abs(xi) <= 1e30) expect(Math.abs(dv[i]! - wantD), `${what}'`).toBeLessThanOrEqual(1e-4 * Math.abs(wantD) + 1e-5);
      });
      for (const t of [x, y, dx!]) t.dispose();
    }
  });

  it('SmallCnn with every activation: 1e30 and -1e30 inputs give no NaN in logits, loss, parameter or input gradients', async () => {
    const d = await testDevice();
    const xs = new Float32Array(2 * 784);
    for (let i = 0; i < xs.length; i++) xs[i] = i < 784 ? 1e30 : i % 2 ? -1e30 : 1e30;
    for (const kind of ACTIVATION_KINDS) {
      const model = new SmallCnn(d, { activation: kind, seed: 1 });
      const x = Tensor.from(d, xs, [2, 1, 28, 28]);
      x.requiresGrad = true;
      const y = Tensor.from(d, [3, 7], [2], 'i32');
      const logits = model.forward(x);
      const loss = softmaxCrossEntropy(logits, y);
      backward(loss);
      const check = async (t: Tensor, what: string) => {
        const v = await t.f32();
        const nan = v.findIndex((e) => Number.isNaN(e));
        expect(nan, `${kind}: ${what} has NaN at ${nan}`).toBe(-1);
      };
      await check(logits, 'logits');
      await check(loss, 'loss');
      await check(x.grad!, 'dL/dx');
      for (const [name, p] of model.namedParameters()) await check(p.grad!, `grad of ${name}`);
      for (const t of [x, y, logits, loss]) t.dispose();
      model.dispose();
    }
  });
});
