// FAB's box-constrained projection onto a hyperplane (engine/ops/fab_projection.ts) against
// the float64 reference test/reference/fab_projection64.ts (breakpoint sorting, itself
// checked here by brute force on a fine grid in 2-D), for L-inf and L2: row lengths on and
// off the workgroup size, feasible rows near and far from the box's reach, infeasible rows
// (the box corner nearest the hyperplane), c = 0, w = 0, points on the box's faces, weights
// of scale 1e-20 and 1e20 and of mixed magnitudes, and bad arguments.
import { describe, expect, it } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import { randArray } from '../helpers/compare.ts';
import { fabProjection64, norm64, type Norm64 } from '../reference/fab_projection64.ts';
import { Tensor, fabProjection } from '../../engine/index.ts';

const NORMS: Norm64[] = ['linf', 'l2'];

describe('fabProjection float64 reference', () => {
  for (const norm of NORMS) {
    it(`${norm}: matches a brute-force grid search in 2-D (optimal norm, feasibility)`, () => {
      const lo = -1, hi = 2;
      for (let t = 0; t < 40; t++) {
        const [p0, p1, w0, w1, cc] = randArray(5, 100 + t, 0, 1);
        const p = [lo + (hi - lo) * p0!, lo + (hi - lo) * p1!];
        const w = [4 * w0! - 2, 4 * w1! - 2];
        const c = 6 * cc! - 3;
        const ref = fabProjection64(p, w, c, norm, lo, hi);
        // Grid over d0 in the box; d1 from the constraint (w0 d0 + w1 d1 = -c).
        let best = Infinity;
        const G = 200001;
        for (let k = 0; k < G; k++) {
          const d0 = lo - p[0]! + ((hi - lo) * k) / (G - 1);
          const d1 = (-c - w[0]! * d0) / w[1]!;
          if (p[1]! + d1 < lo || p[1]! + d1 > hi) continue;
          best = Math.min(best, norm64([d0, d1], norm));
        }
        expect(ref.feasible, `case ${t}`).toBe(Number.isFinite(best));
        if (!ref.feasible) continue;
        // The reference satisfies the constraint, stays in the box, and is optimal.
        expect(Math.abs(w[0]! * ref.d[0]! + w[1]! * ref.d[1]! + c)).toBeLessThan(1e-12);
        for (let i = 0; i < 2; i++) {
          expect(p[i]! + ref.d[i]!).toBeGreaterThanOrEqual(lo - 1e-12);
          expect(p[i]! + ref.d[i]!).toBeLessThanOrEqual(hi + 1e-12);
        }
        const grid = ((hi - lo) / (G - 1)) * (1 + Math.abs(w[0]! / w[1]!));
        expect(norm64(ref.d, norm)).toBeLessThanOrEqual(best + 1e-12);
        expect(best - norm64(ref.d, norm)).toBeLessThan(grid);
      }
    });
  }
});

interface Row {
  p: number[];
  w: number[];
  c: number;
  /** False near the box's full reach, where float32 sums move the answer (checked by backward error). */
  well: boolean;
}

/** The largest |w.d| reachable inside the box in the direction sign(r). */
function reach(p: number[], w: number[], r: number, lo: number, hi: number): number {
  let s = 0;
  for (let i = 0; i < p.length; i++) {
    const v = Math.sign(r) * w[i]!;
    s += v > 0 ? v * (hi - p[i]!) : -v * (p[i]! - lo);
  }
  return s;
}

/** Rows of length D: fractions of the reach (0.1% .. 99.9%, beyond it), both signs, and edge cases. */
function rows(D: number, seed: number, lo: number, hi: number): Row[] {
  const out: Row[] = [];
  const mk = (k: number, wScale: number, frac: number, sgn: number, opts: { edge?: boolean; mixed?: boolean } = {}): Row => {
    const p = Array.from(randArray(D, seed + 31 * k, lo, hi), (v) => Math.fround(v));
    if (opts.edge) for (let i = 0; i < D; i += 3) p[i] = i % 2 ? hi : lo;
    const w = Array.from(randArray(D, seed + 31 * k + 7, -1, 1), (v, i) => Math.fround(v * wScale * (opts.mixed ? 10 ** ((i % 10) - 6) : 1)));
    const c = Math.fround(-sgn * frac * reach(p, w, sgn, lo, hi));
    return { p, w, c, well: frac <= 0.9 || frac > 1 };
  };
  let k = 0;
  for (const frac of [0.001, 0.3, 0.9, 0.999, 1.5]) for (const sgn of [1, -1]) out.push(mk(k++, 1, frac, sgn));
  out.push(mk(k++, 1e-20, 0.5, 1), mk(k++, 1e20, 0.5, -1), mk(k++, 1, 0.7, 1, { mixed: true }), mk(k++, 1, 0.6, -1, { edge: true }), mk(k++, 1, 2, 1, { edge: true }));
  const z = mk(k++, 1, 0.5, 1);
  out.push({ ...z, c: 0 }, { ...z, w: z.w.map(() => 0), c: 1 });
  return out;
}

