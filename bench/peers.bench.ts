// Kernel cases against TF.js's WebGPU backend on the same adapter, compared pairwise in
// the same run: matmul 512 / 1024, conv2d forward / input gradient / filter gradient on
// N64 32x32 64->64 3x3 pad 1, relu, silu forward (TF.js: x * sigmoid(x)), silu gradient
// (dx from x and dy; ours: the one-pass activationValueAndGrad without y, plus a 'kinkless
// two-pass' row through autograd; TF.js: tf.grad),
// GELU (erf; TF.js composes it from five ops) forward and gradient, and PSSiLU (two raw
// parameters) forward and gradient (dx and the parameters' gradients). Each group `peer <case>` holds the
// rows 'tfjs webgpu' (measured first) and 'kinkless' (baseline 'tfjs webgpu', so its
// ratio is our speedup over TF.js); the PyTorch CPU rows join the same groups later
// (bench/peers/torch.ts). Both sides are timed by WALL CLOCK (their own device's sync,
// no readback), since TF.js's device cannot be bracketed by our timestamps.
// `peer copy <N>` is our vec4 copy kernel timed the same way: the bandwidth roofline of
// the elementwise rows (bytes: 4 per float read or written).
// Shapes and group names are mirrored in bench/peers/torch_peer.py.
import type { Device } from '../engine/device.ts';
import * as E from '../engine/index.ts';
import { activation } from '../engine/ops/activation.ts';
import { activationValueAndGrad } from '../engine/ops/activation_value_grad.ts';
import { conv2dBackwardFilter, conv2dBackwardInput, conv2dForward, conv2dGeometry } from '../engine/ops/conv2d.ts';
import { matmulRaw } from '../engine/ops/matmul.ts';
import { Uniforms } from '../engine/ops/launch.ts';
import { grid1d } from '../kernels/elementwise.ts';
import { COPY_WORKGROUP, copyVec4Kernel } from '../kernels/copy.ts';
import type { BenchCase } from './harness.ts';
import { hostRand, type TfPeer } from './peers/tfjs.ts';

type TfTensor = import('@tensorflow/tfjs').Tensor;
type T4 = import('@tensorflow/tfjs').Tensor4D;

export const KINKLESS = 'kinkless';
export const TFJS = 'tfjs webgpu';
/** Our silu gradient through autograd (forward kernel + backward kernel), next to the fused row. */
export const KINKLESS_TWO_PASS = 'kinkless two-pass';
/** Our fused gradient with dy = 1 (no dy read), next to the 'kinkless' row that reads dy. */
export const KINKLESS_DY1 = 'kinkless dy = 1 (as jax-js grad of sum)';
const F = 4;
/** The fused gradient rows compute dx only, as the peers' gradients return. */
const DX_ONLY = { value: false } as const;

/** Sizes shared with torch_peer.py. */
export function peerSizes(quick: boolean): { mm: number[]; convN: number; ew: [number, string] } {
  return quick ? { mm: [512], convN: 8, ew: [1 << 20, '1M'] } : { mm: [512, 1024], convN: 64, ew: [1 << 22, '4M'] };
}

interface Pair {
  group: string;
  flops?: number;
  bytes?: number;
  ours: { setup(): void; run(): void; teardown(): void };
  tf?: (tf: TfPeer['tf']) => { setup(): void; run(): void; teardown(): void };
}

function pairCases(device: Device, peer: TfPeer | null, p: Pair): BenchCase[] {
  const out: BenchCase[] = [];
  if (peer && p.tf) {
    const t = p.tf(peer.tf);
    out.push({ group: p.group, name: TFJS, impl: 'tfjs', flops: p.flops, bytes: p.bytes, sync: () => peer.sync(), setup: () => t.setup(), run: () => t.run(), teardown: () => t.teardown() });
  }
  out.push({ group: p.group, name: KINKLESS, impl: 'kinkless', flops: p.flops, bytes: p.bytes, method: 'wall', baseline: peer && p.tf ? TFJS : undefined, ...p.ours });
  return out;
}

