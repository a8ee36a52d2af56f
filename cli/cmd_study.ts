// `kinkless study kink`: the gradient-quality study at ReLU's kink. Trains (briefly) or loads
// one model per activation / checkpoint, runs adversarial/study/kink.ts's measurements on the
// first test images and writes runs/<name>/: config.json, results.json, metrics.csv (value
// with its 95% interval in lo/hi), per_image.json (per-image correctness, for paired tests),
// report.md (a summary generated from the numbers and the tests against ReLU; intervals as in
// docs/statistics.md) and SVG plots (accuracy with Wilson error bars).
import { existsSync, rmSync } from 'node:fs';
import { basename } from 'node:path';
import { createDevice, type Device } from '../engine/index.ts';
import { loadModel, saveModel } from '../nn/model_checkpoint.ts';
import type { Model } from '../nn/models/common.ts';
import { ACTIVATION_KINDS } from '../engine/index.ts';
import { studyKink, compareKinkStudies, KINK_DEFAULTS, type KinkStudyResult } from '../adversarial/study/kink.ts';
import { expectOneName, helpText, parseFlags, UsageError, type FlagSpec } from './args.ts';
import { DATA_FLAGS, MODEL_FLAGS, buildModel, loadData, modelFlagsFromCheckpoint } from './setup.ts';
import { trainRun, Interrupt, type TrainRunResult } from './train_run.ts';
import { RUN_FLAGS, RunDir, defaultRunName } from './rundir.ts';
import { Progress } from './progress.ts';
import { barChart, lineChart, type Series } from './svg.ts';
import { withCi, points, type PairedComparison } from '../adversarial/stats_report.ts';
import { formatP } from '../adversarial/stats.ts';
import type { Summary } from '../adversarial/study/statistics.ts';

const nums = (v: number[]) => v.map(String);

const FLAGS: Record<string, FlagSpec> = {
  checkpoint: { type: 'list', help: 'study these checkpoints (.safetensors written by kinkless; the model is rebuilt from their metadata) instead of training' },
  activations: { type: 'list', help: 'train one model per activation and compare them (default relu,silu; --activation X studies one)', choices: ACTIVATION_KINDS },
  dataset: DATA_FLAGS.dataset!,
  dataDir: DATA_FLAGS.dataDir!,
  ...MODEL_FLAGS,
  activation: { ...MODEL_FLAGS.activation!, default: undefined, help: 'activation kind of a single model (same as --activations X)' },
  trainSteps: { type: 'int', help: 'training steps per model (one pass over trainSteps x trainBatchSize images)', default: 100, min: 1 },
  trainLoop: { type: 'string', help: 'training loop: standard, or fast FGSM-AT', choices: ['standard', 'fast'], default: 'standard' },
  trainEps: { type: 'number', help: 'fast-AT radius (default: --eps)', min: 0 },
  trainBatchSize: { type: 'int', help: 'training batch size', default: 128, min: 1 },
  lr: { type: 'number', help: 'Adam learning rate', default: 1e-3, min: 0 },
  reuse: { type: 'bool', help: 'load model-<label>.safetensors from the run directory when present instead of training', default: false },
  limit: { type: 'int', help: 'number of test images studied', default: KINK_DEFAULTS.limit, min: 1 },
  batchSize: { type: 'int', help: 'study batch size', default: KINK_DEFAULTS.batchSize, min: 1 },
  eps: { type: 'number', help: 'L-inf radius of the PGD attack', default: KINK_DEFAULTS.eps, min: 0 },
  alpha: { type: 'number', help: 'PGD step (default eps/4)', min: 0 },
  steps: { type: 'int', help: 'PGD steps', default: KINK_DEFAULTS.steps, min: 1 },
  randomStart: { type: 'bool', help: 'PGD random start U(-eps, eps)', default: true },
  taus: { type: 'list', help: 'thresholds tau for the fraction of pre-activations with |z| < tau', default: nums(KINK_DEFAULTS.taus) },
  sigmas: { type: 'list', help: 'noise levels sigma for the gradient-stability test', default: nums(KINK_DEFAULTS.sigmas) },
  fidelitySteps: { type: 'list', help: 'step sizes h of the first-order check (delta = h sign(g))', default: nums(KINK_DEFAULTS.fidelitySteps) },
  successSteps: { type: 'list', help: 'PGD iterations at which accuracy is reported (larger than --steps: the final iterate)', default: nums(KINK_DEFAULTS.successSteps) },
  histRange: { type: 'number', help: 'pre-activation histograms cover [-r, r]', default: KINK_DEFAULTS.histRange, min: 0 },
  bins: { type: 'int', help: 'histogram bins', default: KINK_DEFAULTS.bins, min: 2 },
  bnMode: { type: 'string', help: 'batch-norm mode during the study', choices: ['eval', 'train'], default: 'eval' },
  ...RUN_FLAGS,
};