describe('fabProjection on the GPU', () => {
  for (const norm of NORMS) {
    for (const D of [1, 5, 127, 128, 129, 300, 1000]) {
      it(`${norm} D=${D}: matches float64 (steps, constraint, box, infeasible corners, edge rows)`, async () => {
        const dev = await testDevice();
        const [lo, hi] = [-0.5, 1.5];
        const rs = rows(D, 1000 + D, lo, hi);
        const M = rs.length;
        const P = Tensor.from(dev, rs.flatMap((r) => r.p), [M, D]);
        const W = Tensor.from(dev, rs.flatMap((r) => r.w), [M, D]);
        const C = Tensor.from(dev, rs.map((r) => r.c), [M]);
        const got = await fabProjection(P, W, C, { norm, bounds: [lo, hi] }).f32();
        for (let j = 0; j < M; j++) {
          const { p, w, c } = rs[j]!;
          const ref = fabProjection64(p, w, c, norm, lo, hi);
          const d = Array.from(got.subarray(j * D, (j + 1) * D));
          const what = `row ${j}`;
          let wd = 0, sw = 0;
          for (let i = 0; i < D; i++) (wd += w[i]! * d[i]!), (sw += Math.abs(w[i]! * d[i]!));
          // NOTE: tolerance: lambda is exact to an ulp; the float32 sums over D coordinates
          // are good to about 1e-5 relative for D <= 1000, and 2e-5 of the box's width bounds
          // the resulting step error on well-conditioned rows. Near the box's full reach the
          // problem is ill-conditioned (the few unsaturated coordinates carry a sum error of
          // the whole row), so there the check is by backward error: d must be the exact
          // projection for a value c' = -w.d within 1e-5 of c (relative to sum |w_i d_i|).
          const tol = 2e-5 * (hi - lo);
          const cmp = ref.feasible && !rs[j]!.well ? fabProjection64(p, w, -wd, norm, lo, hi) : ref;
          for (let i = 0; i < D; i++) {
            expect(Number.isFinite(d[i]!), `${what} d[${i}] finite`).toBe(true);
            expect(Math.abs(d[i]! - cmp.d[i]!), `${what} d[${i}] (got ${d[i]}, want ${cmp.d[i]})`).toBeLessThanOrEqual(tol);
            expect(p[i]! + d[i]!, `${what} in box`).toBeGreaterThanOrEqual(lo - 1e-6);
            expect(p[i]! + d[i]!, `${what} in box`).toBeLessThanOrEqual(hi + 1e-6);
          }
          const n = norm64(d, norm), nr = norm64(ref.d, norm);
          expect(Math.abs(n - nr), `${what} norm`).toBeLessThanOrEqual((rs[j]!.well ? 2e-5 : 1e-3) * (nr + 1e-3));
          if (ref.feasible) expect(Math.abs(wd + c), `${what} constraint`).toBeLessThanOrEqual(1e-5 * (sw + Math.abs(c)) + 1e-30);
        }
      });
    }
  }

  it('300 rows of D=3, inputs shaped [M, 1, D] and c [M, 1, 1]: matches float64', async () => {
    const dev = await testDevice();
    const [lo, hi] = [0, 1];
    const M = 300, D = 3;
    const p = Array.from(randArray(M * D, 5, 0, 1), Math.fround);
    const w = Array.from(randArray(M * D, 6, -1, 1), Math.fround);
    const c = Array.from(randArray(M, 7, -0.5, 0.5), Math.fround);
    const got = await fabProjection(Tensor.from(dev, p, [M, 1, D]), Tensor.from(dev, w, [M, 1, D]), Tensor.from(dev, c, [M, 1, 1]), { norm: 'l2', bounds: [lo, hi] }).f32();
    for (let j = 0; j < M; j++) {
      const ref = fabProjection64(p.slice(j * D, j * D + D), w.slice(j * D, j * D + D), c[j]!, 'l2', lo, hi);
      for (let i = 0; i < D; i++) expect(Math.abs(got[j * D + i]! - ref.d[i]!)).toBeLessThanOrEqual(2e-5);
    }
  });

  it('rejects bad arguments with clear errors', async () => {
    const dev = await testDevice();
    const p = Tensor.from(dev, [0, 0, 0, 0], [2, 2]);
    const c = Tensor.from(dev, [0, 0], [2]);
    const ok = { norm: 'linf' as const, bounds: [0, 1] as [number, number] };
    expect(() => fabProjection(p, Tensor.from(dev, [0, 0], [1, 2]), c, ok)).toThrow(/w must have p's shape \[2, 2\], got \[1, 2\]/);
    expect(() => fabProjection(p, p, Tensor.from(dev, [0], [1]), ok)).toThrow(/c must hold one value per example/);
    expect(() => fabProjection(p, p, c, { ...ok, norm: 'l1' as 'l2' })).toThrow(/norm must be 'linf' or 'l2', got "l1"/);
    expect(() => fabProjection(p, p, c, { ...ok, bounds: [1, 0] })).toThrow(/bounds must be \[lo, hi\]/);
    expect(() => fabProjection(p, p, c, { ...ok, bounds: [0, 1e16] })).toThrow(/hi - lo <= 1e15/);
    expect(() => fabProjection(Tensor.from(dev, [0, 0], [2]), p, c, ok)).toThrow(/p must be a batch/);
  });
});
