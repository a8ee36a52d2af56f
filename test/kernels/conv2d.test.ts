// conv2d forward, dx, dw and db, fast, GEMM, direct and naive kernels, against the float64
// reference on shapes that divide no tile (stride, padding, dilation, groups, depthwise);
// the GEMM path chunked over the batch; the 'auto' choice on the MNIST CNN layers; the
// reference's own backward against central finite differences; extreme inputs; errors.
import { describe, it, expect } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import { expectClose, expectNoNaN, f32, randArray } from '../helpers/compare.ts';
import { numericGrad, dot, maxRelErr } from '../reference/gradcheck.ts';
import { conv64, conv64BackwardBias, conv64BackwardFilter, conv64BackwardInput, geom64, type Conv64Opts } from '../reference/conv64.ts';
import * as E from '../../engine/index.ts';
import { chooseConvImpl, conv2d, conv2dGemmLimits, conv2dGeometry, type Conv2dOptions, type ConvImpl } from '../../engine/ops/conv2d.ts';

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
  { name: 'groups 2, 36 taps per group (GEMM dx row-major), stride [2,1] pad 1', x: [3, 8, 9, 10], w: [6, 4, 3, 3], o: { stride: [2, 1], padding: [1, 1], groups: 2 } },
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

/** Run y, dx, dw, db of one case and compare with the float64 reference. */
async function checkAll(c: Case, impl: ConvImpl, seed: number): Promise<void> {
  const d = await testDevice();
  const p = geom64(c.x, c.w, c.o);
  const x64 = f32(randArray(size(c.x), seed, -1, 1));
  const w64 = f32(randArray(size(c.w), seed + 1, -1, 1));
  const b64 = f32(randArray(c.w[0], seed + 2, -1, 1));
  const dy64 = f32(randArray(p.N * p.O * p.OH * p.OW, seed + 3, -1, 1));
  const X = E.Tensor.from(d, Float32Array.from(x64), c.x);
  const Wt = E.Tensor.from(d, Float32Array.from(w64), c.w);
  const B = E.Tensor.from(d, Float32Array.from(b64), [c.w[0]]);
  const DY = E.Tensor.from(d, Float32Array.from(dy64), [p.N, p.O, p.OH, p.OW]);
  for (const t of [X, Wt, B]) t.requiresGrad = true;
  const Y = conv2d(X, Wt, B, opts(c, impl));
  // NOTE: reductions of up to ~600 (y, dx) and ~1300 (dw) terms of size <= 1 in float32.
  expectClose(await Y.f32(), conv64(x64, w64, b64, p), { atol: 1e-4, rtol: 1e-4 }, `${impl} ${c.name} y`);
  const [dx, dw, db] = E.grad(Y, [X, Wt, B], DY);
  expectClose(await dx!.f32(), conv64BackwardInput(dy64, w64, p), { atol: 1e-4, rtol: 1e-4 }, `${impl} ${c.name} dx`);
  expectClose(await dw!.f32(), conv64BackwardFilter(dy64, x64, p), { atol: 3e-4, rtol: 1e-4 }, `${impl} ${c.name} dw`);
  expectClose(await db!.f32(), conv64BackwardBias(dy64, p), { atol: 1e-4, rtol: 1e-4 }, `${impl} ${c.name} db`);
  for (const t of [X, Wt, B, DY, Y, dx!, dw!, db!]) t.dispose();
}

describe('conv2d GEMM path: batch chunking and the auto choice', () => {
  it('gemm chunked over the batch (uneven chunks) matches the reference', async () => {
    const saved = conv2dGemmLimits.maxBytes;
    try {
      // 2 images per chunk at most: N = 5 gives chunks of 2, 2, 1... balanced to 2, 2, 1.
      for (const c of [CASES[0]!, CASES[5]!, CASES[7]!]) {
        const p = geom64([1, ...c.x.slice(1)], c.w, c.o);
        const CK = (c.w[1] * c.w[2] * c.w[3]);
        const Kp = Math.ceil((CK + 1) / 4) * 4;
        const per = Math.max(p.G * Kp * p.OH * p.OW, p.O * p.OH * p.OW, p.O * CK);
        conv2dGemmLimits.maxBytes = 4 * per * 2 + 4;
        await checkAll({ ...c, name: `${c.name}, N=5 chunked`, x: [5, c.x[1], c.x[2], c.x[3]] }, 'gemm', 71);
      }
    } finally {
      conv2dGemmLimits.maxBytes = saved;
    }
  });

  it('auto on the MNIST CNN layers (N=3) matches the reference and picks gemm where measured faster', async () => {
    const d = await testDevice();
    const conv1: Case = { name: 'MNIST conv1 1->32 3x3', x: [3, 1, 28, 28], w: [32, 1, 3, 3], o: {} };
    const conv2: Case = { name: 'MNIST conv2 32->64 3x3 stride 2', x: [3, 32, 26, 26], w: [64, 32, 3, 3], o: { stride: [2, 2] } };
    const g1 = conv2dGeometry(conv1.x, conv1.w, {});
    const g2 = conv2dGeometry(conv2.x, conv2.w, { stride: 2 });
    expect([chooseConvImpl(g1, 'fwd', d), chooseConvImpl(g1, 'dx', d), chooseConvImpl(g1, 'dw', d)]).toEqual(['fast', 'gemm', 'fast']);
    expect([chooseConvImpl(g2, 'fwd', d), chooseConvImpl(g2, 'dx', d), chooseConvImpl(g2, 'dw', d)]).toEqual(['gemm', 'gemm', 'gemm']);
    await checkAll(conv1, 'auto', 81);
    await checkAll(conv2, 'auto', 91);
    await checkAll(conv2, 'gemm', 101);
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

  it('fused bias + activation epilogue (packed, GEMM, direct and naive kernels)', async () => {
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
    const B = E.Tensor.from(d, Float32Array.from(randArray(c.w[0], 63)), [c.w[0]]);
    for (const t of [X, Wt, B]) t.requiresGrad = true;
    const saved = conv2dGemmLimits.maxBytes;
    try {
      for (const [impl, cap] of [['auto', saved], ['gemm', saved], ['gemm', 4 * 48 * 11 * 13 * 2]] as const) {
        conv2dGemmLimits.maxBytes = cap;
        const step = async (): Promise<void> => {
          await E.scopeAsync(async () => {
            const gs = E.grad(E.sum(conv2d(X, Wt, B, { padding: 1, impl })), [X, Wt, B]);
            for (const g of gs) await g!.f32();
          });
        };
        await step();
        const before = d.stats().liveBuffers;
        for (let i = 0; i < 5; i++) await step();
        expect(d.stats().liveBuffers, `${impl} cap ${cap}`).toBe(before);
      }
    } finally {
      conv2dGemmLimits.maxBytes = saved;
    }
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
    expect(() => conv2d(X, w([4, 6, 3, 3]), null, { impl: 'im2col' as ConvImpl })).toThrow(/conv2d: impl must be one of 'auto', 'fast', 'gemm', 'direct', 'naive', got im2col/);
  });
});
