// conv2d forward, dx, dw and db, fast and naive kernels, against the float64 reference
// on shapes that divide no tile (stride, padding, dilation, groups, depthwise); the
// reference's own backward against central finite differences; extreme inputs; errors.
import { describe, it, expect } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import { expectClose, expectNoNaN, f32, randArray } from '../helpers/compare.ts';
import { numericGrad, dot, maxRelErr } from '../reference/gradcheck.ts';
import { conv64, conv64BackwardBias, conv64BackwardFilter, conv64BackwardInput, geom64, type Conv64Opts } from '../reference/conv64.ts';
import * as E from '../../engine/index.ts';
import { conv2d, type Conv2dOptions, type ConvImpl } from '../../engine/ops/conv2d.ts';

interface Case {
  name: string;
  x: [number, number, number, number];
  w: [number, number, number, number];
  o: Conv64Opts;
}

const CASES: Case[] = [
  { name: '3x3 pad 1', x: [3, 5, 11, 13], w: [7, 5, 3, 3], o: { padding: [1, 1] } },
  { name: '5x5 stride 2 pad 2', x: [3, 5, 11, 13], w: [7, 5, 5, 5], o: { stride: [2, 2], padding: [2, 2] } },
  { name: '1x1', x: [3, 5, 11, 13], w: [7, 5, 1, 1], o: {} },
  { name: '3x3 dilation 2 pad 2', x: [3, 5, 11, 13], w: [7, 5, 3, 3], o: { padding: [2, 2], dilation: [2, 2] } },
  { name: '3x3 valid, 20 outputs (several channel blocks)', x: [2, 5, 11, 13], w: [20, 5, 3, 3], o: {} },
  { name: 'depthwise 3x3 stride 2 pad 1', x: [3, 5, 11, 13], w: [5, 1, 3, 3], o: { stride: [2, 2], padding: [1, 1], groups: 5 } },
  { name: 'depthwise multiplier 2, dilation 2, stride [2,1], pad [1,2]', x: [3, 5, 11, 13], w: [10, 1, 3, 3], o: { stride: [2, 1], padding: [1, 2], dilation: [2, 2], groups: 5 } },
  { name: 'groups 2, 2x5 kernel, stride [1,3]', x: [2, 6, 9, 14], w: [10, 3, 2, 5], o: { stride: [1, 3], padding: [0, 1], groups: 2 } },
  { name: '1x7 kernel pad [0,3]', x: [2, 3, 6, 17], w: [9, 3, 1, 7], o: { padding: [0, 3] } },
  { name: '2x2 stride 3 (pixels with no tap)', x: [2, 4, 10, 11], w: [6, 4, 2, 2], o: { stride: [3, 3] } },
];

function opts(c: Case, impl: ConvImpl): Conv2dOptions {
  return { stride: c.o.stride, padding: c.o.padding, dilation: c.o.dilation, groups: c.o.groups, impl };
}

const size = (s: readonly number[]): number => s.reduce((a, b) => a * b, 1);

