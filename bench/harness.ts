// Benchmark harness: times GPU work encoded through a Device and prints one JSON line per
// case plus an aligned table. The API is small and meant to stay stable:
//
//   interface BenchCase {
//     name: string; group: string;          // e.g. group 'matmul', name 'fast 1024'
//     setup?(): Promise<void> | void;       // allocate inputs, warm pipelines (not timed)
//     run(): void | Promise<void>;          // ENCODE one unit of work (dispatches); do not sync
//     teardown?(): void;                    // dispose what setup allocated
//     bytes?: number; flops?: number;       // per run() call -> gbps / gflops columns
//     baseline?: string;                    // name of a case in the same group
//     method?: 'wall' | 'timestamp';        // force this case's timing method
//     sync?(): Promise<void>;               // wait for this case's work (a peer's own device): wall clock
//     runs?: number; warmup?: number;       // per-case counts (expensive end-to-end steps)
//     items?: number;                       // items (images) per run() call -> items_per_s
//     impl?: string;                        // who runs it: 'kinkless' (default), 'tfjs', 'torch-1t', ...
//   }
//   measure(device, fn, { warmup = 3, runs = 10, inner = 1, method = 'auto', sync?, budgetMs?, minRuns? })
//     -> { median, min, max, runs, method }  (ms per fn call)
//   runCases(device, cases, opts?) -> BenchRow[]   (setup, measure, teardown; fills gflops/gbps/ratio;
//                                           a case that throws is reported to opts.onError and skipped)
//   linkBaselines(rows)                     // (re)compute ratios once every row is in (peers added later)
//     ratio = our throughput / the baseline's: GFLOP/s if both have flops, else GB/s if both
//     have bytes, else baseline median / our median. > 1 means faster than the baseline.
//   printResults(rows)                      // JSON lines, then the table
//
// A *.bench.ts module exports `cases(device, { quick }) => BenchCase[] | Promise<BenchCase[]>`;
// bench/suite.ts discovers every such module in this folder (`kinkless bench` / `npm run bench`
// pass --filter / --quick).
//
// Timing: each run is `inner` calls of fn followed by `await device.sync()`, after a sync
// that drains earlier work. Method 'timestamp' (default when the device has the
// 'timestamp-query' feature) brackets the run with two empty compute passes writing GPU
// timestamps, so it counts GPU execution from the first dispatch to the last; 'wall'
// is performance.now() around the synced batch (it adds submit and ~17 us/dispatch of
// encoding). Either way the value is divided by `inner`.
import type { Device } from '../engine/device.ts';
import { mainThreadCpuSeconds } from '../engine/gpu_wait.ts';

export interface BenchCase {
  name: string;
  group: string;
  setup?(): Promise<void> | void;
  run(): void | Promise<void>;
  teardown?(): void;
  bytes?: number;
  flops?: number;
  baseline?: string;
  /** Force this case's timing method (e.g. 'wall' for peer pairs and end-to-end steps). */
  method?: TimingMethod;
  /** Wait for this case's work when it runs outside `device` (TF.js on its own device); implies wall clock. */
  sync?(): Promise<void>;
  /** Per-case counts, overriding the run's (expensive cases). */
  runs?: number;
  warmup?: number;
  /** Items (e.g. images) processed per run() call: fills items_per_s. */
  items?: number;
  /** Who runs the case: 'kinkless' when omitted; 'tfjs', 'torch-1t', ... for peers. */
  impl?: string;
}

export type TimingMethod = 'wall' | 'timestamp';

export interface MeasureOptions {
  warmup?: number;
  runs?: number;
  inner?: number;
  /** 'auto' uses GPU timestamps where the device supports them, else wall clock. */
  method?: TimingMethod | 'auto';
  /** Wait for the work instead of device.sync() (work on another device); needs wall clock. */
  sync?: () => Promise<void>;
  /**
   * Time budget per case (ms): when the first warm-up call shows that `runs` calls would
   * take longer, use fewer runs (at least `minRuns`, default 3) and at most one more
   * warm-up call (none when the first call took over a quarter of the budget).
   */
  budgetMs?: number;
  minRuns?: number;
}

export interface Measurement {
  median: number;
  min: number;
  max: number;
  runs: number;
  method: TimingMethod;
  /** Median CPU time of the JS main thread per call (ms), where readable (Linux). */
  mainCpu?: number;
}

export interface BenchRow {
  group: string;
  name: string;
  median_ms: number;
  min_ms: number;
  max_ms: number;
  runs: number;
  method: TimingMethod;
  /** Main-thread CPU ms per call while the work ran (a busy wait shows here). */
  main_cpu_ms?: number;
  gflops?: number;
  gbps?: number;
  items_per_s?: number;
  baseline?: string;
  ratio?: number;
  impl?: string;
}

