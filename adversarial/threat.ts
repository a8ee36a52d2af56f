// Threat models (an L-inf or L2 ball of radius eps around x, intersected with the valid
// pixel box) and the GPU-side geometry every attack shares: per-example norms, steepest
// ascent directions, projections onto the ball and the box, and random starts. Nothing
// here reads back: per-example quantities are [N, 1, ..., 1] tensors (keepdims) that
// broadcast against the batch.
import { Tensor, ew, abs, max, sum, type Device } from '../engine/index.ts';
import { randomNormal, randomUniform } from '../engine/ops/random.ts';

export type Norm = 'linf' | 'l2';

export interface ThreatModel {
  norm: Norm;
  /** Radius of the ball, finite and >= 0 (in pixel units: 8/255, 0.3, ...). */
  eps: number;
  /** Valid input range [lo, hi], finite, lo < hi. Default [0, 1]. */
  bounds?: [number, number];
}

/** A validated threat model with its bounds filled in. */
export interface ResolvedThreat {
  norm: Norm;
  eps: number;
  bounds: [number, number];
}

export const DEFAULT_BOUNDS: [number, number] = [0, 1];

/** Check a threat model and fill in defaults; errors name the caller, the field and the value. */
export function resolveThreat(t: ThreatModel, who = 'threat model'): ResolvedThreat {
  if (t == null || typeof t !== 'object') throw new Error(`kinkless: ${who}: expected { norm, eps, bounds? }, got ${String(t)}`);
  if (t.norm !== 'linf' && t.norm !== 'l2') throw new Error(`kinkless: ${who}: norm must be 'linf' or 'l2', got ${JSON.stringify(t.norm)}`);
  checkEps(who, 'eps', t.eps);
  const b = t.bounds ?? DEFAULT_BOUNDS;
  if (!Array.isArray(b) || b.length !== 2) throw new Error(`kinkless: ${who}: bounds must be [lo, hi], got ${JSON.stringify(b)}`);
  const [lo, hi] = b;
  if (typeof lo !== 'number' || typeof hi !== 'number' || !Number.isFinite(lo) || !Number.isFinite(hi) || !(lo < hi)) {
    throw new Error(`kinkless: ${who}: bounds must be finite numbers with lo < hi, got [${String(lo)}, ${String(hi)}]`);
  }
  return { norm: t.norm, eps: t.eps, bounds: [lo, hi] };
}

/** eps-like scalars: finite and >= 0. */
export function checkEps(who: string, arg: string, v: number): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new Error(`kinkless: ${who}: ${arg} must be a finite number >= 0, got ${String(v)}`);
}

/** Positive finite scalars (step sizes). */
export function checkPositive(who: string, arg: string, v: number): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new Error(`kinkless: ${who}: ${arg} must be a finite number > 0, got ${String(v)}`);
}

export function checkCount(who: string, arg: string, v: number, min: number): void {
  if (!Number.isInteger(v) || v < min) throw new Error(`kinkless: ${who}: ${arg} must be an integer >= ${min}, got ${String(v)}`);
}

/** Axes of one example: every axis but the batch axis. */
export function exampleAxes(t: Tensor): number[] {
  return Array.from({ length: t.rank - 1 }, (_, i) => i + 1);
}

// NOTE: the smallest scale used to guard divisions; far below any gradient that matters
// and well inside the normal float32 range.
const TINY = 1e-30;

/**
 * Per-example L2 norm, shape [N, 1, ..., 1]. NOTE: computed as m * ||t / m|| with
 * m = max|t| per example, so tiny gradients (|g| ~ 1e-20, whose squares underflow
 * float32) still get their true norm, and an all-zero example gets exactly 0.
 */
export function l2NormPerExample(t: Tensor): Tensor {
  const ax = exampleAxes(t);
  const a = abs(t);
  const m = max(a, ax, true);
  a.dispose();
  const scaled = ew('l2_scale', 'a0 / max(a1, T(s.x))', [t, m], { scalars: [TINY] });
  const sq = ew('square', 'a0 * a0', [scaled]);
  scaled.dispose();
  const ss = sum(sq, ax, true);
  sq.dispose();
  const n = ew('l2_norm', 'sqrt(a0) * a1', [ss, m]);
  ss.dispose();
  m.dispose();
  return n;
}

/** Per-example L-inf norm, shape [N, 1, ..., 1]. */
export function linfNormPerExample(t: Tensor): Tensor {
  const a = abs(t);
  const m = max(a, exampleAxes(t), true);
  a.dispose();
  return m;
}

export function normPerExample(t: Tensor, norm: Norm): Tensor {
  return norm === 'linf' ? linfNormPerExample(t) : l2NormPerExample(t);
}

