// Philox-4x32-10 RNG: known answers, GPU vs an independent JS implementation bit for bit,
// stream layout (offsets, concatenation, 32-bit carries), statistics, RngState.
import { describe, it, expect } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import { expectClose } from '../helpers/compare.ts';
import { bernoulli, mulhilo, normal64, philox4x32, uniform01 } from '../reference/philox.ts';
import { RngState, bernoulliMask, randomNormal, randomUniform } from '../../engine/ops/random.ts';

function bitsEqual(got: Float32Array, want: Float32Array, what: string): void {
  expect(got.length, `${what}: length`).toBe(want.length);
  const g = new Uint32Array(got.buffer, got.byteOffset, got.length);
  const w = new Uint32Array(want.buffer, want.byteOffset, want.length);
  for (let i = 0; i < g.length; i++) {
    if (g[i] !== w[i]) throw new Error(`${what}: bits differ at index ${i}: got ${got[i]} (0x${g[i]!.toString(16)}), want ${want[i]} (0x${w[i]!.toString(16)})`);
  }
}

function moments(a: ArrayLike<number>): { mean: number; var: number; skew: number; kurt: number } {
  let m = 0;
  for (let i = 0; i < a.length; i++) m += a[i]!;
  m /= a.length;
  let m2 = 0, m3 = 0, m4 = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - m;
    m2 += d * d;
    m3 += d * d * d;
    m4 += d * d * d * d;
  }
  m2 /= a.length;
  m3 /= a.length;
  m4 /= a.length;
  return { mean: m, var: m2, skew: m3 / m2 ** 1.5, kurt: m4 / (m2 * m2) };
}

describe('Philox-4x32-10 reference (JS)', () => {
  it('matches the Random123 known-answer vectors', () => {
    expect(philox4x32([0, 0, 0, 0], [0, 0])).toEqual([0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]);
    expect(philox4x32([0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff])).toEqual([0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]);
    expect(philox4x32([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0])).toEqual([0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]);
  });
  it('mulhilo agrees with BigInt', () => {
    const vals = [0, 1, 0xffff, 0x10000, 0xffffffff, 0xd2511f53, 0xcd9e8d57, 0x80000000];
    let s = 12345;
    for (let i = 0; i < 200; i++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      vals.push(s);
    }
    for (const a of vals) {
      for (const b of vals.slice(0, 40)) {
        const p = BigInt(a) * BigInt(b);
        expect(mulhilo(a, b)).toEqual([Number(p >> 32n), Number(p & 0xffffffffn)]);
      }
    }
  });
});

