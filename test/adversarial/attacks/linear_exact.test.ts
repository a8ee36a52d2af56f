// Exact checks of the attacks on a linear binary classifier, where the worst cases are
// known in closed form (docs/numerics.md, attacks). The model's logits are [0, w.x + b], so
// label 1 is y = +1 and label 0 is y = -1 and the cross-entropy is softplus(-y (w.x + b)).
// Inputs lie in [0.4, 0.6] with eps = 0.05, away from the [0, 1] box edges, so:
//   FGSM: delta = -eps y sign(w) (L-inf worst case; sign(0) = 0),
//   FGM:  delta = -eps y w/||w||_2 (L2 worst case),
//   PGD:  reaches the L-inf vertex within ceil(2 eps/alpha) steps, loss non-decreasing;
//   PGD-1 from zero with alpha >= eps is FGSM.
// Every expected value is computed here in float64 from the float32 inputs.
import { describe, it, expect } from 'vitest';
import { BinaryLinear } from '../../helpers/binary_linear.ts';
import { testDevice } from '../../helpers/device.ts';
import { expectClose, f32, randArray } from '../../helpers/compare.ts';
import { Tensor, clone, keep, type Device } from '../../../engine/index.ts';
import { Apgd, Fgm, Fgsm, Pgd, objectiveAndGrad, withAttackMode } from '../../../adversarial/attacks/index.ts';

const SHAPE = [3, 5, 7]; // one example: D = 105 features (not a multiple of 4)
const D = 105;
const N = 6;
const EPS = 0.05;

function softplus(z: number): number {
  return Math.max(z, 0) + Math.log1p(Math.exp(-Math.abs(z)));
}

interface Setup {
  d: Device;
  model: BinaryLinear;
  w: Float64Array;
  b: number;
  x64: Float64Array;
  labels: Int32Array;
  X: Tensor;
  Y: Tensor;
}

async function setup(seed: number, zeroW = true): Promise<Setup> {
  const d = await testDevice();
  const w = f32(randArray(D, seed, -1, 1));
  // |w_i| >= 0.05 except one exact zero (sign(0) = 0 must give no step there).
  for (let i = 0; i < D; i++) if (Math.abs(w[i]!) < 0.05) w[i] = w[i]! < 0 ? -0.05 : 0.05;
  if (zeroW) w[17] = 0;
  const b = 0.1;
  const x64 = f32(randArray(N * D, seed + 7, 0.4, 0.6));
  const labels = Int32Array.from({ length: N }, (_, i) => i % 2);
  const model = new BinaryLinear(d, w, b);
  const X = Tensor.from(d, Float32Array.from(x64), [N, ...SHAPE]);
  const Y = Tensor.from(d, labels, [N], 'i32');
  return { d, model, w, b, x64, labels, X, Y };
}

const ysign = (label: number) => (label === 1 ? 1 : -1);

/** Float64 reference of the worst-case L-inf and L2 perturbations. */
function worstLinf(s: Setup): Float64Array {
  const out = new Float64Array(N * D);
  for (let n = 0; n < N; n++) for (let i = 0; i < D; i++) out[n * D + i] = -EPS * ysign(s.labels[n]!) * Math.sign(s.w[i]!);
  return out;
}
function worstL2(s: Setup): Float64Array {
  const norm = Math.hypot(...s.w);
  const out = new Float64Array(N * D);
  for (let n = 0; n < N; n++) for (let i = 0; i < D; i++) out[n * D + i] = (-EPS * ysign(s.labels[n]!) * s.w[i]!) / norm;
  return out;
}
function plus(a: Float64Array, b: Float64Array): Float64Array {
  return a.map((v, i) => v + b[i]!);
}
/** Float64 cross-entropy of each example at input xs. */
function lossAt(s: Setup, xs: ArrayLike<number>): number[] {
  return Array.from({ length: N }, (_, n) => {
    let z = s.b;
    for (let i = 0; i < D; i++) z += s.w[i]! * xs[n * D + i]!;
    return softplus(-ysign(s.labels[n]!) * z);
  });
}

