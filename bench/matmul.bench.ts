// Matmul GFLOP/s in one run: the register-blocked kernel ('fast'), the subgroup GEMM (A
// broadcast, mirror B broadcast, split-K) and 'auto' beside each other, against the naive
// baseline, on square sizes and on the GEMM shapes the small CNN sends (conv2's im2col
// products, the dense layer's forward and gradients at batch 128). tileSearch() is the
// interleaved tile search recorded in docs/matmul.md:
//   npx tsx -e "import('./bench/matmul.bench.ts').then((m) => m.tileSearch())"
import type { Device } from '../engine/device.ts';
import { createDevice } from '../engine/device.ts';
import { Tensor } from '../engine/index.ts';
import { matmulRaw, subgroupGemmSupported, type MatmulRawOptions } from '../engine/ops/matmul.ts';
import { measure, type BenchCase } from './harness.ts';
import { hostRand as rand } from './host_rand.ts';

/** A GEMM shape: y [M, N] = op(a) op(b), with the bias the dense forward adds. */
export interface GemmShape {
  name: string;
  M: number;
  N: number;
  K: number;
  transA?: boolean;
  transB?: boolean;
  bias?: boolean;
}

/**
 * The small CNN's products at batch 128 (nn/models/small_cnn.ts; engine/ops/conv2d.ts's
 * GEMM path with one 128-image chunk, and linear's forward / dx / dw).
 */
export const GEMM_SHAPES: GemmShape[] = [
  { name: 'conv2 fwd', M: 18432, N: 64, K: 292 },
  { name: 'conv2 dx', M: 18432, N: 288, K: 64 },
  { name: 'conv2 dw', M: 64, N: 288, K: 18432 },
  { name: 'dense fwd', M: 128, N: 10, K: 9216, transB: true, bias: true },
  { name: 'dense dx', M: 128, N: 9216, K: 10 },
  { name: 'dense dw', M: 10, N: 9216, K: 128, transA: true },
];

/** A split-K candidate: so few rows and columns that the output alone gives 3 workgroups. */
export const TINY_LONG_K: GemmShape = { name: 'tiny long-K', M: 8, N: 10, K: 9216, transB: true };

export function square(n: number): GemmShape {
  return { name: `${n}`, M: n, N: n, K: n };
}

/** Allocate the operands of `s`; returns the run function and a dispose. */
function operands(device: Device, s: GemmShape): { run: (o: MatmulRawOptions) => void; dispose: () => void } {
  const a = Tensor.from(device, rand(s.M * s.K, 1), s.transA ? [s.K, s.M] : [s.M, s.K]);
  const b = Tensor.from(device, rand(s.K * s.N, 2), s.transB ? [s.N, s.K] : [s.K, s.N]);
  const bias = s.bias ? Tensor.from(device, rand(s.N, 3), [s.N]) : undefined;
  return {
    run: (o) => matmulRaw(a, b, { ...o, transA: s.transA, transB: s.transB, bias }).dispose(),
    dispose: () => {
      a.dispose();
      b.dispose();
      bias?.dispose();
    },
  };
}

function mmCase(device: Device, s: GemmShape, name: string, o: MatmulRawOptions, baseline?: string): BenchCase {
  let ops: ReturnType<typeof operands> | null = null;
  return {
    group: 'matmul',
    name: `${name} ${s.name}`,
    flops: 2 * s.M * s.N * s.K,
    baseline: baseline ? `${baseline} ${s.name}` : undefined,
    setup() {
      ops = operands(device, s);
    },
    run() {
      ops!.run(o);
    },
    teardown() {
      ops?.dispose();
    },
  };
}

export function cases(device: Device, opts: { quick: boolean }): BenchCase[] {
  const sizes = opts.quick ? [256, 512] : [256, 512, 1024];
  const sg = subgroupGemmSupported(device);
  const out: BenchCase[] = [];
  for (const n of sizes) {
    const s = square(n);
    out.push(mmCase(device, s, 'naive', { kernel: 'naive' }));
    out.push(mmCase(device, s, 'fast', { kernel: 'fast' }, 'naive'));
    out.push(mmCase(device, s, 'fast transA', { kernel: 'fast', transA: true }, 'naive'));
    out.push(mmCase(device, s, 'fast transB', { kernel: 'fast', transB: true }, 'naive'));
    if (sg) {
      out.push(mmCase(device, s, 'subgroup', { kernel: 'subgroup' }, 'naive'));
      out.push(mmCase(device, s, 'mirror', { kernel: 'mirror' }, 'naive'));
    }
    out.push(mmCase(device, s, 'auto', {}, 'naive'));
    if (!opts.quick) out.push(mmCase(device, s, 'tiled (shared memory)', { kernel: 'tiled' }, 'naive'));
  }
  // The model's GEMM shapes: auto (what the model runs) against the register-blocked kernel.
  for (const s of opts.quick ? GEMM_SHAPES.filter((g) => g.name.startsWith('dense')) : GEMM_SHAPES) {
    out.push(mmCase(device, s, 'fast', { kernel: 'fast' }));
    if (sg && s.name === 'dense fwd') out.push(mmCase(device, s, 'split-K', { kernel: 'splitk' }, 'fast'));
    out.push(mmCase(device, s, 'auto', {}, 'fast'));
  }
  return out;
}

