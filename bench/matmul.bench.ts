// Matmul GFLOP/s: the register-blocked kernel vs the naive baseline (and the shared-memory
// tiled variant) at 256, 512 and 1024, square, in the same run; ratio = naive / ours.
import type { Device } from '../engine/device.ts';
import { Tensor } from '../engine/index.ts';
import { matmulRaw, type MatmulRawOptions } from '../engine/ops/matmul.ts';
import type { BenchCase } from './harness.ts';

function rand(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    a[i] = s / 2 ** 31 - 1;
  }
  return a;
}

function mmCase(device: Device, n: number, name: string, o: MatmulRawOptions, baseline?: string): BenchCase {
  let a: Tensor | null = null;
  let b: Tensor | null = null;
  return {
    group: 'matmul',
    name: `${name} ${n}`,
    flops: 2 * n * n * n,
    baseline: baseline ? `${baseline} ${n}` : undefined,
    setup() {
      a = Tensor.from(device, rand(n * n, 1), [n, n]);
      b = Tensor.from(device, rand(n * n, 2), [n, n]);
    },
    run() {
      matmulRaw(a!, b!, o).dispose();
    },
    teardown() {
      a?.dispose();
      b?.dispose();
    },
  };
}

export function cases(device: Device, opts: { quick: boolean }): BenchCase[] {
  const sizes = opts.quick ? [256, 512] : [256, 512, 1024];
  const out: BenchCase[] = [];
  for (const n of sizes) {
    out.push(mmCase(device, n, 'naive', { kernel: 'naive' }));
    out.push(mmCase(device, n, 'fast', {}, 'naive'));
    out.push(mmCase(device, n, 'fast transA', { transA: true }, 'naive'));
    out.push(mmCase(device, n, 'fast transB', { transB: true }, 'naive'));
    if (!opts.quick) out.push(mmCase(device, n, 'tiled (shared memory)', { kernel: 'tiled' }, 'naive'));
  }
  return out;
}
