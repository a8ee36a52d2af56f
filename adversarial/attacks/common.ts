// What every attack shares: the Attack interface, the options common to all attacks
// (batch-norm mode during the attack, targeted, seed), the objective and its input
// gradient (a functional grad() of the SUM of per-example cross-entropies, so each
// example's gradient is independent of the batch size), the model-state guard that
// restores train/eval flags and parameters' requiresGrad afterwards, and per-example
// best-of selection for restarts. All of it stays on the GPU: no readbacks.
import { Tensor, add, clone, detach, full, grad, gt, maximum, neg, noGrad, scope, sum, where, zerosLike } from '../../engine/index.ts';
import { softmaxCrossEntropy } from '../../engine/ops/loss.ts';
import { RngState } from '../../engine/ops/random.ts';
import { saveModes, type Module } from '../../nn/module.ts';
import { checkCount, type ResolvedThreat } from '../threat.ts';

/**
 * Batch-norm (and dropout) mode while attacking: 'eval' uses running statistics and
 * never updates them (SAT, PAF); 'train' uses batch statistics (FAST, RO).
 * NOTE: like PyTorch's model.train() during the attack, 'train' also updates the running
 * statistics at every forward pass of the attack.
 */
export type BnMode = 'eval' | 'train';

export interface AttackOptions {
  /** Model mode during the attack (default 'eval'); the previous mode is restored after. */
  bnMode?: BnMode;
  /**
   * Targeted attack: the labels passed to perturb() are the TARGET classes and the attack
   * descends on their cross-entropy (advertorch's convention). Default false.
   */
  targeted?: boolean;
  /** Seed of the attack's random starts (a Philox stream; successive calls draw fresh values). */
  seed?: number;
}

export interface Attack {
  readonly name: string;
  readonly threat: ResolvedThreat;
  /**
   * Adversarial examples for the batch x [N, ...] in the threat's box, labels y i32 [N]
   * (targets when targeted). Queues GPU work only (no readback), so training loops can
   * call it synchronously. The result is a fresh tensor owned by the caller.
   */
  generate(model: Module, x: Tensor, y: Tensor): Tensor;
  /** The same as generate, as a Promise (the interface of the architecture sketch). */
  perturb(model: Module, x: Tensor, y: Tensor): Promise<Tensor>;
}

/** The per-example objective the attacker maximises, and its gradient w.r.t. the input. */
export interface ObjectiveGrad {
  /** [N]: CE(x_adv, y), or -CE(x_adv, target) for targeted attacks. */
  obj: Tensor;
  /** d(sum obj)/d(x_adv), shaped like x (null when not asked for). */
  g: Tensor | null;
}

/**
 * Objective at x + delta (delta null: at x) and, when wantGrad, its gradient. The input is
 * a fresh leaf, so the gradient is functional (grad(), never .grad) and the loss is the
 * sum over examples. A model whose output does not depend on its input gets zeros.
 */
export function objectiveAndGrad(model: Module, x: Tensor, delta: Tensor | null, y: Tensor, targeted: boolean, wantGrad: boolean, objective?: Objective): ObjectiveGrad {
  if (objective) return customObjectiveAndGrad(model, x, delta, objective, wantGrad);
  return scope(() => {
    const xa = noGrad(() => (delta ? add(x, delta) : clone(x)));
    if (!wantGrad) {
      return noGrad(() => {
        const ce = softmaxCrossEntropy(model.forward(xa), y, { reduction: 'none' });
        return { obj: targeted ? neg(ce) : ce, g: null };
      });
    }
    xa.requiresGrad = true;
    const ce = softmaxCrossEntropy(model.forward(xa), y, { reduction: 'none' });
    const total = sum(ce);
    let g: Tensor;
    if (!total.requiresGrad) g = zerosLike(x);
    else [g] = grad(total, [xa], targeted ? full(x.device, [], -1) : undefined) as [Tensor];
    const obj = noGrad(() => (targeted ? neg(ce) : clone(ce)));
    return { obj, g };
  });
}

/** A per-example objective [N] of the logits, to maximise (e.g. a DLR loss). */
export type Objective = (logits: Tensor) => Tensor;

/** objectiveAndGrad with a caller-given objective of the logits (maximised as given). */
function customObjectiveAndGrad(model: Module, x: Tensor, delta: Tensor | null, objective: Objective, wantGrad: boolean): ObjectiveGrad {
  return scope(() => {
    const xa = noGrad(() => (delta ? add(x, delta) : clone(x)));
    if (!wantGrad) return noGrad(() => ({ obj: objective(model.forward(xa)), g: null }));
    xa.requiresGrad = true;
    const obj = objective(model.forward(xa));
    const total = sum(obj);
    const g = total.requiresGrad ? (grad(total, [xa]) as [Tensor])[0] : zerosLike(x);
    return { obj: detach(obj), g };
  });
}

