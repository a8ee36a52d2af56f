// `reproduce sat` statistics: from the plan and the finished jobs' results (one process or
// merged shards), every accuracy with its Wilson 95% interval, mean and spread over seeds,
// each network against ReLU of the same seed on the same images (exact McNemar test,
// Holm-adjusted over a table's comparisons, Agresti-Min interval of the difference), and
// the report's sentences, generated only from those tests. Pure: no device, no files.
import { spread, type PairedTable, type Spread } from '../adversarial/stats.ts';
import { ALPHA, accWithCi, pct, withCi, points, unbits, pairedComparison, holmFamily, comparisonSentence as sentence, type Acc, type PairedComparison } from '../adversarial/stats_report.ts';
import type { JobResult } from './sat_job.ts';
import type { SatJob, SatPlan } from './sat_protocol.ts';

export { ALPHA, pct, withCi, points, type Acc };

export const METRICS = ['clean', 'fgsm', 'pgd', 'apgd', 'worstCase'] as const;
/** The metrics of every job, and AutoAttack's robust accuracy (plans with `--eval autoattack`). */
export type BaseMetric = (typeof METRICS)[number];
export type Metric = BaseMetric | 'autoattack';

export interface JobSummary {
  id: string;
  label: string;
  group: 'activation' | 'ablation';
  seed: number;
  acc: Record<BaseMetric, Acc> & { autoattack?: Acc };
  /** Robust accuracy against eps with Wilson intervals. */
  curve: (Acc & { eps: number })[];
  train: JobResult['train'];
  /** Why this network's numbers are not trustworthy (empty: none). */
  flags: string[];
}

/** acc(network) - acc(ReLU) on the pooled pairs of the same seed; Holm over the same group and metric. */
export interface Comparison extends PairedComparison {
  metric: 'worstCase' | 'clean';
  /** Seeds pooled (pairs of the same seed). */
  seeds: number[];
  table: PairedTable;
}

export interface NetworkSummary {
  label: string;
  group: 'activation' | 'ablation';
  seeds: number[];
  /** Per metric: mean and spread of the accuracy over seeds (one seed: sd 0). */
  spread: Record<BaseMetric, Spread> & { autoattack?: Spread };
  flagged: boolean;
  vsRelu: { worstCase: Comparison; clean: Comparison } | null;
}

export interface SatSummary {
  experiment: 'reproduce sat';
  status: 'completed' | 'partial';
  planHash: string;
  eps: number;
  budget: SatPlan['budget'];
  protocol: Record<string, string>;
  missingJobs: string[];
  jobs: JobSummary[];
  networks: NetworkSummary[];
  /** The report's findings per table, one per line, generated from the tests above. */
  sentences: { activation: string[]; ablation: string[] };
  /** Per-image outcomes of every job (needed to pair networks; '1' correct). */
  perImage: Record<string, { clean: string; fgsm: string; pgd: string; apgd: string; worstCase: string; autoattack?: string }>;
}

const acc = accWithCi;

function summariseJob(job: SatJob, r: JobResult): JobSummary {
  const e = r.eval;
  const [fgsm, pgd, apgd] = e.attacks;
  const a: JobSummary['acc'] = { clean: acc(e.clean.correct, e.n), fgsm: acc(fgsm!.correct, e.n), pgd: acc(pgd!.correct, e.n), apgd: acc(apgd!.correct, e.n), worstCase: acc(e.worstCase.correct, e.n) };
  if (e.autoattack) a.autoattack = acc(e.autoattack.correct, e.n);
  const flags: string[] = [];
  // NOTE: "did not train": clean accuracy whose whole interval lies below 20% (chance is 10%).
  if (a.clean.hi < 0.2) flags.push(`did not train within this budget (clean ${withCi(a.clean)})`);
  if (a.fgsm.accuracy - a.pgd.accuracy > 0.2) flags.push(`FGSM accuracy exceeds PGD accuracy by ${(100 * (a.fgsm.accuracy - a.pgd.accuracy)).toFixed(1)} points (gradient masking / catastrophic overfitting)`);
  if (e.autoattack?.warning) flags.push(`AutoAttack masking warning: ${e.autoattack.warning}`);
  const rejected = e.autoattack?.stages.reduce((s, st) => s + st.violations, 0) ?? 0;
  if (rejected) flags.push(`AutoAttack rejected ${rejected} misclassified point(s) outside the eps ball or the box (attack bug)`);
  if (r.train.coDetected) flags.push(`catastrophic overfitting detected during training${r.train.restoredStep !== null ? ` (parameters of step ${r.train.restoredStep} restored)` : ''}`);
  return { id: job.id, label: job.label, group: job.group, seed: job.seed, acc: a, curve: r.curve.map((c) => ({ eps: c.eps, ...acc(c.correct, c.n) })), train: r.train, flags };
}

function compare(metric: 'worstCase' | 'clean', pairs: { net: JobResult; relu: JobResult; seed: number }[]): Comparison {
  const pick = (r: JobResult) => unbits(metric === 'clean' ? r.eval.perImage.clean : r.eval.perImage.worstCase);
  return { metric, seeds: pairs.map((p) => p.seed), ...pairedComparison(pairs.map((p) => ({ a: pick(p.net), b: pick(p.relu) }))) };
}

