// Fast adversarial training, FGSM with a random start (Wong et al. 2020): delta_0 ~
// U(-eps, eps) clipped to the box, ONE signed-gradient step of size alpha (default
// 1.25 eps), projection onto the ball and the box; then one optimizer step on the
// adversarial batch. (That is PGD-1 from a random start, so the attack is a Pgd.)
// With a catastrophic-overfitting (CO) detector: every `every` steps the loop measures,
// on a probe batch (the current training batch, or a fixed held-out batch) in eval mode,
// the accuracy under PGD and under FGSM, before the step's update. The counts stay on
// the GPU; flush() (run by the loop's hooks) reads them and updates the detector, which
// fires when the PGD accuracy falls sharply from its best while FGSM accuracy stays far
// above it, or when FGSM accuracy stays far above PGD accuracy for several checks in a row
// (the gradient-masking signature, also in runs that never became robust). The parameters at the best PGD check can be
// kept on the GPU and restored (Wong's early stop returns the pre-collapse model).
import { Tensor, keep, noGrad, scope } from '../../engine/index.ts';
import { slice } from '../../engine/ops/layout.ts';
import { accuracyCount } from '../../engine/ops/loss.ts';
import type { BatchResult, TrainContext, TrainHooks, TrainLoop } from '../trainer.ts';
import { Fgsm, Pgd, withAttackMode, type BnMode } from '../attacks/index.ts';
import type { Module } from '../../nn/module.ts';
import { checkCount, checkPositive } from '../threat.ts';
import { checkBnMode, checkCommon, checkOptions, outerStep, type AdvLoopCommon } from './pgd_at.ts';
import { withSurrogate } from './sat.ts';

// ---------------------------------------------------------------- the detector (pure)

export interface CoDetectorOptions {
  /** Fire when PGD accuracy falls below fraction * best (default 0.5) ... */
  fraction?: number;
  /** ... or at least `drop` below its best (default 0.2; Wong's per-epoch rule) ... */
  drop?: number;
  /** ... AND the FGSM accuracy exceeds the PGD accuracy by at least `gap` (default 0.2; 0 disables). */
  gap?: number;
  /** Only once the best PGD accuracy reached this (default 0.1): early noise is not a collapse. */
  minBest?: number;
  /**
   * Second rule, for runs that mask gradients before they ever become robust (MNIST at
   * eps 0.3): fire when FGSM accuracy exceeds PGD accuracy by at least `maskGap`
   * (default 0.3; 0 disables) on `maskChecks` consecutive checks (default 3).
   */
  maskGap?: number;
  maskChecks?: number;
}

export interface CoCheck {
  step: number;
  pgdAcc: number;
  fgsmAcc: number;
}

export interface CoState {
  coDetected: boolean;
  /** The check that fired (null until then). */
  detectedAt: CoCheck | null;
  /** Best PGD accuracy so far and its check. */
  best: CoCheck | null;
  /** The latest check. */
  last: CoCheck | null;
  history: CoCheck[];
}

function fracOpt(who: string, name: string, v: number | undefined, def: number): number {
  if (v === undefined) return def;
  if (typeof v !== 'number' || !(v >= 0 && v <= 1)) throw new Error(`kinkless: ${who}: ${name} must be a number in [0, 1], got ${String(v)}`);
  return v;
}

/** Catastrophic-overfitting detector over a sequence of (step, PGD acc, FGSM acc) checks. */
export class CoDetector {
  readonly fraction: number;
  readonly drop: number;
  readonly gap: number;
  readonly minBest: number;
  readonly maskGap: number;
  readonly maskChecks: number;
  private gapRun = 0;
  readonly state: CoState = { coDetected: false, detectedAt: null, best: null, last: null, history: [] };

  constructor(opts: CoDetectorOptions = {}) {
    this.fraction = fracOpt('CoDetector', 'fraction', opts.fraction, 0.5);
    this.drop = fracOpt('CoDetector', 'drop', opts.drop, 0.2);
    this.gap = fracOpt('CoDetector', 'gap', opts.gap, 0.2);
    this.minBest = fracOpt('CoDetector', 'minBest', opts.minBest, 0.1);
    this.maskGap = fracOpt('CoDetector', 'maskGap', opts.maskGap, 0.3);
    const mc = opts.maskChecks ?? 3;
    if (!Number.isInteger(mc) || mc < 1) throw new Error(`kinkless: CoDetector: maskChecks must be an integer >= 1, got ${String(mc)}`);
    this.maskChecks = mc;
  }

  get coDetected(): boolean {
    return this.state.coDetected;
  }

