// One `reproduce sat` job (one network, one seed): train with fast-AT, evaluate clean /
// FGSM / PGD / APGD-CE with per-image outcomes (plus AutoAttack with `--eval autoattack`),
// the robust-vs-eps curve points, and write
// jobs/<id>.json plus the checkpoint <id>.safetensors into the run directory. A job file is
// all that `kinkless merge` needs; timings live in it apart from the measured outcomes.
import { existsSync, readFileSync } from 'node:fs';
import { Tensor, type Device } from '../engine/index.ts';
import { autoAttack } from '../adversarial/autoattack.ts';
import { evaluateRobust, type RobustReport } from '../adversarial/eval.ts';
import { Fgsm, Pgd, Apgd } from '../adversarial/attacks/index.ts';
import { outcomeBits, unbits } from '../adversarial/stats_report.ts';
import { SmallCnn } from '../nn/models/small_cnn.ts';
import type { ImageSet } from '../nn/data/loader.ts';
import { trainRun, type Interrupt } from './train_run.ts';
import type { RunDir } from './rundir.ts';
import { Progress } from './progress.ts';
import type { SatJob, SatPlan } from './sat_protocol.ts';

export interface Outcome {
  name: string;
  correct: number;
}

export interface CurvePoint {
  eps: number;
  n: number;
  correct: number;
}

/** What one job measured; deterministic for a given plan and job (no timings). */
export interface JobResult {
  id: string;
  planHash: string;
  train: {
    steps: number;
    epochs: { epoch: number; trainLoss: number; trainAcc: number; testAcc: number | null; lr: number }[];
    coDetected: boolean | null;
    restoredStep: number | null;
  };
  eval: {
    n: number;
    clean: Outcome;
    /** FGSM, PGD-k, APGD-CE, in that order. */
    attacks: Outcome[];
    worstCase: Outcome;
    /** Per image of the evaluation, '1' correct / '0' wrong (for paired tests). */
    perImage: { clean: string; attacks: string[]; worstCase: string };
    /** With `--eval autoattack`: the runner on the same images (counts only, no timings). */
    autoattack?: JobAutoAttack;
  };
  /** Robust accuracy against eps: eps 0 (clean), eps/2, eps, 2 eps. */
  curve: CurvePoint[];
}

export interface JobAutoAttack {
  sequence: string[];
  /** Images robust to every stage (and correct clean). */
  correct: number;
  /** Per image, '1' robust. */
  perImage: string;
  stages: { label: string; attacked: number; broken: number; violations: number }[];
  /** Images broken only by a gradient-free stage, and the warning sentence. */
  masking: number;
  warning: string | null;
}

export interface JobFile {
  result: JobResult;
  timing: { trainSeconds: number; evalSeconds: number };
}

const bits = outcomeBits;
export { unbits };

export const jobFileName = (id: string) => `jobs/${id}.json`;

/** A finished job of this plan in `dir`, or null (absent, or from another plan). */
export function readJobFile(dir: string, id: string, planHash?: string): JobFile | null {
  const p = `${dir}/${jobFileName(id)}`;
  if (!existsSync(p)) return null;
  const f = JSON.parse(readFileSync(p, 'utf8')) as JobFile;
  if (planHash !== undefined && f.result?.planHash !== planHash) return null;
  return f;
}

/** AutoAttack on the first n test images (the budget of the plan). */
async function evaluateAutoAttack(device: Device, model: SmallCnn, test: ImageSet, n: number, plan: SatPlan, seed: number, tag: string): Promise<JobAutoAttack> {
  const a = plan.budget.autoattack!;
  const sample = test.shape.reduce((p, q) => p * q, 1);
  const x = Tensor.from(device, test.images.subarray(0, n * sample), [n, ...test.shape]);
  const y = Tensor.from(device, test.labels.subarray(0, n), [n], 'i32');
  try {
    const r = await autoAttack(model, x, y, {
      norm: 'linf',
      eps: plan.eps,
      attacks: a.stages,
      seed: seed + 17,
      batchSize: 250,
      budgets: { apgdSteps: a.apgdSteps, fabSteps: a.apgdSteps, targets: a.targets, squareQueries: a.squareQueries },
      onProgress: (p) => {
        if (p.batch === p.batches) process.stderr.write(`${tag} autoattack: ${p.stage}: ${p.broken} of ${p.attacked} broken, robust ${p.robust}/${p.n} (${p.seconds.toFixed(0)}s)\n`);
      },
    });
    return {
      sequence: r.sequence,
      correct: r.robust.correct,
      perImage: bits(r.perExample.robust),
      stages: r.stages.map((s) => ({ label: s.label, attacked: s.attacked, broken: s.broken, violations: s.violations })),
      masking: r.masking.count,
      warning: r.masking.warning,
    };
  } finally {
    x.dispose();
    y.dispose();
  }
}

