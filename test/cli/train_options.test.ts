// `train` options for long runs. --robust-val N: the robust-overfitting guard from the CLI
// (the held-out split is disjoint from the training images, or the last N test images;
// every epoch records held-out clean and PGD-10 accuracy; the best epoch's checkpoint is
// written). --stop-after N: one slice of a longer LR schedule.
import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { robustValSplit } from '../../cli/train_run.ts';
import { subsetImages, type ImageSet } from '../../nn/data/loader.ts';

const BIN = join(process.cwd(), 'bin', 'kinkless.mjs');

function toySet(n: number, offset: number): ImageSet {
  // Each image is constant, equal to its index + offset: membership is readable from pixels.
  const images = new Float32Array(n * 4);
  for (let i = 0; i < n; i++) images.fill(i + offset, i * 4, (i + 1) * 4);
  return { images, labels: Int32Array.from({ length: n }, (_, i) => i % 10), n, shape: [1, 2, 2] };
}

describe('robust-overfitting guard from the CLI', () => {
  it('subsetImages copies the chosen images and labels, and rejects bad indices', () => {
    const s = toySet(10, 0);
    const t = subsetImages(s, [7, 2, 2]);
    expect(Array.from(t.images)).toEqual([7, 7, 7, 7, 2, 2, 2, 2, 2, 2, 2, 2]);
    expect(Array.from(t.labels)).toEqual([7, 2, 2]);
    expect(t.n).toBe(3);
    expect(() => subsetImages(s, [10])).toThrow(/index 10 at position 0 is outside 0\.\.9/);
  });

  it('held out from train: disjoint, complete, seeded; from test: the last N test images', () => {
    const data = { train: toySet(100, 0), test: toySet(20, 1000) };
    const a = robustValSplit(data, 30, 'train', 5);
    expect(a.train.n).toBe(70);
    expect(a.val.n).toBe(30);
    const ids = (s: ImageSet) => Array.from({ length: s.n }, (_, i) => s.images[i * 4]!);
    const all = [...ids(a.train), ...ids(a.val)].sort((x, y) => x - y);
    expect(all).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(ids(robustValSplit(data, 30, 'train', 5).val)).toEqual(ids(a.val));
    expect(ids(robustValSplit(data, 30, 'train', 6).val)).not.toEqual(ids(a.val));
    const b = robustValSplit(data, 5, 'test', 0);
    expect(b.train).toBe(data.train);
    expect(ids(b.val)).toEqual([1015, 1016, 1017, 1018, 1019]);
    expect(() => robustValSplit(data, 100, 'train', 0)).toThrow(/--robust-val: 100 held-out images would leave no training images/);
    expect(() => robustValSplit(data, 21, 'test', 0)).toThrow(/--robust-val: 21 images asked from the test set, which has 20/);
  });

  it('train --robust-val records held-out accuracy per epoch and saves the best epoch', () => {
    const out = mkdtempSync(join(tmpdir(), 'kinkless-rv-'));
    const r = spawnSync(process.execPath, [BIN, 'train', '--loop', 'pgd', '--eps', '0.1', '--steps', '2', '--epochs', '2', '--train-limit', '320', '--test-limit', '50', '--robust-val', '64', '--name', 'rv', '--out', out], { encoding: 'utf8', timeout: 300_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('256 training images, 64 held out (train)');
    const res = JSON.parse(readFileSync(join(out, 'rv', 'results.json'), 'utf8'));
    const h = res.robustVal.history as { epoch: number; cleanAcc: number; robustAcc: number }[];
    expect(h.map((e) => e.epoch)).toEqual([0, 1]);
    for (const e of h) {
      // Accuracies on 64 images are multiples of 1/64; PGD never beats clean by much (random start).
      expect(Number.isInteger(Math.round(e.robustAcc * 64 * 1e6) / 1e6)).toBe(true);
      expect(e.robustAcc).toBeLessThanOrEqual(e.cleanAcc + 2 / 64);
    }
    const bestIdx = h[1]!.robustAcc > h[0]!.robustAcc ? 1 : 0;
    expect(res.robustVal.best.epoch).toBe(bestIdx);
    expect(existsSync(join(out, 'rv', 'small_cnn_best.safetensors'))).toBe(true);
    const csv = readFileSync(join(out, 'rv', 'metrics.csv'), 'utf8').trim().split('\n');
    expect(csv[0]).toContain('val_robust');
    expect(csv.length).toBe(3);
    const bad = spawnSync(process.execPath, [BIN, 'train', '--train-limit', '100', '--robust-val', '100'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--robust-val: 100 held-out images would leave no training images \(the training set has 100\)/);
  }, 300_000);

  it('train --stop-after N stops after N epochs on the schedule planned for --epochs', () => {
    const out = mkdtempSync(join(tmpdir(), 'kinkless-sa-'));
    const r = spawnSync(process.execPath, [BIN, 'train', '--epochs', '3', '--stop-after', '1', '--schedule', 'cosine', '--lr', '0.001', '--train-limit', '256', '--test-limit', '50', '--name', 'sa', '--out', out], { encoding: 'utf8', timeout: 300_000 });
    expect(r.status, r.stderr).toBe(0);
    const res = JSON.parse(readFileSync(join(out, 'sa', 'results.json'), 'utf8'));
    expect(res.steps).toBe(2);
    expect(res.epochs.length).toBe(1);
    // 2 steps per epoch, 6 planned: the epoch's last step (1) runs at lr/2 (1 + cos(pi/6)).
    expect(res.epochs[0].lr).toBeCloseTo(0.0005 * (1 + Math.cos(Math.PI / 6)), 12);
    expect(res.epochs[0].testAcc).toBeGreaterThan(0);
    expect(readFileSync(join(out, 'sa', 'report.md'), 'utf8')).toContain("stopped after 1 of the schedule's 3 epochs");
  }, 300_000);
});
