// Kernel descriptors: every descriptor's declared bindings match its WGSL (names and
// access) and its key separates every distinct source it can build (checked over all
// parameter values, no GPU); the pipeline cache rejects binding mismatches naming the
// kernel, the binding index, what was expected and what was found; key verification
// catches two kernels sharing a key; WGSL is built only on a miss; and the converted ops
// dispatch descriptors with DispatchInfo and still match their float64 references.
import { describe, it, expect } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import { expectClose, f32, randArray } from '../helpers/compare.ts';
import { bindingMismatch, declaredBindings, defineKernel, reads, writes, type Kernel } from '../../kernels/kernel.ts';
import { PipelineCache } from '../../engine/pipeline_cache.ts';
import type { DispatchSpec } from '../../engine/queue.ts';
import * as ACT from '../../kernels/activation_descriptors.ts';
import { ACTIVATION_KINDS, activationDef } from '../../kernels/activations.ts';
import type { ActKernelConfig } from '../../kernels/activation_kernels.ts';
import * as SX from '../../kernels/softmax_xent.ts';
import * as RND from '../../kernels/random.ts';
import * as RED from '../../kernels/reduce.ts';
import * as POOL from '../../kernels/pool.ts';
import * as LAY from '../../kernels/layout.ts';
import * as BN from '../../kernels/batchnorm.ts';
import * as CP from '../../kernels/copy.ts';
import * as OPT from '../../kernels/optim.ts';
import * as FAB from '../../kernels/fab_projection.ts';
import { ELEMENTWISE } from '../../kernels/elementwise_ops.ts';
import { logSoftmax64, logSoftmaxBackward64, xent64, xentBackward64 } from '../../kernels/softmax_xent.ts';
import { avgPool64, maxPool64, maxPoolBackward64, type PoolGeom } from '../reference/pool64.ts';
import { gather64, gather64Backward, oneHot64, pad64, permute64, takeAlongAxis64 } from '../reference/layout64.ts';
import { bnBackward64, bnForward64 } from '../reference/batchnorm64.ts';
import { uniform01 } from '../reference/philox.ts';
import * as E from '../../engine/index.ts';

const bools = [false, true];

/** Every converted descriptor, instantiated with every parameter value it accepts. */
function allKernels(): Kernel[] {
  const ks: Kernel[] = [];
  for (const log of bools) ks.push(SX.softmaxKernel({ log }), SX.softmaxBackwardKernel({ log }));
  ks.push(SX.xentKernel, SX.xentBackwardKernel, SX.correctKernel);
  for (const kind of ['uniform', 'normal', 'bernoulli'] as const) ks.push(RND.randomKernel({ kind }));
  for (const op of ['sum', 'max'] as const) ks.push(RED.reduceRowsKernel({ op }), RED.reduceChunksKernel({ op }));
  ks.push(RED.argmaxKernel);
  for (const withIndex of bools) ks.push(POOL.maxPool2dKernel({ withIndex }));
  ks.push(POOL.maxPool2dBackwardKernel, POOL.avgPool2dKernel, POOL.avgPool2dBackwardKernel);
  for (const vec4 of bools) ks.push(LAY.stridedCopyKernel({ vec4 }));
  for (const unit of bools) ks.push(LAY.padGatherKernel({ unit }));
  for (const pass of ['count', 'place'] as const) ks.push(LAY.gatherBucketKernel({ pass }));
  ks.push(LAY.transposeBlock4Kernel, LAY.gatherKernel, LAY.gatherBackwardNaiveKernel, LAY.exclusiveScanKernel, LAY.gatherBackwardSumKernel);
  ks.push(LAY.takeAlongAxisKernel, LAY.takeAlongAxisBackwardKernel, LAY.oneHotKernel);
  ks.push(BN.batchnormStatsKernel, BN.batchnormEvalStatsKernel, BN.batchnormBackwardReduceKernel, BN.batchnormBackwardReduceFinishKernel);
  for (const update of bools) ks.push(BN.batchnormStatsFinishKernel({ update }));
  for (const vec4 of bools) {
    for (const gamma of bools) {
      for (const beta of bools) ks.push(BN.batchnormForwardKernel({ vec4, gamma, beta }));
      for (const training of bools) ks.push(BN.batchnormBackwardKernel({ vec4, gamma, training }));
    }
  }
  ks.push(CP.copyVec4Kernel, OPT.sgdKernel(), OPT.adamKernel(), OPT.clipScaleKernel());
  for (const norm of ['linf', 'l2'] as const) ks.push(FAB.fabProjectionKernel({ norm }));
  for (const mode of ['vec4', 'flat', 'broadcast'] as const) {
    ks.push(ELEMENTWISE.kernel({ op: 'add', inputs: ['f32', 'f32'], out: 'f32', mode }));
    ks.push(ELEMENTWISE.kernel({ op: 'neg', inputs: ['f32'], out: 'f32', mode }));
  }
  ks.push(...activationKernels());
  return ks;
}

