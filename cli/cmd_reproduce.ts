// `kinkless reproduce sat`: SAT's activation comparison on the embedded MNIST. The run is a
// list of independent jobs (one network and seed each: every activation, then the
// backward-only ablation), planned in sat_protocol.ts. `--shard i/n` runs one slice and
// writes its job files; without it the whole list runs and the report is written from the
// job files exactly as `kinkless merge` writes it from several shards.
import { mkdirSync } from 'node:fs';
import { createDevice, ACTIVATIONS, type ActivationKind } from '../engine/index.ts';
import { expectOneName, helpText, parseFlags, UsageError, type FlagSpec } from './args.ts';
import { loadData } from './setup.ts';
import { Interrupt } from './train_run.ts';
import { RUN_FLAGS, RunDir, defaultRunName } from './rundir.ts';
import { lineChart } from './svg.ts';
import { STAGES, STANDARD_SEQUENCE } from '../adversarial/autoattack_stages.ts';
import { SAT_ACTIVATIONS, SAT_PRESETS, makePlan, parseShard, shardJobs, type SatBudget, type SatPlan } from './sat_protocol.ts';
import { readJobFile, runJob, type JobFile } from './sat_job.ts';
import { summarise } from './sat_summary.ts';
import { renderReport } from './sat_report.ts';

const FLAGS: Record<string, FlagSpec> = {
  quick: { type: 'bool', help: `small budget (about 2 minutes): ${SAT_PRESETS.quick.activations.join(' and ')}, ${SAT_PRESETS.quick.evalLimit} test images; wide intervals (a smoke test)`, default: false },
  activations: { type: 'list', help: `activations to compare; ReLU always runs as the reference (default: ${SAT_PRESETS.default.activations.join(',')}; --quick: ${SAT_PRESETS.quick.activations.join(',')})`, choices: SAT_ACTIVATIONS },
  ablation: { type: 'bool', help: 'run the backward-only ablation (2x2 table; default: on, --quick: off)' },
  seeds: { type: 'int', help: 'seeds per network (seed, seed+1, ...): mean and spread over seeds, tests on pooled pairs', min: 1 },
  eps: { type: 'number', help: 'L-inf radius for training and evaluation (fast-AT does not collapse at 0.1 on this CNN)', default: 0.1, min: 0 },
  epochs: { type: 'int', help: 'epochs per network', min: 1 },
  trainLimit: { type: 'int', help: 'training images per epoch (the first N of the 60000)', min: 128 },
  lr: { type: 'number', help: 'Adam peak learning rate', min: 0 },
  schedule: { type: 'string', help: 'learning-rate schedule over each network\'s steps', choices: ['constant', 'cosine', 'one_cycle'] },
  evalLimit: { type: 'int', help: 'test images for the robust evaluation (the same first N for every network)', min: 10 },
  pgdSteps: { type: 'int', help: 'PGD steps of the evaluation (alpha = eps/4)', min: 1 },
  pgdRestarts: { type: 'int', help: 'PGD restarts (per-example worst case)', min: 1 },
  apgdSteps: { type: 'int', help: 'APGD-CE iterations', min: 1 },
  eval: { type: 'string', help: `evaluation: "standard" (clean, FGSM, PGD, APGD-CE) or "autoattack" (the same plus AutoAttack: ${STANDARD_SEQUENCE.join(', ')}, each on the images still robust; an AutoAttack column in the report)`, choices: ['standard', 'autoattack'], default: 'standard' },
  aaSteps: { type: 'int', help: 'with --eval autoattack: APGD (and FAB-T) iterations per run (default 100, --quick: 10)', min: 1 },
  aaTargets: { type: 'int', help: 'with --eval autoattack: target classes of APGD-T and FAB-T', default: 9, min: 1 },
  aaQueries: { type: 'int', help: 'with --eval autoattack: Square queries per image (default 5000, --quick: 500)', min: 1 },
  curveLimit: { type: 'int', help: 'test images for the robust-vs-eps points at eps/2 and 2 eps', min: 10 },
  seed: { type: 'int', help: 'first seed for init, data order and attacks', default: 0 },
  shard: { type: 'string', help: 'run only slice i of n (0-based, "i/n": job j runs in shard j mod n); combine the run directories with `kinkless merge`' },
  resume: { type: 'bool', help: 'skip jobs whose result file (jobs/<id>.json, same plan) is already in the run directory', default: false },
  ...RUN_FLAGS,
};

