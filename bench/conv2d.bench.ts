// conv2d GFLOP/s for the forward pass, the input gradient (dx) and the filter gradient
// (dw): the fast kernels (packed where they apply), the direct register-blocked ones, the
// GEMM path (im2col + matmul), the 'auto' choice and the naive one-output-per-thread
// baseline (at a batch of at most 8), in the same run; ratio = our GFLOP/s / naive GFLOP/s.
// The full set includes the two conv layers of the small MNIST CNN at batch 128, the
// per-pixel kernels ('pixel') on conv1, and the 'conv2d levers' group: each lever of
// the conv path A/B in the same run (col2im by stride phase vs testing every tap; conv2's
// dx with a k-major vs pixel-major dcol; conv2's forward + dw with the forward's im2col
// kept vs rebuilt; conv1's dw + db per-image GEMM vs per-pixel; conv1's dw per-pixel vs
// direct). bench/conv_levers_ab.ts runs the newest levers interleaved in one process.
// TF.js webgpu on the same adapter (docs/peers.md), N64 32x32 64->64 3x3:
// 6.1 fwd / 6.9 dx / 1.3 dw GFLOP/s; N64 28x28 1->32 3x3: 0.29 / 1.1 / 1.1.
import type { Device } from '../engine/device.ts';
import { Tensor } from '../engine/index.ts';
import { conv2d, conv2dBackward, conv2dBackwardFilter, conv2dBackwardInput, conv2dForward, conv2dGeometry, convRun, type Conv2dOptions, type ConvImpl } from '../engine/ops/conv2d.ts';
import { grad, scope } from '../engine/index.ts';
import type { BenchCase } from './harness.ts';
import { hostRand as rand } from './host_rand.ts';

interface Shape {
  label: string;
  x: [number, number, number, number];
  w: [number, number, number, number];
  o: Conv2dOptions;
}

type Dir = 'fwd' | 'dx' | 'dw';

/** The naive kernels run at most this batch (their GFLOP/s hardly depends on N; full size takes minutes). */
const NAIVE_MAX_N = 8;

function naiveName(s: Shape): string {
  return s.x[0] > NAIVE_MAX_N ? `naive ${s.label} (run at N=${NAIVE_MAX_N})` : `naive ${s.label}`;
}

function convCase(device: Device, s0: Shape, dir: Dir, impl: ConvImpl, extra: Conv2dOptions = {}, group?: string, label?: string): BenchCase {
  const s: Shape = impl === 'naive' ? { ...s0, x: [Math.min(s0.x[0], NAIVE_MAX_N), s0.x[1], s0.x[2], s0.x[3]] } : s0;
  const p = conv2dGeometry(s.x, s.w, s.o);
  let x: Tensor | null = null;
  let w: Tensor | null = null;
  let dy: Tensor | null = null;
  return {
    group: group ?? `conv2d ${dir}`,
    name: label ?? (impl === 'naive' ? naiveName(s0) : `${impl} ${s.label}`),
    flops: 2 * p.N * p.O * p.OH * p.OW * p.Cg * p.KH * p.KW,
    baseline: group ? undefined : impl === 'naive' ? undefined : naiveName(s0),
    setup() {
      x = Tensor.from(device, rand(p.N * p.C * p.H * p.W, 1), s.x);
      w = Tensor.from(device, rand(p.O * p.Cg * p.KH * p.KW, 2), s.w);
      dy = Tensor.from(device, rand(p.N * p.O * p.OH * p.OW, 3), [p.N, p.O, p.OH, p.OW]);
    },
    run() {
      const o = { ...extra, impl };
      const r = dir === 'fwd' ? conv2dForward(x!, w!, null, p, o) : dir === 'dx' ? conv2dBackwardInput(dy!, w!, p, o) : conv2dBackwardFilter(dy!, x!, p, o);
      r.dispose();
    },
    teardown() {
      x?.dispose();
      w?.dispose();
      dy?.dispose();
    },
  };
}

export function cases(device: Device, opts: { quick: boolean }): BenchCase[] {
  const shapes: Shape[] = opts.quick
    ? [
        { label: 'N16 28x28 1->32 3x3', x: [16, 1, 28, 28], w: [32, 1, 3, 3], o: {} },
        { label: 'N8 32x32 64->64 3x3 pad 1', x: [8, 64, 32, 32], w: [64, 64, 3, 3], o: { padding: 1 } },
      ]
    : [
        { label: 'N128 28x28 1->32 3x3 (MNIST conv1)', x: [128, 1, 28, 28], w: [32, 1, 3, 3], o: {} },
        { label: 'N128 26x26 32->64 3x3 stride 2 (MNIST conv2)', x: [128, 32, 26, 26], w: [64, 32, 3, 3], o: { stride: 2 } },
        { label: 'N128 14x14 32->64 3x3 pad 1', x: [128, 32, 14, 14], w: [64, 32, 3, 3], o: { padding: 1 } },
        { label: 'N64 32x32 64->64 3x3 pad 1', x: [64, 64, 32, 32], w: [64, 64, 3, 3], o: { padding: 1 } },
      ];
  const out: BenchCase[] = [];
  for (const dir of ['fwd', 'dx', 'dw'] as const) {
    for (const s of shapes) {
      // NOTE: dw has one fast kernel ('direct' and 'fast' are the same launch); 'pixel'
      // runs only where its reduction is short (elsewhere it is 'fast'), and has no dx.
      const impls: ConvImpl[] = dir === 'dw' ? ['naive', 'fast', 'gemm', 'auto'] : ['naive', 'direct', 'fast', 'gemm', 'auto'];
      if (dir !== 'dx' && s.w[1] * s.w[2] * s.w[3] <= 32) impls.splice(-1, 0, 'pixel');
      for (const impl of impls) out.push(convCase(device, s, dir, impl));
    }
  }
  if (!opts.quick) out.push(...leverCases(device));
  return out;
}

