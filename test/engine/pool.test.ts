// Pooling (maxPool2d, avgPool2d, globalAvgPool2d) forward and backward on the GPU
// against float64 references, plus central-difference checks of the references' backward.
import { describe, it, expect } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import { expectClose, f32, randArray } from '../helpers/compare.ts';
import { numericGrad, dot, maxRelErr } from '../reference/gradcheck.ts';
import { avgPool64, avgPoolBackward64, maxPool64, maxPoolBackward64, poolOut, type PoolGeom } from '../reference/pool64.ts';
import * as E from '../../engine/index.ts';
import { avgPool2d, globalAvgPool2d, maxPool2d, type Pool2dOptions } from '../../engine/ops/pool.ts';

type Pair = [number, number];
interface Case {
  shape: [number, number, number, number];
  kernel: Pair;
  stride?: Pair;
  padding?: Pair;
}

const CASES: Case[] = [
  { shape: [3, 5, 7, 9], kernel: [3, 3], stride: [2, 2], padding: [1, 1] },
  { shape: [3, 5, 7, 9], kernel: [2, 2] }, // default stride; drops the last row and column
  { shape: [2, 3, 11, 13], kernel: [3, 2], stride: [1, 3], padding: [1, 1] }, // overlap in H, gaps in W
  { shape: [2, 3, 8, 8], kernel: [4, 4], stride: [1, 1], padding: [2, 2] }, // pad = k/2, heavy overlap
  { shape: [2, 4, 28, 28], kernel: [2, 2] },
  { shape: [1, 1, 1, 1], kernel: [1, 1] },
  { shape: [1, 2, 5, 5], kernel: [5, 5], stride: [3, 3], padding: [2, 2] },
];

function geom(c: Case): PoolGeom {
  const [N, C, H, W] = c.shape;
  const [KH, KW] = c.kernel;
  const [SH, SW] = c.stride ?? c.kernel;
  const [PH, PW] = c.padding ?? [0, 0];
  return { N, C, H, W, KH, KW, SH, SW, PH, PW };
}

function opts(c: Case): Pool2dOptions {
  return { kernel: c.kernel, stride: c.stride, padding: c.padding };
}

function label(c: Case): string {
  return `${JSON.stringify(c.shape)} k${c.kernel} s${c.stride ?? c.kernel} p${c.padding ?? [0, 0]}`;
}

/** Forward and input gradient (against a random cotangent) of a pooling op on the GPU. */
async function run(x64: Float64Array, dy64: Float64Array, shape: number[], f: (x: E.Tensor) => E.Tensor): Promise<{ y: Float32Array; dx: Float32Array }> {
  const d = await testDevice();
  return E.scopeAsync(async () => {
    const X = E.Tensor.from(d, Float32Array.from(x64), shape);
    X.requiresGrad = true;
    const Y = f(X);
    const DY = E.Tensor.from(d, Float32Array.from(dy64), Y.shape);
    const [DX] = E.grad(Y, [X], DY);
    return { y: await Y.f32(), dx: await DX!.f32() };
  });
}

