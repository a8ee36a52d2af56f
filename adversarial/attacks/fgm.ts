// FGM (Miyato et al. 2017): one L2 step of length eps along the input gradient normalised
// per example over the whole input, x' = clip(x + eps g/||g||_2, lo, hi) (an all-zero
// gradient gives no step). Targeted: along minus the target's gradient. On a linear model
// away from the box edges this is the exact L2 worst case.
import { Tensor, boxStep } from '../../engine/index.ts';
import { ascentDirection } from '../threat.ts';
import { OneStepAttack, type OneStepOptions } from './one_step.ts';

export type FgmOptions = OneStepOptions;

export class Fgm extends OneStepAttack {
  constructor(opts: FgmOptions) {
    super('FGM', 'l2', opts);
  }
  protected step(x: Tensor, g: Tensor): Tensor {
    const d = ascentDirection(g, 'l2');
    const xa = boxStep(x, d, this.threat.eps, this.threat.bounds);
    d.dispose();
    return xa;
  }
}

export function fgm(opts: FgmOptions): Fgm {
  return new Fgm(opts);
}
