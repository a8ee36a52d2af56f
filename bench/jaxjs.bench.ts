// jax-js peer rows (bench/peers/jaxjs.ts), joining the groups of bench/peers.bench.ts and
// bench/e2e.bench.ts as 'jax-js webgpu' (impl 'jaxjs'): silu forward, jit(grad(sum(silu)))
// (jax-js's fused forward + backward; ours: the one-pass activationValueAndGrad, with a
// 'kinkless two-pass' row through autograd in the peers group), GELU (erf) forward,
// matmul 512 / 1024, and the small MNIST CNN's SGD step at batch 128 with its jit. jax-js
// runs its best setup: every case is one jitted function (one fused kernel where it can),
// timed by wall clock through its own sync (blockUntilReady, then its queue), no readback.
// When @jax-js/jax is absent the module prints a note and contributes no rows.
//
// `npx tsx bench/jaxjs.bench.ts [--quick] [--filter S] [--rounds N]` instead checks jax-js's
// results against ours on the same inputs (the CNN with our weights: loss and gradients;
// with --filter only the kernel cases whose group contains S) and times each case with the
// two sides interleaved round by round (N rounds, default 9; medians; under load, noisy).
import type { Device } from '../engine/device.ts';
import * as E from '../engine/index.ts';
import { activation } from '../engine/ops/activation.ts';
import { activationValueAndGrad } from '../engine/ops/activation_value_grad.ts';
import { matmulRaw } from '../engine/ops/matmul.ts';
import { SmallCnn } from '../nn/models/small_cnn.ts';
import type { BenchCase } from './harness.ts';
import { geluForwardBefore } from './gelu_baseline.ts';
import { hostRand } from './peers/tfjs.ts';
import { peerSizes, pssiluRawInputs } from './peers.bench.ts';
import { JAXJS, compareArrays, jaxCnnLoss, jaxCnnStep, loadJaxjs, skipNote, type JaxArray, type JaxModule, type JaxPeer } from './peers/jaxjs.ts';

type Inputs = () => [Float32Array, number[]][];

/** One jax-js kernel case: `build(jax)` returns the jitted function applied to the inputs. */
export interface JaxKernel {
  group: string;
  inputs: Inputs;
  build(jax: JaxModule): (...xs: JaxArray[]) => JaxArray;
  flops?: number;
  bytes?: number;
}

const F = 4;

/** The kernel cases, sized like bench/peers.bench.ts (its group names). */
export function jaxKernels(quick: boolean): JaxKernel[] {
  const sz = peerSizes(quick);
  const [n, lab] = sz.ew;
  const one: Inputs = () => [[hostRand(n, 7, 4), [n]]];
  const withRaw: Inputs = () => [...one(), ...pssiluRawInputs()];
  const out: JaxKernel[] = sz.mm.map((m) => ({
    group: `peer matmul ${m}`,
    flops: 2 * m ** 3,
    inputs: () => [
      [hostRand(m * m, 1), [m, m]],
      [hostRand(m * m, 2), [m, m]],
    ],
    build: (jax) => jax.jit((a: JaxArray, b: JaxArray) => jax.numpy.matmul(a, b)),
  }));
  out.push(
    { group: `peer silu fwd ${lab}`, bytes: 2 * n * F, inputs: one, build: (jax) => jax.jit((x: JaxArray) => jax.nn.silu(x)) },
    { group: `peer silu grad ${lab}`, bytes: 2 * n * F, inputs: one, build: (jax) => jax.jit(jax.grad((x: JaxArray) => jax.numpy.sum(jax.nn.silu(x)))) },
    { group: `peer gelu fwd ${lab}`, bytes: 2 * n * F, inputs: one, build: (jax) => jax.jit((x: JaxArray) => jax.nn.gelu(x, { approximate: false })) },
    { group: `peer gelu grad ${lab}`, bytes: 2 * n * F, inputs: one, build: (jax) => jax.jit(jax.grad((x: JaxArray) => jax.numpy.sum(jax.nn.gelu(x, { approximate: false })))) },
    { group: `peer pssilu fwd ${lab}`, bytes: 2 * n * F, inputs: withRaw, build: (jax) => jax.jit((x: JaxArray, ra: JaxArray, rb: JaxArray) => pssiluJax(jax, x, ra, rb)) },
    {
      // dx and both raw parameters' gradients, as ours.
      group: `peer pssilu grad ${lab}`,
      bytes: 2 * n * F,
      inputs: withRaw,
      build: (jax) => jax.jit(jax.grad((x: JaxArray, ra: JaxArray, rb: JaxArray) => jax.numpy.sum(pssiluJax(jax, x, ra, rb)), { argnums: [0, 1, 2] })),
    },
  );
  return out;
}

