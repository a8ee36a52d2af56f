// The benchmark suite: creates a device, loads the TF.js peer (bench/peers/tfjs.ts) unless
// told not to, runs the cases of every bench/*.bench.ts module (each exports
// `cases(device, { quick, tfjs })`), then the optional PyTorch CPU peer in its own process
// (bench/peers/torch.ts), prints one JSON line per case and the tables, and writes
// bench/results/<date>-<adapter>[-quick][-filtered].json (adapter, limits, versions, commit,
// rows); --report adds the markdown report with SVG charts (bench/report.ts) and --compare
// checks against an earlier result (bench/compare.ts). cli/cmd_bench.ts parses the flags.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { adapterName, createDevice } from '../engine/index.ts';
import type { Device } from '../engine/device.ts';
import { defaultMnistDir } from '../nn/data/mnist.ts';
import { linkBaselines, printResults, runCases, type BenchCase, type BenchRow } from './harness.ts';
import { compareRows, formatComparison, loadRows } from './compare.ts';
import { formatPeerSummary, peerSummary, writeReport, type BenchResult } from './report.ts';
import { loadTfjs, type TfPeer } from './peers/tfjs.ts';
import { runTorchPeer, torchAvailable, torchNote } from './peers/torch.ts';

export interface BenchModuleOptions {
  quick: boolean;
  /** The TF.js peer when it loaded (null when disabled or unavailable). */
  tfjs: TfPeer | null;
}

interface BenchModule {
  cases(device: Device, opts: BenchModuleOptions): BenchCase[] | Promise<BenchCase[]>;
}

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

function matches(filter: string | null, c: { group: string; name: string }): boolean {
  if (filter === null) return true;
  const id = `${c.group}/${c.name}`.toLowerCase();
  return filter.toLowerCase().split('|').some((f) => id.includes(f));
}

/** Run the suite; returns the exit code (1 when --compare finds a slower case). */
export async function runSuite(o: SuiteOptions): Promise<number> {
  const t0 = performance.now();
  const errors: string[] = [];
  const notes: string[] = [];
  const device = await createDevice();
  const adapter = adapterName(device);
  console.log(`kinkless bench: adapter "${adapter}" (${device.adapter.vendor}/${device.adapter.architecture}), features [${device.features.join(', ')}]`);
  let tfjs: TfPeer | null = null;
  if (o.tfjs) {
    const r = await loadTfjs();
    if (r.peer) {
      tfjs = r.peer;
      console.log(`kinkless bench: TF.js ${tfjs.version} webgpu backend on adapter ${tfjs.adapter}`);
    } else {
      const msg = `TF.js peer unavailable, its cases are skipped: ${r.error}`;
      console.warn(`kinkless bench: ${msg}`);
      errors.push(msg);
    }
  } else notes.push('TF.js peer disabled (--no-tfjs)');
  const rows: BenchRow[] = [];
  let torchVersion: string | null = null;
  try {
    const files = readdirSync(HERE).filter((f) => /\.bench\.[jt]s$/.test(f)).sort();  // .js in the built package (dist/)
    for (const f of files) {
      const mod = (await import(pathToFileURL(join(HERE, f)).href)) as Partial<BenchModule>;
      if (typeof mod.cases !== 'function') {
        console.warn(`kinkless bench: ${f} exports no cases(device, opts); skipped`);
        continue;
      }
      const cases = (await mod.cases(device, { quick: o.quick, tfjs })).filter((c) => matches(o.filter, c));
      if (!cases.length) continue;
      const got = await runCases(device, cases, {
        runs: o.quick ? 5 : 10,
        warmup: o.quick ? 1 : 3,
        method: o.wall ? 'wall' : 'auto',
        // NOTE: slow cases (composed activations, naive convs, TF.js's conv filter gradient)
        // get fewer runs, down to 2, so the whole suite fits in 10 minutes here.
        budgetMs: o.quick ? 1200 : 3000,
        minRuns: 2,
        onRow: (r) => console.error(`  ${r.group}/${r.name}: ${r.median_ms.toFixed(3)} ms (${r.method})`),
        onError: (c, e) => {
          const msg = `${c.group}/${c.name}: ${e.message.split('\n')[0]}`;
          console.error(`  ${msg} (skipped)`);
          errors.push(msg);
        },
      });
      rows.push(...got);
      // NOTE: each file's cases leave buffers in the pool's free lists (the 16M activation
      // cases several 64 MB ones); measured 2026-12-04, keeping them slowed the e2e steps
      // that follow by 15-20% on lavapipe (docs/software-gpu.md). Every file starts with an
      // empty pool, as it would in a process of its own.
      device.pool.trim();
    }
  } finally {
    device.destroy();
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
    adapterInfo: { ...device.adapter },
    features: device.features,
    limits: device.limits,
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
