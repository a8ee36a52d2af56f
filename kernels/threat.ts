// Fused elementwise kernels of the threat-model geometry (engine/ops/threat.ts): stable
// per-example L2 norms, unit directions, projections onto the eps-ball and the pixel box,
// projected steps, random-start scaling, and APGD's per-example bookkeeping. Per-example
// quantities are [N, 1, ..., 1] inputs that broadcast against the batch.
// Scalars: eps = s.x, box [lo, hi] = (s.y, s.z), step = s.w unless stated otherwise.
import { elementwiseFamily } from './elementwise.ts';

// NOTE: every division by a per-example norm is guarded by a threshold passed as a scalar
// (1e-30 in engine/ops/threat.ts): an all-zero example gives a zero direction, not NaN.
const SQ = 'fn k_sq(v: T) -> T { return v * v; }';

export const THREAT = elementwiseFamily('threat', {
  /** (t / max(m, tiny))^2 with m = max|t| per example (s.x = tiny). */
  l2_scaled_square: { arity: 2, expr: 'k_sq(a0 / max(a1, T(s.x)))', preamble: SQ },
  /** sqrt(sum of scaled squares) * m. */
  l2_norm: { arity: 2, expr: 'sqrt(a0) * a1' },
  /** g / n where n > tiny, else 0 (s.x = tiny). */
  normalize: { arity: 2, expr: 'select(T(0.0), a0 / a1, a1 > T(s.x))' },
  /** (a - b) / n where n > tiny, else 0 (s.x = tiny). */
  diff_normalize: { arity: 3, expr: 'select(T(0.0), (a0 - a1) / a2, a2 > T(s.x))' },
  /** x, delta: clip(clip(delta, -eps, eps) + x, lo, hi) - x. */
  project_linf: { arity: 2, expr: 'clamp(clamp(a1, T(-s.x), T(s.x)) + a0, T(s.y), T(s.z)) - a0' },
  /** x, delta, ||delta||: clip(delta * min(1, eps / ||delta||) + x, lo, hi) - x. */
  project_l2: { arity: 3, expr: 'clamp(a1 * select(T(1.0), T(s.x) / a2, a2 > T(s.x)) + a0, T(s.y), T(s.z)) - a0' },
  /** x, delta, dir: project_linf(delta + step * dir), step = s.w. */
  step_linf: { arity: 3, expr: 'clamp(clamp(a1 + T(s.w) * a2, T(-s.x), T(s.x)) + a0, T(s.y), T(s.z)) - a0' },
  /** x, delta, dir, step [N, 1, ...]: project_linf(delta + step * dir). */
  step_linf_t: { arity: 4, expr: 'clamp(clamp(a1 + a3 * a2, T(-s.x), T(s.x)) + a0, T(s.y), T(s.z)) - a0' },
  /** a + s.x * b. */
  axpy: { arity: 2, expr: 'a0 + T(s.x) * a1' },
  /** a + c * b with c a tensor [N, 1, ...]. */
  axpy_t: { arity: 3, expr: 'a0 + a2 * a1' },
  /** dir * u * eps (s.x = eps). */
  scale_radius: { arity: 2, expr: 'a0 * a1 * T(s.x)' },
  /** x, delta: clip(x + delta, lo, hi) - x with lo = s.x, hi = s.y. */
  project_box: { arity: 2, expr: 'clamp(a1 + a0, T(s.x), T(s.y)) - a0' },
  /** x, delta: clip(x + delta, lo, hi) with lo = s.x, hi = s.y. */
  apply_delta: { arity: 2, expr: 'clamp(a0 + a1, T(s.x), T(s.y))' },
  /** x, dir: clip(x + s.x * dir, s.y, s.z). */
  box_step: { arity: 2, expr: 'clamp(a0 + T(s.x) * a1, T(s.y), T(s.z))' },
  /** x, g: clip(x + s.x * sign(g), s.y, s.z) (FGSM; sign(0) = 0). */
  box_step_sign: { arity: 2, expr: 'clamp(a0 + T(s.x) * sign(a1), T(s.y), T(s.z))' },
  /** delta, z, prev: delta + a (z - delta) + b (delta - prev), a = s.x, b = s.y. */
  momentum_mix: { arity: 3, expr: 'a0 + T(s.x) * (a1 - a0) + T(s.y) * (a0 - a2)' },
  /** count, f, fPrev: count + (f > fPrev). */
  count_increase: { arity: 3, expr: 'a0 + select(T(0.0), T(1.0), a1 > a2)' },
  /** inc, halved, fBestCheck, fBest: 1 where inc < s.x or (halved == 0 and fBestCheck >= fBest). */
  apgd_reduce: { arity: 4, expr: 'select(T(0.0), T(1.0), (a0 < T(s.x)) | ((a1 == T(0.0)) & (a2 >= a3)))' },
  /** mask, eta: eta / 2 where mask != 0. */
  halve_where: { arity: 2, expr: 'select(a1, a1 * T(0.5), a0 != T(0.0))' },
});

export type ThreatOp = keyof typeof THREAT.ops;
