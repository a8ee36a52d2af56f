// YOPO-m-n, "You Only Propagate Once" (Zhang et al. 2019). The model is split as
// logits = rest(f0(x)), f0 = the first layer (before any BN / activation). Per batch:
// eta ~ U(-eps, eps) (clipped to the box). For j = 1..m: one full forward/backward at
// clip(x + eta) accumulates every parameter's gradient and gives the co-state
// p = -dL/dz0 (frozen); then n cheap inner steps on H = sum(f0(clip(x + eta)) * p) that
// only touch f0: eta = eta - sigma sign(dH/deta), eta = clip(eta, -eps, eps),
// eta = clip(x + eta) - x; then the backward of -H (at the eta reached) adds f0's
// parameter gradients. One optimizer step per batch.
//
// NOTE: the gradients of the m outer passes are SUMMED (as in the paper), so the caller
// scales the learning rate by 1/m in its schedule. L is the batch-mean cross-entropy (plus
// the PSSiLU regulariser when asked, added in each of the m passes).
// NOTE: the full pass serves the attack (p) and the optimizer at once, so the SAT
// switches must agree (sat.ts); the inner steps run through f0 only (no activation).
import { Tensor, backward, clamp, add, clone, grad, keep, neg, noGrad, scope, sign, zeros } from '../../engine/index.ts';
import { accuracyCount } from '../../engine/ops/loss.ts';
import { RngState } from '../../engine/ops/random.ts';
import { Conv2d, Linear, Sequential } from '../../nn/layers.ts';
import type { Module } from '../../nn/module.ts';
import type { BatchResult, TrainContext, TrainLoop } from '../trainer.ts';
import { applyDelta, checkCount, checkPositive, randomStart, stepDelta, type ResolvedThreat } from '../threat.ts';
import type { AdvLoopCommon } from './pgd_at.ts';
import { replaceResult, sharedBackwardSetup } from './shared_backward.ts';
import { clipPssiluBGrad, objectiveFromLogits } from './guards.ts';
import { withSurrogate } from './sat.ts';

/** f0 and the rest of the network: logits = rest(firstLayer.forward(x)). */
export interface YopoSplit {
  firstLayer: Module;
  rest: (z0: Tensor) => Tensor;
}

/**
 * The split of a Sequential model (or a model whose only child is a Sequential, like
 * SmallCnn and MadryMnist): f0 = the leading parameter-free layers (Normalize, Flatten)
 * plus the first Conv2d / Linear; rest = the remaining layers.
 */
export function splitFirstLayer(model: Module): YopoSplit {
  let seq: Sequential | null = model instanceof Sequential ? model : null;
  if (!seq) {
    const ch = model.children();
    if (ch.length === 1 && ch[0]![1] instanceof Sequential) seq = ch[0]![1];
  }
  const fail = (why: string): never => {
    throw new Error(`kinkless: YOPO: cannot find the first layer automatically (${why}); pass split: { firstLayer, rest }`);
  };
  if (!seq) return fail('the model is not a Sequential and has no single Sequential child');
  const layers = seq.layers;
  const k = layers.findIndex((l) => l instanceof Conv2d || l instanceof Linear);
  if (k < 0) return fail('no Conv2d or Linear layer');
  for (let i = 0; i < k; i++) if (layers[i]!.parameters().length) return fail(`layer ${i} before the first Conv2d/Linear has parameters`);
  const head = layers.slice(0, k + 1);
  const tail = layers.slice(k + 1);
  const f0 = head.length === 1 ? head[0]! : new Sequential(...head);
  return {
    firstLayer: f0,
    rest: (z0) => {
      let h = z0;
      for (const l of tail) h = l.forward(h);
      return h;
    },
  };
}

export interface YopoOptions extends AdvLoopCommon {
  eps: number;
  /** Outer iterations (full forward/backward passes) per batch. */
  m: number;
  /** Inner steps on H per outer iteration. */
  n: number;
  /** Inner step size. */
  sigma: number;
  bounds?: [number, number];
  /** eta ~ U(-eps, eps) (default true); false starts from zero. */
  randomStart?: boolean;
  seed?: number;
  /** The split (default: splitFirstLayer(model) on the first batch). */
  split?: YopoSplit;
}

