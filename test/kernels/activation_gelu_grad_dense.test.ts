// GELU (erf form) derivative Phi(x) + x phi(x) on a dense sweep, against float64, for both
// GPU paths that compute it: the backward kernel (activationBackwardFromZ, dy = 1) and the
// one-pass value-and-gradient kernel (activationValueAndGrad, gy omitted = 1), whose value
// must also equal the forward kernel's bit for bit (docs/numerics.md, GELU bullet: all three
// evaluate the same 4-piece R and the same rounding of x Phi). Set KINKLESS_VERBOSE=1 to
// print the measured errors. The 10001-point regions and the ULP definitions are in
// test/kernels/activation_gelu_ulp.test.ts.
import { describe, expect, it } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import * as E from '../../engine/index.ts';
import { activation, activationBackwardFromZ } from '../../engine/ops/activation.ts';
import { activationValueAndGrad } from '../../engine/ops/activation_value_grad.ts';
import { ACTIVATIONS } from '../../kernels/activations.ts';
import { normalCdf64, normalPdf64 } from '../../kernels/reference_math.ts';
import { log } from '../helpers/activation.ts';

function ulp32(v: number): number {
  const a = Math.abs(v);
  if (a < 1.1754943508222875e-38) return 1.401298464324817e-45;
  return 2 ** (Math.floor(Math.log2(a)) - 23);
}

// NOTE: GELU' has a zero at x = -0.7518 where Phi and x phi cancel: on [-1.3, 0) its error
// is measured in ULP of the larger of the two terms (as in activation_gelu_ulp.test.ts).
// Below x = -13.1 phi is subnormal in f32 and x phi inherits its absolute rounding (2^-150
// times |x|), so [-14.5, -13) is bounded in ULP of 2^-149 loosely. Bounds: docs/numerics.md.
const REGIONS: [string, number, number, number][] = [
  ['[-14.5, -13)', -14.5, -13, 8.5],
  ['[-13, -10)', -13, -10, 3],
  ['[-10, -5)', -10, -5, 3],
  ['[-5, -1.3)', -5, -1.3, 3],
  ['[-1.3, 0) (ULP of the larger term)', -1.3, 0, 3],
  ['(0, 10)', 0, 10, 2],
  ['[10, 14.5]', 10, 14.5, 1],
];

function inRegion(x: number, lo: number, hi: number): boolean {
  return lo === 0 ? x > 0 && x < hi : x >= lo && (hi === 14.5 ? x <= hi : x < hi);
}

describe('GELU (erf form) derivative on a dense sweep', () => {
  it('backward and one-pass dx within 3 ULP of float64 per region (2 for x > 0) on 2^22 + 3 points; one-pass value = forward bit for bit', async () => {
    const d = await testDevice();
    const N = (1 << 22) + 3;
    const xs = new Float32Array(N);
    for (let i = 0; i < N; i++) xs[i] = -14.5 + (29 * i) / (N - 1);
    const X = E.Tensor.from(d, xs, [N]);
    const ones = E.Tensor.from(d, new Float32Array(N).fill(1), [N]);
    const Y = activation(X, 'gelu');
    const { dz } = activationBackwardFromZ(X, ones, 'gelu');
    const vg = activationValueAndGrad(X, 'gelu');
    const y = await Y.f32();
    const bwd = await dz!.f32();
    const vy = await vg.y!.f32();
    const vdx = await vg.dx.f32();
    for (const t of [X, ones, Y, dz, vg.y, vg.dx]) t?.dispose();

    let firstDiff = -1;
    for (let i = 0; i < N && firstDiff < 0; i++) if (!Object.is(y[i], vy[i])) firstDiff = i;
    expect(firstDiff, `one-pass value differs from the forward at x = ${xs[firstDiff]}: ${vy[firstDiff]} vs ${y[firstDiff]}`).toBe(-1);

    for (const [name, lo, hi, bound] of REGIONS) {
      const worst = { bwd: 0, vg: 0, fwd: 0 };
      const at = { bwd: NaN, vg: NaN, fwd: NaN };
      let count = 0;
      for (let i = 0; i < N; i++) {
        const x = xs[i]!;
        if (!inRegion(x, lo, hi)) continue;
        count++;
        const want = ACTIVATIONS.gelu.df(x, []);
        const scale = x < 0 && x >= -1.3 ? Math.max(normalCdf64(x), Math.abs(x * normalPdf64(x))) : Math.abs(want);
        const eb = Math.abs(bwd[i]! - want) / ulp32(scale);
        const ev = Math.abs(vdx[i]! - want) / ulp32(scale);
        const fw = ACTIVATIONS.gelu.f(x, []);
        const ef = Math.abs(vy[i]! - fw) / ulp32(fw);
        if (!(eb <= worst.bwd)) [worst.bwd, at.bwd] = [eb, x];
        if (!(ev <= worst.vg)) [worst.vg, at.vg] = [ev, x];
        if (!(ef <= worst.fwd)) [worst.fwd, at.fwd] = [ef, x];
      }
      log(`gelu' dense ${name}: backward max ${worst.bwd.toFixed(2)} ULP at ${at.bwd}; one-pass dx ${worst.vg.toFixed(2)} at ${at.vg}; one-pass value ${worst.fwd.toFixed(2)} at ${at.fwd} (${count} points)`);
      expect(count, `points in ${name}`).toBeGreaterThan(100000);
      expect.soft(worst.bwd, `gelu backward ULP error, ${name} (worst at x = ${at.bwd})`).toBeLessThanOrEqual(bound);
      expect.soft(worst.vg, `gelu one-pass dx ULP error, ${name} (worst at x = ${at.vg})`).toBeLessThanOrEqual(bound);
    }
  }, 120_000);
});
