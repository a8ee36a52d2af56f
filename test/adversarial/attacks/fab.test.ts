// FAB-T on a multiclass linear model z = W x + b with the box far away, where the minimal
// distance to a misclassification is known in closed form:
//   L-inf: d = min_{t != y} (z_y - z_t) / ||w_y - w_t||_1,   L2: the same with ||.||_2.
// minimumNorm() must return misclassified points (checked in float64 on the host) at a
// distance within 1% above d and never below it; generate() with eps = 1.02 d must succeed
// on every example and with eps = 0.98 d on none. The batch is built so that every example
// has the same d (each x is pulled towards its closest boundary point, which keeps that
// boundary the closest), so one eps serves the whole batch. Then a small CNN sanity test
// and the option checks.
import { describe, expect, it } from 'vitest';
import { testDevice } from '../../helpers/device.ts';
import { randArray } from '../../helpers/compare.ts';
import { Tensor, argmax, noGrad, type Device } from '../../../engine/index.ts';
import { Linear } from '../../../nn/layers.ts';
import { SmallCnn } from '../../../nn/models/small_cnn.ts';
import { FabTargeted, makeAttack } from '../../../adversarial/attacks/index.ts';

const N = 6, D = 20, C = 10;
const BOUNDS: [number, number] = [-100, 100];
type Norm = 'linf' | 'l2';

/** The dual norm of the weight differences: ||.||_1 for L-inf distances, ||.||_2 for L2. */
const dual = (v: number[], norm: Norm) => (norm === 'linf' ? v.reduce((s, x) => s + Math.abs(x), 0) : Math.sqrt(v.reduce((s, x) => s + x * x, 0)));
const dist = (a: ArrayLike<number>, b: ArrayLike<number>, norm: Norm) => {
  let m = 0, s = 0;
  for (let i = 0; i < a.length; i++) (m = Math.max(m, Math.abs(a[i]! - b[i]!))), (s += (a[i]! - b[i]!) ** 2);
  return norm === 'linf' ? m : Math.sqrt(s);
};

interface Lin {
  W: Float64Array;
  b: Float64Array;
}
const logits = (m: Lin, x: ArrayLike<number>) => Array.from({ length: C }, (_, c) => m.b[c]! + Array.from(x, (v, k) => m.W[c * D + k]! * v).reduce((p, q) => p + q, 0));
const argmax64 = (z: number[]) => z.reduce((bi, v, i) => (v > z[bi]! ? i : bi), 0);

/** Label, closed-form distance and closest boundary point of one example (float64). */
function closest(m: Lin, x: number[], norm: Norm): { y: number; d: number; xs: number[] } {
  const z = logits(m, x);
  const y = argmax64(z);
  let best = { d: Infinity, t: -1 };
  for (let t = 0; t < C; t++) {
    if (t === y) continue;
    const dw = Array.from({ length: D }, (_, k) => m.W[y * D + k]! - m.W[t * D + k]!);
    const d = (z[y]! - z[t]!) / dual(dw, norm);
    if (d < best.d) best = { d, t };
  }
  const dw = Array.from({ length: D }, (_, k) => m.W[y * D + k]! - m.W[best.t * D + k]!);
  const n = dual(dw, norm);
  // Step of length d against the margin's gradient dw (sign(dw) for L-inf, dw/||dw|| for L2).
  const xs = x.map((v, k) => v - best.d * (norm === 'linf' ? Math.sign(dw[k]!) : dw[k]! / n));
  return { y, d: best.d, xs };
}