/** x (s(|a| x) - |b|) / (1 - |b|) in jax-js (every use consumes a reference: .ref keeps one). */
function pssiluJax(jax: JaxModule, x: JaxArray, ra: JaxArray, rb: JaxArray): JaxArray {
  const b = jax.numpy.abs(rb);
  const s = jax.nn.sigmoid(x.ref.mul(jax.numpy.abs(ra))).sub(b.ref);
  return x.mul(s).div(b.mul(-1).add(1));
}

function jaxArrays(jax: JaxModule, inputs: Inputs): JaxArray[] {
  return inputs().map(([d, s]) => jax.numpy.array(d).reshape(s));
}

export function kernelCase(peer: JaxPeer, k: JaxKernel): BenchCase {
  let xs: JaxArray[] = [];
  let f: ((...xs: JaxArray[]) => JaxArray) | null = null;
  let pending: JaxArray[] = [];
  return {
    group: k.group,
    name: JAXJS,
    impl: 'jaxjs',
    flops: k.flops,
    bytes: k.bytes,
    sync: () => peer.sync(pending.splice(0)),
    setup() {
      xs = jaxArrays(peer.jax, k.inputs);
      f = k.build(peer.jax);
    },
    run() {
      pending.push(f!(...xs.map((x) => x.ref)));
    },
    teardown() {
      for (const x of xs) x.dispose();
      xs = [];
      pending = [];
    },
  };
}

const BATCH = 128;

/** Deterministic MNIST-shaped batch (pixels in [0, 1), labels 0..9). */
function cnnBatch(): { images: Float32Array; labels: Int32Array } {
  const images = hostRand(BATCH * 784, 11, 0.5).map((v) => v + 0.5);
  const labels = Int32Array.from({ length: BATCH }, (_, i) => (i * 7) % 10);
  return { images, labels };
}

function oneHot(labels: Int32Array): Float32Array {
  const y = new Float32Array(labels.length * 10);
  labels.forEach((l, i) => (y[i * 10 + l] = 1));
  return y;
}

/** jax-js parameters from host arrays in our layout. */
function jaxParams(jax: JaxModule, host: { data: Float32Array; shape: number[] }[]): JaxArray[] {
  return host.map((p) => jax.numpy.array(p.data).reshape(p.shape));
}

/** He-uniform host parameters in our layout (the bench case; the check copies our model's). */
function hostParams(): { data: Float32Array; shape: number[] }[] {
  const he = (shape: number[], fanIn: number, s: number) => ({ data: hostRand(shape.reduce((a, b) => a * b, 1), s, Math.sqrt(6 / fanIn)), shape });
  const zero = (n: number) => ({ data: new Float32Array(n), shape: [n] });
  return [he([32, 1, 3, 3], 9, 1), zero(32), he([64, 32, 3, 3], 288, 2), zero(64), he([10, 9216], 9216, 3), zero(10)];
}

