// GPU fused activation kernels (engine/ops/activation.ts) against the float64 references
// of kernels/activations.ts: forward, dx and parameter gradients for every kind, on
// awkward sizes and extreme inputs (no NaN), both kernel paths (vec4 with a masked tail,
// scalar), learnable raw params through the table's constraints. Tolerances per kind:
// test/helpers/activation.ts (TOL). The extreme-input test adds an atol relative to |x|
// (1e-7 |x|), since f32 rounding of a*x at |x| = 1e30 is itself ~6e-8 relative. Other
// activation GPU tests: test/kernels/activation_gelu_ulp (GELU's ULP error), activation_properties
// (f'(0), jumps, convergence to ReLU), activation_params (learnable params, surrogate,
// sharing), activation_fusion (epilogue helper, errors, memory), activation_ieee (NaN,
// +-inf). Set KINKLESS_VERBOSE=1 to print the measured errors.
import { describe, expect, it } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import { expectClose, f32, randArray } from '../helpers/compare.ts';
import * as E from '../../engine/index.ts';
import { activation } from '../../engine/ops/activation.ts';
import { ACTIVATIONS, ACTIVATION_KINDS } from '../../kernels/activations.ts';
import { RAW, TOL, checkAll, checkExtremes, eff, ref, runGpu } from '../helpers/activation.ts';

const SIZES = [1, 7, 1023, 17 * 33 * 65];

describe('fused activation kernels vs float64 references', () => {
  for (const kind of ACTIVATION_KINDS) {
    it(`${kind}: forward, dx and param grads at sizes ${SIZES.join(', ')} (vec4 path, tensor params)`, async () => {
      const d = await testDevice();
      expect(RAW(kind).length, `${kind}: RAW_VALUES needs a row for each kind with params`).toBe(ACTIVATIONS[kind].params.length);
      for (const n of SIZES) {
        const x = f32(randArray(n, 17 + n, -8, 8));
        if (n > 10) for (let i = 0; i < n; i += 97) x[i] = 0; // exact zeros (the kinks)
        const dy = f32(randArray(n, 91 + n));
        const got = await runGpu(d, kind, x, dy, RAW(kind));
        checkAll(kind, got, x, dy, RAW(kind), TOL[kind], `${kind} n=${n}`);
      }
    });
  }

  it('scalar path with host-number params matches the references (every kind)', async () => {
    const d = await testDevice();
    const n = 1021;
    const x = f32(randArray(n, 5, -10, 10));
    const dy = f32(randArray(n, 6));
    for (const kind of ACTIVATION_KINDS) {
      const p = eff(kind, RAW(kind));
      const X = E.Tensor.from(d, Float32Array.from(x), [n]);
      X.requiresGrad = true;
      const Y = activation(X, { kind, params: [...p] }, { vec4: false });
      const [gx] = E.grad(Y, [X], E.Tensor.from(d, Float32Array.from(dy), [n]));
      const r = ref(kind, x, dy, [...p], Array.from(p, () => 1));
      expectClose(await Y.f32(), r.y, TOL[kind].f, `${kind} scalar forward`);
      expectClose(await gx!.f32(), r.dx, TOL[kind].df, `${kind} scalar dx`);
    }
  });

  it('extreme inputs (0, +-1e-30, +-30, +-100, +-400, +-1e30): close to the references, no NaN', async () => {
    await checkExtremes(await testDevice(), runGpu);
  });
});
