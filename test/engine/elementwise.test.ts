// Elementwise ops, forward and backward, against float64 references on shapes that do
// not divide the tiles, with broadcasting and extreme inputs.
import { describe, it, expect } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import { expectClose, expectNoNaN, f32, randArray } from '../helpers/compare.ts';
import { binary64, sumTo64, size } from '../reference/ops64.ts';
import * as E from '../../engine/index.ts';

type BinOp = (a: E.Tensor, b: E.Tensor) => E.Tensor;
const BIN: [string, BinOp, (x: number, y: number) => number, (x: number, y: number) => [number, number]][] = [
  ['add', E.add, (x, y) => x + y, () => [1, 1]],
  ['sub', E.sub, (x, y) => x - y, () => [1, -1]],
  ['mul', E.mul, (x, y) => x * y, (x, y) => [y, x]],
  ['div', E.div, (x, y) => x / y, (x, y) => [1 / y, -x / (y * y)]],
  ['maximum', E.maximum, Math.max, (x, y) => (x > y ? [1, 0] : x < y ? [0, 1] : [0.5, 0.5])],
  ['minimum', E.minimum, Math.min, (x, y) => (x < y ? [1, 0] : x > y ? [0, 1] : [0.5, 0.5])],
];

const SHAPES: [number[], number[]][] = [
  [[17, 33, 65], [17, 33, 65]],
  [[17, 33, 65], [65]],
  [[17, 1, 65], [33, 1]],
  [[5, 7], []],
  [[3, 1, 4, 1], [1, 5, 1, 6]],
];

describe('elementwise binary ops', () => {
  for (const [name, op, f, df] of BIN) {
    for (const [as, bs] of SHAPES) {
      it(`${name} ${JSON.stringify(as)} x ${JSON.stringify(bs)} forward and backward`, async () => {
        const d = await testDevice();
        const a64 = f32(randArray(size(as), 3, -2, 2));
        // keep divisors away from 0
        const b64 = f32(randArray(size(bs), 7, -2, 2).map((v) => (name === 'div' ? Math.sign(v || 1) * (0.5 + Math.abs(v)) : v)));
        const A = E.Tensor.from(d, Float32Array.from(a64), as);
        const B = E.Tensor.from(d, Float32Array.from(b64), bs);
        A.requiresGrad = B.requiresGrad = true;
        const Y = op(A, B);
        const ref = binary64(a64, as, b64, bs, f);
        expect(Y.shape).toEqual(ref.shape);
        expectClose(await Y.f32(), ref.y, { atol: 1e-6, rtol: 1e-6 }, `${name} forward`);
        const dy64 = f32(randArray(ref.y.length, 11));
        const [gA, gB] = E.grad(Y, [A, B], E.Tensor.from(d, Float32Array.from(dy64), ref.shape));
        const ga = binary64(a64, as, b64, bs, (x, y) => df(x, y)[0]);
        const gb = binary64(a64, as, b64, bs, (x, y) => df(x, y)[1]);
        const wa = sumTo64(ga.y.map((v, i) => v * dy64[i]!), ref.shape, as);
        const wb = sumTo64(gb.y.map((v, i) => v * dy64[i]!), ref.shape, bs);
        expectClose(await gA!.f32(), wa, { atol: 1e-4, rtol: 1e-5 }, `${name} dA`);
        expectClose(await gB!.f32(), wb, { atol: 1e-4, rtol: 1e-5 }, `${name} dB`);
      });
    }
  }
  it('scalar operands and broadcasting errors', async () => {
    const d = await testDevice();
    const A = E.Tensor.from(d, [1, 2, 3], [3]);
    expectClose(await E.mul(A, 2).f32(), [2, 4, 6]);
    expectClose(await E.sub(1, A).f32(), [0, -1, -2]);
    expect(() => E.add(A, E.Tensor.from(d, [1, 2], [2]))).toThrow(/cannot be broadcast together/);
    expect(() => E.add(A, E.Tensor.from(d, [1, 2, 3], [3], 'i32'))).toThrow(/b must be f32/);
  });
});