function cnnCase(peer: JaxPeer, runs: number): BenchCase {
  const jax = peer.jax;
  let params: JaxArray[] | null = null;
  let x: JaxArray = null;
  let y: JaxArray = null;
  let step: ReturnType<typeof jaxCnnStep> | null = null;
  let losses: JaxArray[] = [];
  return {
    group: `e2e standard step b${BATCH}`,
    name: JAXJS,
    impl: 'jaxjs',
    items: BATCH,
    runs,
    warmup: 1,
    sync: () => peer.sync(losses.splice(0)),
    setup() {
      const b = cnnBatch();
      params = jaxParams(jax, hostParams());
      x = jax.numpy.array(b.images).reshape([BATCH, 1, 28, 28]);
      y = jax.numpy.array(oneHot(b.labels)).reshape([BATCH, 10]);
      step = jaxCnnStep(jax, 0.01);
    },
    run() {
      const [next, loss] = step!(params!, x.ref, y.ref);
      params = next;
      losses.push(loss);
    },
    teardown() {
      jax.tree.dispose(params);
      x?.dispose();
      y?.dispose();
      params = x = y = null;
      losses = [];
    },
  };
}

export async function cases(_device: Device, opts: { quick: boolean }): Promise<BenchCase[]> {
  return casesFrom(loadJaxjs, opts);
}

/** The rows given a loader (the skip path is tested without a GPU). */
export async function casesFrom(load: typeof loadJaxjs, opts: { quick: boolean }): Promise<BenchCase[]> {
  const r = await load();
  if (!r.peer) {
    console.warn(`kinkless bench: ${skipNote(r.error)}`);
    return [];
  }
  const peer = r.peer;
  console.log(`kinkless bench: jax-js ${peer.version} webgpu backend on adapter ${peer.adapter} (from ${peer.from})`);
  // NOTE: the CNN step takes ~1 s per call here and its first (jit) call several seconds: few runs.
  return [...jaxKernels(opts.quick).map((k) => kernelCase(peer, k)), cnnCase(peer, opts.quick ? 2 : 3)];
}

// ---------------------------------------------------------------- standalone check and timing

async function ours(t: E.Tensor): Promise<Float32Array> {
  return (await t.data()) as Float32Array;
}

async function jaxData(a: JaxArray): Promise<Float32Array> {
  return Float32Array.from((await a.data()) as ArrayLike<number>);
}

/** Numerical agreement of jax-js and kinkless on the same inputs; returns printable lines. */
export async function checkAgainstOurs(device: Device, peer: JaxPeer, quick: boolean, filter = ''): Promise<{ lines: string[]; ok: boolean }> {
  const jax = peer.jax;
  const lines: string[] = [];
  let ok = true;
  const report = (what: string, got: ArrayLike<number>, want: ArrayLike<number>, tol: number) => {
    const c = compareArrays(got, want);
    const pass = c.ok(tol);
    ok &&= pass;
    lines.push(`${what.padEnd(34)} max |diff| ${c.maxAbs.toExponential(2)}, relative ${c.rel.toExponential(2)} (tol ${tol.toExponential(0)}) ${pass ? 'OK' : 'MISMATCH'}`);
  };
  for (const k of jaxKernels(quick).filter((k) => k.group.toLowerCase().includes(filter))) {
    const host = k.inputs();
    const xs = host.map(([d, s]) => E.Tensor.from(device, d, s));
    const f = k.build(jax);
    const got = f(...jaxArrays(jax, () => host));
    const theirs = Array.isArray(got) ? await Promise.all(got.map(jaxData)) : [await jaxData(got)];
    // pssilu grad: jax-js returns d raw a and d raw b apart; ours is one [2] tensor.
    if (theirs.length === 3) theirs.splice(1, 2, Float32Array.of(...theirs[1]!, ...theirs[2]!));
    const want = ourResults(k.group, xs);
    const what = k.group.replace(/^peer /, '');
    for (let i = 0; i < want.length; i++) report(want.length > 1 ? `${what} [${i}]` : what, theirs[i]!, await ours(want[i]!), 1e-5);
    for (const t of [...want, ...xs]) t.dispose();
  }
  // The small CNN with OUR weights: mean cross-entropy and its gradients on one batch.
  if (filter !== '') return { lines, ok }; // --filter: the kernel cases only
  const b = cnnBatch();
  const model = new SmallCnn(device, { seed: 1 });
  const ps = model.parameters();
  const host = await Promise.all(ps.map(async (p) => ({ data: (await p.data()) as Float32Array, shape: [...p.shape] })));
  const x = E.Tensor.from(device, b.images, [BATCH, 1, 28, 28]);
  const y = E.Tensor.from(device, b.labels, [BATCH], 'i32');
  const loss = E.softmaxCrossEntropy(model.forward(x), y);
  E.backward(loss);
  const vg = jax.valueAndGrad((p: JaxArray[], xa: JaxArray, ya: JaxArray) => jaxCnnLoss(jax, p, xa, ya));
  const [jl, jg] = vg(jaxParams(jax, host), jax.numpy.array(b.images).reshape([BATCH, 1, 28, 28]), jax.numpy.array(oneHot(b.labels)).reshape([BATCH, 10]));
  report('small CNN loss (our weights)', await jaxData(jl), await ours(loss), 1e-5);
  const names = ['conv1 w', 'conv1 b', 'conv2 w', 'conv2 b', 'dense w', 'dense b'];
  for (let i = 0; i < ps.length; i++) report(`small CNN grad ${names[i]}`, await jaxData(jg[i]), await ours(ps[i]!.grad!), 1e-4);
  for (const t of [loss, x, y]) t.dispose();
  model.dispose();
  return { lines, ok };
}