  /** Record a check; returns true when this check fires (only the first firing is recorded). */
  observe(c: CoCheck): boolean {
    for (const k of ['pgdAcc', 'fgsmAcc'] as const) {
      if (!(c[k] >= 0 && c[k] <= 1)) throw new Error(`kinkless: CoDetector: ${k} must be in [0, 1], got ${String(c[k])}`);
    }
    const s = this.state;
    s.history.push(c);
    s.last = c;
    const best = s.best;
    const collapse =
      best !== null &&
      best.pgdAcc >= this.minBest &&
      (c.pgdAcc < this.fraction * best.pgdAcc || c.pgdAcc <= best.pgdAcc - this.drop) &&
      c.fgsmAcc - c.pgdAcc >= this.gap;
    this.gapRun = this.maskGap > 0 && c.fgsmAcc - c.pgdAcc >= this.maskGap ? this.gapRun + 1 : 0;
    const fires = collapse || this.gapRun >= this.maskChecks;
    if (!best || c.pgdAcc > best.pgdAcc) s.best = c;
    if (fires && !s.coDetected) {
      s.coDetected = true;
      s.detectedAt = c;
      return true;
    }
    return false;
  }
}

// ---------------------------------------------------------------- the loop

export interface FastAtCoOptions extends CoDetectorOptions {
  /** Check every N global steps (at steps 0, N, 2N, ...). */
  every: number;
  /** Probe batch (default: the current training batch). */
  probe?: { x: Tensor; y: Tensor };
  /** Use only the first `probeSize` examples of the training batch (default: all). */
  probeSize?: number;
  /** PGD of the check (default 10 steps, alpha = eps/4, random start, 1 restart). */
  pgdSteps?: number;
  pgdAlpha?: number;
  pgdRestarts?: number;
  /** Return 'stop' from the hooks once CO is detected (default true). */
  earlyStop?: boolean;
  /** Keep the parameters/buffers of the best PGD check on the GPU for restoreBest() (default true). */
  keepBest?: boolean;
}

export interface FastAtOptions extends AdvLoopCommon {
  eps: number;
  /** Step size (default 1.25 eps, Wong). */
  alpha?: number;
  /** Batch-norm mode during the attack (default 'train', as in FAST's code). */
  bnMode?: BnMode;
  bounds?: [number, number];
  seed?: number;
  /** Catastrophic-overfitting detection (off when omitted). */
  co?: FastAtCoOptions;
}

interface Pending {
  step: number;
  n: number;
  pgd: Tensor;
  fgsm: Tensor;
  snapshot: Tensor[] | null;
}

export class FastAt implements TrainLoop {
  readonly name: string;
  readonly attack: Pgd;
  readonly detector: CoDetector | null;
  private readonly checkPgd: Pgd | null = null;
  private readonly checkFgsm: Fgsm | null = null;
  private pending: Pending[] = [];
  private best: { step: number; snapshot: Tensor[] } | null = null;
  private model: Module | null = null;

  constructor(readonly opts: FastAtOptions) {
    checkOptions('FastAt', opts);
    checkCommon('FastAt', opts);
    checkBnMode('FastAt', opts.bnMode, false);
    checkPositive('FastAt', 'eps', opts.eps);
    const alpha = opts.alpha ?? 1.25 * opts.eps;
    checkPositive('FastAt', 'alpha', alpha);
    this.attack = new Pgd({ eps: opts.eps, alpha, steps: 1, randomStart: true, bounds: opts.bounds, bnMode: opts.bnMode ?? 'train', seed: opts.seed });
    this.name = opts.name ?? `fast-at(eps=${opts.eps}, alpha=${alpha})`;
    const co = opts.co;
    this.detector = co ? new CoDetector(co) : null;
    if (co) {
      checkCount('FastAt', 'co.every', co.every, 1);
      if (co.probeSize !== undefined) checkCount('FastAt', 'co.probeSize', co.probeSize, 1);
      const steps = co.pgdSteps ?? 10;
      checkCount('FastAt', 'co.pgdSteps', steps, 1);
      this.checkPgd = new Pgd({ eps: opts.eps, alpha: co.pgdAlpha ?? opts.eps / 4, steps, restarts: co.pgdRestarts ?? 1, bounds: opts.bounds, bnMode: 'eval', seed: (opts.seed ?? 0) + 1 });
      this.checkFgsm = new Fgsm({ eps: opts.eps, bounds: opts.bounds, bnMode: 'eval' });
    }
  }

  /** Detector state for reports: coDetected, the firing check (step, accuracies), history. */
  get coState(): CoState | null {
    return this.detector?.state ?? null;
  }

  trainBatch(ctx: TrainContext, x: Tensor, y: Tensor): BatchResult {
    const co = this.opts.co;
    if (co && ctx.step % co.every === 0) this.queueCheck(ctx, x, y);
    const xAdv = withSurrogate(ctx.model, this.opts.attackerSmooth, () => this.attack.generate(ctx.model, x, y));
    return outerStep(ctx, xAdv, y, this.opts);
  }

