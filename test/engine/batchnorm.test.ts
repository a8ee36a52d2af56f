// batchNorm2d / batchNorm1d on the GPU against the float64 reference: training and eval
// forward, backward (dx, dgamma, dbeta), running-stat updates (in place, unbiased
// variance) and their absence in eval mode, a large mean offset, extreme scales, errors;
// plus central-difference checks of the reference backward.
// Set KINKLESS_VERBOSE=1 to print the measured errors.
import { describe, it, expect } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import { expectClose, f32, randArray, type Tol } from '../helpers/compare.ts';
import { dot, maxRelErr, numericGrad } from '../reference/gradcheck.ts';
import { bnBackward64, bnForward64, type Bn64Opts, type Bn64Shape } from '../reference/batchnorm64.ts';
import * as E from '../../engine/index.ts';
import { batchNorm1d, batchNorm2d, type RunningStats } from '../../engine/ops/batchnorm.ts';

const VERBOSE = process.env.KINKLESS_VERBOSE === '1';

interface Inputs {
  shape: number[];
  x: Float64Array;
  gamma: Float64Array | null;
  beta: Float64Array | null;
  rm: Float64Array;
  rv: Float64Array;
  dy: Float64Array;
}

function inputs(shape: number[], seed: number, affine: [boolean, boolean] = [true, true], lo = -2, hi = 2, offset = 0): Inputs {
  const n = shape.reduce((a, b) => a * b, 1);
  const C = shape[1]!;
  return {
    shape,
    x: f32(Float64Array.from(randArray(n, seed, lo, hi), (v) => v + offset)),
    gamma: affine[0] ? f32(randArray(C, seed + 1, 0.5, 1.5)) : null,
    beta: affine[1] ? f32(randArray(C, seed + 2, -1, 1)) : null,
    rm: f32(randArray(C, seed + 3, -0.5, 0.5)),
    rv: f32(randArray(C, seed + 4, 0.5, 2)),
    dy: f32(randArray(n, seed + 5, -1, 1)),
  };
}

function bnShape(shape: number[]): Bn64Shape {
  return { N: shape[0]!, C: shape[1]!, HW: shape.slice(2).reduce((a, b) => a * b, 1) };
}

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

interface GpuResult {
  y: Float32Array;
  dx: Float32Array;
  dgamma: Float32Array | null;
  dbeta: Float32Array | null;
  rm: Float32Array;
  rv: Float32Array;
}

/** Forward, gradients against dy, and the running stats read back after the call. */
async function gpu(inp: Inputs, o: Bn64Opts, op: typeof batchNorm2d = batchNorm2d): Promise<GpuResult> {
  const d = await testDevice();
  return E.scopeAsync(async () => {
    const X = E.Tensor.from(d, Float32Array.from(inp.x), inp.shape);
    const G = inp.gamma ? E.Tensor.from(d, Float32Array.from(inp.gamma)) : null;
    const B = inp.beta ? E.Tensor.from(d, Float32Array.from(inp.beta)) : null;
    const running: RunningStats = { mean: E.Tensor.from(d, Float32Array.from(inp.rm)), var: E.Tensor.from(d, Float32Array.from(inp.rv)) };
    const wrt = [X, G, B].filter((t): t is E.Tensor => t !== null);
    for (const t of wrt) t.requiresGrad = true;
    const Y = op(X, G, B, running, o);
    const DY = E.Tensor.from(d, Float32Array.from(inp.dy), inp.shape);
    const gs = E.grad(Y, wrt, DY);
    return {
      y: await Y.f32(),
      dx: await gs[0]!.f32(),
      dgamma: G ? await gs[1]!.f32() : null,
      dbeta: B ? await gs[G ? 2 : 1]!.f32() : null,
      rm: await running.mean.f32(),
      rv: await running.var.f32(),
    };
  });
}

interface Tols {
  y: Tol;
  dx: Tol;
  dp: Tol;
  run: Tol;
}
const TOL: Tols = { y: { atol: 2e-5, rtol: 1e-5 }, dx: { atol: 2e-5, rtol: 1e-4 }, dp: { atol: 1e-4, rtol: 1e-4 }, run: { atol: 1e-6, rtol: 1e-5 } };

