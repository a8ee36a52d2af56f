// FAB-T (Croce & Hein 2020, "Minimally distorted adversarial examples with a fast adaptive
// boundary attack"), targeted, as run by AutoAttack's standard version, written from the
// paper's description (docs/autoattack.md, "FAB-T"). Per target class t (the clean logits'
// classes of rank 2..nTargetClasses+1) and restart, from x1 = x0 (random start on restarts
// after the first), each step linearizes f = z_t - z_y at x1 and
//   d1 = proj(x1), d2 = proj(x0)  onto {z : f(x1) + g.(z - x1) = 0} within the box
//   alpha = min(||d1|| / (||d1|| + ||d2||), alphaMax)
//   x1 <- clip((1 - alpha)(x1 + eta d1) + alpha (x0 + eta d2))
// and where x1 misclassifies, it is recorded if closer than the best so far and pulled back
// to x0 + beta (x1 - x0). The result per example is the closest misclassified point over
// all targets and restarts. Everything stays on the GPU (masks, no readbacks) except the
// final read of the norms in minimumNorm().
import { Tensor, add, argmax, clamp, clone, div, exampleAxes, fabProjection, le, lt, maximum, minimum, mul, ne, noGrad, normPerExample, normalizePerExample, randomNormal, randomUniform, scope, sub, sum, takeAlongAxis, where } from '../../engine/index.ts';
import { rankedClass } from '../../engine/ops/dlr.ts';
import type { Module } from '../../nn/module.ts';
import { checkCount, checkPositive, resolveThreat, type Norm } from '../threat.ts';
import { BaseAttack, checkBatch, enterAttackMode, objectiveAndGrad, perExampleView, type AttackOptions } from './common.ts';
import { fmt } from './fgsm.ts';

export interface FabOptions extends Omit<AttackOptions, 'targeted'> {
  /** 'linf' (default) or 'l2'. */
  norm?: Norm;
  /** generate() keeps a point only when its distance to x is <= eps; also the random starts' scale. */
  eps: number;
  bounds?: [number, number];
  /** Iterations per target and restart (default 100). */
  steps?: number;
  /** Runs per target; the first starts at x, the others at random (default 1). */
  restarts?: number;
  /** Target classes: ranks 2..nTargetClasses+1 of the clean logits (default 9, at most C - 1). */
  nTargetClasses?: number;
  /**
   * Only the class of this rank in the clean logits (2 = runner-up, at most C) instead of
   * ranks 2..nTargetClasses+1: one target per attack, as the AutoAttack runner's stages use
   * it (each target then sees only the examples the previous targets left robust).
   */
  targetRank?: number;
  /** Largest weight of the step from x0 (default 0.1). */
  alphaMax?: number;
  /** Overshoot of the projections (default 1.05, >= 1). */
  eta?: number;
  /** Pull-back towards x0 after a success (default 0.9, in (0, 1]). */
  beta?: number;
}

/** Sentinel norm of "no adversarial point found" (read back as Infinity). */
const NONE = 1e30;
// NOTE: AutoAttack floors both projections' norms at 1e-8 before forming alpha, so a zero
// projection (x1 already on the hyperplane, or a zero gradient) gives alpha = 1/2 -> alphaMax, not 0/0.
const NORM_FLOOR = 1e-8;

/** Iterations between GPU waits in perturb() and minimumNorm(). */
const SYNC_EVERY = 10;

export class FabTargeted extends BaseAttack {
  readonly name: string;
  readonly steps: number;
  readonly restarts: number;
  readonly nTargetClasses: number;
  readonly targetRank: number | undefined;
  readonly alphaMax: number;
  readonly eta: number;
  readonly beta: number;

