// PGD (Madry et al. 2018) in L-inf or L2: from a random start in the ball (or zero),
// repeat K times: delta = P_ball(delta + alpha * dir(grad)), delta = clip(x + delta) - x,
// with dir = sign (L-inf) or g/||g||_2 per example (L2); delta is rebuilt from detached
// values each step. Restarts keep, per example, the final delta with the highest loss.
// Targeted: descends on the target's cross-entropy (labels passed are the targets).
import { Tensor, scope, zerosLike } from '../../engine/index.ts';
import type { Module } from '../../nn/module.ts';
import { applyDelta, ascentDirection, checkCount, checkPositive, randomStart, resolveThreat, stepDelta, type Norm, type ResolvedThreat } from '../threat.ts';
import { BaseAttack, keepBest, objectiveAndGrad, type AttackOptions } from './common.ts';
import { fmt } from './fgsm.ts';

/**
 * Per-step observation: obj [N] is the objective at delta (before the step). Both are
 * valid only during the call, which runs inside the step's scope: keep() any copy made.
 */
export interface StepTrace {
  restart: number;
  /** 0..steps; step = steps is the final point. */
  step: number;
  obj: Tensor;
  delta: Tensor;
}

export interface PgdOptions extends AttackOptions {
  norm?: Norm;
  eps: number;
  /** Step size (L-inf: per coordinate; L2: step length). */
  alpha: number;
  steps: number;
  /** Start from a random point in the ball (default true). */
  randomStart?: boolean;
  /** Independent runs; per example the highest final loss wins (default 1). */
  restarts?: number;
  bounds?: [number, number];
  /** Observe each iterate (tests, gradient studies); costs one extra forward at the end. */
  trace?: (t: StepTrace) => void;
}

/** The point a PGD iteration evaluates: at least the gradient (null when not asked for). */
export interface PgdPoint {
  g: Tensor | null;
}

/** The PGD iteration shared by the Pgd attack and the gradient study (study/measure.ts). */
export interface PgdLoopOptions<P extends PgdPoint> {
  x: Tensor;
  threat: ResolvedThreat;
  /** Step size (L-inf: per coordinate; L2: step length). */
  alpha: number;
  steps: number;
  /** delta_0 (taken over by the loop: disposed when replaced). */
  start: Tensor;
  /** The point at delta for iterate k (objective and gradient; wantGrad false only at a 'value' final point). */
  evaluate: (delta: Tensor, k: number, wantGrad: boolean) => P;
  /** Direction of a step from the gradient (default ascentDirection for the threat's norm). */
  direction?: (g: Tensor) => Tensor;
  /**
   * Sees iterate k: delta_k, its point and delta_{k+1} (null at the final point). Runs
   * inside the step's scope: keep() any tensor it retains.
   */
  observe?: (k: number, delta: Tensor, point: P, next: Tensor | null) => void;
  /** Evaluate the final iterate too and observe it: 'none' (default), 'value' (no gradient) or 'grad'. */
  final?: 'none' | 'value' | 'grad';
}

/**
 * delta_{k+1} = P_ball(delta_k + alpha * dir(grad f(delta_k))), k = 0..steps-1, each step
 * in its own scope (nothing leaks but delta); returns the final delta (caller disposes).
 */
export function pgdLoop<P extends PgdPoint>(o: PgdLoopOptions<P>): Tensor {
  const dir = o.direction ?? ((g: Tensor) => ascentDirection(g, o.threat.norm));
  let delta = o.start;
  for (let k = 0; k < o.steps; k++) {
    const next = scope(() => {
      const p = o.evaluate(delta, k, true);
      if (!p.g) throw new Error('kinkless: pgdLoop: evaluate returned no gradient for a step');
      const nx = stepDelta(o.x, delta, dir(p.g), o.alpha, o.threat);
      o.observe?.(k, delta, p, nx);
      return nx;
    });
    delta.dispose();
    delta = next;
  }
  const final = o.final ?? 'none';
  if (final !== 'none') scope(() => void o.observe?.(o.steps, delta, o.evaluate(delta, o.steps, final === 'grad'), null));
  return delta;
}

export class Pgd extends BaseAttack {
  readonly name: string;
  readonly alpha: number;
  readonly steps: number;
  readonly randomStart: boolean;
  readonly restarts: number;
  private readonly trace?: (t: StepTrace) => void;

  constructor(opts: PgdOptions) {
    super('PGD', resolveThreat({ norm: opts?.norm ?? 'linf', eps: opts?.eps, bounds: opts?.bounds }, 'PGD'), opts);
    checkPositive('PGD', 'alpha', opts.alpha);
    checkCount('PGD', 'steps', opts.steps, 0);
    checkCount('PGD', 'restarts', opts.restarts ?? 1, 1);
    this.alpha = opts.alpha;
    this.steps = opts.steps;
    this.randomStart = opts.randomStart ?? true;
    this.restarts = opts.restarts ?? 1;
    this.trace = opts.trace;
    const t = this.threat;
    this.name = `PGD-${this.steps}${this.restarts > 1 ? `x${this.restarts}` : ''}(${t.norm}, eps=${fmt(t.eps)}, alpha=${fmt(this.alpha)}${this.targeted ? ', targeted' : ''})`;
  }

  protected run(model: Module, x: Tensor, y: Tensor): Tensor {
    let best: { delta: Tensor; obj: Tensor } | null = null;
    for (let r = 0; r < this.restarts; r++) {
      const delta = this.once(model, x, y, r);
      if (this.restarts === 1) {
        const xa = applyDelta(x, delta, this.threat);
        delta.dispose();
        return xa;
      }
      const { obj } = objectiveAndGrad(model, x, delta, y, this.targeted, false);
      best = best ? keepBest(x, best, { delta, obj }) : { delta, obj };
    }
    const xa = applyDelta(x, best!.delta, this.threat);
    best!.delta.dispose();
    best!.obj.dispose();
    return xa;
  }

  /** One run; returns the final delta. */
  private once(model: Module, x: Tensor, y: Tensor, restart: number): Tensor {
    return pgdLoop({
      x,
      threat: this.threat,
      alpha: this.alpha,
      steps: this.steps,
      start: this.randomStart ? randomStart(x.device, x, this.threat, this.nextKey) : zerosLike(x),
      evaluate: (delta, _k, wantGrad) => objectiveAndGrad(model, x, delta, y, this.targeted, wantGrad),
      observe: this.trace ? (k, delta, p) => this.trace!({ restart, step: k, obj: p.obj, delta }) : undefined,
      final: this.trace ? 'value' : 'none',
    });
  }
}

export function pgd(opts: PgdOptions): Pgd {
  return new Pgd(opts);
}
