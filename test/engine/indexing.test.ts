// Indexing ops (gather, takeAlongAxis, oneHot, range checks): forward and backward against
// float64 references, both scatter-free gather backwards, int32 data and argument errors.
import { describe, it, expect } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import { expectClose, f32, randArray } from '../helpers/compare.ts';
import { size } from '../reference/ops64.ts';
import { dot, maxRelErr, numericGrad } from '../reference/gradcheck.ts';
import { gather64, gather64Backward, oneHot64, takeAlongAxis64, takeAlongAxis64Backward } from '../reference/layout64.ts';
import * as E from '../../engine/index.ts';
import { assertIndexRange, assertLabelRange, gather, gatherBackward, oneHot, oneHotChecked, takeAlongAxis } from '../../engine/ops/indexing.ts';

/** Deterministic int indices in [lo, hi). */
function randInts(n: number, seed: number, lo: number, hi: number): Int32Array {
  return Int32Array.from(randArray(n, seed, lo, hi), (v) => Math.floor(v));
}

async function vjp(y: E.Tensor, x: E.Tensor, dy64: Float64Array): Promise<Float32Array> {
  const dY = E.Tensor.from(y.device, Float32Array.from(dy64), y.shape);
  const [g] = E.grad(y, [x], dY);
  const out = await g!.f32();
  g!.dispose();
  dY.dispose();
  return out;
}

describe('gather', () => {
  // [x shape, axis, index shape, index range (hi may exceed the axis: out-of-range reads 0)]
  const CASES: [number[], number, number[], number][] = [
    [[17, 33, 65], 0, [40], 17],
    [[17, 33, 65], 1, [5, 7], 33],
    [[17, 33, 65], -1, [100], 70],
    [[1000], 0, [3001], 1000],
    [[3, 4, 5, 2, 7], 2, [9], 5],
    [[3, 4, 5, 2, 7], -1, [2, 3], 7],
    [[17, 33, 65], 1, [0], 33],
  ];
  for (const [shape, axis, ishape, hi] of CASES) {
    it(`gather ${JSON.stringify(shape)} axis ${axis} indices ${JSON.stringify(ishape)}`, async () => {
      const d = await testDevice();
      const x = f32(randArray(size(shape), 41, -1e30, 1e30));
      const idx = randInts(size(ishape), 42 + ishape.length, 0, hi);
      const X = E.Tensor.from(d, Float32Array.from(x), shape);
      X.requiresGrad = true;
      const I = E.Tensor.from(d, idx, ishape);
      const Y = gather(X, I, axis);
      const ref = gather64(x, shape, idx, ishape, axis);
      expect(Y.shape).toEqual(ref.shape);
      expectClose(await Y.f32(), ref.y, { atol: 0, rtol: 0 }, 'gather forward');
      if (Y.size === 0) return;
      // Backward sums repeated indices: moderate values keep float32 sums comparable.
      const dy = f32(randArray(Y.size, 43));
      const want = gather64Backward(dy, shape, idx, ishape, axis);
      const K = idx.length;
      expectClose(await vjp(Y, X, dy), want, { atol: 1e-6 * K, rtol: 1e-6 }, 'gather backward (auto)');
      // Both scatter-free implementations, forced.
      const a = axis < 0 ? axis + shape.length : axis;
      const outer = size(shape.slice(0, a));
      const inner = size(shape.slice(a + 1));
      const DY = E.Tensor.from(d, Float32Array.from(dy), [Y.size]);
      for (const mode of ['naive', 'bucket'] as const) {
        const g = gatherBackward(DY, I, outer, shape[a]!, inner, mode);
        expectClose(await g.f32(), want, { atol: 1e-6 * K, rtol: 1e-6 }, `gather backward (${mode})`);
        g.dispose();
      }
    });
  }
  it('heavy repeats and every destination hit: both backwards agree with the reference', async () => {
    const d = await testDevice();
    const shape = [300, 3, 5];
    const idx = new Int32Array(2000);
    for (let k = 0; k < idx.length; k++) idx[k] = k < 1000 ? 7 : k % 300; // 1000+ hits on row 7
    const dy = f32(randArray(2000 * 15, 44));
    const want = gather64Backward(dy, shape, idx, [2000], 0);
    const I = E.Tensor.from(d, idx, [2000]);
    const DY = E.Tensor.from(d, Float32Array.from(dy), [2000 * 15]);
    for (const mode of ['naive', 'bucket'] as const) {
      const g = gatherBackward(DY, I, 1, 300, 15, mode);
      expectClose(await g.f32(), want, { atol: 1e-4, rtol: 1e-6 }, `gather backward (${mode})`);
    }
  });
  it('gathers int32 data exactly', async () => {
    const d = await testDevice();
    const xi = Int32Array.from({ length: 6 * 5 }, (_, i) => i * 65537 - 2 ** 30);
    const idx = Int32Array.from([4, 0, 0, 3, 5]);
    const Y = gather(E.Tensor.from(d, xi, [6, 5]), E.Tensor.from(d, idx), 1);
    expect(Y.dtype).toBe('i32');
    expect(Array.from(await Y.data())).toEqual(Array.from(gather64(Float64Array.from(xi), [6, 5], idx, [5], 1).y));
  });
  it('bad arguments give clear errors', async () => {
    const d = await testDevice();
    const X = E.Tensor.from(d, new Float32Array(6), [2, 3]);
    expect(() => gather(X, E.Tensor.from(d, [0, 1]), 0)).toThrow(/gather: indices must be an i32 tensor, got f32 tensor of shape \[2\]/);
    expect(() => gather(X, E.Tensor.from(d, Int32Array.from([0])), 2)).toThrow(/gather: axis 2 is out of range for a tensor of rank 2/);
    expect(() => gather(E.Tensor.from(d, [1], []), E.Tensor.from(d, Int32Array.from([0])), 0)).toThrow(/rank >= 1/);
  });
});