export class Yopo implements TrainLoop {
  readonly name: string;
  readonly threat: ResolvedThreat;
  private readonly smooth: boolean | undefined;
  private readonly rng: RngState;
  private split: YopoSplit | null;
  private splitOf: Module | null = null;

  constructor(readonly opts: YopoOptions) {
    ({ smooth: this.smooth, threat: this.threat } = sharedBackwardSetup('Yopo', opts, () => 'linf'));
    checkCount('Yopo', 'm', opts.m, 1);
    checkCount('Yopo', 'n', opts.n, 1);
    checkPositive('Yopo', 'sigma', opts.sigma);
    checkCount('Yopo', 'seed', opts.seed ?? 0, 0);
    if (opts.split && (typeof opts.split.firstLayer?.forward !== 'function' || typeof opts.split.rest !== 'function')) {
      throw new Error('kinkless: Yopo: split must be { firstLayer: Module, rest: (z0) => logits }');
    }
    this.split = opts.split ?? null;
    this.rng = new RngState(opts.seed ?? 0);
    this.name = opts.name ?? `yopo-${opts.m}-${opts.n}(eps=${opts.eps}, sigma=${opts.sigma})`;
  }

  private getSplit(model: Module): YopoSplit {
    if (!this.opts.split && this.splitOf !== model) {
      this.split = splitFirstLayer(model);
      this.splitOf = model;
    }
    return this.split!;
  }

  trainBatch(ctx: TrainContext, x: Tensor, y: Tensor): BatchResult {
    const o = this.opts;
    const { firstLayer: f0, rest } = this.getSplit(ctx.model);
    const f0params = f0.parameters();
    const t = this.threat;
    const [lo, hi] = t.bounds;
    let eta = o.randomStart === false ? zeros(x.device, x.shape) : randomStart(x.device, x, t, (k) => this.rng.next(k));
    keep(eta);
    ctx.opt.zeroGrad();
    let out: BatchResult | null = null;
    try {
      for (let j = 0; j < o.m; j++) {
        const r = scope(() => {
          // Full pass: every parameter's gradient, and p = -dL/dz0.
          const xa = applyDelta(x, eta, t);
          o.observe?.(xa, j);
          const { z0, z0leaf, logits, lossSum, objective } = withSurrogate(ctx.model, this.smooth, () => {
            const z0 = f0.forward(xa);
            const z0leaf = clone(z0);
            z0leaf.requiresGrad = true;
            return { z0, z0leaf, ...objectiveFromLogits(ctx.model, rest(z0leaf), y, o.activationReg) };
          });
          backward(objective);
          const dz0 = z0leaf.grad ?? zeros(x.device, z0.shape);
          if (z0.requiresGrad) backward(z0, dz0);
          const p = noGrad(() => neg(dz0));
          // n inner steps on H with the parameters frozen (no weight-gradient work).
          let e = eta;
          const req = f0params.map((q) => q.requiresGrad);
          f0params.forEach((q) => (q.requiresGrad = false));
          try {
            for (let s = 0; s < o.n; s++) {
              const next = scope(() => {
                const leaf = clone(e);
                leaf.requiresGrad = true;
                const z = f0.forward(clamp(add(x, leaf), lo, hi));
                const [g] = grad(z, [leaf], p) as [Tensor];
                return stepDelta(x, e, sign(g), -o.sigma, t);
              });
              if (e !== eta) e.dispose();
              e = next;
            }
          } finally {
            f0params.forEach((q, i) => (q.requiresGrad = req[i]!));
          }
          // Backward of -H at the eta reached: f0's parameter gradients.
          const zf = f0.forward(applyDelta(x, e, t));
          if (zf.requiresGrad) backward(zf, noGrad(() => neg(p)));
          const correct = noGrad(() => accuracyCount(logits, y));
          return { lossSum, correct, e };
        });
        eta.dispose();
        eta = keep(r.e);
        out = replaceResult(out, { lossSum: r.lossSum, correct: r.correct });
      }
    } finally {
      eta.dispose();
    }
    if (o.activationReg?.bGradClip !== undefined) clipPssiluBGrad(ctx.model, o.activationReg.bGradClip);
    ctx.opt.step();
    // NOTE: the reported loss / correct count are those of the last outer pass.
    return out!;
  }
}