describe('maxPool2d', () => {
  for (const c of CASES) {
    it(`forward/backward ${label(c)}`, async () => {
      const g = geom(c);
      const n = c.shape.reduce((a, b) => a * b, 1);
      const [OH, OW] = poolOut(g);
      const x64 = f32(randArray(n, n + 3, -2, 2));
      const dy64 = f32(randArray(g.N * g.C * OH * OW, 7, -1, 1));
      const { y, dx } = await run(x64, dy64, c.shape, (X) => maxPool2d(X, opts(c)));
      expect(y.length).toBe(g.N * g.C * OH * OW);
      // max is exact; the backward only sums at most ceil(k/s)^2 dy values per input.
      expectClose(y, maxPool64(x64, g).y, { atol: 0, rtol: 0 }, 'max forward');
      expectClose(dx, maxPoolBackward64(x64, dy64, g), { atol: 1e-6, rtol: 1e-6 }, 'max backward');
    });
  }

  it('ties go to the first element of the window (row-major), padding never wins', async () => {
    const shape = [2, 3, 7, 9];
    const g = geom({ shape: [2, 3, 7, 9], kernel: [3, 3], stride: [1, 2], padding: [1, 1] });
    const n = 2 * 3 * 7 * 9;
    // values in {-2, -1, 0}: many ties, and all negative so a zero-padding bug would show
    const x64 = Float64Array.from(randArray(n, 11, 0, 3), (v) => Math.floor(v) - 2);
    const [OH, OW] = poolOut(g);
    const dy64 = Float64Array.from({ length: g.N * g.C * OH * OW }, (_, i) => 1 + (i % 7)); // exact small integers
    const { y, dx } = await run(x64, dy64, shape, (X) => maxPool2d(X, { kernel: 3, stride: [1, 2], padding: 1 }));
    expectClose(y, maxPool64(x64, g).y, { atol: 0, rtol: 0 }, 'ties forward');
    expectClose(dx, maxPoolBackward64(x64, dy64, g), { atol: 0, rtol: 0 }, 'ties backward');
    // constant input: every window's gradient goes to its first in-bounds element
    const c64 = new Float64Array(n).fill(-5);
    const r = await run(c64, dy64, shape, (X) => maxPool2d(X, { kernel: 3, stride: [1, 2], padding: 1 }));
    expectClose(r.dx, maxPoolBackward64(c64, dy64, g), { atol: 0, rtol: 0 }, 'constant backward');
    expect(r.dx[0]).toBe(dy64[0]! + dy64[OW]!); // (0,0) is first in windows (0,0) and (1,0)
  });

  it('extreme inputs: +-1e30 and -Infinity give no NaN', async () => {
    const c: Case = { shape: [2, 2, 6, 7], kernel: [3, 3], stride: [2, 2], padding: [1, 1] };
    const g = geom(c);
    const n = 2 * 2 * 6 * 7;
    const x64 = Float64Array.from(randArray(n, 5, -1, 1), (v, i) => (i % 5 === 0 ? -Infinity : v * 1e30));
    for (let i = 0; i < 6 * 7; i++) x64[i] = -Infinity; // a whole plane of -inf
    const [OH, OW] = poolOut(g);
    const dy64 = f32(randArray(g.N * g.C * OH * OW, 9, -1, 1));
    const { y, dx } = await run(f32(x64), dy64, c.shape, (X) => maxPool2d(X, opts(c)));
    expectClose(y, maxPool64(f32(x64), g).y, { atol: 0, rtol: 0 }, 'extreme forward');
    expectClose(dx, maxPoolBackward64(f32(x64), dy64, g), { atol: 1e-6, rtol: 1e-6 }, 'extreme backward');
  });
});

describe('avgPool2d', () => {
  for (const c of CASES) {
    for (const countIncludePad of [true, false]) {
      if (!countIncludePad && !c.padding) continue;
      it(`forward/backward ${label(c)} countIncludePad=${countIncludePad}`, async () => {
        const g = geom(c);
        const n = c.shape.reduce((a, b) => a * b, 1);
        const [OH, OW] = poolOut(g);
        const x64 = f32(randArray(n, n + 5, -2, 2));
        const dy64 = f32(randArray(g.N * g.C * OH * OW, 13, -1, 1));
        const { y, dx } = await run(x64, dy64, c.shape, (X) => avgPool2d(X, { ...opts(c), countIncludePad }));
        expectClose(y, avgPool64(x64, g, countIncludePad), { atol: 1e-6, rtol: 1e-6 }, 'avg forward');
        expectClose(dx, avgPoolBackward64(dy64, g, countIncludePad), { atol: 1e-6, rtol: 1e-6 }, 'avg backward');
      });
    }
  }

  it('extreme inputs stay finite', async () => {
    const c: Case = { shape: [1, 2, 5, 6], kernel: [2, 2], stride: [1, 1], padding: [1, 1] };
    const g = geom(c);
    const x64 = f32(randArray(60, 3, 1e30, 2e30));
    const [OH, OW] = poolOut(g);
    const dy64 = f32(randArray(2 * OH * OW, 4, -1e30, 1e30));
    const { y, dx } = await run(x64, dy64, c.shape, (X) => avgPool2d(X, opts(c)));
    expectClose(y, avgPool64(x64, g, true), { atol: 0, rtol: 1e-6 }, 'avg extreme forward');
    expectClose(dx, avgPoolBackward64(dy64, g, true), { atol: 1e24, rtol: 1e-6 }, 'avg extreme backward');
  });
});