export const STUDY_HELP = helpText(
  'kinkless study kink [options]',
  `Gradient quality at ReLU's kink. For each model (trained briefly per activation, or loaded
from --checkpoint) on the first --limit test images: the fraction of pre-activations with
|z| < tau during a PGD attack (per activation layer and step), the cosine between consecutive
PGD input gradients, the gradient's stability under tiny Gaussian input noise
(||g(x+xi) - g(x)|| / ||g(x)||), first-order fidelity (L(x+delta) - L(x) against g.delta) and
the attack's accuracy after k steps. Writes runs/<name>/: config.json, results.json,
metrics.csv (lo/hi: 95% intervals), per_image.json, report.md (accuracies with Wilson
intervals, medians with distribution-free intervals, each model against ReLU on the same
images with exact McNemar tests; see docs/statistics.md) and SVG plots.`,
  FLAGS,
  [
    'npx kinkless study kink                                   # relu vs silu, ~100 training steps each',
    'npx kinkless study kink --activations relu,silu,softplus --train-steps 200',
    'npx kinkless study kink --checkpoint runs/my-run/small_cnn.safetensors --limit 500',
    'npx kinkless study kink --activation relu --surrogate softplus:10 --train-loop fast',
  ],
);

function numberList(flag: string, v: unknown, positive: boolean, integer = false): number[] {
  return (v as string[]).map((s) => {
    const x = Number(s);
    if (!Number.isFinite(x) || (positive && !(x > 0)) || (integer && !Number.isInteger(x))) throw new UsageError(`kinkless study: --${flag}: "${s}" is not a ${integer ? 'positive integer' : 'positive number'}`);
    return x;
  });
}

interface Entry {
  label: string;
  source: string;
  modelFlags: Record<string, unknown>;
  train?: { steps: number; seconds: number; testAcc: number; loop: string };
  result?: KinkStudyResult;
}

const safe = (s: string) => s.replace(/[^A-Za-z0-9_.-]+/g, '_');