const what = { worstCase: 'robust (worst-case) accuracy', clean: 'clean accuracy' } as const;
/** How the sentences name the two metrics (shared with the kink study's clean comparison). */
export const SAT_WORDING = {
  worstCase: { what: what.worstCase, up: 'more robust than', down: 'less robust than' },
  clean: { what: what.clean, up: 'more accurate on clean images than', down: 'less accurate on clean images than' },
} as const;

/** One sentence per comparison, from the test alone. */
export function comparisonSentence(label: string, c: Comparison, family: number): string {
  const seeds = c.seeds.length > 1 ? ` (${c.seeds.length} seeds pooled, ${c.table.n} pairs)` : ` (${c.table.n} images)`;
  return sentence(label, c, family, SAT_WORDING[c.metric], seeds);
}

/** Everything the report shows, from the plan and the finished jobs (missing jobs are listed, not guessed). */
export function summarise(plan: SatPlan, results: Map<string, JobResult>): SatSummary {
  for (const [id, r] of results) {
    if (r.planHash !== plan.hash) throw new Error(`kinkless: job ${id} belongs to another plan (hash ${r.planHash.slice(0, 12)}, expected ${plan.hash.slice(0, 12)})`);
  }
  const done = plan.jobs.filter((j) => results.has(j.id));
  const missingJobs = plan.jobs.filter((j) => !results.has(j.id)).map((j) => j.id);
  const jobs = done.map((j) => summariseJob(j, results.get(j.id)!));
  const labels = [...new Set(plan.jobs.map((j) => j.label))];
  const networks: NetworkSummary[] = [];
  for (const label of labels) {
    const mine = jobs.filter((j) => j.label === label);
    if (mine.length === 0) continue;
    const sp = Object.fromEntries(METRICS.map((m) => [m, spread(mine.map((j) => j.acc[m].accuracy))])) as NetworkSummary['spread'];
    if (mine.every((j) => j.acc.autoattack)) sp.autoattack = spread(mine.map((j) => j.acc.autoattack!.accuracy));
    let vsRelu: NetworkSummary['vsRelu'] = null;
    if (label !== 'relu') {
      const pairs = mine.flatMap((j) => {
        const relu = plan.jobs.find((x) => x.label === 'relu' && x.seed === j.seed);
        return relu && results.has(relu.id) ? [{ net: results.get(j.id)!, relu: results.get(relu.id)!, seed: j.seed }] : [];
      });
      if (pairs.length) {
        vsRelu = { worstCase: compare('worstCase', pairs), clean: compare('clean', pairs) };
      }
    }
    networks.push({ label, group: mine[0]!.group, seeds: mine.map((j) => j.seed), spread: sp, flagged: mine.some((j) => j.flags.length > 0), vsRelu });
  }
  // Holm within each (group, metric) family
  for (const group of ['activation', 'ablation'] as const) {
    for (const m of ['worstCase', 'clean'] as const) {
      holmFamily(networks.filter((n) => n.group === group && n.vsRelu).map((n) => n.vsRelu![m]));
    }
  }
  const sentences = findings(networks, jobs);
  const perImage: SatSummary['perImage'] = {};
  for (const j of done) {
    const pi = results.get(j.id)!.eval.perImage;
    const aa = results.get(j.id)!.eval.autoattack;
    perImage[j.id] = { clean: pi.clean, fgsm: pi.attacks[0]!, pgd: pi.attacks[1]!, apgd: pi.attacks[2]!, worstCase: pi.worstCase, ...(aa ? { autoattack: aa.perImage } : {}) };
  }
  return { experiment: 'reproduce sat', status: missingJobs.length ? 'partial' : 'completed', planHash: plan.hash, eps: plan.eps, budget: plan.budget, protocol: plan.protocol, missingJobs, jobs, networks, sentences, perImage };
}

function findings(networks: NetworkSummary[], jobs: JobSummary[]): SatSummary['sentences'] {
  const res: SatSummary['sentences'] = { activation: [], ablation: [] };
  for (const j of jobs) for (const f of j.flags) res[j.group].push(`**${j.label}** (seed ${j.seed}) ${f.startsWith('did not') ? f : `is flagged: ${f}`}; comparisons involving it say nothing about the ${j.group === 'activation' ? 'activation' : 'surrogate'}.`);
  for (const group of ['activation', 'ablation'] as const) {
    const out = res[group];
    const fam = networks.filter((n) => n.group === group && n.vsRelu);
    if (!fam.length) continue;
    for (const m of ['worstCase', 'clean'] as const) {
      for (const n of fam) out.push(comparisonSentence(n.label, n.vsRelu![m], fam.length));
      const sig = fam.filter((n) => n.vsRelu![m].significant && n.vsRelu![m].diff > 0).map((n) => n.label);
      out.push(`${group === 'activation' ? 'Activations' : 'Ablation cells'} with significantly higher ${what[m]} than ReLU at the ${ALPHA} level${fam.length > 1 ? ' (Holm-adjusted)' : ''}: ${sig.length ? sig.join(', ') : 'none'}.`);
    }
  }
  return res;
}
