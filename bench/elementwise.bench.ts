// Elementwise bandwidth: the engine's clone, add and axpy (named elementwise kernels) on 4M floats against the plain vec4 device
// copy kernel (kernels/copy.ts) and a copyBufferToBuffer, all in the same run;
// ratio = our GB/s / the copy kernel's GB/s (bytes = 4 per float read or written).
import type { Device } from '../engine/device.ts';
import { Tensor, add, axpy, clone } from '../engine/index.ts';
import { grid1d } from '../kernels/elementwise.ts';
import { COPY_WORKGROUP, copyVec4Kernel } from '../kernels/copy.ts';
import { Uniforms } from '../engine/ops/launch.ts';
import type { BenchCase } from './harness.ts';

export function cases(device: Device, opts: { quick: boolean }): BenchCase[] {
  const n = opts.quick ? 1 << 20 : 1 << 22;
  const label = opts.quick ? '1M' : '4M';
  let x: Tensor | null = null;
  let y: Tensor | null = null;
  let z: Tensor | null = null;
  const setup = () => {
    if (x) return;
    x = Tensor.from(device, new Float32Array(n).fill(1.5), [n]);
    y = Tensor.from(device, new Float32Array(n).fill(-0.5), [n]);
    z = Tensor.empty(device, [n]);
  };
  const teardown = (last: boolean) => () => {
    if (!last) return;
    x?.dispose();
    y?.dispose();
    z?.dispose();
    x = y = z = null;
  };
  const g = grid1d(n / 4, COPY_WORKGROUP);
  const copyU = new Uniforms().u32(n / 4, g.gx).bytes();
  const F = 4;
  const list: BenchCase[] = [
    {
      group: 'elementwise',
      name: `copy kernel (vec4) ${label}`,
      bytes: 2 * n * F,
      setup,
      run() {
        device.dispatch({ kernel: copyVec4Kernel, buffers: [x!.buffer, z!.buffer], uniforms: copyU, workgroups: g.workgroups });
      },
      teardown: teardown(false),
    },
    {
      group: 'elementwise',
      name: `copyBufferToBuffer ${label}`,
      bytes: 2 * n * F,
      baseline: `copy kernel (vec4) ${label}`,
      setup,
      run() {
        device.queue.copy(x!.buffer, 0, z!.buffer, 0, n * F);
      },
      teardown: teardown(false),
    },
    {
      group: 'elementwise',
      name: `ew copy ${label}`,
      bytes: 2 * n * F,
      baseline: `copy kernel (vec4) ${label}`,
      setup,
      run() {
        clone(x!).dispose();
      },
      teardown: teardown(false),
    },
    {
      group: 'elementwise',
      name: `ew add ${label}`,
      bytes: 3 * n * F,
      baseline: `copy kernel (vec4) ${label}`,
      setup,
      run() {
        add(x!, y!).dispose();
      },
      teardown: teardown(false),
    },
    {
      group: 'elementwise',
      name: `ew axpy ${label}`,
      bytes: 3 * n * F,
      baseline: `copy kernel (vec4) ${label}`,
      setup,
      run() {
        axpy(y!, x!, 0.5).dispose();
      },
      teardown: teardown(true),
    },
  ];
  return list;
}
