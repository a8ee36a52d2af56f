// Threat-model engine ops (engine/ops/threat.ts) against float64 references
// (test/reference/threat64.ts): per-example norms (tiny and all-zero examples), unit
// directions, ball and box projections, projected steps (number and per-example steps),
// random starts, and APGD's bookkeeping; on a shape whose size is not a multiple of 4
// (scalar path) and one that is (vec4 path), with broadcast per-example tensors.
import { describe, it, expect } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import { expectClose, f32, randArray } from '../helpers/compare.ts';
import { apgdReduce64, ascent64, boxStep64, l2Norm64, linfNorm64, normalize64, projectBall64, stepBall64 } from '../reference/threat64.ts';
import { normal64, uniform01 } from '../reference/philox.ts';
import * as E from '../../engine/index.ts';

const SHAPES: number[][] = [
  [5, 3, 7, 5], // 105 per example: scalar path
  [4, 2, 8], // 16 per example, 64 in all: vec4 path
];
const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
const pshape = (s: number[]) => [s[0]!, ...s.slice(1).map(() => 1)];

async function data(shape: number[], seed: number, lo: number, hi: number) {
  const d = await testDevice();
  const v = f32(randArray(size(shape), seed, lo, hi));
  return { v, t: E.Tensor.from(d, Float32Array.from(v), shape) };
}

describe('per-example norms and directions', () => {
  for (const shape of SHAPES) {
    const N = shape[0]!;
    it(`L2 / L-inf norms ${JSON.stringify(shape)}, with a tiny example and an all-zero example`, async () => {
      const { v } = await data(shape, 3, -2, 2);
      const D = v.length / N;
      for (let j = 0; j < D; j++) {
        v[j] = Math.fround(v[j]! * 1e-20); // squares underflow float32
        v[D + j] = 0;
      }
      const d = await testDevice();
      const t = E.Tensor.from(d, Float32Array.from(v), shape);
      const n2 = E.l2NormPerExample(t);
      expect(n2.shape).toEqual(pshape(shape));
      const want = l2Norm64(v, N);
      expectClose(await n2.f32(), want, { atol: 0, rtol: 2e-6 }, 'l2 norm');
      expect((await n2.f32())[1]).toBe(0);
      expectClose(await E.linfNormPerExample(t).f32(), linfNorm64(v, N), { atol: 0, rtol: 0 }, 'linf norm');
      const u = await E.ascentDirection(t, 'l2').f32();
      expectClose(u, ascent64(v, N, 'l2'), { atol: 1e-6, rtol: 1e-5 }, 'l2 direction');
      expectClose(await E.ascentDirection(t, 'linf').f32(), ascent64(v, N, 'linf'), { atol: 0, rtol: 0 }, 'sign');
      expectClose(l2Norm64(u, N), [1, 0, ...new Array<number>(N - 2).fill(1)], { atol: 1e-5, rtol: 0 }, 'unit norms');
    });
  }

  it('normalizePerExample and diffOverNorm broadcast a per-example norm; zero norm gives 0', async () => {
    const shape = SHAPES[0]!;
    const N = shape[0]!;
    const a = await data(shape, 5, -1, 1);
    const b = await data(shape, 6, -1, 1);
    const d = await testDevice();
    const n64 = f32([0.5, 0, 2, 1e-3, 3]);
    const n = E.Tensor.from(d, Float32Array.from(n64), pshape(shape));
    expectClose(await E.normalizePerExample(a.t, n).f32(), normalize64(a.v, n64), { atol: 1e-6, rtol: 1e-6 }, 'normalize');
    const diff = Float64Array.from(a.v, (x, k) => x - b.v[k]!);
    expectClose(await E.diffOverNorm(a.t, b.t, n).f32(), normalize64(diff, n64), { atol: 1e-6, rtol: 1e-6 }, 'diffOverNorm');
    expect(N).toBe(5);
  });
});

