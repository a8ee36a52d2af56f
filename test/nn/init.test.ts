// Weight initialisation (nn/init.ts) against its definitions: fan_in / fan_out of conv and
// dense shapes, the Kaiming and Xavier standard deviations (uniform: the bound sqrt(3) std
// is never exceeded; both: sample mean and variance of 20000 draws against the analytic
// ones), PyTorch's default a = sqrt(5) bound 1/sqrt(fan_in), determinism per seed, errors.
import { describe, expect, it } from 'vitest';
import { fans, initValues, type InitKind } from '../../nn/init.ts';

function moments(v: Float32Array): { mean: number; variance: number; maxAbs: number } {
  let s = 0;
  let m = 0;
  for (const x of v) {
    s += x;
    m = Math.max(m, Math.abs(x));
  }
  const mean = s / v.length;
  let q = 0;
  for (const x of v) q += (x - mean) ** 2;
  return { mean, variance: q / v.length, maxAbs: m };
}

describe('nn/init', () => {
  it('fans of conv [out, in, kh, kw] and dense [out, in] shapes', () => {
    expect(fans([32, 3, 5, 3])).toEqual({ fanIn: 45, fanOut: 480 });
    expect(fans([10, 9216])).toEqual({ fanIn: 9216, fanOut: 10 });
    expect(fans([7])).toEqual({ fanIn: 7, fanOut: 7 });
  });

  const shape = [200, 25, 2, 2]; // fanIn 100, fanOut 800, 20000 values
  const cases: [InitKind, { a?: number; gain?: number }, number][] = [
    ['kaiming_uniform', {}, Math.sqrt(2) / Math.sqrt(100)],
    ['kaiming_normal', {}, Math.sqrt(2) / Math.sqrt(100)],
    ['kaiming_uniform', { a: Math.sqrt(5) }, 1 / Math.sqrt(3) / Math.sqrt(100)],
    ['kaiming_normal', { a: 0.5, gain: 3 }, 3 / Math.sqrt(100)],
    ['xavier_uniform', {}, Math.sqrt(2 / 900)],
    ['xavier_normal', { gain: 2 }, 2 * Math.sqrt(2 / 900)],
  ];
  for (const [kind, opts, std] of cases) {
    it(`${kind} ${JSON.stringify(opts)}: std ${std.toPrecision(4)}`, () => {
      const v = initValues(kind, shape, 7, opts);
      expect(v.length).toBe(20000);
      const m = moments(v);
      expect(Math.abs(m.mean)).toBeLessThan((5 * std) / Math.sqrt(v.length));
      expect(Math.abs(m.variance / (std * std) - 1)).toBeLessThan(0.05);
      if (kind.endsWith('uniform')) {
        expect(m.maxAbs).toBeLessThanOrEqual(Math.sqrt(3) * std * (1 + 1e-6));
        expect(m.maxAbs).toBeGreaterThan(Math.sqrt(3) * std * 0.99);
      } else expect(m.maxAbs).toBeGreaterThan(3 * std); // a normal's tail, absent from a uniform of the same std
    });
  }

  it("PyTorch's default (kaiming_uniform, a = sqrt(5)) is bounded by 1/sqrt(fan_in)", () => {
    const v = initValues('kaiming_uniform', [64, 32, 3, 3], 1, { a: Math.sqrt(5) });
    expect(moments(v).maxAbs).toBeLessThanOrEqual(1 / Math.sqrt(288) + 1e-9);
  });

  it('the same seed gives the same values, another seed others; constants and errors', () => {
    expect(initValues('xavier_normal', [5, 6], 3)).toEqual(initValues('xavier_normal', [5, 6], 3));
    expect(initValues('xavier_normal', [5, 6], 3)).not.toEqual(initValues('xavier_normal', [5, 6], 4));
    expect(Array.from(initValues('ones', [2, 2], 0))).toEqual([1, 1, 1, 1]);
    expect(Array.from(initValues('zeros', [3], 0))).toEqual([0, 0, 0]);
    expect(() => initValues('he' as InitKind, [2, 2], 0)).toThrow(/init: unknown kind "he"; expected one of kaiming_uniform/);
  });
});