describe('random tensors on the GPU', () => {
  it('uniforms match the JS generator bit for bit (1M values, several keys)', async () => {
    const d = await testDevice();
    const cases: [number, number, number[]][] = [
      [0, 0, [1000, 1000]],
      [42, 3, [17, 33, 65]],
      [2 ** 40 + 7, 1, [5]],
      // blocks crossing the 2^32 boundary of the low counter word (carry into word 1)
      [9, 4 * (2 ** 32 - 3) + 2, [101]],
      [Number.MAX_SAFE_INTEGER, 2 ** 50 + 1, [4099]],
    ];
    for (const [seed, offset, shape] of cases) {
      const n = shape.reduce((a, b) => a * b, 1);
      const y = randomUniform(d, shape, { seed, offset });
      expect(y.shape).toEqual(shape);
      bitsEqual(await y.f32(), uniform01(seed, offset, n), `uniform seed ${seed} offset ${offset}`);
      y.dispose();
    }
  });

  it('a draw is the slice [offset, offset + n) of the stream, whatever the shape', async () => {
    const d = await testDevice();
    const all = await randomUniform(d, [1003], { seed: 5, offset: 7 }).f32();
    const a = await randomUniform(d, [3, 2], { seed: 5, offset: 7 }).f32();
    const b = await randomUniform(d, [997], { seed: 5, offset: 13 }).f32();
    bitsEqual(a, all.slice(0, 6), 'head');
    bitsEqual(b, all.slice(6), 'tail');
  });

  it('same key repeats; other seeds and offsets differ', async () => {
    const d = await testDevice();
    const n = 4096;
    const a = await randomUniform(d, [n], { seed: 1 }).f32();
    const a2 = await randomUniform(d, [n], { seed: 1, offset: 0 }).f32();
    bitsEqual(a2, a, 'repeat');
    for (const other of [randomUniform(d, [n], { seed: 2 }), randomUniform(d, [n], { seed: 1, offset: 4 }), randomUniform(d, [n], { seed: 1 + 2 ** 32 })]) {
      const o = await other.f32();
      let same = 0;
      for (let i = 0; i < n; i++) if (o[i] === a[i]) same++;
      expect(same).toBeLessThan(5);
    }
  });

  it('uniform statistics and ranges', async () => {
    const d = await testDevice();
    const n = 1 << 20;
    const u = await randomUniform(d, [n], { seed: 123 }).f32();
    const m = moments(u);
    // sd of the mean: sqrt(1/12/n) = 2.8e-4; of the variance: ~8e-5
    expect(Math.abs(m.mean - 0.5)).toBeLessThan(1.5e-3);
    expect(Math.abs(m.var - 1 / 12)).toBeLessThan(5e-4);
    let mn = 1, mx = 0;
    const bins = new Array(16).fill(0);
    for (const v of u) {
      mn = Math.min(mn, v);
      mx = Math.max(mx, v);
      bins[Math.floor(v * 16)]++;
    }
    expect(mn).toBeGreaterThanOrEqual(0);
    expect(mx).toBeLessThan(1);
    let chi2 = 0;
    for (const c of bins) chi2 += (c - n / 16) ** 2 / (n / 16);
    expect(chi2).toBeLessThan(45); // 15 dof: p ~ 1e-4
    const r = await randomUniform(d, [100_000], { seed: 9, lo: -3, hi: 5 }).f32();
    const rm = moments(r);
    expect(Math.min(...r)).toBeGreaterThanOrEqual(-3);
    expect(Math.max(...r)).toBeLessThanOrEqual(5);
    expect(Math.abs(rm.mean - 1)).toBeLessThan(0.03);
    expect(Math.abs(rm.var - 64 / 12)).toBeLessThan(0.1);
    // lo + (hi - lo) u against float64 on the same uniforms
    expectClose(r, Array.from(uniform01(9, 0, 100_000), (v) => -3 + 8 * v), { atol: 1e-6, rtol: 0 }, 'uniform [-3, 5)');
  });

  it('normals: Box-Muller of the same words, moments of 1M samples, no NaN/Inf', async () => {
    const d = await testDevice();
    const n = 1 << 20;
    const z = await randomNormal(d, [n], { seed: 77, offset: 2 }).f32();
    // NOTE: log/cos/sin are implementation-defined in WGSL; |z| <= 5.8 so 1e-4 absolute is ample.
    expectClose(z.subarray(0, 50_001), normal64(77, 2, 50_001), { atol: 1e-4, rtol: 1e-4 }, 'normal vs float64 Box-Muller');
    let maxAbs = 0;
    for (const v of z) {
      if (!Number.isFinite(v)) throw new Error(`non-finite normal ${v}`);
      maxAbs = Math.max(maxAbs, Math.abs(v));
    }
    expect(maxAbs).toBeLessThan(5.8);
    const m = moments(z);
    expect(Math.abs(m.mean)).toBeLessThan(5e-3); // sd 1e-3
    expect(Math.abs(m.var - 1)).toBeLessThan(7e-3); // sd 1.4e-3
    expect(Math.abs(m.skew)).toBeLessThan(1.2e-2); // sd 2.4e-3
    expect(Math.abs(m.kurt - 3)).toBeLessThan(2.5e-2); // sd 4.9e-3
    let within1 = 0;
    for (const v of z) if (Math.abs(v) < 1) within1++;
    expect(Math.abs(within1 / n - 0.682689492)).toBeLessThan(2.5e-3); // sd 4.6e-4
    const s = await randomNormal(d, [100_003], { seed: 3, mean: 2, std: 0.5 }).f32();
    const sm = moments(s);
    expect(Math.abs(sm.mean - 2)).toBeLessThan(8e-3);
    expect(Math.abs(Math.sqrt(sm.var) - 0.5)).toBeLessThan(6e-3);
    expectClose(s.subarray(0, 1001), normal64(3, 0, 1001, 2, 0.5), { atol: 1e-4, rtol: 1e-4 }, 'normal(2, 0.5)');
  });

  it('bernoulli masks: bit-exact vs JS, rate, p = 0 and 1', async () => {
    const d = await testDevice();
    const n = 1 << 20;
    for (const p of [0.1, 0.5, 0.9]) {
      const m = await bernoulliMask(d, [n], p, { seed: 11, offset: 1 }).f32();
      bitsEqual(m.subarray(0, 65_537), bernoulli(11, 1, 65_537, p), `bernoulli p=${p}`);
      let ones = 0;
      for (const v of m) {
        if (v !== 0 && v !== 1) throw new Error(`mask value ${v}`);
        ones += v;
      }
      expect(Math.abs(ones / n - p)).toBeLessThan(5 * Math.sqrt((p * (1 - p)) / n));
    }
    expect(Array.from(await bernoulliMask(d, [1001], 0, { seed: 1 }).f32()).every((v) => v === 0)).toBe(true);
    expect(Array.from(await bernoulliMask(d, [1001], 1, { seed: 1 }).f32()).every((v) => v === 1)).toBe(true);
  });

  it('empty shapes and bad arguments', async () => {
    const d = await testDevice();
    expect(randomUniform(d, [0, 3], { seed: 1 }).size).toBe(0);
    expect(() => randomUniform(d, [3], { seed: -1 })).toThrow(/randomUniform: seed must be an integer in \[0, 2\^53\), got -1/);
    expect(() => randomUniform(d, [3], { seed: 1.5 })).toThrow(/seed must be an integer/);
    expect(() => randomUniform(d, [3], { seed: 1, offset: -4 })).toThrow(/offset must be an integer/);
    expect(() => randomUniform(d, [3], { seed: 1, lo: 2, hi: 1 })).toThrow(/lo \(2\) must be < hi \(1\)/);
    expect(() => randomNormal(d, [3], { seed: 1, std: -1 })).toThrow(/randomNormal: std must be >= 0, got -1/);
    expect(() => bernoulliMask(d, [3], 1.5, { seed: 1 })).toThrow(/bernoulliMask: p must be a probability in \[0, 1\], got 1.5/);
    expect(() => bernoulliMask(d, [3], NaN, { seed: 1 })).toThrow(/got NaN/);
    expect(() => randomUniform(d, [3, -1], { seed: 1 })).toThrow(/shape/);
  });
});