describe('takeAlongAxis', () => {
  const CASES: [number[], number][] = [
    [[257, 10], 1],
    [[17, 33, 65], -1],
    [[17, 33, 65], 1],
    [[3, 4, 5, 2, 7], 0],
    [[1000], 0],
  ];
  for (const [shape, axis] of CASES) {
    it(`takeAlongAxis ${JSON.stringify(shape)} axis ${axis}`, async () => {
      const d = await testDevice();
      const a = axis < 0 ? axis + shape.length : axis;
      const ishape = shape.filter((_, i) => i !== a);
      const x = f32(randArray(size(shape), 51, -1e30, 1e30));
      // a few out-of-range entries (including negatives) read 0 and get no gradient
      const idx = randInts(size(ishape), 52, -1, shape[a]! + 1);
      const X = E.Tensor.from(d, Float32Array.from(x), shape);
      X.requiresGrad = true;
      const Y = takeAlongAxis(X, E.Tensor.from(d, idx, ishape), axis);
      const ref = takeAlongAxis64(x, shape, idx, axis);
      expect(Y.shape).toEqual(ref.shape);
      expectClose(await Y.f32(), ref.y, { atol: 0, rtol: 0 }, 'takeAlongAxis forward');
      const dy = f32(randArray(Y.size, 53, -1e30, 1e30));
      expectClose(await vjp(Y, X, dy), takeAlongAxis64Backward(dy, shape, idx, axis), { atol: 0, rtol: 0 }, 'takeAlongAxis backward');
    });
  }
  it('checks the index shape and dtype', async () => {
    const d = await testDevice();
    const X = E.Tensor.from(d, new Float32Array(12), [4, 3]);
    expect(() => takeAlongAxis(X, E.Tensor.from(d, Int32Array.from([0, 1, 2])), 1)).toThrow(/takeAlongAxis: idx must have shape \[4\] \(x \[4, 3\] without axis 1\), got \[3\]/);
    expect(() => takeAlongAxis(X, E.Tensor.from(d, [0, 1, 2, 0]), 1)).toThrow(/idx must be an i32 tensor/);
  });
});

