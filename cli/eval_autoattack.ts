// `kinkless eval --autoattack` / `--attacks apgd-ce,apgd-t,...`: splits the --attacks list
// into single attacks (evaluateRobust) and AutoAttack stages (the runner), with clear errors
// for unknown or not-yet-built names; runs the runner on the evaluated images with a
// progress line per stage and batch, and writes autoattack.json and autoattack.md.
import { Tensor, type Device } from '../engine/index.ts';
import type { Module } from '../nn/module.ts';
import type { ImageSet } from '../nn/data/loader.ts';
import { autoAttack, autoAttackTable, type AutoAttackResult } from '../adversarial/autoattack.ts';
import { KNOWN_STAGES, STAGES, STANDARD_SEQUENCE } from '../adversarial/autoattack_stages.ts';
import { UsageError, type FlagSpec } from './args.ts';
import type { RunDir } from './rundir.ts';

export const AUTOATTACK_FLAGS: Record<string, FlagSpec> = {
  autoattack: { type: 'bool', help: `run AutoAttack's standard sequence (${STANDARD_SEQUENCE.join(', ')}; the stages not built in this version are skipped with a warning) on the evaluated images; writes autoattack.json and autoattack.md`, default: false },
  norm: { type: 'string', help: 'AutoAttack threat norm', choices: ['linf', 'l2'], default: 'linf' },
  aaSteps: { type: 'int', help: 'AutoAttack: APGD iterations per run and FAB-T iterations per target (standard: 100)', default: 100, min: 1 },
  aaTargets: { type: 'int', help: 'AutoAttack: target classes of APGD-T and FAB-T (standard: 9)', default: 9, min: 1 },
  aaQueries: { type: 'int', help: 'AutoAttack: Square queries per example (standard: 5000)', default: 5000, min: 1 },
};

/**
 * Splits --attacks into single attacks and AutoAttack stages (kept in the given order),
 * adding the standard sequence for --autoattack. Errors name the bad value and the allowed list.
 */
export function splitAttacks(list: string[], singleKinds: readonly string[], standard: boolean): { single: string[]; stages: string[]; skipped: string[] } {
  const allowed = `${singleKinds.join(', ')} (single attacks, worst case per example) or ${KNOWN_STAGES.join(', ')} (AutoAttack stages, each on the examples still robust)`;
  const single: string[] = [];
  const stages: string[] = [];
  for (const a of list) {
    if (singleKinds.includes(a)) single.push(a);
    else if (KNOWN_STAGES.includes(a)) {
      if (!STAGES[a]) throw new UsageError(`--attacks: AutoAttack stage "${a}" is not built in this version; available stages: ${Object.keys(STAGES).join(', ')}`);
      if (stages.includes(a)) throw new UsageError(`--attacks: "${a}" is listed twice`);
      stages.push(a);
    } else throw new UsageError(`--attacks: "${a}" is not an attack; allowed: ${allowed}`);
  }
  let skipped: string[] = [];
  if (standard) {
    if (stages.length) throw new UsageError(`--autoattack runs the standard sequence (${STANDARD_SEQUENCE.join(', ')}); drop the AutoAttack stages from --attacks (${stages.join(', ')}) or drop --autoattack`);
    stages.push(...STANDARD_SEQUENCE.filter((s) => STAGES[s]));
    skipped = STANDARD_SEQUENCE.filter((s) => !STAGES[s]);
  }
  return { single, stages, skipped };
}

/** Runs the stages on the first n images of `data`; prints the table and writes the files. */
export async function runAutoAttackCli(device: Device, model: Module, data: ImageSet, n: number, stages: string[], skipped: string[], flags: Record<string, unknown>, run: RunDir): Promise<AutoAttackResult> {
  const sample = data.shape.reduce((a, b) => a * b, 1);
  const x = Tensor.from(device, data.images.subarray(0, n * sample), [n, ...data.shape]);
  const y = Tensor.from(device, data.labels.subarray(0, n), [n], 'i32');
  if (skipped.length) console.log(`  AutoAttack: ${skipped.join(', ')} not built in this version: running ${stages.join(', ')} only; this is NOT the full AutoAttack`);
  let r: AutoAttackResult;
  try {
    r = await autoAttack(model, x, y, {
      norm: flags.norm as 'linf' | 'l2',
      eps: flags.eps as number,
      attacks: stages,
      seed: flags.seed as number,
      bnMode: flags.bnMode as 'eval' | 'train',
      batchSize: flags.batchSize as number,
      budgets: { apgdSteps: flags.aaSteps as number, fabSteps: flags.aaSteps as number, targets: flags.aaTargets as number, squareQueries: flags.aaQueries as number },
      onProgress: (p) => process.stderr.write(`autoattack: ${p.stage} batch ${p.batch}/${p.batches}: ${p.broken} of ${p.attacked} broken, robust ${p.robust}/${p.n} (${((100 * p.robust) / p.n).toFixed(1)}%) ${p.seconds.toFixed(0)}s\n`),
    });
  } finally {
    x.dispose();
    y.dispose();
  }
  const table = autoAttackTable(r);
  run.writeJson('autoattack.json', { ...r, skipped });
  run.writeText('autoattack.md', `# AutoAttack\n\n${autoAttackSection(r, skipped)}`);
  for (const l of table.trimEnd().split('\n')) console.log(`  ${l}`);
  if (skipped.length) console.log(`  not run (not built in this version): ${skipped.join(', ')}`);
  return r;
}

/** The Markdown section of report.md and autoattack.md: the table and what was not run. */
export function autoAttackSection(r: AutoAttackResult, skipped: string[]): string {
  const notes = skipped.length ? `\nNot run (not built in this version): ${skipped.join(', ')}. This is not the full AutoAttack.\n` : '';
  return `${autoAttackTable(r)}${notes}`;
}
