// The benchmark suite: runs every bench/*.bench.ts module (each exports
// `cases(device, { quick, tfjs })`) in a child process of its own (bench/suite_file.ts:
// a fresh device, TF.js loaded there when the module uses it), one file after the other,
// then the optional PyTorch CPU peer in its own process (bench/peers/torch.ts); prints one
// JSON line per case and the tables, and writes
// bench/results/<date>-<adapter>[-quick][-filtered].json (adapter, limits, versions, commit,
// rows); --report adds the markdown report with SVG charts (bench/report.ts) and --compare
// checks against an earlier result (bench/compare.ts). cli/cmd_bench.ts parses the flags.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { adapterName, createDevice } from '../engine/index.ts';
import { defaultMnistDir } from '../nn/data/mnist.ts';
import { linkBaselines, printResults, type BenchRow } from './harness.ts';
import { matches, type FileRunOptions, type FileRunResult } from './suite_file.ts';
import { compareRows, formatComparison, loadRows } from './compare.ts';
import { formatPeerSummary, peerSummary, writeReport, type BenchResult } from './report.ts';
import { runTorchPeer, torchAvailable, torchNote } from './peers/torch.ts';

export interface SuiteOptions {
  filter: string | null;
  quick: boolean;
  wall: boolean;
  report: boolean;
  compare: string | null;
  /** Results folder (default bench/results). */
  out: string;
  tfjs: boolean;
  torch: boolean;
  /** Write the result JSON (default true). */
  save?: boolean;
}

const HERE = dirname(fileURLToPath(import.meta.url));
export const DEFAULT_RESULTS_DIR = join(HERE, 'results');