/** The activation families over every kind, params origin, vec4, surrogate and output set they accept. */
function activationKernels(): Kernel[] {
  const ks: Kernel[] = [];
  for (const kind of ACTIVATION_KINDS) {
    const hasParams = activationDef(kind).params.length > 0;
    const origins: ActKernelConfig['params'][] = hasParams ? ['uniform', 'buffer'] : ['none'];
    for (const params of origins) {
      for (const vec4 of bools) {
        for (const surrogate of [null, 'softplus'] as const) {
          const cfg: ActKernelConfig = { kind, params, vec4, surrogate };
          ks.push(ACT.activationForwardKernel(cfg));
          for (const [dx, dp] of [[true, false], [false, true], [true, true]] as const) {
            if (dp && params !== 'buffer') continue;
            ks.push(ACT.activationBackwardKernel({ cfg, want: { dx, dp } }));
          }
          for (const gy of bools) for (const y of bools) ks.push(ACT.activationValueGradKernel({ cfg, want: { gy, y, dp: params === 'buffer' } }));
        }
      }
    }
    if (!hasParams) continue;
    ks.push(ACT.activationParamGradKernel(kind), ACT.activationChannelForwardKernel(kind), ACT.activationChannelParamGradKernel(kind));
    for (const surrogate of [null, 'softplus'] as const) {
      for (const [dx, dp] of [[true, false], [false, true], [true, true]] as const) ks.push(ACT.activationChannelBackwardKernel({ cfg: { kind, surrogate }, want: { dx, dp } }));
    }
  }
  return ks;
}

describe('descriptors (no GPU)', () => {
  const ks = allKernels();

  it('every declared binding list matches its WGSL by index, access and name', () => {
    for (const k of ks) expect(bindingMismatch(k.bindings, k.build()), k.name).toBeNull();
  });

  it('one key per distinct WGSL source: no two parameter sets share a key with different sources', () => {
    const byKey = new Map<string, string>();
    const bySource = new Map<string, string>();
    for (const k of ks) {
      const src = k.build();
      const seen = byKey.get(k.cacheKey);
      if (seen !== undefined) expect(seen === src, `key ${k.cacheKey} maps to two sources`).toBe(true);
      byKey.set(k.cacheKey, src);
      const key = bySource.get(src);
      if (key !== undefined) expect(key, `one source under two keys (${k.name})`).toBe(k.cacheKey);
      bySource.set(src, k.cacheKey);
    }
    expect(byKey.size).toBe(bySource.size);
  });

  it('declaredBindings reads names and access (read is the default access)', () => {
    const src = `@group(0) @binding(2) var<storage, read_write> out_1: array<f32>;\n@group(0) @binding(1) var<storage> a: array<f32>;`;
    expect(declaredBindings(src)).toEqual([
      { binding: 1, access: 'read', name: 'a' },
      { binding: 2, access: 'read_write', name: 'out_1' },
    ]);
  });

  it('bindingMismatch names the binding index, the expected and the found binding', () => {
    const src = `@group(0) @binding(1) var<storage, read> x: array<f32>;\n@group(0) @binding(2) var<storage, read_write> out: array<f32>;`;
    expect(bindingMismatch([...reads('x'), ...writes('out')], src)).toBeNull();
    expect(bindingMismatch([...reads('x'), ...writes('y')], src)).toMatch(/@binding\(2\): expected y \(read_write\), found out \(read_write\)/);
    expect(bindingMismatch([...reads('x', 'out')], src)).toMatch(/@binding\(2\): expected out \(read\), found out \(read_write\)/);
    expect(bindingMismatch(reads('x'), src)).toMatch(/@binding\(2\): expected nothing, found out \(read_write\)/);
    expect(bindingMismatch([...reads('x'), ...writes('out', 'extra')], src)).toMatch(/@binding\(3\): expected extra \(read_write\), found nothing/);
    const gap = `@group(0) @binding(1) var<storage, read> x: array<f32>;\n@group(0) @binding(3) var<storage, read_write> out: array<f32>;`;
    expect(bindingMismatch([...reads('x'), ...writes('out')], gap)).toMatch(/@binding\(2\): .*@binding\(3\).*without gaps/);
  });

  it('defineKernel rejects a non-snake_case or repeated family name', () => {
    const spec = { key: () => '', bindings: () => [], build: () => '' };
    expect(() => defineKernel({ name: 'BadName', ...spec })).toThrow(/snake_case/);
    defineKernel({ name: 'test_desc_once', ...spec });
    expect(() => defineKernel({ name: 'test_desc_once', ...spec })).toThrow(/defined twice/);
  });
});