describe('oneHot', () => {
  it('matches the reference; an out-of-range label gives a zero row', async () => {
    const d = await testDevice();
    const labels = Int32Array.from([3, 0, 9, 10, -1, 5, 9]);
    const Y = oneHot(E.Tensor.from(d, labels), 10);
    expect(Y.shape).toEqual([7, 10]);
    expect(Y.dtype).toBe('f32');
    expectClose(await Y.f32(), oneHot64(labels, 10), { atol: 0, rtol: 0 }, 'oneHot');
    const L2 = E.Tensor.from(d, randInts(4 * 33, 61, 0, 17), [4, 33]);
    const Y2 = oneHot(L2, 17);
    expect(Y2.shape).toEqual([4, 33, 17]);
    expectClose(await Y2.f32(), oneHot64(await L2.data(), 17), { atol: 0, rtol: 0 }, 'oneHot rank 2');
  });
  it('assertLabelRange and oneHotChecked name the bad label and its index', async () => {
    const d = await testDevice();
    const L = E.Tensor.from(d, Int32Array.from([3, 0, 9, 12, 5]));
    await expect(assertLabelRange(L, 10)).rejects.toThrow('kinkless: oneHot: label 12 at index 3 is out of range [0, 10)');
    await expect(oneHotChecked(L, 10)).rejects.toThrow(/label 12 at index 3/);
    await expect(assertLabelRange(E.Tensor.from(d, Int32Array.from([0, -2])), 10)).rejects.toThrow(/label -2 at index 1/);
    await assertLabelRange(L, 13);
    expect((await oneHotChecked(L, 13)).shape).toEqual([5, 13]);
    await expect(assertIndexRange(E.Tensor.from(d, Int32Array.from([0, 1, 2, 7]), [2, 2]), 5, 'gather')).rejects.toThrow(
      'kinkless: gather: index 7 at index 3 (coords [1, 1]) is out of range [0, 5)',
    );
    expect(() => oneHot(E.Tensor.from(d, [1, 2]), 3)).toThrow(/oneHot: labels must be an i32 tensor/);
    expect(() => oneHot(L, 0)).toThrow(/numClasses must be a positive integer, got 0/);
  });
});

describe('float64 references', () => {
  it('gather and takeAlongAxis adjoints equal central differences', () => {
    const shape = [4, 5, 3];
    const x = randArray(60, 90);
    const check = (fwd: (x: Float64Array) => Float64Array, adj: (dy: Float64Array) => Float64Array, what: string) => {
      const dy = randArray(fwd(x).length, 91);
      const num = numericGrad((v) => dot(fwd(v), dy), x);
      expect(maxRelErr(adj(dy), num), what).toBeLessThan(1e-8);
    };
    const idx = Int32Array.from([4, 0, 4, 2, 9, 4]);
    check((v) => gather64(v, shape, idx, [2, 3], 1).y, (dy) => gather64Backward(dy, shape, idx, [2, 3], 1), 'gather');
    const t = Int32Array.from([0, 3, 1, 4, 4, 2, 0, 1, 5, 2, 3, 3]);
    check((v) => takeAlongAxis64(v, shape, t, 1).y, (dy) => takeAlongAxis64Backward(dy, shape, t, 1), 'takeAlongAxis');
  });
});

describe('cost', () => {
  it('bucketed gather backward stays cheap for embedding-like shapes', async () => {
    const d = await testDevice();
    const [A, D, K] = [1000, 32, 2048];
    const idx = randInts(K, 71, 0, A);
    const DY = E.Tensor.from(d, Float32Array.from(randArray(K * D, 72)), [K * D]);
    const I = E.Tensor.from(d, idx);
    const times: Record<string, number> = {};
    for (const mode of ['bucket', 'naive'] as const) {
      for (let rep = 0; rep < 2; rep++) {
        const t0 = performance.now();
        const g = gatherBackward(DY, I, 1, A, D, mode);
        await g.data();
        times[mode] = performance.now() - t0;
        g.dispose();
      }
    }
    console.log(`gather backward [${A}x${D}] <- ${K} indices: bucket ${times.bucket!.toFixed(1)} ms, naive ${times.naive!.toFixed(1)} ms`);
    expect(times.bucket!).toBeLessThan(times.naive!);
  });
});
