// One bench file's cases in a process of its own. bench/suite.ts spawns this once per
// bench/*.bench.ts file, so nothing one file leaves behind (pooled buffers, pipelines, a
// peer library's device and its threads) touches the next file's timings; each file
// starts as it would when run alone (docs/software-gpu.md, "State carried between bench
// cases"). The child creates its own device, loads the TF.js peer when the module asks for
// it (`export const usesTfjs = true`), runs the cases through the harness, and writes
// { rows, errors, notes, tfjs } as JSON to the path it was given.
//   node [--import tsx] bench/suite_file.ts <bench file> <result.json> '<options JSON>'
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createDevice } from '../engine/index.ts';
import type { Device } from '../engine/device.ts';
import { runCases, type BenchCase, type BenchRow } from './harness.ts';
import { loadTfjs, type TfPeer } from './peers/tfjs.ts';

export interface BenchModuleOptions {
  quick: boolean;
  /** The TF.js peer when it loaded (null when disabled, unavailable or not asked for). */
  tfjs: TfPeer | null;
}

interface BenchModule {
  cases(device: Device, opts: BenchModuleOptions): BenchCase[] | Promise<BenchCase[]>;
  /** The module's cases include TF.js rows: load the peer for it. */
  usesTfjs?: boolean;
}

export interface FileRunOptions {
  quick: boolean;
  wall: boolean;
  filter: string | null;
  tfjs: boolean;
}

export interface FileRunResult {
  rows: BenchRow[];
  errors: string[];
  notes: string[];
  /** The TF.js peer's versions when this file loaded it. */
  tfjs: { version: string; backendVersion: string } | null;
}

/** Whether a case is kept by a "a|b" filter on "group/name" (case-insensitive). */
export function matches(filter: string | null, c: { group: string; name: string }): boolean {
  if (filter === null) return true;
  const id = `${c.group}/${c.name}`.toLowerCase();
  return filter.toLowerCase().split('|').some((f) => id.includes(f));
}

/** Run the cases of one bench module (a path) on a fresh device of this process. */
export async function runBenchFile(path: string, o: FileRunOptions): Promise<FileRunResult> {
  const out: FileRunResult = { rows: [], errors: [], notes: [], tfjs: null };
  const mod = (await import(pathToFileURL(path).href)) as Partial<BenchModule>;
  if (typeof mod.cases !== 'function') {
    console.warn(`kinkless bench: ${path} exports no cases(device, opts); skipped`);
    return out;
  }
  const device = await createDevice();
  try {
    let tfjs: TfPeer | null = null;
    if (mod.usesTfjs && o.tfjs) {
      const r = await loadTfjs();
      if (r.peer) {
        tfjs = r.peer;
        out.tfjs = { version: tfjs.version, backendVersion: tfjs.backendVersion };
        console.log(`kinkless bench: TF.js ${tfjs.version} webgpu backend on adapter ${tfjs.adapter}`);
      } else {
        const msg = `TF.js peer unavailable, its cases are skipped: ${r.error}`;
        console.warn(`kinkless bench: ${msg}`);
        out.errors.push(msg);
      }
    }
    const cases = (await mod.cases(device, { quick: o.quick, tfjs })).filter((c) => matches(o.filter, c));
    out.rows = await runCases(device, cases, {
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
        out.errors.push(msg);
      },
    });
  } finally {
    device.destroy();
  }
  return out;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [file, resultPath, opts] = process.argv.slice(2);
  if (!file || !resultPath || !opts) {
    console.error("usage: suite_file.ts <bench file> <result.json> '<options JSON>'");
    process.exit(2);
  }
  const r = await runBenchFile(resolve(file), JSON.parse(opts) as FileRunOptions);
  writeFileSync(resultPath, JSON.stringify(r));
  // NOTE: a peer library (TF.js, jax-js) may keep handles open; the result is written.
  process.exit(0);
}
