// GPU waits without busy-waiting (engine/gpu_wait.ts): setImmediate is patched only while
// a wait of ours is pending, JavaScript callers keep immediate semantics, and results are
// the same as with dawn.node's own ticks.
import { describe, expect, it } from 'vitest';
import { createDevice, gpuWait, Tensor, matmul } from '../../engine/index.ts';

describe('gpuWait', () => {
  it('restores setImmediate after the wait and leaves JavaScript callers immediate', async () => {
    const orig = globalThis.setImmediate;
    const d = await createDevice();
    try {
      const n = 256;
      const a = Tensor.from(d, Float32Array.from({ length: n * n }, (_, i) => (i % 13) / 13), [n, n]);
      const y = matmul(a, a);
      const order: string[] = [];
      const pending = y.data();
      expect(globalThis.setImmediate).not.toBe(orig); // patched while our wait is pending
      // A JavaScript caller still gets a real Immediate that runs before a 20 ms timer.
      let handle: unknown;
      const js = new Promise<void>((res) => (handle = setImmediate(() => (order.push('immediate'), res()))));
      expect((handle as object).constructor.name).toBe('Immediate');
      const timer = new Promise<void>((res) => setTimeout(() => (order.push('timer'), res()), 20));
      const data = await pending;
      await Promise.all([js, timer]);
      expect(order).toEqual(['immediate', 'timer']);
      expect(globalThis.setImmediate).toBe(orig);
      // Same values as a device with dawn.node's own ticks (independent float64 check of one entry).
      let want = 0;
      for (let k = 0; k < n; k++) want += ((k % 13) / 13) * (((k * n) % 13) / 13);
      expect(Math.abs(data[0]! - want)).toBeLessThan(1e-3 * Math.abs(want) + 1e-5);
    } finally {
      d.destroy();
    }
  });

  it('spin mode gives the same results and leaves setImmediate alone', async () => {
    const orig = globalThis.setImmediate;
    const d = await createDevice({ gpuWait: 'spin' });
    const t = await createDevice();
    try {
      const x = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i));
      const a = await matmul(Tensor.from(d, x, [10, 100]), Tensor.from(d, x, [100, 10])).data();
      const b = await matmul(Tensor.from(t, x, [10, 100]), Tensor.from(t, x, [100, 10])).data();
      expect(Array.from(a)).toEqual(Array.from(b));
      expect(globalThis.setImmediate).toBe(orig);
    } finally {
      d.destroy();
      t.destroy();
    }
  });

  it('nested and concurrent waits restore once all are done, also on rejection', async () => {
    const orig = globalThis.setImmediate;
    const p1 = gpuWait(new Promise((r) => setTimeout(r, 10)));
    const p2 = gpuWait(Promise.reject(new Error('boom')));
    expect(globalThis.setImmediate).not.toBe(orig);
    await expect(p2).rejects.toThrow('boom');
    expect(globalThis.setImmediate).not.toBe(orig);
    await p1;
    expect(globalThis.setImmediate).toBe(orig);
  });

  it('createDevice rejects an unknown wait mode, naming it', async () => {
    await expect(createDevice({ gpuWait: 'busy' as 'spin' })).rejects.toThrow(/gpuWait must be 'timer' or 'spin', got busy/);
  });
});