  /** Queue a PGD/FGSM accuracy check of the current parameters on the probe (GPU only). */
  private queueCheck(ctx: TrainContext, x: Tensor, y: Tensor): void {
    const co = this.opts.co!;
    this.model = ctx.model;
    const model = ctx.model;
    const counts = scope(() => {
      let px = co.probe?.x ?? x;
      let py = co.probe?.y ?? y;
      if (!co.probe && co.probeSize !== undefined && co.probeSize < x.shape[0]!) {
        const k = co.probeSize;
        px = slice(x, [0], [k]);
        py = slice(y, [0], [k]);
      }
      // NOTE: the checks use the attacker's surrogate switch, like the training attack.
      const acc = (adv: Tensor) => withAttackMode(model, 'eval', () => noGrad(() => accuracyCount(model.forward(adv), py)));
      const pgd = acc(withSurrogate(model, this.opts.attackerSmooth, () => this.checkPgd!.generate(model, px, py)));
      const fgsm = acc(withSurrogate(model, this.opts.attackerSmooth, () => this.checkFgsm!.generate(model, px, py)));
      return { pgd: keep(pgd), fgsm: keep(fgsm), n: px.shape[0]! };
    });
    const snapshot = co.keepBest === false ? null : snapshotState(model);
    this.pending.push({ step: ctx.step, n: counts.n, pgd: counts.pgd, fgsm: counts.fgsm, snapshot });
  }

  /** Read back the queued checks and update the detector. Returns the detector state. */
  async flush(): Promise<CoState | null> {
    const pend = this.pending;
    this.pending = [];
    for (const p of pend) {
      const pgdAcc = (await p.pgd.item()) / p.n;
      const fgsmAcc = (await p.fgsm.item()) / p.n;
      p.pgd.dispose();
      p.fgsm.dispose();
      const prevBest = this.detector!.state.best;
      this.detector!.observe({ step: p.step, pgdAcc, fgsmAcc });
      const isBest = this.detector!.state.best !== prevBest;
      if (p.snapshot) {
        if (isBest) {
          this.best?.snapshot.forEach((t) => t.dispose());
          this.best = { step: p.step, snapshot: p.snapshot };
        } else p.snapshot.forEach((t) => t.dispose());
      }
    }
    return this.coState;
  }

  /**
   * Hooks for train(): flush at every logged step and at each epoch end; onEpoch adds
   * coDetected (0/1), coPgdAcc, coFgsmAcc (latest check) and coStep (-1 until detected)
   * to the epoch stats and returns 'stop' (from onStep or onEpoch) once CO is detected
   * (when earlyStop).
   */
  hooks(): TrainHooks {
    return {
      onStep: async () => {
        const s = await this.flush();
        if (s?.coDetected && this.opts.co!.earlyStop !== false) return 'stop';
      },
      onEpoch: async (stats) => {
        const s = await this.flush();
        if (!s) return;
        stats.coDetected = s.coDetected ? 1 : 0;
        stats.coStep = s.detectedAt?.step ?? -1;
        if (s.last) {
          stats.coPgdAcc = s.last.pgdAcc;
          stats.coFgsmAcc = s.last.fgsmAcc;
        }
        if (s.coDetected && this.opts.co!.earlyStop !== false) return 'stop';
      },
    };
  }

  /** Step of the kept best-PGD parameters (null when none). */
  get bestStep(): number | null {
    return this.best?.step ?? null;
  }

  /** Copy the parameters/buffers of the best PGD check back into the model; false when none kept. */
  restoreBest(): boolean {
    if (!this.best || !this.model) return false;
    const targets = stateTensors(this.model);
    targets.forEach((t, i) => t.device.queue.copy(this.best!.snapshot[i]!.buffer, 0, t.buffer, 0, t.size * 4));
    return true;
  }

  /** Free the queued checks and the kept snapshot. */
  dispose(): void {
    for (const p of this.pending) {
      p.pgd.dispose();
      p.fgsm.dispose();
      p.snapshot?.forEach((t) => t.dispose());
    }
    this.pending = [];
    this.best?.snapshot.forEach((t) => t.dispose());
    this.best = null;
  }
}

function stateTensors(model: Module): Tensor[] {
  return [...model.namedParameters().map(([, t]) => t), ...model.namedBuffers().map(([, t]) => t)];
}

/** GPU copies of every parameter and buffer (kept out of scopes). */
function snapshotState(model: Module): Tensor[] {
  return stateTensors(model).map((t) => {
    const c = keep(Tensor.empty(t.device, t.shape, t.dtype));
    t.device.queue.copy(t.buffer, 0, c.buffer, 0, t.size * 4);
    return c;
  });
}
