// PGD adversarial training (Madry et al. 2018): each batch is replaced by PGD examples
// (generated with the parameters frozen, in an explicit batch-norm mode), then one
// optimizer step on the cross-entropy of the adversarial batch. Also the pieces every
// adversarial loop shares: the common options (SAT switches, PSSiLU regularisation, an
// observer for the adversarial batch) and the outer step (forward, objective, backward,
// b-gradient clip, optimizer step).
import { Tensor, backward, noGrad } from '../../engine/index.ts';
import { accuracyCount } from '../../engine/ops/loss.ts';
import type { BatchResult, TrainContext, TrainLoop } from '../trainer.ts';
import { Pgd, type BnMode } from '../attacks/index.ts';
import type { Norm } from '../threat.ts';
import { deriveSeed } from '../../nn/data/loader.ts';
import { checkActivationReg, clipPssiluBGrad, trainingObjective, type ActivationRegOptions } from './guards.ts';
import { checkSwitches, withSurrogate, type SmoothSwitches } from './sat.ts';

/** Options every adversarial loop accepts. */
export interface AdvLoopCommon extends SmoothSwitches {
  /** PSSiLU regularisation (PAF): objective + weight * |b|, optional clip of b's gradient. */
  activationReg?: ActivationRegOptions;
  /**
   * Observe each adversarial batch the parameters are trained on (tests, studies). `xAdv`
   * is valid only during the call; `k` counts the batch's forward passes (replays,
   * FreeLB steps, YOPO outer iterations) from 0.
   */
  observe?: (xAdv: Tensor, k: number) => void;
  /** Loop name for logs (default: the loop's kind). */
  name?: string;
}

export function checkCommon(who: string, o: AdvLoopCommon): void {
  checkSwitches(who, o);
  checkActivationReg(who, o.activationReg);
  if (o.observe !== undefined && typeof o.observe !== 'function') throw new Error(`kinkless: ${who}: observe must be a function`);
}

export function checkBnMode(who: string, v: unknown, required: boolean): void {
  if (v === undefined && !required) return;
  if (v !== 'eval' && v !== 'train') {
    throw new Error(`kinkless: ${who}: bnMode must be 'eval' (running statistics during the attack: SAT, PAF) or 'train' (batch statistics: FAST, RO), got ${JSON.stringify(v)}`);
  }
}

export function checkOptions(who: string, o: unknown): void {
  if (o === null || typeof o !== 'object') throw new Error(`kinkless: ${who}: options must be an object, got ${String(o)}`);
}

/**
 * The outer minimisation on a (detached) adversarial batch: zero grads, forward with the
 * optimizer's surrogate switch, objective (mean CE + regulariser), backward, clip b's
 * gradient when asked, one optimizer step.
 */
export function outerStep(ctx: TrainContext, xAdv: Tensor, y: Tensor, o: AdvLoopCommon, k = 0): BatchResult {
  o.observe?.(xAdv, k);
  ctx.opt.zeroGrad();
  const { logits, lossSum, objective } = withSurrogate(ctx.model, o.optimizerSmooth, () => trainingObjective(ctx.model, xAdv, y, o.activationReg));
  backward(objective);
  if (o.activationReg?.bGradClip !== undefined) clipPssiluBGrad(ctx.model, o.activationReg.bGradClip);
  ctx.opt.step();
  const correct = noGrad(() => accuracyCount(logits, y));
  return { lossSum, correct };
}

export interface PgdAtOptions extends AdvLoopCommon {
  norm?: Norm;
  eps: number;
  alpha: number;
  steps: number;
  /** Batch-norm mode during the attack: 'eval' (SAT, PAF) or 'train' (FAST, RO). Required. */
  bnMode: BnMode;
  /** Random start in the ball (default true, Madry). */
  randomStart?: boolean;
  restarts?: number;
  bounds?: [number, number];
  /** Seed of the attack's random starts (default 0). */
  seed?: number;
  /**
   * Curriculum: over the first N training steps eps and alpha grow linearly, to
   * (step+1)/N of their values (default 0: full eps from the first step).
   */
  epsWarmupSteps?: number;
}

export class PgdAt implements TrainLoop {
  readonly name: string;
  readonly attack: Pgd;
  constructor(readonly opts: PgdAtOptions) {
    checkOptions('PgdAt', opts);
    checkCommon('PgdAt', opts);
    checkBnMode('PgdAt', opts.bnMode, true);
    const warm = opts.epsWarmupSteps;
    if (warm !== undefined && (!Number.isInteger(warm) || warm < 0)) throw new Error(`kinkless: PgdAt: epsWarmupSteps must be an integer >= 0, got ${String(warm)}`);
    this.attack = new Pgd({ norm: opts.norm, eps: opts.eps, alpha: opts.alpha, steps: opts.steps, randomStart: opts.randomStart ?? true, restarts: opts.restarts, bounds: opts.bounds, bnMode: opts.bnMode, seed: opts.seed });
    this.name = opts.name ?? `pgd-at(${this.attack.name})`;
  }
  /** The attack used at global step `step` (the warm-up scales eps and alpha). */
  attackAt(step: number): Pgd {
    const warm = this.opts.epsWarmupSteps ?? 0;
    if (warm <= 0 || step >= warm - 1) return this.attack;
    const s = (step + 1) / warm;
    const o = this.opts;
    // NOTE: a fresh attack per warm-up step, seeded from (seed, step) so the random starts differ.
    return new Pgd({ norm: o.norm, eps: o.eps * s, alpha: o.alpha * s, steps: o.steps, randomStart: o.randomStart ?? true, restarts: o.restarts, bounds: o.bounds, bnMode: o.bnMode, seed: deriveSeed(o.seed ?? 0, step) });
  }
  trainBatch(ctx: TrainContext, x: Tensor, y: Tensor): BatchResult {
    const attack = this.attackAt(ctx.step);
    const xAdv = withSurrogate(ctx.model, this.opts.attackerSmooth, () => attack.generate(ctx.model, x, y));
    return outerStep(ctx, xAdv, y, this.opts);
  }
}
