// Threat models (an L-inf or L2 ball of radius eps around x, intersected with the valid
// pixel box): validation, and the geometry every attack shares in the attacks' terms
// (per-example norms, steepest-ascent directions, projections, steps, random starts).
// The math is the engine's fused threat ops (engine/ops/threat.ts); nothing here reads
// back: per-example quantities are [N, 1, ..., 1] tensors that broadcast against the batch.
import {
  Tensor,
  addClipped,
  ascentDirection as engineAscentDirection,
  projectBall,
  randomBallStart,
  stepBall,
  type Device,
} from '../engine/index.ts';

export { exampleAxes, l2NormPerExample, linfNormPerExample, normPerExample } from '../engine/index.ts';

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

/**
 * The steepest-ascent direction of unit norm for the threat's norm: sign(g) for L-inf
 * (sign(0) = 0), g/||g||_2 per example for L2 (0 where g is all zero).
 */
export function ascentDirection(g: Tensor, norm: Norm): Tensor {
  return engineAscentDirection(g, norm);
}

/**
 * Project a perturbation onto the eps-ball, then onto the box (the order of
 * docs/numerics.md): delta = clip(delta, -eps, eps) (L-inf) or delta *= min(1,
 * eps/||delta||) (L2), then delta = clip(x + delta, lo, hi) - x.
 */
export function projectDelta(x: Tensor, delta: Tensor, t: ResolvedThreat): Tensor {
  return projectBall(x, delta, t);
}

/**
 * One projected ascent step on delta: delta + step * dir (dir from ascentDirection;
 * step < 0 descends, for targeted attacks), projected as in projectDelta. `step` is a
 * number or a per-example [N, 1, ..., 1] tensor (APGD's step sizes).
 */
export function stepDelta(x: Tensor, delta: Tensor, dir: Tensor, step: number | Tensor, t: ResolvedThreat): Tensor {
  return stepBall(x, delta, dir, step, t);
}

/**
 * A random start inside the ball, already clipped to the box (engine randomBallStart:
 * L-inf U(-eps, eps) per coordinate; L2 a uniform direction times eps * U(0, 1) per
 * example). Draws come from `next`, which hands out disjoint (seed, offset) keys.
 */
export function randomStart(_device: Device, x: Tensor, t: ResolvedThreat, next: (n: number) => { seed: number; offset: number }): Tensor {
  return randomBallStart(x, t, next);
}

/** x + delta clipped to the box (exact in real arithmetic already; the clip removes float rounding). */
export function applyDelta(x: Tensor, delta: Tensor, t: ResolvedThreat): Tensor {
  return addClipped(x, delta, t.bounds);
}