/** A TF.js side whose inputs come from host arrays; `op` runs inside tf.tidy. */
function tfSide(inputs: () => [Float32Array, number[]][], op: (tf: TfPeer['tf'], xs: TfTensor[]) => unknown) {
  return (tf: TfPeer['tf']) => {
    let xs: TfTensor[] = [];
    return {
      setup() {
        xs = inputs().map(([d, s]) => tf.tensor(d, s));
      },
      run() {
        tf.tidy(() => void op(tf, xs));
      },
      teardown() {
        for (const x of xs) x.dispose();
        xs = [];
      },
    };
  };
}

/** Our side: tensors from host arrays, `op` runs inside scope (results freed). */
function oursSide(device: Device, inputs: () => [Float32Array, number[]][], op: (xs: E.Tensor[]) => unknown, grad = false) {
  let xs: E.Tensor[] = [];
  return {
    setup() {
      xs = inputs().map(([d, s]) => E.Tensor.from(device, d, s));
      if (grad) xs[0]!.requiresGrad = true;
    },
    run() {
      E.scope(() => void op(xs));
    },
    teardown() {
      for (const x of xs) x.dispose();
      xs = [];
    },
  };
}

/** The PSSiLU peer cases' raw parameters [a, b] (effective |a| = 1.5, |b| = 0.25); mirrored in torch_peer.py. */
export const PSSILU_RAW = [1.5, 0.25] as const;

/** PSSILU_RAW as two [1] host inputs (the peers' a and b). */
export function pssiluRawInputs(): [Float32Array, number[]][] {
  return PSSILU_RAW.map((v) => [Float32Array.of(v), [1]]);
}

/** PSSILU_RAW as our one [2] raw-parameter input. */
function pssiluRawInput(): [Float32Array, number[]] {
  return [Float32Array.from(PSSILU_RAW), [2]];
}

// NOTE: tfjs-core 4.22 has no gelu: 0.5 x (1 + erf(x / sqrt 2)) from five ops.
function geluTf(tf: TfPeer['tf'], x: TfTensor): TfTensor {
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1));
}

/** x (s(|a| x) - |b|) / (1 - |b|) from TF.js ops. */
function pssiluTf(tf: TfPeer['tf'], x: TfTensor, ra: TfTensor, rb: TfTensor): TfTensor {
  const b = tf.abs(rb);
  return tf.div(tf.mul(x, tf.sub(tf.sigmoid(tf.mul(x, tf.abs(ra))), b)), tf.sub(1, b));
}

/** bench/suite_file.ts loads the TF.js peer for this module's 'tfjs webgpu' rows. */
export const usesTfjs = true;

