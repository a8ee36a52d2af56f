// Free adversarial training, m replays (Shafahi et al. 2019). delta starts at zero ONCE
// and persists across minibatches. Each minibatch is replayed m times; each replay does
// ONE forward of clip(x + delta) and ONE backward, which gives both the parameter
// gradients and the gradient w.r.t. delta; then delta = clip(delta + step sign(g), -eps,
// eps), delta = clip(x + delta, lo, hi) - x (the order of docs/numerics.md), and one optimizer step.
//
// Budget: each batch costs m forward/backward passes and m optimizer steps, so callers
// divide the number of epochs (and LR milestones) by `replays` = m to match standard
// training's gradient computations.
//
// NOTE (batch-size changes): delta is stored with the shape of the largest batch seen.
// A smaller batch (the last one of an epoch) uses and updates the first n rows of delta;
// the other rows persist unchanged for the next full batch. A larger batch extends delta
// with zero rows. A batch whose per-example shape differs resets delta to zero.
import { Tensor, add, backward, clamp, clone, keep, noGrad, scope, sign, zeros } from '../../engine/index.ts';
import { accuracyCount } from '../../engine/ops/loss.ts';
import { concat, slice } from '../../engine/ops/layout.ts';
import type { BatchResult, TrainContext, TrainLoop } from '../trainer.ts';
import { checkCount, checkPositive, stepDelta, type ResolvedThreat } from '../threat.ts';
import type { AdvLoopCommon } from './pgd_at.ts';
import { replaceResult, sharedBackwardSetup } from './shared_backward.ts';
import { clipPssiluBGrad, trainingObjective } from './guards.ts';
import { withSurrogate } from './sat.ts';

export interface FreeAtOptions extends AdvLoopCommon {
  eps: number;
  /** m: replays of each minibatch. */
  replays: number;
  /** Step of the delta update (default eps, Shafahi et al.). */
  step?: number;
  bounds?: [number, number];
}

export class FreeAt implements TrainLoop {
  readonly name: string;
  readonly replays: number;
  readonly threat: ResolvedThreat;
  readonly step: number;
  private readonly smooth: boolean | undefined;
  /** The persistent perturbation (null before the first batch or after reset()). */
  delta: Tensor | null = null;

  constructor(readonly opts: FreeAtOptions) {
    ({ smooth: this.smooth, threat: this.threat } = sharedBackwardSetup('FreeAt', opts, () => 'linf'));
    checkCount('FreeAt', 'replays', opts.replays, 1);
    this.replays = opts.replays;
    this.step = opts.step ?? opts.eps;
    checkPositive('FreeAt', 'step', this.step);
    this.name = opts.name ?? `free-at(m=${this.replays}, eps=${opts.eps})`;
  }

  /** Forget the persistent delta (the next batch starts from zero). */
  reset(): void {
    this.delta?.dispose();
    this.delta = null;
  }

  dispose(): void {
    this.reset();
  }

  /** delta for a batch like x: the first n rows of the stored delta (see the NOTE above). */
  private current(x: Tensor): Tensor {
    const n = x.shape[0]!;
    const d = this.delta;
    const sameSample = d !== null && d.rank === x.rank && d.shape.slice(1).every((v, i) => v === x.shape[i + 1]);
    if (!d || !sameSample) {
      this.reset();
      return zeros(x.device, x.shape);
    }
    const b = d.shape[0]!;
    if (n === b) return clone(d);
    if (n < b) return slice(d, [0], [n]);
    return concat([d, zeros(x.device, [n - b, ...x.shape.slice(1)])], 0);
  }

  /** Store the updated rows (rows past n keep their previous values). */
  private store(next: Tensor): void {
    const d = this.delta;
    const n = next.shape[0]!;
    let full = next;
    if (d && d.shape[0]! > n && d.rank === next.rank) full = concat([next, slice(d, [n], [d.shape[0]!])], 0);
    else full = clone(next);
    this.delta?.dispose();
    this.delta = keep(full);
  }

  trainBatch(ctx: TrainContext, x: Tensor, y: Tensor): BatchResult {
    const o = this.opts;
    const [lo, hi] = this.threat.bounds;
    let out: BatchResult | null = null;
    for (let r = 0; r < this.replays; r++) {
      out = replaceResult(out, scope(() => {
        const d = this.current(x);
        const leaf = clone(d);
        leaf.requiresGrad = true;
        ctx.opt.zeroGrad();
        const { logits, lossSum, objective } = withSurrogate(ctx.model, this.smooth, () => {
          const xa = clamp(add(x, leaf), lo, hi);
          o.observe?.(xa, r);
          return trainingObjective(ctx.model, xa, y, o.activationReg);
        });
        // One backward: parameter gradients and d(objective)/d(delta) together.
        backward(objective);
        if (o.activationReg?.bGradClip !== undefined) clipPssiluBGrad(ctx.model, o.activationReg.bGradClip);
        ctx.opt.step();
        const g = leaf.grad ?? zeros(x.device, x.shape);
        const dir = sign(g);
        this.store(stepDelta(x, d, dir, this.step, this.threat));
        const correct = noGrad(() => accuracyCount(logits, y));
        return { lossSum, correct };
      }));
    }
    // NOTE: the reported loss / correct count are those of the last replay.
    return out!;
  }
}
