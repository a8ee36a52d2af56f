// Tests for the CIFAR-10 binary reader on small files in the official format
// written here: record layout (label byte + CHW pixels), split selection, errors.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CIFAR10_TRAIN_FILES, loadCifar10 } from '../../nn/data/cifar.ts';

const root = mkdtempSync(join(tmpdir(), 'kinkless-cifar-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Record r of batch b: label (b + r) % 10, pixel i = (i + 13 * r + 5 * b) % 256. */
function batchBytes(b: number, records: number, label?: (r: number) => number): Uint8Array {
  const out = new Uint8Array(records * 3073);
  for (let r = 0; r < records; r++) {
    out[r * 3073] = label ? label(r) : (b + r) % 10;
    for (let i = 0; i < 3072; i++) out[r * 3073 + 1 + i] = (i + 13 * r + 5 * b) % 256;
  }
  return out;
}

function writeAll(dir: string, perBatch = 2): void {
  CIFAR10_TRAIN_FILES.forEach((f, b) => writeFileSync(join(dir, f), batchBytes(b, perBatch)));
  writeFileSync(join(dir, 'test_batch.bin'), batchBytes(9, 3));
}

describe('loadCifar10', () => {
  it('reads the five train batches in order, as NCHW floats in [0, 1]', () => {
    const dir = mkdtempSync(join(root, 'ok-'));
    writeAll(dir);
    const s = loadCifar10(dir);
    expect(s.n).toBe(10);
    expect(s.shape).toEqual([3, 32, 32]);
    expect(s.images.length).toBe(10 * 3072);
    expect([...s.labels]).toEqual([0, 1, 1, 2, 2, 3, 3, 4, 4, 5]);
    // Sample 3 = batch 1, record 1. Channel 1 (green), row 2, col 5 -> byte index 1024 + 2*32 + 5.
    const i = 1024 + 2 * 32 + 5;
    expect(s.images[3 * 3072 + i]).toBeCloseTo(((i + 13 + 5) % 256) / 255, 7);
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of s.images) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    expect(lo).toBe(0);
    expect(hi).toBe(1);
  });

  it('reads the test split, also from a nested cifar-10-batches-bin folder', () => {
    const dir = mkdtempSync(join(root, 'nested-'));
    const inner = join(dir, 'cifar-10-batches-bin');
    mkdirSync(inner);
    writeAll(inner);
    const t = loadCifar10(dir, { train: false });
    expect(t.n).toBe(3);
    expect([...t.labels]).toEqual([9, 0, 1]);
    expect(t.images[0]).toBeCloseTo(45 / 255, 7);
  });

  it('names a missing directory and a missing batch file', () => {
    expect(() => loadCifar10(join(root, 'absent'))).toThrow(/directory .*absent does not exist/);
    const dir = mkdtempSync(join(root, 'missing-'));
    writeAll(dir);
    rmSync(join(dir, 'data_batch_4.bin'));
    expect(() => loadCifar10(dir)).toThrow(/missing file .*data_batch_4\.bin/);
    expect(loadCifar10(dir, { train: false }).n).toBe(3);
  });

  it('rejects a file whose length is not a multiple of 3073', () => {
    const dir = mkdtempSync(join(root, 'len-'));
    writeAll(dir);
    writeFileSync(join(dir, 'data_batch_2.bin'), batchBytes(1, 2).subarray(0, 3073 + 100));
    expect(() => loadCifar10(dir)).toThrow(/data_batch_2\.bin is 3173 bytes, not a positive multiple of the 3073-byte record.*100 bytes left over/);
    writeFileSync(join(dir, 'test_batch.bin'), new Uint8Array(0));
    expect(() => loadCifar10(dir, { train: false })).toThrow(/test_batch\.bin is 0 bytes/);
  });

  it('rejects labels > 9, naming the file and record', () => {
    const dir = mkdtempSync(join(root, 'label-'));
    writeAll(dir);
    writeFileSync(join(dir, 'test_batch.bin'), batchBytes(0, 3, (r) => (r === 2 ? 12 : 0)));
    expect(() => loadCifar10(dir, { train: false })).toThrow(/test_batch\.bin: record 2 has label 12; expected 0\.\.9/);
  });
});
