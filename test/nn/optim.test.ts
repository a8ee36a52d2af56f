// Optimizers: several steps against hand-computed float64 updates (SGD, momentum,
// Nesterov, weight decay, Adam, AdamW, groups, gradient-norm clipping).
import { describe, it, expect } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import { expectClose } from '../helpers/compare.ts';
import * as E from '../../engine/index.ts';
import { SGD, Adam, AdamW } from '../../nn/optim.ts';

const P0 = [0.5, -1.5, 2.0, 0.0, 3.0];
const GRADS = [
  [0.1, -0.2, 0.3, 0.4, -0.5],
  [1.0, 0.5, -0.25, 0.0, 2.0],
  [-0.3, 0.3, 0.1, -0.1, 0.7],
];

async function run(makeOpt: (p: E.Tensor) => { step(lr?: number): void; zeroGrad(): void }, grads = GRADS): Promise<Float32Array> {
  const d = await testDevice();
  const p = E.keep(E.Tensor.from(d, P0, [5]));
  p.requiresGrad = true;
  const opt = makeOpt(p);
  for (const g of grads) {
    // gradient of sum(p * g) w.r.t. p is g
    E.backward(E.sum(E.mul(p, E.Tensor.from(d, g, [5]))));
    opt.step();
    opt.zeroGrad();
  }
  return p.f32();
}

function sgdRef(lr: number, mu: number, wd: number, nesterov: boolean): number[] {
  const p = [...P0];
  const v = p.map(() => 0);
  for (const g of GRADS) {
    for (let i = 0; i < p.length; i++) {
      const gi = g[i]! + wd * p[i]!;
      v[i] = mu * v[i]! + gi;
      const dd = nesterov ? gi + mu * v[i]! : v[i]!;
      p[i]! -= lr * dd;
    }
  }
  return p;
}

function adamRef(lr: number, b1: number, b2: number, eps: number, wd: number, decoupled: boolean): number[] {
  const p = [...P0];
  const m = p.map(() => 0);
  const v = p.map(() => 0);
  GRADS.forEach((g, k) => {
    const t = k + 1;
    for (let i = 0; i < p.length; i++) {
      let gi = g[i]!;
      if (decoupled) p[i] = p[i]! - lr * wd * p[i]!;
      else gi += wd * p[i]!;
      m[i] = b1 * m[i]! + (1 - b1) * gi;
      v[i] = b2 * v[i]! + (1 - b2) * gi * gi;
      p[i] = p[i]! - (lr * (m[i]! / (1 - b1 ** t))) / (Math.sqrt(v[i]! / (1 - b2 ** t)) + eps);
    }
  });
  return p;
}

describe('optimizers', () => {
  it('plain SGD', async () => expectClose(await run((p) => new SGD([p], { lr: 0.1 })), sgdRef(0.1, 0, 0, false), { atol: 1e-6 }));
  it('SGD momentum + weight decay', async () =>
    expectClose(await run((p) => new SGD([p], { lr: 0.05, momentum: 0.9, weightDecay: 5e-4 })), sgdRef(0.05, 0.9, 5e-4, false), { atol: 1e-6 }));
  it('SGD Nesterov', async () =>
    expectClose(await run((p) => new SGD([p], { lr: 0.05, momentum: 0.9, nesterov: true })), sgdRef(0.05, 0.9, 0, true), { atol: 1e-6 }));
  it('Adam with L2 weight decay', async () =>
    expectClose(await run((p) => new Adam([p], { lr: 0.01, weightDecay: 0.1 })), adamRef(0.01, 0.9, 0.999, 1e-8, 0.1, false), { atol: 2e-6 }));
  it('AdamW (decoupled)', async () =>
    expectClose(await run((p) => new AdamW([p], { lr: 0.01, weightDecay: 0.1, betas: [0.8, 0.99] })), adamRef(0.01, 0.8, 0.99, 1e-8, 0.1, true), { atol: 2e-6 }));
  it('group lrScale and weightDecay override', async () =>
    expectClose(await run((p) => new SGD([{ params: [p], lrScale: 0.5, weightDecay: 0.01 }], { lr: 0.2, momentum: 0.5 })), sgdRef(0.1, 0.5, 0.01, false), { atol: 1e-6 }));
  it('gradient-norm clipping per group', async () => {
    const maxNorm = 0.5;
    const got = await run((p) => new SGD([{ params: [p], maxGradNorm: maxNorm }], { lr: 1 }));
    const p = [...P0];
    for (const g of GRADS) {
      const n = Math.sqrt(g.reduce((a, x) => a + x * x, 0));
      const s = Math.min(1, maxNorm / (n + 1e-6));
      for (let i = 0; i < p.length; i++) p[i]! -= g[i]! * s;
    }
    expectClose(got, p, { atol: 1e-6 });
  });
  it('bad hyper-parameters give clear errors', async () => {
    const d = await testDevice();
    const p = E.Tensor.from(d, [1], [1]);
    expect(() => new SGD([p], { lr: -1 })).toThrow(/SGD: lr must be a finite number >= 0, got -1/);
    expect(() => new SGD([p], { lr: 0.1, nesterov: true })).toThrow(/nesterov needs momentum/);
    expect(() => new Adam([p], { lr: 0.1, betas: [1, 0.9] })).toThrow(/betas\[0\] must be in \[0, 1\)/);
    expect(() => new SGD([], { lr: 0.1 })).toThrow(/non-empty/);
  });
});
