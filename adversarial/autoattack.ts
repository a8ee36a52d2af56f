// The AutoAttack runner: a clean pass, then each stage of the sequence (registry in
// autoattack_stages.ts) on the examples still robust, gathered on the GPU in batches. A
// stage's success is verified by a fresh forward pass (argmax != label) AND a host check of
// the perturbation in float64 (within the eps ball up to a small tolerance, inside the box,
// finite); points that fail it are rejected and counted. The result has per-example
// robustness and the stage that broke each example, per-stage counts and times, the
// worst-case robust accuracy with its Wilson 95% interval, and the masking warning (a
// gradient-free stage broke examples that every gradient stage before it missed).
import { Tensor, argmax, gather, noGrad, scope } from '../engine/index.ts';
import { saveModes, type Module } from '../nn/module.ts';
import type { BnMode } from './attacks/common.ts';
import { STAGES, STANDARD_BUDGETS, STANDARD_SEQUENCE, checkStageNames, type StageBudgets, type StageRegistry } from './autoattack_stages.ts';
import { wilson } from './stats.ts';
import { checkCount, resolveThreat, type Norm, type ResolvedThreat } from './threat.ts';

export interface AutoAttackOptions {
  norm: Norm;
  eps: number;
  bounds?: [number, number];
  /** Stage names in order (default the standard sequence apgd-ce, apgd-t, fab-t, square). */
  attacks?: string[];
  seed?: number;
  bnMode?: BnMode;
  /** Examples per attacked batch (default 128). */
  batchSize?: number;
  /** Budget overrides (default AutoAttack's standard budgets). */
  budgets?: Partial<Omit<StageBudgets, 'bnMode'>>;
  /** Stage registry (default STAGES; tests pass their own). */
  registry?: StageRegistry;
  /** Also return the adversarial points (host, x's layout; clean x where robust). */
  returnAdversarial?: boolean;
  /** After the clean pass and after every batch of every stage. */
  onProgress?: (p: AutoAttackProgress) => void;
}

export interface AutoAttackProgress {
  /** 'clean' or the stage part's label. */
  stage: string;
  batch: number;
  batches: number;
  /** Examples this stage attacks in total, and how many it broke so far (clean: examples done, misclassified so far). */
  attacked: number;
  broken: number;
  /** Robust examples now, out of n. */
  robust: number;
  n: number;
  seconds: number;
}

export interface StageResult {
  /** Registry name ('apgd-t') and the part's label ('apgd-t (target rank 3)'). */
  stage: string;
  label: string;
  gradientFree: boolean;
  /** Examples given to this stage (the ones still robust before it). */
  attacked: number;
  /** Examples it broke (verified). */
  broken: number;
  /** Misclassified points rejected as outside the ball or box, or not finite. */
  violations: number;
  /** Robust examples after the stage, and robust accuracy after it. */
  robust: number;
  robustAccuracy: number;
  seconds: number;
}

export interface AutoAttackResult {
  n: number;
  threat: ResolvedThreat;
  sequence: string[];
  /** Whether the sequence is the full standard one with the standard budgets. */
  standard: boolean;
  budgets: StageBudgets;
  seed: number;
  clean: { correct: number; accuracy: number; lo: number; hi: number; seconds: number };
  stages: StageResult[];
  /** Worst case over the clean pass and every stage, with its Wilson 95% interval. */
  robust: { correct: number; accuracy: number; lo: number; hi: number };
  /** Rejected points over all stages. */
  violations: number;
  masking: { count: number; warning: string | null };
  perExample: {
    /** 1 where the example is classified correctly clean. */
    clean: number[];
    /** 1 where no stage broke it. */
    robust: number[];
    /** 'clean' (misclassified without attack), the label of the stage part that broke it, or null. */
    brokenBy: (string | null)[];
  };
  /** Host copy of the adversarial points (returnAdversarial). */
  xAdv?: Float32Array;
  seconds: number;
}

/** Relative and absolute slack of the host ball check (float32 rounding of x + delta). */
export const BALL_TOLERANCE = { rel: 1e-5, abs: 1e-6 };