export async function cmdStudy(argv: string[]): Promise<number> {
  const { flags, positional, help } = parseFlags('kinkless study', argv, FLAGS);
  if (help) {
    console.log(STUDY_HELP);
    return 0;
  }
  expectOneName('kinkless study', 'study', 'kink', positional);
  const ckpts = flags.checkpoint as string[] | undefined;
  if (flags.activations && flags.activation) throw new UsageError('kinkless study: give --activations or --activation, not both');
  if (ckpts && (flags.activations || flags.activation)) throw new UsageError('kinkless study: --checkpoint studies the given models; drop --activations / --activation');
  const taus = numberList('taus', flags.taus, true);
  const sigmas = numberList('sigmas', flags.sigmas, true);
  const fidelitySteps = numberList('fidelity-steps', flags.fidelitySteps, true);
  const successSteps = numberList('success-steps', flags.successSteps, true, true);
  const eps = flags.eps as number;
  const entries: Entry[] = [];
  if (ckpts) {
    for (const p of ckpts) {
      const mf = modelFlagsFromCheckpoint(p, flags);
      entries.push({ label: `${mf.activation as string}${mf.surrogate ? `+${mf.surrogate as string}` : ''}:${basename(p).replace(/\.safetensors$/, '')}`, source: p, modelFlags: mf });
    }
  } else {
    const acts = (flags.activations as string[] | undefined) ?? (flags.activation ? [flags.activation as string] : ['relu', 'silu']);
    for (const a of new Set(acts)) entries.push({ label: `${a}${flags.surrogate ? `+${flags.surrogate as string}` : ''}`, source: 'trained', modelFlags: { ...flags, activation: a } });
  }
  const trainSteps = flags.trainSteps as number;
  const tbs = flags.trainBatchSize as number;
  const data = loadData({ dataset: flags.dataset, dataDir: flags.dataDir, trainLimit: trainSteps * tbs, testLimit: Math.max(flags.limit as number, 1000) });
  const run = new RunDir((flags.name as string) ?? defaultRunName('study-kink'), flags.out as string);
  const protocol = {
    data: `${data.name}: first ${Math.min(flags.limit as number, data.test.n)} test images`,
    models: ckpts ? `checkpoints ${ckpts.join(', ')}` : `${flags.model as string}, one per activation (${entries.map((e) => e.label).join(', ')}), seed ${flags.seed as number}, ${trainSteps} ${flags.trainLoop as string} training steps (batch ${tbs}, Adam lr ${flags.lr as number}${flags.trainLoop === 'fast' ? `, fast-AT eps ${(flags.trainEps as number | undefined) ?? eps}` : ''}) on the first ${data.train.n} training images`,
    attack: `L-inf PGD on the CE loss, eps ${eps}, alpha ${(flags.alpha as number | undefined) ?? eps / 4}, ${flags.steps as number} steps, ${flags.randomStart ? 'random start' : 'zero start'}, batch-norm mode ${flags.bnMode as string}`,
    preActivations: `fraction of Activation-layer inputs with |z| < tau (tau = ${taus.join(', ')}) over every forward of the attack, per layer; histograms on [-${flags.histRange as number}, ${flags.histRange as number}] at the clean point and the final iterate`,
    cosine: 'cos(g_k, g_{k-1}) of consecutive PGD input gradients, per example',
    stability: `||g(x+xi) - g(x)|| / ||g(x)|| with xi ~ N(0, sigma^2) (sigma = ${sigmas.join(', ')}), not clipped, at the clean points and the PGD end points; plus the fraction of gradient coordinates whose sign flips`,
    fidelity: `L(x + h sign(g)) - L(x) against h ||g||_1 at the clean points (h = ${fidelitySteps.join(', ')}); and obj_{k+1} - obj_k against g_k . (delta_{k+1} - delta_k) along the PGD path; examples with |predicted| < 1e-4 excluded`,
    success: `accuracy of PGD iterate k (= PGD-k) for k = 0..${flags.steps as number}; success rate among clean-correct examples`,
  };
  run.writeJson('config.json', { command: 'study kink', flags, protocol });
  const t0 = performance.now();
  const device = await createDevice();
  const interrupt = new Interrupt().install();
  let interrupted = false;
  try {
    for (const [i, e] of entries.entries()) {
      if (interrupt.requested) {
        interrupted = true;
        break;
      }
      const model = buildModel(device, e.modelFlags, data.train);
      try {
        const ckptPath = run.path(`model-${safe(e.label)}.safetensors`);
        if (e.source !== 'trained') loadModel(e.source, model);
        else if (flags.reuse && existsSync(ckptPath)) {
          loadModel(ckptPath, model);
          e.source = `reused ${ckptPath}`;
          console.log(`[${i + 1}/${entries.length}] ${e.label}: loaded ${ckptPath}`);
        } else {
          const tr = await train(device, model, data, flags, `[${i + 1}/${entries.length}] ${e.label}`, interrupt);
          if (tr.interrupted) {
            interrupted = true;
            break;
          }
          e.train = { steps: tr.steps, seconds: tr.seconds, testAcc: tr.testAcc, loop: flags.trainLoop as string };
          await saveModel(ckptPath, model, { config: model.config, step: tr.steps });
        }
        const prog = new Progress(`[${i + 1}/${entries.length}] ${e.label} study`, 3);
        let stage = 0;
        e.result = await studyKink(device, model, data.test, {
          limit: flags.limit as number,
          batchSize: flags.batchSize as number,
          eps,
          alpha: flags.alpha as number | undefined,
          steps: flags.steps as number,
          randomStart: flags.randomStart as boolean,
          seed: flags.seed as number,
          bnMode: flags.bnMode as 'eval' | 'train',
          taus,
          sigmas,
          fidelitySteps,
          successSteps,
          histRange: flags.histRange as number,
          bins: flags.bins as number,
          onProgress: (m) => prog.update(Math.min(stage++, 2), m),
        });
        prog.done(`(${e.result.seconds.toFixed(1)} s)`);
      } finally {
        model.dispose();
      }
    }
  } finally {
    interrupt.remove();
    device.destroy();
  }
  const done = entries.filter((e) => e.result) as (Entry & { result: KinkStudyResult })[];
  // The paired tests' reference: the plain ReLU model (no surrogate), when one was studied.
  const ref = done.find((e) => e.modelFlags.activation === 'relu' && !e.modelFlags.surrogate);
  const cmp = compareKinkStudies(done.map((e) => ({ label: e.label, result: e.result })), { reference: ref?.label ?? null });
  const seconds = (performance.now() - t0) / 1000;
  writeOutputs(run, done, cmp, protocol, seconds, interrupted ? 'interrupted' : 'completed');
  console.log(`\nKink study (${done.map((e) => e.label).join(', ')}):\n${cmp.lines.map((l) => `- ${l.replace(/\*\*/g, '')}`).join('\n')}\n\n${successTable(done)}\n\nwrote ${run.dir} (report.md, results.json, metrics.csv, per_image.json, plots) in ${seconds.toFixed(0)} s`);
  return interrupted ? 130 : 0;
}

