// Layout ops (permute, transpose, slice, concat, pad): forward and backward against float64
// references on awkward shapes, int32 copies, and argument errors.
import { describe, it, expect } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import { expectClose, f32, randArray } from '../helpers/compare.ts';
import { size } from '../reference/ops64.ts';
import { dot, maxRelErr, numericGrad } from '../reference/gradcheck.ts';
import { concat64, concat64Backward, pad64, pad64Backward, permute64, slice64, slice64Backward, sliceRange64 } from '../reference/layout64.ts';
import * as E from '../../engine/index.ts';
import { concat, pad, permute, slice, sliceIndices, transpose } from '../../engine/ops/layout.ts';

type Dev = Awaited<ReturnType<typeof testDevice>>;

function up(d: Dev, x: Float64Array, shape: number[], grad = true): E.Tensor {
  const t = E.Tensor.from(d, Float32Array.from(x), shape);
  t.requiresGrad = grad;
  return t;
}

/** Exact comparison (layout ops are copies). */
function expectExact(got: ArrayLike<number>, want: ArrayLike<number>, what: string): void {
  expectClose(got, want, { atol: 0, rtol: 0 }, what);
}

/** dx from E.grad with cotangent dy. */
async function vjp(y: E.Tensor, xs: E.Tensor[], dy64: Float64Array): Promise<Float32Array[]> {
  const dY = E.Tensor.from(y.device, Float32Array.from(dy64), y.shape);
  const gs = E.grad(y, xs, dY);
  const out = await Promise.all(gs.map((g) => g.f32()));
  gs.forEach((g) => g.dispose());
  dY.dispose();
  return out;
}

function iotaI32(n: number, mult = 7919): Int32Array {
  return Int32Array.from({ length: n }, (_, i) => ((i * mult) % 2147483647) - 1e9);
}

describe('permute / transpose', () => {
  const CASES: [number[], number[]][] = [
    [[17, 33, 65], [2, 0, 1]],
    [[17, 33, 65], [1, 0, 2]],
    [[17, 33, 65], [0, -1, -2]],
    [[1000], [0]],
    [[3, 4, 5, 2, 7], [4, 2, 0, 3, 1]],
    [[2, 1, 3, 1, 5, 2, 3, 2], [7, 6, 5, 4, 3, 2, 1, 0]],
    // innermost dim kept and 4-aligned: the vec4 copy path
    [[6, 5, 8], [1, 0, 2]],
    [[2, 3, 4, 4], [2, 1, 0, 3]],
    // batched transpose with both dims 4-aligned: the 4x4 block path
    [[3, 8, 12], [0, 2, 1]],
    [[12, 16], [1, 0]],
    [[4, 1, 20], [2, 1, 0]],
  ];
  for (const [shape, perm] of CASES) {
    it(`permute ${JSON.stringify(shape)} by ${JSON.stringify(perm)}`, async () => {
      const d = await testDevice();
      const x = f32(randArray(size(shape), size(shape) % 89, -1e30, 1e30));
      const X = up(d, x, shape);
      const Y = permute(X, perm);
      const ref = permute64(x, shape, perm);
      expect(Y.shape).toEqual(ref.shape);
      expectExact(await Y.f32(), ref.y, 'permute forward');
      const dy = f32(randArray(Y.size, 5));
      const [dx] = await vjp(Y, [X], dy);
      // The adjoint of a permutation is the inverse permutation.
      const inv = perm.map((_, i) => perm.map((p) => (p < 0 ? p + shape.length : p)).indexOf(i));
      expectExact(dx!, permute64(dy, ref.shape, inv).y, 'permute backward');
      X.dispose();
      Y.dispose();
    });
  }
  it('transpose defaults to the last two dims; int32 and rank 0 copy exactly', async () => {
    const d = await testDevice();
    const x = f32(randArray(17 * 33 * 65, 3));
    const X = up(d, x, [17, 33, 65], false);
    expectExact(await transpose(X).f32(), permute64(x, [17, 33, 65], [0, 2, 1]).y, 'transpose()');
    expectExact(await transpose(X, 0, -1).f32(), permute64(x, [17, 33, 65], [2, 1, 0]).y, 'transpose(0, -1)');
    const xi = iotaI32(5 * 6 * 7);
    const XI = E.Tensor.from(d, xi, [5, 6, 7]);
    const YI = permute(XI, [1, 2, 0]);
    expect(YI.dtype).toBe('i32');
    expect(Array.from(await YI.data())).toEqual(Array.from(permute64(Float64Array.from(xi), [5, 6, 7], [1, 2, 0]).y));
    const S = E.Tensor.from(d, [4.5], []);
    expect(Array.from(await permute(S, []).data())).toEqual([4.5]);
  });
  it('bad perms and axes give clear errors', async () => {
    const d = await testDevice();
    const X = E.Tensor.from(d, new Float32Array(24), [2, 3, 4]);
    expect(() => permute(X, [0, 1])).toThrow(/permute: perm must list all 3 dims of \[2, 3, 4\], got \[0, 1\]/);
    expect(() => permute(X, [0, 1, 1])).toThrow(/perm \[0, 1, 1\] repeats a dim/);
    expect(() => permute(X, [0, 1, 3])).toThrow(/permute: perm entry 3 is out of range for a tensor of rank 3/);
    expect(() => permute(X, [0, 1, 1.5])).toThrow(/perm entry 1.5/);
    expect(() => transpose(X, 0, 5)).toThrow(/transpose: dim1 5 is out of range/);
    expect(() => transpose(E.Tensor.from(d, [1, 2], [2]))).toThrow(/transpose: dim0 -2 is out of range for a tensor of rank 1/);
    const big = E.Tensor.from(d, new Float32Array(1), [1, 1, 1, 1, 1, 1, 1, 1, 1]);
    expect(() => permute(big, [0, 1, 2, 3, 4, 5, 6, 7, 8])).toThrow(/rank 9 .* at most 8/);
  });
});

