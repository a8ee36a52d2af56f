// Reductions (sum, mean, max, argmax) forward and backward against float64 references.
import { describe, it, expect } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import { expectClose, f32, randArray } from '../helpers/compare.ts';
import { reduce64, size, coordsOf } from '../reference/ops64.ts';
import * as E from '../../engine/index.ts';

const CASES: [number[], number[] | undefined][] = [
  [[17, 33, 65], undefined],
  [[17, 33, 65], [0]],
  [[17, 33, 65], [1]],
  [[17, 33, 65], [2]],
  [[17, 33, 65], [0, 2]],
  [[4, 3, 5, 6], [0, 2, 3]],
  [[1_000_003], [0]],
  [[3, 70_001], [1]],
];

describe('reductions', () => {
  for (const [shape, axes] of CASES) {
    for (const kind of ['sum', 'mean', 'max'] as const) {
      it(`${kind} ${JSON.stringify(shape)} axes ${JSON.stringify(axes)}`, async () => {
        const d = await testDevice();
        const n = size(shape);
        const x64 = f32(randArray(n, n % 97, -1, 1));
        const X = E.Tensor.from(d, Float32Array.from(x64), shape);
        X.requiresGrad = true;
        const Y = E[kind](X, axes, true);
        const ax = axes ?? shape.map((_, i) => i);
        const want = reduce64(x64, shape, ax, kind);
        // NOTE: float32 summation error grows with the row length.
        const R = ax.reduce((a, i) => a * shape[i]!, 1);
        expectClose(await Y.f32(), want, { atol: kind === 'sum' ? 2e-7 * R : 1e-6, rtol: 1e-5 }, `${kind} forward`);
        const [g] = E.grad(E.sum(Y), [X]);
        const gv = await g!.f32();
        if (kind === 'max') {
          // gradient 1 at the (unique, random data) max position of each output
          const outShape = shape.map((dd, i) => (ax.includes(i) ? 1 : dd));
          let ones = 0;
          for (let i = 0; i < n; i++) {
            if (gv[i] !== 0) {
              ones++;
              const c = coordsOf(i, shape).map((v, k) => (ax.includes(k) ? 0 : v));
              const j = c.reduce((acc, v, k) => acc * outShape[k]! + v, 0);
              expect(x64[i]).toBe(want[j]);
              expect(gv[i]).toBe(1);
            }
          }
          expect(ones).toBe(want.length);
        } else {
          const scale = kind === 'mean' ? 1 / R : 1;
          for (let i = 0; i < n; i += Math.max(1, Math.floor(n / 1000))) expect(gv[i]).toBeCloseTo(scale, 6);
        }
      });
    }
  }
  it('argmax takes the first maximum and returns int32', async () => {
    const d = await testDevice();
    const X = E.Tensor.from(d, [1, 5, 5, 2, 9, 0, 9, 3, -1, -2, -3, -1], [3, 4]);
    const a = E.argmax(X, 1);
    expect(a.dtype).toBe('i32');
    expect(Array.from(await a.data())).toEqual([1, 0, 0]);
    expect(Array.from(await E.argmax(X, 0).data())).toEqual([1, 0, 1, 1]);
  });
  it('bad axes give clear errors', async () => {
    const d = await testDevice();
    const X = E.Tensor.from(d, [1, 2, 3, 4], [2, 2]);
    expect(() => E.sum(X, 2)).toThrow(/axis 2 is out of range for a tensor of rank 2/);
    expect(() => E.sum(X, [0, 0])).toThrow(/repeated axis/);
  });
});
