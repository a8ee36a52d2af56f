// The activation fusion helpers (activationEpilogue in a custom kernel,
// activationBackwardFromZ against the autograd path), clear errors on bad specs and
// inputs, and flat memory over repeated steps.
import { describe, expect, it } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import { expectClose, f32, randArray } from '../helpers/compare.ts';
import * as E from '../../engine/index.ts';
import { activation, activationBackwardFromZ, activationEpilogue, type ActivationSpec } from '../../engine/ops/activation.ts';
import { ACTIVATIONS, type ActivationKind } from '../../kernels/activations.ts';
import { wgslMath } from '../../kernels/wgsl_math.ts';
import { declaredBindings, defineKernel } from '../../kernels/kernel.ts';
import { T2, paramTensor, runGpu } from '../helpers/activation.ts';

/** The test's own kernel around an epilogue snippet: keyed by its whole source, bindings as declared. */
const testEpilogueKernel = defineKernel<{ wgsl: string }>({
  name: 'test_epilogue',
  key: (p) => p.wgsl,
  bindings: (p) => declaredBindings(p.wgsl).map((b) => ({ name: b.name, access: b.access })),
  build: (p) => p.wgsl,
});

describe('fusion helpers, errors, memory', () => {
  it('activationEpilogue: a custom kernel y = act(x + b) with tensor params and with a surrogate', async () => {
    const d = await testDevice();
    const n = 37;
    const x = f32(randArray(n, 91, -3, 3));
    const bias = 0.25;
    const X = E.Tensor.from(d, Float32Array.from(x), [n]);
    const P = E.Tensor.from(d, [-1.3, 0.1], [2]);
    for (const spec of [
      { kind: 'pssilu', raw: P },
      { kind: 'relu', backward: { kind: 'softplus', params: [10] } },
      { kind: 'softplus', params: [2] },
    ] as ActivationSpec[]) {
      const ep = activationEpilogue('test_epilogue', spec, { binding: 3, uniformField: 'u.act' });
      const wgsl = `struct U { n: u32, b: f32, p0: u32, p1: u32, act: vec4<f32> };
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<vec2<f32>>;
${wgslMath()}
${ep.wgsl}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  if (gid.x >= u.n) { return; }
  let p = act_params();
  let z = x[gid.x] + u.b;
  y[gid.x] = vec2<f32>(act_f(z, p), act_df(z, p));
}`;
      const Y = E.Tensor.empty(d, [n, 2]);
      const u = new ArrayBuffer(32);
      new Uint32Array(u, 0, 1)[0] = n;
      new Float32Array(u, 4, 1)[0] = bias;
      new Float32Array(u, 16, 4).set(ep.uniformF32);
      d.dispatch({ kernel: testEpilogueKernel({ wgsl }), buffers: [X.buffer, Y.buffer, ...ep.buffers], uniforms: u, workgroups: [1] });
      const got = await Y.f32();
      const z = x.map((v) => Math.fround(v + bias));
      const fwd = ACTIVATIONS[spec.kind];
      const p = spec.raw ? [1.3, 0.1] : [...(spec.params ?? fwd.defaults)];
      const bw = spec.backward ? ACTIVATIONS[spec.backward.kind] : fwd;
      const bp = spec.backward ? [...(spec.backward.params ?? bw.defaults)] : p;
      expectClose(got.filter((_, i) => i % 2 === 0), z.map((v) => fwd.f(v, p)), T2, `${spec.kind} epilogue f`);
      expectClose(got.filter((_, i) => i % 2 === 1), z.map((v) => bw.df(v, bp)), T2, `${spec.kind} epilogue df`);
    }
  });

  it('activationBackwardFromZ gives the same dz and param grads as the autograd path', async () => {
    const d = await testDevice();
    const n = 2048;
    const x = f32(randArray(n, 101, -5, 5));
    const dy = f32(randArray(n, 102));
    const Z = E.Tensor.from(d, Float32Array.from(x), [n]);
    const DY = E.Tensor.from(d, Float32Array.from(dy), [n]);
    const P = E.Tensor.from(d, [-20], [1]); // SAT: a = w^2, raw w = -20
    const { dz, dParams } = activationBackwardFromZ(Z, DY, { kind: 'smooth_relu', raw: P });
    const auto = await runGpu(d, 'smooth_relu', x, dy, [-20]);
    expect(Array.from(await dz!.f32())).toEqual(Array.from(auto.dx));
    expect(Array.from(await dParams!.f32())).toEqual(Array.from(auto.dp));
    const only = activationBackwardFromZ(Z, DY, { kind: 'smooth_relu', raw: P }, { dz: false });
    expect(only.dz).toBeNull();
    expect(Array.from(await only.dParams!.f32())).toEqual(Array.from(auto.dp));
  });

  it('clear errors on bad specs and inputs', async () => {
    const d = await testDevice();
    const X = E.Tensor.from(d, [1, 2, 3], [3]);
    expect(() => activation(X, { kind: 'swish' as ActivationKind })).toThrow(/activation: spec.kind: unknown activation kind "swish"; valid kinds: relu, /);
    expect(() => activation(X, { kind: 'pssilu', params: [1] })).toThrow(/spec.params for pssilu must have 2 value\(s\) \[a, b\], got 1/);
    expect(() => activation(X, { kind: 'softplus', params: [0] })).toThrow(/a of softplus must be > 0/);
    expect(() => activation(X, { kind: 'pssilu', params: [1, 1] })).toThrow(/b of pssilu must be < 1/);
    expect(() => activation(X, { kind: 'silu', params: [NaN] })).toThrow(/must be a finite number, got NaN/);
    expect(() => activation(X, { kind: 'relu', raw: E.Tensor.from(d, [1], [1]) })).toThrow(/relu has no parameters/);
    expect(() => activation(X, { kind: 'pssilu', raw: E.Tensor.from(d, [1, 2, 3], [3]) })).toThrow(/spec.raw for pssilu must be an f32 tensor of shape \[2\] \(\[a, b\]\) or \[C, 2\] \(per channel\), got f32 \[3\]/);
    expect(() => activation(X, { kind: 'silu', params: [1], raw: E.Tensor.from(d, [1], [1]) })).toThrow(/spec.params and spec.raw are exclusive/);
    expect(() => activation(X, { kind: 'celu', params: [-1] })).toThrow(/spec.params a of celu must be > 0 \(f divides by a\), got -1/);
    expect(() => activation(X, { kind: 'relu', backward: { kind: 'softplus', params: [0] } })).toThrow(/spec.backward.params a of softplus must be > 0/);
    expect(() => activation(X, { kind: 'relu', backward: { kind: 'nope' as ActivationKind } })).toThrow(/spec.backward.kind: unknown activation kind "nope"/);
    expect(() => activation(E.Tensor.from(d, [1, 2], [2], 'i32'), 'relu')).toThrow(/activation: x must be f32, got an i32 tensor of shape \[2\]/);
    expect(() => activationBackwardFromZ(X, E.Tensor.from(d, [1, 2], [2]), 'silu')).toThrow(/dy must be an f32 tensor with as many elements as z \[3\]/);
  });

  it('memory stays flat over repeated forward/backward steps; empty tensors work', async () => {
    const d = await testDevice();
    const P = paramTensor(d, [1, 1e-8])!;
    const X = E.Tensor.from(d, Float32Array.from(randArray(999, 3)), [999]);
    X.requiresGrad = true;
    const step = () =>
      E.scope(() => {
        const y = activation(X, { kind: 'pssilu', raw: P });
        const [gx, gp] = E.grad(E.sum(y), [X, P]);
        return [gx!.dispose(), gp!.dispose()];
      });
    step();
    await d.sync();
    const before = d.stats();
    for (let i = 0; i < 20; i++) step();
    await d.sync();
    const after = d.stats();
    expect(after.liveBuffers).toBe(before.liveBuffers);
    expect(after.liveBytes).toBe(before.liveBytes);
    const Z = E.Tensor.from(d, [], [0, 3]);
    Z.requiresGrad = true;
    const Y = activation(Z, 'gelu');
    expect(Y.shape).toEqual([0, 3]);
  });
});