describe('slice', () => {
  it('sliceIndices follows Python slice semantics', () => {
    const py = (n: number, s: number, e: number, k: number) => {
      const a = sliceIndices(n, s, e, k);
      return Array.from({ length: a.len }, (_, i) => a.start + i * a.step);
    };
    // Expected values written from Python: list(range(10))[s:e:k]
    expect(py(10, -3, Infinity, 1)).toEqual([7, 8, 9]);
    expect(py(10, 8, 1, -3)).toEqual([8, 5, 2]);
    expect(py(10, Infinity, -Infinity, -1)).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
    expect(py(10, -100, 100, 4)).toEqual([0, 4, 8]);
    expect(py(10, 100, -100, -4)).toEqual([9, 5, 1]);
    expect(py(10, 5, 5, 1)).toEqual([]);
    expect(py(10, 2, 8, -1)).toEqual([]);
    expect(py(0, 0, 5, 1)).toEqual([]);
    // and against the brute-force reference on a grid of bounds
    for (const n of [0, 1, 5, 7]) {
      for (let s = -9; s <= 9; s++) for (let e = -9; e <= 9; e++) for (const k of [-3, -2, -1, 1, 2, 3]) expect(py(n, s, e, k)).toEqual(sliceRange64(n, s, e, k));
    }
  });
  const CASES: [number[], number[], number[], number[] | undefined][] = [
    [[17, 33, 65], [1, -30, 0], [16, Infinity, 65], [2, 1, 3]],
    [[17, 33, 65], [-1, 30, 64], [-Infinity, 2, -66], [-3, -1, -7]],
    [[17, 33, 65], [3], [-2], undefined],
    [[1000], [999], [-1001], [-13]],
    [[1000], [5], [5], [1]],
    [[3, 4, 5, 2, 7], [1, 0, -4, 0, 6], [3, 4, 5, 2, 0], [1, 3, 2, 1, -2]],
    [[9, 12, 8], [1], [Infinity], [2]], // vec4 copy path
    [[9, 12, 8], [-1, 4], [-Infinity, 8], [-3, 1]],
  ];
  for (const [shape, st, en, sp] of CASES) {
    it(`slice ${JSON.stringify(shape)} ${JSON.stringify([st, en, sp])}`, async () => {
      const d = await testDevice();
      const x = f32(randArray(size(shape), 11, -1e30, 1e30));
      const X = up(d, x, shape);
      const Y = slice(X, st, en, sp);
      const ranges = st.map((s, i) => sliceRange64(shape[i]!, s, en[i]!, sp?.[i] ?? 1));
      const ref = slice64(x, shape, ranges);
      expect(Y.shape).toEqual(ref.shape);
      expectExact(await Y.f32(), ref.y, 'slice forward');
      if (Y.size > 0) {
        const dy = f32(randArray(Y.size, 6));
        const [dx] = await vjp(Y, [X], dy);
        expectExact(dx!, slice64Backward(dy, shape, ranges), 'slice backward');
      }
    });
  }
  it('slices int32 tensors exactly', async () => {
    const d = await testDevice();
    const xi = iotaI32(9 * 10);
    const Y = slice(E.Tensor.from(d, xi, [9, 10]), [-2, 9], [0, -Infinity], [-3, -2]);
    const ranges = [sliceRange64(9, -2, 0, -3), sliceRange64(10, 9, -Infinity, -2)];
    expect(Y.dtype).toBe('i32');
    expect(Array.from(await Y.data())).toEqual(Array.from(slice64(Float64Array.from(xi), [9, 10], ranges).y));
  });
  it('bad slice arguments give clear errors', async () => {
    const d = await testDevice();
    const X = E.Tensor.from(d, new Float32Array(6), [2, 3]);
    expect(() => slice(X, [0, 0], [1, 1], [1, 0])).toThrow(/slice: steps\[1\] is 0/);
    expect(() => slice(X, [0, 0, 0], [1, 1, 1])).toThrow(/slice: starts has 3 entries but the tensor has rank 2/);
    expect(() => slice(X, [0], [1, 1])).toThrow(/same length, got 1, 2 and 1/);
    expect(() => slice(X, [0.5], [1])).toThrow(/starts must hold integers/);
  });
});

