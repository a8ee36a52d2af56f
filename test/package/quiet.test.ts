// Quiet by default: Dawn's informational log lines ("Warning: max...artificially reduced")
// never reach a CLI user's stderr, KINKLESS_DEBUG=1 shows them, real errors and progress
// output still pass; and a process that creates several devices starts Dawn once.
import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { createLineFilter, DAWN_INFO_LINE } from '../../bin/stderr_filter.mjs';

const BIN = join(process.cwd(), 'bin', 'kinkless.mjs');
const DAWN_LINE = /^Warning: maxDynamic\w+BuffersPerPipelineLayout artificially reduced/m;

function doctor(env: Record<string, string>): { code: number | null; out: string; err: string } {
  const base = { ...process.env };
  delete base.KINKLESS_DEBUG;
  const r = spawnSync(process.execPath, [BIN, 'doctor'], { encoding: 'utf8', timeout: 120_000, env: { ...base, ...env } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** Feeds `chunks` through a filter and returns everything it passed on. */
function filterAll(chunks: string[]): string {
  const f = createLineFilter();
  return chunks.map((c) => f.write(c)).join('') + f.end();
}

describe('quiet by default', () => {
  it('`kinkless doctor` prints no Dawn lines; KINKLESS_DEBUG=1 shows them', () => {
    const quiet = doctor({});
    expect(quiet.code, quiet.err).toBe(0);
    expect(quiet.out).toMatch(/round trip: .* OK/);
    expect(quiet.err).not.toMatch(/^(Warning|Info|Debug): /m);
    const loud = doctor({ KINKLESS_DEBUG: '1' });
    expect(loud.code, loud.err).toBe(0);
    expect(loud.out).toMatch(/round trip: .* OK/);
    // Only lavapipe reports limits that Dawn reduces; other adapters print nothing to show.
    if (/llvmpipe/.test(loud.out)) expect(loud.err).toMatch(DAWN_LINE);
  });

  it('errors from the child still reach stderr with their exit code', () => {
    const r = spawnSync(process.execPath, [BIN, 'nosuchcommand'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/unknown command "nosuchcommand"/);
  });

  it('three devices in one process: Dawn prints its notes once (one shared instance)', () => {
    const code = `import { createDevice } from './engine/index.ts';
      for (let i = 0; i < 3; i++) (await createDevice()).destroy();`;
    const env = { ...process.env };
    delete env.NODE_OPTIONS;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { encoding: 'utf8', timeout: 60_000, env });
    expect(r.status, r.stderr).toBe(0);
    // Dawn's note for one limit appears at most once (it was three times, once per device).
    const n = r.stderr.split('\n').filter((l) => /^Warning: maxDynamicUniformBuffersPerPipelineLayout artificially reduced/.test(l)).length;
    expect(n).toBeLessThanOrEqual(1);
    expect(r.stderr.split('\n').filter((l) => /^Warning: /.test(l)).length).toBeLessThanOrEqual(2);
  });

  it('the line filter drops Dawn info lines split across chunks and keeps everything else', () => {
    const dawn = 'Warning: maxDynamicUniformBuffersPerPipelineLayout artificially reduced from 1000000 to 16.\n';
    expect(filterAll([dawn])).toBe('');
    // Split at every position: the result never depends on chunk boundaries.
    const text = `start\n${dawn}Error: a real Dawn error\nInfo: chatter\nWarn: not Dawn\n(node:1) Warning: a Node warning\nend`;
    const want = 'start\nError: a real Dawn error\nWarn: not Dawn\n(node:1) Warning: a Node warning\nend';
    for (let i = 0; i <= text.length; i++) expect(filterAll([text.slice(0, i), text.slice(i)])).toBe(want);
    expect(filterAll(text.split(''))).toBe(want);
  });

  it('progress redraws (\\r, no newline) pass at once; only a possible Dawn prefix waits', () => {
    const f = createLineFilter();
    expect(f.write('\rtrain [###---] 3/6')).toBe('\rtrain [###---] 3/6');
    expect(f.write('\rtrain [####--] 4/6')).toBe('\rtrain [####--] 4/6');
    expect(f.write('\nWarn')).toBe('\n'); // could become "Warning: ": held
    expect(f.write('ing: x\n')).toBe('');
    expect(f.write('Wa')).toBe('');
    expect(f.write('ter\n')).toBe('Water\n');
    expect(f.write('Info: unterminated')).toBe('');
    expect(f.end()).toBe('');
    expect(DAWN_INFO_LINE.test('Error: x')).toBe(false);
  });
});
