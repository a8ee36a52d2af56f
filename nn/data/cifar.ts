// CIFAR-10 binary-format reader: each record is 1 label byte followed by 3072
// pixel bytes (1024 red, 1024 green, 1024 blue, row-major 32x32), i.e. already CHW.
// Returns float images in [0, 1] (NCHW, flattened) and int32 labels.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { ImageSet } from './loader.ts';

export const CIFAR10_CLASSES = [
  'airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck',
] as const;

export const CIFAR10_TRAIN_FILES = ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin'];
export const CIFAR10_TEST_FILES = ['test_batch.bin'];

const PIXELS = 3 * 32 * 32;
const RECORD = 1 + PIXELS;

/**
 * Resolves the directory holding the .bin files: `dir` itself, or the
 * `cifar-10-batches-bin` folder inside it (the layout of the official tarball).
 */
function resolveDir(dir: string, files: string[]): string {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new Error(`loadCifar10: directory ${dir} does not exist (expected ${files.join(', ')} there)`);
  }
  const nested = join(dir, 'cifar-10-batches-bin');
  if (!existsSync(join(dir, files[0])) && existsSync(join(nested, files[0]))) return nested;
  return dir;
}

function checkLength(buf: Uint8Array, name: string): number {
  if (buf.length === 0 || buf.length % RECORD !== 0) {
    throw new Error(
      `loadCifar10: ${name} is ${buf.length} bytes, not a positive multiple of the ${RECORD}-byte record ` +
        `(1 label byte + ${PIXELS} pixel bytes)` + (buf.length > 0 ? `; ${buf.length % RECORD} bytes left over (truncated file?)` : ''),
    );
  }
  return buf.length / RECORD;
}

/** Decodes the records of `buf` into images/labels starting at sample `at`. */
function decodeInto(buf: Uint8Array, name: string, images: Float32Array, labels: Int32Array, at: number): void {
  const n = buf.length / RECORD;
  for (let r = 0; r < n; r++) {
    const off = r * RECORD;
    const y = buf[off];
    if (y > 9) throw new Error(`loadCifar10: ${name}: record ${r} has label ${y}; expected 0..9`);
    labels[at + r] = y;
    const dst = (at + r) * PIXELS;
    for (let i = 0; i < PIXELS; i++) images[dst + i] = buf[off + 1 + i] / 255;
  }
}

/** Parses one CIFAR-10 binary batch; `name` is used in errors. */
export function parseCifarBatch(buf: Uint8Array, name: string): ImageSet {
  const n = checkLength(buf, name);
  const images = new Float32Array(n * PIXELS);
  const labels = new Int32Array(n);
  decodeInto(buf, name, images, labels, 0);
  return { images, labels, n, shape: [3, 32, 32] };
}

/** Loads the CIFAR-10 train (default, data_batch_1..5) or test (test_batch) split from `dir`. */
export function loadCifar10(dir: string, opts: { train?: boolean } = {}): ImageSet {
  const train = opts.train ?? true;
  const files = train ? CIFAR10_TRAIN_FILES : CIFAR10_TEST_FILES;
  const root = resolveDir(dir, files);
  const bufs: { path: string; buf: Uint8Array; n: number }[] = [];
  for (const f of files) {
    const path = join(root, f);
    if (!existsSync(path)) {
      throw new Error(`loadCifar10: missing file ${path} (the ${train ? 'train' : 'test'} split needs ${files.join(', ')})`);
    }
    const buf = readFileSync(path);
    bufs.push({ path, buf, n: checkLength(buf, path) });
  }
  const n = bufs.reduce((s, b) => s + b.n, 0);
  const images = new Float32Array(n * PIXELS);
  const labels = new Int32Array(n);
  let at = 0;
  for (const b of bufs) {
    decodeInto(b.buf, b.path, images, labels, at);
    at += b.n;
  }
  return { images, labels, n, shape: [3, 32, 32] };
}
