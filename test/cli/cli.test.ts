// CLI behaviour, run as a user would (a child process): help, bad flags, a bad config
// file, a missing dataset path and an interrupted run each give a clear message and the
// right exit code.
import { describe, it, expect } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const BIN = join(process.cwd(), 'bin', 'kinkless.mjs');

function run(args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('kinkless CLI', () => {
  it('--help lists the commands; each command has --help with examples', () => {
    const top = run(['--help']);
    expect(top.code).toBe(0);
    for (const c of ['doctor', 'train', 'attack', 'eval', 'study', 'reproduce', 'merge']) expect(top.out).toContain(c);
    for (const c of [['train'], ['eval'], ['attack'], ['reproduce'], ['merge'], ['study', 'kink']]) {
      const h = run([...c, '--help']);
      expect(h.code, c.join(' ')).toBe(0);
      expect(h.out).toMatch(/Usage: kinkless/);
      expect(h.out).toMatch(/Examples:/);
    }
  });

  it('unknown commands and flags, and bad values, exit 2 with a clear message', () => {
    const a = run(['frobnicate']);
    expect(a.code).toBe(2);
    expect(a.err).toMatch(/unknown command "frobnicate"/);
    const b = run(['train', '--epoch', '3']);
    expect(b.code).toBe(2);
    expect(b.err).toMatch(/unknown option "--epoch"/);
    const c = run(['train', '--epochs', 'three']);
    expect(c.code).toBe(2);
    expect(c.err).toMatch(/--epochs: expected an integer, got "three"/);
    const d = run(['train', '--activation', 'swish']);
    expect(d.code).toBe(2);
    expect(d.err).toMatch(/--activation: expected one of relu, .*got "swish"/);
    const e = run(['reproduce', 'madry']);
    expect(e.code).toBe(2);
    expect(e.err).toMatch(/expected the experiment name "sat"/);
  });

  it('a bad config file gives a clear error', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kinkless-cli-'));
    writeFileSync(join(dir, 'bad.json'), '{ "epochs": 2, ');
    const a = run(['train', '--config', join(dir, 'bad.json')]);
    expect(a.code).toBe(2);
    expect(a.err).toMatch(/config file ".*bad\.json" is not valid JSON/);
    writeFileSync(join(dir, 'unknown.json'), '{ "epochz": 2 }');
    const b = run(['train', '--config', join(dir, 'unknown.json')]);
    expect(b.code).toBe(2);
    expect(b.err).toMatch(/unknown key "epochz"/);
    writeFileSync(join(dir, 'type.json'), '{ "lr": "fast" }');
    const c = run(['train', '--config', join(dir, 'type.json')]);
    expect(c.code).toBe(2);
    expect(c.err).toMatch(/--lr: expected a number, got "fast"/);
    const m = run(['train', '--config', join(dir, 'missing.json')]);
    expect(m.code).toBe(2);
    expect(m.err).toMatch(/cannot read config file ".*missing\.json": ENOENT/);
  });

  it('a missing dataset path or checkpoint gives a clear error', () => {
    const a = run(['train', '--data-dir', '/nonexistent/mnist']);
    expect(a.code).toBe(2);
    expect(a.err).toMatch(/--data-dir: directory "\/nonexistent\/mnist" does not exist/);
    const b = run(['eval', '--checkpoint', '/nonexistent/model.safetensors']);
    expect(b.code).toBe(2);
    expect(b.err).toMatch(/--checkpoint: file "\/nonexistent\/model\.safetensors" does not exist/);
    const dir = mkdtempSync(join(tmpdir(), 'kinkless-cli-'));
    const c = run(['train', '--data-dir', dir]);
    expect(c.code).toBe(1);
    expect(c.err).toMatch(/train-images/);
  });

  it('Ctrl-C stops a training run cleanly, keeping the last checkpoint', async () => {
    const out = mkdtempSync(join(tmpdir(), 'kinkless-cli-'));
    const child = spawn(process.execPath, [BIN, 'train', '--epochs', '50', '--train-limit', '256', '--test-limit', '50', '--name', 'int', '--out', out], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    let sent = false;
    const code = await new Promise<number | null>((resolve) => {
      child.stderr.on('data', (b: Buffer) => {
        err += b.toString();
        // interrupt once the first epoch (and its checkpoint) is done
        if (!sent && /epoch 1: done/.test(err)) {
          sent = true;
          child.kill('SIGINT');
        }
      });
      child.on('exit', (c) => resolve(c));
    });
    expect(sent).toBe(true);
    expect(code).toBe(130);
    expect(err).toMatch(/interrupt received/);
    expect(existsSync(join(out, 'int', 'small_cnn.safetensors'))).toBe(true);
    const res = JSON.parse(readFileSync(join(out, 'int', 'results.json'), 'utf8'));
    expect(res.status).toBe('interrupted');
    // Nothing of the completed epochs is lost: 256 images in batches of 128 = 2 steps each.
    expect(res.epochs.length).toBeGreaterThanOrEqual(1);
    expect(res.epochs[0].epoch).toBe(0);
    expect(res.steps).toBeGreaterThanOrEqual(2 * res.epochs.length);
    expect(res.testAcc).toBeGreaterThan(0);
    expect(readFileSync(join(out, 'int', 'report.md'), 'utf8')).toMatch(/\| 1 \| \d/);
  });
});