describe('conv2d vs float64 reference', () => {
  for (const c of CASES) {
    for (const impl of ['fast', 'gemm', 'direct', 'naive'] as const) {
      it(`${impl}: ${c.name}`, async () => {
        const d = await testDevice();
        const p = geom64(c.x, c.w, c.o);
        const x64 = f32(randArray(size(c.x), 11, -1, 1));
        const w64 = f32(randArray(size(c.w), 12, -1, 1));
        const b64 = f32(randArray(c.w[0], 13, -1, 1));
        const dy64 = f32(randArray(p.N * p.O * p.OH * p.OW, 14, -1, 1));
        const X = E.Tensor.from(d, Float32Array.from(x64), c.x);
        const Wt = E.Tensor.from(d, Float32Array.from(w64), c.w);
        const B = E.Tensor.from(d, Float32Array.from(b64), [c.w[0]]);
        const DY = E.Tensor.from(d, Float32Array.from(dy64), [p.N, p.O, p.OH, p.OW]);
        for (const t of [X, Wt, B]) t.requiresGrad = true;
        const Y = conv2d(X, Wt, B, opts(c, impl));
        expect(Y.shape).toEqual([p.N, p.O, p.OH, p.OW]);
        // NOTE: float32 accumulation over at most a few hundred terms of size <= 1.
        expectClose(await Y.f32(), conv64(x64, w64, b64, p), { atol: 2e-5, rtol: 1e-4 }, 'y');
        const [dx, dw, db] = E.grad(Y, [X, Wt, B], DY);
        expectClose(await dx!.f32(), conv64BackwardInput(dy64, w64, p), { atol: 2e-5, rtol: 1e-4 }, 'dx');
        expectClose(await dw!.f32(), conv64BackwardFilter(dy64, x64, p), { atol: 1e-4, rtol: 1e-4 }, 'dw');
        expectClose(await db!.f32(), conv64BackwardBias(dy64, p), { atol: 1e-4, rtol: 1e-4 }, 'db');
        for (const t of [X, Wt, B, DY, Y, dx!, dw!, db!]) t.dispose();
      });
    }
  }

  it('without bias, and with only some inputs needing a gradient', async () => {
    const d = await testDevice();
    const c = CASES[1]!;
    const p = geom64(c.x, c.w, c.o);
    const x64 = f32(randArray(size(c.x), 21));
    const w64 = f32(randArray(size(c.w), 22));
    const X = E.Tensor.from(d, Float32Array.from(x64), c.x);
    const Wt = E.Tensor.from(d, Float32Array.from(w64), c.w);
    Wt.requiresGrad = true;
    const Y = conv2d(X, Wt, undefined, opts(c, 'fast'));
    expectClose(await Y.f32(), conv64(x64, w64, null, p), { atol: 2e-5, rtol: 1e-4 }, 'y');
    const [dw] = E.grad(E.sum(Y), [Wt]);
    expectClose(await dw!.f32(), conv64BackwardFilter(new Float64Array(Y.size).fill(1), x64, p), { atol: 1e-4, rtol: 1e-4 }, 'dw');
  });
});

describe('float64 reference backward vs central differences', () => {
  const c: Case = { name: 'fd', x: [2, 4, 6, 7], w: [6, 2, 3, 2], o: { stride: [2, 1], padding: [1, 2], dilation: [2, 1], groups: 2 } };
  const p = geom64(c.x, c.w, c.o);
  const x = randArray(size(c.x), 31);
  const w = randArray(size(c.w), 32);
  const b = randArray(c.w[0], 33);
  const r = randArray(p.N * p.O * p.OH * p.OW, 34);
  it('dx', () => {
    const g = numericGrad((v) => dot(conv64(v, w, b, p), r), x);
    expect(maxRelErr(conv64BackwardInput(r, w, p), g)).toBeLessThan(1e-7);
  });
  it('dw', () => {
    const g = numericGrad((v) => dot(conv64(x, v, b, p), r), w);
    expect(maxRelErr(conv64BackwardFilter(r, x, p), g)).toBeLessThan(1e-7);
  });
  it('db', () => {
    const g = numericGrad((v) => dot(conv64(x, w, v, p), r), b);
    expect(maxRelErr(conv64BackwardBias(r, p), g)).toBeLessThan(1e-7);
  });
});

