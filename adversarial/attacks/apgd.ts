// APGD-CE (Croce & Hein 2020, "Reliable evaluation of adversarial robustness with an
// ensemble of diverse parameter-free attacks"), written from the paper's description:
// projected gradient ascent on the cross-entropy with momentum,
//   z = P(x_k + eta dir(grad f(x_k))),  x_{k+1} = P(x_k + a (z - x_k) + (1 - a)(x_k - x_{k-1}))
// (a = 0.75; the first step has no momentum), step size eta = 2 eps at the start, halved
// per example at checkpoints w_j when
//   (1) fewer than rho (w_j - w_{j-1}) of the steps since w_{j-1} increased f, or
//   (2) eta was not halved at w_{j-1} and the best f has not improved since w_{j-1};
// on halving, the example restarts from its best point. It returns, per example, the
// point with the highest f seen. All bookkeeping is per example on the GPU (masks, no
// readbacks); only the checkpoint schedule lives on the host.
import { Tensor, apgdReduceMask, clone, countIncrease, fill, gt, halveWhere, maximum, momentumMix, noGrad, scope, where, zerosLike } from '../../engine/index.ts';
import { dlrLoss, rankedClass } from '../../engine/ops/dlr.ts';
import type { Module } from '../../nn/module.ts';
import { applyDelta, ascentDirection, checkCount, projectDelta, randomStart, resolveThreat, stepDelta, type Norm } from '../threat.ts';
import { BaseAttack, disposeReplaced, keepBest, objectiveAndGrad, perExampleView, type AttackOptions, type Objective } from './common.ts';
import type { StepTrace } from './pgd.ts';
import { fmt } from './fgsm.ts';

/**
 * Checkpoint iterations w_0 = 0 < w_1 < ... <= nIter with w_j = ceil(p_j nIter),
 * p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06).
 * NOTE: ceil is taken of p_j * nIter - 1e-9 so that float noise in p_j (0.41 is
 * 0.41000000000000003) does not push an exact integer up by one.
 */
export function apgdCheckpoints(nIter: number): number[] {
  checkCount('apgdCheckpoints', 'nIter', nIter, 1);
  const p = [0, 0.22];
  while (true) {
    const n = p.length;
    const q = p[n - 1]! + Math.max(p[n - 1]! - p[n - 2]! - 0.03, 0.06);
    if (q > 1) break;
    p.push(q);
  }
  const w = p.map((v, i) => (i === 0 ? 0 : Math.ceil(v * nIter - 1e-9)));
  return w.filter((v, i) => i === 0 || (v > w[i - 1]! && v <= nIter));
}

export interface ApgdOptions extends AttackOptions {
  norm?: Norm;
  eps: number;
  /** Iterations (gradient steps), default 100. */
  steps?: number;
  /** Condition 1's fraction of increasing steps (default 0.75). */
  rho?: number;
  /** Momentum weight a (default 0.75). */
  momentum?: number;
  /** Random start in the ball (default true). */
  randomStart?: boolean;
  restarts?: number;
  bounds?: [number, number];
  trace?: (t: StepTrace & { eta: Tensor }) => void;
  /**
   * The objective: 'ce' (cross-entropy, default: APGD-CE), 'dlr' (the DLR loss: APGD-DLR) or
   * 'dlr-targeted' (the targeted DLR loss towards the class ranked `targetRank` in the clean
   * logits: one target of APGD-T). The labels are the true labels for the DLR losses.
   */
  loss?: ApgdLoss;
  /** With loss 'dlr-targeted': the target is the clean logits' class of this rank (2 = runner-up; default 2). */
  targetRank?: number;
}

export type ApgdLoss = 'ce' | 'dlr' | 'dlr-targeted';

interface State {
  [k: string]: Tensor | null;
  delta: Tensor; // current iterate
  prev: Tensor | null; // previous iterate (momentum)
  f: Tensor; // [N] objective at delta
  g: Tensor | null; // gradient at delta
  best: Tensor; // best iterate per example
  fBest: Tensor; // [N]
  gBest: Tensor | null;
  eta: Tensor; // [N, 1, ..] step sizes
  inc: Tensor; // [N] increasing steps since the last checkpoint
  fBestCheck: Tensor; // [N] fBest at the last checkpoint
  halvedCheck: Tensor; // [N] 1 where eta was halved at the last checkpoint
}

export class Apgd extends BaseAttack {
  readonly name: string;
  readonly steps: number;
  readonly rho: number;
  readonly momentum: number;
  readonly randomStart: boolean;
  readonly restarts: number;
  readonly checkpoints: number[];
  readonly loss: ApgdLoss;
  readonly targetRank: number;
  private objective?: Objective;
  private readonly trace?: ApgdOptions['trace'];

  constructor(opts: ApgdOptions) {
    super('APGD', resolveThreat({ norm: opts?.norm ?? 'linf', eps: opts?.eps, bounds: opts?.bounds }, 'APGD'), opts);
    this.steps = opts.steps ?? 100;
    checkCount('APGD', 'steps', this.steps, 1);
    this.rho = opts.rho ?? 0.75;
    this.momentum = opts.momentum ?? 0.75;
    for (const [k, v] of [['rho', this.rho], ['momentum', this.momentum]] as const) {
      if (typeof v !== 'number' || !(v >= 0 && v <= 1)) throw new Error(`kinkless: APGD: ${k} must be a number in [0, 1], got ${String(v)}`);
    }
    this.restarts = opts.restarts ?? 1;
    checkCount('APGD', 'restarts', this.restarts, 1);
    this.randomStart = opts.randomStart ?? true;
    this.trace = opts.trace;
    this.checkpoints = apgdCheckpoints(this.steps);
    this.loss = opts.loss ?? 'ce';
    if (!['ce', 'dlr', 'dlr-targeted'].includes(this.loss)) throw new Error(`kinkless: APGD: loss must be 'ce', 'dlr' or 'dlr-targeted', got ${JSON.stringify(opts.loss)}`);
    this.targetRank = opts.targetRank ?? 2;
    checkCount('APGD', 'targetRank', this.targetRank, 2);
    if (this.loss !== 'ce' && opts.targeted) throw new Error(`kinkless: APGD: targeted applies to loss 'ce' only; use loss 'dlr-targeted' for APGD-T`);
    const t = this.threat;
    const lossName = this.loss === 'ce' ? 'CE' : this.loss === 'dlr' ? 'DLR' : `T(rank ${this.targetRank})`;
    this.name = `APGD-${lossName}-${this.steps}${this.restarts > 1 ? `x${this.restarts}` : ''}(${t.norm}, eps=${fmt(t.eps)}${this.targeted ? ', targeted' : ''})`;
  }