async function check(inp: Inputs, o: Bn64Opts, what: string, tol: Tols = TOL, op: typeof batchNorm2d = batchNorm2d): Promise<void> {
  const s = bnShape(inp.shape);
  const ref = bnForward64(inp.x, s, inp.gamma, inp.beta, { mean: inp.rm, var: inp.rv }, o);
  const back = bnBackward64(inp.x, inp.dy, s, inp.gamma, { mean: inp.rm, var: inp.rv }, o);
  const r = await gpu(inp, o, op);
  if (VERBOSE) {
    console.log(
      `${what}: |dy| ${maxAbs(r.y, ref.y).toExponential(2)} |dx| ${maxAbs(r.dx, back.dx).toExponential(2)}` +
        ` |dgamma| ${r.dgamma ? maxAbs(r.dgamma, back.dgamma).toExponential(2) : '-'} |dbeta| ${r.dbeta ? maxAbs(r.dbeta, back.dbeta).toExponential(2) : '-'}` +
        ` |rm| ${maxAbs(r.rm, ref.runningMean).toExponential(2)} |rv| ${maxAbs(r.rv, ref.runningVar).toExponential(2)}`,
    );
  }
  expectClose(r.y, ref.y, tol.y, `${what} y`);
  expectClose(r.dx, back.dx, tol.dx, `${what} dx`);
  if (r.dgamma) expectClose(r.dgamma, back.dgamma, tol.dp, `${what} dgamma`);
  if (r.dbeta) expectClose(r.dbeta, back.dbeta, tol.dp, `${what} dbeta`);
  expectClose(r.rm, ref.runningMean, tol.run, `${what} running mean`);
  expectClose(r.rv, ref.runningVar, tol.run, `${what} running var`);
  if (!o.training) {
    // eval: the running stats come back bit-identical
    expect(Array.from(r.rm)).toEqual(Array.from(Float32Array.from(inp.rm)));
    expect(Array.from(r.rv)).toEqual(Array.from(Float32Array.from(inp.rv)));
  }
}

const TRAIN: Bn64Opts = { training: true, momentum: 0.1, eps: 1e-5 };
const EVAL: Bn64Opts = { training: false, momentum: 0.1, eps: 1e-5 };

describe('batchNorm reference (float64 central differences)', () => {
  for (const o of [TRAIN, EVAL]) {
    it(`bnBackward64 matches the numerical gradient (training=${o.training})`, () => {
      const inp = inputs([3, 2, 5], 41);
      const s = bnShape(inp.shape);
      const run = { mean: inp.rm, var: inp.rv };
      const gamma = inp.gamma!;
      const beta = inp.beta!;
      const back = bnBackward64(inp.x, inp.dy, s, gamma, run, o);
      const fx = (v: Float64Array): number => dot(bnForward64(v, s, gamma, beta, run, o).y, inp.dy);
      const fg = (v: Float64Array): number => dot(bnForward64(inp.x, s, v, beta, run, o).y, inp.dy);
      const fb = (v: Float64Array): number => dot(bnForward64(inp.x, s, gamma, v, run, o).y, inp.dy);
      expect(maxRelErr(back.dx, numericGrad(fx, inp.x))).toBeLessThan(1e-7);
      expect(maxRelErr(back.dgamma, numericGrad(fg, gamma))).toBeLessThan(1e-7);
      expect(maxRelErr(back.dbeta, numericGrad(fb, beta))).toBeLessThan(1e-7);
    });
  }
});

