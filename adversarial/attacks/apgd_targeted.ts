// APGD-T (Croce & Hein 2020): targeted APGD on the targeted DLR loss, once per target
// class: the classes ranked 2..nTargetClasses+1 in the clean logits. An example keeps the
// first target's point that misclassifies it (decided on the GPU: argmax != label), else
// the last target's point. The AutoAttack runner instead runs each target as its own stage
// on the examples still robust (adversarial/autoattack.ts); this class is the standalone
// attack with the Attack interface (no readbacks).
import { Tensor, argmax, ne, noGrad, scope, where } from '../../engine/index.ts';
import type { Module } from '../../nn/module.ts';
import { resolveThreat, checkCount } from '../threat.ts';
import { Apgd, type ApgdOptions } from './apgd.ts';
import { BaseAttack, perExampleView } from './common.ts';
import { fmt } from './fgsm.ts';

export interface ApgdTargetedOptions extends Omit<ApgdOptions, 'loss' | 'targetRank' | 'targeted'> {
  /** Number of target classes (default 9, AutoAttack's standard; at most C - 1). */
  nTargetClasses?: number;
}

export class ApgdTargeted extends BaseAttack {
  readonly name: string;
  readonly nTargetClasses: number;
  private readonly opts: ApgdTargetedOptions;

  constructor(opts: ApgdTargetedOptions) {
    super('APGD-T', resolveThreat({ norm: opts?.norm ?? 'linf', eps: opts?.eps, bounds: opts?.bounds }, 'APGD-T'), opts);
    this.nTargetClasses = opts.nTargetClasses ?? 9;
    checkCount('APGD-T', 'nTargetClasses', this.nTargetClasses, 1);
    this.opts = opts;
    this.name = `APGD-T-${opts.steps ?? 100}x${this.nTargetClasses}(${this.threat.norm}, eps=${fmt(this.threat.eps)})`;
  }

  /** The single-target attack for the class ranked `rank` (2 = runner-up). */
  target(rank: number): Apgd {
    return new Apgd({ ...this.opts, loss: 'dlr-targeted', targetRank: rank, seed: (this.opts.seed ?? 0) + rank });
  }

  protected run(model: Module, x: Tensor, y: Tensor): Tensor {
    const C = noGrad(() => scope(() => model.forward(x).shape[1]!));
    const n = Math.min(this.nTargetClasses, C - 1);
    let best: Tensor | null = null;
    for (let r = 2; r <= n + 1; r++) {
      const cand = this.target(r).generate(model, x, y);
      if (!best) {
        best = cand;
        continue;
      }
      const prev: Tensor = best;
      best = noGrad(() =>
        scope(() => {
          const fooled = ne(argmax(model.forward(prev), -1), y);
          return where(perExampleView(fooled, x), prev, cand);
        }),
      );
      prev.dispose();
      cand.dispose();
    }
    return best!;
  }
}

export function apgdTargeted(opts: ApgdTargetedOptions): ApgdTargeted {
  return new ApgdTargeted(opts);
}