  protected run(model: Module, x: Tensor, y: Tensor): Tensor {
    let targets: Tensor | null = null;
    if (this.loss === 'dlr') this.objective = (z) => dlrLoss(z, y);
    else if (this.loss === 'dlr-targeted') {
      const tg = noGrad(() => scope(() => rankedClass(model.forward(x), this.targetRank)));
      targets = tg;
      this.objective = (z) => dlrLoss(z, y, { targets: tg });
    }
    try {
      return this.runRestarts(model, x, y);
    } finally {
      targets?.dispose();
      this.objective = undefined;
    }
  }

  private runRestarts(model: Module, x: Tensor, y: Tensor): Tensor {
    let best: { delta: Tensor; obj: Tensor } | null = null;
    for (let r = 0; r < this.restarts; r++) {
      const cand = this.once(model, x, y, r);
      best = best ? keepBest(x, best, cand) : cand;
    }
    const xa = applyDelta(x, best!.delta, this.threat);
    best!.delta.dispose();
    best!.obj.dispose();
    return xa;
  }

  private once(model: Module, x: Tensor, y: Tensor, restart: number): { delta: Tensor; obj: Tensor } {
    const t = this.threat;
    const N = x.shape[0]!;
    const pshape = [N, ...x.shape.slice(1).map(() => 1)];
    let s: State = scope(() => {
      const delta = this.randomStart ? randomStart(x.device, x, t, this.nextKey) : zerosLike(x);
      const { obj, g } = objectiveAndGrad(model, x, delta, y, this.targeted, true, this.objective);
      return {
        delta,
        prev: null,
        f: obj,
        g,
        best: clone(delta),
        fBest: clone(obj),
        gBest: clone(g!),
        eta: fill(x.device, pshape, 2 * t.eps),
        inc: zerosLike(obj),
        fBestCheck: clone(obj),
        halvedCheck: zerosLike(obj),
      };
    });
    const checks = new Map<number, number>();
    for (let j = 1; j < this.checkpoints.length; j++) checks.set(this.checkpoints[j]!, this.checkpoints[j]! - this.checkpoints[j - 1]!);
    for (let k = 0; k < this.steps; k++) {
      const last = k === this.steps - 1;
      const next: State = scope(() => {
        this.trace?.({ restart, step: k, obj: s.f, delta: s.delta, eta: s.eta });
        const dir = ascentDirection(s.g!, t.norm);
        const z = stepDelta(x, s.delta, dir, s.eta, t);
        let delta: Tensor;
        if (!s.prev) delta = z;
        else {
          const a = this.momentum;
          const moved = momentumMix(s.delta, z, s.prev, a, 1 - a);
          delta = projectDelta(x, moved, t);
        }
        // NOTE: the last iterate's gradient is never used, so only its loss is computed.
        const { obj: f, g } = objectiveAndGrad(model, x, delta, y, this.targeted, !last, this.objective);
        const inc = countIncrease(s.inc, f, s.f);
        const im = perExampleView(gt(f, s.fBest), x);
        const best = where(im, delta, s.best);
        const gBest = g ? where(im, g, s.gBest!) : null;
        const fBest = maximum(f, s.fBest);
        let st: State = { delta, prev: s.delta, f, g, best, fBest, gBest, eta: s.eta, inc, fBestCheck: s.fBestCheck, halvedCheck: s.halvedCheck };
        const len = checks.get(k + 1);
        if (len !== undefined && !last) st = this.checkpoint(st, len, pshape);
        return st;
      });
      disposeReplaced(s, next);
      s = next;
    }
    if (this.trace) this.trace({ restart, step: this.steps, obj: s.f, delta: s.delta, eta: s.eta });
    const out = { delta: s.best, obj: s.fBest };
    disposeReplaced(s, out);
    return out;
  }

  /** Step-size rule at a checkpoint; returns the updated state (new tensors where changed). */
  private checkpoint(st: State, len: number, pshape: number[]): State {
    // reduce = (inc < rho * len) or (not halved last time and fBest <= fBest at the last check)
    const reduce = apgdReduceMask(st.inc, st.halvedCheck, st.fBestCheck, st.fBest, this.rho * len);
    const rm = reduce.view(pshape);
    const sel = (a: Tensor, b: Tensor) => where(rm, a, b);
    const out: State = {
      ...st,
      eta: halveWhere(rm, st.eta),
      delta: sel(st.best, st.delta),
      g: sel(st.gBest!, st.g!),
      f: where(reduce, st.fBest, st.f),
      inc: zerosLike(st.inc),
      fBestCheck: clone(st.fBest),
      halvedCheck: reduce,
    };
    return out;
  }
}

export function apgd(opts: ApgdOptions): Apgd {
  return new Apgd(opts);
}