async function train(device: Device, model: Model, data: ReturnType<typeof loadData>, flags: Record<string, unknown>, label: string, interrupt: Interrupt): Promise<TrainRunResult> {
  const steps = Math.ceil(data.train.n / (flags.trainBatchSize as number));
  const prog = new Progress(`${label} train`, steps);
  const f = {
    loop: flags.trainLoop,
    epochs: 1,
    batchSize: flags.trainBatchSize,
    optimizer: 'adam',
    lr: flags.lr,
    schedule: 'constant',
    momentum: 0.9,
    weightDecay: 0,
    eps: (flags.trainEps as number | undefined) ?? flags.eps,
    steps: 1,
    replays: 1,
    bnMode: flags.bnMode,
    attackerSmooth: true,
    optimizerSmooth: true,
    coCheckEvery: 0,
    evalEvery: 1,
    seed: flags.seed,
  };
  const tr = await trainRun(device, model, data, f, { label, interrupt, evalLimit: 1000, hooks: { onStep: (s) => prog.update(s.step + 1, `loss ${s.loss.toFixed(3)}`) } });
  prog.done(`test acc ${(100 * tr.testAcc).toFixed(1)}% (first 1000 test images)`);
  return tr;
}

const f4 = (v: number) => (Number.isFinite(v) ? (Math.abs(v) < 1e-3 && v !== 0 ? v.toExponential(2) : v.toFixed(4)) : 'n/a');
/** "0.0123 [0.0101, 0.0150]": a median with its distribution-free 95% interval. */
const medCi = (s: Summary) => `${f4(s.median)} [${Number.isFinite(s.medianLo) ? `${f4(s.medianLo)}, ${f4(s.medianHi)}` : 'n/a'}]`;
const ratePct = (v: number) => (Number.isFinite(v) ? `${(100 * v).toFixed(1)}` : 'n/a');

/** Accuracy and attack success per reported PGD iterate, with Wilson intervals (report and console). */
function successTable(done: { label: string; result: KinkStudyResult }[]): string {
  const first = done[0]?.result;
  if (!first) return '';
  const head = `| model | clean | ${first.successAt.map((s) => `PGD-${s.step}`).join(' | ')} |\n|---|---|${first.successAt.map(() => '---|').join('')}`;
  const rows = done.map((e) => `| ${e.label} | ${withCi(e.result.clean)} | ${e.result.successAt.map((s) => `${withCi(s)} (success ${s.cleanCorrect > 0 ? `${ratePct(s.successRate)}% [${ratePct(s.successLo)}, ${ratePct(s.successHi)}]` : 'n/a: no clean-correct image'})`).join(' | ')} |`);
  return [head, ...rows].join('\n');
}

const cmpCell = (c: PairedComparison) => `${points(c.diff)} [${points(c.lo)}, ${points(c.hi)}]`;
const pCell = (c: PairedComparison, family: number) => `${formatP(c.p)}${family > 1 ? ` (${formatP(c.pAdjusted)})` : ''}${c.significant ? ' *' : ''}`;