/**
 * Host check of one example's point: finite, inside the box, and within the ball:
 * ||xa - x|| <= eps (1 + rel) + abs * m, m = max(|lo|, |hi|) (the size of the float32
 * rounding of x + delta; L2: times sqrt(d) for d coordinates). The box is checked exactly
 * (a clip is exact in float32). NOTE: float64 on the host, independent of the GPU norm kernels.
 */
export function withinThreat(x: ArrayLike<number>, xa: ArrayLike<number>, off: number, d: number, t: ResolvedThreat): boolean {
  const [lo, hi] = t.bounds;
  let linf = 0;
  let ss = 0;
  for (let k = off; k < off + d; k++) {
    const v = xa[k]!;
    if (!Number.isFinite(v) || v < lo || v > hi) return false;
    const diff = Math.abs(v - x[k]!);
    if (diff > linf) linf = diff;
    ss += diff * diff;
  }
  const m = Math.max(Math.abs(lo), Math.abs(hi));
  if (t.norm === 'linf') return linf <= t.eps * (1 + BALL_TOLERANCE.rel) + BALL_TOLERANCE.abs * m;
  return Math.sqrt(ss) <= t.eps * (1 + BALL_TOLERANCE.rel) + BALL_TOLERANCE.abs * m * Math.sqrt(d);
}

/** The masking warning's sentence. */
export function maskingSentence(count: number, gradientFree: string[], gradientStages: string[]): string {
  return `${gradientFree.join(', ')} (gradient-free) broke ${count} example${count === 1 ? '' : 's'} that every gradient-based stage (${gradientStages.join(', ')}) missed: the model's gradients may be masked or obfuscated, and robust accuracy measured with gradient attacks alone overestimates its robustness.`;
}

/** Predicted classes of x (eval of logits, no tape) and the number of classes. */
async function predict(model: Module, x: Tensor): Promise<{ pred: Int32Array; classes: number }> {
  const { p, classes } = noGrad(() =>
    scope(() => {
      const z = model.forward(x);
      return { p: argmax(z, -1), classes: z.shape[1]! };
    }),
  );
  const v = (await p.data()) as Int32Array;
  p.dispose();
  return { pred: Int32Array.from(v), classes };
}

/** Rows `idx` of a batch tensor (a fresh tensor). */
function rows(t: Tensor, idx: number[]): Tensor {
  const it = Tensor.from(t.device, Int32Array.from(idx), [idx.length], 'i32');
  try {
    return noGrad(() => gather(t, it, 0));
  } finally {
    it.dispose();
  }
}

/**
 * AutoAttack on x [N, ...] (in the threat's box) with labels y i32 [N]: the clean pass, then
 * every stage on the examples still robust. The model's train/eval flags are restored after.
 */
