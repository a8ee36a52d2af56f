// Memory: live buffers and bytes stay flat over hundreds of fast-AT steps; the buffer
// pool keeps at most its cap in free lists, reuses buffers and returns memory on trim();
// allocations above the device's largest buffer or above a memory limit fail at once
// with an error naming the allocation (no hang, no raw Dawn error).
import { describe, expect, it } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import { createDevice, Tensor, scope, add, mul, sum, type Device } from '../../engine/index.ts';
import { Sequential, Conv2d, Flatten, Linear } from '../../nn/layers.ts';
import { Activation } from '../../nn/activation.ts';
import { SGD } from '../../nn/optim.ts';
import { constantLr } from '../../nn/schedule.ts';
import type { ImageSet } from '../../nn/data/loader.ts';
import { train } from '../../adversarial/trainer.ts';
import { FastAt } from '../../adversarial/train/fast_at.ts';

function tinyData(n: number): ImageSet {
  const images = Float32Array.from({ length: n * 64 }, (_, i) => (i % 17) / 17);
  return { images, labels: Int32Array.from({ length: n }, (_, i) => i % 10), n, shape: [1, 8, 8] };
}

function tinyModel(d: Device): Sequential {
  return new Sequential(new Conv2d(d, 1, 4, 3, { seed: 1 }), new Activation(d, 'softplus'), new Flatten(), new Linear(d, 4 * 6 * 6, 10, { seed: 2 }));
}

describe('memory stays flat', () => {
  it('300 FastAt steps (with CO checks and momentum) leave live buffers and bytes unchanged', async () => {
    const d = await testDevice();
    const model = tinyModel(d);
    const opt = new SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
    const loop = new FastAt({ eps: 0.1, seed: 1, co: { every: 25, pgdSteps: 2, keepBest: false } });
    const ctx = { device: d, model, opt, schedule: constantLr(0.01) };
    const data = tinyData(40); // 5 batches of 8 per epoch
    // Warm-up: optimizer slots, pipelines, pool size classes.
    await train(loop, ctx, data, { epochs: 1, batchSize: 8, seed: 0, hooks: loop.hooks() });
    await d.sync();
    const before = d.stats();
    const t0 = performance.now();
    const res = await train(loop, ctx, data, { epochs: 61, batchSize: 8, seed: 0, logEvery: 50, hooks: loop.hooks(), startStep: 5, iteratorState: { seed: 0, epoch: 1, position: 0, n: 40, batchSize: 8, shuffle: true, dropLast: false } });
    await d.sync();
    const after = d.stats();
    const ms = performance.now() - t0;
    console.log(`memory: ${res.step - 5} FastAt steps in ${(ms / 1000).toFixed(1)} s; live ${before.liveBuffers} buffers / ${before.liveBytes} B before, ${after.liveBuffers} / ${after.liveBytes} B after; pooled ${after.pooledBuffers} / ${after.pooledBytes} B`);
    expect(res.step - 5).toBe(300);
    expect(res.epochs.every((e) => Number.isFinite(e.trainLoss))).toBe(true);
    expect(after.liveBuffers).toBe(before.liveBuffers);
    expect(after.liveBytes).toBe(before.liveBytes);
    expect(after.pooledBytes).toBeLessThanOrEqual(before.pooledBytes + 64 * 1024);
    loop.dispose();
    opt.dispose();
    model.dispose();
  });
});