async function linearCase(dev: Device, norm: Norm) {
  const model = new Linear(dev, D, C, { seed: 3 });
  const m: Lin = { W: Float64Array.from(await model.weight.f32()), b: Float64Array.from(await model.bias!.f32()) };
  const raw = randArray(N * D, 9, -1, 1);
  const first = Array.from({ length: N }, (_, r) => closest(m, Array.from(raw.subarray(r * D, (r + 1) * D)), norm));
  const d0 = Math.min(...first.map((c) => c.d));
  // Pull each example towards its closest boundary point so that all share the distance d0.
  const xs = first.flatMap((c, r) => Array.from(raw.subarray(r * D, (r + 1) * D), (v, k) => Math.fround(c.xs[k]! + (v - c.xs[k]!) * (d0 / c.d))));
  const cases = Array.from({ length: N }, (_, r) => closest(m, xs.slice(r * D, (r + 1) * D), norm));
  const y = Int32Array.from(cases, (c) => c.y);
  const d = cases.map((c) => c.d);
  return { model, m, xs, y, d, X: Tensor.from(dev, xs, [N, D]), Y: Tensor.from(dev, y, [N], 'i32') };
}

describe('FAB-T on a linear model (closed-form minimal distance)', () => {
  for (const norm of ['linf', 'l2'] as const) {
    it(`${norm}: minimumNorm within 1% above the closed form, never below; generate succeeds at 1.02 d, never at 0.98 d`, async () => {
      const dev = await testDevice();
      const s = await linearCase(dev, norm);
      const dmin = Math.min(...s.d), dmax = Math.max(...s.d);
      // The construction gives every example the same distance up to float32 rounding of x.
      expect((dmax - dmin) / dmin).toBeLessThan(1e-5);
      const atk = new FabTargeted({ norm, eps: dmin, bounds: BOUNDS });
      const { xAdv, norm: found } = await atk.minimumNorm(s.model, s.X, s.Y);
      const xa = await xAdv.f32();
      for (let r = 0; r < N; r++) {
        const row = xa.subarray(r * D, (r + 1) * D);
        const what = `${norm} example ${r}: found ${found[r]}, closed form ${s.d[r]}`;
        expect(found[r]!, what).toBeGreaterThanOrEqual(s.d[r]! * (1 - 1e-5));
        expect(found[r]!, what).toBeLessThanOrEqual(s.d[r]! * 1.01);
        expect(argmax64(logits(s.m, row)), `${what}: misclassified in float64`).not.toBe(s.y[r]);
        expect(Math.abs(dist(row, s.xs.slice(r * D, (r + 1) * D), norm) - found[r]!), `${what}: reported norm`).toBeLessThanOrEqual(1e-5 * s.d[r]! + 1e-6);
      }
      for (const [f, want] of [[1.02, true], [0.98, false]] as const) {
        const g = new FabTargeted({ norm, eps: f * dmin, bounds: BOUNDS });
        const out = await g.generate(s.model, s.X, s.Y).f32();
        for (let r = 0; r < N; r++) {
          const row = out.subarray(r * D, (r + 1) * D);
          const x = s.xs.slice(r * D, (r + 1) * D);
          const fooled = argmax64(logits(s.m, row)) !== s.y[r];
          expect(fooled, `${norm} example ${r} at ${f} d`).toBe(want);
          expect(dist(row, x, norm), `${norm} example ${r} within eps`).toBeLessThanOrEqual(f * dmin * (1 + 1e-5));
          if (!want) expect(Array.from(row), `${norm} example ${r}: unchanged when not found`).toEqual(Array.from(Float32Array.from(x)));
        }
      }
    });
  }
});

