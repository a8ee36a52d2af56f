// `kinkless eval` and `kinkless attack`: load a checkpoint (or build a fresh model) and
// measure clean accuracy, robust accuracy per attack with the per-example worst case,
// and (eval) the gradient-masking sanity checks. Writes runs/<name>/.
import { wilson } from '../adversarial/stats.ts';
import { existsSync } from 'node:fs';
import { createDevice } from '../engine/index.ts';
import { evaluateRobust, maskingChecks, type MaskingReport } from '../adversarial/eval.ts';
import { withCi } from '../adversarial/stats_report.ts';
import { Progress } from './progress.ts';
import { makeAttack, type Attack } from '../adversarial/attacks/index.ts';
import { loadModel } from '../nn/model_checkpoint.ts';
import { helpText, parseFlags, UsageError, type FlagSpec } from './args.ts';
import { DATA_FLAGS, MODEL_FLAGS, buildModel, loadData, modelFlagsFromCheckpoint } from './setup.ts';
import { RUN_FLAGS, RunDir, defaultRunName } from './rundir.ts';
import { barChart, lineChart } from './svg.ts';
import { cleanLogits, perExampleCsv } from './per_example.ts';
import { AUTOATTACK_FLAGS, autoAttackSection, runAutoAttackCli, splitAttacks } from './eval_autoattack.ts';
import { KNOWN_STAGES } from '../adversarial/autoattack_stages.ts';

const ATTACK_KINDS = ['fgsm', 'fgm', 'pgd', 'pgd_l2', 'apgd'];

const FLAGS: Record<string, FlagSpec> = {
  checkpoint: { type: 'string', help: 'model checkpoint (.safetensors written by kinkless); without it a fresh model is built from the model flags' },
  ...DATA_FLAGS,
  ...MODEL_FLAGS,
  attacks: { type: 'list', help: `attacks to run: single attacks ${ATTACK_KINDS.join('|')} (worst case per example over all), and/or AutoAttack stages ${KNOWN_STAGES.join('|')} (run in the given order, each on the examples still robust)`, default: ['fgsm', 'pgd'] },
  eps: { type: 'number', help: 'attack radius', default: 0.1, min: 0 },
  steps: { type: 'int', help: 'PGD / APGD iterations', default: 20, min: 1 },
  restarts: { type: 'int', help: 'PGD / APGD restarts', default: 1, min: 1 },
  alpha: { type: 'number', help: 'PGD step (default eps/4; L2: eps/4 too)', min: 0 },
  bnMode: { type: 'string', help: 'batch-norm mode during the attack', choices: ['eval', 'train'], default: 'eval' },
  limit: { type: 'int', help: 'number of test images', default: 1000, min: 1 },
  batchSize: { type: 'int', help: 'evaluation batch size', default: 250, min: 1 },
  masking: { type: 'bool', help: 'eval: run the gradient-masking sanity checks', default: true },
  savePerExample: { type: 'bool', help: 'write per_example.csv: label, clean prediction and logits, and the outcome under each attack and the worst case, per test image', default: false },
  ...AUTOATTACK_FLAGS,
  ...RUN_FLAGS,
};

export const EVAL_HELP = helpText(
  'kinkless eval [options]',
  'Clean and robust accuracy of a model (per attack and the per-example worst case over all\nattacks and restarts), plus gradient-masking sanity checks: robust accuracy must not rise\nwith eps, PGD must be no weaker than FGSM, a huge eps must drive accuracy to ~0, and\nexamples with all-zero input gradients are counted.',
  FLAGS,
  ['npx kinkless eval --checkpoint runs/my-run/small_cnn.safetensors --eps 0.1 --attacks fgsm,pgd,apgd', 'npx kinkless eval --checkpoint model.safetensors --limit 200 --no-masking', 'npx kinkless eval --checkpoint model.safetensors --eps 0.3 --autoattack', 'npx kinkless eval --checkpoint model.safetensors --eps 0.3 --attacks pgd,apgd-ce,apgd-t --aa-steps 20'],
);