describe('RngState', () => {
  it('hands out disjoint, block-aligned ranges; saves and restores as JSON', async () => {
    const d = await testDevice();
    const st = new RngState(2024);
    const k1 = st.next(10);
    const k2 = st.next([2, 3]);
    const k3 = st.next(0);
    expect(k1).toEqual({ seed: 2024, offset: 0 });
    expect(k2).toEqual({ seed: 2024, offset: 12 });
    expect(k3.offset).toBe(20);
    const saved = JSON.stringify(st);
    expect(JSON.parse(saved)).toEqual({ seed: 2024, counter: 20 });
    const a = await randomUniform(d, [64], st.next(64)).f32();
    const b = await randomUniform(d, [64], st.next(64)).f32();
    expect(Array.from(a)).not.toEqual(Array.from(b));
    const restored = RngState.fromJSON(saved);
    bitsEqual(await randomUniform(d, [64], restored.next(64)).f32(), a, 'restored draw');
    bitsEqual(await randomUniform(d, [64], RngState.fromJSON(JSON.parse(saved)).next(64)).f32(), a, 'restored from object');
    expect(() => new RngState(-1)).toThrow(/RngState: seed must be an integer/);
    expect(() => st.next(-2)).toThrow(/nElements must be an integer >= 0, got -2/);
    expect(() => RngState.fromJSON('{"seed": 1, "counter": 0.5}')).toThrow(/counter must be an integer/);
    expect(() => new RngState(1, Number.MAX_SAFE_INTEGER - 2).next(8)).toThrow(/exhausted/);
  });
});