  constructor(opts: FabOptions) {
    super('FAB-T', resolveThreat({ norm: opts?.norm ?? 'linf', eps: opts?.eps, bounds: opts?.bounds }, 'FAB-T'), opts);
    if ((opts as AttackOptions).targeted !== undefined) throw new Error(`kinkless: FAB-T: 'targeted' is not an option (FAB-T picks its targets from the clean logits); got ${JSON.stringify((opts as AttackOptions).targeted)}`);
    this.steps = opts.steps ?? 100;
    checkCount('FAB-T', 'steps', this.steps, 1);
    this.restarts = opts.restarts ?? 1;
    checkCount('FAB-T', 'restarts', this.restarts, 1);
    this.nTargetClasses = opts.nTargetClasses ?? 9;
    checkCount('FAB-T', 'nTargetClasses', this.nTargetClasses, 1);
    this.targetRank = opts.targetRank;
    if (this.targetRank !== undefined && !(Number.isInteger(this.targetRank) && this.targetRank >= 2)) throw new Error(`kinkless: FAB-T: targetRank must be an integer >= 2 (2 = the runner-up class), got ${String(opts.targetRank)}`);
    this.alphaMax = opts.alphaMax ?? 0.1;
    this.eta = opts.eta ?? 1.05;
    this.beta = opts.beta ?? 0.9;
    if (typeof this.alphaMax !== 'number' || !(this.alphaMax >= 0 && this.alphaMax <= 1)) throw new Error(`kinkless: FAB-T: alphaMax must be a number in [0, 1], got ${String(opts.alphaMax)}`);
    checkPositive('FAB-T', 'eta', this.eta);
    if (this.eta < 1) throw new Error(`kinkless: FAB-T: eta must be >= 1 (an overshoot of the projection), got ${this.eta}`);
    if (typeof this.beta !== 'number' || !(this.beta > 0 && this.beta <= 1)) throw new Error(`kinkless: FAB-T: beta must be a number in (0, 1], got ${String(opts.beta)}`);
    const t = this.threat;
    this.name = `FAB-T-${this.steps}x${this.targetRank !== undefined ? `rank${this.targetRank}` : this.nTargetClasses}${this.restarts > 1 ? `x${this.restarts}` : ''}(${t.norm}, eps=${fmt(t.eps)})`;
  }

  protected run(model: Module, x: Tensor, y: Tensor): Tensor {
    return this.within(x, this.search(model, x, y));
  }

  /**
   * The same as generate, waiting for the GPU every SYNC_EVERY iterations.
   * NOTE: generate() queues the whole search (steps x targets x restarts iterations, about
   * 60 dispatches each) without a readback; on the software GPU a 100-step, 9-target search
   * on 234 MNIST images queued that way crashed the process with SIGSEGV in the driver
   * (measured), so the async paths wait for the GPU every SYNC_EVERY iterations. Runners (autoAttack) call perturb.
   */
  override async perturb(model: Module, x: Tensor, y: Tensor): Promise<Tensor> {
    checkBatch(this.name, x, y);
    const restore = enterAttackMode(model, this.bnMode);
    try {
      return this.within(x, await this.searchWaiting(model, x, y));
    } finally {
      restore();
    }
  }

  /** search(), waiting for the GPU every SYNC_EVERY iterations (see perturb's NOTE). */
  private async searchWaiting(model: Module, x: Tensor, y: Tensor): Promise<{ adv: Tensor; res: Tensor }> {
    const gen = this.searchSteps(model, x, y);
    for (let r = gen.next(); ; r = gen.next()) {
      if (r.done) return r.value;
      await x.device.sync();
    }
  }

  /** Keeps the best point where its distance is <= eps, else x; disposes the search result. */
  private within(x: Tensor, best: { adv: Tensor; res: Tensor }): Tensor {
    const out = noGrad(() => scope(() => where(perExampleView(le(best.res, this.threat.eps), x), best.adv, x)));
    best.adv.dispose();
    best.res.dispose();
    return out;
  }

  /**
   * The closest misclassified point found per example (x itself where x is already
   * misclassified; x where none was found) and its distance to x in the threat's norm
   * (Infinity where none was found). Reads the norms back once.
   */
  async minimumNorm(model: Module, x: Tensor, y: Tensor): Promise<{ xAdv: Tensor; norm: Float32Array }> {
    checkBatch(this.name, x, y);
    const restore = enterAttackMode(model, this.bnMode);
    let found: { adv: Tensor; res: Tensor };
    try {
      found = await this.searchWaiting(model, x, y);
    } finally {
      restore();
    }
    const { adv, res } = found;
    const r = await res.f32();
    res.dispose();
    return { xAdv: adv, norm: Float32Array.from(r, (v) => (v >= NONE ? Infinity : v)) };
  }

  /** Best point and its norm ([N]; NONE where none) over all targets and restarts. */
  private search(model: Module, x: Tensor, y: Tensor): { adv: Tensor; res: Tensor } {
    const gen = this.searchSteps(model, x, y);
    for (let r = gen.next(); ; r = gen.next()) if (r.done) return r.value;
  }