export async function autoAttack(model: Module, x: Tensor, y: Tensor, opts: AutoAttackOptions): Promise<AutoAttackResult> {
  const who = 'autoAttack';
  const threat = resolveThreat({ norm: opts?.norm, eps: opts?.eps, bounds: opts?.bounds }, who);
  if (!(x instanceof Tensor) || x.dtype !== 'f32' || x.rank < 2) throw new Error(`kinkless: ${who}: x must be an f32 tensor [N, ...], got ${x instanceof Tensor ? `${x.dtype} [${x.shape.join(', ')}]` : String(x)}`);
  if (!(y instanceof Tensor) || y.dtype !== 'i32' || y.rank !== 1 || y.shape[0] !== x.shape[0]) throw new Error(`kinkless: ${who}: y must be an i32 tensor [${x.shape[0]}] of labels, got ${y instanceof Tensor ? `${y.dtype} [${y.shape.join(', ')}]` : String(y)}`);
  const registry = opts.registry ?? STAGES;
  const sequence = [...(opts.attacks ?? STANDARD_SEQUENCE)];
  checkStageNames(who, sequence, registry);
  const bs = opts.batchSize ?? 128;
  checkCount(who, 'batchSize', bs, 1);
  const seed = opts.seed ?? 0;
  checkCount(who, 'seed', seed, 0);
  const bnMode = opts.bnMode ?? 'eval';
  const budgets: StageBudgets = { ...STANDARD_BUDGETS, ...(opts.budgets ?? {}), bnMode };
  for (const k of ['apgdSteps', 'apgdRestarts', 'targets', 'fabSteps', 'fabRestarts', 'squareQueries'] as const) checkCount(who, `budgets.${k}`, budgets[k], 1);
  const standard = sequence.join(',') === STANDARD_SEQUENCE.join(',') && (Object.keys(STANDARD_BUDGETS) as (keyof StageBudgets)[]).every((k) => k === 'bnMode' || budgets[k] === STANDARD_BUDGETS[k]);

  const n = x.shape[0]!;
  if (!(n > 0)) throw new Error(`kinkless: ${who}: no examples (x is [${x.shape.join(', ')}])`);
  const d = x.size / n;
  const t0 = performance.now();
  const labels = Int32Array.from((await y.data()) as Int32Array);
  const clean = new Uint8Array(n);
  const robust = new Uint8Array(n);
  const brokenBy: (string | null)[] = new Array(n).fill(null);
  const xAdv = opts.returnAdversarial ? new Float32Array(n * d) : null;
  const restoreModes = saveModes(model);
  const stages: StageResult[] = [];
  const report = (p: Omit<AutoAttackProgress, 'n' | 'robust' | 'seconds'>) => opts.onProgress?.({ ...p, n, robust: robust.reduce((a, v) => a + v, 0), seconds: (performance.now() - t0) / 1000 });
  let classes = 0;
  let cleanSecs = 0;
  try {
    model.eval();
    // Clean pass.
    const batches = Math.ceil(n / bs);
    for (let b = 0; b < batches; b++) {
      const s = b * bs;
      const e = Math.min(n, s + bs);
      const t = performance.now();
      const idx = Array.from({ length: e - s }, (_, i) => s + i);
      const xb = rows(x, idx);
      try {
        const r = await predict(model, xb);
        classes = r.classes;
        if (xAdv) xAdv.set(await xb.f32(), s * d);
        for (let i = s; i < e; i++) {
          clean[i] = r.pred[i - s] === labels[i] ? 1 : 0;
          robust[i] = clean[i]!;
          if (!clean[i]) brokenBy[i] = 'clean';
        }
      } finally {
        xb.dispose();
      }
      cleanSecs += (performance.now() - t) / 1000;
      report({ stage: 'clean', batch: b + 1, batches, attacked: e, broken: e - robust.reduce((acc, v) => acc + v, 0) });
    }
    // The stages, each on the examples still robust.
    for (const [si, name] of sequence.entries()) {
      const def = registry[name]!;
      for (const part of def.make(threat, seed + 1000 * si, budgets, classes)) {
        const t = performance.now();
        const remaining: number[] = [];
        for (let i = 0; i < n; i++) if (robust[i]) remaining.push(i);
        const res: StageResult = { stage: name, label: part.label, gradientFree: def.gradientFree, attacked: remaining.length, broken: 0, violations: 0, robust: 0, robustAccuracy: 0, seconds: 0 };
        const nb = Math.ceil(remaining.length / bs);
        for (let b = 0; b < nb; b++) {
          const idx = remaining.slice(b * bs, (b + 1) * bs);
          const xb = rows(x, idx);
          const yb = rows(y, idx);
          let xa: Tensor | null = null;
          try {
            xa = await part.attack.perturb(model, xb, yb);
            if (!(xa instanceof Tensor) || xa.shape.join(',') !== xb.shape.join(',')) throw new Error(`kinkless: ${who}: stage ${part.label} returned ${xa instanceof Tensor ? `[${xa.shape.join(', ')}]` : String(xa)}, expected [${xb.shape.join(', ')}]`);
            // the attack may have left the model in its own mode: verify in eval mode
            model.eval();
            const { pred } = await predict(model, xa);
            const xv = await xb.f32();
            const av = await xa.f32();
            idx.forEach((i, k) => {
              if (pred[k] === labels[i]) return;
              if (!withinThreat(xv, av, k * d, d, threat)) {
                res.violations++;
                return;
              }
              robust[i] = 0;
              brokenBy[i] = part.label;
              res.broken++;
              if (xAdv) xAdv.set(av.subarray(k * d, (k + 1) * d), i * d);
            });
          } finally {
            xb.dispose();
            yb.dispose();
            xa?.dispose();
          }
          report({ stage: part.label, batch: b + 1, batches: nb, attacked: remaining.length, broken: res.broken });
        }
        if (nb === 0) report({ stage: part.label, batch: 0, batches: 0, attacked: 0, broken: 0 });
        res.robust = robust.reduce((a, v) => a + v, 0);
        res.robustAccuracy = res.robust / n;
        res.seconds = (performance.now() - t) / 1000;
        stages.push(res);
      }
    }
  } finally {
    restoreModes();
  }
  const count = (a: Uint8Array) => a.reduce((acc, v) => acc + v, 0);
  const ci = (k: number) => ({ correct: k, accuracy: k / n, ...wilson(k, n) });
  // Masking: breaks by a gradient-free stage that ran after at least one gradient stage.
  let masked = 0;
  const freeNames: string[] = [];
  const gradNames: string[] = [];
  for (const s of stages) {
    if (!s.gradientFree) {
      if (!gradNames.includes(s.stage)) gradNames.push(s.stage);
    } else if (gradNames.length) {
      masked += s.broken;
      if (s.broken && !freeNames.includes(s.stage)) freeNames.push(s.stage);
    }
  }
  const out: AutoAttackResult = {
    n,
    threat,
    sequence,
    standard,
    budgets,
    seed,
    clean: { ...ci(count(clean)), seconds: cleanSecs },
    stages,
    robust: ci(count(robust)),
    violations: stages.reduce((a, s) => a + s.violations, 0),
    masking: { count: masked, warning: masked > 0 ? maskingSentence(masked, freeNames, gradNames) : null },
    perExample: { clean: Array.from(clean), robust: Array.from(robust), brokenBy },
    seconds: (performance.now() - t0) / 1000,
  };
  if (xAdv) out.xAdv = xAdv;
  return out;
}

