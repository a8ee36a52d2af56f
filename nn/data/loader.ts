// Seeded shuffling, batching and CPU augmentation over in-memory datasets: a
// counter-based PRNG (splitmix32), train/val splits, a resumable batch iterator,
// batch gathering, and random crop (zero padding) + horizontal flip for NCHW.

/** An in-memory image dataset: `images` is N*C*H*W floats, `labels` N class ids. */
export interface ImageSet {
  images: Float32Array;
  labels: Int32Array;
  n: number;
  /** Per-sample shape [C, H, W]. */
  shape: [number, number, number];
}

// ---------------------------------------------------------------- PRNG

const GOLDEN = 0x9e3779b9;

/** murmur3's 32-bit finaliser: a bijective avalanche mix of a uint32. */
function fmix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

function checkSeed(seed: number, what: string): void {
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new Error(`${what}: seed ${seed} is not a non-negative safe integer`);
  }
}

/**
 * Combines a seed with stream ids (epoch, sample index, ...) into a uint32 key.
 * Each step is fmix32 of the running key plus a Weyl-spaced stream id, so
 * deriveSeed(s, 1) and deriveSeed(s, 2) give unrelated streams.
 */
export function deriveSeed(seed: number, ...streams: number[]): number {
  checkSeed(seed, 'deriveSeed');
  // Fold seeds above 2^32 so that every safe integer maps to its own key.
  let h = fmix32((seed >>> 0) ^ fmix32(Math.floor(seed / 0x100000000) + GOLDEN));
  for (const s of streams) {
    checkSeed(s, 'deriveSeed stream id');
    h = fmix32((h + Math.imul((s >>> 0) + 1, GOLDEN)) ^ Math.floor(s / 0x100000000));
  }
  return h;
}

/**
 * splitmix32: output i is fmix32(key + (i+1) * 0x9e3779b9). Counter-based, so
 * the stream is a pure function of (key, counter) and `at(i)` jumps anywhere.
 * Deterministic across platforms (only 32-bit integer ops).
 */
export class Rng {
  private readonly key: number;
  private counter = 0;

  constructor(seed: number) {
    checkSeed(seed, 'Rng');
    this.key = deriveSeed(seed);
  }

  /** The i-th uint32 of this stream, independent of the current position. */
  at(i: number): number {
    return fmix32((this.key + Math.imul(i + 1, GOLDEN)) >>> 0);
  }

  /** Next uint32 in [0, 2^32). */
  nextU32(): number {
    return this.at(this.counter++);
  }

  /** Next float in [0, 1) with 24 random bits (exact in float32). */
  next(): number {
    return (this.nextU32() >>> 8) / 16777216;
  }

  /** Uniform integer in [0, n), unbiased (rejection sampling), n in 1..2^32. */
  int(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > 0x100000000) throw new Error(`Rng.int: n = ${n}; expected an integer in 1..2^32`);
    const limit = 0x100000000 - (0x100000000 % n);
    for (;;) {
      const u = this.nextU32();
      if (u < limit) return u % n;
    }
  }
}

/** A seeded uniform permutation of 0..n-1 (Fisher-Yates). */
export function permutation(n: number, seed: number): Int32Array {
  if (!Number.isInteger(n) || n < 0 || n > 0x7fffffff) throw new Error(`permutation: n = ${n}; expected an integer in 0..2^31-1`);
  const rng = new Rng(seed);
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}

/** Splits 0..n-1 into disjoint, sorted train and validation index sets. */
export function trainValSplit(n: number, valCount: number, seed: number): { train: Int32Array; val: Int32Array } {
  if (!Number.isInteger(n) || n < 0) throw new Error(`trainValSplit: n = ${n}; expected a non-negative integer`);
  if (!Number.isInteger(valCount) || valCount < 0 || valCount > n) {
    throw new Error(`trainValSplit: valCount = ${valCount}; expected an integer in 0..${n}`);
  }
  const p = permutation(n, deriveSeed(seed, 0x5b1));
  const val = p.slice(0, valCount).sort();
  const train = p.slice(valCount).sort();
  return { train, val };
}

/** The images and labels at `indices` (in that order), copied into a new ImageSet. */
export function subsetImages(set: ImageSet, indices: ArrayLike<number>): ImageSet {
  const per = set.shape[0] * set.shape[1] * set.shape[2];
  const images = new Float32Array(indices.length * per);
  const labels = new Int32Array(indices.length);
  for (let i = 0; i < indices.length; i++) {
    const k = indices[i]!;
    if (!Number.isInteger(k) || k < 0 || k >= set.n) throw new Error(`subsetImages: index ${k} at position ${i} is outside 0..${set.n - 1}`);
    images.set(set.images.subarray(k * per, (k + 1) * per), i * per);
    labels[i] = set.labels[k]!;
  }
  return { images, labels, n: indices.length, shape: [...set.shape] };
}