export const ATTACK_HELP = helpText(
  'kinkless attack [options]',
  'Run attacks on a model and report accuracy under each attack and the per-example worst case.',
  FLAGS,
  ['npx kinkless attack --checkpoint runs/my-run/small_cnn.safetensors --attacks pgd --eps 0.3 --steps 40 --restarts 5'],
);

function buildAttacks(f: Record<string, unknown>, kinds: string[]): Attack[] {
  const eps = f.eps as number;
  const steps = f.steps as number;
  const restarts = f.restarts as number;
  const alpha = (f.alpha as number | undefined) ?? eps / 4;
  const bnMode = f.bnMode as 'eval' | 'train';
  const seed = f.seed as number;
  return kinds.map((k) => {
    switch (k) {
      case 'fgsm':
        return makeAttack({ kind: 'fgsm', eps, bnMode });
      case 'fgm':
        return makeAttack({ kind: 'fgm', eps, bnMode });
      case 'pgd_l2':
        return makeAttack({ kind: 'pgd', norm: 'l2', eps, alpha, steps, restarts, randomStart: true, bnMode, seed });
      case 'apgd':
        return makeAttack({ kind: 'apgd', eps, steps, restarts, bnMode, seed });
      default:
        return makeAttack({ kind: 'pgd', eps, alpha, steps, restarts, randomStart: true, bnMode, seed });
    }
  });
}

/** The robust-vs-eps curve as a table: PGD accuracy with its Wilson 95% interval (docs/statistics.md). */
function epsTable(m: MaskingReport): string {
  return `| eps | PGD accuracy [Wilson 95%] (first ${m.n} test images) |\n|---|---|\n${m.epsCurve.map((p) => `| ${p.eps}${p.eps === 0 ? ' (clean)' : ''} | ${withCi({ accuracy: p.accuracy, lo: p.lo!, hi: p.hi! })} |`).join('\n')}`;
}

