// FGM (Miyato et al. 2017): one L2 step of length eps along the input gradient normalised
// per example over the whole input, x' = clip(x + eps g/||g||_2, lo, hi) (an all-zero
// gradient gives no step). Targeted: along minus the target's gradient. On a linear model
// away from the box edges this is the exact L2 worst case.
import { Tensor, boxStep } from '../../engine/index.ts';
import type { Module } from '../../nn/module.ts';
import { ascentDirection, resolveThreat } from '../threat.ts';
import { BaseAttack, objectiveAndGrad, type AttackOptions } from './common.ts';
import { fmt } from './fgsm.ts';

export interface FgmOptions extends AttackOptions {
  eps: number;
  bounds?: [number, number];
}

export class Fgm extends BaseAttack {
  readonly name: string;
  constructor(opts: FgmOptions) {
    super('FGM', resolveThreat({ norm: 'l2', eps: opts?.eps, bounds: opts?.bounds }, 'FGM'), opts);
    this.name = `FGM(eps=${fmt(this.threat.eps)}${this.targeted ? ', targeted' : ''})`;
  }
  protected run(model: Module, x: Tensor, y: Tensor): Tensor {
    const { obj, g } = objectiveAndGrad(model, x, null, y, this.targeted, true);
    obj.dispose();
    const d = ascentDirection(g!, 'l2');
    g!.dispose();
    const xa = boxStep(x, d, this.threat.eps, this.threat.bounds);
    d.dispose();
    return xa;
  }
}

export function fgm(opts: FgmOptions): Fgm {
  return new Fgm(opts);
}