describe('concat', () => {
  const CASES: [number[][], number][] = [
    [[[17, 33, 65], [17, 33, 1], [17, 33, 7]], -1],
    [[[17, 33, 65], [3, 33, 65]], 0],
    [[[17, 5, 65], [17, 0, 65], [17, 33, 65], [17, 1, 65]], 1],
    [[[1000], [1], [17]], 0],
    [[[3, 4, 5, 2, 7], [3, 4, 1, 2, 7]], -3],
    [[[4, 3, 8], [4, 5, 8], [4, 1, 8]], 1], // vec4 copy path
  ];
  for (const [shapes, axis] of CASES) {
    it(`concat ${JSON.stringify(shapes)} on axis ${axis}`, async () => {
      const d = await testDevice();
      const xs = shapes.map((s, i) => f32(randArray(size(s), 20 + i, -1e30, 1e30)));
      const Xs = xs.map((x, i) => up(d, x, shapes[i]!, i !== 1));
      const Y = concat(Xs, axis);
      const ref = concat64(xs, shapes, axis);
      expect(Y.shape).toEqual(ref.shape);
      expectExact(await Y.f32(), ref.y, 'concat forward');
      const dy = f32(randArray(Y.size, 8));
      const want = concat64Backward(dy, shapes, axis);
      const wrt = Xs.filter((_, i) => i !== 1);
      const got = await vjp(Y, wrt, dy);
      got.forEach((g, j) => expectExact(g, want[j === 0 ? 0 : j + 1]!, `concat backward input ${j === 0 ? 0 : j + 1}`));
    });
  }
  it('concatenates int32 tensors and checks its arguments', async () => {
    const d = await testDevice();
    const a = iotaI32(6);
    const b = iotaI32(9, 31);
    const Y = concat([E.Tensor.from(d, a, [2, 3]), E.Tensor.from(d, b, [3, 3])], 0);
    expect(Y.dtype).toBe('i32');
    expect(Array.from(await Y.data())).toEqual([...a, ...b]);
    const X = E.Tensor.from(d, new Float32Array(6), [2, 3]);
    expect(() => concat([], 0)).toThrow(/concat: tensors must be a non-empty array/);
    expect(() => concat([X, E.Tensor.from(d, new Float32Array(4), [2, 2])], 0)).toThrow(/tensors\[1\] has shape \[2, 2\], which does not match tensors\[0\] \[2, 3\] outside axis 0/);
    expect(() => concat([X, E.Tensor.from(d, new Int32Array(6), [2, 3])], 0)).toThrow(/tensors\[1\] is i32 but tensors\[0\] is f32/);
    expect(() => concat([X, X], 2)).toThrow(/concat: axis 2 is out of range for a tensor of rank 2/);
  });
});

