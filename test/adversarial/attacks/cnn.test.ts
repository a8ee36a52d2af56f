// Attack invariants on the small MNIST CNN (ReLU, SiLU and the SAT surrogate ReLU with a
// softplus backward): the perturbation stays in the eps-ball (L-inf and L2, within
// float32 rounding) and x_adv in the box; untargeted attacks raise the loss and targeted
// ones lower the target's loss; restarts never lower any example's loss; gradients never
// reach the parameters (.grad stays null, requiresGrad restored); the model's train/eval
// flags are restored; live GPU buffers stay flat across repeated attacks. All checks are
// made on the host in float64 from the returned tensors.
import { describe, it, expect } from 'vitest';
import { testDevice } from '../../helpers/device.ts';
import { randArray } from '../../helpers/compare.ts';
import { Tensor, type Device } from '../../../engine/index.ts';
import { softmaxCrossEntropy } from '../../../engine/ops/loss.ts';
import { noGrad } from '../../../engine/index.ts';
import { SmallCnn } from '../../../nn/models/small_cnn.ts';
import { Module } from '../../../nn/module.ts';
import { BatchNorm2d, Conv2d, Flatten, Linear, Sequential } from '../../../nn/layers.ts';
import type { ActivationSpec } from '../../../nn/activation.ts';
import { Apgd, Fgm, Fgsm, Pgd, apgdCheckpoints, type Attack } from '../../../adversarial/attacks/index.ts';

const N = 5;
const D = 28 * 28;

interface Batch {
  x64: Float64Array;
  X: Tensor;
  Y: Tensor;
  labels: Int32Array;
}

function makeBatch(d: Device, seed: number): Batch {
  const x64 = Float64Array.from(randArray(N * D, seed, -0.3, 1.3), (v) => Math.fround(Math.min(1, Math.max(0, v))));
  const labels = Int32Array.from({ length: N }, (_, i) => (i * 3 + seed) % 10);
  return { x64, labels, X: Tensor.from(d, Float32Array.from(x64), [N, 1, 28, 28]), Y: Tensor.from(d, labels, [N], 'i32') };
}

async function losses(model: Module, x: Tensor, y: Tensor): Promise<Float32Array> {
  const wasTraining = model.training;
  model.eval();
  const l = noGrad(() => softmaxCrossEntropy(model.forward(x), y, { reduction: 'none' }));
  const v = await l.f32();
  l.dispose();
  model.train(wasTraining);
  return v;
}

/** Per-example norms of xa - x in float64. */
function deltaNorms(xa: Float32Array, x64: Float64Array): { linf: number[]; l2: number[] } {
  const linf: number[] = [];
  const l2: number[] = [];
  for (let n = 0; n < N; n++) {
    let m = 0;
    let s = 0;
    for (let i = n * D; i < (n + 1) * D; i++) {
      const dlt = xa[i]! - x64[i]!;
      m = Math.max(m, Math.abs(dlt));
      s += dlt * dlt;
    }
    linf.push(m);
    l2.push(Math.sqrt(s));
  }
  return { linf, l2 };
}

const ACTIVATIONS: [string, ActivationSpec | 'relu' | 'silu'][] = [
  ['relu', 'relu'],
  ['silu', 'silu'],
  ['relu forward, softplus(10) backward', { kind: 'relu', backward: { kind: 'softplus', params: [10] } }],
];

function attacksFor(seed: number): Attack[] {
  return [
    new Fgsm({ eps: 0.1 }),
    new Fgm({ eps: 1.5 }),
    new Pgd({ eps: 0.1, alpha: 0.03, steps: 4, seed }),
    new Pgd({ norm: 'l2', eps: 1.5, alpha: 0.5, steps: 4, seed }),
    new Apgd({ eps: 0.1, steps: 5, seed }),
    new Apgd({ norm: 'l2', eps: 1.5, steps: 5, seed }),
  ];
}

