// FGSM (Goodfellow et al. 2015): one signed-gradient step of size eps from x,
// x' = clip(x + eps sign(grad_x L), lo, hi), sign(0) = 0. Targeted: a step down the
// target's cross-entropy. On a linear model away from the box edges this is the exact
// L-inf worst case.
import { Tensor, boxStep } from '../../engine/index.ts';
import type { Module } from '../../nn/module.ts';
import { resolveThreat } from '../threat.ts';
import { BaseAttack, objectiveAndGrad, type AttackOptions } from './common.ts';

export interface FgsmOptions extends AttackOptions {
  eps: number;
  /** Valid input range (default [0, 1]). */
  bounds?: [number, number];
}

export class Fgsm extends BaseAttack {
  readonly name: string;
  constructor(opts: FgsmOptions) {
    super('FGSM', resolveThreat({ norm: 'linf', eps: opts?.eps, bounds: opts?.bounds }, 'FGSM'), opts);
    this.name = `FGSM(eps=${fmt(this.threat.eps)}${this.targeted ? ', targeted' : ''})`;
  }
  protected run(model: Module, x: Tensor, y: Tensor): Tensor {
    const { obj, g } = objectiveAndGrad(model, x, null, y, this.targeted, true);
    obj.dispose();
    const xa = boxStep(x, g!, this.threat.eps, this.threat.bounds, { signOf: true });
    g!.dispose();
    return xa;
  }
}

export function fgsm(opts: FgsmOptions): Fgsm {
  return new Fgsm(opts);
}

/** Short numbers for attack names (8/255 -> 0.03137). */
export function fmt(v: number): string {
  return String(Number(v.toPrecision(4)));
}