/** Our results for a kernel case, in the order jax-js returns them. */
function ourResults(group: string, xs: E.Tensor[]): E.Tensor[] {
  const [x, ra, rb] = xs;
  if (group.startsWith('peer matmul')) return [matmulRaw(x!, ra!)];
  if (group.startsWith('peer silu fwd')) return [E.noGrad(() => activation(x!, 'silu'))];
  if (group.startsWith('peer silu grad')) return [activationValueAndGrad(x!, 'silu', undefined, { value: false }).dx];
  if (group.startsWith('peer gelu fwd')) return [E.noGrad(() => activation(x!, 'gelu'))];
  if (group.startsWith('peer gelu grad')) return [activationValueAndGrad(x!, 'gelu', undefined, { value: false }).dx];
  const raw = E.concat([ra!, rb!], 0);
  if (group.startsWith('peer pssilu fwd')) return [E.noGrad(() => activation(x!, { kind: 'pssilu', raw }))];
  const r = activationValueAndGrad(x!, { kind: 'pssilu', raw }, undefined, { value: false });
  return [r.dx, r.dParams!];
}

function median(a: number[]): number {
  const s = [...a].sort((p, q) => p - q);
  return s[Math.floor(s.length / 2)]!;
}

/**
 * Our ways of computing a kernel case, each timed against jax-js. silu grad has three: the
 * one-pass fused op writing only dx (what jit(grad(sum(silu))) returns), the fused op also
 * writing y, and the two-pass autograd path (forward kernel, then backward kernel).
 */
