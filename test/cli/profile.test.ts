// `kinkless profile` as a user runs it (a child process) on the small CNN: standard, fast-AT
// and PGD-AT training steps and a PGD attack print the table and write the JSON, whose rows
// account for every dispatch of the measured steps; bad flags exit 2.
import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const BIN = join(process.cwd(), 'bin', 'kinkless.mjs');
const SMALL = ['--train-limit', '32', '--batch-size', '8', '--warmup', '1', '--steps', '2'];

function run(args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [BIN, 'profile', ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('kinkless profile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kinkless-profile-'));
  const cases: [string, string[]][] = [
    ['standard', []],
    ['fast', ['--loop', 'fast']],
    ['pgd', ['--loop', 'pgd', '--attack-steps', '2']],
    ['attack', ['--attack', 'pgd', '--attack-steps', '2']],
  ];
  for (const [name, extra] of cases) {
    it(`${name}: table and JSON`, () => {
      const json = join(dir, `${name}.json`);
      const r = run([...SMALL, ...extra, '--json', json]);
      expect(r.code, r.err).toBe(0);
      expect(r.out).toMatch(/op\s+kernel\s+geometry\s+calls\/step\s+ms\/step\s+share\s+GFLOP\/s\s+GB\/s/);
      expect(r.out).toMatch(/dispatches \d+/);
      expect(existsSync(json)).toBe(true);
      const p = JSON.parse(readFileSync(json, 'utf8'));
      expect(p.command).toBe('profile');
      expect(p.steps).toBe(2);
      expect(p.warmup).toBe(1);
      expect(p.batchSize).toBe(8);
      for (const k of ['dispatches', 'submits', 'readbacks', 'uploads', 'copies', 'poolAcquires', 'buffersCreated', 'buffersDestroyed', 'pipelinesCreated']) {
        expect(typeof p.perStep[k], k).toBe('number');
        expect(p.totals[k], k).toBeGreaterThanOrEqual(0);
      }
      expect(p.rows.length).toBeGreaterThan(0);
      expect(p.rows.reduce((s: number, r: { calls: number }) => s + r.calls, 0)).toBe(p.totals.dispatches);
      for (const row of p.rows) {
        expect(typeof row.kernel).toBe('string');
        expect(typeof row.op).toBe('string');
        if (p.timing === 'gpu-timestamps') expect(row.msPerStep).toBeGreaterThanOrEqual(0);
      }
      // An attack step has no optimizer; a training step updates the weights.
      const kernels = p.rows.map((r: { kernel: string }) => r.kernel).join(' ');
      if (name === 'attack') expect(kernels).not.toMatch(/adam/);
      else expect(kernels).toMatch(/adam/);
      // Adversarial steps dispatch more than the standard one (the attack's forward/backward).
      if (name === 'pgd') {
        const std = JSON.parse(readFileSync(join(dir, 'standard.json'), 'utf8'));
        expect(p.perStep.dispatches).toBeGreaterThan(std.perStep.dispatches);
      }
    });
  }

  it('bad flags exit 2 with a clear message', () => {
    const r = run(['--steps', '0']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--steps: must be >= 1, got 0/);
    const h = run(['--help']);
    expect(h.code).toBe(0);
    expect(h.out).toMatch(/Examples:/);
  });
});