describe('buffer pool', () => {
  it('keeps at most poolCapBytes in its free lists, reuses buffers, and trim() returns memory', async () => {
    const d = await createDevice({ poolCapBytes: 64 * 1024 });
    try {
      const ts = Array.from({ length: 10 }, () => Tensor.empty(d, [4096])); // 16 KiB each
      expect(d.stats()).toMatchObject({ liveBuffers: 10, liveBytes: 10 * 16384, pooledBuffers: 0 });
      const created = d.pool.createdBytes;
      for (const t of ts) t.dispose();
      expect(d.stats()).toMatchObject({ liveBuffers: 0, liveBytes: 0, pooledBuffers: 4, pooledBytes: 65536 });
      // Reuse: same size class comes from the free list, nothing new from the driver.
      const again = Array.from({ length: 4 }, () => Tensor.empty(d, [4000]));
      expect(d.pool.createdBytes).toBe(created);
      expect(d.stats().pooledBuffers).toBe(0);
      for (const t of again) t.dispose();
      d.pool.trim();
      expect(d.stats()).toMatchObject({ liveBuffers: 0, pooledBuffers: 0, pooledBytes: 0 });
      // The device still works after a trim.
      const x = Tensor.from(d, [1, 2, 3]);
      expect(Array.from(await scope(() => mul(add(x, x), x)).f32())).toEqual([2, 8, 18]);
    } finally {
      d.destroy();
    }
  });

  it('an allocation above the largest storage buffer fails at once, naming it', async () => {
    const d = await testDevice();
    const max = Math.min(d.limits.maxBufferSize!, d.limits.maxStorageBufferBindingSize!);
    const n = max / 4 + 1024;
    const t0 = performance.now();
    expect(() => Tensor.empty(d, [n])).toThrow(new RegExp(`cannot allocate tensor \\[${n}\\]: ${n * 4} bytes exceeds the device's largest storage buffer \\(${max} bytes`));
    expect(() => Tensor.empty(d, [2 ** 20, 2 ** 20], 'f32', 'activations of conv1')).toThrow(/cannot allocate activations of conv1: 4398046511104 bytes exceeds/);
    expect(performance.now() - t0).toBeLessThan(1000);
    // Nothing leaked and the device is still usable.
    const x = Tensor.from(d, [3]);
    expect(await sum(x).item()).toBe(3);
    x.dispose();
  });

  it('with memoryLimitBytes, running out gives a clear error naming the allocation; pooled memory is trimmed first', async () => {
    const d = await createDevice({ memoryLimitBytes: 1 << 20 }); // 1 MiB
    try {
      const a = Tensor.empty(d, [128 * 1024], 'f32', 'weights'); // 512 KiB
      const b = Tensor.empty(d, [64 * 1024], 'f32', 'grads'); // 256 KiB
      b.dispose(); // pooled
      const c = Tensor.empty(d, [96 * 1024], 'f32', 'acts'); // 384 KiB: needs the pooled 256 KiB trimmed
      expect(d.stats()).toMatchObject({ liveBytes: 512 * 1024 + 384 * 1024, pooledBytes: 0 });
      expect(() => Tensor.empty(d, [64 * 1024], 'f32', 'logits of batch 7')).toThrow(
        /out of device memory allocating logits of batch 7: 262144 bytes \(size class 262144\) with 917504 bytes in 2 live buffers exceeds the memory limit of 1048576 bytes \(memoryLimitBytes\)/,
      );
      // Freeing memory makes room again.
      c.dispose();
      const e = Tensor.from(d, new Float32Array(64 * 1024).fill(2));
      expect(await sum(e).item()).toBe(131072);
      for (const t of [a, e]) t.dispose();
    } finally {
      d.destroy();
    }
    await expect(createDevice({ memoryLimitBytes: NaN })).rejects.toThrow(/createDevice: memoryLimitBytes must be a number of bytes >= 0, got NaN/);
  });

  it('an over-limit allocation inside a training step rejects train() promptly', async () => {
    const d = await createDevice({ memoryLimitBytes: 200 * 1024 });
    try {
      const model = tinyModel(d);
      const opt = new SGD(model.parameters(), { lr: 0.01 });
      const ctx = { device: d, model, opt, schedule: constantLr(0.01) };
      const t0 = performance.now();
      // A batch of 512 8x8 images needs ~600 KiB of activations: over the 200 KiB limit.
      await expect(train(new FastAt({ eps: 0.1 }), ctx, tinyData(512), { epochs: 1, batchSize: 512, seed: 0 })).rejects.toThrow(/out of device memory allocating .* exceeds the memory limit of 204800 bytes/);
      expect(performance.now() - t0).toBeLessThan(5000);
    } finally {
      d.destroy();
    }
  });
});
