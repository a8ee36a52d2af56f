// `npm run bench [-- --filter substring] [-- --quick]`: creates a device, prints the
// adapter, runs the cases of every bench/*.bench.ts module (each exports
// `cases(device, { quick })`), then prints JSON lines and a table (bench/harness.ts).
// --filter keeps cases whose "group/name" contains the substring (case-insensitive);
// --quick asks modules for smaller sizes and uses fewer runs; --wall forces wall-clock timing.
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createDevice, adapterName } from '../engine/index.ts';
import type { Device } from '../engine/device.ts';
import { printResults, runCases, type BenchCase, type BenchRow } from './harness.ts';

export interface BenchModuleOptions {
  quick: boolean;
}

interface BenchModule {
  cases(device: Device, opts: BenchModuleOptions): BenchCase[] | Promise<BenchCase[]>;
}

function parseArgs(argv: string[]): { filter: string | null; quick: boolean; wall: boolean } {
  let filter: string | null = null;
  let quick = false;
  let wall = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--quick') quick = true;
    else if (a === '--wall') wall = true;
    else if (a === '--filter') filter = argv[++i] ?? '';
    else if (a.startsWith('--filter=')) filter = a.slice('--filter='.length);
    else throw new Error(`kinkless bench: unknown argument "${a}" (expected --filter <substring>, --quick or --wall)`);
  }
  return { filter, quick, wall };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const here = dirname(fileURLToPath(import.meta.url));
  const files = readdirSync(here).filter((f) => f.endsWith('.bench.ts')).sort();
  const device = await createDevice();
  console.log(`kinkless bench: adapter "${adapterName(device)}" (${device.adapter.vendor}/${device.adapter.architecture}), features [${device.features.join(', ')}]`);
  const rows: BenchRow[] = [];
  try {
    for (const f of files) {
      const mod = (await import(pathToFileURL(join(here, f)).href)) as Partial<BenchModule>;
      if (typeof mod.cases !== 'function') {
        console.warn(`kinkless bench: ${f} exports no cases(device, opts); skipped`);
        continue;
      }
      let cases = await mod.cases(device, { quick: args.quick });
      if (args.filter !== null) {
        const q = args.filter.toLowerCase();
        cases = cases.filter((c) => `${c.group}/${c.name}`.toLowerCase().includes(q));
      }
      if (!cases.length) continue;
      const got = await runCases(device, cases, {
        runs: args.quick ? 5 : 10,
        warmup: args.quick ? 1 : 3,
        method: args.wall ? 'wall' : 'auto',
        onRow: (r) => console.error(`  ${r.group}/${r.name}: ${r.median_ms.toFixed(3)} ms`),
      });
      rows.push(...got);
    }
    printResults(rows);
  } finally {
    device.destroy();
  }
}

await main();
