// Regression check between two suite results (bench/results/*.json): each case present in
// both (same group, name) is 'slower' when its median grew by more than the measured noise,
// 'faster' when it shrank by more, else 'same'. Noise = half the min..max spread of the
// old run plus half that of the new run, and at least `minRel` (default 5%) of the old
// median (a run of few, tight samples still wobbles that much on lavapipe). Cases timed by
// different methods (GPU timestamps vs wall clock) are not compared.
import { readFileSync } from 'node:fs';
import type { BenchRow } from './harness.ts';

export type CompareStatus = 'slower' | 'faster' | 'same' | 'method changed' | 'new' | 'gone';

export interface CompareEntry {
  group: string;
  name: string;
  status: CompareStatus;
  oldMs?: number;
  newMs?: number;
  /** new median / old median - 1 (positive = slower). */
  change?: number;
  /** The threshold the change was held against, relative to the old median. */
  noise?: number;
}

type Timing = Pick<BenchRow, 'group' | 'name' | 'median_ms' | 'min_ms' | 'max_ms' | 'method'>;

function key(r: { group: string; name: string }): string {
  return `${r.group}\u0000${r.name}`;
}

/** Compare every case of `now` with `old`; entries keep `now`'s order, then cases that disappeared. */
export function compareRows(old: Timing[], now: Timing[], opts: { minRel?: number } = {}): CompareEntry[] {
  const minRel = opts.minRel ?? 0.05;
  if (!(minRel >= 0)) throw new Error(`kinkless bench: compare: minRel must be >= 0, got ${String(minRel)}`);
  const before = new Map(old.map((r) => [key(r), r]));
  const out: CompareEntry[] = [];
  for (const n of now) {
    const o = before.get(key(n));
    before.delete(key(n));
    if (!o) {
      out.push({ group: n.group, name: n.name, status: 'new', newMs: n.median_ms });
      continue;
    }
    const e: CompareEntry = { group: n.group, name: n.name, status: 'same', oldMs: o.median_ms, newMs: n.median_ms, change: n.median_ms / o.median_ms - 1 };
    if (o.method !== n.method) {
      e.status = 'method changed';
      out.push(e);
      continue;
    }
    const spread = (o.max_ms - o.min_ms) / 2 + (n.max_ms - n.min_ms) / 2;
    const threshold = Math.max(spread, minRel * o.median_ms);
    e.noise = threshold / o.median_ms;
    const d = n.median_ms - o.median_ms;
    e.status = d > threshold ? 'slower' : -d > threshold ? 'faster' : 'same';
    out.push(e);
  }
  for (const o of before.values()) out.push({ group: o.group, name: o.name, status: 'gone', oldMs: o.median_ms });
  return out;
}

/** The rows of a suite result file (bench/results/*.json), with a clear error when it is not one. */
export function loadRows(path: string): BenchRow[] {
  let j: unknown;
  try {
    j = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`kinkless bench: --compare ${path}: cannot read a JSON result (${(e as Error).message})`);
  }
  const rows = (j as { rows?: unknown }).rows;
  if (!Array.isArray(rows) || !rows.every((r) => r && typeof r.group === 'string' && typeof r.name === 'string' && typeof r.median_ms === 'number')) {
    throw new Error(`kinkless bench: --compare ${path}: expected a suite result with a "rows" array of {group, name, median_ms, min_ms, max_ms, method}`);
  }
  return rows as BenchRow[];
}

const pct = (x: number | undefined) => (x === undefined ? '' : `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)}%`);

/** A readable table of the comparison, slower cases first. */
export function formatComparison(entries: CompareEntry[]): string {
  const order: CompareStatus[] = ['slower', 'faster', 'method changed', 'same', 'new', 'gone'];
  const sorted = [...entries].sort((a, b) => order.indexOf(a.status) - order.indexOf(b.status));
  const head = ['status', 'group', 'name', 'old ms', 'new ms', 'change', 'noise'];
  const body = sorted.map((e) => [e.status, e.group, e.name, e.oldMs?.toFixed(3) ?? '', e.newMs?.toFixed(3) ?? '', pct(e.change), e.noise === undefined ? '' : `±${(e.noise * 100).toFixed(1)}%`]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const fmt = (c: string[]) => c.map((s, i) => (i >= 3 ? s.padStart(w[i]!) : s.padEnd(w[i]!))).join('  ').trimEnd();
  const counts = order.map((s) => [s, entries.filter((e) => e.status === s).length] as const).filter(([, n]) => n > 0);
  return [fmt(head), w.map((n) => '-'.repeat(n)).join('  '), ...body.map(fmt), '', counts.map(([s, n]) => `${n} ${s}`).join(', ')].join('\n');
}
