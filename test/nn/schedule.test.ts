// Tests for lr schedules against hand-computed values, and makeSchedule validation.
import { describe, expect, it } from 'vitest';
import {
  constantLr,
  cosineLr,
  makeSchedule,
  multiStepLr,
  oneCycleLr,
  piecewiseLinearLr,
  piecewiseLr,
  withWarmup,
  type ScheduleConfig,
} from '../../nn/schedule.ts';

const close = (a: number, b: number) => expect(a).toBeCloseTo(b, 12);

describe('schedules', () => {
  it('constant', () => {
    const s = constantLr(0.1);
    expect([0, 5, 1e6].map((t) => s.lr(t))).toEqual([0.1, 0.1, 0.1]);
    expect(s.describe()).toBe('constant(lr=0.1)');
  });

  it('multistep: lr * gamma^(milestones passed), decay applies at the milestone', () => {
    const s = multiStepLr(0.1, [100, 150], 0.1);
    close(s.lr(0), 0.1);
    close(s.lr(99.9), 0.1);
    close(s.lr(100), 0.01);
    close(s.lr(149), 0.01);
    close(s.lr(150), 0.001);
    close(s.lr(1000), 0.001);
  });

  it('piecewise with explicit values', () => {
    const s = piecewiseLr([2, 5], [1, 0.5, 0.2]);
    expect([0, 1.99, 2, 4, 5, 9].map((t) => s.lr(t))).toEqual([1, 1, 0.5, 0.5, 0.2, 0.2]);
  });

  it('cosine: lr at 0, mean at half, final at the end and after', () => {
    const s = cosineLr(0.2, 100, 0.02);
    close(s.lr(0), 0.2);
    close(s.lr(50), 0.11); // 0.02 + 0.18 * (1 + cos(pi/2)) / 2
    close(s.lr(25), 0.02 + 0.18 * (1 + Math.SQRT1_2) / 2);
    close(s.lr(100), 0.02);
    close(s.lr(130), 0.02);
  });

  it('one-cycle (Wong et al.): 0 -> max at peakAt -> 0 at total, linear', () => {
    // Fast-AT CIFAR: 15 epochs, peak 0.2 at epoch 7.5 (fractional epochs).
    const s = oneCycleLr(0.2, 7.5, 15);
    close(s.lr(0), 0);
    close(s.lr(3.75), 0.1);
    close(s.lr(7.5), 0.2);
    close(s.lr(9), 0.2 * (15 - 9) / 7.5);
    close(s.lr(15), 0);
    close(s.lr(20), 0);
  });

  it('piecewise linear through knots, clamped outside', () => {
    const s = piecewiseLinearLr([10, 20, 40], [1, 3, 2]);
    close(s.lr(0), 1);
    close(s.lr(15), 2);
    close(s.lr(30), 2.5);
    close(s.lr(50), 2);
  });

  it('warm-up multiplies the inner schedule by a linear ramp', () => {
    const s = withWarmup(constantLr(0.4), 10, 0.25);
    close(s.lr(0), 0.1);
    close(s.lr(5), 0.4 * (0.25 + 0.75 * 0.5));
    close(s.lr(10), 0.4);
    close(s.lr(11), 0.4);
  });

  it('rejects negative or non-finite steps', () => {
    expect(() => cosineLr(0.1, 10).lr(-1)).toThrow(/cosine schedule: step -1/);
    expect(() => constantLr(0.1).lr(NaN)).toThrow(/step NaN/);
  });
});

describe('makeSchedule', () => {
  it('builds each kind from JSON config and matches the factories', () => {
    const cfgs: [ScheduleConfig, number, number][] = [
      [{ kind: 'constant', lr: 0.3 }, 7, 0.3],
      [{ kind: 'piecewise', lr: 1, milestones: [3], gamma: 0.5 }, 3, 0.5],
      [{ kind: 'piecewise', milestones: [3], values: [1, 0.25] }, 4, 0.25],
      [{ kind: 'cosine', lr: 1, total: 10 }, 5, 0.5],
      [{ kind: 'cyclic', max: 0.2, peakAt: 2, total: 6 }, 4, 0.1],
      [{ kind: 'one_cycle', max: 0.2, peakAt: 2, total: 6, start: 0.1 }, 1, 0.15],
      [{ kind: 'linear', knots: [0, 10], values: [0, 1] }, 2.5, 0.25],
      [{ kind: 'constant', lr: 1, warmup: { steps: 4 } }, 1, 0.25],
    ];
    for (const [cfg, step, want] of cfgs) {
      const s = makeSchedule(JSON.parse(JSON.stringify(cfg)));
      close(s.lr(step), want);
      expect(typeof s.describe()).toBe('string');
    }
  });

  it('validates with clear messages', () => {
    const bad = (c: unknown) => () => makeSchedule(c as ScheduleConfig);
    expect(bad({ kind: 'exp', lr: 1 })).toThrow(/kind "exp"; expected one of constant, piecewise/);
    expect(bad({ kind: 'cosine', lr: 1 })).toThrow(/kind 'cosine' needs 'total'/);
    expect(bad({ kind: 'cosine', lr: 1, total: 10, finl: 0 })).toThrow(/unknown key 'finl' for kind 'cosine'/);
    expect(bad({ kind: 'constant', lr: '0.1' })).toThrow(/'lr' = "0.1"; expected a finite number/);
    expect(bad({ kind: 'constant', lr: -1 })).toThrow(/lr = -1/);
    expect(bad({ kind: 'piecewise', milestones: [5, 3], values: [1, 2, 3] })).toThrow(/milestones = \[5, 3\]; expected strictly increasing/);
    expect(bad({ kind: 'piecewise', milestones: [5], values: [1] })).toThrow(/values has 1 entries; expected milestones.length \+ 1 = 2/);
    expect(bad({ kind: 'piecewise', lr: 1, gamma: 0.1, milestones: [5], values: [1, 2] })).toThrow(/either 'values' or 'lr' \+ 'gamma'/);
    expect(bad({ kind: 'one_cycle', max: 0.2, peakAt: 8, total: 6 })).toThrow(/peakAt = 8; expected 0 < peakAt < total \(6\)/);
    expect(bad({ kind: 'constant', lr: 1, warmup: { steps: 0 } })).toThrow(/warmup: steps = 0/);
    expect(bad({ kind: 'constant', lr: 1, warmup: { step: 3 } })).toThrow(/unknown warmup key 'step'/);
    expect(bad(null)).toThrow(/config null; expected an object/);
  });
});