describe('FAB-T with one target (targetRank, the AutoAttack runner\'s stages)', () => {
  it('linf: each rank finds a misclassified point between the overall closed form and 1.01 x its own target\'s distance; the minimum over ranks is the all-target result', async () => {
    const dev = await testDevice();
    const s = await linearCase(dev, 'linf');
    const dmin = Math.min(...s.d);
    const all = (await new FabTargeted({ norm: 'linf', eps: dmin, bounds: BOUNDS, nTargetClasses: 3 }).minimumNorm(s.model, s.X, s.Y)).norm;
    const best = new Array<number>(N).fill(Infinity);
    for (const rank of [2, 3, 4]) {
      const found = (await new FabTargeted({ norm: 'linf', eps: dmin, bounds: BOUNDS, targetRank: rank }).minimumNorm(s.model, s.X, s.Y)).norm;
      for (let r = 0; r < N; r++) {
        const x = s.xs.slice(r * D, (r + 1) * D);
        const z = logits(s.m, x);
        const t = z.map((v, c) => [v, c] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1])[rank - 1]![1];
        const dw = Array.from({ length: D }, (_, k) => s.m.W[s.y[r]! * D + k]! - s.m.W[t * D + k]!);
        const dt = (z[s.y[r]!]! - z[t]!) / dual(dw, 'linf'); // the distance to class t's boundary (float64)
        const what = `rank ${rank} example ${r}: found ${found[r]}, overall ${s.d[r]}, target ${dt}`;
        expect(found[r]!, what).toBeGreaterThanOrEqual(s.d[r]! * (1 - 1e-5));
        expect(found[r]!, what).toBeLessThanOrEqual(dt * 1.01);
        best[r] = Math.min(best[r]!, found[r]!);
      }
    }
    for (let r = 0; r < N; r++) expect(best[r], `example ${r}`).toBeCloseTo(all[r]!, 5);
    expect(() => new FabTargeted({ eps: 0.1, targetRank: 1 })).toThrow(/FAB-T: targetRank must be an integer >= 2 \(2 = the runner-up class\), got 1/);
    await expect(new FabTargeted({ eps: 0.1, bounds: BOUNDS, targetRank: 11 }).minimumNorm(s.model, s.X, s.Y)).rejects.toThrow(/FAB-T: targetRank 11 exceeds the number of classes 10/);
  });
});

describe('FAB-T on a small CNN (sanity)', () => {
  for (const [norm, eps] of [['linf', 0.15], ['l2', 1.5]] as const) {
    it(`${norm}: output in the box and within eps; misclassifies where it changed x; minimumNorm agrees`, async () => {
      const dev = await testDevice();
      const model = new SmallCnn(dev, { seed: 1 });
      model.eval();
      const n = 3, DD = 28 * 28;
      const x = Float32Array.from(randArray(n * DD, 21, -0.2, 1.2), (v) => Math.min(1, Math.max(0, v)));
      const X = Tensor.from(dev, x, [n, 1, 28, 28]);
      const pred = await noGrad(() => argmax(model.forward(X), -1)).data();
      // Example 0 gets a wrong label: already misclassified, so distance 0 and x returned as is.
      const lab = Int32Array.from(pred, (v, r) => (r === 0 ? (v + 1) % 10 : v));
      const Y = Tensor.from(dev, lab, [n], 'i32');
      const atk = new FabTargeted({ norm, eps, steps: 8, nTargetClasses: 2, restarts: 2, seed: 4 });
      const xa = atk.generate(model, X, Y);
      const v = await xa.f32();
      const p = await noGrad(() => argmax(model.forward(xa), -1)).data();
      const { xAdv, norm: found } = await atk.minimumNorm(model, X, Y);
      const va = await xAdv.f32();
      for (let r = 0; r < n; r++) {
        const row = v.subarray(r * DD, (r + 1) * DD), x0 = x.subarray(r * DD, (r + 1) * DD);
        for (const e of row) expect(e >= 0 && e <= 1).toBe(true);
        const dd = dist(row, x0, norm);
        expect(dd).toBeLessThanOrEqual(eps * (1 + 1e-5));
        if (dd > 0) expect(p[r], `example ${r} changed but not misclassified`).not.toBe(lab[r]);
        if (r > 0) expect(dd, `example ${r}: FAB-T found nothing within eps (the test would be vacuous)`).toBeGreaterThan(0);
        // The two calls draw different random starts, so each is checked on its own claims.
        if (Number.isFinite(found[r]!)) expect(Math.abs(dist(va.subarray(r * DD, (r + 1) * DD), x0, norm) - found[r]!)).toBeLessThanOrEqual(1e-5 * found[r]! + 1e-6);
      }
      const pa = await noGrad(() => argmax(model.forward(xAdv), -1)).data();
      expect(found[0]).toBe(0);
      expect(Array.from(v.subarray(0, DD))).toEqual(Array.from(x.subarray(0, DD)));
      for (let r = 0; r < n; r++) if (Number.isFinite(found[r]!)) expect(pa[r], `minimumNorm example ${r}`).not.toBe(lab[r]);
      for (const p of model.parameters()) expect(p.grad).toBeNull();
    });
  }
});