function ourVariants(group: string, xs: E.Tensor[]): [string, () => void][] {
  if (group.startsWith('peer matmul')) return [['kinkless', () => void matmulRaw(xs[0]!, xs[1]!)]];
  if (group.startsWith('peer silu fwd')) return [['kinkless', () => void E.noGrad(() => activation(xs[0]!, 'silu'))]];
  if (group.startsWith('peer gelu grad')) return [['kinkless fused (dx)', () => void activationValueAndGrad(xs[0]!, 'gelu', undefined, { value: false })]];
  if (group.startsWith('peer pssilu')) {
    const raw = E.concat([xs[1]!, xs[2]!], 0);
    const spec = { kind: 'pssilu' as const, raw };
    if (group.startsWith('peer pssilu fwd')) return [['kinkless', () => void E.noGrad(() => activation(xs[0]!, spec))]];
    return [['kinkless fused (dx, da, db)', () => void activationValueAndGrad(xs[0]!, spec, undefined, { value: false })]];
  }
  if (group.startsWith('peer gelu fwd')) {
    return [
      ['kinkless', () => void E.noGrad(() => activation(xs[0]!, 'gelu'))],
      ['kinkless before (k_gelu_parts)', () => void geluForwardBefore(xs[0]!)],
    ];
  }
  return [
    ['kinkless fused (dx)', () => void activationValueAndGrad(xs[0]!, 'silu', undefined, { value: false })],
    ['kinkless fused (y, dx)', () => void activationValueAndGrad(xs[0]!, 'silu')],
    [
      'kinkless two-pass',
      () => {
        xs[0]!.requiresGrad = true;
        E.grad(activation(xs[0]!, 'silu'), [xs[0]!], E.onesLike(xs[0]!));
        xs[0]!.requiresGrad = false;
      },
    ],
  ];
}

/** Time each kernel case, our variants and jax-js's alternating round by round; ms medians. */
export async function interleavedTimings(device: Device, peer: JaxPeer, quick: boolean, rounds: number, filter = ''): Promise<string[]> {
  const jax = peer.jax;
  const lines: string[] = [];
  for (const k of jaxKernels(quick).filter((k) => k.group.toLowerCase().includes(filter))) {
    const host = k.inputs();
    const xs = host.map(([d, s]) => E.Tensor.from(device, d, s));
    const js = jaxArrays(jax, () => host);
    const f = k.build(jax);
    const ours = ourVariants(k.group, xs);
    const to: number[][] = ours.map(() => []);
    const tj: number[] = [];
    for (let r = -2; r < rounds; r++) {
      for (let v = 0; v < ours.length; v++) {
        await device.sync();
        const t0 = performance.now();
        E.scope(ours[v]![1]);
        await device.sync();
        if (r >= 0) to[v]!.push(performance.now() - t0);
      }
      await peer.sync();
      const t0 = performance.now();
      const out = f(...js.map((a) => a.ref));
      await peer.sync(out);
      if (r >= 0) tj.push(performance.now() - t0);
    }
    const mj = median(tj);
    ours.forEach(([name], v) => {
      const mo = median(to[v]!);
      lines.push(`${k.group.replace(/^peer /, '').padEnd(16)} ${name.padEnd(24)} ${mo.toFixed(2).padStart(8)} ms   jax-js ${mj.toFixed(2).padStart(8)} ms   jax-js / ours ${(mj / mo).toFixed(2)}x`);
    });
    for (const x of xs) x.dispose();
    for (const a of js) a.dispose();
  }
  return lines;
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  const quick = process.argv.includes('--quick');
  const fi = process.argv.indexOf('--filter');
  const filter = fi > 0 ? (process.argv[fi + 1] ?? '').toLowerCase() : '';
  const ri = process.argv.indexOf('--rounds');
  const rounds = ri > 0 ? Number(process.argv[ri + 1]) : quick ? 5 : 9;
  const r = await loadJaxjs();
  if (!r.peer) {
    console.log(skipNote(r.error));
  } else {
    const peer = r.peer;
    const device = await E.createDevice();
    try {
      console.log(`jax-js ${peer.version} (from ${peer.from}) on ${peer.adapter}; kinkless on ${E.adapterName(device)}`);
      const c = await checkAgainstOurs(device, peer, quick, filter);
      console.log(`\nresults, jax-js against kinkless on the same inputs:\n  ${c.lines.join('\n  ')}`);
      const t = await interleavedTimings(device, peer, quick, rounds, filter);
      console.log(`\nwall clock per call incl. sync, medians, sides interleaved (under load):\n  ${t.join('\n  ')}`);
      if (!c.ok) process.exitCode = 1;
    } finally {
      device.destroy();
    }
  }
}