/**
 * The steepest-ascent direction of unit norm for the threat's norm: sign(g) for L-inf
 * (sign(0) = 0), g/||g||_2 per example for L2 (0 where g is all zero).
 */
export function ascentDirection(g: Tensor, norm: Norm): Tensor {
  if (norm === 'linf') return ew('sign', 'sign(a0)', [g]);
  const n = l2NormPerExample(g);
  const d = ew('l2_normalize', 'select(T(0.0), a0 / a1, a1 > T(s.x))', [g, n], { scalars: [TINY] });
  n.dispose();
  return d;
}

/**
 * Project a perturbation onto the eps-ball, then onto the box: REFERENCE order
 * delta = clip(delta, -eps, eps) (L-inf) or delta *= min(1, eps/||delta||) (L2), then
 * delta = clip(x + delta, lo, hi) - x. Clipping to the box only shrinks |delta_i| (x
 * is in the box), so the result stays in the ball.
 */
export function projectDelta(x: Tensor, delta: Tensor, t: ResolvedThreat): Tensor {
  const [lo, hi] = t.bounds;
  if (t.norm === 'linf') {
    return ew('project_linf', 'clamp(clamp(a1, T(-s.x), T(s.x)) + a0, T(s.y), T(s.z)) - a0', [x, delta], { scalars: [t.eps, lo, hi] });
  }
  const n = l2NormPerExample(delta);
  const r = ew('project_l2', 'clamp(a1 * select(T(1.0), T(s.x) / a2, a2 > T(s.x)) + a0, T(s.y), T(s.z)) - a0', [x, delta, n], { scalars: [t.eps, lo, hi] });
  n.dispose();
  return r;
}

/**
 * One projected ascent step on delta: delta + step * dir (dir from ascentDirection;
 * step < 0 descends, for targeted attacks), projected as in projectDelta. `step` is a
 * number or a per-example [N, 1, ..., 1] tensor (APGD's step sizes).
 */
export function stepDelta(x: Tensor, delta: Tensor, dir: Tensor, step: number | Tensor, t: ResolvedThreat): Tensor {
  const [lo, hi] = t.bounds;
  if (t.norm === 'linf') {
    // Fused: clip(clip(delta + step*dir, -eps, eps) + x, lo, hi) - x.
    if (typeof step === 'number') {
      return ew('step_linf', 'clamp(clamp(a1 + T(s.w) * a2, T(-s.x), T(s.x)) + a0, T(s.y), T(s.z)) - a0', [x, delta, dir], { scalars: [t.eps, lo, hi, step] });
    }
    return ew('step_linf', 'clamp(clamp(a1 + a3 * a2, T(-s.x), T(s.x)) + a0, T(s.y), T(s.z)) - a0', [x, delta, dir, step], { scalars: [t.eps, lo, hi] });
  }
  const moved = typeof step === 'number' ? ew('axpy', 'a0 + T(s.x) * a1', [delta, dir], { scalars: [step] }) : ew('axpy', 'a0 + a2 * a1', [delta, dir, step]);
  const r = projectDelta(x, moved, t);
  moved.dispose();
  return r;
}

/**
 * A random start inside the ball, already clipped to the box. L-inf: delta ~ U(-eps, eps)
 * per coordinate. L2: a uniformly random direction (normalised Gaussian) times a radius
 * eps * u, u ~ U(0, 1) per example (so ||delta|| <= eps). Draws come from `next`, which
 * hands out disjoint (seed, offset) keys.
 */
export function randomStart(device: Device, x: Tensor, t: ResolvedThreat, next: (n: number) => { seed: number; offset: number }): Tensor {
  if (t.eps === 0) return ew('fill', 'T(0.0)', [x]);
  let raw: Tensor;
  if (t.norm === 'linf') raw = randomUniform(device, x.shape, { ...next(x.size), lo: -t.eps, hi: t.eps });
  else {
    const z = randomNormal(device, x.shape, next(x.size));
    const dir = ascentDirection(z, 'l2');
    z.dispose();
    const rshape = [x.shape[0]!, ...exampleAxes(x).map(() => 1)];
    const u = randomUniform(device, rshape, next(x.shape[0]!));
    raw = ew('scale_radius', 'a0 * a1 * T(s.x)', [dir, u], { scalars: [t.eps] });
    dir.dispose();
    u.dispose();
  }
  const r = ew('project_box', 'clamp(a1 + a0, T(s.x), T(s.y)) - a0', [x, raw], { scalars: t.bounds });
  raw.dispose();
  return r;
}

/** x + delta clipped to the box (exact in real arithmetic already; the clip removes float rounding). */
export function applyDelta(x: Tensor, delta: Tensor, t: ResolvedThreat): Tensor {
  return ew('apply_delta', 'clamp(a0 + a1, T(s.x), T(s.y))', [x, delta], { scalars: t.bounds });
}
