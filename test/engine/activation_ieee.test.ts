// IEEE special values through every activation on the GPU (docs/activations-ieee.md):
// NaN in gives NaN out for f, df/dx and every parameter gradient (WGSL's min/max/clamp may
// drop a NaN, so the kernels guard it explicitly); +-inf give the limits of f, f' and
// df/dp written below by hand (the mathematical limits: where PyTorch 1.13 returns NaN,
// e.g. silu(-inf) = -inf * 0, we return the limit 0). Each value runs as its own
// one-element tensor through the fused forward and backward (autograd, learnable raw
// params with the table's constraints) and through the scalar path with host params, and
// the special values also sit inside larger vec4 arrays to check they do not leak.
import { describe, expect, it } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import * as E from '../../engine/index.ts';
import { activation } from '../../engine/ops/activation.ts';
import { ACTIVATIONS, ACTIVATION_KINDS, unconstrain, type ActivationKind } from '../../kernels/activations.ts';
import { INF, LIMITS } from '../helpers/activation_limits.ts';

/** got equals want: NaN only for NaN, infinities exactly, finite values to 1e-6 relative (0 and -0 alike). */
function same(got: number, want: number): boolean {
  if (Number.isNaN(want)) return Number.isNaN(got);
  if (!Number.isFinite(want)) return got === want;
  return Math.abs(got - want) <= 1e-6 * Math.abs(want) + 1e-30;
}

function check(what: string, got: number, want: number): void {
  if (!same(got, want)) throw new Error(`${what}: got ${got}, want ${want}`);
}

/** f, df and d f / d effective param (dy = 1) of one value, through learnable raw params. */
async function oneValue(d: E.Device, kind: ActivationKind, x: number, eff: number[]) {
  const def = ACTIVATIONS[kind];
  const X = E.Tensor.from(d, [x], [1]);
  X.requiresGrad = true;
  const dy = E.Tensor.from(d, [1], [1]);
  if (!eff.length) {
    const Y = activation(X, kind);
    const [gx] = E.grad(Y, [X], dy);
    return { f: (await Y.f32())[0]!, df: (await gx!.f32())[0]!, dp: [] as number[] };
  }
  const r = eff.map((v, i) => unconstrain(def.params[i]!.constraint, Math.abs(v)) * (v < 0 ? -1 : 1));
  const R = E.Tensor.from(d, r, [r.length]);
  R.requiresGrad = true;
  const Y = activation(X, { kind, raw: R });
  const [gx, gp] = E.grad(Y, [X, R], dy);
  // d eff / d raw: sign(raw) under abs, 2 raw under square, 1 under none
  const chain = r.map((v, i) => {
    const c = def.params[i]!.constraint;
    return c === 'abs' ? Math.sign(v) : c === 'square' ? 2 * v : 1;
  });
  const dpRaw = Array.from(await gp!.f32());
  return { f: (await Y.f32())[0]!, df: (await gx!.f32())[0]!, dp: dpRaw.map((v, i) => v / chain[i]!) };
}

describe('IEEE special values (docs/activations-ieee.md)', () => {
  it('every kind has a limits row', () => {
    expect(Object.keys(LIMITS).sort()).toEqual([...ACTIVATION_KINDS].sort());
  });

  for (const kind of ACTIVATION_KINDS) {
    it(`${kind}: NaN -> NaN (f, df, dp); +-inf -> the limits`, async () => {
      const d = await testDevice();
      const L = LIMITS[kind];
      for (const p of L.params) {
        const tag = `${kind}(${p.join(', ')})`;
        const nan = await E.scopeAsync(() => oneValue(d, kind, NaN, p));
        check(`${tag} f(NaN)`, nan.f, NaN);
        check(`${tag} f'(NaN)`, nan.df, NaN);
        nan.dp.forEach((v, i) => check(`${tag} df/d${ACTIVATIONS[kind].paramNames[i]}(NaN)`, v, NaN));
        for (const [x, want] of [
          [INF, L.pos(p)],
          [-INF, L.neg(p)],
        ] as const) {
          const got = await E.scopeAsync(() => oneValue(d, kind, x, p));
          check(`${tag} f(${x})`, got.f, want.f);
          check(`${tag} f'(${x})`, got.df, want.df);
          want.dp.forEach((w, i) => {
            // a zero raw value under abs has chain sign(0) = 0: its gradient is 0, not the limit
            if (ACTIVATIONS[kind].params[i]!.constraint === 'abs' && p[i] === 0) return;
            check(`${tag} df/d${ACTIVATIONS[kind].paramNames[i]}(${x})`, got.dp[i]!, w);
          });
        }
      }
    });
  }

  it('scalar and vec4 paths with host params: special values among finite ones, and they do not leak into neighbours', async () => {
    const d = await testDevice();
    const xs = [0.5, NaN, -1.25, INF, 2, -INF, 0, 3.5, -0.75, NaN, 1e30, -1e30, 0.25];
    for (const kind of ACTIVATION_KINDS) {
      const def = ACTIVATIONS[kind];
      const p = [...LIMITS[kind].params[0]!];
      for (const vec4 of [true, false]) {
        const X = E.Tensor.from(d, xs, [xs.length]);
        X.requiresGrad = true;
        const Y = activation(X, { kind, params: p }, { vec4 });
        const [gx] = E.grad(Y, [X], E.Tensor.from(d, xs.map(() => 1), [xs.length]));
        const f = await Y.f32();
        const df = await gx!.f32();
        xs.forEach((x, i) => {
          const tag = `${kind}(${p.join(', ')}) ${vec4 ? 'vec4' : 'scalar'} at x = ${x}`;
          const want = Number.isNaN(x) ? { f: NaN, df: NaN } : x === INF ? LIMITS[kind].pos(p) : x === -INF ? LIMITS[kind].neg(p) : null;
          if (want) {
            check(`${tag} f`, f[i]!, want.f);
            check(`${tag} f'`, df[i]!, want.df);
          } else {
            const wf = def.f(Math.fround(x), p);
            const wd = def.df(Math.fround(x), p);
            expect(Math.abs(f[i]! - wf), `${tag} f`).toBeLessThanOrEqual(1e-5 * Math.abs(wf) + 1e-6);
            expect(Math.abs(df[i]! - wd), `${tag} f'`).toBeLessThanOrEqual(1e-5 * Math.abs(wd) + 1e-6);
          }
        });
        for (const t of [X, Y, gx]) t?.dispose();
      }
    }
  });
});