// ---------------------------------------------------------------- batching

export interface BatchIteratorOptions {
  batchSize: number;
  seed: number;
  /** Default true; false keeps the natural order every epoch. */
  shuffle?: boolean;
  /** Drop the last incomplete batch of each epoch (default false). */
  dropLast?: boolean;
}

export interface BatchIteratorState {
  seed: number;
  epoch: number;
  /** Number of samples of this epoch's permutation already handed out. */
  position: number;
  n: number;
  batchSize: number;
  shuffle: boolean;
  dropLast: boolean;
}

export interface Batch {
  epoch: number;
  /** Index of the batch within its epoch. */
  batch: number;
  /** Sample indices (into the dataset, or the `indices` subset's values). */
  indices: Int32Array;
}

/**
 * Hands out index batches; epoch e uses permutation(n, deriveSeed(seed, e)),
 * so the order depends only on (seed, epoch) and `restore(state())` resumes
 * at exactly the same batch.
 */
export class BatchIterator {
  readonly n: number;
  readonly batchSize: number;
  readonly seed: number;
  readonly shuffle: boolean;
  readonly dropLast: boolean;
  private readonly subset: Int32Array | null;
  private _epoch = 0;
  private _position = 0;
  private perm: Int32Array | null = null;
  private permEpoch = -1;

  /** `data` is a sample count, or a list of dataset indices (e.g. a train split) to iterate over. */
  constructor(data: number | Int32Array, opts: BatchIteratorOptions) {
    this.subset = typeof data === 'number' ? null : data;
    this.n = typeof data === 'number' ? data : data.length;
    if (!Number.isInteger(this.n) || this.n < 1) throw new Error(`BatchIterator: dataset size ${this.n}; expected an integer >= 1`);
    if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) {
      throw new Error(`BatchIterator: batchSize = ${opts.batchSize}; expected an integer >= 1`);
    }
    checkSeed(opts.seed, 'BatchIterator');
    this.batchSize = opts.batchSize;
    this.seed = opts.seed;
    this.shuffle = opts.shuffle ?? true;
    this.dropLast = opts.dropLast ?? false;
    if (this.dropLast && this.n < this.batchSize) {
      throw new Error(`BatchIterator: dropLast with ${this.n} samples < batchSize ${this.batchSize} would yield no batches`);
    }
  }

  get epoch(): number {
    return this._epoch;
  }

  get position(): number {
    return this._position;
  }

  /** Samples handed out per epoch (n, or n rounded down to whole batches with dropLast). */
  private get epochEnd(): number {
    return this.dropLast ? this.n - (this.n % this.batchSize) : this.n;
  }

  get batchesPerEpoch(): number {
    return this.dropLast ? Math.floor(this.n / this.batchSize) : Math.ceil(this.n / this.batchSize);
  }

  /** The full sample order used in `epoch` (a copy). */
  order(epoch: number): Int32Array {
    if (!Number.isInteger(epoch) || epoch < 0) throw new Error(`BatchIterator.order: epoch = ${epoch}; expected an integer >= 0`);
    return this.orderOf(epoch).slice();
  }

  private orderOf(epoch: number): Int32Array {
    if (this.permEpoch !== epoch || !this.perm) {
      let p: Int32Array;
      if (this.shuffle) p = permutation(this.n, deriveSeed(this.seed, epoch));
      else {
        p = new Int32Array(this.n);
        for (let i = 0; i < this.n; i++) p[i] = i;
      }
      if (this.subset) for (let i = 0; i < p.length; i++) p[i] = this.subset[p[i]];
      this.perm = p;
      this.permEpoch = epoch;
    }
    return this.perm;
  }

  /** Next batch; after the last batch of an epoch the iterator moves to the next epoch. */
  next(): Batch {
    const order = this.orderOf(this._epoch);
    const start = this._position;
    const stop = Math.min(start + this.batchSize, this.epochEnd);
    const out: Batch = { epoch: this._epoch, batch: Math.floor(start / this.batchSize), indices: order.slice(start, stop) };
    this._position = stop;
    if (this._position >= this.epochEnd) {
      this._epoch++;
      this._position = 0;
    }
    return out;
  }

  /** Yields the remaining batches of the current epoch (all of them when at its start). */
  *epochBatches(): Generator<Batch> {
    const e = this._epoch;
    while (this._epoch === e) yield this.next();
  }

  state(): BatchIteratorState {
    return {
      seed: this.seed,
      epoch: this._epoch,
      position: this._position,
      n: this.n,
      batchSize: this.batchSize,
      shuffle: this.shuffle,
      dropLast: this.dropLast,
    };
  }

  /** Resumes from `state()`; the configuration must match this iterator's. */
  restore(s: BatchIteratorState): void {
    for (const k of ['seed', 'n', 'batchSize', 'shuffle', 'dropLast'] as const) {
      if (s[k] !== this[k]) {
        throw new Error(`BatchIterator.restore: state has ${k} = ${String(s[k])}, this iterator has ${String(this[k])}`);
      }
    }
    if (!Number.isInteger(s.epoch) || s.epoch < 0) throw new Error(`BatchIterator.restore: epoch = ${s.epoch}; expected an integer >= 0`);
    if (!Number.isInteger(s.position) || s.position < 0 || s.position >= this.epochEnd || s.position % this.batchSize !== 0) {
      throw new Error(
        `BatchIterator.restore: position = ${s.position}; expected a multiple of batchSize ${this.batchSize} below ${this.epochEnd}`,
      );
    }
    this._epoch = s.epoch;
    this._position = s.position;
  }
}

