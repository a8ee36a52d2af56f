// Per-dispatch CPU overhead of kernel descriptors: a constant descriptor (copy_vec4, bound
// once) against one bound per dispatch with its profile info (strided_copy, as the ops do).
// Each run() encodes DISPATCHES one-workgroup dispatches of the same tiny kernel, and the
// case's sync only submits them (it does not wait for the GPU), so a row's time is the CPU
// cost of encoding plus one submit: items/s = dispatches per second of main-thread work.
// ratio = bound-per-dispatch items/s / constant items/s (< 1: the binding costs).
// `encodeOverhead` times the encoding loop alone (no submit), the variants interleaved.
// (The transitional {name, wgsl} form this once compared against is gone from bench/.)
import type { Device } from '../engine/device.ts';
import { Tensor } from '../engine/index.ts';
import { Uniforms } from '../engine/ops/launch.ts';
import { copyVec4Kernel } from '../kernels/copy.ts';
import { stridedCopyKernel } from '../kernels/layout.ts';
import type { Kernel } from '../kernels/kernel.ts';
import type { BenchCase } from './harness.ts';

/** Dispatches per run() (fits one command batch of the queue). */
export const DISPATCHES = 500;

interface Variant {
  name: string;
  /** Encode one dispatch of the kernel on (x, y). */
  encode(device: Device, x: GPUBuffer, y: GPUBuffer): void;
}

const N4 = 64;
const copyU = new Uniforms().u32(N4, N4).bytes();
// strided_copy of a [16, 16] block (rank 2, contiguous): uniforms as engine/ops/layout.ts packs them.
const stridedU = new Uniforms().u32(16, 2, 256, 1).i32(0).u32(0, 0, 0).u32(16, 16, 1, 1, 1, 1, 1, 1).i32(16, 1, 0, 0, 0, 0, 0, 0).u32(16, 1, 0, 0, 0, 0, 0, 0).bytes();

/** The variants timed: the first is the baseline of the others. */
export function variants(): Variant[] {
  return [
    {
      name: 'descriptor copy_vec4',
      encode: (d, x, y) => d.dispatch({ kernel: copyVec4Kernel, buffers: [x, y], uniforms: copyU, workgroups: [1] }),
    },
    {
      name: 'descriptor strided_copy (+ info)',
      encode: (d, x, y) => {
        const kernel: Kernel = stridedCopyKernel({ vec4: false });
        d.dispatch({ kernel, info: { op: 'strided_copy', geometry: '[16, 16]', flops: 0, bytes: 2048 }, buffers: [x, y], uniforms: stridedU, workgroups: [1] });
      },
    },
  ];
}

/**
 * A case sync that submits without waiting for the GPU (so the timed part is the CPU side),
 * except every `k`-th call, which drains the backlog. NOTE: those runs include GPU time and
 * land in the top of the distribution; the median of 31 runs is not affected. Never
 * draining crashed dawn.node (SIGSEGV) after ~10k queued dispatches on lavapipe.
 */
function drainEvery(device: Device, k: number): () => Promise<void> {
  let calls = 0;
  return async () => {
    device.queue.flush();
    if (++calls % k === 0) await device.sync();
  };
}

export function cases(device: Device): BenchCase[] {
  let x: Tensor | null = null;
  let y: Tensor | null = null;
  const setup = () => {
    if (x) return;
    x = Tensor.from(device, new Float32Array(4 * N4).fill(1), [4 * N4]);
    y = Tensor.empty(device, [4 * N4]);
  };
  const vs = variants();
  return vs.map((v, i) => ({
    group: 'dispatch',
    name: `${v.name} x${DISPATCHES}`,
    method: 'wall' as const,
    items: DISPATCHES,
    runs: 31,
    sync: drainEvery(device, 8),
    baseline: i > 0 ? `${vs[0]!.name} x${DISPATCHES}` : undefined,
    setup,
    run() {
      for (let k = 0; k < DISPATCHES; k++) v.encode(device, x!.buffer, y!.buffer);
    },
    teardown() {
      if (i !== vs.length - 1) return;
      // NOTE: disposal goes back to the pool; later users of the buffers are queue-ordered after these copies.
      x?.dispose();
      y?.dispose();
      x = y = null;
    },
  }));
}

export interface OverheadRow {
  name: string;
  /** Median microseconds of CPU per dispatch() call (encoding only). */
  medianUs: number;
  minUs: number;
}

/**
 * Time the encoding loop alone: `rounds` rounds, each timing every variant once (interleaved,
 * so machine load hits all alike) over `perRound` dispatches, submitting and waiting after
 * each timed loop. Returns the median and min microseconds per dispatch of each variant.
 */
export async function encodeOverhead(device: Device, rounds = 15, perRound = DISPATCHES): Promise<OverheadRow[]> {
  const x = Tensor.from(device, new Float32Array(4 * N4).fill(1), [4 * N4]);
  const y = Tensor.empty(device, [4 * N4]);
  const vs = variants();
  const times = vs.map(() => [] as number[]);
  try {
    for (const v of vs) v.encode(device, x.buffer, y.buffer); // warm the pipelines
    await device.sync();
    for (let r = 0; r < rounds; r++) {
      for (let i = 0; i < vs.length; i++) {
        const t0 = performance.now();
        for (let k = 0; k < perRound; k++) vs[i]!.encode(device, x.buffer, y.buffer);
        times[i]!.push(((performance.now() - t0) * 1000) / perRound);
        await device.sync();
      }
    }
  } finally {
    x.dispose();
    y.dispose();
  }
  return vs.map((v, i) => {
    const s = [...times[i]!].sort((a, b) => a - b);
    return { name: v.name, medianUs: s[Math.floor(s.length / 2)]!, minUs: s[0]! };
  });
}

// `npx tsx bench/dispatch.bench.ts`: print the encode-only overhead table.
if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  const { createDevice } = await import('../engine/index.ts');
  const device = await createDevice();
  try {
    for (const r of await encodeOverhead(device)) console.log(`${r.name.padEnd(36)} ${r.medianUs.toFixed(2).padStart(7)} us/dispatch (median), ${r.minUs.toFixed(2)} min`);
  } finally {
    device.destroy();
  }
}
