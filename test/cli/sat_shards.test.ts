// Sweeps beyond one process: `reproduce sat --shard 0/2` and `--shard 1/2` run as two
// processes (tiny budget), `kinkless merge` combines them, and the merged results.json,
// report.md and plots equal a single process's run byte for byte. Also: --resume skips
// finished jobs, and a merge with a missing shard or a different plan is refused.
import { describe, it, expect } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const BIN = join(process.cwd(), 'bin', 'kinkless.mjs');
// 2 training steps, 20 evaluation images, one-step attacks, AutoAttack with 2-step APGD runs:
// 2 activations x 2 seeds = 4 jobs
const TINY = ['--quick', '--activations', 'relu,silu', '--train-limit', '256', '--eval-limit', '20', '--curve-limit', '10', '--pgd-steps', '1', '--apgd-steps', '1', '--seeds', '2', '--eval', 'autoattack', '--aa-steps', '2', '--aa-targets', '2', '--aa-queries', '20'];

function run(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.on('exit', (code) => resolve({ code, out, err }));
  });
}

describe('reproduce sat shards and merge', () => {
  it('two shards as two processes, merged, equal one process bit for bit', async () => {
    const out = mkdtempSync(join(tmpdir(), 'kinkless-sat-'));
    const [single, s0, s1] = await Promise.all([
      run(['reproduce', 'sat', ...TINY, '--out', out, '--name', 'single']),
      run(['reproduce', 'sat', ...TINY, '--out', out, '--name', 'sh0', '--shard', '0/2']),
      run(['reproduce', 'sat', ...TINY, '--out', out, '--name', 'sh1', '--shard', '1/2']),
    ]);
    expect(single.code, single.err).toBe(0);
    expect(s0.code, s0.err).toBe(0);
    expect(s1.code, s1.err).toBe(0);
    expect(s0.out).toMatch(/shard 0\/2: 2 of 2 jobs done/);
    // round robin: relu-s0, silu-s0, relu-s1, silu-s1 -> shard 0 runs both ReLUs
    expect(statSync(join(out, 'sh0', 'relu-s1.safetensors')).size).toBeGreaterThan(0);
    expect(statSync(join(out, 'sh1', 'jobs', 'silu-s0.json')).size).toBeGreaterThan(0);

    const missing = await run(['merge', join(out, 'sh0'), '--out', out, '--name', 'bad']);
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(/2 of 4 jobs missing \(silu-s0, silu-s1\)/);

    const merged = await run(['merge', join(out, 'sh0'), join(out, 'sh1'), '--out', out, '--name', 'merged']);
    expect(merged.code, merged.err).toBe(0);
    for (const f of ['results.json', 'report.md', 'activation_table.svg', 'robust_vs_eps.svg']) {
      const a = readFileSync(join(out, 'single', f));
      const b = readFileSync(join(out, 'merged', f));
      expect(a.equals(b), f).toBe(true);
    }
    const res = JSON.parse(readFileSync(join(out, 'merged', 'results.json'), 'utf8'));
    expect(res.status).toBe('completed');
    expect(Object.keys(res.perImage).sort()).toEqual(['relu-s0', 'relu-s1', 'silu-s0', 'silu-s1']);
    expect(res.perImage['relu-s0'].worstCase).toMatch(/^[01]{20}$/);
    expect(res.perImage['relu-s0'].autoattack).toMatch(/^[01]{20}$/);
    expect(readFileSync(join(out, 'merged', 'report.md'), 'utf8')).toMatch(/\| worst case \| AutoAttack \|/);

    // --resume: every job of shard 0 is done, nothing is retrained and the job files stay
    const before = readFileSync(join(out, 'sh0', 'jobs', 'relu-s0.json'), 'utf8');
    const again = await run(['reproduce', 'sat', ...TINY, '--out', out, '--name', 'sh0', '--shard', '0/2', '--resume']);
    expect(again.code, again.err).toBe(0);
    expect(again.out).toMatch(/2 already done \(--resume\)/);
    expect(again.err).not.toMatch(/relu-s0: 2\/2/);
    expect(readFileSync(join(out, 'sh0', 'jobs', 'relu-s0.json'), 'utf8')).toBe(before);

    // a shard of another plan (other eval size) is refused
    const other = await run(['reproduce', 'sat', ...TINY, '--eval-limit', '10', '--curve-limit', '10', '--activations', 'relu', '--seeds', '1', '--out', out, '--name', 'other']);
    expect(other.code, other.err).toBe(0);
    const mixed = await run(['merge', join(out, 'sh0'), join(out, 'other'), '--out', out, '--name', 'mixed']);
    expect(mixed.code).toBe(2);
    expect(mixed.err).toMatch(/holds plan [0-9a-f]{12}, .* holds [0-9a-f]{12}: the shards were started with different/);
  }, 300_000);
});