/** Each lever of the conv path A/B in one run (group 'conv2d levers'; compare the pairs). */
function leverCases(device: Device): BenchCase[] {
  const conv1: Shape = { label: 'MNIST conv1 N128', x: [128, 1, 28, 28], w: [32, 1, 3, 3], o: {} };
  const conv2: Shape = { label: 'MNIST conv2 N128', x: [128, 32, 26, 26], w: [64, 32, 3, 3], o: { stride: 2 } };
  const G = 'conv2d levers';
  return [
    convCase(device, conv2, 'dx', 'gemm', { col2im: 'phase' }, G, 'dx gemm, col2im by stride phase (MNIST conv2 N128)'),
    convCase(device, conv2, 'dx', 'gemm', { col2im: 'taps' }, G, 'dx gemm, col2im testing every tap (MNIST conv2 N128)'),
    convCase(device, conv2, 'dx', 'gemm', { dcol: 'k' }, G, 'dx gemm, k-major dcol (MNIST conv2 N128)'),
    convCase(device, conv2, 'dx', 'gemm', { dcol: 'pixel' }, G, 'dx gemm, pixel-major dcol (MNIST conv2 N128)'),
    dwDbCase(device, conv1, 'gemm', G, 'dw + db gemm, one image per slice, db from the ones column (MNIST conv1 N128)'),
    dwDbCase(device, conv1, 'pixel', G, 'dw + db pixel, db by a reduce (MNIST conv1 N128)'),
    keepCase(device, conv2, 64 << 20, G, 'fwd + dw + db gemm, forward im2col kept (MNIST conv2 N128)'),
    keepCase(device, conv2, 0, G, 'fwd + dw + db gemm, im2col rebuilt for dw (MNIST conv2 N128)'),
    convCase(device, conv1, 'dw', 'pixel', {}, G, 'dw pixel (MNIST conv1 N128)'),
    convCase(device, conv1, 'dw', 'fast', {}, G, 'dw fast (MNIST conv1 N128)'),
    convCase(device, conv1, 'fwd', 'pixel', {}, G, 'fwd pixel (MNIST conv1 N128)'),
    convCase(device, conv1, 'fwd', 'fast', {}, G, 'fwd fast (packed) (MNIST conv1 N128)'),
  ];
}

/** The filter and bias gradients of a conv as its backward computes them (x needs none). */
function dwDbCase(device: Device, s: Shape, impl: ConvImpl, group: string, name: string): BenchCase {
  const p = conv2dGeometry(s.x, s.w, s.o);
  return {
    group,
    name,
    flops: 2 * p.N * p.O * p.OH * p.OW * p.Cg * p.KH * p.KW,
    ...gradTensors(device, s, p, (t) =>
      scope(() => void conv2dBackward(t.dy, { x: t.x, w: t.w, b: t.b, p, run: convRun('conv2d', { ...s.o, impl }), kept: null })),
    ),
  };
}

/** conv2d forward + gradients of w and b through autograd, GEMM path, with a keepIm2colBytes. */
function keepCase(device: Device, s: Shape, keepIm2colBytes: number, group: string, name: string): BenchCase {
  const p = conv2dGeometry(s.x, s.w, s.o);
  return {
    group,
    name,
    flops: 2 * (2 * p.N * p.O * p.OH * p.OW * p.Cg * p.KH * p.KW),
    ...gradTensors(device, s, p, (t) => scope(() => void grad(conv2d(t.x, t.w, t.b, { ...s.o, impl: 'gemm', keepIm2colBytes }), [t.w, t.b], t.dy))),
  };
}

/** setup / run / teardown of a case on x, w, b (w and b needing gradients) and an upstream dy. */
function gradTensors(
  device: Device,
  s: Shape,
  p: ReturnType<typeof conv2dGeometry>,
  run: (t: { x: Tensor; w: Tensor; b: Tensor; dy: Tensor }) => void,
): Pick<BenchCase, 'setup' | 'run' | 'teardown'> {
  let t: { x: Tensor; w: Tensor; b: Tensor; dy: Tensor } | null = null;
  return {
    setup() {
      const w = Tensor.from(device, rand(p.O * p.Cg * p.KH * p.KW, 2), s.w);
      const b = Tensor.from(device, rand(p.O, 4), [p.O]);
      w.requiresGrad = true;
      b.requiresGrad = true;
      t = { x: Tensor.from(device, rand(p.N * p.C * p.H * p.W, 1), s.x), w, b, dy: Tensor.from(device, rand(p.N * p.O * p.OH * p.OW, 3), [p.N, p.O, p.OH, p.OW]) };
    },
    run() {
      run(t!);
    },
    teardown() {
      if (t) for (const v of Object.values(t)) v.dispose();
      t = null;
    },
  };
}