function pkgVersion(name: string): string {
  try {
    return (createRequire(import.meta.url)(`${name}/package.json`) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

function rootVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(HERE, '..', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

function gitCommit(): { sha: string | null; dirty: boolean } {
  try {
    const sha = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: HERE, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: HERE, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() !== '';
    return { sha, dirty };
  } catch {
    return { sha: null, dirty: false };
  }
}

/** A file-name-safe adapter name. */
export function adapterSlug(name: string): string {
  // The part before any ':' or '(' names the device ("llvmpipe: Mesa 25.0.7 (LLVM 15.0.6)" -> llvmpipe).
  const head = name.split(/[:(]/)[0]!.trim() || name;
  return head.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 40) || 'adapter';
}

/**
 * Run one bench file in a child process (bench/suite_file.ts) and read its result file.
 * Sources run through tsx's loader; the built package runs the .js file directly.
 */
function runFileInChild(file: string, resultPath: string, o: FileRunOptions): Promise<FileRunResult | { error: string }> {
  const ts = import.meta.url.endsWith('.ts');
  const child = join(HERE, ts ? 'suite_file.ts' : 'suite_file.js');
  const loader = ts ? ['--import', import.meta.resolve('tsx')] : [];
  return new Promise((done) => {
    const p = spawn(process.execPath, [...loader, child, file, resultPath, JSON.stringify(o)], { stdio: ['ignore', 'inherit', 'inherit'] });
    p.on('error', (e) => done({ error: `could not start a child process: ${e.message}` }));
    p.on('exit', (code, signal) => {
      if (code !== 0) return done({ error: `its process exited with ${signal ?? `code ${code}`}` });
      try {
        done(JSON.parse(readFileSync(resultPath, 'utf8')) as FileRunResult);
      } catch (e) {
        done({ error: `no result from its process (${(e as Error).message})` });
      }
    });
  });
}

/** Run the suite; returns the exit code (1 when --compare finds a slower case). */
export async function runSuite(o: SuiteOptions): Promise<number> {
  const t0 = performance.now();
  const errors: string[] = [];
  const notes: string[] = [];
  // The parent only reads what the adapter is; every bench file runs in a child process
  // with its own device (bench/suite_file.ts), one after the other.
  const device = await createDevice();
  const adapter = adapterName(device);
  const info = { adapterInfo: { ...device.adapter }, features: device.features, limits: device.limits };
  console.log(`kinkless bench: adapter "${adapter}" (${device.adapter.vendor}/${device.adapter.architecture}), features [${device.features.join(', ')}]`);
  device.destroy();
  if (!o.tfjs) notes.push('TF.js peer disabled (--no-tfjs)');
  const rows: BenchRow[] = [];
  let tfjs: FileRunResult['tfjs'] = null;
  let torchVersion: string | null = null;
  const files = readdirSync(HERE).filter((f) => /\.bench\.[jt]s$/.test(f)).sort(); // .js in the built package (dist/)
  const tmp = mkdtempSync(join(tmpdir(), 'kinkless-bench-'));
  try {
    for (const f of files) {
      const got = await runFileInChild(join(HERE, f), join(tmp, `${f}.json`), { quick: o.quick, wall: o.wall, filter: o.filter, tfjs: o.tfjs });
      if ('error' in got) {
        console.error(`kinkless bench: ${f}: ${got.error}`);
        errors.push(`${f}: ${got.error}`);
        continue;
      }
      rows.push(...got.rows);
      for (const e of got.errors) if (!errors.includes(e)) errors.push(e);
      for (const n of got.notes) if (!notes.includes(n)) notes.push(n);
      tfjs ??= got.tfjs;
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  // PyTorch after the GPU cases, never beside them: the two would share the CPU.
  const peerRows = rows.some((r) => r.group.startsWith('peer ') || r.group.startsWith('e2e '));
  if (o.torch && peerRows) {
    torchVersion = torchAvailable();
    if (!torchVersion) notes.push(`PyTorch peer skipped: "${process.env.KINKLESS_TORCH_PYTHON || '/usr/bin/python3'} -c 'import torch'" fails (Debian: apt install python3-torch)`);
    else {
      console.error(`kinkless bench: PyTorch ${torchVersion} CPU peer (separate process) ...`);
      let mnistDir: string | undefined;
      try {
        mnistDir = defaultMnistDir();
      } catch {
        mnistDir = undefined;
      }
      try {
        const groups = new Set(rows.map((r) => r.group));
        // The peer filters on the group only: pass the group part of "group/name" filters.
        const filter = o.filter?.split('|').map((f) => f.split('/')[0]).join('|') || null;
        const t = await runTorchPeer({ quick: o.quick, filter, mnistDir, onLine: (l) => console.error(`  torch: ${l}`) });
        // Keep the peer rows of the groups we ran (the filter may have left some out).
        rows.push(...t.rows.filter((r) => groups.has(r.group)));
        notes.push(torchNote(t));
        if (t.blas.reference) console.warn(`kinkless bench: ${torchNote(t)}`);
      } catch (e) {
        const msg = `PyTorch peer failed: ${(e as Error).message}`;
        console.warn(`kinkless bench: ${msg}`);
        errors.push(msg);
      }
    }
  } else if (!o.torch) notes.push('PyTorch peer disabled (--no-torch)');
  linkBaselines(rows);
  printResults(rows);
  const summary = peerSummary(rows);
  if (summary.length) console.log(`\nkinkless against the peers (speedup = peer time / kinkless time):\n${formatPeerSummary(summary)}`);
  const totalSeconds = (performance.now() - t0) / 1000;
  console.log(`\nkinkless bench: ${rows.length} rows in ${totalSeconds.toFixed(1)} s${errors.length ? `, ${errors.length} error(s):\n  ${errors.join('\n  ')}` : ''}`);

  const date = new Date().toISOString().slice(0, 10);
  const stem = `${date}-${adapterSlug(adapter)}${o.quick ? '-quick' : ''}${o.filter !== null ? '-filtered' : ''}`;
  const result: BenchResult = {
    date: new Date().toISOString(),
    adapter,
    ...info,
    versions: {
      node: process.versions.node,
      webgpu: pkgVersion('webgpu'),
      kinkless: rootVersion(),
      tfjs: tfjs?.version ?? null,
      tfjsBackendWebgpu: tfjs?.backendVersion ?? null,
      torch: torchVersion,
    },
    commit: gitCommit(),
    options: { quick: o.quick, filter: o.filter, wall: o.wall },
    totalSeconds,
    rows,
    errors,
    notes,
  };
  if (o.save !== false || o.report) {
    mkdirSync(o.out, { recursive: true });
    const jsonPath = join(o.out, `${stem}.json`);
    writeFileSync(jsonPath, JSON.stringify(result, null, 1) + '\n');
    console.log(`kinkless bench: wrote ${jsonPath}`);
    if (o.report) for (const p of writeReport(result, join(o.out, `${stem}.md`))) console.log(`kinkless bench: wrote ${p}`);
  }
  if (o.compare) {
    // Cases the filter left out of this run are not 'gone'.
    const cmp = compareRows(loadRows(o.compare), rows).filter((e) => e.status !== 'gone' || matches(o.filter, e));
    console.log(`\nkinkless bench: against ${o.compare} (slower = median grew by more than the min..max noise of both runs):\n${formatComparison(cmp)}`);
    if (cmp.some((e) => e.status === 'slower')) return 1;
  }
  return 0;
}