describe('conv2d extremes, epilogue, errors', () => {
  it('large inputs give no NaN and stay relatively accurate', async () => {
    const d = await testDevice();
    const c = CASES[0]!;
    const p = geom64(c.x, c.w, c.o);
    // |x*w| up to 1e30 per term; sums stay below float32 max.
    const x64 = f32(randArray(size(c.x), 41, -1e15, 1e15));
    const w64 = f32(randArray(size(c.w), 42, -1e15, 1e15));
    const dy64 = f32(randArray(p.N * p.O * p.OH * p.OW, 43, -1e15, 1e15));
    for (const impl of ['fast', 'gemm', 'direct', 'naive'] as const) {
      const X = E.Tensor.from(d, Float32Array.from(x64), c.x);
      const Wt = E.Tensor.from(d, Float32Array.from(w64), c.w);
      X.requiresGrad = true;
      Wt.requiresGrad = true;
      const Y = conv2d(X, Wt, null, opts(c, impl));
      const DY = E.Tensor.from(d, Float32Array.from(dy64), Y.shape);
      const [dx, dw] = E.grad(Y, [X, Wt], DY);
      const scale = 1e30 * 500;
      for (const [t, want, nm] of [
        [Y, conv64(x64, w64, null, p), 'y'],
        [dx!, conv64BackwardInput(dy64, w64, p), 'dx'],
        [dw!, conv64BackwardFilter(dy64, x64, p), 'dw'],
      ] as const) {
        const got = await t.f32();
        expectNoNaN(got, `${impl} ${nm}`);
        expectClose(got, want, { atol: scale * 1e-5, rtol: 1e-4 }, `${impl} ${nm}`);
      }
    }
  });

  it('fused bias + activation epilogue (packed, direct and naive kernels)', async () => {
    const d = await testDevice();
    for (const c of [CASES[0]!, CASES[5]!]) {
    const p = geom64(c.x, c.w, c.o);
    const x64 = f32(randArray(size(c.x), 51));
    const w64 = f32(randArray(size(c.w), 52));
    const b64 = f32(randArray(c.w[0], 53));
    const act = 'fn epi_act(z: f32) -> f32 { return max(z, 0.0) + 0.5 * min(z, 0.0); }';
    const want = conv64(x64, w64, b64, p).map((z) => Math.max(z, 0) + 0.5 * Math.min(z, 0));
    for (const impl of ['fast', 'gemm', 'direct', 'naive'] as const) {
      const X = E.Tensor.from(d, Float32Array.from(x64), c.x);
      const Wt = E.Tensor.from(d, Float32Array.from(w64), c.w);
      const B = E.Tensor.from(d, Float32Array.from(b64), [c.w[0]]);
      const Y = conv2d(X, Wt, B, { ...opts(c, impl), act });
      expectClose(await Y.f32(), want, { atol: 2e-5, rtol: 1e-4 }, `${impl} epilogue`);
      Wt.requiresGrad = true;
      expect(() => conv2d(X, Wt, B, { ...opts(c, impl), act })).toThrow(/fused act epilogue is forward-only/);
    }
    }
  });

  it('frees its temporaries (live buffers flat over repeated steps)', async () => {
    const d = await testDevice();
    const c = CASES[0]!;
    const X = E.Tensor.from(d, Float32Array.from(randArray(size(c.x), 61)), c.x);
    const Wt = E.Tensor.from(d, Float32Array.from(randArray(size(c.w), 62)), c.w);
    Wt.requiresGrad = true;
    const step = async (): Promise<void> => {
      await E.scopeAsync(async () => {
        const [g] = E.grad(E.sum(conv2d(X, Wt, null, { padding: 1 })), [Wt]);
        await g!.f32();
      });
    };
    await step();
    const before = d.stats().liveBuffers;
    for (let i = 0; i < 5; i++) await step();
    expect(d.stats().liveBuffers).toBe(before);
  });

  it('bad inputs give clear errors', async () => {
    const d = await testDevice();
    const X = E.Tensor.from(d, new Float32Array(2 * 6 * 5 * 5), [2, 6, 5, 5]);
    const w = (s: number[]): E.Tensor => E.Tensor.from(d, new Float32Array(size(s)), s);
    expect(() => conv2d(E.Tensor.from(d, [1, 2, 3], [3]), w([1, 1, 1, 1]))).toThrow(/conv2d: x must have rank 4 \[N, C, H, W\], got shape \[3\]/);
    expect(() => conv2d(X, w([3, 3]))).toThrow(/conv2d: w must have rank 4 \[O, C\/groups, KH, KW\], got shape \[3, 3\]/);
    expect(() => conv2d(X, w([4, 6, 3, 3]), null, { groups: 4 })).toThrow(/input channels C=6 .* divisible by groups=4/);
    expect(() => conv2d(X, w([5, 2, 3, 3]), null, { groups: 3 })).toThrow(/output channels O=5 .* divisible by groups=3/);
    expect(() => conv2d(X, w([4, 3, 3, 3]))).toThrow(/has 3 channels per group, expected C\/groups = 6\/1 = 6/);
    expect(() => conv2d(X, w([4, 6, 7, 3]))).toThrow(/output size -1x3 is not positive/);
    expect(() => conv2d(X, w([4, 6, 3, 3]), null, { stride: 0 })).toThrow(/stride must be an integer >= 1/);
    expect(() => conv2d(X, w([4, 6, 3, 3]), null, { padding: [1, -1] })).toThrow(/padding must be an integer >= 0/);
    expect(() => conv2d(X, w([4, 6, 3, 3]), null, { dilation: 1.5 })).toThrow(/dilation must be an integer >= 1/);
    expect(() => conv2d(X, w([4, 6, 3, 3]), null, { groups: 0 })).toThrow(/groups must be a positive integer/);
    expect(() => conv2d(X, w([4, 6, 3, 3]), w([3]))).toThrow(/b must have shape \[4\]/);
    expect(() => conv2d(X, w([4, 6, 3, 3]), null, { act: 'nope' })).toThrow(/act must be WGSL defining fn epi_act/);
  });
});
