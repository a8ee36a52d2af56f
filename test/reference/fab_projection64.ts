// float64 reference of FAB's box-constrained projection (engine/ops/fab_projection.ts),
// by an independent exact method: sort the breakpoints of the piecewise-linear
// h(lambda) = sum_i a_i min(lambda s_i, cap_i) and solve on the segment that reaches |r|
// (the GPU kernel bisects on float bits instead). Same conventions: d_i = sign(v_i)
// min(lambda s_i, cap_i), infeasible rows get the nearest box corner, c = 0 or w = 0 gives 0.
// Weights are compared exactly with 0 here (the kernel's 1e-20 relative cut-off is not
// exercised by the tests' data, except on purpose).

export type Norm64 = 'linf' | 'l2';

/** One row: point p, weights w, value c of the hyperplane at p; returns d and whether the hyperplane meets the box. */
export function fabProjection64(p: ArrayLike<number>, w: ArrayLike<number>, c: number, norm: Norm64, lo: number, hi: number): { d: Float64Array; feasible: boolean } {
  const D = p.length;
  const d = new Float64Array(D);
  const r = -c;
  let m = 0;
  for (let i = 0; i < D; i++) m = Math.max(m, Math.abs(w[i]!));
  if (r === 0 || m === 0) return { d, feasible: r === 0 };
  const sigma = r > 0 ? 1 : -1;
  const target = Math.abs(r) / m;
  const a = new Float64Array(D), cap = new Float64Array(D), s = new Float64Array(D), sg = new Float64Array(D);
  const act: number[] = [];
  for (let i = 0; i < D; i++) {
    const v = (sigma * w[i]!) / m;
    a[i] = Math.abs(v);
    sg[i] = v > 0 ? 1 : -1;
    cap[i] = v > 0 ? Math.max(hi - p[i]!, 0) : Math.max(p[i]! - lo, 0);
    s[i] = norm === 'linf' ? 1 : a[i]!;
    if (a[i]! > 0) act.push(i);
  }
  const bp = (i: number) => cap[i]! / s[i]!;
  act.sort((x, y) => bp(x) - bp(y));
  // h(lambda) = A + lambda S on the segment after the k-th breakpoint.
  let A = 0, S = 0;
  for (const i of act) S += a[i]! * s[i]!;
  let lambda = act.length ? bp(act[act.length - 1]!) : 0;
  let feasible = false;
  for (const i of act) {
    const b = bp(i);
    if (A + b * S >= target) {
      lambda = (target - A) / S;
      feasible = true;
      break;
    }
    A += a[i]! * cap[i]!;
    S -= a[i]! * s[i]!;
  }
  if (!feasible && A >= target) feasible = true; // reached exactly at the last corner
  for (const i of act) d[i] = sg[i]! * Math.min(lambda * s[i]!, cap[i]!);
  return { d, feasible };
}

export function norm64(d: ArrayLike<number>, norm: Norm64): number {
  let n = 0;
  for (let i = 0; i < d.length; i++) n = norm === 'linf' ? Math.max(n, Math.abs(d[i]!)) : n + d[i]! * d[i]!;
  return norm === 'linf' ? n : Math.sqrt(n);
}
