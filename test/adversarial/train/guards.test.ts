// Training guards (adversarial/train/guards.ts): the PSSiLU regulariser, bGradClip and
// parameter groups, and the robust-overfitting guard.
import { describe, it, expect } from 'vitest';
import { testDevice } from '../../helpers/device.ts';
import { Tensor, backward, clone, keep, scope } from '../../../engine/index.ts';
import { Module } from '../../../nn/module.ts';
import { Linear, Sequential } from '../../../nn/layers.ts';
import { Activation } from '../../../nn/activation.ts';
import { type EpochStats } from '../../../adversarial/trainer.ts';
import { type Attack } from '../../../adversarial/attacks/index.ts';
import { PgdAt, RobustOverfitGuard, activationParamGroups, clipPssiluBGrad, trainingObjective } from '../../../adversarial/train/index.ts';
import { inputs, setParam, expectAllClose } from '../../helpers/train_loops.ts';

// ---------------------------------------------------------------- PSSiLU regularisation

describe('PSSiLU regularisation', () => {
  it('adds exactly weight*|b| to the objective and weight*sign(b_raw) to b_raw.grad; bGradClip and param groups', async () => {
    const d = await testDevice();
    const act = new Activation(d, 'pssilu');
    const model = new Sequential(new Linear(d, 6, 5, { seed: 1 }), act, new Linear(d, 5, 3, { seed: 2 }));
    const braw = -0.0375;
    setParam(act.params!, [1.3, braw]);
    const x = Tensor.from(d, inputs(4, 6, 8), [4, 6]);
    const y = Tensor.from(d, [0, 2, 1, 2], [4], 'i32');
    const params = model.parameters();
    const measure = async (reg?: { weight: number }) => {
      for (const p of params) p.zeroGrad();
      const obj = scope(() => {
        const r = trainingObjective(model, x, y, reg);
        backward(r.objective);
        return keep(clone(r.objective));
      });
      const v = await obj.item();
      obj.dispose();
      const grads = await Promise.all(params.map((p) => p.grad!.f32()));
      return { v, grads };
    };
    const base = await measure();
    const withReg = await measure({ weight: 10 });
    expect(withReg.v - base.v).toBeCloseTo(10 * Math.abs(Math.fround(braw)), 5);
    const ai = params.indexOf(act.params!);
    expect(ai).toBeGreaterThanOrEqual(0);
    for (let i = 0; i < params.length; i++) {
      const want = Array.from(base.grads[i]!, (v, k) => v + (i === ai && k === 1 ? 10 * Math.sign(braw) : 0));
      expectAllClose(withReg.grads[i]!, want, 2e-5, `grad of param ${i}`);
    }
    // b's gradient clipped to [-0.01, 0.01], a's untouched.
    clipPssiluBGrad(model, 0.01);
    const clipped = await act.params!.grad!.f32();
    expect(clipped[0]).toBe(withReg.grads[ai]![0]);
    expect(clipped[1]).toBe(Math.fround(-0.01));
    // Optimizer groups: the activation tensor alone in its group.
    const groups = activationParamGroups(model, { maxGradNorm: 0.01 });
    expect(groups.map((g) => [g.name, g.params.length, g.maxGradNorm])).toEqual([
      ['model', 4, undefined],
      ['activation', 1, 0.01],
    ]);
    expect(groups[1]!.params[0]).toBe(act.params);
    // A model without PSSiLU cannot be regularised.
    const relu = new Sequential(new Linear(d, 6, 3));
    expect(() => scope(() => trainingObjective(relu, x, y, { weight: 10 }))).toThrow(/no learnable PSSiLU/);
    expect(() => new PgdAt({ eps: 0.1, alpha: 0.01, steps: 1, bnMode: 'eval', activationReg: { weight: -1 } })).toThrow(/activationReg.weight must be a finite number >= 0, got -1/);
    for (const p of params) p.zeroGrad();
    x.dispose();
    y.dispose();
    model.dispose();
    relu.dispose();
  });
});

// ---------------------------------------------------------------- robust-overfitting guard

describe('robust-overfitting guard', () => {
  it('tracks the best epoch by held-out robust accuracy, restores it, and stops after `patience`', async () => {
    const d = await testDevice();
    const lin = new Linear(d, 2, 2, { bias: false });
    const model = new Sequential(lin);
    // The identity "attack" makes robust accuracy = clean accuracy (enough to test the bookkeeping).
    const ident: Attack = {
      name: 'identity',
      threat: { norm: 'linf', eps: 0, bounds: [0, 1] },
      generate: (_m, x) => clone(x),
      perturb: async (_m, x) => clone(x),
    };
    const held = { images: Float32Array.from([1, 0, 0, 1, 0.9, 0.1, 0.2, 0.8]), labels: Int32Array.from([0, 1, 0, 1]), n: 4, shape: [1, 1, 2] as [number, number, number] };
    // The model sees [N, 1, 1, 2]; flatten it inside a wrapper.
    class Wrap extends Module {
      constructor(readonly inner: Module) {
        super();
        this.registerModule('inner', inner);
      }
      forward(x: Tensor): Tensor {
        return this.inner.forward(x.view([x.shape[0]!, 2]));
      }
    }
    const wrapped = new Wrap(model);
    const guard = new RobustOverfitGuard(d, wrapped, held, { attack: ident, patience: 1 });
    setParam(lin.weight, [1, 0, 0, 1]);
    const s0: EpochStats = { epoch: 0, trainLoss: 0, trainAcc: 0, seconds: 0, lr: 0 };
    expect(await guard.onEpoch(s0)).toBeUndefined();
    expect(s0.valRobust).toBe(1);
    setParam(lin.weight, [-1, 0, 0, -1]);
    const s1: EpochStats = { epoch: 1, trainLoss: 0, trainAcc: 0, seconds: 0, lr: 0 };
    expect(await guard.onEpoch(s1)).toBe('stop');
    expect(s1.valRobust).toBe(0);
    expect(s1.bestEpoch).toBe(0);
    expect(guard.best).toEqual({ epoch: 0, cleanAcc: 1, robustAcc: 1 });
    expect(guard.restoreBest()).toBe(true);
    expect(Array.from(await lin.weight.f32())).toEqual([1, 0, 0, 1]);
    model.dispose();
  });
});