/**
 * Candidates of the tile search (kernel options), by label. Round 1 ('wide') covered
 * A-broadcast rows 4/8/16 x vecs 1/2 and mirror rows 1/2/4 x vecs 1/2 (docs/matmul.md);
 * round 2 ('final') kept the contenders and added larger mirror tiles; 'pick' is the
 * deciding A/B between the three best general tiles.
 */
export type TileSet = 'wide' | 'final' | 'pick';

function candidates(s: GemmShape, set: TileSet): [string, MatmulRawOptions][] {
  const out: [string, MatmulRawOptions][] = [['fast 8x4', { kernel: 'fast' }]];
  const A = (rows: number, vecs: 1 | 2, splitK = 1): [string, MatmulRawOptions] => [`A-bcast ${rows}x${32 * vecs}${splitK > 1 ? ` split ${splitK}` : ''}`, { kernel: 'subgroup', sg: { layout: 'bcastA', rows, vecs }, splitK }];
  const B = (rows: number, vecs: 1 | 2, splitK = 1): [string, MatmulRawOptions] => [`mirror ${8 * rows}x${4 * vecs}${splitK > 1 ? ` split ${splitK}` : ''}`, { kernel: 'mirror', sg: { rows, vecs }, splitK }];
  if (set === 'pick') {
    out.push(A(12, 1), A(16, 1), B(4, 2));
  } else if (set === 'wide') {
    for (const rows of [4, 8, 16]) for (const vecs of [1, 2] as const) out.push(A(rows, vecs));
    for (const rows of [1, 2, 4]) for (const vecs of [1, 2] as const) out.push(B(rows, vecs));
    if (s.K >= 4096) for (const S of [2, 4, 8, 16]) out.push(A(8, 1, S), B(1, 1, S), B(2, 2, S));
  } else {
    out.push(A(8, 1), A(12, 1), A(16, 1));
    for (const [rows, vecs] of [[2, 1], [4, 1], [8, 1], [2, 2], [4, 2], [8, 2]] as const) out.push(B(rows, vecs));
    if (s.K >= 4096) for (const S of [2, 4, 8]) out.push(B(2, 1, S), B(4, 2, S));
  }
  out.push(['auto', {}]);
  return out;
}

/**
 * Tile search: for each shape, every candidate measured in `rounds` interleaved rounds
 * (one short measurement per candidate per round); prints the median GFLOP/s per candidate.
 */
export async function tileSearch(rounds = 5, set: TileSet = 'final', shapes: GemmShape[] = [square(1024), ...GEMM_SHAPES]): Promise<void> {
  const device = await createDevice();
  if (!subgroupGemmSupported(device)) throw new Error('tileSearch: this adapter cannot run the subgroup GEMM');
  for (const s of shapes) {
    const ops = operands(device, s);
    const cands = candidates(s, set);
    const times = cands.map(() => [] as number[]);
    for (const [, o] of cands) ops.run(o); // compile every pipeline before timing
    await device.sync();
    for (let r = 0; r < rounds; r++) {
      for (let i = 0; i < cands.length; i++) {
        const m = await measure(device, () => ops.run(cands[i]![1]), { warmup: 1, runs: 3 });
        times[i]!.push(m.median);
      }
    }
    const flops = 2 * s.M * s.N * s.K;
    const rows = cands.map(([label], i) => {
      const t = [...times[i]!].sort((x, y) => x - y)[Math.floor(rounds / 2)]!;
      return { label, ms: t, gflops: flops / t / 1e6 };
    });
    console.log(`\n${s.name}: M${s.M} N${s.N} K${s.K}${s.transA ? ' transA' : ''}${s.transB ? ' transB' : ''} (median of ${rounds} interleaved rounds)`);
    for (const r of rows) console.log(`  ${r.label.padEnd(24)} ${r.ms.toFixed(3).padStart(9)} ms ${r.gflops.toFixed(1).padStart(7)} GFLOP/s`);
    ops.dispose();
  }
  device.destroy();
}