// A tiny valid kernel whose output variable name and workgroup size are parameters.
function tinyWgsl(out: string, wg: number): string {
  return `@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> ${out}: array<f32>;
@compute @workgroup_size(${wg})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  if (gid.x < arrayLength(&x)) { ${out}[gid.x] = x[gid.x] * 2.0; }
}
`;
}

describe('pipeline cache', () => {
  it('a binding-name mismatch fails on build, naming the kernel, the binding index, expected and found', async () => {
    const d = await testDevice();
    const k = defineKernel<void>({ name: 'test_desc_bad_name', key: () => '', bindings: () => [...reads('x'), ...writes('y')], build: () => tinyWgsl('out', 64) })();
    expect(() => d.pipelines.get(k)).toThrow(/kernel "test_desc_bad_name"[\s\S]*@binding\(2\): expected y \(read_write\), found out \(read_write\)/);
    const a = defineKernel<void>({ name: 'test_desc_bad_access', key: () => '', bindings: () => reads('x', 'out'), build: () => tinyWgsl('out', 64) })();
    expect(() => d.pipelines.get(a)).toThrow(/kernel "test_desc_bad_access"[\s\S]*@binding\(2\): expected out \(read\), found out \(read_write\)/);
    const n = defineKernel<void>({ name: 'test_desc_bad_count', key: () => '', bindings: () => reads('x'), build: () => tinyWgsl('out', 64) })();
    expect(() => d.pipelines.get(n)).toThrow(/kernel "test_desc_bad_count"[\s\S]*@binding\(2\): expected nothing, found out/);
    // Nothing was cached for the failed kernels.
    await d.pipelines.checkPending();
  });

  it('key verification (KINKLESS_VERIFY_KERNEL_KEYS=1, set by the test config) catches two kernels sharing a key', async () => {
    expect(process.env.KINKLESS_VERIFY_KERNEL_KEYS).toBe('1');
    const d = await testDevice();
    // The key forgets the workgroup size: two different sources under one key.
    const bad = defineKernel<{ wg: number }>({ name: 'test_desc_forgetful', key: () => 'same', bindings: () => [...reads('x'), ...writes('out')], build: (p) => tinyWgsl('out', p.wg) });
    d.pipelines.get(bad({ wg: 64 }));
    expect(() => d.pipelines.get(bad({ wg: 64 }))).not.toThrow();
    expect(() => d.pipelines.get(bad({ wg: 32 }))).toThrow(/cache key "test_desc_forgetful\|same" maps to two different WGSL sources \(first difference at line 3\)[\s\S]*misses a parameter/);
    // A hand-made Kernel reusing a descriptor's key with another source is caught too.
    const x = SX.xentKernel;
    d.pipelines.get(x);
    const impostor: Kernel = { family: x.family, name: 'impostor', cacheKey: x.cacheKey, bindings: x.bindings, build: () => x.build().replace('softmax_cross_entropy', 'other') };
    expect(() => d.pipelines.get(impostor)).toThrow(/kernel "impostor": cache key "softmax_cross_entropy\|" maps to two different WGSL sources[\s\S]*first built for kernel "softmax_cross_entropy"/);
    await d.pipelines.checkPending();
  });

  it('the verification is per device: another device starts with its own record', async () => {
    const d = await testDevice();
    const d2 = await E.createDevice();
    try {
      const k = defineKernel<{ wg: number }>({ name: 'test_desc_per_device', key: () => 'k', bindings: () => [...reads('x'), ...writes('out')], build: (p) => tinyWgsl('out', p.wg) });
      d.pipelines.get(k({ wg: 64 }));
      expect(() => d2.pipelines.get(k({ wg: 32 }))).not.toThrow();
      expect(() => d2.pipelines.get(k({ wg: 64 }))).toThrow(/maps to two different WGSL sources/);
      await d.pipelines.checkPending();
      await d2.pipelines.checkPending();
    } finally {
      d2.destroy();
    }
  });

  it('builds WGSL only on a miss (builds counter; builder calls without verification)', async () => {
    const d = await testDevice();
    let calls = 0;
    const k = defineKernel<{ wg: number }>({
      name: 'test_desc_counted',
      key: (p) => `wg${p.wg}`,
      bindings: () => [...reads('x'), ...writes('out')],
      build: (p) => {
        calls++;
        return tinyWgsl('out', p.wg);
      },
    });
    const prev = process.env.KINKLESS_VERIFY_KERNEL_KEYS;
    process.env.KINKLESS_VERIFY_KERNEL_KEYS = '0';
    let cache: PipelineCache;
    try {
      cache = new PipelineCache(d, false);
    } finally {
      process.env.KINKLESS_VERIFY_KERNEL_KEYS = prev;
    }
    const p1 = cache.get(k({ wg: 64 }));
    expect(cache.get(k({ wg: 64 }))).toBe(p1);
    expect(cache.get(k({ wg: 64 }))).toBe(p1);
    expect(calls).toBe(1);
    expect(cache.builds).toBe(1);
    cache.get(k({ wg: 32 }));
    expect(calls).toBe(2);
    expect(cache.builds).toBe(2);
    expect(cache.size).toBe(2);
    await cache.checkPending();

    // On the device's own (verifying) cache the counter still counts misses only.
    const b0 = d.pipelines.builds;
    const x = E.Tensor.from(d, randArray(6 * 5, 9), [6, 5]);
    for (let i = 0; i < 3; i++) E.logSoftmax(x).dispose();
    const b1 = d.pipelines.builds;
    for (let i = 0; i < 3; i++) E.logSoftmax(x).dispose();
    expect(d.pipelines.builds).toBe(b1);
    expect(b1 - b0).toBeLessThanOrEqual(1);
    x.dispose();
  });
});