export function cases(device: Device, opts: { quick: boolean; tfjs?: TfPeer | null }): BenchCase[] {
  const peer = opts.tfjs ?? null;
  const sz = peerSizes(opts.quick);
  const out: BenchCase[] = [];
  for (const n of sz.mm) {
    const inputs = (): [Float32Array, number[]][] => [
      [hostRand(n * n, 1), [n, n]],
      [hostRand(n * n, 2), [n, n]],
    ];
    out.push(
      ...pairCases(device, peer, {
        group: `peer matmul ${n}`,
        flops: 2 * n ** 3,
        ours: oursSide(device, inputs, ([a, b]) => matmulRaw(a!, b!)),
        tf: tfSide(inputs, (tf, [a, b]) => tf.matMul(a!, b!)),
      }),
    );
  }
  // conv2d N 32x32 64->64 3x3 pad 1 (TF.js NHWC / HWIO, 'same').
  const N = sz.convN;
  const p = conv2dGeometry([N, 64, 32, 32], [64, 64, 3, 3], { padding: 1 });
  const convFlops = 2 * N * 64 * 32 * 32 * 64 * 9;
  const xs = () => hostRand(N * 64 * 32 * 32, 1);
  const ws = () => hostRand(64 * 64 * 9, 2, 0.1);
  const dys = () => hostRand(N * 64 * 32 * 32, 3);
  const label = `N${N} 32x32 64->64 3x3`;
  const conv = { strides: [1, 1] as [number, number], pad: 'same' as const, dataFormat: 'NHWC' as const, dilations: [1, 1] as [number, number], dimRoundingMode: undefined };
  out.push(
    ...pairCases(device, peer, {
      group: `peer conv fwd ${label}`,
      flops: convFlops,
      ours: oursSide(device, () => [[xs(), [N, 64, 32, 32]], [ws(), [64, 64, 3, 3]]], ([x, w]) => conv2dForward(x!, w!, null, p, 'auto')),
      tf: tfSide(() => [[xs(), [N, 32, 32, 64]], [ws(), [3, 3, 64, 64]]], (tf, [x, w]) => tf.conv2d(x as T4, w as T4, 1, 'same')),
    }),
    ...pairCases(device, peer, {
      group: `peer conv dx ${label}`,
      flops: convFlops,
      ours: oursSide(device, () => [[dys(), [N, 64, 32, 32]], [ws(), [64, 64, 3, 3]]], ([dy, w]) => conv2dBackwardInput(dy!, w!, p, 'auto')),
      tf: tfSide(
        () => [[dys(), [N, 32, 32, 64]], [ws(), [3, 3, 64, 64]]],
        (tf, [dy, w]) => tf.engine().runKernel('Conv2DBackpropInput', { dy: dy!, filter: w! }, { ...conv, inputShape: [N, 32, 32, 64] } as never),
      ),
    }),
    ...pairCases(device, peer, {
      group: `peer conv dw ${label}`,
      flops: convFlops,
      ours: oursSide(device, () => [[dys(), [N, 64, 32, 32]], [xs(), [N, 64, 32, 32]]], ([dy, x]) => conv2dBackwardFilter(dy!, x!, p, 'auto')),
      tf: tfSide(
        () => [[xs(), [N, 32, 32, 64]], [dys(), [N, 32, 32, 64]]],
        (tf, [x, dy]) => tf.engine().runKernel('Conv2DBackpropFilter', { x: x!, dy: dy! }, { ...conv, filterShape: [3, 3, 64, 64] } as never),
      ),
    }),
  );
  // Elementwise / activations on n floats in [-4, 4).
  const [n, lab] = sz.ew;
  const xh = () => hostRand(n, 7, 4);
  const one = (): [Float32Array, number[]][] => [[xh(), [n]]];
  const two = (): [Float32Array, number[]][] => [
    [xh(), [n]],
    [hostRand(n, 8, 0.1), [n]],
  ];
  let cx: E.Tensor | null = null;
  let cy: E.Tensor | null = null;
  const g = grid1d(n / 4, COPY_WORKGROUP);
  const copyU = new Uniforms().u32(n / 4, g.gx).bytes();
  out.push({
    group: `peer copy ${lab}`,
    name: KINKLESS,
    impl: 'kinkless',
    bytes: 2 * n * F,
    method: 'wall',
    setup() {
      cx = E.Tensor.from(device, xh(), [n]);
      cy = E.Tensor.empty(device, [n]);
    },
    run() {
      device.dispatch({ kernel: copyVec4Kernel, buffers: [cx!.buffer, cy!.buffer], uniforms: copyU, workgroups: g.workgroups });
    },
    teardown() {
      cx?.dispose();
      cy?.dispose();
    },
  });
  out.push(
    ...pairCases(device, peer, {
      group: `peer relu ${lab}`,
      bytes: 2 * n * F,
      ours: oursSide(device, one, ([x]) => E.noGrad(() => activation(x!, 'relu'))),
      tf: tfSide(one, (tf, [x]) => tf.relu(x!)),
    }),
    ...pairCases(device, peer, {
      group: `peer silu fwd ${lab}`,
      bytes: 2 * n * F,
      ours: oursSide(device, one, ([x]) => E.noGrad(() => activation(x!, 'silu'))),
      tf: tfSide(one, (tf, [x]) => tf.mul(x!, tf.sigmoid(x!))),
    }),
    ...pairCases(device, peer, {
      // Minimal traffic of forward + backward fused: read x, dy; write dx.
      group: `peer silu grad ${lab}`,
      bytes: 3 * n * F,
      // NOTE: every side computes dx = dy f'(x) from x and dy (the peers run their forward
      // inside the gradient and drop y): ours is the fused op with { value: false }, one
      // pass; 'kinkless two-pass' below is autograd through activation() (forward kernel,
      // then backward kernel). Until 2026-12-04 ours also wrote y.
      ours: oursSide(device, two, ([x, dy]) => activationValueAndGrad(x!, 'silu', dy!, DX_ONLY)),
      tf: tfSide(two, (tf, [x, dy]) => tf.grad((v: TfTensor) => tf.mul(v, tf.sigmoid(v)))(x!, dy!)),
    }),
    {
      group: `peer silu grad ${lab}`,
      name: KINKLESS_TWO_PASS,
      impl: 'kinkless',
      bytes: 3 * n * F,
      method: 'wall',
      baseline: KINKLESS,
      ...oursSide(device, two, ([x, dy]) => E.grad(activation(x!, 'silu'), [x!], dy!), true),
    },
    ...pairCases(device, peer, {
      group: `peer gelu fwd ${lab}`,
      bytes: 2 * n * F,
      ours: oursSide(device, one, ([x]) => E.noGrad(() => activation(x!, 'gelu'))),
      tf: tfSide(one, (tf, [x]) => geluTf(tf, x!)),
    }),
    ...pairCases(device, peer, {
      // As silu grad: dx from x and dy (ours fused in one pass; TF.js tf.grad).
      group: `peer gelu grad ${lab}`,
      bytes: 3 * n * F,
      ours: oursSide(device, two, ([x, dy]) => activationValueAndGrad(x!, 'gelu', dy!, DX_ONLY)),
      tf: tfSide(two, (tf, [x, dy]) => tf.grad((v: TfTensor) => geluTf(tf, v))(x!, dy!)),
    }),
    ...pairCases(device, peer, {
      // PSSiLU with its two raw parameters (a = |raw a|, b = |raw b|, PSSILU_RAW).
      group: `peer pssilu fwd ${lab}`,
      bytes: 2 * n * F,
      ours: oursSide(device, () => [...one(), pssiluRawInput()], ([x, raw]) => E.noGrad(() => activation(x!, { kind: 'pssilu', raw: raw! }))),
      tf: tfSide(() => [...one(), ...pssiluRawInputs()], (tf, [x, a, b]) => pssiluTf(tf, x!, a!, b!)),
    }),
    ...pairCases(device, peer, {
      // dx and the two raw parameters' gradients from x and dy (ours in one pass plus the
      // partial-sum reduction; TF.js tf.grads over x, a and b).
      group: `peer pssilu grad ${lab}`,
      bytes: 3 * n * F,
      ours: oursSide(device, () => [...two(), pssiluRawInput()], ([x, dy, raw]) => activationValueAndGrad(x!, { kind: 'pssilu', raw: raw! }, dy!, DX_ONLY)),
      tf: tfSide(
        () => [...two(), ...pssiluRawInputs()],
        (tf, [x, dy, a, b]) => tf.grads((v: TfTensor, pa: TfTensor, pb: TfTensor) => pssiluTf(tf, v, pa, pb))([x!, a!, b!], dy!),
      ),
    }),
  );
  // dx with dy = 1, read from x alone: the same computation as jax-js's jit(grad(sum(f))).
  for (const kind of ['silu', 'gelu', 'pssilu'] as const) {
    const raw = kind === 'pssilu';
    out.push({
      group: `peer ${kind} grad ${lab}`,
      name: KINKLESS_DY1,
      impl: 'kinkless',
      bytes: 2 * n * F,
      method: 'wall',
      baseline: KINKLESS,
      ...oursSide(device, () => (raw ? [...one(), pssiluRawInput()] : one()), ([x, r]) =>
        activationValueAndGrad(x!, raw ? { kind, raw: r! } : kind, undefined, DX_ONLY),
      ),
    });
  }
  return out;
}
