// conv2d forward, dx, dw and db, fast, GEMM, direct, per-pixel and naive kernels, against
// the float64 reference on shapes that divide no tile (stride, padding, dilation, groups,
// depthwise, batch 1, 1-3 input channels); the GEMM path chunked over the batch, its two
// col2im kernels and the reuse of the forward's im2col; the 'auto' choice on the MNIST CNN
// layers; profile info on every conv dispatch; the reference's own backward against
// central finite differences; extreme inputs; errors.
import { describe, it, expect } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import { expectClose, expectNoNaN, f32, randArray } from '../helpers/compare.ts';
import { numericGrad, dot, maxRelErr } from '../reference/gradcheck.ts';
import { conv64, conv64BackwardBias, conv64BackwardFilter, conv64BackwardInput, geom64, type Conv64Opts } from '../reference/conv64.ts';
import * as E from '../../engine/index.ts';
import type { DispatchSpec } from '../../engine/queue.ts';
import { chooseConvImpl, chooseDcolLayout, conv2d, conv2dGeometry, convRun, type Conv2dOptions, type ConvImpl } from '../../engine/ops/conv2d.ts';

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
  { name: '1 channel 3x3, batch 1, 7x9 (odd plane: pixel scalar stores)', x: [1, 1, 7, 9], w: [5, 1, 3, 3], o: {} },
  { name: '1 channel 3x3 valid, 12x12 (plane % 4 == 0: pixel vec4)', x: [3, 1, 12, 12], w: [19, 1, 3, 3], o: {} },
  { name: '1 channel 5x5 stride 2 pad 2 dilation [1,2]', x: [2, 1, 13, 11], w: [9, 1, 5, 5], o: { stride: [2, 2], padding: [2, 2], dilation: [1, 2] } },
  { name: '3 channels 3x3 stride 3 pad 1', x: [2, 3, 11, 10], w: [17, 3, 3, 3], o: { stride: [3, 3], padding: [1, 1] } },
  { name: 'groups 2, 2 channels per group 2x3, stride [3,2] pad [2,1]', x: [2, 4, 12, 9], w: [6, 2, 2, 3], o: { stride: [3, 2], padding: [2, 1], groups: 2 } },
];

const IMPLS = ['fast', 'gemm', 'direct', 'pixel', 'naive'] as const;

function opts(c: Case, impl: ConvImpl): Conv2dOptions {
  return { stride: c.o.stride, padding: c.o.padding, dilation: c.o.dilation, groups: c.o.groups, impl };
}

const size = (s: readonly number[]): number => s.reduce((a, b) => a * b, 1);

