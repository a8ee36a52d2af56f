// `kinkless eval --autoattack` and `--attacks apgd-ce,apgd-t,...` as a user runs them (a
// child process): bad stage names exit 2 naming the value and the allowed list; a run writes
// autoattack.json / autoattack.md, prints a progress line per stage and batch, its clean
// pass agrees per image with evaluateRobust's (per_example.csv, another code path), and
// each stage attacks exactly what the previous one left.
import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { STAGES, STANDARD_SEQUENCE } from '../../adversarial/autoattack_stages.ts';

const BIN = join(process.cwd(), 'bin', 'kinkless.mjs');

function run(args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 300_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('kinkless eval with AutoAttack', () => {
  it('rejects bad stage lists with the value and the allowed names', () => {
    const a = run(['eval', '--attacks', 'pgd,apgd-x', '--limit', '5']);
    expect(a.code).toBe(2);
    expect(a.err).toMatch(/--attacks: "apgd-x" is not an attack; allowed: fgsm, fgm, pgd, pgd_l2, apgd .* or apgd-ce, apgd-t, fab-t, square/);
    const b = run(['eval', '--attacks', 'apgd-ce', '--autoattack', '--limit', '5']);
    expect(b.code).toBe(2);
    expect(b.err).toMatch(/--autoattack runs the standard sequence/);
    const missing = STANDARD_SEQUENCE.find((s) => !STAGES[s]);
    if (missing) {
      const c = run(['eval', '--attacks', missing, '--limit', '5']);
      expect(c.code).toBe(2);
      expect(c.err).toContain(`AutoAttack stage "${missing}" is not built in this version; available stages: ${Object.keys(STAGES).join(', ')}`);
    }
  });

  it('--attacks apgd-ce,apgd-t writes autoattack.json that agrees with the single-attack evaluation', () => {
    const out = mkdtempSync(join(tmpdir(), 'kinkless-aa-'));
    const n = 23;
    const r = run(['eval', '--limit', String(n), '--batch-size', '8', '--attacks', 'fgsm,apgd-ce,apgd-t', '--aa-steps', '3', '--aa-targets', '3', '--eps', '0.05', '--no-masking', '--save-per-example', '--name', 'aa', '--out', out]);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/autoattack: apgd-ce batch 1\/\d+: \d+ of \d+ broken/);
    expect(r.err).toMatch(/autoattack: apgd-t \(target rank 4\) batch/);
    const aa = JSON.parse(readFileSync(join(out, 'aa', 'autoattack.json'), 'utf8'));
    expect(aa.n).toBe(n);
    expect(aa.sequence).toEqual(['apgd-ce', 'apgd-t']);
    expect(aa.stages.map((s: { label: string }) => s.label)).toEqual(['apgd-ce', 'apgd-t (target rank 2)', 'apgd-t (target rank 3)', 'apgd-t (target rank 4)']);
    // clean pass: the same per-image outcome as evaluateRobust's (per_example.csv)
    const csv = readFileSync(join(out, 'aa', 'per_example.csv'), 'utf8').trim().split('\n');
    const col = csv[0]!.split(',').indexOf('correct_clean');
    const cleanCsv = csv.slice(1).map((l) => Number(l.split(',')[col]));
    expect(aa.perExample.clean).toEqual(cleanCsv);
    let left = cleanCsv.reduce((a, b) => a + b, 0);
    expect(aa.clean.correct).toBe(left);
    for (const s of aa.stages) {
      expect(s.attacked).toBe(left);
      left -= s.broken;
      expect(s.robust).toBe(left);
    }
    expect(aa.robust.correct).toBe(left);
    expect(aa.perExample.robust.reduce((a: number, b: number) => a + b, 0)).toBe(left);
    expect(aa.robust.lo).toBeLessThanOrEqual(aa.robust.accuracy);
    const md = readFileSync(join(out, 'aa', 'autoattack.md'), 'utf8');
    expect(md).toMatch(/\| apgd-t \(target rank 3\) \| \d+ \| \d+ \| 0 \|/);
    expect(md).toMatch(/robust accuracy \(worst case over all stages\): [\d.]+% \[[\d.]+, [\d.]+\] \(Wilson 95%\)/);
    expect(readFileSync(join(out, 'aa', 'report.md'), 'utf8')).toMatch(/## AutoAttack/);
  }, 300_000);

  it('--autoattack runs the standard sequence (the built stages, the rest named as not run)', () => {
    const out = mkdtempSync(join(tmpdir(), 'kinkless-aa-'));
    const r = run(['eval', '--limit', '9', '--autoattack', '--attacks', 'fgsm', '--aa-steps', '2', '--aa-targets', '2', '--aa-queries', '20', '--no-masking', '--name', 'std', '--out', out]);
    expect(r.code, r.err).toBe(0);
    const aa = JSON.parse(readFileSync(join(out, 'std', 'autoattack.json'), 'utf8'));
    const built = STANDARD_SEQUENCE.filter((s) => STAGES[s]);
    const skipped = STANDARD_SEQUENCE.filter((s) => !STAGES[s]);
    expect(aa.sequence).toEqual(built);
    expect(aa.skipped).toEqual(skipped);
    expect(aa.standard).toBe(false); // reduced budgets
    if (skipped.length) expect(r.out).toContain(`${skipped.join(', ')} not built in this version`);
  }, 300_000);
});
