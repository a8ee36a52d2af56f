// bench/compare.ts: the regression rule (median change against the min..max noise of both
// runs, with a relative floor), method mismatches, new and vanished cases, file loading.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compareRows, formatComparison, loadRows } from '../../bench/compare.ts';
import type { TimingMethod } from '../../bench/harness.ts';

const row = (name: string, median: number, min: number, max: number, method: TimingMethod = 'timestamp') => ({ group: 'g', name, median_ms: median, min_ms: min, max_ms: max, method });

describe('compareRows', () => {
  it('flags a case only when its median moved by more than the half-spreads of both runs', () => {
    // old spread 9..11 (half 1), new spread 11..15 (half 2): threshold 3 ms.
    const old = [row('a', 10, 9, 11), row('b', 10, 9, 11), row('c', 10, 9, 11)];
    const now = [row('a', 13.5, 11, 15), row('b', 12.5, 11, 15), row('c', 6.5, 6, 7)];
    const [a, b, c] = compareRows(old, now, { minRel: 0 });
    expect(a!.status).toBe('slower'); // +3.5 > 3
    expect(b!.status).toBe('same'); // +2.5 <= 3
    expect(c!.status).toBe('faster'); // -3.5, threshold 1 + 0.5 = 1.5
    expect(a!.change).toBeCloseTo(0.35, 12);
    expect(a!.noise).toBeCloseTo(0.3, 12);
  });

  it('applies the relative floor when both runs are tight', () => {
    const old = [row('a', 100, 100, 100)];
    expect(compareRows(old, [row('a', 104, 104, 104)])[0]!.status).toBe('same'); // floor 5%
    expect(compareRows(old, [row('a', 106, 106, 106)])[0]!.status).toBe('slower');
    expect(compareRows(old, [row('a', 104, 104, 104)], { minRel: 0.01 })[0]!.status).toBe('slower');
  });

  it('does not compare across timing methods and lists new and vanished cases', () => {
    const out = compareRows([row('a', 1, 1, 1), row('gone', 1, 1, 1)], [row('a', 5, 5, 5, 'wall'), row('new', 1, 1, 1)]);
    expect(out.map((e) => [e.name, e.status])).toEqual([
      ['a', 'method changed'],
      ['new', 'new'],
      ['gone', 'gone'],
    ]);
    expect(formatComparison(out)).toContain('1 method changed, 1 new, 1 gone');
  });

  it('rejects a negative floor and files that are not suite results', () => {
    expect(() => compareRows([], [], { minRel: -1 })).toThrow(/minRel must be >= 0, got -1/);
    const dir = mkdtempSync(join(tmpdir(), 'kinkless-cmp-'));
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ rows: [{ name: 'x' }] }));
    expect(() => loadRows(bad)).toThrow(/expected a suite result with a "rows" array/);
    expect(() => loadRows(join(dir, 'missing.json'))).toThrow(/cannot read a JSON result/);
    const good = join(dir, 'good.json');
    writeFileSync(good, JSON.stringify({ rows: [row('a', 1, 1, 2)] }));
    expect(loadRows(good)).toHaveLength(1);
  });
});