  /** The search as a generator that yields every SYNC_EVERY iterations (the caller may wait for the GPU there). */
  private *searchSteps(model: Module, x: Tensor, y: Tensor): Generator<void, { adv: Tensor; res: Tensor }, void> {
    const N = x.shape[0]!;
    const logits = noGrad(() => scope(() => model.forward(x)));
    if (logits.rank !== 2 || logits.shape[0] !== N) throw new Error(`kinkless: FAB-T: the model must map [N, ...] to logits [N, C], got ${logits.shape.join('x')}`);
    const C = logits.shape[1]!;
    if (C < 2) throw new Error(`kinkless: FAB-T: needs at least 2 classes, got logits [${N}, ${C}]`);
    let best = noGrad(() =>
      scope(() => {
        const fooled = ne(argmax(logits, -1), y);
        return { adv: clone(x), res: where(fooled, 0, NONE) };
      }),
    );
    const n = Math.min(this.nTargetClasses, C - 1);
    if (this.targetRank !== undefined && this.targetRank > C) throw new Error(`kinkless: FAB-T: targetRank ${this.targetRank} exceeds the number of classes ${C}`);
    const ranks = this.targetRank !== undefined ? [this.targetRank] : Array.from({ length: n }, (_, i) => i + 2);
    try {
      for (const rank of ranks) {
        const target = noGrad(() => rankedClass(logits, rank));
        try {
          for (let k = 0; k < this.restarts; k++) best = yield* this.once(model, x, y, target, k > 0, best);
        } finally {
          target.dispose();
        }
      }
    } catch (e) {
      best.adv.dispose();
      best.res.dispose();
      throw e;
    } finally {
      logits.dispose();
    }
    return best;
  }

  /** x0 + (eps / 2) u / ||u|| (u uniform in [-1, 1]^d for L-inf, Gaussian for L2), clipped. */
  private randomStart(x: Tensor): Tensor {
    const t = this.threat;
    return noGrad(() =>
      scope(() => {
        const u = t.norm === 'linf' ? randomUniform(x.device, x.shape, { ...this.nextKey(x.size), lo: -1, hi: 1 }) : randomNormal(x.device, x.shape, { ...this.nextKey(x.size) });
        const dir = normalizePerExample(u, normPerExample(u, t.norm));
        return clamp(add(x, mul(dir, 0.5 * t.eps)), t.bounds[0], t.bounds[1]);
      }),
    );
  }

  /** One run towards the targets `target` [N]; returns the updated best (the old one is disposed). */
  private *once(model: Module, x0: Tensor, y: Tensor, target: Tensor, randomStart: boolean, best: { adv: Tensor; res: Tensor }): Generator<void, { adv: Tensor; res: Tensor }, void> {
    const t = this.threat;
    const [lo, hi] = t.bounds;
    const ax = exampleAxes(x0);
    const objective = (z: Tensor) => sub(takeAlongAxis(z, target, -1), takeAlongAxis(z, y, -1));
    let s = { x1: randomStart ? this.randomStart(x0) : noGrad(() => clone(x0)), adv: best.adv, res: best.res };
    for (let k = 0; k < this.steps; k++) {
      const next = scope(() => {
        // f = z_t - z_y at x1 and its gradient g: the boundary's linearization is f + g.(z - x1) = 0.
        const { obj: f, g } = objectiveAndGrad(model, s.x1, null, y, false, true, objective);
        return noGrad(() => {
          const c0 = add(f, sum(mul(g!, sub(x0, s.x1)), ax)); // its value at x0
          const d1 = fabProjection(s.x1, g!, f, { norm: t.norm, bounds: t.bounds });
          const d2 = fabProjection(x0, g!, c0, { norm: t.norm, bounds: t.bounds });
          const a1 = maximum(normPerExample(d1, t.norm), NORM_FLOOR);
          const a2 = maximum(normPerExample(d2, t.norm), NORM_FLOOR);
          const alpha = minimum(maximum(div(a1, add(a1, a2)), 0), this.alphaMax);
          const moved = add(mul(add(s.x1, mul(d1, this.eta)), sub(1, alpha)), mul(add(x0, mul(d2, this.eta)), alpha));
          const x1 = clamp(moved, lo, hi);
          const isAdv = ne(argmax(model.forward(x1), -1), y);
          const dist = normPerExample(sub(x1, x0), t.norm).view([x0.shape[0]!]);
          const better = mul(isAdv, lt(dist, s.res));
          return {
            adv: where(perExampleView(better, x0), x1, s.adv),
            res: where(better, dist, s.res),
            x1: where(perExampleView(isAdv, x0), add(x0, mul(sub(x1, x0), this.beta)), x1),
          };
        });
      });
      for (const v of [s.x1, s.adv, s.res]) v.dispose();
      s = next;
      if ((k + 1) % SYNC_EVERY === 0) yield;
    }
    s.x1.dispose();
    return { adv: s.adv, res: s.res };
  }
}

export function fabTargeted(opts: FabOptions): FabTargeted {
  return new FabTargeted(opts);
}
