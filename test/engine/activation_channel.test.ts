// Per-channel learnable activation params (raw [C, P], one parameter set per channel of x's
// dim 1, PyTorch's num_parameters) on the GPU against float64: forward, dx and the
// per-channel raw-param gradients (sums over N and the spatial dims through each param's
// constraint) for every kind with params, on [N, C, H, W] shapes that divide nothing,
// [N, features], and a channel large enough for several workgroups per channel; the
// surrogate and dx-only paths; the Activation layer with `channels` (and that it runs
// unfused); clear errors.
import { describe, expect, it } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import { expectClose, f32, randArray } from '../helpers/compare.ts';
import * as E from '../../engine/index.ts';
import { activation, activationBackwardFromZ } from '../../engine/ops/activation.ts';
import { ACTIVATIONS, ACTIVATION_KINDS, constrain, type ActivationKind } from '../../kernels/activations.ts';
import { Activation } from '../../nn/activation.ts';
import { Conv2d, Sequential } from '../../nn/layers.ts';
import { TOL, expectParamGrad, RAW } from '../helpers/activation.ts';

/** Raw rows per channel: the kind's test raw values, scaled per channel (sign kept). */
function rawRows(kind: ActivationKind, C: number): number[][] {
  return Array.from({ length: C }, (_, c) => RAW(kind).map((v, k) => Math.fround(v * (1 + 0.15 * c) + (kind === 'pssilu' && k === 1 ? 0.01 * c : 0))));
}

/** float64 reference: y, dx, and per-channel raw gradients with their magnitude sums. */
function ref(kind: ActivationKind, shape: number[], x: Float64Array, dy: Float64Array, rows: number[][], sur?: { kind: ActivationKind; params: number[] }) {
  const def = ACTIVATIONS[kind];
  const C = shape[1]!;
  const S = shape.slice(2).reduce((a, b) => a * b, 1);
  const P = def.params.length;
  const eff = rows.map((r) => r.map((v, k) => Math.fround(constrain(def.params[k]!.constraint, v))));
  const chain = rows.map((r) =>
    r.map((v, k) => {
      const c = def.params[k]!.constraint;
      return c === 'abs' ? Math.sign(v) : c === 'square' ? 2 * v : 1;
    }),
  );
  const y = new Float64Array(x.length);
  const dx = new Float64Array(x.length);
  const dp = rows.map(() => new Array<number>(P).fill(0));
  const mag = rows.map(() => new Array<number>(P).fill(0));
  for (let i = 0; i < x.length; i++) {
    const c = Math.floor(i / S) % C;
    const p = eff[c]!;
    y[i] = def.f(x[i]!, p);
    dx[i] = dy[i]! * (sur ? ACTIVATIONS[sur.kind].df(x[i]!, sur.params) : def.df(x[i]!, p));
    const g = def.dp(x[i]!, p);
    for (let k = 0; k < P; k++) {
      dp[c]![k]! += dy[i]! * g[k]! * chain[c]![k]!;
      mag[c]![k]! += Math.abs(dy[i]! * g[k]! * chain[c]![k]!);
    }
  }
  return { y, dx, dp, mag };
}

const PARAM_KINDS = ACTIVATION_KINDS.filter((k) => ACTIVATIONS[k].params.length > 0);
const SHAPES = [
  [3, 5, 7, 3],
  [6, 4],
  [2, 3, 61, 67], // 8174 elements per channel: several workgroups per channel
];

async function runChannel(d: E.Device, kind: ActivationKind, shape: number[], x: Float64Array, dy: Float64Array, rows: number[][], backward?: { kind: ActivationKind; params: number[] }) {
  const X = E.Tensor.from(d, Float32Array.from(x), shape);
  X.requiresGrad = true;
  const R = E.Tensor.from(d, rows.flat(), [rows.length, rows[0]!.length]);
  R.requiresGrad = true;
  const Y = activation(X, { kind, raw: R, ...(backward ? { backward } : {}) });
  const [gx, gr] = E.grad(Y, [X, R], E.Tensor.from(d, Float32Array.from(dy), shape));
  expect(gr!.shape).toEqual([rows.length, rows[0]!.length]);
  const out = { y: await Y.f32(), dx: await gx!.f32(), dp: await gr!.f32() };
  for (const t of [X, R, Y, gx, gr]) t?.dispose();
  return out;
}