describe('attacks on a linear model (exact worst cases)', () => {
  it('FGSM gives -eps y sign(w), sign(0) = 0, and the analytic worst-case loss', async () => {
    const s = await setup(3);
    const xa = await new Fgsm({ eps: EPS }).generate(s.model, s.X, s.Y).f32();
    const want = plus(s.x64, worstLinf(s));
    // NOTE: x + eps rounds to float32 once: half an ulp of 0.65.
    expectClose(xa, want, { atol: 4e-8, rtol: 0 }, 'FGSM x_adv');
    for (let n = 0; n < N; n++) expect(xa[n * D + 17]).toBe(Math.fround(s.x64[n * D + 17]!));
    // The loss there is softplus(-y z + eps ||w||_1), the L-inf maximum.
    const l1 = s.w.reduce((a, v) => a + Math.abs(v), 0);
    const clean = lossAt(s, s.x64);
    const adv = lossAt(s, xa);
    for (let n = 0; n < N; n++) {
      const zc = Math.log(Math.expm1(clean[n]!)); // -y z at x
      expect(adv[n]).toBeCloseTo(softplus(zc + EPS * l1), 5);
    }
  });

  it('FGM gives -eps y w/||w||_2', async () => {
    const s = await setup(5);
    const xa = await new Fgm({ eps: EPS }).generate(s.model, s.X, s.Y).f32();
    expectClose(xa, plus(s.x64, worstL2(s)), { atol: 2e-7, rtol: 0 }, 'FGM x_adv');
  });

  it('targeted FGSM toward the other class equals the untargeted attack (binary)', async () => {
    const s = await setup(7);
    const T = Tensor.from(s.d, s.labels.map((l) => 1 - l), [N], 'i32');
    const a = await new Fgsm({ eps: EPS }).generate(s.model, s.X, s.Y).f32();
    const t = await new Fgsm({ eps: EPS, targeted: true }).generate(s.model, s.X, T).f32();
    expect(Array.from(t)).toEqual(Array.from(a));
  });

  for (const randomStart of [false, true]) {
    it(`PGD L-inf reaches the vertex within ceil(2 eps/alpha) steps with non-decreasing loss (randomStart ${randomStart})`, async () => {
      const s = await setup(11, false);
      const alpha = 0.01;
      const steps = Math.ceil((2 * EPS) / alpha); // 10
      const objs: Tensor[] = [];
      const atk = new Pgd({ eps: EPS, alpha, steps, randomStart, seed: 4, trace: (t) => objs.push(keep(clone(t.obj))) });
      const xa = await atk.generate(s.model, s.X, s.Y).f32();
      expectClose(xa, plus(s.x64, worstLinf(s)), { atol: 6e-8, rtol: 0 }, 'PGD x_adv');
      expect(objs.length).toBe(steps + 1);
      const traj = await Promise.all(objs.map((o) => o.f32()));
      for (let k = 1; k <= steps; k++) {
        for (let n = 0; n < N; n++) expect(traj[k]![n]!, `example ${n} step ${k}`).toBeGreaterThanOrEqual(traj[k - 1]![n]! - 1e-6);
      }
      // The final loss is the float64 worst case.
      expectClose(traj[steps]!, lossAt(s, plus(s.x64, worstLinf(s))), { atol: 1e-5, rtol: 1e-5 }, 'final loss');
      if (!randomStart) {
        // From zero, after k steps every coordinate has moved exactly k alpha (not yet at the vertex before 5).
        const x3 = await new Pgd({ eps: EPS, alpha, steps: 3, randomStart: false }).generate(s.model, s.X, s.Y).f32();
        const want = s.x64.map((v, i) => v - 3 * alpha * ysign(s.labels[Math.floor(i / D)]!) * Math.sign(s.w[i % D]!));
        expectClose(x3, want, { atol: 2e-7, rtol: 0 }, 'PGD-3 from zero');
      }
    });
  }

  it('PGD-1 from a zero start with alpha >= eps equals FGSM', async () => {
    const s = await setup(13);
    const f = await new Fgsm({ eps: EPS }).generate(s.model, s.X, s.Y).f32();
    for (const alpha of [EPS, 0.08, 1.0]) {
      const p = await new Pgd({ eps: EPS, alpha, steps: 1, randomStart: false }).generate(s.model, s.X, s.Y).f32();
      expect(Array.from(p), `alpha ${alpha}`).toEqual(Array.from(f));
    }
  });

  it('PGD L2 from zero reaches the FGM point and stays there', async () => {
    const s = await setup(17);
    const xa = await new Pgd({ norm: 'l2', eps: EPS, alpha: 0.02, steps: 6, randomStart: false }).generate(s.model, s.X, s.Y).f32();
    expectClose(xa, plus(s.x64, worstL2(s)), { atol: 3e-7, rtol: 0 }, 'PGD-L2 x_adv');
  });

  it('APGD-CE finds the L-inf vertex', async () => {
    const s = await setup(19, false);
    const xa = await new Apgd({ eps: EPS, steps: 12, seed: 2 }).generate(s.model, s.X, s.Y).f32();
    expectClose(xa, plus(s.x64, worstLinf(s)), { atol: 6e-8, rtol: 0 }, 'APGD x_adv');
    const xl2 = await new Apgd({ norm: 'l2', eps: EPS, steps: 25, seed: 2, randomStart: false }).generate(s.model, s.X, s.Y).f32();
    // From zero the first step (eta = 2 eps) lands on the sphere in the worst direction.
    expectClose(xl2, plus(s.x64, worstL2(s)), { atol: 3e-7, rtol: 0 }, 'APGD-L2 x_adv');
  });

  it('per-example gradients do not depend on the batch (sum of per-example losses)', async () => {
    const s = await setup(23);
    const full = withAttackMode(s.model, 'eval', () => objectiveAndGrad(s.model, s.X, null, s.Y, false, true));
    const g = await full.g!.f32();
    const obj = await full.obj.f32();
    for (const n of [0, 3]) {
      const X1 = Tensor.from(s.d, Float32Array.from(s.x64.subarray(n * D, (n + 1) * D)), [1, ...SHAPE]);
      const Y1 = Tensor.from(s.d, [s.labels[n]!], [1], 'i32');
      const one = withAttackMode(s.model, 'eval', () => objectiveAndGrad(s.model, X1, null, Y1, false, true));
      expectClose(await one.g!.f32(), g.subarray(n * D, (n + 1) * D), { atol: 1e-7, rtol: 1e-6 }, `grad of example ${n}`);
      expectClose(await one.obj.f32(), [obj[n]!], { atol: 1e-7, rtol: 1e-6 }, `loss of example ${n}`);
      // dL/dx = -y s(-y z) w in float64
      const z = s.b + s.w.reduce((a, wi, i) => a + wi * s.x64[n * D + i]!, 0);
      const y = ysign(s.labels[n]!);
      const sig = 1 / (1 + Math.exp(y * z));
      expectClose(await one.g!.f32(), Array.from(s.w, (wi) => -y * sig * wi), { atol: 1e-7, rtol: 1e-5 }, `analytic grad ${n}`);
    }
  });

  it('rejects bad options with clear errors', () => {
    expect(() => new Fgsm({ eps: -1 })).toThrow(/FGSM: eps must be a finite number >= 0, got -1/);
    expect(() => new Fgsm({ eps: NaN })).toThrow(/eps/);
    expect(() => new Pgd({ eps: 0.1, alpha: 0, steps: 3 })).toThrow(/PGD: alpha must be a finite number > 0, got 0/);
    expect(() => new Pgd({ eps: 0.1, alpha: 0.01, steps: 3, bounds: [1, 0] })).toThrow(/bounds must be finite numbers with lo < hi, got \[1, 0\]/);
    expect(() => new Pgd({ eps: 0.1, alpha: 0.01, steps: 3, restarts: 0 })).toThrow(/restarts must be an integer >= 1/);
    expect(() => new Pgd({ norm: 'l1' as 'l2', eps: 0.1, alpha: 0.01, steps: 3 })).toThrow(/norm must be 'linf' or 'l2', got "l1"/);
    expect(() => new Apgd({ eps: 0.1, rho: 2 })).toThrow(/rho must be a number in \[0, 1\], got 2/);
    expect(() => new Fgsm({ eps: 0.1, bnMode: 'test' as 'eval' })).toThrow(/bnMode must be 'eval' or 'train'/);
  });
});
