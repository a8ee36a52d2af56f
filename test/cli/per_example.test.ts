// `kinkless eval --save-per-example`: per_example.csv has one row per image whose logits
// match the same model's forward pass computed here, whose prediction is their argmax,
// whose clean / robust flags agree with results.json, and robust = clean AND every attack.
import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testDevice } from '../helpers/device.ts';
import * as E from '../../engine/index.ts';
import { SmallCnn } from '../../nn/models/small_cnn.ts';
import { loadMnist } from '../../nn/data/mnist.ts';

describe('kinkless eval --save-per-example', () => {
  it('writes labels, predictions, logits and per-attack outcomes per test image', async () => {
    const out = mkdtempSync(join(tmpdir(), 'kinkless-pe-'));
    const n = 23; // not a multiple of the batch size
    const r = spawnSync(process.execPath, [join(process.cwd(), 'bin', 'kinkless.mjs'), 'eval', '--limit', String(n), '--batch-size', '10', '--attacks', 'fgsm,pgd', '--steps', '2', '--eps', '0.3', '--no-masking', '--save-per-example', '--name', 'pe', '--out', out], { encoding: 'utf8', timeout: 300_000 });
    expect(r.status, r.stderr).toBe(0);
    const lines = readFileSync(join(out, 'pe', 'per_example.csv'), 'utf8').trim().split('\n');
    const head = lines[0]!.split(',');
    expect(head.slice(0, 4)).toEqual(['index', 'label', 'pred', 'correct_clean']);
    expect(head[4]).toMatch(/^correct_FGSM/i);
    expect(head[5]).toMatch(/^correct_PGD/i);
    expect(head[6]).toBe('robust');
    expect(head.filter((h) => h.startsWith('correct_')).length).toBe(3);
    expect(head.filter((h) => h.startsWith('logit_')).length).toBe(10);
    const rows = lines.slice(1).map((l) => l.split(',').map(Number));
    expect(rows.length).toBe(n);
    const res = JSON.parse(readFileSync(join(out, 'pe', 'results.json'), 'utf8'));
    const col = (name: string) => rows.map((row) => row[head.indexOf(name)]!);
    expect(col('correct_clean').reduce((a, b) => a + b, 0)).toBe(res.report.clean.correct);
    expect(col('robust').reduce((a, b) => a + b, 0)).toBe(res.report.worstCase.correct);
    const mnist = loadMnist();
    // The same fresh model (seed 0, ReLU) evaluated here.
    const d = await testDevice();
    const m = new SmallCnn(d, { activation: { kind: 'relu' }, inChannels: 1, numClasses: 10, seed: 0 }).eval();
    const want = await m.forward(E.Tensor.from(d, mnist.test.images.subarray(0, n * 784), [n, 1, 28, 28])).f32();
    const attackCols = head.filter((h) => h.startsWith('correct_') && h !== 'correct_clean');
    rows.forEach((row, i) => {
      expect(row[0]).toBe(i);
      expect(row[1]).toBe(mnist.test.labels[i]);
      const logits = row.slice(head.indexOf('logit_0'));
      for (let k = 0; k < 10; k++) expect(Math.abs(logits[k]! - want[i * 10 + k]!)).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(want[i * 10 + k]!)));
      const pred = logits.indexOf(Math.max(...logits));
      expect(row[2]).toBe(pred);
      expect(row[3]).toBe(pred === row[1] ? 1 : 0);
      const all = row[3]! === 1 && attackCols.every((c) => row[head.indexOf(c)] === 1);
      expect(row[head.indexOf('robust')]).toBe(all ? 1 : 0);
    });
    expect(res.report.perExample).toBeUndefined();
  });
});