/** A readable table of the result (Markdown), with the masking warning and violations. */
export function autoAttackTable(r: AutoAttackResult): string {
  const pc = (v: number) => `${(100 * v).toFixed(2)}%`;
  const iv = (a: { lo: number; hi: number }) => `[${(100 * a.lo).toFixed(1)}, ${(100 * a.hi).toFixed(1)}]`;
  const lines = [
    `AutoAttack (${r.threat.norm}, eps ${r.threat.eps}, ${r.n} examples, ${r.standard ? 'standard version' : `sequence ${r.sequence.join(', ')}`})`,
    '',
    '| stage | attacked | broken | rejected | robust accuracy after | seconds |',
    '|---|---|---|---|---|---|',
    `| clean | ${r.n} | ${r.n - r.clean.correct} | 0 | ${pc(r.clean.accuracy)} ${iv(r.clean)} | ${r.clean.seconds.toFixed(1)} |`,
    ...r.stages.map((s) => `| ${s.label}${s.gradientFree ? ' (gradient-free)' : ''} | ${s.attacked} | ${s.broken} | ${s.violations} | ${pc(s.robustAccuracy)} | ${s.seconds.toFixed(1)} |`),
    '',
    `clean accuracy: ${pc(r.clean.accuracy)} ${iv(r.clean)} (Wilson 95%)`,
    `robust accuracy (worst case over all stages): ${pc(r.robust.accuracy)} ${iv(r.robust)} (Wilson 95%)`,
  ];
  if (r.violations) lines.push(`rejected: ${r.violations} misclassified point(s) outside the eps ball or the box (attack bug?)`);
  if (r.masking.warning) lines.push(`MASKING WARNING: ${r.masking.warning}`);
  return `${lines.join('\n')}\n`;
}
