// Training-time guards and regularisers shared by the adversarial loops:
// - PSSiLU regularisation (Dai et al., PAF): the training objective adds weight * |b| for
//   every PSSiLU parameter tensor [a_raw, b_raw] (effective b = |b_raw|), and b's gradient
//   can be clipped to a maximum norm before the optimizer step (0.01 for PGD-AT in PAF);
// - optimizer parameter groups that put activation parameters (paramHint 'activation')
//   in their own group (own weight decay, lr scale, gradient-norm clipping);
// - the training objective every loop minimises (mean cross-entropy + regulariser);
// - the robust-overfitting guard (Rice et al.): robust accuracy on a held-out split after
//   each epoch, the best state dict kept in host memory, the best epoch reported;
// - chainHooks, to run several TrainHooks (CO detector, RO guard, logging) together.
import { Tensor, abs, add, clamp, keep, mul, sum, where } from '../../engine/index.ts';
import { softmaxCrossEntropy } from '../../engine/ops/loss.ts';
import { activationLayers } from '../../nn/activation.ts';
import { paramHint, type Module } from '../../nn/module.ts';
import type { ParamGroup } from '../../nn/optim.ts';
import type { NamedArray } from '../../nn/checkpoint.ts';
import type { ImageSet } from '../../nn/data/loader.ts';
import type { Device } from '../../engine/index.ts';
import type { Attack } from '../attacks/index.ts';
import { evaluateRobust } from '../eval.ts';
import type { EpochStats, TrainHooks } from '../trainer.ts';

// ---------------------------------------------------------------- PSSiLU regularisation

export interface ActivationRegOptions {
  /** The objective adds weight * |b| per PSSiLU parameter tensor (PAF: 10). */
  weight: number;
  /**
   * Clip b's gradient to this norm before the optimizer step (PAF: 0.01 for PGD-AT). Only
   * the b entry is clipped; a is left alone. (An optimizer group with maxGradNorm, see
   * activationParamGroups, clips the norm of [a, b] jointly instead.)
   */
  bGradClip?: number;
}

export function checkActivationReg(who: string, r: ActivationRegOptions | undefined): void {
  if (r === undefined) return;
  if (r === null || typeof r !== 'object') throw new Error(`kinkless: ${who}: activationReg must be { weight, bGradClip? }, got ${String(r)}`);
  if (typeof r.weight !== 'number' || !Number.isFinite(r.weight) || r.weight < 0) throw new Error(`kinkless: ${who}: activationReg.weight must be a finite number >= 0, got ${String(r.weight)}`);
  if (r.bGradClip !== undefined && (typeof r.bGradClip !== 'number' || !Number.isFinite(r.bGradClip) || r.bGradClip <= 0)) {
    throw new Error(`kinkless: ${who}: activationReg.bGradClip must be a finite number > 0, got ${String(r.bGradClip)}`);
  }
}

/** The distinct learnable PSSiLU parameter tensors [a_raw, b_raw] of a model (shared ones once). */
export function pssiluParams(model: Module): Tensor[] {
  const out = new Set<Tensor>();
  for (const l of activationLayers(model)) if (l.spec.kind === 'pssilu' && l.params) out.add(l.params);
  return [...out];
}

/** [0, 1]: selects b from [a, b] (a fresh tensor; the caller disposes it). */
function bMask(p: Tensor): Tensor {
  return Tensor.from(p.device, [0, 1], [2]);
}

/**
 * weight * sum over PSSiLU tensors of |b_raw| (= weight * b, since b = |b_raw|), recorded
 * for autograd (d/d b_raw = weight * sign(b_raw)). Throws when the model has no learnable
 * PSSiLU parameters: asking for the regulariser on such a model is a configuration error.
 */
export function activationRegTerm(model: Module, weight: number, who = 'activationReg'): Tensor {
  const ps = pssiluParams(model);
  if (!ps.length) throw new Error(`kinkless: ${who}: the model has no learnable PSSiLU activation parameters; activationReg applies to { kind: 'pssilu' } models only`);
  let acc: Tensor | null = null;
  for (const p of ps) {
    const m = bMask(p);
    const t = sum(mul(abs(p), m));
    acc = acc ? add(acc, t) : t;
  }
  return mul(acc!, weight);
}

/** Clip the b entry of every PSSiLU tensor's .grad to [-c, c] (the norm of a scalar). */
export function clipPssiluBGrad(model: Module, c: number): void {
  for (const p of pssiluParams(model)) {
    if (!p.grad) continue;
    const m = bMask(p);
    const clipped = clamp(p.grad, -c, c);
    const g = where(m, clipped, p.grad);
    clipped.dispose();
    m.dispose();
    p.grad.dispose();
    p.grad = keep(g);
  }
}

/**
 * The training objective of one forward: logits, lossSum (sum of per-example
 * cross-entropies, what BatchResult reports) and objective = scale * (lossSum / n + reg),
 * the scalar to backpropagate (scale = 1/K for FreeLB's accumulation).
 */
export function trainingObjective(model: Module, x: Tensor, y: Tensor, reg?: ActivationRegOptions, scale = 1): { logits: Tensor; lossSum: Tensor; objective: Tensor } {
  return objectiveFromLogits(model, model.forward(x), y, reg, scale);
}

