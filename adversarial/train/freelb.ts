// FreeLB-K (Zhu et al. 2019), in pixel space. delta_0 = U(-1, 1) * initMag / sqrt(dim)
// per coordinate (L2; dim = the example's size), U(-initMag, initMag) (L-inf), or zero
// (initMag = 0, the default), clipped to the box. For t = 1..K: forward at clip(x + delta)
// with the SAME dropout masks as step 1 (Dropout.fixedMask), backward of objective / K
// (so the parameter gradients accumulate to the mean of the K step gradients); unless
// t = K: delta += alpha g / ||g|| (per example; ||.||_2 for 'l2', ||.||_inf for 'linf',
// as in FreeLB's code), project onto the eps-ball when eps > 0 (eps = 0: unbounded),
// clip to the box. One optimizer step per batch.
import { Tensor, add, axpy, backward, clamp, clone, keep, noGrad, normalizePerExample, projectBox, scope, zeros } from '../../engine/index.ts';
import { accuracyCount } from '../../engine/ops/loss.ts';
import { RngState, randomUniform } from '../../engine/ops/random.ts';
import { Dropout } from '../../nn/layers.ts';
import { allModules, type Module } from '../../nn/module.ts';
import type { BatchResult, TrainContext, TrainLoop } from '../trainer.ts';
import { ascentDirection, checkCount, checkEps, checkPositive, linfNormPerExample, projectDelta, type Norm, type ResolvedThreat } from '../threat.ts';
import type { AdvLoopCommon } from './pgd_at.ts';
import { replaceResult, sharedBackwardSetup } from './shared_backward.ts';
import { clipPssiluBGrad, trainingObjective } from './guards.ts';
import { withSurrogate } from './sat.ts';

export interface FreeLbOptions extends AdvLoopCommon {
  /** Ascent steps (forward/backward passes) per batch. */
  K: number;
  /** Step size of the normalised ascent step. */
  alpha: number;
  /** Radius of the ball (0: no projection, only the box). */
  eps: number;
  /** Norm of the normalisation, the ball and the init (default 'l2'). */
  norm?: Norm;
  /** Init magnitude (default 0: delta_0 = 0). */
  initMag?: number;
  bounds?: [number, number];
  seed?: number;
}

/** Every Dropout layer of a model. */
export function dropoutLayers(m: Module): Dropout[] {
  return allModules(m).filter((x): x is Dropout => x instanceof Dropout);
}

export class FreeLb implements TrainLoop {
  readonly name: string;
  readonly threat: ResolvedThreat;
  readonly initMag: number;
  private readonly smooth: boolean | undefined;
  private readonly rng: RngState;

  constructor(readonly opts: FreeLbOptions) {
    ({ smooth: this.smooth, threat: this.threat } = sharedBackwardSetup('FreeLb', opts, (o) => o.norm ?? 'l2'));
    checkCount('FreeLb', 'K', opts.K, 1);
    checkPositive('FreeLb', 'alpha', opts.alpha);
    this.initMag = opts.initMag ?? 0;
    checkEps('FreeLb', 'initMag', this.initMag);
    checkCount('FreeLb', 'seed', opts.seed ?? 0, 0);
    this.rng = new RngState(opts.seed ?? 0);
    this.name = opts.name ?? `freelb-${opts.K}(${this.threat.norm}, eps=${opts.eps}, alpha=${opts.alpha})`;
  }

  private init(x: Tensor): Tensor {
    if (this.initMag === 0) return zeros(x.device, x.shape);
    const dim = x.size / x.shape[0]!;
    const mag = this.threat.norm === 'l2' ? this.initMag / Math.sqrt(dim) : this.initMag;
    const u = randomUniform(x.device, x.shape, { ...this.rng.next(x.size), lo: -mag, hi: mag });
    const d = projectBox(x, u, this.threat.bounds);
    u.dispose();
    return d;
  }

  /** Unit-norm ascent direction g / ||g|| per example. */
  private direction(g: Tensor): Tensor {
    if (this.threat.norm === 'l2') return ascentDirection(g, 'l2');
    const n = linfNormPerExample(g);
    const d = normalizePerExample(g, n);
    n.dispose();
    return d;
  }

  private project(x: Tensor, d: Tensor): Tensor {
    const t = this.threat;
    if (t.eps > 0) return projectDelta(x, d, t);
    return projectBox(x, d, t.bounds);
  }

  trainBatch(ctx: TrainContext, x: Tensor, y: Tensor): BatchResult {
    const o = this.opts;
    const K = o.K;
    const [lo, hi] = this.threat.bounds;
    const drops = dropoutLayers(ctx.model);
    for (const d of drops) d.fixedMask = null;
    let delta = keep(this.init(x));
    let out: BatchResult | null = null;
    ctx.opt.zeroGrad();
    try {
      for (let t = 0; t < K; t++) {
        const r = scope(() => {
          const leaf = clone(delta);
          leaf.requiresGrad = true;
          const { logits, lossSum, objective } = withSurrogate(ctx.model, this.smooth, () => {
            const xa = clamp(add(x, leaf), lo, hi);
            o.observe?.(xa, t);
            return trainingObjective(ctx.model, xa, y, o.activationReg, 1 / K);
          });
          backward(objective);
          // Later steps reuse step 1's dropout masks.
          if (t === 0) for (const d of drops) d.fixedMask = d.lastMask;
          const correct = noGrad(() => accuracyCount(logits, y));
          let next: Tensor | null = null;
          if (t < K - 1) {
            const g = leaf.grad ?? zeros(x.device, x.shape);
            const moved = axpy(delta, this.direction(g), o.alpha);
            next = this.project(x, moved);
          }
          return { lossSum, correct, next };
        });
        if (r.next) {
          delta.dispose();
          delta = keep(r.next);
        }
        out = replaceResult(out, { lossSum: r.lossSum, correct: r.correct });
      }
    } finally {
      delta.dispose();
      for (const d of drops) d.fixedMask = null;
    }
    if (o.activationReg?.bGradClip !== undefined) clipPssiluBGrad(ctx.model, o.activationReg.bGradClip);
    ctx.opt.step();
    // NOTE: the reported loss / correct count are those of the last step.
    return out!;
  }
}