describe('globalAvgPool2d', () => {
  for (const shape of [[3, 5, 7, 9], [2, 3, 1, 1], [4, 6, 50, 50]] as [number, number, number, number][]) {
    it(`forward/backward ${JSON.stringify(shape)}`, async () => {
      const [N, C, H, W] = shape;
      const x64 = f32(randArray(N * C * H * W, 17, -3, 3));
      const dy64 = f32(randArray(N * C, 19, -1, 1));
      const g: PoolGeom = { N, C, H, W, KH: H, KW: W, SH: 1, SW: 1, PH: 0, PW: 0 };
      const { y, dx } = await run(x64, dy64, shape, (X) => globalAvgPool2d(X));
      expectClose(y, avgPool64(x64, g, true), { atol: 1e-6, rtol: 1e-5 }, 'gap forward');
      expectClose(dx, avgPoolBackward64(dy64, g, true), { atol: 1e-7, rtol: 1e-6 }, 'gap backward');
      const d = await testDevice();
      const X = E.Tensor.from(d, Float32Array.from(x64), shape);
      const Y = globalAvgPool2d(X, { keepdims: true });
      expect(Y.shape).toEqual([N, C, 1, 1]);
      expect(globalAvgPool2d(X).shape).toEqual([N, C]);
      X.dispose();
      Y.dispose();
    });
  }
});

describe('pool references (float64 central differences)', () => {
  const c: Case = { shape: [2, 2, 5, 6], kernel: [3, 2], stride: [2, 1], padding: [1, 1] };
  const g = geom(c);
  const n = 2 * 2 * 5 * 6;
  const [OH, OW] = poolOut(g);
  const r = randArray(g.N * g.C * OH * OW, 23, -1, 1);
  it('maxPoolBackward64 matches the numerical gradient away from ties', () => {
    const x = randArray(n, 29, -1, 1); // distinct values: the argmax is locally constant
    const num = numericGrad((v) => dot(maxPool64(v, g).y, r), x, 1e-7);
    expect(maxRelErr(maxPoolBackward64(x, r, g), num)).toBeLessThan(1e-7);
  });
  for (const inc of [true, false]) {
    it(`avgPoolBackward64 matches the numerical gradient (countIncludePad=${inc})`, () => {
      const x = randArray(n, 31, -1, 1);
      const num = numericGrad((v) => dot(avgPool64(v, g, inc), r), x);
      expect(maxRelErr(avgPoolBackward64(r, g, inc), num)).toBeLessThan(1e-7);
    });
  }
});

describe('pooling argument errors', () => {
  it('names the op, the argument and the value', async () => {
    const d = await testDevice();
    const X = E.Tensor.from(d, new Float32Array(2 * 3 * 4 * 5), [2, 3, 4, 5]);
    const X3 = E.Tensor.from(d, new Float32Array(12), [3, 4]);
    expect(() => maxPool2d(X3, { kernel: 2 })).toThrow(/maxPool2d: x must have rank 4 \[N, C, H, W\], got shape \[3, 4\]/);
    expect(() => avgPool2d(X, { kernel: 0 })).toThrow(/avgPool2d: kernel must be an integer >= 1 or a pair of them, got 0/);
    expect(() => maxPool2d(X, { kernel: [2, 1.5] })).toThrow(/kernel must be an integer >= 1.*got \[2, 1.5\]/);
    expect(() => maxPool2d(X, { kernel: 2, stride: 0 })).toThrow(/stride must be an integer >= 1/);
    expect(() => maxPool2d(X, { kernel: 2, padding: -1 })).toThrow(/padding must be an integer >= 0/);
    expect(() => maxPool2d(X, { kernel: 2, padding: 2 })).toThrow(/padding \[2, 2\] must be at most half the kernel \[2, 2\]/);
    expect(() => maxPool2d(X, { kernel: [5, 2] })).toThrow(/maxPool2d: output size \[0, 2\] is not positive for input \[2, 3, 4, 5\]/);
    expect(() => globalAvgPool2d(X3)).toThrow(/globalAvgPool2d: x must have rank 4/);
    X.dispose();
    X3.dispose();
  });

  it('leaves no buffers behind inside a scope', async () => {
    const d = await testDevice();
    const X = E.Tensor.from(d, Float32Array.from(randArray(2 * 3 * 9 * 9, 2)), [2, 3, 9, 9]);
    X.requiresGrad = true;
    const before = d.stats().liveBuffers;
    for (let i = 0; i < 3; i++) {
      E.scope(() => {
        const y = E.add(maxPool2d(X, { kernel: 3, stride: 2, padding: 1 }), avgPool2d(X, { kernel: 3, stride: 2, padding: 1 }));
        E.grad(E.sum(y), [X]);
      });
    }
    await d.sync();
    expect(d.stats().liveBuffers).toBe(before);
    X.dispose();
  });
});
