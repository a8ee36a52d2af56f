// Interleaved same-process A/B of the GEMM orientations and subgroup tiles on the small CNN's
// products (conv2 forward col · W^T vs W · col_n^T, conv1 forward packed vs im2col + GEMM, conv2
// dx k-major, conv2 dw, conv1 per-image dw, dense dx / dw), wall clock with a device sync per
// run, medians over rounds. Run: npx tsx bench/conv_gemm_tiles_ab.ts [rounds (9)] [name filter]
import { createDevice, Tensor } from '../engine/index.ts';
import { matmulRaw } from '../engine/ops/matmul.ts';
import { conv2dForward, conv2dGeometry, conv2dIm2col } from '../engine/ops/conv2d.ts';
import { hostRand as rand } from './host_rand.ts';
import { runInterleaved } from './interleaved_ab.ts';

const rounds = Number(process.argv[2] ?? 9);
const only = process.argv[3] ?? '';
const device = await createDevice();
const p2 = conv2dGeometry([128, 32, 26, 26], [64, 32, 3, 3], { stride: 2 });
const p1 = conv2dGeometry([128, 1, 28, 28], [32, 1, 3, 3], {});
const x2 = Tensor.from(device, rand(128 * 32 * 26 * 26, 1), [128, 32, 26, 26]);
const x1 = Tensor.from(device, rand(128 * 28 * 28, 2), [128, 1, 28, 28]);
const w1 = Tensor.from(device, rand(32 * 9, 3), [32, 1, 3, 3]);
const b1 = Tensor.from(device, rand(32, 4), [32]);
const col2 = conv2dIm2col(x2, p2, 0, 128, 288, -1);
const col2v = col2.view([128, 144, 288]);
const wt2 = Tensor.from(device, rand(288 * 64, 5), [288, 64]);
const wp2 = Tensor.from(device, rand(64 * 288, 6), [64, 288]);
const wp1 = Tensor.from(device, rand(32 * 12, 7), [32, 12]);
type Tile = { layout?: 'bcastA' | 'bcastB'; rows?: number; vecs?: 1 | 2 };
const tiles: [string, Tile | undefined][] = [['auto', undefined], ['mirror 64x8', { layout: 'bcastB', rows: 8, vecs: 2 }], ['mirror 32x8', { layout: 'bcastB', rows: 4, vecs: 2 }], ['mirror 64x4', { layout: 'bcastB', rows: 8, vecs: 1 }], ['A 16x32', { layout: 'bcastA', rows: 16, vecs: 1 }], ['A 12x32', { layout: 'bcastA', rows: 12, vecs: 1 }], ['A 8x32', { layout: 'bcastA', rows: 8, vecs: 1 }]];
const wt2k = Tensor.from(device, rand(288 * 64, 8), [288, 64]);
const dy2 = Tensor.from(device, rand(128 * 64 * 144, 9), [128, 64, 144]);
const dlog = Tensor.from(device, rand(128 * 10, 10), [128, 10]);
const wd = Tensor.from(device, rand(10 * 9216, 11), [10, 9216]);
const h = Tensor.from(device, rand(128 * 9216, 12), [128, 9216]);
const dz1 = Tensor.from(device, rand(128 * 32 * 676, 13), [128, 32, 676]);
const dyP2 = Tensor.from(device, rand(64 * 18432, 14), [64, 18432]);
const col1 = conv2dIm2col(x1, p1, 0, 128, 12, 9);
const col1v = col1.view([128, 676, 12]);
const gtiles: [string, Tile | undefined][] = [['auto', undefined], ['mirror 64x8', { layout: 'bcastB', rows: 8, vecs: 2 }], ['mirror 16x8', { layout: 'bcastB', rows: 2, vecs: 2 }], ['mirror 32x4', { layout: 'bcastB', rows: 4, vecs: 1 }], ['A 16x32', { layout: 'bcastA', rows: 16, vecs: 1 }], ['A 12x32', { layout: 'bcastA', rows: 12, vecs: 1 }], ['A 8x32', { layout: 'bcastA', rows: 8, vecs: 1 }]];
const cases: Record<string, () => void> = {
  'conv2 fwd col·Wt (current)': () => matmulRaw(col2, wt2).dispose(),
  'conv1 fwd packed (current)': () => conv2dForward(x1, w1, b1, p1, 'fast').dispose(),
};
for (const [nm, sg] of tiles) {
  cases[`conv2 fwd W·colT ${nm}`] = () => matmulRaw(wp2, col2v, { transB: true, sg }).dispose();
  cases[`conv1 fwd im2col+W·colT ${nm}`] = () => {
    const c = conv2dIm2col(x1, p1, 0, 128, 12, 9);
    const cv = c.view([128, 676, 12]);
    c.dispose();
    matmulRaw(wp1, cv, { transB: true, sg }).dispose();
    cv.dispose();
  };
}
for (const [nm, sg] of gtiles) {
  cases[`conv2 dx k-major ${nm}`] = () => matmulRaw(wt2k, dy2, { sg }).dispose();
  cases[`dense dx ${nm}`] = () => matmulRaw(dlog, wd, { sg }).dispose();
  cases[`dense dw ${nm}`] = () => matmulRaw(dlog, h, { transA: true, sg }).dispose();
  cases[`conv1 dw per image ${nm}`] = () => matmulRaw(dz1, col1v, { sg }).dispose();
  cases[`conv2 dw ${nm}`] = () => matmulRaw(dyP2, col2, { sg }).dispose();
}
await runInterleaved(device, cases, only, rounds, 40);
process.exit(0);