/** Copies the samples `idx` into new arrays: images (idx.length * sampleSize) and labels. */
export function gatherBatch(
  images: Float32Array,
  labels: Int32Array,
  idx: ArrayLike<number>,
  sampleSize: number,
): { images: Float32Array; labels: Int32Array } {
  if (!Number.isInteger(sampleSize) || sampleSize < 1) throw new Error(`gatherBatch: sampleSize = ${sampleSize}; expected an integer >= 1`);
  if (images.length !== labels.length * sampleSize) {
    throw new Error(
      `gatherBatch: images has ${images.length} floats, expected labels.length (${labels.length}) * sampleSize (${sampleSize}) = ${labels.length * sampleSize}`,
    );
  }
  const x = new Float32Array(idx.length * sampleSize);
  const y = new Int32Array(idx.length);
  for (let b = 0; b < idx.length; b++) {
    const i = idx[b];
    if (!Number.isInteger(i) || i < 0 || i >= labels.length) {
      throw new Error(`gatherBatch: idx[${b}] = ${i} is out of range; dataset has ${labels.length} samples`);
    }
    x.set(images.subarray(i * sampleSize, (i + 1) * sampleSize), b * sampleSize);
    y[b] = labels[i];
  }
  return { images: x, labels: y };
}

// ---------------------------------------------------------------- augmentation

export interface AugmentOptions {
  /** Zero padding on each side before a random HxW crop (0 = no crop). */
  pad: number;
  /** Flip each sample horizontally with probability 1/2. */
  flip: boolean;
  seed: number;
}

/**
 * Random crop with zero padding then horizontal flip, on an NCHW batch; returns a
 * new array. Sample i draws from Rng(deriveSeed(seed, i)): crop offsets first,
 * then the flip coin, so toggling one option does not change the other's draws.
 */
export function augmentBatch(x: Float32Array, dims: [number, number, number, number], opts: AugmentOptions): Float32Array {
  const [n, c, h, w] = dims;
  for (const [i, d] of dims.entries()) {
    if (!Number.isInteger(d) || d < 1) throw new Error(`augmentBatch: dims[${i}] = ${d}; expected positive integers [N, C, H, W]`);
  }
  if (x.length !== n * c * h * w) {
    throw new Error(`augmentBatch: batch has ${x.length} floats, dims [${dims.join(', ')}] need ${n * c * h * w}`);
  }
  const pad = opts.pad;
  if (!Number.isInteger(pad) || pad < 0) throw new Error(`augmentBatch: pad = ${pad}; expected an integer >= 0`);
  const out = new Float32Array(x.length);
  const plane = h * w;
  for (let s = 0; s < n; s++) {
    const rng = new Rng(deriveSeed(opts.seed, s));
    const dy = rng.int(2 * pad + 1) - pad;
    const dx = rng.int(2 * pad + 1) - pad;
    const flip = rng.next() < 0.5;
    const ox = pad > 0 ? dx : 0;
    const oy = pad > 0 ? dy : 0;
    const doFlip = opts.flip && flip;
    for (let ch = 0; ch < c; ch++) {
      const base = (s * c + ch) * plane;
      for (let y = 0; y < h; y++) {
        const sy = y + oy;
        if (sy < 0 || sy >= h) continue; // padded row stays zero
        for (let xx = 0; xx < w; xx++) {
          // Output column xx shows crop column cx; flipping mirrors the crop.
          const cx = doFlip ? w - 1 - xx : xx;
          const sx = cx + ox;
          if (sx >= 0 && sx < w) out[base + y * w + xx] = x[base + sy * w + sx];
        }
      }
    }
  }
  return out;
}
