// Interleaved same-process A/B of the newest conv levers (docs/conv2d.md): each round runs
// every case once, wall clock with a device sync per run; medians over the rounds.
// Run: npx tsx bench/conv_levers_ab.ts [rounds (9)] [name filter]
import { createDevice, Tensor, grad, scope } from '../engine/index.ts';
import { conv2dBackward, conv2dBackwardInput, conv2dGeometry, convRun, type Conv2dOptions } from '../engine/ops/conv2d.ts';
import { conv2dAct } from '../engine/ops/fused.ts';
import { hostRand as rand } from './host_rand.ts';
import { runInterleaved } from './interleaved_ab.ts';

const rounds = Number(process.argv[2] ?? 9);
const only = process.argv[3] ?? '';
const device = await createDevice();
const conv1 = { x: [128, 1, 28, 28] as const, w: [32, 1, 3, 3] as const, o: {} as Conv2dOptions };
const conv2 = { x: [128, 32, 26, 26] as const, w: [64, 32, 3, 3] as const, o: { stride: 2 } as Conv2dOptions };
function tensors(s: typeof conv1 | typeof conv2) {
  const p = conv2dGeometry([...s.x], [...s.w], s.o);
  const x = Tensor.from(device, rand(p.N * p.C * p.H * p.W, 1), [...s.x]);
  const w = Tensor.from(device, rand(p.O * p.Cg * p.KH * p.KW, 2), [...s.w]);
  const b = Tensor.from(device, rand(p.O, 4), [p.O]);
  const dy = Tensor.from(device, rand(p.N * p.O * p.OH * p.OW, 3), [p.N, p.O, p.OH, p.OW]);
  return { p, x, w, b, dy };
}
const t1 = tensors(conv1);
const t2 = tensors(conv2);
t1.w.requiresGrad = true; t1.b.requiresGrad = true;
t2.w.requiresGrad = true; t2.b.requiresGrad = true;
const fwdDw = (o: Conv2dOptions) => () => scope(() => void grad(conv2dAct(t2.x, t2.w, t2.b, 'relu', { stride: 2, impl: 'gemm', ...o }), [t2.w, t2.b], t2.dy));
const cases: Record<string, () => void> = {
  'conv2 dx dcol pixel unbaked': () => conv2dBackwardInput(t2.dy, t2.w, t2.p, { impl: 'gemm', dcol: 'pixel', bakeGeometry: false }).dispose(),
  'conv2 dx dcol pixel baked': () => conv2dBackwardInput(t2.dy, t2.w, t2.p, { impl: 'gemm', dcol: 'pixel' }).dispose(),
  'conv2 dx dcol k unbaked': () => conv2dBackwardInput(t2.dy, t2.w, t2.p, { impl: 'gemm', dcol: 'k', bakeGeometry: false }).dispose(),
  'conv2 dx dcol k baked': () => conv2dBackwardInput(t2.dy, t2.w, t2.p, { impl: 'gemm', dcol: 'k' }).dispose(),
  'conv1 fwd relu packed unbaked': () => scope(() => void conv2dAct(t1.x, t1.w, t1.b, 'relu', { bakeGeometry: false })),
  'conv1 fwd relu packed baked': () => scope(() => void conv2dAct(t1.x, t1.w, t1.b, 'relu', {})),
  'conv1 dw+db pixel': () => scope(() => void conv2dBackward(t1.dy, { x: t1.x, w: t1.w, b: t1.b, p: t1.p, run: convRun('conv2d', 'pixel'), kept: null })),
  'conv1 dw+db gemm': () => scope(() => void conv2dBackward(t1.dy, { x: t1.x, w: t1.w, b: t1.b, p: t1.p, run: convRun('conv2d', 'gemm'), kept: null })),
  'conv2 fwd+dw+db relu permute unbaked': fwdDw({ gemmForward: 'permute', bakeGeometry: false }),
  'conv2 fwd+dw+db relu permute baked': fwdDw({ gemmForward: 'permute' }),
  'conv2 fwd+dw+db relu direct baked': fwdDw({ gemmForward: 'direct' }),
};
await runInterleaved(device, cases, only, rounds, 28);
device.destroy?.();
process.exit(0);