/** Run fn with the device's dispatches recorded (the real queue still runs every one). */
async function recording<T>(d: E.Device, fn: () => Promise<T>): Promise<{ out: T; specs: DispatchSpec[] }> {
  const specs: DispatchSpec[] = [];
  const q = d.queue;
  const orig = q.dispatch;
  q.dispatch = function (s: DispatchSpec): void {
    specs.push(s);
    orig.call(q, s);
  };
  try {
    return { out: await fn(), specs };
  } finally {
    q.dispatch = orig;
  }
}

async function data(t: E.Tensor): Promise<Float64Array> {
  return Float64Array.from(await t.data());
}

describe('converted ops dispatch descriptors with DispatchInfo and match float64', () => {
  // Families converted in this change: their dispatches must be descriptors, never legacy.
  const converted = new Set([
    'softmax', 'softmax_backward', 'softmax_cross_entropy', 'softmax_cross_entropy_backward', 'accuracy_correct', 'random', 'reduce_rows',
    'reduce_chunks', 'argmax', 'max_pool2d', 'max_pool2d_backward', 'avg_pool2d', 'avg_pool2d_backward', 'strided_copy', 'transpose_block4',
    'pad_gather', 'gather', 'gather_backward_naive', 'gather_backward_bucket', 'exclusive_scan_u32', 'gather_backward_sum', 'take_along_axis',
    'take_along_axis_backward', 'one_hot', 'batchnorm_stats', 'batchnorm_stats_finish', 'batchnorm_eval_stats', 'batchnorm_forward',
    'batchnorm_backward_reduce', 'batchnorm_backward_reduce_finish', 'batchnorm_backward',
    'activation_forward', 'activation_backward', 'activation_param_grad', 'activation_value_grad', 'activation_channel_forward',
    'activation_channel_backward', 'activation_param_grad_channel',
  ]);

  it('every dispatch is a descriptor with op, geometry, flops and bytes; every converted family ran', async () => {
    const d = await testDevice();
    const { specs } = await recording(d, async () => {
      await E.scopeAsync(async () => {
        // softmax / log-softmax / cross-entropy / accuracy: N = 5 rows of C = 7 (off the workgroup size).
        const N = 5;
        const C = 7;
        const xv = f32(randArray(N * C, 3, -4, 4));
        const labels = Int32Array.from([3, 0, 6, 2, 6]);
        const x = E.Tensor.from(d, xv, [N, C]);
        x.requiresGrad = true;
        const dyv = f32(randArray(N * C, 4));
        const ls = E.logSoftmax(x);
        E.backward(ls, E.Tensor.from(d, dyv, [N, C]));
        expectClose(await data(ls), logSoftmax64(xv, C), { atol: 1e-5 }, 'logSoftmax');
        expectClose(await data(x.grad!), logSoftmaxBackward64(xv, dyv, C), { atol: 1e-5 }, 'logSoftmax backward');
        x.grad = null;
        const sm = E.softmax(x);
        expectClose(await data(sm), logSoftmax64(xv, C).map(Math.exp), { atol: 1e-6 }, 'softmax');
        const lab = E.Tensor.from(d, labels, [N]);
        const loss = E.softmaxCrossEntropy(x, lab, { labelSmoothing: 0.1 });
        E.backward(loss);
        const l64 = xent64(xv, labels, C, 0.1);
        expectClose(await data(loss), [l64.reduce((a, b) => a + b, 0) / N], { atol: 1e-5 }, 'xent');
        expectClose(await data(x.grad!), xentBackward64(xv, labels, C, 0.1, new Array(N).fill(1 / N)), { atol: 1e-6 }, 'xent backward');
        let correct = 0;
        for (let n = 0; n < N; n++) {
          const row = Array.from(xv.subarray(n * C, n * C + C));
          if (row.indexOf(Math.max(...row)) === labels[n]) correct++;
        }
        expect((await E.accuracyCount(x, lab).data())[0]).toBe(correct);

        // activations: PReLU (f = x for x > 0, a x otherwise; df/da = min(x, 0)) with one
        // learnable slope [1], with a slope per channel [3, 1], and the one-pass op; 2x3x5
        // elements (not a multiple of 4).
        const av = f32(randArray(30, 21, -2, 2));
        const prelu64 = (a: (i: number) => number) => Array.from(av, (v, i) => (v > 0 ? v : a(i) * v));
        const ax = E.Tensor.from(d, av, [2, 3, 5]);
        ax.requiresGrad = true;
        const slope = E.Tensor.from(d, [0.25], [1]);
        slope.requiresGrad = true;
        const ay = E.activation(ax, { kind: 'prelu', raw: slope });
        expectClose(await data(ay), prelu64(() => 0.25), {}, 'prelu');
        E.backward(E.sum(ay));
        expectClose(await data(ax.grad!), Array.from(av, (v) => (v > 0 ? 1 : 0.25)), {}, 'prelu dx');
        expectClose(await data(slope.grad!), [av.reduce((a, v) => a + Math.min(v, 0), 0)], { atol: 1e-4 }, 'prelu da');
        const slopes = [0.1, -0.5, 2];
        const chanOf = (i: number) => Math.floor(i / 5) % 3;
        const cs = E.Tensor.from(d, slopes, [3, 1]);
        cs.requiresGrad = true;
        const cy = E.activation(ax, { kind: 'prelu', raw: cs });
        expectClose(await data(cy), prelu64((i) => slopes[chanOf(i)]!), {}, 'prelu per channel');
        E.backward(E.sum(cy));
        expectClose(await data(cs.grad!), [0, 1, 2].map((c) => av.reduce((a, v, i) => a + (chanOf(i) === c ? Math.min(v, 0) : 0), 0)), { atol: 1e-4 }, 'prelu per-channel da');
        const vg = E.activationValueAndGrad(ax, { kind: 'prelu', raw: slope });
        expectClose(await data(vg.y!), prelu64(() => 0.25), {}, 'prelu value_grad y');
        expectClose(await data(vg.dParams!), [av.reduce((a, v) => a + Math.min(v, 0), 0)], { atol: 1e-4 }, 'prelu value_grad da');

        // random: uniform on [0, 1) is bit-exact against the JS Philox.
        const r = E.randomUniform(d, [3, 7], { seed: 77, offset: 5 });
        expect(Array.from(await r.data())).toEqual(Array.from(uniform01(77, 5, 21)));
        E.randomNormal(d, [9], { seed: 1 });
        E.bernoulliMask(d, [9], 0.5, { seed: 1 });

        // reductions: long rows take the chunked path; argmax.
        const R = 2100;
        const lv = f32(randArray(2 * R, 5));
        const long = E.Tensor.from(d, lv, [2, R]);
        const want = [0, 1].map((o) => lv.subarray(o * R, o * R + R).reduce((a, b) => a + b, 0));
        expectClose(await data(E.sum(long, 1)), want, { atol: 1e-3 }, 'sum (chunks)');
        expectClose(await data(E.max(x, 0)), [0, 1, 2, 3, 4, 5, 6].map((c) => Math.max(...[0, 1, 2, 3, 4].map((n) => xv[n * C + c]!))), {}, 'max');
        const am = Array.from(await E.argmax(x, 1).data());
        expect(am).toEqual([0, 1, 2, 3, 4].map((n) => { const row = Array.from(xv.subarray(n * C, n * C + C)); return row.indexOf(Math.max(...row)); }));

        // pooling over 2x3x7x5 (odd sizes), padded max pool with grad, avg pool with grad.
        const g: PoolGeom = { N: 2, C: 3, H: 7, W: 5, KH: 3, KW: 2, SH: 2, SW: 2, PH: 1, PW: 1 };
        const pv = f32(randArray(2 * 3 * 7 * 5, 6));
        const px = E.Tensor.from(d, pv, [2, 3, 7, 5]);
        px.requiresGrad = true;
        const mp = E.maxPool2d(px, { kernel: [3, 2], stride: 2, padding: 1 });
        const mref = maxPool64(pv, g);
        expectClose(await data(mp), mref.y, {}, 'maxPool2d');
        const pdy = f32(randArray(mp.size, 7));
        E.backward(mp, E.Tensor.from(d, pdy, mp.shape));
        expectClose(await data(px.grad!), maxPoolBackward64(pv, pdy, g), {}, 'maxPool2d backward');
        px.grad = null;
        const ap = E.avgPool2d(px, { kernel: [3, 2], stride: 2, padding: 1, countIncludePad: false });
        expectClose(await data(ap), avgPool64(pv, g, false), {}, 'avgPool2d');
        E.backward(E.sum(ap));

        // layout: permute (generic and 4x4 block transpose), slice with a step, pad, concat.
        const tv = f32(randArray(8 * 12, 8));
        const t = E.Tensor.from(d, tv, [8, 12]);
        expectClose(await data(E.transpose(t)), permute64(tv, [8, 12], [1, 0]).y, { atol: 0 }, 'transpose (block4)');
        const t3 = E.Tensor.from(d, f32(randArray(3 * 5 * 2, 9)), [3, 5, 2]);
        expectClose(await data(E.permute(t3, [2, 0, 1])), permute64(await data(t3), [3, 5, 2], [2, 0, 1]).y, { atol: 0 }, 'permute');
        const sl = E.slice(t, [1, 0], [7, 12], [2, 3]);
        expect(sl.shape).toEqual([3, 4]);
        expectClose(await data(sl), [1, 3, 5].flatMap((i) => [0, 3, 6, 9].map((j) => tv[i * 12 + j]!)), { atol: 0 }, 'slice');
        t.requiresGrad = true;
        E.backward(E.sum(E.slice(t, [1, 0], [7, 12], [2, 3])));
        expectClose(await data(E.pad(t3, [[1, 0], [2, 1]], -1)), pad64(await data(t3), [3, 5, 2], [[0, 0], [1, 0], [2, 1]], -1).y, { atol: 0 }, 'pad');
        E.concat([t3, t3], 2);

        // indexing: gather with the bucketed backward (K > 16, outer*inner > 4), take-along-axis, one-hot.
        const gx = f32(randArray(4 * 6 * 3, 10));
        const gt = E.Tensor.from(d, gx, [4, 6, 3]);
        gt.requiresGrad = true;
        const idx = Int32Array.from({ length: 20 }, (_, i) => (i * 7) % 6);
        const gy = E.gather(gt, E.Tensor.from(d, idx, [20]), 1);
        expectClose(await data(gy), gather64(gx, [4, 6, 3], idx, [20], 1).y, { atol: 0 }, 'gather');
        const gdy = f32(randArray(gy.size, 11));
        E.backward(gy, E.Tensor.from(d, gdy, gy.shape));
        expectClose(await data(gt.grad!), gather64Backward(gdy, [4, 6, 3], idx, [20], 1), { atol: 1e-5 }, 'gather backward (bucket)');
        gt.grad = null;
        const gn = E.gather(gt, E.Tensor.from(d, Int32Array.from([5, 0, 5]), [3]), 1);
        E.backward(E.sum(gn));
        const tk = Int32Array.from([0, 5, 2, 3, 3, 1, 4, 0, 2, 1, 5, 5]);
        const ta = E.takeAlongAxis(gt, E.Tensor.from(d, tk, [4, 3]), 1);
        expectClose(await data(ta), takeAlongAxis64(gx, [4, 6, 3], tk, 1).y, { atol: 0 }, 'takeAlongAxis');
        E.backward(E.sum(ta));
        expectClose(await data(E.oneHot(lab, C)), oneHot64(labels, C), { atol: 0 }, 'oneHot');

        // batch norm 2-D, training with gamma/beta (then backward), and eval.
        const s = { N: 3, C: 2, HW: 5 };
        const bv = f32(randArray(3 * 2 * 5, 12, 999, 1001));
        const bx = E.Tensor.from(d, bv, [3, 2, 5, 1]);
        bx.requiresGrad = true;
        const gam = E.Tensor.from(d, [1.5, -0.5], [2]);
        const bet = E.Tensor.from(d, [0.25, 2], [2]);
        const run = { mean: E.Tensor.from(d, [0, 0], [2]), var: E.Tensor.from(d, [1, 1], [2]) };
        const o = { training: true, momentum: 0.1, eps: 1e-5 };
        const by = E.batchNorm2d(bx, gam, bet, run, o);
        expectClose(await data(by), bnForward64(bv, s, [1.5, -0.5], [0.25, 2], { mean: [0, 0], var: [1, 1] }, o).y, { atol: 2e-4 }, 'batchNorm2d');
        const bdy = f32(randArray(30, 13));
        E.backward(by, E.Tensor.from(d, bdy, by.shape));
        expectClose(await data(bx.grad!), bnBackward64(bv, bdy, s, [1.5, -0.5], { mean: [0, 0], var: [1, 1] }, o).dx, { atol: 2e-3 }, 'batchNorm2d backward');
        E.batchNorm2d(bx, gam, bet, run, { training: false });
      });
    });
    const ran = new Set<string>();
    for (const s of specs) {
      ran.add(s.kernel.family);
      if (!converted.has(s.kernel.family)) continue;
      const i = s.info;
      expect(i, `${s.kernel.name}: info`).toBeDefined();
      expect(typeof i!.op, `${s.kernel.name}: info.op`).toBe('string');
      expect(i!.geometry, `${s.kernel.name}: info.geometry`).toMatch(/\d/);
      expect(Number.isFinite(i!.flops) && i!.flops! >= 0, `${s.kernel.name}: info.flops`).toBe(true);
      expect(Number.isFinite(i!.bytes) && i!.bytes! > 0, `${s.kernel.name}: info.bytes`).toBe(true);
    }
    expect([...converted].filter((f) => !ran.has(f)), 'families never dispatched').toEqual([]);
  });
});