export async function cmdEval(argv: string[], mode: 'eval' | 'attack'): Promise<number> {
  const { flags, help } = parseFlags(`kinkless ${mode}`, argv, FLAGS);
  if (help) {
    console.log(mode === 'eval' ? EVAL_HELP : ATTACK_HELP);
    return 0;
  }
  const { single, stages, skipped } = splitAttacks(flags.attacks as string[], ATTACK_KINDS, flags.autoattack as boolean);
  const ckpt = flags.checkpoint as string | undefined;
  if (ckpt !== undefined && !existsSync(ckpt)) throw new UsageError(`--checkpoint: file "${ckpt}" does not exist`);
  // Rebuild the architecture from the checkpoint's metadata.
  const modelFlags = ckpt ? modelFlagsFromCheckpoint(ckpt, flags) : flags;
  const data = loadData({ ...flags, testLimit: flags.limit });
  const run = new RunDir((flags.name as string) ?? defaultRunName(mode), flags.out as string);
  run.writeJson('config.json', { command: mode, ...flags });
  const device = await createDevice();
  try {
    const model = buildModel(device, modelFlags, data.train);
    if (ckpt) loadModel(ckpt, model);
    const attacks = buildAttacks(flags, single);
    console.log(`kinkless ${mode}: ${model.config.name}${ckpt ? ` from ${ckpt}` : ' (fresh, untrained)'} on ${data.test.n} test images, eps ${flags.eps}`);
    const prog = new Progress(mode, Math.min(data.test.n, flags.limit as number));
    const report = await evaluateRobust(device, model, data.test, {
      attacks,
      batchSize: flags.batchSize as number,
      limit: flags.limit as number,
      countZeroGrad: mode === 'eval',
      perExample: flags.savePerExample as boolean,
      onProgress: (i) => prog.update(Math.round(i.done), `images (${i.attack})`),
    });
    prog.done('');
    // Wilson 95% intervals over the evaluated images (docs/statistics.md)
    const ci = (k: number) => wilson(k, report.n);
    const pm = (k: number) => `${(100 * (k / report.n)).toFixed(2)}% [95% CI ${(100 * ci(k).lo).toFixed(1)}, ${(100 * ci(k).hi).toFixed(1)}]`;
    const lines = [`clean: ${pm(report.clean.correct)}`, ...report.attacks.map((a) => `${a.name}: ${pm(a.correct)} (${a.seconds.toFixed(1)} s)`), `worst case over ${report.worstCase.over.join(', ')}: ${pm(report.worstCase.correct)}`];
    for (const l of lines) console.log(`  ${l}`);
    const aa = stages.length ? await runAutoAttackCli(device, model, data.test, report.n, stages, skipped, flags, run) : null;
    let masking = null;
    if (mode === 'eval' && flags.masking) {
      masking = await maskingChecks(device, model, data.test, { eps: flags.eps as number, limit: Math.min(200, flags.limit as number), seed: flags.seed as number, bnMode: flags.bnMode as 'eval' | 'train' });
      console.log(`  gradient-masking checks: ${masking.passed ? 'passed' : 'FAILED'}`);
      for (const w of masking.warnings) console.log(`    - ${w}`);
      run.writeText('robust_vs_eps.svg', lineChart({ title: 'PGD accuracy against eps', xLabel: 'eps', yLabel: 'accuracy', yMin: 0, yMax: 1, series: [{ name: 'PGD', points: masking.epsCurve.map((p) => [p.eps, p.accuracy]), intervals: masking.epsCurve.map((p) => [p.lo!, p.hi!] as [number, number]) }], note: `whiskers: Wilson 95% intervals over ${masking.n} images` }));
    }
    run.writeText('accuracy.svg', barChart({ title: `Accuracy (eps ${flags.eps})`, yLabel: 'accuracy', yMax: 1, categories: ['clean', ...report.attacks.map((a) => a.name), 'worst case'], series: [{ name: 'accuracy', values: [report.clean.accuracy, ...report.attacks.map((a) => a.accuracy), report.worstCase.accuracy], intervals: [report.clean.correct, ...report.attacks.map((a) => a.correct), report.worstCase.correct].map((k) => [ci(k).lo, ci(k).hi] as [number, number]) }], note: `whiskers: Wilson 95% intervals over ${report.n} images` }));
    const intervals = { clean: ci(report.clean.correct), attacks: report.attacks.map((a) => ({ name: a.name, ...ci(a.correct) })), worstCase: ci(report.worstCase.correct) };
    if (flags.savePerExample) {
      const { logits, classes } = await cleanLogits(device, model, data.test, report.n, flags.batchSize as number);
      run.writeText('per_example.csv', perExampleCsv(report, data.test.labels, logits, classes));
      delete report.perExample; // in per_example.csv, not repeated in results.json
    }
    run.writeJson('results.json', { report, intervals, masking });
    run.metric({ clean: report.clean.accuracy, worst: report.worstCase.accuracy, ...Object.fromEntries(report.attacks.map((a) => [a.name, a.accuracy])), ...(aa ? { autoattack: aa.robust.accuracy } : {}) });
    run.writeText('report.md', `# kinkless ${mode}\n\n- model: ${model.config.name}${ckpt ? ` (${ckpt})` : ''}\n- ${report.n} test images, eps ${flags.eps}\n\n${lines.map((l) => `- ${l}`).join('\n')}\n${masking ? `\n## Gradient-masking checks: ${masking.passed ? 'passed' : 'FAILED'}\n\n${masking.warnings.map((w) => `- ${w}`).join('\n')}\n\n${epsTable(masking)}\n\n![robust vs eps](robust_vs_eps.svg)\n` : ''}${aa ? `\n## AutoAttack\n\n${autoAttackSection(aa, skipped)}` : ''}\n![accuracy](accuracy.svg)\n`);
    console.log(`results in ${run.dir}`);
    return 0;
  } finally {
    device.destroy();
  }
}