export const REPRODUCE_HELP = helpText(
  'kinkless reproduce sat [options]',
  `Reproduce Smooth Adversarial Training's activation comparison on the embedded real MNIST:
one small CNN (conv 1->32 3x3, act, conv 32->64 3x3 stride 2, act, linear 10) per activation
and seed, trained with fast FGSM-AT (random start, alpha = 1.25 eps, Adam, batch 128) under
the same budget, seed and data order; evaluated with clean, FGSM, PGD-k and APGD-CE accuracy
on the same first test images. Then the backward-only ablation: ReLU forward, softplus(a=10)
derivative for the attacker, the optimizer or both. Every accuracy comes with a Wilson 95%
interval; each network is compared with ReLU of the same seed on the same images (exact
McNemar test, Holm-adjusted; Agresti-Min interval of the difference), and the report's
findings are generated from those tests only (docs/statistics.md).
A run is a list of independent jobs (one network and seed each): --shard i/n runs a slice,
\`kinkless merge\` builds the report from the shards' directories (docs/sweeps.md).
Writes runs/<name>/: config.json (the plan), jobs/<id>.json, <id>.safetensors, results.json
(with per-image outcomes), report.md, SVG plots, timing.json.`,
  FLAGS,
  [
    'npx kinkless reproduce sat                      # default budget (presets in cli/sat_protocol.ts)',
    'npx kinkless reproduce sat --quick              # about 2 minutes, a smoke test',
    'npx kinkless reproduce sat --seeds 3 --no-ablation',
    'npx kinkless reproduce sat --quick --eval autoattack   # plus an AutoAttack column',
    'npx kinkless reproduce sat --shard 0/4 --name sweep-0   # one of 4 machines; then kinkless merge',
  ],
);

/** The budget from the preset and the flags (flags win). */
export function budgetFromFlags(flags: Record<string, unknown>): SatBudget {
  const base = flags.quick ? SAT_PRESETS.quick : SAT_PRESETS.default;
  const pick = <K extends keyof SatBudget>(k: K): SatBudget[K] => ((flags[k] as SatBudget[K] | undefined) ?? base[k]);
  const b: SatBudget = {
    activations: pick('activations'),
    ablation: pick('ablation'),
    trainLimit: pick('trainLimit'),
    epochs: pick('epochs'),
    lr: pick('lr'),
    schedule: pick('schedule'),
    evalLimit: pick('evalLimit'),
    pgdSteps: pick('pgdSteps'),
    pgdRestarts: pick('pgdRestarts'),
    apgdSteps: pick('apgdSteps'),
    curveLimit: Math.min(pick('curveLimit'), pick('evalLimit')),
    coCheckEvery: base.coCheckEvery,
    seeds: pick('seeds'),
  };
  if (flags.eval === 'autoattack') {
    b.autoattack = {
      stages: STANDARD_SEQUENCE.filter((s) => STAGES[s]),
      skipped: STANDARD_SEQUENCE.filter((s) => !STAGES[s]),
      apgdSteps: (flags.aaSteps as number | undefined) ?? (flags.quick ? 10 : 100),
      targets: (flags.aaTargets as number | undefined) ?? 9,
      squareQueries: (flags.aaQueries as number | undefined) ?? (flags.quick ? 500 : 5000),
    };
  } else if (flags.aaSteps !== undefined || flags.aaQueries !== undefined) throw new UsageError('--aa-steps and --aa-queries apply to --eval autoattack only');
  if (b.trainLimit > 60000) throw new UsageError(`--train-limit: MNIST has 60000 training images, got ${b.trainLimit}`);
  if (b.schedule === 'one_cycle' && Math.ceil(b.trainLimit / 128) * b.epochs < 2) throw new UsageError(`--schedule one_cycle needs at least 2 training steps; --train-limit ${b.trainLimit} x --epochs ${b.epochs} gives 1 (use 256 or more images, or --schedule constant)`);
  if (b.evalLimit > 10000) throw new UsageError(`--eval-limit: MNIST has 10000 test images, got ${b.evalLimit}`);
  return b;
}

function activationPlots(): { f: string; df: string } {
  const kinds = SAT_ACTIVATIONS;
  const xs = Array.from({ length: 161 }, (_, i) => -2 + i * 0.025);
  const series = (d: 'f' | 'df') => kinds.map((k: ActivationKind) => ({ name: k, points: xs.map((x) => [x, ACTIVATIONS[k][d](x, ACTIVATIONS[k].defaults)] as [number, number]) }));
  return {
    f: lineChart({ title: 'Activations near 0', xLabel: 'x', yLabel: 'f(x)', series: series('f') }),
    df: lineChart({ title: "Derivatives near 0 (ReLU's jump at 0)", xLabel: 'x', yLabel: "f'(x)", series: series('df') }),
  };
}

/**
 * Writes results.json, report.md, the plots and timing.json from the plan and job files
 * (the single-process run and `kinkless merge` both end here).
 */