/** [N] -> [N, 1, ..., 1] matching x's rank (a view; dispose it after use). */
export function perExampleView(t: Tensor, x: Tensor): Tensor {
  return t.view([x.shape[0]!, ...x.shape.slice(1).map(() => 1)]);
}

/**
 * Run fn with the model in the attack's mode and every parameter's requiresGrad off, then
 * restore each module's own training flag and each parameter's requiresGrad. With the
 * parameters frozen the tape never records a path into them: no weight-gradient work is
 * done and nothing can reach their .grad.
 */
export function withAttackMode<T>(model: Module, bnMode: BnMode, fn: () => T): T {
  const restore = enterAttackMode(model, bnMode);
  try {
    return fn();
  } finally {
    restore();
  }
}

/**
 * The first half of withAttackMode, for attacks that await readbacks (Square): put the
 * model in the attack's mode with every parameter's requiresGrad off, and return the
 * function that restores each module's training flag and each parameter's requiresGrad.
 */
export function enterAttackMode(model: Module, bnMode: BnMode): () => void {
  const restoreModes = saveModes(model);
  const params = model.parameters();
  const req = params.map((p) => p.requiresGrad);
  model.train(bnMode === 'train');
  for (const p of params) p.requiresGrad = false;
  return () => {
    restoreModes();
    params.forEach((p, i) => (p.requiresGrad = req[i]!));
  };
}

/** Validate the (x, y) pair every attack receives. */
export function checkBatch(who: string, x: Tensor, y: Tensor): void {
  if (x.dtype !== 'f32' || x.rank < 2) throw new Error(`kinkless: ${who}: x must be an f32 tensor [N, ...], got ${x.dtype} [${x.shape.join(', ')}]`);
  if (y.dtype !== 'i32' || y.rank !== 1 || y.shape[0] !== x.shape[0]) {
    throw new Error(`kinkless: ${who}: y must be an i32 tensor [${x.shape[0]}] of labels, got ${y.dtype} [${y.shape.join(', ')}]`);
  }
  if (x.device !== y.device) throw new Error(`kinkless: ${who}: x and y live on different devices`);
}

/** Shared plumbing: option checks, the random stream, mode handling and the async wrapper. */
export abstract class BaseAttack implements Attack {
  abstract readonly name: string;
  readonly threat: ResolvedThreat;
  readonly bnMode: BnMode;
  readonly targeted: boolean;
  protected readonly rng: RngState;

  constructor(who: string, threat: ResolvedThreat, opts: AttackOptions) {
    this.threat = threat;
    const bn = opts.bnMode ?? 'eval';
    if (bn !== 'eval' && bn !== 'train') throw new Error(`kinkless: ${who}: bnMode must be 'eval' or 'train', got ${JSON.stringify(bn)}`);
    this.bnMode = bn;
    this.targeted = !!opts.targeted;
    const seed = opts.seed ?? 0;
    checkCount(who, 'seed', seed, 0);
    this.rng = new RngState(seed);
  }

  /** Produce x_adv (called with the model already in attack mode). */
  protected abstract run(model: Module, x: Tensor, y: Tensor): Tensor;

  generate(model: Module, x: Tensor, y: Tensor): Tensor {
    checkBatch(this.name, x, y);
    return withAttackMode(model, this.bnMode, () => this.run(model, x, y));
  }

  async perturb(model: Module, x: Tensor, y: Tensor): Promise<Tensor> {
    return this.generate(model, x, y);
  }

  /** Disjoint random-stream keys for random starts. */
  protected nextKey = (n: number): { seed: number; offset: number } => this.rng.next(n);
}

/** Dispose the tensors of `old` that `next` does not carry over. */
export function disposeReplaced(old: Record<string, Tensor | null>, next: Record<string, Tensor | null>): void {
  const keepSet = new Set(Object.values(next));
  for (const t of Object.values(old)) if (t && !keepSet.has(t)) t.dispose();
}

/**
 * Per-example best of several candidate perturbations: keeps, for each example, the
 * candidate with the higher objective (the current best on ties). Disposes the losers'
 * tensors and returns the new best pair.
 */
export function keepBest(x: Tensor, best: { delta: Tensor; obj: Tensor }, cand: { delta: Tensor; obj: Tensor }): { delta: Tensor; obj: Tensor } {
  const next = noGrad(() =>
    scope(() => {
      const m = perExampleView(gt(cand.obj, best.obj), x);
      return { delta: where(m, cand.delta, best.delta), obj: maximum(cand.obj, best.obj) };
    }),
  );
  for (const t of [best.delta, best.obj, cand.delta, cand.obj]) t.dispose();
  return next;
}