/** GPU timestamps around a batch: two empty compute passes on either side of the work. */
class TimestampPair {
  private readonly set: GPUQuerySet;
  private readonly resolve: GPUBuffer;
  private readonly read: GPUBuffer;
  constructor(private readonly device: Device) {
    const gpu = device.gpu;
    this.set = gpu.createQuerySet({ type: 'timestamp', count: 2 });
    this.resolve = gpu.createBuffer({ size: 16, usage: 0x200 /* QUERY_RESOLVE */ | 0x4 /* COPY_SRC */ });
    this.read = gpu.createBuffer({ size: 16, usage: 0x1 /* MAP_READ */ | 0x8 /* COPY_DST */ });
  }
  private mark(index: 0 | 1): void {
    const gpu = this.device.gpu;
    const enc = gpu.createCommandEncoder();
    const writes = index === 0 ? { querySet: this.set, beginningOfPassWriteIndex: 0 } : { querySet: this.set, endOfPassWriteIndex: 1 };
    enc.beginComputePass({ timestampWrites: writes }).end();
    if (index === 1) {
      enc.resolveQuerySet(this.set, 0, 2, this.resolve, 0);
      enc.copyBufferToBuffer(this.resolve, 0, this.read, 0, 16);
    }
    gpu.queue.submit([enc.finish()]);
  }
  begin(): void {
    this.device.flush();
    this.mark(0);
  }
  /** Flushes the batch, writes the end stamp and returns the elapsed GPU time in ms. */
  async end(): Promise<number> {
    this.device.flush();
    this.mark(1);
    await this.device.sync();
    await this.device.wait(this.read.mapAsync(0x1 /* READ */));
    const t = new BigUint64Array(this.read.getMappedRange().slice(0));
    this.read.unmap();
    return Number(t[1]! - t[0]!) / 1e6;
  }
  destroy(): void {
    this.set.destroy();
    this.resolve.destroy();
    this.read.destroy();
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h]! : (s[h - 1]! + s[h]!) / 2;
}

/** Time `inner` calls of fn (which encodes GPU work) per run; ms per call. */
export async function measure(device: Device, fn: () => void | Promise<void>, opts: MeasureOptions = {}): Promise<Measurement> {
  const { inner = 1 } = opts;
  let { warmup = 3, runs = 10 } = opts;
  const want = opts.sync ? 'wall' : (opts.method ?? 'auto');
  if (opts.sync && opts.method === 'timestamp') throw new Error(`kinkless: bench: a custom sync (work on another device) is timed by wall clock, not 'timestamp'`);
  const method: TimingMethod = want === 'auto' ? (device.features.includes('timestamp-query') ? 'timestamp' : 'wall') : want;
  if (method === 'timestamp' && !device.features.includes('timestamp-query')) {
    throw new Error(`kinkless: bench: method 'timestamp' needs the 'timestamp-query' feature, which this device lacks`);
  }
  const sync = opts.sync ?? (() => device.sync());
  if (opts.budgetMs !== undefined && warmup > 0) {
    await sync();
    const t0 = performance.now();
    await fn();
    await sync();
    const first = performance.now() - t0;
    const fit = Math.floor(opts.budgetMs / (first * inner));
    if (fit < runs) {
      runs = Math.max(opts.minRuns ?? 3, fit);
      // A call that long has compiled its pipelines and warmed the caches by itself.
      warmup = first > opts.budgetMs / 4 ? 0 : Math.min(warmup - 1, 1);
    } else warmup--;
  }
  for (let i = 0; i < warmup; i++) await fn();
  await sync();
  const ts = method === 'timestamp' ? new TimestampPair(device) : null;
  const times: number[] = [];
  const cpus: number[] = [];
  try {
    for (let r = 0; r < runs; r++) {
      await sync();
      const c0 = mainThreadCpuSeconds();
      let ms: number;
      if (ts) {
        ts.begin();
        for (let i = 0; i < inner; i++) await fn();
        ms = await ts.end();
      } else {
        const t0 = performance.now();
        for (let i = 0; i < inner; i++) await fn();
        await sync();
        ms = performance.now() - t0;
      }
      times.push(ms / inner);
      const c1 = mainThreadCpuSeconds();
      if (c0 !== null && c1 !== null) cpus.push(((c1 - c0) * 1e3) / inner);
    }
  } finally {
    ts?.destroy();
  }
  const m: Measurement = { median: median(times), min: Math.min(...times), max: Math.max(...times), runs, method };
  if (cpus.length === runs) m.mainCpu = median(cpus);
  return m;
}

