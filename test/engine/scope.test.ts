// The tape switch and the scope stack are per async context: noGrad around an async
// function and concurrent scopeAsync calls must not affect other work running meanwhile.
import { describe, it, expect } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import * as E from '../../engine/index.ts';

const tick = () => new Promise<void>((r) => setTimeout(r, 5));

describe('autograd enabled flag per async context', () => {
  it('an async noGrad does not switch the tape off for concurrent work', async () => {
    const d = await testDevice();
    const x = E.Tensor.from(d, [1, 2, 3], [3]);
    x.requiresGrad = true;
    let insideOff: boolean | null = null;
    let insideRecorded: boolean | null = null;
    const a = E.noGrad(async () => {
      await tick();
      insideOff = !E.isGradEnabled();
      await tick();
      const y = E.mul(x, x);
      insideRecorded = y.requiresGrad;
      y.dispose();
    });
    // While a is suspended inside noGrad, this context still records.
    await tick();
    expect(E.isGradEnabled()).toBe(true);
    const z = E.mul(x, x);
    expect(z.requiresGrad).toBe(true);
    const [g] = E.grad(E.sum(z), [x]);
    expect(Array.from(await g!.f32())).toEqual([2, 4, 6]);
    await a;
    expect(insideOff).toBe(true);
    expect(insideRecorded).toBe(false);
    expect(E.isGradEnabled()).toBe(true);
  });

  it('nested and sync noGrad restore the flag, also on throw', async () => {
    expect(E.noGrad(() => E.isGradEnabled())).toBe(false);
    expect(() => E.noGrad(() => {
      throw new Error('boom');
    })).toThrow('boom');
    expect(E.isGradEnabled()).toBe(true);
    await E.noGrad(async () => {
      await tick();
      expect(E.noGrad(() => E.isGradEnabled())).toBe(false);
      expect(E.isGradEnabled()).toBe(false);
    });
    expect(E.isGradEnabled()).toBe(true);
  });
});

describe('scopes per async context', () => {
  it('two interleaved scopeAsync calls each free only their own tensors', async () => {
    const d = await testDevice();
    const made: Record<string, E.Tensor[]> = { a: [], b: [] };
    const run = (name: 'a' | 'b', delayFirst: boolean) =>
      E.scopeAsync(async () => {
        if (delayFirst) await tick();
        const t1 = E.Tensor.from(d, [1, 2], [2]);
        made[name].push(t1);
        await tick();
        const t2 = E.add(t1, 1);
        made[name].push(t2);
        await tick();
        return E.mul(t2, 2);
      });
    const outer = await E.scopeAsync(async () => {
      const pa = run('a', false);
      const pb = run('b', true);
      const ra = await pa;
      // b is still running: none of its tensors may have been freed by a's close.
      expect(made.b.every((t) => !t.isDisposed)).toBe(true);
      expect(made.a.every((t) => t.isDisposed)).toBe(true);
      const rb = await pb;
      expect(made.b.every((t) => t.isDisposed)).toBe(true);
      expect(Array.from(await ra.f32())).toEqual([4, 6]);
      expect(Array.from(await rb.f32())).toEqual([4, 6]);
      return ra;
    });
    // The returned tensor survives both scopes; b's result was freed with the outer scope.
    expect(outer.isDisposed).toBe(false);
    outer.dispose();
  });

  it('a sync scope inside scopeAsync and keep() behave as before', async () => {
    const d = await testDevice();
    let inner: E.Tensor | null = null;
    let kept: E.Tensor | null = null;
    const r = await E.scopeAsync(async () => {
      await tick();
      const v = E.scope(() => {
        inner = E.Tensor.from(d, [1], [1]);
        kept = E.keep(E.Tensor.from(d, [2], [1]));
        return E.Tensor.from(d, [3], [1]);
      });
      return v;
    });
    expect(inner!.isDisposed).toBe(true);
    expect(kept!.isDisposed).toBe(false);
    expect(Array.from(await r.f32())).toEqual([3]);
    kept!.dispose();
    r.dispose();
  });
});
