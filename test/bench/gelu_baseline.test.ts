// bench/gelu_baseline.ts: the "before" GELU forward (k_gelu_parts, appended from the
// bench-only kernels/wgsl_gelu_parts_before.ts, no longer in wgslMath()) still compiles and
// computes x Phi(x) within 2.5 ULP of float64, on a size no vec4 workgroup divides.
import { describe, expect, it } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import * as E from '../../engine/index.ts';
import { geluForwardBefore } from '../../bench/gelu_baseline.ts';
import { ACTIVATIONS } from '../../kernels/activations.ts';

function ulp32(v: number): number {
  const a = Math.abs(v);
  if (a < 1.1754943508222875e-38) return 1.401298464324817e-45;
  return 2 ** (Math.floor(Math.log2(a)) - 23);
}

describe('bench GELU baseline (k_gelu_parts)', () => {
  it('matches float64 x Phi(x) within 2.5 ULP on [-14, 10] and gives gelu(-inf) = -0, gelu(inf) = inf', async () => {
    const d = await testDevice();
    const n = 4 * 5003;
    const xs = new Float32Array(n);
    for (let i = 0; i < n; i++) xs[i] = -14 + (24 * i) / (n - 1);
    xs[0] = -Infinity;
    xs[n - 1] = Infinity;
    const X = E.Tensor.from(d, xs, [n]);
    const Y = geluForwardBefore(X);
    const y = await Y.f32();
    X.dispose();
    Y.dispose();
    let worst = 0;
    let at = NaN;
    for (let i = 1; i < n - 1; i++) {
      const want = ACTIVATIONS.gelu.f(xs[i]!, []);
      const e = Math.abs(y[i]! - want) / ulp32(want);
      if (!(e <= worst)) [worst, at] = [e, xs[i]!];
    }
    expect(worst, `baseline GELU ULP error (worst at x = ${at})`).toBeLessThanOrEqual(2.5);
    expect(Object.is(y[0], -0), `gelu(-inf) = ${y[0]}`).toBe(true);
    expect(y[n - 1]).toBe(Infinity);
  });
});
