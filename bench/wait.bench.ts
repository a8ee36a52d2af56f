// GPU waits: the JS main thread's CPU time while it waits for a long batch of GPU work
// (8 matmuls 1024^3), with kinkless's timer ticks (the default) and with dawn.node's own
// immediate ticks (gpuWait 'spin', a second device). On a CPU driver (lavapipe) a busy
// main thread takes a core from the driver: compare wall time and main CPU ms.
import type { Device } from '../engine/device.ts';
import { Tensor, createDevice } from '../engine/index.ts';
import { matmulRaw } from '../engine/ops/matmul.ts';
import type { BenchCase } from './harness.ts';

export function cases(device: Device, opts: { quick: boolean }): BenchCase[] {
  const n = opts.quick ? 512 : 1024;
  const reps = 8;
  const flops = reps * 2 * n * n * n;
  const make = (d: Device) => {
    const data = Float32Array.from({ length: n * n }, (_, i) => ((i * 7919) % 1000) / 1000 - 0.5);
    return [Tensor.from(d, data, [n, n]), Tensor.from(d, data, [n, n])] as const;
  };
  let mine: readonly [Tensor, Tensor] | null = null;
  let spinDev: Device | null = null;
  let theirs: readonly [Tensor, Tensor] | null = null;
  const work = (ab: readonly [Tensor, Tensor]) => {
    for (let r = 0; r < reps; r++) matmulRaw(ab[0], ab[1]).dispose();
  };
  return [
    {
      group: 'gpu wait',
      name: `timer ticks (default), ${reps} matmul ${n}`,
      flops,
      method: 'wall',
      runs: 5,
      setup: () => {
        mine = make(device);
      },
      run: () => work(mine!),
      teardown: () => {
        mine?.forEach((t) => t.dispose());
        mine = null;
      },
    },
    {
      group: 'gpu wait',
      name: `spin (dawn.node's ticks), ${reps} matmul ${n}`,
      flops,
      baseline: `timer ticks (default), ${reps} matmul ${n}`,
      runs: 5,
      setup: async () => {
        spinDev = await createDevice({ gpuWait: 'spin' });
        theirs = make(spinDev);
      },
      run: () => work(theirs!),
      sync: () => spinDev!.sync(),
      teardown: () => {
        theirs?.forEach((t) => t.dispose());
        spinDev?.destroy();
        theirs = null;
        spinDev = null;
      },
    },
  ];
}