describe('FAB-T resources', () => {
  it('live GPU buffers stay flat across repeated generate and minimumNorm calls (linear model and CNN)', async () => {
    const dev = await testDevice();
    const s = await linearCase(dev, 'l2');
    const cnn = new SmallCnn(dev, { seed: 2 });
    const xc = Tensor.from(dev, Float32Array.from(randArray(2 * 784, 5, 0, 1)), [2, 1, 28, 28]);
    const yc = Tensor.from(dev, [3, 7], [2], 'i32');
    const atk = new FabTargeted({ norm: 'l2', eps: 1, steps: 3, nTargetClasses: 3, restarts: 2, bounds: BOUNDS });
    const atkC = new FabTargeted({ norm: 'linf', eps: 0.1, steps: 2, nTargetClasses: 2, restarts: 2 });
    const run = async () => {
      (await atk.perturb(s.model, s.X, s.Y)).dispose();
      (await atk.minimumNorm(s.model, s.X, s.Y)).xAdv.dispose();
      (await atkC.perturb(cnn, xc, yc)).dispose();
      (await atkC.minimumNorm(cnn, xc, yc)).xAdv.dispose();
      await dev.sync();
      return dev.stats();
    };
    const first = await run();
    for (let r = 0; r < 2; r++) {
      const st = await run();
      expect(st.liveBuffers).toBe(first.liveBuffers);
      expect(st.liveBytes).toBe(first.liveBytes);
    }
  });
});

describe('FAB-T options', () => {
  it('rejects bad options with clear errors and is built by makeAttack', () => {
    const mk = (o: object) => () => new FabTargeted({ eps: 0.1, ...o });
    expect(() => new FabTargeted({} as { eps: number })).toThrow(/FAB-T: eps must be a finite number >= 0, got undefined/);
    expect(mk({ norm: 'l1' })).toThrow(/FAB-T: norm must be 'linf' or 'l2', got "l1"/);
    expect(mk({ steps: 0 })).toThrow(/FAB-T: steps must be an integer >= 1, got 0/);
    expect(mk({ restarts: 1.5 })).toThrow(/FAB-T: restarts must be an integer >= 1, got 1.5/);
    expect(mk({ nTargetClasses: 0 })).toThrow(/FAB-T: nTargetClasses must be an integer >= 1, got 0/);
    expect(mk({ alphaMax: 2 })).toThrow(/FAB-T: alphaMax must be a number in \[0, 1\], got 2/);
    expect(mk({ eta: 0.5 })).toThrow(/FAB-T: eta must be >= 1/);
    expect(mk({ eta: NaN })).toThrow(/FAB-T: eta must be a finite number > 0, got NaN/);
    expect(mk({ beta: 0 })).toThrow(/FAB-T: beta must be a number in \(0, 1\], got 0/);
    expect(mk({ targeted: true })).toThrow(/FAB-T: 'targeted' is not an option/);
    expect(mk({ bounds: [1, 0] })).toThrow(/FAB-T: bounds must be finite numbers with lo < hi/);
    const a = makeAttack({ kind: 'fab', eps: 0.3, norm: 'l2' });
    expect(a).toBeInstanceOf(FabTargeted);
    expect(a.name).toBe('FAB-T-100x9(l2, eps=0.3)');
    expect((a as FabTargeted).alphaMax).toBe(0.1);
    expect((a as FabTargeted).eta).toBe(1.05);
    expect((a as FabTargeted).beta).toBe(0.9);
    expect(() => makeAttack({ kind: 'nope' } as never)).toThrow(/'apgd', 'fab' or 'square', got "nope"/);
  });
});