export interface RunOptions extends MeasureOptions {
  /** Called with each row as soon as it is measured (progress output). */
  onRow?(row: BenchRow): void;
  /** Called when a case throws (setup, run or teardown); the case is skipped. Default: rethrow. */
  onError?(c: BenchCase, err: Error): void;
}

/** ratio = our throughput / the baseline's (GFLOP/s, else GB/s, else items/s, else inverse time). */
function ratioOf(row: BenchRow, base: BenchRow): number {
  if (row.gflops !== undefined && base.gflops !== undefined) return row.gflops / base.gflops;
  if (row.gbps !== undefined && base.gbps !== undefined) return row.gbps / base.gbps;
  if (row.items_per_s !== undefined && base.items_per_s !== undefined) return row.items_per_s / base.items_per_s;
  return base.median_ms / row.median_ms;
}

/** Fill `ratio` of every row whose baseline (same group) is among `rows`, wherever it sits. */
export function linkBaselines(rows: BenchRow[]): BenchRow[] {
  for (const r of rows) {
    if (!r.baseline) continue;
    const base = rows.find((b) => b.group === r.group && b.name === r.baseline);
    if (base) r.ratio = ratioOf(r, base);
  }
  return rows;
}

/** Set up, measure and tear down each case in order; fills gflops, gbps, items/s and baseline ratios. */
export async function runCases(device: Device, cases: BenchCase[], opts: RunOptions = {}): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const c of cases) {
    let m: Measurement;
    try {
      await c.setup?.();
      try {
        const mo: MeasureOptions = { ...opts, method: c.method ?? opts.method, sync: c.sync?.bind(c) };
        // A case that sets its own counts is not shortened by the budget.
        if (c.runs !== undefined) {
          mo.runs = c.runs;
          delete mo.budgetMs;
        }
        if (c.warmup !== undefined) mo.warmup = c.warmup;
        m = await measure(device, () => c.run(), mo);
      } finally {
        c.teardown?.();
      }
    } catch (e) {
      if (!opts.onError) throw e;
      opts.onError(c, e as Error);
      continue;
    }
    const row: BenchRow = { group: c.group, name: c.name, median_ms: m.median, min_ms: m.min, max_ms: m.max, runs: m.runs, method: m.method };
    if (m.mainCpu !== undefined) row.main_cpu_ms = m.mainCpu;
    if (c.flops) row.gflops = c.flops / (m.median * 1e6);
    if (c.bytes) row.gbps = c.bytes / (m.median * 1e6);
    if (c.items) row.items_per_s = c.items / (m.median / 1e3);
    if (c.impl) row.impl = c.impl;
    if (c.baseline) {
      row.baseline = c.baseline;
      const base = rows.find((r) => r.group === c.group && r.name === c.baseline);
      if (base) row.ratio = ratioOf(row, base);
    }
    rows.push(row);
    opts.onRow?.(row);
  }
  return rows;
}

function round(x: number, digits = 4): number {
  return Number(x.toPrecision(digits));
}

/** One JSON line per row, then an aligned table. */
export function printResults(rows: BenchRow[], out: (line: string) => void = console.log): void {
  for (const r of rows) {
    const j: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(r)) j[k] = typeof v === 'number' ? round(v) : v;
    out(JSON.stringify(j));
  }
  const head = ['group', 'name', 'median ms', 'min ms', 'max ms', 'runs', 'method', 'main CPU ms', 'GFLOP/s', 'GB/s', 'items/s', 'vs baseline'];
  const body = rows.map((r) => [
    r.group,
    r.name,
    r.median_ms.toFixed(3),
    r.min_ms.toFixed(3),
    r.max_ms.toFixed(3),
    String(r.runs),
    r.method,
    r.main_cpu_ms !== undefined ? r.main_cpu_ms.toFixed(0) : '',
    r.gflops !== undefined ? r.gflops.toFixed(2) : '',
    r.gbps !== undefined ? r.gbps.toFixed(2) : '',
    r.items_per_s !== undefined ? r.items_per_s.toFixed(1) : '',
    r.ratio !== undefined ? `${r.ratio.toFixed(2)}x ${r.baseline}` : '',
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const numeric = new Set([2, 3, 4, 5, 7, 8, 9, 10]);
  const fmt = (cells: string[]) => cells.map((c, i) => (numeric.has(i) ? c.padStart(w[i]!) : c.padEnd(w[i]!))).join('  ').trimEnd();
  out('');
  out(fmt(head));
  out(w.map((n) => '-'.repeat(n)).join('  '));
  for (const b of body) out(fmt(b));
}