export function writeSatReport(run: RunDir, plan: SatPlan, files: Map<string, JobFile>): { status: string; sentences: string[] } {
  const summary = summarise(plan, new Map([...files].map(([id, f]) => [id, f.result])));
  const report = renderReport(plan, summary);
  const plots = activationPlots();
  run.writeText('activations.svg', plots.f);
  run.writeText('derivatives.svg', plots.df);
  for (const [name, svg] of Object.entries(report.svgs)) run.writeText(name, svg);
  run.writeJson('results.json', summary);
  run.writeText('report.md', report.markdown);
  const timing = plan.jobs.filter((j) => files.has(j.id)).map((j) => ({ id: j.id, ...files.get(j.id)!.timing }));
  run.writeJson('timing.json', { jobs: timing, trainSeconds: timing.reduce((a, t) => a + t.trainSeconds, 0), evalSeconds: timing.reduce((a, t) => a + t.evalSeconds, 0) });
  return { status: summary.status, sentences: [...summary.sentences.activation, ...summary.sentences.ablation] };
}

export async function cmdReproduce(argv: string[]): Promise<number> {
  const { flags, positional, help } = parseFlags('kinkless reproduce', argv, FLAGS);
  if (help) {
    console.log(REPRODUCE_HELP);
    return 0;
  }
  expectOneName('kinkless reproduce', 'experiment', 'sat', positional);
  const shard = parseShard(flags.shard as string | undefined);
  const budget = budgetFromFlags(flags);
  const plan = makePlan(budget, flags.eps as number, flags.seed as number);
  const mine = shardJobs(plan, shard);
  const t0 = performance.now();
  const run = new RunDir((flags.name as string) ?? defaultRunName(shard.count > 1 ? `sat-shard${shard.index}of${shard.count}` : 'sat'), flags.out as string);
  mkdirSync(run.path('jobs'), { recursive: true });
  run.writeJson('config.json', { command: 'reproduce sat', flags, shard, plan });
  const files = new Map<string, JobFile>();
  const todo = mine.filter((j) => {
    const f = flags.resume ? readJobFile(run.dir, j.id, plan.hash) : null;
    if (f) files.set(j.id, f);
    return !f;
  });
  console.log(`kinkless reproduce sat: plan ${plan.hash.slice(0, 12)}, ${plan.jobs.length} jobs${shard.count > 1 ? `, shard ${shard.index}/${shard.count}: ${mine.length}` : ''}${files.size ? `, ${files.size} already done (--resume)` : ''} -> ${run.dir}`);
  let interrupted = false;
  if (todo.length) {
    const data = loadData({ dataset: 'mnist', trainLimit: budget.trainLimit, testLimit: budget.evalLimit });
    const device = await createDevice();
    const interrupt = new Interrupt().install();
    try {
      for (const [i, job] of todo.entries()) {
        if (interrupt.requested) break;
        const f = await runJob(device, plan, job, data, run, interrupt, `[${i + 1}/${todo.length}]`);
        if (!f) break;
        files.set(job.id, f);
        const r = f.result.eval;
        const p = (c: number) => `${((100 * c) / r.n).toFixed(1)}%`;
        console.log(`  ${job.id}: clean ${p(r.clean.correct)}  FGSM ${p(r.attacks[0]!.correct)}  PGD-${budget.pgdSteps} ${p(r.attacks[1]!.correct)}  APGD-CE ${p(r.attacks[2]!.correct)}  worst ${p(r.worstCase.correct)}${r.autoattack ? `  AutoAttack ${p(r.autoattack.correct)}${r.autoattack.masking ? ` (MASKING WARNING: ${r.autoattack.masking} broken only by gradient-free stages)` : ''}` : ''}  (${f.timing.trainSeconds.toFixed(0)} s train, ${f.timing.evalSeconds.toFixed(0)} s eval)`);
      }
      interrupted = interrupt.requested || files.size < mine.length;
    } finally {
      interrupt.remove();
      device.destroy();
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  if (shard.count > 1) {
    console.log(`shard ${shard.index}/${shard.count}: ${files.size} of ${mine.length} jobs done in ${seconds.toFixed(0)} s; job files in ${run.path('jobs')}. Combine all shards with: kinkless merge <run dirs...>`);
    return interrupted ? 130 : 0;
  }
  const { status, sentences } = writeSatReport(run, plan, files);
  console.log(`\n${sentences.map((s) => `- ${s.replace(/\*\*/g, '')}`).join('\n')}\n\nwrote ${run.dir} (report.md, results.json, plots, checkpoints) in ${seconds.toFixed(0)} s; status ${status}`);
  return status === 'completed' ? 0 : 130;
}