describe('pad', () => {
  const CASES: [number[], [number, number][], number][] = [
    [[17, 33, 65], [[1, 2], [0, 3], [5, 0]], 0],
    [[17, 33, 65], [[2, 2], [1, 1]], -1e30],
    [[17, 33, 65], [[-3, 1], [2, -5]], 7.5],
    [[1000], [[3, 0]], 1],
    [[3, 4, 5, 2, 7], [[0, 1], [1, 0], [0, 0], [2, 3], [1, 1]], 0],
    [[3, 4, 5, 2, 7], [[1, 2], [0, 3]], 2], // leading untouched dims merge
    [[3, 4, 5, 2, 7], [[0, 0], [1, 0], [0, 0], [0, 0]], 0],
  ];
  for (const [shape, pads, value] of CASES) {
    it(`pad ${JSON.stringify(shape)} by ${JSON.stringify(pads)} with ${value}`, async () => {
      const d = await testDevice();
      const x = f32(randArray(size(shape), 31, -1e30, 1e30));
      const X = up(d, x, shape);
      const Y = pad(X, pads, value);
      const full: [number, number][] = shape.map((_, i) => pads[i - (shape.length - pads.length)] ?? [0, 0]);
      const ref = pad64(x, shape, full, Math.fround(value));
      expect(Y.shape).toEqual(ref.shape);
      expectExact(await Y.f32(), ref.y, 'pad forward');
      const dy = f32(randArray(Y.size, 9));
      const [dx] = await vjp(Y, [X], dy);
      expectExact(dx!, pad64Backward(dy, shape, full), 'pad backward');
    });
  }
  it('pads int32 tensors and checks its arguments', async () => {
    const d = await testDevice();
    const Y = pad(E.Tensor.from(d, Int32Array.from([1, 2, 3]), [3]), [[1, 2]], -7);
    expect(Y.dtype).toBe('i32');
    expect(Array.from(await Y.data())).toEqual([-7, 1, 2, 3, -7, -7]);
    const X = E.Tensor.from(d, new Float32Array(6), [2, 3]);
    expect(() => pad(X, [[0, 0], [0, 0], [0, 0]])).toThrow(/pad: pads must be an array of at most 2/);
    expect(() => pad(X, [[0, 1.5] as [number, number]])).toThrow(/each pad must be a pair of integers/);
    expect(() => pad(X, [[-2, -2]])).toThrow(/make dim 1 of \[2, 3\] negative \(-1\)/);
    expect(() => pad(E.Tensor.from(d, Int32Array.from([1]), [1]), [[1, 1]], 0.5)).toThrow(/value must be an integer for an i32 tensor/);
  });
});

describe('float64 references', () => {
  it('the adjoints equal central differences of the forward references', () => {
    const shape = [3, 4, 5];
    const x = randArray(60, 77);
    const check = (fwd: (x: Float64Array) => Float64Array, adj: (dy: Float64Array) => Float64Array, what: string) => {
      const dy = randArray(fwd(x).length, 78);
      const num = numericGrad((v) => dot(fwd(v), dy), x);
      expect(maxRelErr(adj(dy), num), what).toBeLessThan(1e-8);
    };
    const ranges = [sliceRange64(3, -1, -Infinity, -2), sliceRange64(4, 1, 4, 2), sliceRange64(5, 0, 5, 1)];
    check((v) => slice64(v, shape, ranges).y, (dy) => slice64Backward(dy, shape, ranges), 'slice');
    const pads: [number, number][] = [[1, 0], [-1, 2], [0, 3]];
    check((v) => pad64(v, shape, pads, 3).y, (dy) => pad64Backward(dy, shape, pads), 'pad');
    check((v) => permute64(v, shape, [2, 0, 1]).y, (dy) => permute64(dy, [5, 3, 4], [1, 2, 0]).y, 'permute');
    const shapes = [[3, 1, 5], [3, 3, 5]];
    check((v) => concat64([v.subarray(0, 15), v.subarray(15)], shapes, 1).y, (dy) => {
      const [a, b] = concat64Backward(dy, shapes, 1);
      return Float64Array.from([...a!, ...b!]);
    }, 'concat');
  });
});

describe('memory', () => {
  it('forward and backward leave no live buffers behind', async () => {
    const d = await testDevice();
    const X = up(d, randArray(4 * 5 * 6, 1), [4, 5, 6]);
    const before = d.stats().liveBuffers;
    for (let i = 0; i < 3; i++) {
      E.scope(() => {
        const y = E.sum(concat([pad(permute(X, [2, 1, 0]), [[1, 1]]), slice(transpose(X, 0, 2), [Infinity], [-Infinity], [-1])], -1));
        const [g] = E.grad(y, [X]);
        g!.dispose();
      });
    }
    await d.sync();
    expect(d.stats().liveBuffers).toBe(before);
  });
});