type UnOp = (x: E.Tensor) => E.Tensor;
const UN: [string, UnOp, (x: number) => number, (x: number) => number, number[]][] = [
  ['neg', E.neg, (x) => -x, () => -1, [-3, 3]],
  ['exp', E.exp, Math.exp, Math.exp, [-5, 5]],
  ['log', E.log, Math.log, (x) => 1 / x, [0.1, 5]],
  ['sqrt', E.sqrt, Math.sqrt, (x) => 0.5 / Math.sqrt(x), [0.1, 5]],
  ['abs', E.abs, Math.abs, (x) => Math.sign(x), [-3, 3]],
  ['clamp', (x) => E.clamp(x, -0.5, 0.7), (x) => Math.min(0.7, Math.max(-0.5, x)), (x) => (x >= -0.5 && x <= 0.7 ? 1 : 0), [-2, 2]],
  ['pow3', (x) => E.powScalar(x, 3), (x) => x ** 3, (x) => 3 * x * x, [-2, 2]],
  ['pow2.5', (x) => E.powScalar(x, 2.5), (x) => x ** 2.5, (x) => 2.5 * x ** 1.5, [0.1, 3]],
  ['pow-1', (x) => E.powScalar(x, -1), (x) => 1 / x, (x) => -1 / (x * x), [0.5, 3]],
];

describe('elementwise unary ops', () => {
  for (const [name, op, f, df, [lo, hi]] of UN) {
    for (const n of [1, 7, 4096, 17 * 33 * 65]) {
      it(`${name} n=${n}`, async () => {
        const d = await testDevice();
        const x64 = f32(randArray(n, n + 5, lo, hi));
        const X = E.Tensor.from(d, Float32Array.from(x64), [n]);
        X.requiresGrad = true;
        const Y = op(X);
        expectClose(await Y.f32(), x64.map(f), { atol: 1e-6, rtol: 4e-6 }, `${name} forward`);
        const [g] = E.grad(E.sum(Y), [X]);
        expectClose(await g!.f32(), x64.map(df), { atol: 1e-5, rtol: 1e-5 }, `${name} backward`);
      });
    }
  }
  it('extreme inputs give no NaN', async () => {
    const d = await testDevice();
    const ext = [0, -0, 1e-30, -1e-30, 30, -30, 100, -100, 400, -400, 1e30, -1e30];
    const X = E.Tensor.from(d, ext, [ext.length]);
    for (const op of [E.exp, E.abs, E.neg, (x: E.Tensor) => E.clamp(x, 0, 1), (x: E.Tensor) => E.powScalar(x, 2), E.sign]) {
      expectNoNaN(await op(X).f32());
    }
    const e = await E.exp(X).f32();
    expect(e[10]).toBeGreaterThan(3e38); // exp(1e30) saturates at the largest float32
    expect(e[11]).toBe(0);
    const pos = E.Tensor.from(d, [0, 1e-30, 1e30], [3]);
    expectNoNaN(await E.log(pos).f32());
    expectNoNaN(await E.sqrt(pos).f32());
  });
  it('comparisons and where', async () => {
    const d = await testDevice();
    const a = E.Tensor.from(d, [1, 2, 3, 4, 5], [5]);
    const b = E.Tensor.from(d, [5, 2, 1, 4, 0], [5]);
    expectClose(await E.gt(a, b).f32(), [0, 0, 1, 0, 1]);
    expectClose(await E.ge(a, b).f32(), [0, 1, 1, 1, 1]);
    expectClose(await E.lt(a, 3).f32(), [1, 1, 0, 0, 0]);
    expectClose(await E.eq(a, b).f32(), [0, 1, 0, 1, 0]);
    expectClose(await E.ne(a, b).f32(), [1, 0, 1, 0, 1]);
    const li = E.Tensor.from(d, new Int32Array([1, 2, 3]), [3]);
    const lj = E.Tensor.from(d, new Int32Array([1, 0, 3]), [3]);
    expectClose(await E.eq(li, lj).f32(), [1, 0, 1]);
    a.requiresGrad = true;
    const w = E.where(E.gt(a, 2.5), a, E.mul(a, -1));
    expectClose(await w.f32(), [-1, -2, 3, 4, 5]);
    const [g] = E.grad(E.sum(w), [a]);
    expectClose(await g!.f32(), [-1, -1, 1, 1, 1]);
  });
});
