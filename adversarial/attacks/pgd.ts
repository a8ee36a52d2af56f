// PGD (Madry et al. 2018) in L-inf or L2: from a random start in the ball (or zero),
// repeat K times: delta = P_ball(delta + alpha * dir(grad)), delta = clip(x + delta) - x,
// with dir = sign (L-inf) or g/||g||_2 per example (L2); delta is rebuilt from detached
// values each step. Restarts keep, per example, the final delta with the highest loss.
// Targeted: descends on the target's cross-entropy (labels passed are the targets).
import { Tensor, scope, zerosLike } from '../../engine/index.ts';
import type { Module } from '../../nn/module.ts';
import { applyDelta, ascentDirection, checkCount, checkPositive, randomStart, resolveThreat, stepDelta, type Norm } from '../threat.ts';
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
    let delta = this.randomStart ? randomStart(x.device, x, this.threat, this.nextKey) : zerosLike(x);
    for (let k = 0; k < this.steps; k++) {
      const next = scope(() => {
        const { obj, g } = objectiveAndGrad(model, x, delta, y, this.targeted, true);
        this.trace?.({ restart, step: k, obj, delta });
        const dir = ascentDirection(g!, this.threat.norm);
        return stepDelta(x, delta, dir, this.alpha, this.threat);
      });
      delta.dispose();
      delta = next;
    }
    if (this.trace) {
      const { obj } = objectiveAndGrad(model, x, delta, y, this.targeted, false);
      this.trace({ restart, step: this.steps, obj, delta });
      obj.dispose();
    }
    return delta;
  }
}

export function pgd(opts: PgdOptions): Pgd {
  return new Pgd(opts);
}