describe('projections and steps', () => {
  for (const shape of SHAPES) {
    const N = shape[0]!;
    for (const norm of ['linf', 'l2'] as const) {
      const eps = norm === 'linf' ? 0.1 : 0.5;
      const ball = { norm, eps, bounds: [0, 1] as [number, number] };
      it(`projectBall and stepBall (${norm}) ${JSON.stringify(shape)}`, async () => {
        const x = await data(shape, 11, 0, 1);
        // Some examples inside the ball, some outside, pushing past the box edges.
        const dl = await data(shape, 12, -0.3, 0.3);
        const d = await testDevice();
        const delta = E.Tensor.from(d, Float32Array.from(dl.v.map((v, k) => (k < dl.v.length / 2 ? v * 0.01 : v))), shape);
        const dv = f32(await delta.f32());
        const p = E.projectBall(x.t, delta, ball);
        expectClose(await p.f32(), projectBall64(x.v, dv, N, norm, eps, 0, 1), { atol: 2e-7, rtol: 1e-5 }, `project ${norm}`);
        const g = await data(shape, 13, -1, 1);
        const dir = E.ascentDirection(g.t, norm);
        const dirv = f32(await dir.f32());
        for (const step of [0.07, -0.07]) {
          const s = E.stepBall(x.t, delta, dir, step, ball);
          expectClose(await s.f32(), stepBall64(x.v, dv, dirv, new Array<number>(N).fill(step), N, norm, eps, 0, 1), { atol: 3e-7, rtol: 1e-5 }, `step ${norm} ${step}`);
        }
        const steps = f32([0.01, 0.2, 0.05, 0.5, 0.03].slice(0, N));
        const st = E.Tensor.from(d, Float32Array.from(steps), pshape(shape));
        expectClose(await E.stepBall(x.t, delta, dir, st, ball).f32(), stepBall64(x.v, dv, dirv, steps, N, norm, eps, 0, 1), { atol: 3e-7, rtol: 1e-5 }, `per-example step ${norm}`);
      });
    }
  }

  it('axpy, projectBox, addClipped, boxStep (with sign, sign(0) = 0)', async () => {
    const shape = SHAPES[0]!;
    const x = await data(shape, 21, 0, 1);
    const y = await data(shape, 22, -1, 1);
    const d = await testDevice();
    y.v[0] = 0;
    y.v[7] = 0;
    const yt = E.Tensor.from(d, Float32Array.from(y.v), shape);
    expectClose(await E.axpy(x.t, yt, -0.3).f32(), Float64Array.from(x.v, (v, k) => v - 0.3 * y.v[k]!), { atol: 1e-7, rtol: 1e-6 }, 'axpy');
    const a64 = f32([0.5, -2, 0, 1, 3]);
    const at = E.Tensor.from(d, Float32Array.from(a64), pshape(shape));
    const D = x.v.length / 5;
    expectClose(await E.axpy(x.t, yt, at).f32(), Float64Array.from(x.v, (v, k) => v + a64[Math.floor(k / D)]! * y.v[k]!), { atol: 1e-6, rtol: 1e-6 }, 'axpy per example');
    expectClose(await E.projectBox(x.t, yt, [0, 1]).f32(), Float64Array.from(x.v, (v, k) => Math.min(1, Math.max(0, v + y.v[k]!)) - v), { atol: 1e-7, rtol: 1e-6 }, 'projectBox');
    expectClose(await E.addClipped(x.t, yt, [0.2, 0.9]).f32(), Float64Array.from(x.v, (v, k) => Math.min(0.9, Math.max(0.2, v + y.v[k]!))), { atol: 1e-7, rtol: 1e-6 }, 'addClipped');
    expectClose(await E.boxStep(x.t, yt, 0.25, [0, 1]).f32(), boxStep64(x.v, y.v, 0.25, 0, 1), { atol: 1e-7, rtol: 1e-6 }, 'boxStep');
    const fg = await E.boxStep(x.t, yt, 0.25, [0, 1], { signOf: true }).f32();
    expectClose(fg, boxStep64(x.v, y.v, 0.25, 0, 1, true), { atol: 1e-7, rtol: 1e-6 }, 'boxStep sign');
    expect(fg[0]).toBe(Math.fround(x.v[0]!));
  });

  it('extreme inputs: huge gradients normalise without overflow, no NaN', async () => {
    const d = await testDevice();
    const shape = [2, 9];
    const g64 = f32(randArray(18, 31, -1, 1).map((v) => v * 1e30));
    const g = E.Tensor.from(d, Float32Array.from(g64), shape);
    const n = await E.l2NormPerExample(g).f32();
    expectClose(n, l2Norm64(g64, 2), { atol: 0, rtol: 2e-6 }, 'huge l2 norm');
    expectClose(await E.ascentDirection(g, 'l2').f32(), ascent64(g64, 2, 'l2'), { atol: 1e-6, rtol: 1e-5 }, 'huge direction');
  });

  it('bad arguments give errors naming the argument', async () => {
    const d = await testDevice();
    const x = E.Tensor.from(d, new Float32Array(6), [2, 3]);
    const y = E.Tensor.from(d, new Float32Array(4), [2, 2]);
    expect(() => E.projectBall(x, y, { norm: 'linf', eps: 0.1, bounds: [0, 1] })).toThrow(/projectBall: delta must have x's shape/);
    expect(() => E.projectBall(x, x, { norm: 'l1' as 'l2', eps: 0.1, bounds: [0, 1] })).toThrow(/ball.norm must be 'linf' or 'l2'/);
    expect(() => E.projectBox(x, x, [1, 0])).toThrow(/projectBox: bounds must be/);
    expect(() => E.stepBall(x, x, x, NaN, { norm: 'linf', eps: 0.1, bounds: [0, 1] })).toThrow(/step must be a finite number/);
    expect(() => E.randomBallStart(x, { norm: 'linf', eps: -1, bounds: [0, 1] }, () => ({ seed: 0, offset: 0 }))).toThrow(/eps must be a finite number >= 0/);
  });
});

describe('random starts', () => {
  it('L-inf: clip(x + U(-eps, eps)) - x from the Philox stream', async () => {
    const shape = SHAPES[0]!;
    const x = await data(shape, 41, 0, 1);
    const n = x.v.length;
    const eps = 0.2;
    let off = 0;
    const next = (k: number) => ({ seed: 9, offset: (off += k) - k });
    const r = await E.randomBallStart(x.t, { norm: 'linf', eps, bounds: [0, 1] }, next).f32();
    const u = uniform01(9, 0, n);
    const want = Float64Array.from(x.v, (v, k) => Math.min(1, Math.max(0, v + (-eps + 2 * eps * u[k]!))) - v);
    expectClose(r, want, { atol: 1e-6, rtol: 1e-6 }, 'linf start');
    expect(off).toBe(n);
  });

  it('L2: a normalised Gaussian times eps u (float64 reference), inside the ball and the box; eps = 0 gives zeros', async () => {
    const shape = SHAPES[1]!;
    const N = shape[0]!;
    const x = await data(shape, 42, 0, 1);
    let off = 0;
    const next = (k: number) => ({ seed: 3, offset: (off += k) - k });
    const r = await E.randomBallStart(x.t, { norm: 'l2', eps: 0.5, bounds: [0, 1] }, next).f32();
    for (const v of l2Norm64(r, N)) expect(v).toBeLessThanOrEqual(0.5 * (1 + 1e-6));
    r.forEach((v, k) => {
      expect(x.v[k]! + v).toBeGreaterThanOrEqual(-1e-7);
      expect(x.v[k]! + v).toBeLessThanOrEqual(1 + 1e-7);
    });
    expect(l2Norm64(r, N).some((v) => v > 0.01)).toBe(true);
    // float64: z ~ N(0, 1) from the first x.size draws, u ~ U(0, 1) from the next N.
    const n = x.v.length;
    const zs = normal64(3, 0, n);
    const zn = l2Norm64(zs, N);
    const u = uniform01(3, n, N);
    const D = n / N;
    const want = Float64Array.from(x.v, (v, k) => Math.min(1, Math.max(0, v + (0.5 * u[Math.floor(k / D)]! * zs[k]!) / zn[Math.floor(k / D)]!)) - v);
    expectClose(r, want, { atol: 2e-6, rtol: 1e-4 }, 'l2 start vs float64');
    const z = await E.randomBallStart(x.t, { norm: 'l2', eps: 0, bounds: [0, 1] }, next).f32();
    expect(z.every((v) => v === 0)).toBe(true);
  });
});

describe('APGD bookkeeping', () => {
  it('momentumMix, countIncrease, apgdReduceMask, halveWhere', async () => {
    const d = await testDevice();
    const shape = [3, 5];
    const a = await data(shape, 51, -1, 1);
    const b = await data(shape, 52, -1, 1);
    const c = await data(shape, 53, -1, 1);
    expectClose(await E.momentumMix(a.t, b.t, c.t, 0.75, 0.25).f32(), Float64Array.from(a.v, (v, k) => v + 0.75 * (b.v[k]! - v) + 0.25 * (v - c.v[k]!)), { atol: 1e-6, rtol: 1e-6 }, 'momentumMix');
    const T = (v: number[]) => E.Tensor.from(d, v, [v.length]);
    const inc = [0, 3, 5, 1, 2, 4];
    const f = [1, 2, 3, 4, 5, 6];
    const fp = [0, 2, 4, 3, 5, 7];
    expectClose(await E.countIncrease(T(inc), T(f), T(fp)).f32(), inc.map((v, i) => v + (f[i]! > fp[i]! ? 1 : 0)), { atol: 0, rtol: 0 }, 'countIncrease');
    const halved = [0, 0, 1, 1, 0, 1];
    const fbc = [1, 2, 3, 4, 5, 6];
    const fb = [1, 3, 3, 5, 4, 7];
    expectClose(await E.apgdReduceMask(T(inc), T(halved), T(fbc), T(fb), 2.5).f32(), apgdReduce64(inc, halved, fbc, fb, 2.5), { atol: 0, rtol: 0 }, 'apgdReduceMask');
    const mask = E.Tensor.from(d, [1, 0, 1], [3, 1]);
    const eta = E.Tensor.from(d, [0.4, 0.4, 0.1], [3, 1]);
    expectClose(await E.halveWhere(mask, eta).f32(), [0.2, 0.4, 0.05], { atol: 1e-8, rtol: 1e-7 }, 'halveWhere');
  });
});