describe('per-channel activation params vs float64', () => {
  for (const kind of PARAM_KINDS) {
    it(`${kind}: forward, dx and per-channel raw grads on ${SHAPES.map((s) => `[${s}]`).join(', ')}`, async () => {
      const d = await testDevice();
      for (const shape of SHAPES) {
        const n = shape.reduce((a, b) => a * b, 1);
        const x = f32(randArray(n, 7 + n, -5, 5));
        for (let i = 0; i < n; i += 53) x[i] = 0;
        const dy = f32(randArray(n, 11 + n));
        const rows = rawRows(kind, shape[1]!);
        const got = await runChannel(d, kind, shape, x, dy, rows);
        const r = ref(kind, shape, x, dy, rows);
        const what = `${kind} [${shape}]`;
        expectClose(got.y, r.y, TOL[kind].f, `${what} forward`);
        expectClose(got.dx, r.dx, TOL[kind].df, `${what} dx`);
        const P = rows[0]!.length;
        rows.forEach((_, c) => expectParamGrad(got.dp.subarray(c * P, c * P + P), r.dp[c]!, r.mag[c]!, 2 * TOL[kind].p, `${what} channel ${c} dparams`));
      }
    });
  }

  it('surrogate derivative and the dx-only / dParams-only paths', async () => {
    const d = await testDevice();
    const shape = [4, 3, 5, 6];
    const n = 360;
    const x = f32(randArray(n, 21, -3, 3));
    const dy = f32(randArray(n, 22));
    const rows = rawRows('pssilu', 3);
    const sur = { kind: 'softplus' as const, params: [10] };
    const got = await runChannel(d, 'pssilu', shape, x, dy, rows, sur);
    const r = ref('pssilu', shape, x, dy, rows, sur);
    expectClose(got.y, r.y, TOL.pssilu.f, 'forward under a surrogate');
    expectClose(got.dx, r.dx, TOL.softplus.df, 'surrogate dx');
    rows.forEach((_, c) => expectParamGrad(got.dp.subarray(2 * c, 2 * c + 2), r.dp[c]!, r.mag[c]!, 2e-6, `channel ${c} dparams (exact forward gradient)`));
    const Z = E.Tensor.from(d, Float32Array.from(x), shape);
    const DY = E.Tensor.from(d, Float32Array.from(dy), shape);
    const R = E.Tensor.from(d, rows.flat(), [3, 2]);
    const only = activationBackwardFromZ(Z, DY, { kind: 'pssilu', raw: R }, { dParams: false });
    expect(only.dParams).toBeNull();
    const full = ref('pssilu', shape, x, dy, rows);
    expectClose(await only.dz!.f32(), full.dx, TOL.pssilu.df, 'dx only');
    const dpOnly = activationBackwardFromZ(Z, DY, { kind: 'pssilu', raw: R }, { dz: false });
    expect(dpOnly.dz).toBeNull();
    const dp = await dpOnly.dParams!.f32();
    rows.forEach((_, c) => expectParamGrad(dp.subarray(2 * c, 2 * c + 2), full.dp[c]!, full.mag[c]!, 2e-6, `dParams only, channel ${c}`));
  });

  it('Activation layer with channels: [C, P] raw params (PReLU init 0 per channel), runs unfused, learns per channel', async () => {
    const d = await testDevice();
    const act = new Activation(d, { kind: 'prelu', channels: 4 });
    expect(act.params!.shape).toEqual([4, 1]);
    expect(Array.from(await act.params!.f32())).toEqual([0, 0, 0, 0]);
    const net = new Sequential(new Conv2d(d, 2, 4, 3, { seed: 3 }), act);
    const x = E.Tensor.from(d, Float32Array.from(randArray(2 * 2 * 6 * 5, 31, -1, 1)), [2, 2, 6, 5]);
    const y = net.forward(x);
    expect(y.node?.name).toBe('activation_prelu'); // not conv2d_act: the epilogue takes one parameter set
    const [g] = E.grad(E.sum(y), [act.params!]);
    // d/da_c of sum prelu(z) = sum of the negative z of channel c (a = 0: y = relu(z))
    const z = await E.noGrad(() => net.layers[0]!.forward(x)).f32();
    const want = [0, 1, 2, 3].map((c) => {
      let s = 0;
      for (let i = 0; i < z.length; i++) if (Math.floor(i / 12) % 4 === c && z[i]! <= 0) s += z[i]!;
      return s;
    });
    expectClose(await g!.f32(), want, { atol: 1e-6, rtol: 1e-5 }, 'per-channel prelu grads');
    const shared = new Activation(d, { kind: 'pssilu', channels: 3, params: [2, 0.1] });
    expect(Array.from(await shared.params!.f32())).toEqual(Array.from(Float32Array.from([2, 0.1, 2, 0.1, 2, 0.1])));
    net.dispose();
    shared.dispose();
  });

  it('clear errors: channel count, rank, spec.channels, fused epilogues', async () => {
    const d = await testDevice();
    const R = E.Tensor.from(d, [0.1, 0.2, 0.3], [3, 1]);
    expect(() => activation(E.Tensor.from(d, new Float32Array(8), [2, 4]), { kind: 'prelu', raw: R })).toThrow(/per-channel params \[3, 1\] need x with rank >= 2 and 3 channels in dim 1, got x \[2, 4\]/);
    expect(() => activation(E.Tensor.from(d, new Float32Array(3), [3]), { kind: 'prelu', raw: R })).toThrow(/rank >= 2/);
    expect(() => activation(E.Tensor.from(d, new Float32Array(6), [2, 3]), { kind: 'prelu', raw: E.Tensor.from(d, [1, 2, 3, 4], [2, 2]) })).toThrow(/spec.raw for prelu must be an f32 tensor of shape \[1\] \(\[a\]\) or \[C, 1\] \(per channel\), got f32 \[2, 2\]/);
    expect(() => activation(E.Tensor.from(d, new Float32Array(6), [2, 3]), { kind: 'prelu', raw: R, channels: 4 })).toThrow(/spec.channels = 4 but spec.raw has shape \[3, 1\]/);
    expect(() => new Activation(d, { kind: 'relu', channels: 2 })).toThrow(/spec.channels needs a kind with parameters, relu has none/);
    expect(() => new Activation(d, { kind: 'prelu', channels: 0 })).toThrow(/spec.channels must be a positive integer, got 0/);
    const X = E.Tensor.from(d, new Float32Array(2 * 3 * 4 * 4), [2, 3, 4, 4]);
    const W = E.Tensor.from(d, new Float32Array(3 * 3 * 9), [3, 3, 3, 3]);
    expect(() => E.conv2dAct(X, W, null, { kind: 'prelu', raw: R })).toThrow(/conv2dAct: per-channel activation params \(raw \[3, 1\]\) are not supported in fused epilogues/);
  });
});