/** trainingObjective from logits computed by the caller (YOPO's split forward). */
export function objectiveFromLogits(model: Module, logits: Tensor, y: Tensor, reg?: ActivationRegOptions, scale = 1): { logits: Tensor; lossSum: Tensor; objective: Tensor } {
  const lossSum = softmaxCrossEntropy(logits, y, { reduction: 'sum' });
  let objective = mul(lossSum, scale / logits.shape[0]!);
  if (reg && reg.weight > 0) objective = add(objective, mul(activationRegTerm(model, reg.weight), scale));
  return { logits, lossSum, objective };
}

// ---------------------------------------------------------------- optimizer groups

export interface ActivationGroupOptions {
  /** Gradient-norm clip for the activation group (norm over all its tensors). */
  maxGradNorm?: number;
  weightDecay?: number;
  lrScale?: number;
}

/**
 * Parameter groups for nn/optim: every parameter whose paramHint is 'activation' (the
 * learnable activation parameters, shared or per layer) in a group named 'activation'
 * with the given options, the rest in a group named 'model' (optimizer defaults). E.g.
 * PAF's PGD-AT: new SGD(activationParamGroups(model, { maxGradNorm: 0.01 }), {...}).
 */
export function activationParamGroups(model: Module, opts: ActivationGroupOptions = {}): ParamGroup[] {
  const params = model.parameters();
  const act = params.filter((p) => paramHint(p) === 'activation');
  const rest = params.filter((p) => paramHint(p) !== 'activation');
  const groups: ParamGroup[] = [];
  if (rest.length) groups.push({ params: rest, name: 'model' });
  if (act.length) groups.push({ params: act, name: 'activation', ...opts });
  return groups;
}

// ---------------------------------------------------------------- hooks

/** Run several hook sets in order; onEpoch stops when any of them returns 'stop'. */
export function chainHooks(...hooks: (TrainHooks | undefined)[]): TrainHooks {
  const hs = hooks.filter((h): h is TrainHooks => !!h);
  return {
    async onStep(info) {
      let stop = false;
      for (const h of hs) if ((await h.onStep?.(info)) === 'stop') stop = true;
      return stop ? 'stop' : undefined;
    },
    async onEpoch(stats) {
      let stop = false;
      for (const h of hs) if ((await h.onEpoch?.(stats)) === 'stop') stop = true;
      return stop ? 'stop' : undefined;
    },
  };
}

// ---------------------------------------------------------------- robust-overfitting guard

export interface RobustGuardOptions {
  /** The attack used for the held-out robust accuracy (e.g. PGD-10). */
  attack: Attack;
  /** Evaluate on the first `limit` held-out examples (default: all). */
  limit?: number;
  batchSize?: number;
  /** Stop when the robust accuracy has not improved for this many epochs (default: never). */
  patience?: number;
}

export interface GuardRecord {
  epoch: number;
  cleanAcc: number;
  robustAcc: number;
}

/**
 * Robust-overfitting guard: `onEpoch` (usable as TrainHooks.onEpoch) evaluates clean and
 * robust (per-example worst case) accuracy on the held-out split, adds them to the epoch
 * stats (valClean, valRobust, bestEpoch), and keeps the state dict of the best epoch in
 * host memory (ties keep the earlier epoch). restoreBest() loads it back.
 */
export class RobustOverfitGuard {
  readonly history: GuardRecord[] = [];
  best: GuardRecord | null = null;
  private bestState: Record<string, NamedArray> | null = null;

  constructor(
    private readonly device: Device,
    private readonly model: Module,
    private readonly heldOut: ImageSet,
    private readonly opts: RobustGuardOptions,
  ) {
    if (!opts || !opts.attack || typeof opts.attack.generate !== 'function') throw new Error('kinkless: RobustOverfitGuard: opts.attack must be an Attack');
    if (opts.patience !== undefined && (!Number.isInteger(opts.patience) || opts.patience < 1)) {
      throw new Error(`kinkless: RobustOverfitGuard: patience must be an integer >= 1, got ${String(opts.patience)}`);
    }
    if (!heldOut || heldOut.n === 0) throw new Error('kinkless: RobustOverfitGuard: the held-out split is empty');
  }

  onEpoch = async (stats: EpochStats): Promise<void | 'stop'> => {
    const r = await evaluateRobust(this.device, this.model, this.heldOut, { attacks: [this.opts.attack], limit: this.opts.limit, batchSize: this.opts.batchSize });
    const rec: GuardRecord = { epoch: stats.epoch, cleanAcc: r.clean.accuracy, robustAcc: r.worstCase.accuracy };
    this.history.push(rec);
    if (!this.best || rec.robustAcc > this.best.robustAcc) {
      this.best = rec;
      this.bestState = await this.model.stateDict();
    }
    stats.valClean = rec.cleanAcc;
    stats.valRobust = rec.robustAcc;
    stats.bestEpoch = this.best.epoch;
    if (this.opts.patience !== undefined && stats.epoch - this.best.epoch >= this.opts.patience) return 'stop';
  };

  /** As TrainHooks. */
  hooks(): TrainHooks {
    return { onEpoch: this.onEpoch };
  }

  /** Load the best epoch's parameters and buffers into the model; false when none was recorded. */
  restoreBest(): boolean {
    if (!this.bestState) return false;
    this.model.loadStateDict(this.bestState, `best epoch ${this.best!.epoch} (robust-overfitting guard)`);
    return true;
  }
}
