// The dropout engine op (engine/ops/dropout.ts): forward x * mask / (1 - p) and its
// backward dy * mask / (1 - p) against float64, on a shape that is not a multiple of 4
// and one that is; the Dropout layer draws its mask from the Philox stream.
import { describe, it, expect } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import { expectClose, f32, randArray } from '../helpers/compare.ts';
import { bernoulli } from '../reference/philox.ts';
import * as E from '../../engine/index.ts';
import { Dropout } from '../../nn/layers.ts';

describe('dropout op', () => {
  for (const shape of [[3, 7, 5], [4, 8]]) {
    it(`forward and backward ${JSON.stringify(shape)}`, async () => {
      const d = await testDevice();
      const n = shape.reduce((a, b) => a * b, 1);
      const x64 = f32(randArray(n, 1, -3, 3));
      const m64 = Float64Array.from(randArray(n, 2, 0, 1), (v) => (v < 0.6 ? 1 : 0));
      const dy64 = f32(randArray(n, 3, -1, 1));
      const p = 0.4;
      const x = E.Tensor.from(d, Float32Array.from(x64), shape);
      x.requiresGrad = true;
      const mask = E.Tensor.from(d, Float32Array.from(m64), shape);
      const y = E.dropout(x, mask, p);
      expectClose(await y.f32(), Float64Array.from(x64, (v, i) => (v * m64[i]!) / (1 - p)), { atol: 1e-6, rtol: 1e-6 }, 'dropout forward');
      const [dx] = E.grad(y, [x], E.Tensor.from(d, Float32Array.from(dy64), shape));
      expectClose(await dx!.f32(), Float64Array.from(dy64, (v, i) => (v * m64[i]!) / (1 - p)), { atol: 1e-6, rtol: 1e-6 }, 'dropout backward');
    });
  }

  it('the layer uses the Philox Bernoulli mask; bad arguments are named', async () => {
    const d = await testDevice();
    const x64 = f32(randArray(30, 5, -1, 1));
    const x = E.Tensor.from(d, Float32Array.from(x64), [5, 6]);
    const layer = new Dropout(0.25, 7);
    const y = await layer.forward(x).f32();
    const keepMask = bernoulli(7, 0, 30, 0.75);
    expectClose(y, Float64Array.from(x64, (v, i) => (v * keepMask[i]!) / 0.75), { atol: 1e-6, rtol: 1e-6 }, 'layer');
    expect(() => E.dropout(x, E.Tensor.from(d, new Float32Array(30), [6, 5]), 0.5)).toThrow(/dropout: mask must have x's shape/);
    expect(() => E.dropout(x, x, 1)).toThrow(/dropout: p must be in \[0, 1\)/);
    layer.dispose();
  });
});
