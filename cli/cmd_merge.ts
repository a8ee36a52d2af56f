// `kinkless merge <run dirs...>`: builds one `reproduce sat` report from the run
// directories of its shards (or of a partial run and its --resume). Checks that every
// directory holds the same plan, collects jobs/<id>.json, refuses conflicting duplicates
// and missing jobs (unless --partial), and writes the report as a single run would.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { helpText, parseFlags, UsageError, type FlagSpec } from './args.ts';
import { RUN_FLAGS, RunDir, defaultRunName } from './rundir.ts';
import type { SatPlan } from './sat_protocol.ts';
import type { JobFile } from './sat_job.ts';
import { writeSatReport } from './cmd_reproduce.ts';

const FLAGS: Record<string, FlagSpec> = {
  partial: { type: 'bool', help: 'write the report even when jobs are missing (they are listed; no statement involves them)', default: false },
  ...RUN_FLAGS,
  name: { ...RUN_FLAGS.name!, help: 'run name of the merged report (directory under --out)' },
};

export const MERGE_HELP = helpText(
  'kinkless merge <run dirs...> [options]',
  `Merge the run directories of a sharded \`kinkless reproduce sat\` (--shard i/n) into one
report: results.json, report.md, the plots and timing.json, identical to what one process
running every job writes. Every directory must hold the same plan (config.json; same
budget, eps, seeds and job list). Checkpoints stay in the shard directories.`,
  FLAGS,
  ['npx kinkless merge runs/sweep-0 runs/sweep-1 runs/sweep-2 runs/sweep-3 --name sweep', 'npx kinkless merge shards/* --name sweep --partial   # a shard failed: report what finished'],
);

function readPlan(dir: string): SatPlan {
  const p = join(dir, 'config.json');
  if (!existsSync(p)) throw new UsageError(`kinkless merge: "${dir}" has no config.json; expected a \`reproduce sat\` run directory`);
  const c = JSON.parse(readFileSync(p, 'utf8')) as { command?: string; plan?: SatPlan };
  if (c.command !== 'reproduce sat' || !c.plan?.hash) throw new UsageError(`kinkless merge: "${dir}" is not a \`reproduce sat\` run (config.json command ${JSON.stringify(c.command)})`);
  return c.plan;
}

/** Loads and checks the shards' plans and job files. */
export function collectShards(dirs: string[]): { plan: SatPlan; files: Map<string, JobFile>; missing: string[] } {
  if (dirs.length === 0) throw new UsageError('kinkless merge: expected at least one run directory');
  const plans = dirs.map(readPlan);
  const plan = plans[0]!;
  plans.forEach((p, i) => {
    if (p.hash !== plan.hash) throw new UsageError(`kinkless merge: "${dirs[i]}" holds plan ${p.hash.slice(0, 12)}, "${dirs[0]}" holds ${plan.hash.slice(0, 12)}: the shards were started with different budgets, eps, seeds or activations`);
  });
  const ids = new Set(plan.jobs.map((j) => j.id));
  const files = new Map<string, JobFile>();
  const source = new Map<string, string>();
  for (const dir of dirs) {
    const jd = join(dir, 'jobs');
    if (!existsSync(jd)) continue;
    for (const name of readdirSync(jd).filter((n) => n.endsWith('.json')).sort()) {
      const f = JSON.parse(readFileSync(join(jd, name), 'utf8')) as JobFile;
      const id = f.result?.id;
      if (!id || !ids.has(id) || f.result.planHash !== plan.hash) throw new UsageError(`kinkless merge: ${join(jd, name)} is not a job of plan ${plan.hash.slice(0, 12)}`);
      const prev = files.get(id);
      if (prev && JSON.stringify(prev.result) !== JSON.stringify(f.result)) throw new UsageError(`kinkless merge: job ${id} is in "${source.get(id)}" and "${dir}" with different results; keep one of them`);
      if (!prev) {
        files.set(id, f);
        source.set(id, dir);
      }
    }
  }
  return { plan, files, missing: plan.jobs.filter((j) => !files.has(j.id)).map((j) => j.id) };
}

export async function cmdMerge(argv: string[]): Promise<number> {
  const { flags, positional, help } = parseFlags('kinkless merge', argv, FLAGS);
  if (help) {
    console.log(MERGE_HELP);
    return 0;
  }
  const { plan, files, missing } = collectShards(positional);
  if (missing.length && !flags.partial) throw new UsageError(`kinkless merge: ${missing.length} of ${plan.jobs.length} jobs missing (${missing.join(', ')}); run their shards (--resume skips finished jobs) or pass --partial`);
  const run = new RunDir((flags.name as string) ?? defaultRunName('sat-merged'), flags.out as string);
  run.writeJson('config.json', { command: 'merge', shards: positional, plan });
  const { status, sentences } = writeSatReport(run, plan, files);
  console.log(`${sentences.map((s) => `- ${s.replace(/\*\*/g, '')}`).join('\n')}\n\nmerged ${files.size} jobs from ${positional.length} directories into ${run.dir}; status ${status}`);
  return status === 'completed' ? 0 : 3;
}