describe('batchNorm2d', () => {
  for (const o of [TRAIN, EVAL]) {
    const mode = o.training ? 'training' : 'eval';
    it(`${mode} [3, 5, 7, 9] (scalar path)`, async () => {
      await check(inputs([3, 5, 7, 9], 1), o, `${mode} [3,5,7,9]`);
    });
    it(`${mode} [4, 3, 2, 6] (vec4 path)`, async () => {
      await check(inputs([4, 3, 2, 6], 2), o, `${mode} [4,3,2,6]`);
    });
    for (const affine of [[false, false], [true, false], [false, true]] as [boolean, boolean][]) {
      it(`${mode} [3, 5, 7, 9] gamma=${affine[0]} beta=${affine[1]}`, async () => {
        await check(inputs([3, 5, 7, 9], 3, affine), o, `${mode} affine=${affine}`);
      });
    }
    it(`${mode} [32, 16, 28, 28] (several chunks per channel)`, async () => {
      await check(inputs([32, 16, 28, 28], 4), o, `${mode} [32,16,28,28]`, { ...TOL, dp: { atol: 2e-3, rtol: 1e-4 } });
    });
    it(`${mode} mean offset 1000 (no cancellation in the variance)`, async () => {
      await check(inputs([8, 3, 13, 11], 5, [true, true], -1, 1, 1000), o, `${mode} offset 1000`, { ...TOL, run: { atol: 0, rtol: 1e-6 } });
    });
  }

  it('eval with N = 1, H = W = 1', async () => {
    await check(inputs([1, 7, 1, 1], 6), EVAL, 'eval [1,7,1,1]');
  });

  it('training with a huge offset: x = 1e5 + U(-0.5, 0.5), spread far below the offset', async () => {
    // a naive E[x^2] - E[x]^2 in float32 has an error ~ 1e10 * 6e-8 = 600 here, vs a variance of 1/12
    await check(inputs([16, 4, 9, 10], 7, [true, true], -0.5, 0.5, 1e5), TRAIN, 'offset 1e5', { ...TOL, run: { atol: 0, rtol: 1e-6 } });
  });

  it('extreme scales give no NaN: |x| ~ 1e15 and ~ 1e-15', async () => {
    for (const scale of [1e15, 1e-15]) {
      const inp = inputs([3, 4, 5, 7], 8, [true, true], -scale, scale);
      // eval with such inputs would only test the running stats; check training
      await check(inp, TRAIN, `scale ${scale}`, { ...TOL, run: { atol: 0, rtol: 1e-5 } });
    }
  });

  it('training moves the running stats to hand-computed values; eval leaves them bit-identical', async () => {
    const d = await testDevice();
    // channel 0 holds [1, 2, 3, 6]: mean 3, biased var 14/4, unbiased 14/3;
    // channel 1 holds [-1, -1, 1, 1]: mean 0, biased var 1, unbiased 4/3.
    const X = E.Tensor.from(d, [1, 2, -1, -1, 3, 6, 1, 1], [2, 2, 1, 2]);
    const running = { mean: E.Tensor.from(d, [0, 10]), var: E.Tensor.from(d, [1, 2]) };
    const Y = batchNorm2d(X, null, null, running, { training: true, momentum: 0.25 });
    expectClose(await running.mean.f32(), [0.75 * 0 + 0.25 * 3, 0.75 * 10 + 0.25 * 0], { atol: 1e-6, rtol: 1e-6 }, 'running mean');
    expectClose(await running.var.f32(), [0.75 * 1 + 0.25 * (14 / 3), 0.75 * 2 + 0.25 * (4 / 3)], { atol: 1e-6, rtol: 1e-6 }, 'running var');
    const s0 = Math.sqrt(3.5 + 1e-5);
    const s1 = Math.sqrt(1 + 1e-5);
    expectClose(await Y.f32(), [-2 / s0, -1 / s0, -1 / s1, -1 / s1, 0, 3 / s0, 1 / s1, 1 / s1], { atol: 1e-6, rtol: 1e-6 }, 'y');
    const rm = Uint32Array.from(new Uint32Array((await running.mean.f32()).buffer));
    const rv = Uint32Array.from(new Uint32Array((await running.var.f32()).buffer));
    for (let i = 0; i < 3; i++) batchNorm2d(X, null, null, running, { training: false }).dispose();
    expect(Array.from(new Uint32Array((await running.mean.f32()).buffer))).toEqual(Array.from(rm));
    expect(Array.from(new Uint32Array((await running.var.f32()).buffer))).toEqual(Array.from(rv));
    // training without running stats: batch statistics only
    const Y2 = batchNorm2d(X, null, null, null, { training: true });
    expectClose(await Y2.f32(), await Y.f32(), { atol: 0, rtol: 0 }, 'no running stats');
    for (const t of [X, Y, Y2, running.mean, running.var]) t.dispose();
  });

  it('clear errors on bad arguments', async () => {
    const d = await testDevice();
    const X = E.Tensor.from(d, new Float32Array(2 * 3 * 2 * 2), [2, 3, 2, 2]);
    const X1 = E.Tensor.from(d, new Float32Array(3), [1, 3, 1, 1]);
    const v3 = E.Tensor.from(d, [1, 1, 1]);
    const v2 = E.Tensor.from(d, [1, 1]);
    const run = { mean: v3, var: v3 };
    const T = { training: true };
    expect(() => batchNorm2d(E.Tensor.from(d, [1, 2, 3, 4], [2, 2]), null, null, run, T)).toThrow(/batchNorm2d: x must have rank 4 \[N, C, H, W\], got shape \[2, 2\]/);
    expect(() => batchNorm2d(X, v2, null, run, T)).toThrow(/batchNorm2d: gamma must be an f32 tensor of shape \[3\].*got f32 \[2\]/);
    expect(() => batchNorm2d(X, null, v2, run, T)).toThrow(/beta must be an f32 tensor of shape \[3\]/);
    expect(() => batchNorm2d(X, null, null, { mean: v2, var: v3 }, T)).toThrow(/running.mean must be an f32 tensor of shape \[3\]/);
    expect(() => batchNorm2d(X1, null, null, run, T)).toThrow(/training needs more than one value per channel.*\[1, 3, 1, 1\]/);
    expect(() => batchNorm2d(X, null, null, null, { training: false })).toThrow(/eval mode.*needs running statistics/);
    expect(() => batchNorm2d(X, null, null, run, { training: true, momentum: 1.5 })).toThrow(/momentum must be a number in \[0, 1\], got 1.5/);
    expect(() => batchNorm2d(X, null, null, run, { training: true, eps: 0 })).toThrow(/eps must be a finite number > 0, got 0/);
    expect(() => batchNorm2d(X, null, null, run, {} as { training: boolean })).toThrow(/opts.training must be a boolean/);
    expect(() => batchNorm1d(X, null, null, run, T)).toThrow(/batchNorm1d: x must have rank 2 \[N, C\] or 3 \[N, C, L\]/);
    for (const t of [X, X1, v3, v2]) t.dispose();
  });

  it('gradients for gamma and beta alone (x without requiresGrad), both modes', async () => {
    const d = await testDevice();
    const inp = inputs([3, 5, 4, 5], 10);
    const s = bnShape(inp.shape);
    for (const o of [TRAIN, EVAL]) {
      await E.scopeAsync(async () => {
        const X = E.Tensor.from(d, Float32Array.from(inp.x), inp.shape);
        const G = E.Tensor.from(d, Float32Array.from(inp.gamma!));
        const B = E.Tensor.from(d, Float32Array.from(inp.beta!));
        G.requiresGrad = true;
        B.requiresGrad = true;
        const running = { mean: E.Tensor.from(d, Float32Array.from(inp.rm)), var: E.Tensor.from(d, Float32Array.from(inp.rv)) };
        const Y = batchNorm2d(X, G, B, running, o);
        const [dg, db] = E.grad(Y, [G, B], E.Tensor.from(d, Float32Array.from(inp.dy), inp.shape));
        const back = bnBackward64(inp.x, inp.dy, s, inp.gamma, { mean: inp.rm, var: inp.rv }, o);
        expectClose(await dg!.f32(), back.dgamma, TOL.dp, `dgamma alone (training=${o.training})`);
        expectClose(await db!.f32(), back.dbeta, TOL.dp, `dbeta alone (training=${o.training})`);
      });
    }
  });

  it('leaves no buffers behind inside a scope', async () => {
    const d = await testDevice();
    const inp = inputs([4, 3, 5, 5], 9);
    const X = E.Tensor.from(d, Float32Array.from(inp.x), inp.shape);
    const G = E.Tensor.from(d, Float32Array.from(inp.gamma!));
    const B = E.Tensor.from(d, Float32Array.from(inp.beta!));
    const running = { mean: E.Tensor.from(d, Float32Array.from(inp.rm)), var: E.Tensor.from(d, Float32Array.from(inp.rv)) };
    for (const t of [X, G, B]) t.requiresGrad = true;
    const before = d.stats().liveBuffers;
    for (let i = 0; i < 3; i++) {
      for (const training of [true, false]) {
        E.scope(() => {
          E.grad(E.sum(batchNorm2d(X, G, B, running, { training })), [X, G, B]);
          E.noGrad(() => batchNorm2d(X, G, B, running, { training }));
        });
      }
    }
    await d.sync();
    expect(d.stats().liveBuffers).toBe(before);
    for (const t of [X, G, B, running.mean, running.var]) t.dispose();
  });
});

describe('batchNorm1d', () => {
  for (const o of [TRAIN, EVAL]) {
    const mode = o.training ? 'training' : 'eval';
    it(`${mode} [37, 11]`, async () => {
      await check(inputs([37, 11], 21), o, `1d ${mode} [37,11]`, TOL, batchNorm1d);
    });
    it(`${mode} [4, 6, 10]`, async () => {
      await check(inputs([4, 6, 10], 22), o, `1d ${mode} [4,6,10]`, TOL, batchNorm1d);
    });
  }
  it('training [5000, 3] (one value per image, several chunks)', async () => {
    await check(inputs([5000, 3], 23, [true, true], -1, 1, 50), TRAIN, '1d [5000,3]', { ...TOL, dp: { atol: 1e-3, rtol: 1e-4 } }, batchNorm1d);
  });
});
