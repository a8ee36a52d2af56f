// Runtime behaviour: memory stays flat over many forward/backward steps, scopes free what
// they should, the process exits by itself after destroy(), errors are clear.
import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { testDevice } from '../helpers/device.ts';
import * as E from '../../engine/index.ts';
import { sizeClass } from '../../engine/buffer_pool.ts';

describe('runtime', () => {
  it('500 forward/backward steps leave live buffers and bytes flat', async () => {
    const d = await testDevice();
    const w = E.keep(E.Tensor.from(d, Float32Array.from({ length: 64 }, (_, i) => Math.sin(i)), [8, 8]));
    w.requiresGrad = true;
    const x = E.keep(E.Tensor.from(d, Float32Array.from({ length: 40 }, (_, i) => Math.cos(i)), [5, 8]));
    const step = () =>
      E.scope(() => {
        const h = E.mul(E.reshape(x, [5, 1, 8]), w); // [5, 8, 8]
        const loss = E.mean(E.powScalar(E.sub(E.sum(h, 2), 1), 2));
        E.backward(loss);
        // SGD update in place of w's values: w <- w - 0.01 * grad (new buffer each step)
        return loss;
      });
    const l0 = step();
    await l0.data();
    l0.dispose();
    w.zeroGrad();
    const before = d.stats();
    let last = 0;
    for (let i = 0; i < 500; i++) {
      const l = step();
      if (i % 100 === 99) last = await l.item();
      l.dispose();
      w.zeroGrad();
    }
    await d.sync();
    const after = d.stats();
    expect(Number.isFinite(last)).toBe(true);
    expect(after.liveBuffers).toBe(before.liveBuffers);
    expect(after.liveBytes).toBe(before.liveBytes);
  });

  it('scope frees unreturned tensors and keeps returned ones', async () => {
    const d = await testDevice();
    const before = d.stats().liveBuffers;
    const out = E.scope(() => {
      const a = E.Tensor.from(d, [1, 2, 3]);
      const b = E.add(a, a);
      const c = E.mul(b, b);
      return { c };
    });
    expect(d.stats().liveBuffers).toBe(before + 1);
    expect(Array.from(await out.c.f32())).toEqual([4, 16, 36]);
    out.c.dispose();
    expect(d.stats().liveBuffers).toBe(before);
  });

  it('views share storage and free it once', async () => {
    const d = await testDevice();
    const before = d.stats().liveBuffers;
    const a = E.Tensor.from(d, [1, 2, 3, 4], [2, 2]);
    const v = E.reshape(a, [4]);
    a.dispose();
    expect(Array.from(await v.f32())).toEqual([1, 2, 3, 4]);
    expect(d.stats().liveBuffers).toBe(before + 1);
    v.dispose();
    expect(d.stats().liveBuffers).toBe(before);
    expect(() => v.buffer).toThrow(/already disposed/);
  });

  it('grad() leaves .grad untouched; backward accumulates', async () => {
    const d = await testDevice();
    const p = E.Tensor.from(d, [1, 2, 3]);
    p.requiresGrad = true;
    const [g] = E.grad(E.sum(E.mul(p, p)), [p]);
    expect(Array.from(await g!.f32())).toEqual([2, 4, 6]);
    expect(p.grad).toBeNull();
    E.backward(E.sum(E.mul(p, 3)));
    E.backward(E.sum(E.mul(p, 3)));
    expect(Array.from(await p.grad!.f32())).toEqual([6, 6, 6]);
    const n = E.noGrad(() => E.mul(p, 2));
    expect(n.requiresGrad).toBe(false);
    expect(E.detach(p).requiresGrad).toBe(false);
  });

  it('size classes waste at most 25%', () => {
    for (const b of [1, 255, 256, 257, 1000, 4096, 5000, 1 << 20, (1 << 20) + 1, 123456789]) {
      const c = sizeClass(b);
      expect(c).toBeGreaterThanOrEqual(b);
      expect(c).toBeLessThanOrEqual(Math.max(256, b * 1.25));
    }
  });

  it('shader errors name the kernel and show its WGSL', async () => {
    const d = await testDevice();
    await expect(d.pipelines.compile({ family: 'test', name: 'broken_kernel', cacheKey: 'test|broken', bindings: [], build: () => '@compute @workgroup_size(1) fn main() { let x: f32 = nope; }' })).rejects.toThrow(
      /kernel "broken_kernel" failed to compile[\s\S]*WGSL of broken_kernel[\s\S]*nope/,
    );
  });

  it('allocations beyond the device limit fail with a clear error', async () => {
    const d = await testDevice();
    expect(() => E.Tensor.empty(d, [1 << 30, 8])).toThrow(/exceeds the device's largest storage buffer/);
    expect(() => E.Tensor.from(d, [1, 2, 3], [2, 2])).toThrow(/data has 3 elements but shape \[2, 2\] needs 4/);
  });

  it('a script that creates a device, runs a kernel and disposes exits by itself quickly', () => {
    const code = `
      import { createDevice, Tensor, add } from './engine/index.ts';
      const d = await createDevice();
      const a = Tensor.from(d, [1, 2, 3]);
      console.log('sum', Array.from(await add(a, a).data()).join(','));
      d.destroy();
      globalThis.__t = performance.now();
      process.on('exit', () => console.log('exit-after-destroy-ms', (performance.now() - globalThis.__t).toFixed(0)));
    `;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: process.cwd(), encoding: 'utf8', timeout: 30_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('sum 2,4,6');
    const ms = Number(/exit-after-destroy-ms (\d+)/.exec(r.stdout)?.[1]);
    expect(ms).toBeLessThan(1000);
  });

  it('a destroyed device gives a clear error', async () => {
    const d = await E.createDevice();
    const a = E.Tensor.from(d, [1, 2]);
    d.destroy();
    expect(() => E.add(a, a)).toThrow(/device destroyed/);
  });
});
