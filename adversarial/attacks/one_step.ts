// The single-step attacks (FGSM: L-inf, FGM: L2): one step of size eps from x along the
// norm's ascent direction of the input gradient, clipped to the pixel box. Each attack
// supplies only its step; the gradient, the names and the option checks are shared here.
import type { Tensor } from '../../engine/index.ts';
import type { Module } from '../../nn/module.ts';
import { resolveThreat, type Norm } from '../threat.ts';
import { BaseAttack, objectiveAndGrad, type AttackOptions } from './common.ts';

export interface OneStepOptions extends AttackOptions {
  eps: number;
  /** Valid input range (default [0, 1]). */
  bounds?: [number, number];
}

/** Short numbers for attack names (8/255 -> 0.03137). */
export function fmt(v: number): string {
  return String(Number(v.toPrecision(4)));
}

export abstract class OneStepAttack extends BaseAttack {
  readonly name: string;
  constructor(who: string, norm: Norm, opts: OneStepOptions) {
    super(who, resolveThreat({ norm, eps: opts?.eps, bounds: opts?.bounds }, who), opts);
    this.name = `${who}(eps=${fmt(this.threat.eps)}${this.targeted ? ', targeted' : ''})`;
  }

  /** x' from x and g, the input gradient of the objective to ascend. */
  protected abstract step(x: Tensor, g: Tensor): Tensor;

  protected run(model: Module, x: Tensor, y: Tensor): Tensor {
    const { obj, g } = objectiveAndGrad(model, x, null, y, this.targeted, true);
    obj.dispose();
    const xa = this.step(x, g!);
    g!.dispose();
    return xa;
  }
}