describe('attack invariants on the small CNN', () => {
  for (const [label, act] of ACTIVATIONS) {
    it(`ball, box, loss increase, parameters untouched (${label})`, async () => {
      const d = await testDevice();
      const model = new SmallCnn(d, { activation: act, seed: 3 });
      model.train(true); // the attacks must restore this
      const b = makeBatch(d, 7);
      const clean = await losses(model, b.X, b.Y);
      for (const atk of attacksFor(1)) {
        const XA = atk.generate(model, b.X, b.Y);
        const xa = await XA.f32();
        const eps = atk.threat.eps;
        const { linf, l2 } = deltaNorms(xa, b.x64);
        for (let n = 0; n < N; n++) {
          if (atk.threat.norm === 'linf') expect(linf[n], `${atk.name} ||delta||_inf, example ${n}`).toBeLessThanOrEqual(eps * (1 + 1e-6) + 1e-7);
          // NOTE: the L2 projection rescales in float32: a relative error of a few ulp.
          else expect(l2[n], `${atk.name} ||delta||_2, example ${n}`).toBeLessThanOrEqual(eps * (1 + 1e-5));
        }
        for (let i = 0; i < xa.length; i++) {
          if (!(xa[i]! >= 0 && xa[i]! <= 1)) throw new Error(`${atk.name}: x_adv[${i}] = ${xa[i]} is outside [0, 1]`);
        }
        const adv = await losses(model, XA, b.Y);
        for (let n = 0; n < N; n++) expect(adv[n], `${atk.name} raises the loss of example ${n}`).toBeGreaterThan(clean[n]!);
        XA.dispose();
        expect(model.training, `${atk.name} restores train mode`).toBe(true);
        for (const p of model.parameters()) {
          expect(p.grad, `${atk.name}: ${p.name}.grad`).toBeNull();
          expect(p.requiresGrad, `${atk.name}: ${p.name}.requiresGrad restored`).toBe(true);
        }
      }
      model.dispose();
    });
  }

  it('targeted attacks lower the target class loss', async () => {
    const d = await testDevice();
    const model = new SmallCnn(d, { activation: 'silu', seed: 5 });
    model.eval();
    const b = makeBatch(d, 11);
    const targets = Int32Array.from(b.labels, (l) => (l + 3) % 10);
    const T = Tensor.from(d, targets, [N], 'i32');
    const before = await losses(model, b.X, T);
    for (const atk of [new Fgsm({ eps: 0.1, targeted: true }), new Pgd({ eps: 0.1, alpha: 0.03, steps: 4, targeted: true }), new Apgd({ norm: 'l2', eps: 1.5, steps: 5, targeted: true })]) {
      const XA = atk.generate(model, b.X, T);
      const after = await losses(model, XA, T);
      for (let n = 0; n < N; n++) expect(after[n], `${atk.name}, example ${n}`).toBeLessThan(before[n]!);
      XA.dispose();
    }
    model.dispose();
  });

  it('restarts never lower any example loss (same seed: restart 0 is the single run)', async () => {
    const d = await testDevice();
    const model = new SmallCnn(d, { activation: 'relu', seed: 9 });
    model.eval();
    const b = makeBatch(d, 13);
    const pairs: [Attack, Attack][] = [
      [new Pgd({ eps: 0.1, alpha: 0.02, steps: 3, seed: 21 }), new Pgd({ eps: 0.1, alpha: 0.02, steps: 3, seed: 21, restarts: 3 })],
      [new Pgd({ norm: 'l2', eps: 1.5, alpha: 0.3, steps: 3, seed: 22 }), new Pgd({ norm: 'l2', eps: 1.5, alpha: 0.3, steps: 3, seed: 22, restarts: 3 })],
      [new Apgd({ eps: 0.1, steps: 4, seed: 23 }), new Apgd({ eps: 0.1, steps: 4, seed: 23, restarts: 2 })],
    ];
    for (const [one, many] of pairs) {
      const X1 = one.generate(model, b.X, b.Y);
      const XR = many.generate(model, b.X, b.Y);
      const l1 = await losses(model, X1, b.Y);
      const lr = await losses(model, XR, b.Y);
      for (let n = 0; n < N; n++) expect(lr[n], `${many.name}, example ${n}`).toBeGreaterThanOrEqual(l1[n]!);
      X1.dispose();
      XR.dispose();
    }
    model.dispose();
  });

  it('bnMode sets the mode during the attack and restores every module flag after', async () => {
    const d = await testDevice();
    const inner = new SmallCnn(d, { activation: 'relu', seed: 1 });
    const seen: boolean[] = [];
    class Probe extends Module {
      constructor() {
        super();
        this.registerModule('net', inner);
      }
      forward(x: Tensor): Tensor {
        seen.push(this.training, inner.training);
        return inner.forward(x);
      }
    }
    const model = new Probe();
    const b = makeBatch(d, 17);
    for (const [start, bnMode] of [[true, 'eval'], [false, 'train']] as const) {
      model.train(start);
      seen.length = 0;
      (await new Pgd({ eps: 0.05, alpha: 0.02, steps: 2, bnMode }).perturb(model, b.X, b.Y)).dispose();
      expect(seen.length).toBe(4);
      expect(seen.every((v) => v === (bnMode === 'train'))).toBe(true);
      expect(model.training).toBe(start);
      expect(inner.training).toBe(start);
    }
    // A mixed state (one child in eval, the parent in train) comes back exactly.
    model.train(true);
    inner.eval();
    (new Fgsm({ eps: 0.05, bnMode: 'train' }).generate(model, b.X, b.Y)).dispose();
    expect([model.training, inner.training]).toEqual([true, false]);
    model.dispose();
  });

  it("batch norm: 'eval' leaves running statistics untouched, 'train' updates them", async () => {
    const d = await testDevice();
    const model = new Sequential(new Conv2d(d, 1, 4, 3, { seed: 1 }), new BatchNorm2d(d, 4), new Flatten(), new Linear(d, 4 * 26 * 26, 10, { seed: 2 }));
    const bn = model.layers[1] as BatchNorm2d;
    const b = makeBatch(d, 23);
    model.eval();
    const m0 = await bn.runningMean.f32();
    (new Pgd({ eps: 0.1, alpha: 0.03, steps: 2, bnMode: 'eval' }).generate(model, b.X, b.Y)).dispose();
    expect(Array.from(await bn.runningMean.f32())).toEqual(Array.from(m0));
    (new Pgd({ eps: 0.1, alpha: 0.03, steps: 2, bnMode: 'train' }).generate(model, b.X, b.Y)).dispose();
    const m1 = await bn.runningMean.f32();
    expect(m1.some((v, i) => v !== m0[i])).toBe(true);
    expect(model.training).toBe(false);
    expect(bn.training).toBe(false);
    model.dispose();
  });

  it('live GPU buffers stay flat across repeated attacks', async () => {
    const d = await testDevice();
    const model = new SmallCnn(d, { activation: 'silu', seed: 2 });
    const b = makeBatch(d, 19);
    const atks = [new Pgd({ eps: 0.1, alpha: 0.03, steps: 2, restarts: 2 }), new Apgd({ norm: 'l2', eps: 1, steps: 4, restarts: 2 }), new Fgm({ eps: 1 })];
    const run = async () => {
      for (const a of atks) (await a.perturb(model, b.X, b.Y)).dispose();
      await d.sync();
      return d.stats();
    };
    const first = await run();
    for (let r = 0; r < 3; r++) {
      const s = await run();
      expect(s.liveBuffers).toBe(first.liveBuffers);
      expect(s.liveBytes).toBe(first.liveBytes);
    }
    model.dispose();
  });

  it('APGD checkpoints follow p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)', () => {
    // p = 0, .22, .41, .57, .70, .80, .87, .93, .99 (hand-computed).
    expect(apgdCheckpoints(100)).toEqual([0, 22, 41, 57, 70, 80, 87, 93, 99]);
    expect(apgdCheckpoints(10)).toEqual([0, 3, 5, 6, 7, 8, 9, 10]);
    expect(() => apgdCheckpoints(0)).toThrow(/nIter must be an integer >= 1, got 0/);
  });
});