describe('conv2d vs float64 reference', () => {
  for (const c of CASES) {
    for (const impl of IMPLS) {
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
async function checkAll(c: Case, impl: ConvImpl, seed: number, extra: Conv2dOptions = {}): Promise<void> {
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
  const Y = conv2d(X, Wt, B, { ...opts(c, impl), ...extra });
  // NOTE: reductions of up to ~600 (y, dx) and ~1300 (dw) terms of size <= 1 in float32.
  expectClose(await Y.f32(), conv64(x64, w64, b64, p), { atol: 1e-4, rtol: 1e-4 }, `${impl} ${c.name} y`);
  const [dx, dw, db] = E.grad(Y, [X, Wt, B], DY);
  expectClose(await dx!.f32(), conv64BackwardInput(dy64, w64, p), { atol: 1e-4, rtol: 1e-4 }, `${impl} ${c.name} dx`);
  expectClose(await dw!.f32(), conv64BackwardFilter(dy64, x64, p), { atol: 3e-4, rtol: 1e-4 }, `${impl} ${c.name} dw`);
  expectClose(await db!.f32(), conv64BackwardBias(dy64, p), { atol: 1e-4, rtol: 1e-4 }, `${impl} ${c.name} db`);
  for (const t of [X, Wt, B, DY, Y, dx!, dw!, db!]) t.dispose();
}

describe('conv2d GEMM path: batch chunking and the auto choice', () => {
  it('gemm chunked over the batch (uneven chunks, gemmChunkBytes) matches the reference', async () => {
    // 2 images per chunk at most: N = 5 gives chunks of 2, 2, 1... balanced to 2, 2, 1.
    for (const c of [CASES[0]!, CASES[5]!, CASES[7]!, CASES[14]!]) {
      const p = geom64([1, ...c.x.slice(1)], c.w, c.o);
      const CK = c.w[1] * c.w[2] * c.w[3];
      const Kp = Math.ceil((CK + 1) / 4) * 4;
      const per = Math.max(p.G * Kp * p.OH * p.OW, p.O * p.OH * p.OW, p.O * CK);
      await checkAll({ ...c, name: `${c.name}, N=5 chunked`, x: [5, c.x[1], c.x[2], c.x[3]] }, 'gemm', 71, { gemmChunkBytes: 4 * per * 2 + 4 });
    }
  });

  it("col2im 'phase' and 'taps' and im2col kept or rebuilt all match the reference (strides 1-3), geometry baked or not", async () => {
    for (const c of CASES.filter((k) => k.w[1] * k.w[2] * k.w[3] >= 4)) {
      for (const col2im of ['phase', 'taps'] as const) {
        for (const keepIm2colBytes of [0, 1 << 30]) await checkAll(c, 'gemm', 111, { col2im, keepIm2colBytes });
        await checkAll(c, 'gemm', 112, { col2im, bakeGeometry: false });
      }
    }
  });

  it('packed kernels (fast fwd, stride-1 dx) with the geometry baked or read from the uniforms match the reference', async () => {
    for (const c of CASES) for (const bakeGeometry of [true, false]) await checkAll(c, 'fast', 231, { bakeGeometry });
  });

  it('baked geometry: one im2col / col2im pipeline per layer shape, whatever the batch or chunk size', async () => {
    const d = await testDevice();
    const c = CASES[1]!;
    const p = geom64([1, ...c.x.slice(1)], c.w, c.o);
    const CK = c.w[1] * c.w[2] * c.w[3];
    const per = Math.max(p.G * Math.ceil((CK + 1) / 4) * 4 * p.OH * p.OW, p.O * p.OH * p.OW, p.O * CK);
    const keys = async (N: number, extra: Conv2dOptions): Promise<string[]> => {
      const specs = await dispatchSpecs(d, async () => checkAll({ ...c, x: [N, c.x[1], c.x[2], c.x[3]] }, 'gemm', 221 + N, extra));
      return [...new Set(specs.filter((s) => /im2col|col2im/.test(s.kernel.family)).map((s) => s.kernel.cacheKey))].sort();
    };
    // N = 5 in chunks of 2, 2, 1 (balanced) vs N = 3 in one chunk: the same baked kernels.
    const chunked = await keys(5, { gemmChunkBytes: 4 * per * 2 + 4 });
    expect(chunked.length).toBeGreaterThanOrEqual(2);
    expect(chunked.every((k) => !k.endsWith(':u'))).toBe(true);
    expect(await keys(3, {})).toEqual(chunked);
    // Unbaked: the geometry comes from the uniforms (keys end in 'u'), same results.
    expect((await keys(3, { bakeGeometry: false })).every((k) => k.endsWith(':u'))).toBe(true);
  });

  it("dcol 'pixel' and 'k' (k-major dx product, filter packed transposed) match the reference, chunked too", async () => {
    const d = await testDevice();
    // CK >= 32 (where the layouts differ): 45, 125, 36 taps; strides 1, 2 and [2, 1]; groups 2.
    const wide = CASES.filter((k) => k.w[1] * k.w[2] * k.w[3] >= 32);
    expect(wide.length).toBeGreaterThanOrEqual(4);
    for (const c of wide) {
      for (const dcol of ['pixel', 'k'] as const) {
        for (const col2im of ['phase', 'taps'] as const) await checkAll(c, 'gemm', 151, { dcol, col2im });
        const names = await dispatchNames(d, async () => checkAll(c, 'gemm', 161, { dcol }));
        expect(names.includes('conv2d_gemm_pack_filter') && names.filter((n) => n === 'conv2d_gemm_pack_filter').length === 2, `${c.name} ${dcol}`).toBe(dcol === 'k');
      }
      const p = geom64([1, ...c.x.slice(1)], c.w, c.o);
      const CK = c.w[1] * c.w[2] * c.w[3];
      const per = Math.max(p.G * (CK + 4) * p.OH * p.OW, p.O * p.OH * p.OW, p.O * CK);
      await checkAll({ ...c, name: `${c.name}, N=5 chunked`, x: [5, c.x[1], c.x[2], c.x[3]] }, 'gemm', 171, { dcol: 'k', gemmChunkBytes: 4 * per * 2 + 4 });
    }
    const conv2: Case = { name: 'MNIST conv2 32->64 3x3 stride 2, N=3', x: [3, 32, 26, 26], w: [64, 32, 3, 3], o: { stride: [2, 2] } };
    for (const dcol of ['pixel', 'k'] as const) await checkAll(conv2, 'gemm', 181, { dcol });
  });

  it('the forward im2col is kept for dw within keepIm2colBytes (one im2col per step), else rebuilt', async () => {
    const d = await testDevice();
    // CK = 27 (bias in the ones column of the padding), 12 and 36 (bias added in the permute when kept).
    for (const c of [CASES[14]!, CASES[15]!, CASES[10]!]) {
      const p = geom64(c.x, c.w, c.o);
      const CK = c.w[1] * c.w[2] * c.w[3];
      // col [G, N*OH*OW, Kp]: Kp = CK when CK % 4 == 0, else CK + 1 (bias column) rounded up to 4.
      const colBytes = 4 * p.G * p.N * p.OH * p.OW * (CK % 4 === 0 ? CK : Math.ceil((CK + 1) / 4) * 4);
      for (const [keep, want] of [[colBytes, 1], [colBytes - 4, 2], [0, 2]] as const) {
        const names = await dispatchNames(d, async () => checkAll(c, 'gemm', 121, { keepIm2colBytes: keep }));
        expect(names.filter((n) => n === 'conv2d_im2col').length, `${c.name}: keepIm2colBytes ${keep}`).toBe(want);
        expect(names.includes('conv2d_gemm_epilogue'), `${c.name}: keepIm2colBytes ${keep}`).toBe(CK % 4 === 0 && keep >= colBytes);
      }
    }
  });

  it("gemmForward 'direct' (W · col_n^T per image, NCHW out) and 'permute' match the reference, with and without the kept im2col, bias and a fused activation", async () => {
    const d = await testDevice();
    const conv2: Case = { name: 'MNIST conv2 32->64 3x3 stride 2, N=3', x: [3, 32, 26, 26], w: [64, 32, 3, 3], o: { stride: [2, 2] } };
    for (const c of [...CASES, conv2]) {
      for (const keepIm2colBytes of [0, 1 << 30]) {
        const specs = await dispatchSpecs(d, async () => checkAll(c, 'gemm', 201, { gemmForward: 'direct', keepIm2colBytes }));
        // One group: the forward product is W · col_n^T (transB, batched over the images) and
        // there is no permute pass; several groups fall back to the permute orientation.
        const one = (c.o.groups ?? 1) === 1;
        const fwd = specs.find((s) => s.info?.op === 'matmul')!;
        expect(/tB/.test(fwd.info!.geometry ?? ''), `${c.name}: ${fwd.info!.geometry}`).toBe(one);
        if (one) expect(specs.some((s) => s.kernel.family === 'conv2d_gemm_epilogue'), c.name).toBe(false);
        await checkAll(c, 'gemm', 202, { gemmForward: 'permute', keepIm2colBytes });
      }
      if ((c.o.groups ?? 1) !== 1) continue;
      // Fused activation (conv2dAct) with y and z, and without a bias.
      const p = geom64(c.x, c.w, c.o);
      const x64 = f32(randArray(size(c.x), 211, -1, 1));
      const w64 = f32(randArray(size(c.w), 212, -1, 1));
      const b64 = f32(randArray(c.w[0], 213, -1, 1));
      const dy64 = f32(randArray(p.N * p.O * p.OH * p.OW, 214, -1, 1));
      for (const kind of ['relu', 'silu'] as const) {
        for (const bias of [true, false]) {
          await E.scopeAsync(async () => {
            const X = E.Tensor.from(d, Float32Array.from(x64), c.x);
            const Wt = E.Tensor.from(d, Float32Array.from(w64), c.w);
            const B = bias ? E.Tensor.from(d, Float32Array.from(b64), [c.w[0]]) : null;
            for (const t of [X, Wt, ...(B ? [B] : [])]) t.requiresGrad = true;
            const Y = E.conv2dAct(X, Wt, B, kind, { ...opts(c, 'gemm'), gemmForward: 'direct' });
            const z = conv64(x64, w64, bias ? b64 : null, p);
            const f = (v: number): number => (kind === 'relu' ? Math.max(v, 0) : v / (1 + Math.exp(-v)));
            const df = (v: number): number => (kind === 'relu' ? (v > 0 ? 1 : 0) : (1 + Math.exp(-v) + v * Math.exp(-v)) / (1 + Math.exp(-v)) ** 2);
            expectClose(await Y.f32(), z.map(f), { atol: 1e-4, rtol: 1e-4 }, `${c.name} ${kind} bias ${bias} y`);
            const dz = dy64.map((g, i) => g * df(z[i]!));
            const gs = E.grad(Y, [X, Wt, ...(B ? [B] : [])], E.Tensor.from(d, Float32Array.from(dy64), Y.shape));
            expectClose(await gs[0]!.f32(), conv64BackwardInput(dz, w64, p), { atol: 1e-4, rtol: 1e-4 }, `${c.name} ${kind} dx`);
            expectClose(await gs[1]!.f32(), conv64BackwardFilter(dz, x64, p), { atol: 3e-4, rtol: 1e-4 }, `${c.name} ${kind} dw`);
            if (B) expectClose(await gs[2]!.f32(), conv64BackwardBias(dz, p), { atol: 1e-4, rtol: 1e-4 }, `${c.name} ${kind} db`);
          });
        }
      }
    }
  });

  it('gemm dw with the bias gradient from a ones column, per-image slices on narrow products (no dy permute, no db reduce)', async () => {
    const d = await testDevice();
    // conv1-like (1 group, Kc = 12 columns <= OH*OW / 8: one image per slice), odd N; the
    // 1x1 case (Kc 8, 143 pixels), 1 channel 12x12 (Kc 12, 100 pixels); and a multi-group
    // case that keeps the permuted dy.
    const cases: Case[] = [
      { name: 'MNIST conv1 1->32 3x3, N=3', x: [3, 1, 28, 28], w: [32, 1, 3, 3], o: {} },
      CASES[2]!,
      CASES[12]!,
      CASES[7]!,
    ];
    for (const c of cases) {
      const p = geom64(c.x, c.w, c.o);
      const CK = c.w[1] * c.w[2] * c.w[3];
      const perImage = p.G === 1 && 8 * Math.ceil((CK + 1) / 4) * 4 <= p.OH * p.OW;
      for (const keepIm2colBytes of [0, 1 << 30]) {
        const names = await dispatchNames(d, async () => checkAll(c, 'gemm', 191, { keepIm2colBytes }));
        // db from the product's ones column and, per image, dy used in place: no reduce of dy
        // over [0, 2, 3] (reduce_sum) and no permute of dy; the slices' partials are summed.
        if (perImage) expect(names.filter((n) => n === 'reduce_sum').length, `${c.name} keep ${keepIm2colBytes}`).toBe(0);
      }
      expect(perImage, c.name).toBe(c !== CASES[7]);
    }
  });

  it("pixel kernels on 1-3 input channels; 'auto' on the software adapter picks the per-image GEMM dw for conv1", async () => {
    const d = await testDevice();
    const g1 = conv2dGeometry([3, 1, 28, 28], [32, 1, 3, 3], {});
    const names = await dispatchNames(d, async () => checkAll({ name: 'MNIST conv1, N=3', x: [3, 1, 28, 28], w: [32, 1, 3, 3], o: {} }, 'pixel', 131));
    expect(names).toContain('conv2d_pixel');
    expect(names).toContain('conv2d_backward_filter_pixel');
    if (E.isLlvmpipe(d.adapter)) expect([chooseConvImpl(g1, 'fwd', d), chooseConvImpl(g1, 'dw', d)]).toEqual(['fast', 'gemm']);
    // Two groups of 4 outputs (no per-image GEMM): the pixel dw stays.
    const g3 = conv2dGeometry([3, 4, 12, 9], [8, 2, 2, 3], { groups: 2 });
    if (E.isLlvmpipe(d.adapter)) expect(chooseConvImpl(g3, 'dw', d)).toBe('pixel');
  });

  it('auto on the MNIST CNN layers (N=3) matches the reference and picks gemm where measured faster', async () => {
    const d = await testDevice();
    const conv1: Case = { name: 'MNIST conv1 1->32 3x3', x: [3, 1, 28, 28], w: [32, 1, 3, 3], o: {} };
    const conv2: Case = { name: 'MNIST conv2 32->64 3x3 stride 2', x: [3, 32, 26, 26], w: [64, 32, 3, 3], o: { stride: [2, 2] } };
    const g1 = conv2dGeometry(conv1.x, conv1.w, {});
    const g2 = conv2dGeometry(conv2.x, conv2.w, { stride: 2 });
    expect(chooseConvImpl(g1, 'dx', d)).toBe('gemm');
    if (!E.isLlvmpipe(d.adapter)) expect([chooseConvImpl(g1, 'fwd', d), chooseConvImpl(g1, 'dw', d)]).toEqual(['fast', 'fast']);
    expect([chooseConvImpl(g2, 'fwd', d), chooseConvImpl(g2, 'dx', d), chooseConvImpl(g2, 'dw', d)]).toEqual(['gemm', 'gemm', 'gemm']);
    expect([chooseDcolLayout(g1, convRun('conv2d'), d), chooseDcolLayout(g2, convRun('conv2d'), d)]).toEqual(['k', E.isLlvmpipe(d.adapter) ? 'k' : 'pixel']);
    expect(chooseDcolLayout(g2, convRun('conv2d', { dcol: 'pixel' }), d)).toBe('pixel');
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
    for (const impl of IMPLS) {
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

  it('fused bias + activation epilogue on every impl, forward only (conv2dAct under noGrad)', async () => {
    const d = await testDevice();
    for (const c of [CASES[0]!, CASES[5]!, CASES[11]!, CASES[12]!]) {
      const p = geom64(c.x, c.w, c.o);
      const x64 = f32(randArray(size(c.x), 51));
      const w64 = f32(randArray(size(c.w), 52));
      const b64 = f32(randArray(c.w[0], 53));
      const want = conv64(x64, w64, b64, p).map((z) => Math.max(z, 0));
      for (const impl of IMPLS) {
        const X = E.Tensor.from(d, Float32Array.from(x64), c.x);
        const Wt = E.Tensor.from(d, Float32Array.from(w64), c.w);
        const B = E.Tensor.from(d, Float32Array.from(b64), [c.w[0]]);
        const Y = E.noGrad(() => E.conv2dAct(X, Wt, B, 'relu', opts(c, impl)));
        expectClose(await Y.f32(), want, { atol: 2e-5, rtol: 1e-4 }, `${impl} ${c.name} epilogue`);
        for (const t of [X, Wt, B, Y]) t.dispose();
      }
    }
  });

  it('every conv dispatch is a descriptor kernel with profile info (op, geometry, flops, bytes)', async () => {
    const d = await testDevice();
    const c = CASES[1]!;
    for (const impl of IMPLS) {
      const specs = await dispatchSpecs(d, async () => checkAll(c, impl, 141));
      const conv = specs.filter((s) => s.kernel.family.startsWith('conv2d'));
      expect(conv.length, impl).toBeGreaterThan(0);
      for (const s of conv) {
        expect(s.info?.op, s.kernel.name).toBe('conv2d');
        expect(s.info?.geometry, s.kernel.name).toMatch(/^(fwd|dx|dw)\b.* N3 C5 H11x13 -> O7 5x5 s2 p2$/);
        expect(s.info?.bytes, s.kernel.name).toBeGreaterThan(0);
        expect(Number.isFinite(s.info?.flops), s.kernel.name).toBe(true);
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
    for (const [impl, cap, extra] of [
      ['auto', undefined, {}],
      ['gemm', undefined, {}],
      ['gemm', 4 * 48 * 11 * 13 * 2, {}],
      ['pixel', undefined, {}],
      ['gemm', undefined, { gemmForward: 'direct', dcol: 'k' }],
      ['gemm', undefined, { gemmForward: 'direct', keepIm2colBytes: 0 }],
    ] as const) {
      const step = async (): Promise<void> => {
        await E.scopeAsync(async () => {
          const gs = E.grad(E.sum(conv2d(X, Wt, B, { padding: 1, impl, gemmChunkBytes: cap, ...extra })), [X, Wt, B]);
          for (const g of gs) await g!.f32();
        });
      };
      await step();
      const before = d.stats().liveBuffers;
      for (let i = 0; i < 5; i++) await step();
      expect(d.stats().liveBuffers, `${impl} cap ${cap} ${JSON.stringify(extra)}`).toBe(before);
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
    expect(() => conv2d(X, w([4, 6, 3, 3]), null, { act: 'nope' } as Conv2dOptions)).toThrow(/conv2d: opts.act must be unset/);
    expect(() => conv2d(X, w([4, 6, 3, 3]), null, { impl: 'im2col' as ConvImpl })).toThrow(/conv2d: impl must be one of 'auto', 'fast', 'gemm', 'direct', 'pixel', 'naive', got im2col/);
    expect(() => conv2d(X, w([4, 6, 3, 3]), null, { gemmChunkBytes: 0 })).toThrow(/conv2d: gemmChunkBytes must be an integer >= 4 \(bytes\), got 0/);
    expect(() => conv2d(X, w([4, 6, 3, 3]), null, { keepIm2colBytes: -1 })).toThrow(/conv2d: keepIm2colBytes must be an integer >= 0 \(bytes\), got -1/);
    expect(() => conv2d(X, w([4, 6, 3, 3]), null, { col2im: 'scatter' as 'phase' })).toThrow(/conv2d: col2im must be 'phase' or 'taps', got scatter/);
    expect(() => conv2d(X, w([4, 6, 3, 3]), null, { dcol: 'row' as 'k' })).toThrow(/conv2d: dcol must be 'auto', 'pixel' or 'k', got row/);
    expect(() => conv2d(X, w([4, 6, 3, 3]), null, { gemmForward: 'nchw' as 'direct' })).toThrow(/conv2d: gemmForward must be 'auto', 'permute' or 'direct', got nchw/);
    expect(() => conv2d(X, w([4, 6, 3, 3]), null, { bakeGeometry: 1 as unknown as boolean })).toThrow(/conv2d: bakeGeometry must be a boolean, got 1/);
  });
});

/** The dispatch specs `fn` issues on `d` (wraps d.dispatch for the call; the GPU runs as usual). */
async function dispatchSpecs(d: E.Device, fn: () => Promise<void>): Promise<DispatchSpec[]> {
  const specs: DispatchSpec[] = [];
  const orig = d.dispatch.bind(d);
  d.dispatch = (spec) => {
    specs.push(spec);
    orig(spec);
  };
  try {
    await fn();
  } finally {
    d.dispatch = orig;
  }
  return specs;
}

async function dispatchNames(d: E.Device, fn: () => Promise<void>): Promise<string[]> {
  return (await dispatchSpecs(d, fn)).map((s) => s.kernel.family);
}