async function evaluate(device: Device, model: SmallCnn, test: ImageSet, plan: SatPlan, seed: number, tag: string): Promise<{ report: RobustReport; curve: CurvePoint[]; autoattack?: JobAutoAttack }> {
  const b = plan.budget;
  const eps = plan.eps;
  const report = await evaluateRobust(device, model, test, {
    limit: b.evalLimit,
    batchSize: 250,
    perExample: true,
    attacks: [new Fgsm({ eps }), new Pgd({ eps, alpha: eps / 4, steps: b.pgdSteps, restarts: b.pgdRestarts, randomStart: true, seed: seed + 7 }), new Apgd({ eps, steps: b.apgdSteps, seed: seed + 11 })],
  });
  const curve: CurvePoint[] = [];
  for (const e of [0, 0.5 * eps, eps, 2 * eps]) {
    if (e === 0) curve.push({ eps: 0, n: report.n, correct: report.clean.correct });
    else if (e === eps) curve.push({ eps, n: report.n, correct: report.attacks[1]!.correct });
    else {
      const r = await evaluateRobust(device, model, test, { limit: b.curveLimit, batchSize: 250, attacks: [new Pgd({ eps: e, alpha: e / 4, steps: b.pgdSteps, randomStart: true, seed: seed + 13 })] });
      curve.push({ eps: e, n: r.n, correct: r.worstCase.correct });
    }
  }
  if (!b.autoattack) return { report, curve };
  return { report, curve, autoattack: await evaluateAutoAttack(device, model, test, report.n, plan, seed, tag) };
}

/** Trains and evaluates one job, writes jobs/<id>.json and <id>.safetensors; null if interrupted. */
export async function runJob(device: Device, plan: SatPlan, job: SatJob, data: { train: ImageSet; test: ImageSet }, run: RunDir, interrupt: Interrupt, tag: string): Promise<JobFile | null> {
  const b = plan.budget;
  const model = new SmallCnn(device, { activation: job.spec, seed: job.seed });
  try {
    const steps = Math.ceil(data.train.n / 128) * b.epochs;
    const prog = new Progress(`${tag} ${job.id}`, steps);
    const trainFlags = { loop: 'fast', epochs: b.epochs, batchSize: 128, optimizer: 'adam', lr: b.lr, schedule: b.schedule, momentum: 0, weightDecay: 0, eps: plan.eps, steps: 1, replays: 1, bnMode: 'eval', coCheckEvery: b.coCheckEvery, evalEvery: 1, seed: job.seed, attackerSmooth: job.attackerSmooth, optimizerSmooth: job.optimizerSmooth };
    const tr = await trainRun(device, model, data, trainFlags, { run, label: job.id, interrupt, evalLimit: b.evalLimit, hooks: { onStep: (s) => prog.update(s.step + 1, `loss ${s.loss.toFixed(3)}`) } });
    prog.done(`train acc ${(100 * (tr.epochs.at(-1)?.trainAcc ?? NaN)).toFixed(1)}%`);
    if (tr.interrupted) return null;
    const t1 = performance.now();
    const ev = await evaluate(device, model, data.test, plan, job.seed, `${tag} ${job.id}`);
    const r = ev.report;
    const pe = r.perExample!;
    const result: JobResult = {
      id: job.id,
      planHash: plan.hash,
      train: { steps: tr.steps, epochs: tr.epochs.map((e) => ({ epoch: e.epoch, trainLoss: e.trainLoss, trainAcc: e.trainAcc, testAcc: e.testAcc ?? null, lr: e.lr })), coDetected: tr.coDetected, restoredStep: tr.restoredStep },
      eval: {
        n: r.n,
        clean: { name: 'clean', correct: r.clean.correct },
        attacks: r.attacks.map((a) => ({ name: a.name, correct: a.correct })),
        worstCase: { name: 'worst case', correct: r.worstCase.correct },
        perImage: { clean: bits(pe.clean), attacks: pe.attacks.map(bits), worstCase: bits(pe.worstCase) },
        ...(ev.autoattack ? { autoattack: ev.autoattack } : {}),
      },
      curve: ev.curve,
    };
    const file: JobFile = { result, timing: { trainSeconds: tr.seconds, evalSeconds: (performance.now() - t1) / 1000 } };
    run.writeJson(jobFileName(job.id), file);
    return file;
  } finally {
    model.dispose();
  }
}
