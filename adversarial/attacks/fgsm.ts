// FGSM (Goodfellow et al. 2015): one signed-gradient step of size eps from x,
// x' = clip(x + eps sign(grad_x L), lo, hi), sign(0) = 0. Targeted: a step down the
// target's cross-entropy. On a linear model away from the box edges this is the exact
// L-inf worst case.
import { Tensor, boxStep } from '../../engine/index.ts';
import { OneStepAttack, type OneStepOptions } from './one_step.ts';

export { fmt } from './one_step.ts';

export type FgsmOptions = OneStepOptions;

export class Fgsm extends OneStepAttack {
  constructor(opts: FgsmOptions) {
    super('FGSM', 'linf', opts);
  }
  protected step(x: Tensor, g: Tensor): Tensor {
    return boxStep(x, g, this.threat.eps, this.threat.bounds, { signOf: true });
  }
}

export function fgsm(opts: FgsmOptions): Fgsm {
  return new Fgsm(opts);
}
