// engine/profile.ts: the rows account for every dispatch of the step (their calls sum to the
// queue's own dispatch counter), timestamps and shares are sane, counters see the readback,
// the upload and the pool traffic, and the observer is detached afterwards.
import { describe, it, expect } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import * as E from '../../engine/index.ts';
import { profileSteps, formatProfile } from '../../engine/profile.ts';

describe('profileSteps', () => {
  it('accounts for every dispatch of the step', async () => {
    const d = await testDevice();
    const step = async () => {
      const a = E.Tensor.from(d, Array.from({ length: 37 * 19 }, (_, i) => Math.sin(i)), [37, 19]);
      const b = E.Tensor.from(d, Array.from({ length: 19 * 23 }, (_, i) => Math.cos(i)), [19, 23]);
      const y = E.matmul(a, b);
      const z = E.sum(E.mul(E.add(y, 1), y));
      const v = await z.item();
      expect(Number.isFinite(v)).toBe(true);
      for (const t of [a, b, y, z]) t.dispose();
    };
    const d0 = d.queue.dispatches;
    const p = await profileSteps(d, step, { warmup: 1, steps: 3 });
    const measured = d.queue.dispatches - d0;
    const calls = p.rows.reduce((s, r) => s + r.calls, 0);
    expect(calls).toBe(p.totals.dispatches);
    expect(p.totals.dispatches).toBeGreaterThanOrEqual(4 * 3);
    // The warm-up step's dispatches are not in the totals.
    expect(measured).toBeGreaterThan(p.totals.dispatches);
    expect(p.perStep.dispatches).toBe(p.totals.dispatches / 3);
    expect(p.perStep.readbacks).toBe(1);
    expect(p.perStep.uploads).toBeGreaterThanOrEqual(2);
    expect(p.perStep.poolAcquires).toBeGreaterThanOrEqual(4);
    expect(p.steps).toBe(3);
    expect(p.wallMsPerStep).toBeGreaterThan(0);
    expect(d.queue.observer).toBeNull();
    if (d.features.includes('timestamp-query')) {
      expect(p.timing).toBe('gpu-timestamps');
      expect(p.untimed).toBe(0);
      for (const r of p.rows) {
        expect(r.msPerStep).not.toBeNull();
        expect(r.msPerStep!).toBeGreaterThanOrEqual(0);
        expect(r.share!).toBeGreaterThanOrEqual(0);
        expect(r.share!).toBeLessThanOrEqual(1);
      }
      const shares = p.rows.reduce((s, r) => s + r.share!, 0);
      if (p.gpuMsPerStep! > 0) expect(shares).toBeCloseTo(1, 6);
      for (let i = 1; i < p.rows.length; i++) expect(p.rows[i - 1]!.msPerStep!).toBeGreaterThanOrEqual(p.rows[i]!.msPerStep!);
    } else {
      expect(p.timing).toBe('none');
    }
    const text = formatProfile(p);
    expect(text).toContain('dispatches');
    expect(text.split('\n').length).toBeGreaterThanOrEqual(p.rows.length + 4);
  });

  it('counts without timing when asked, and rejects bad options', async () => {
    const d = await testDevice();
    const p = await profileSteps(d, () => E.add(E.Tensor.from(d, [1, 2, 3]), 2).dispose(), { warmup: 0, steps: 2, timing: 'none' });
    expect(p.timing).toBe('none');
    expect(p.rows.every((r) => r.msPerStep === null && r.gflops === null)).toBe(true);
    expect(p.rows.reduce((s, r) => s + r.calls, 0)).toBe(p.totals.dispatches);
    await expect(profileSteps(d, () => undefined, { steps: 0 })).rejects.toThrow(/steps must be an integer >= 1, got 0/);
  });
});