/** Every model against the reference: paired differences with Agresti-Min intervals and exact McNemar p-values. */
function pairedTable(cmp: ReturnType<typeof compareKinkStudies>): string {
  const k = cmp.paired.length;
  return `Differences in points, acc(model) - acc(${cmp.reference}) on the same images [Agresti-Min 95% interval]; exact McNemar p${k > 1 ? ` (Holm-adjusted over ${k} models in parentheses)` : ''}; * significant at 0.05.\n\n| model | final PGD iterate vs ${cmp.reference} | p | clean vs ${cmp.reference} | p |\n|---|---|---|---|---|\n${cmp.paired.map((p) => `| ${p.label} | ${cmpCell(p.pgd)} | ${pCell(p.pgd, k)} | ${cmpCell(p.clean)} | ${pCell(p.clean, k)} |`).join('\n')}`;
}

function writeOutputs(run: RunDir, done: (Entry & { result: KinkStudyResult })[], cmp: ReturnType<typeof compareKinkStudies>, protocol: Record<string, string>, seconds: number, status: string): void {
  const plots: string[] = [];
  const put = (file: string, svg: string, caption: string) => {
    run.writeText(file, svg);
    plots.push(`![${caption}](${file})`);
  };
  // metrics.csv: long format, one value per row, lo/hi its 95% interval where it has one
  // (Wilson for accuracies and rates, order statistics for medians, Agresti-Min for paired
  // differences; empty otherwise). Rewritten, also when a run directory is reused.
  rmSync(run.path('metrics.csv'), { force: true });
  const m = (label: string, metric: string, layer: string, param: number | string, value: number, iv?: { lo: number; hi: number }) => run.metric({ run: label, metric, layer, param, value, lo: iv?.lo, hi: iv?.hi });
  const mci = (s: Summary) => ({ lo: s.medianLo, hi: s.medianHi });
  for (const e of done) {
    const r = e.result;
    m(e.label, 'clean_accuracy', '', '', r.clean.accuracy, r.clean);
    for (const l of r.layers) r.taus.forEach((t, i) => (m(e.label, 'frac_abs_z_lt_tau', l.path, t, l.fraction[i]!), m(e.label, 'frac_abs_z_lt_tau_clean', l.path, t, l.clean[i]!)));
    for (const l of r.layers) m(e.label, 'frac_z_exactly_0', l.path, '', l.exactZero);
    m(e.label, 'cosine_mean', '', '', r.cosine.pooled.mean);
    m(e.label, 'cosine_median', '', '', r.cosine.pooled.median, mci(r.cosine.pooled));
    for (const s of r.stability) (m(e.label, `stability_median_${s.at}`, '', s.sigma, s.ratio.median, mci(s.ratio)), m(e.label, `stability_mean_${s.at}`, '', s.sigma, s.ratio.mean), m(e.label, `sign_flip_${s.at}`, '', s.sigma, s.signFlip.mean));
    for (const f of r.fidelity) (m(e.label, 'fidelity_median_ratio', '', f.step, f.ratio.median, mci(f.ratio)), m(e.label, 'fidelity_correlation', '', f.step, f.correlation));
    m(e.label, 'trajectory_fidelity_median_ratio', '', '', r.trajectoryFidelity.ratio.median);
    m(e.label, 'trajectory_fidelity_correlation', '', '', r.trajectoryFidelity.correlation);
    for (const s of r.success) (m(e.label, 'pgd_accuracy', '', s.step, s.accuracy, s), m(e.label, 'pgd_success_rate', '', s.step, s.successRate, { lo: s.successLo, hi: s.successHi }));
  }
  for (const p of cmp.paired) {
    for (const [key, c] of [['pgd_accuracy', p.pgd], ['clean_accuracy', p.clean]] as const) {
      m(p.label, `${key}_diff_vs_${cmp.reference}`, '', key === 'pgd_accuracy' ? done[0]!.result.steps : '', c.diff, c);
      m(p.label, `${key}_mcnemar_p_vs_${cmp.reference}`, '', '', c.p);
      m(p.label, `${key}_mcnemar_p_holm_vs_${cmp.reference}`, '', '', c.pAdjusted);
    }
  }
  const first = done[0]?.result;
  if (first) {
    const nLayers = Math.max(...done.map((e) => e.result.layers.length));
    for (let li = 0; li < nLayers; li++) {
      const series: Series[] = [];
      for (const e of done) {
        const l = e.result.layers[li];
        if (!l) continue;
        const w = (2 * e.result.histRange) / e.result.bins;
        for (const key of ['clean', 'adv']) if (l.histograms[key]) series.push({ name: `${e.label} ${key}`.slice(0, 24), dashed: key === 'adv', points: l.histograms[key]!.map((v, b) => [-e.result.histRange + (b + 0.5) * w, v] as [number, number]) });
      }
      put(`preact_hist_layer${li + 1}.svg`, lineChart({ title: `Pre-activations near 0, activation layer ${li + 1} (${done[0]!.result.layers[li]?.path ?? ''})`, xLabel: 'z (input of the activation)', yLabel: 'fraction of all values per bin', yMin: 0, series }), `pre-activation histogram, layer ${li + 1}`);
    }
    const tauMid = first.taus[Math.floor(first.taus.length / 2)]!;
    put('preact_fraction.svg', barChart({ title: 'Fraction of pre-activations with |z| < tau during PGD', yLabel: 'fraction', categories: first.layers.flatMap((l, li) => first.taus.map((t) => `L${li + 1} <${t}`)), series: done.map((e) => ({ name: e.label, values: e.result.layers.flatMap((l) => l.fraction) })) }), 'fraction near 0');
    put('preact_fraction_vs_step.svg', lineChart({ title: `Fraction with |z| < ${tauMid} per PGD iterate`, xLabel: 'PGD iterate k', yLabel: 'fraction', yMin: 0, series: done.flatMap((e) => e.result.layers.map((l, li) => ({ name: `${e.label} L${li + 1}`.slice(0, 24), points: l.fractionByStep.map((f, k) => [k, f[e.result.taus.indexOf(tauMid)]!] as [number, number]) }))) }), 'fraction near 0 per step');
    put('cosine_vs_step.svg', lineChart({ title: 'Cosine of consecutive PGD input gradients', xLabel: 'PGD step k (cos(g_k, g_k-1))', yLabel: 'mean cosine', series: done.map((e) => ({ name: e.label, points: e.result.cosine.byStep.map((c) => [c.step, c.mean] as [number, number]) })) }), 'cosine over steps');
    put('stability_vs_sigma.svg', lineChart({ title: 'Gradient change under input noise', xLabel: 'log10 sigma', yLabel: 'log10 median ||g(x+xi)-g(x)||/||g(x)||', series: done.flatMap((e) => (['clean', 'adv'] as const).map((at) => ({ name: `${e.label} ${at}`.slice(0, 24), dashed: at === 'adv', points: e.result.stability.filter((s) => s.at === at).map((s) => [Math.log10(s.sigma), Math.log10(s.ratio.median)] as [number, number]) }))) }), 'stability vs sigma');
    put('fidelity_vs_step.svg', lineChart({ title: 'First-order fidelity: actual / predicted loss change', xLabel: 'log10 step size h', yLabel: 'median (L(x+h sign g) - L(x)) / (h ||g||_1)', series: done.map((e) => ({ name: e.label, points: e.result.fidelity.map((f) => [Math.log10(f.step), f.ratio.median] as [number, number]) })) }), 'fidelity vs step size');
    put('success_vs_steps.svg', lineChart({ title: `PGD accuracy against iterations (eps ${first.eps})`, xLabel: 'PGD iterations k', yLabel: 'accuracy', yMin: 0, yMax: 1, note: `whiskers: Wilson 95% intervals over ${[...new Set(done.map((e) => e.result.n))].join(' / ')} images`, series: done.map((e) => ({ name: e.label, points: e.result.success.map((s) => [s.step, s.accuracy] as [number, number]), intervals: e.result.success.map((s) => [s.lo, s.hi] as [number, number]) })) }), 'accuracy vs steps');
  }
  // Per-image outcomes go to per_image.json ('1' correct), not into results.json.
  const models = done.map((e) => {
    const { perImage: _, ...result } = e.result;
    return { label: e.label, source: e.source, activation: e.modelFlags.activation, surrogate: e.modelFlags.surrogate ?? null, model: e.modelFlags.model, train: e.train ?? null, result };
  });
  run.writeJson('results.json', { status, seconds, protocol, summary: { mostStable: cmp.mostStable, stabilityScore: cmp.stabilityScore, stabilitySeparated: cmp.stabilitySeparated, reference: cmp.reference, paired: cmp.paired, lines: cmp.lines }, models });
  run.writeJson('per_image.json', { note: "per studied image (the first n test images, in order), '1' correct and '0' wrong: clean, and at PGD iterate k = 0..steps (byStep[k])", models: Object.fromEntries(done.map((e) => [e.label, { n: e.result.n, ...e.result.perImage }])) });
  const f = f4;
  const taus = first?.taus ?? [];
  const sig = first?.sigmas ?? [];
  const tables = first
    ? `## Models\n\n| model | source | training | clean acc (studied images) |\n|---|---|---|---|\n${done.map((e) => `| ${e.label} | ${e.source} | ${e.train ? `${e.train.steps} ${e.train.loop} steps, ${e.train.seconds.toFixed(0)} s, test acc ${(100 * e.train.testAcc).toFixed(1)}%` : '-'} | ${withCi(e.result.clean)} |`).join('\n')}\n\n` +
      `## Pre-activations near 0 during the attack\n\n| model | layer | ${taus.map((t) => `abs(z) < ${t}`).join(' | ')} | exactly 0 | clean, abs(z) < ${taus[Math.floor(taus.length / 2)]} |\n|---|---|${taus.map(() => '---|').join('')}---|---|\n${done.flatMap((e) => e.result.layers.map((l) => `| ${e.label} | ${l.path} | ${l.fraction.map(f).join(' | ')} | ${f(l.exactZero)} | ${f(l.clean[Math.floor(taus.length / 2)]!)} |`)).join('\n')}\n\n` +
      `## Gradient stability: median ||g(x+xi) - g(x)|| / ||g(x)|| [95% interval] (mean sign-flip fraction)\n\n| model | point | ${sig.map((s) => `sigma ${s}`).join(' | ')} |\n|---|---|${sig.map(() => '---|').join('')}\n${done.flatMap((e) => (['clean', 'adv'] as const).map((at) => `| ${e.label} | ${at} | ${sig.map((s) => e.result.stability.find((x) => x.sigma === s && x.at === at)).map((x) => (x ? `${medCi(x.ratio)} (${f(x.signFlip.mean)})` : 'n/a')).join(' | ')} |`)).join('\n')}\n\n` +
      `## Consecutive PGD gradients and first-order fidelity\n\n| model | cos mean | cos median [95%] | cos p10 | ${first.fidelity.map((x) => `h=${x.step}: median ratio [95%] / corr`).join(' | ')} | PGD path: ratio / corr |\n|---|---|---|---|${first.fidelity.map(() => '---|').join('')}---|\n${done.map((e) => `| ${e.label} | ${f(e.result.cosine.pooled.mean)} | ${medCi(e.result.cosine.pooled)} | ${f(e.result.cosine.pooled.p10)} | ${e.result.fidelity.map((x) => `${medCi(x.ratio)} / ${f(x.correlation)}`).join(' | ')} | ${f(e.result.trajectoryFidelity.ratio.median)} / ${f(e.result.trajectoryFidelity.correlation)} |`).join('\n')}\n\n` +
      `## Attack success against PGD iterations\n\nAccuracy under PGD-k [Wilson 95% interval] (success: clean-correct images misclassified at iterate k, of the clean-correct ones [Wilson 95%]).\n\n${successTable(done)}\n` +
      (cmp.paired.length ? `\n## Against ${cmp.reference} on the same images\n\n${pairedTable(cmp)}\n` : '')
    : 'No model finished.\n';
  run.writeText(
    'report.md',
    `# Kink study: gradient quality at ReLU's kink\n\nStatus: ${status}. Wall time ${seconds.toFixed(0)} s.\n\n## Summary\n\n${cmp.lines.map((l) => `- ${l}`).join('\n')}\n\nEvery statement above is computed from the measured values in results.json (per-image outcomes in per_image.json). Accuracies carry Wilson 95% intervals, medians distribution-free 95% intervals, and the accuracy comparisons are exact McNemar tests on the same ${first?.n ?? 0} images with Holm's adjustment and Agresti-Min intervals (docs/statistics.md). The intervals cover the sampling of test images only: the models differ in more than the activation (their training runs differ too), and another seed moves every number.\n\n## Protocol\n\n${Object.entries(protocol).map(([k, v]) => `- **${k}**: ${v}`).join('\n')}\n\n${tables}\n## Plots\n\n${plots.join('\n')}\n`,
  );
}
