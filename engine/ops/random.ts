// Seeded random tensors from the counter-based Philox-4x32-10 generator (kernels/random.ts):
// uniform, normal and Bernoulli (dropout masks), plus RngState, a serialisable cursor that
// hands out disjoint stream offsets. A draw is a pure function of (seed, offset, shape,
// parameters): no hidden global generator, nothing to synchronise between devices.
import { Tensor, checkShape, shapeSize, shapeStr, type Shape } from '../tensor.ts';
import type { Device } from '../device.ts';
import { RNG_WG, randomKernel, type RandomKind } from '../../kernels/random.ts';
import { grid1d } from '../../kernels/elementwise.ts';
import { Uniforms, alloc } from './launch.ts';

/** Where in the random stream a draw starts: the stream (seed) and its element offset. */
export interface RngKey {
  /** Integer in [0, 2^53): the Philox key (low and high 32-bit words). */
  seed: number;
  /** Element offset into the stream (integer >= 0, default 0). */
  offset?: number;
}

const TWO32 = 2 ** 32;
const MAX_SAFE = Number.MAX_SAFE_INTEGER;

function checkKey(op: string, key: RngKey, n: number): { seed: number; offset: number } {
  if (key == null || typeof key !== 'object') throw new Error(`kinkless: ${op}: options { seed } are required, got ${String(key)}`);
  const { seed } = key;
  const offset = key.offset ?? 0;
  if (!Number.isSafeInteger(seed) || seed < 0) throw new Error(`kinkless: ${op}: seed must be an integer in [0, 2^53), got ${String(seed)}`);
  if (!Number.isSafeInteger(offset) || offset < 0) throw new Error(`kinkless: ${op}: offset must be an integer in [0, 2^53), got ${String(offset)}`);
  if (offset + n > MAX_SAFE) throw new Error(`kinkless: ${op}: offset ${offset} + ${n} elements runs past the end of the stream (2^53)`);
  return { seed, offset };
}

function checkFinite(op: string, arg: string, v: number): void {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`kinkless: ${op}: ${arg} must be a finite number, got ${String(v)}`);
}

function launch(op: string, kind: RandomKind, device: Device, shape: Shape, key: RngKey, a: number, b: number, thresh: number): Tensor {
  checkShape(shape, `${op}: shape`);
  const n = shapeSize(shape);
  const { seed, offset } = checkKey(op, key, n);
  const y = alloc(device, shape, 'f32');
  if (n === 0) return y;
  const b0 = Math.floor(offset / 4);
  const head = offset % 4;
  const blocks = Math.ceil((head + n) / 4);
  const g = grid1d(blocks, RNG_WG);
  const u = new Uniforms()
    .u32(n, g.gx, b0 % TWO32, Math.floor(b0 / TWO32), head, seed % TWO32, Math.floor(seed / TWO32), thresh)
    .f32(a, b);
  // flops: the affine map (2 per value; Box-Muller adds ~10 per pair); Philox is integer work.
  const info = { op, geometry: `n${n} offset${offset}`, flops: kind === 'bernoulli' ? 0 : kind === 'normal' ? 7 * n : 2 * n, bytes: 4 * n };
  device.dispatch({ kernel: randomKernel({ kind }), info, buffers: [y.buffer], uniforms: u.bytes(), workgroups: g.workgroups });
  return y;
}

/**
 * Uniform samples on [lo, hi): lo + (hi - lo) * u with u = (w >> 8) * 2^-24 (24 random
 * bits). NOTE: values in [0, 1) are bit-identical on every adapter; for other ranges the
 * multiply-add may be fused, and rounding can give hi itself when hi - lo is not a power of 2.
 */
export function randomUniform(device: Device, shape: Shape, opts: RngKey & { lo?: number; hi?: number }): Tensor {
  const lo = opts?.lo ?? 0;
  const hi = opts?.hi ?? 1;
  checkFinite('randomUniform', 'lo', lo);
  checkFinite('randomUniform', 'hi', hi);
  if (!(lo < hi)) throw new Error(`kinkless: randomUniform: lo (${lo}) must be < hi (${hi})`);
  if (!Number.isFinite(Math.fround(hi - lo))) throw new Error(`kinkless: randomUniform: hi - lo (${hi - lo}) overflows float32`);
  return launch('randomUniform', 'uniform', device, shape, opts, lo, hi - lo, 0);
}

/**
 * Normal samples mean + std * z by Box-Muller on 24-bit uniforms (so |z| <= 5.77). NOTE:
 * not bit-identical across adapters (log/sqrt/cos/sin accuracy is implementation-defined).
 */
export function randomNormal(device: Device, shape: Shape, opts: RngKey & { mean?: number; std?: number }): Tensor {
  const mean = opts?.mean ?? 0;
  const std = opts?.std ?? 1;
  checkFinite('randomNormal', 'mean', mean);
  checkFinite('randomNormal', 'std', std);
  if (std < 0) throw new Error(`kinkless: randomNormal: std must be >= 0, got ${std}`);
  return launch('randomNormal', 'normal', device, shape, opts, mean, std, 0);
}

/**
 * f32 mask: 1 with probability p, else 0 (dropout keeps with p = 1 - rate). The test is
 * (w >> 8) < round(p * 2^24) on integers, so masks are bit-identical across adapters and
 * the realised probability is p rounded to a multiple of 2^-24 (p = 0: all 0; p = 1: all 1).
 */
export function bernoulliMask(device: Device, shape: Shape, p: number, opts: RngKey): Tensor {
  if (typeof p !== 'number' || !(p >= 0 && p <= 1)) throw new Error(`kinkless: bernoulliMask: p must be a probability in [0, 1], got ${String(p)}`);
  return launch('bernoulliMask', 'bernoulli', device, shape, opts, 0, 0, Math.round(p * 2 ** 24));
}

/** Plain-JSON form of RngState. */
export interface RngStateJSON {
  seed: number;
  counter: number;
}

/**
 * A cursor into one seed's stream. next(n) reserves n elements and returns the key of
 * the reserved range; ranges never overlap, so successive draws differ. Ranges start on
 * multiples of 4 (a whole Philox block), so no two draws share a block.
 * Save with JSON.stringify(state) (or toJSON()), restore with RngState.fromJSON.
 */
export class RngState {
  seed: number;
  counter: number;

  constructor(seed: number, counter = 0) {
    if (!Number.isSafeInteger(seed) || seed < 0) throw new Error(`kinkless: RngState: seed must be an integer in [0, 2^53), got ${String(seed)}`);
    if (!Number.isSafeInteger(counter) || counter < 0) throw new Error(`kinkless: RngState: counter must be an integer in [0, 2^53), got ${String(counter)}`);
    this.seed = seed;
    this.counter = counter;
  }

  /** Reserve nElements of the stream: { seed, offset } for randomUniform & co. */
  next(nElements: number | Shape): { seed: number; offset: number } {
    const n = typeof nElements === 'number' ? nElements : shapeSize(nElements);
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`kinkless: RngState.next: nElements must be an integer >= 0, got ${Array.isArray(nElements) ? shapeStr(nElements) : String(nElements)}`);
    const offset = this.counter;
    const adv = Math.ceil(n / 4) * 4;
    if (offset + adv > MAX_SAFE) throw new Error(`kinkless: RngState.next: the stream of seed ${this.seed} is exhausted (counter ${offset} + ${adv} > 2^53 - 1)`);
    this.counter = offset + adv;
    return { seed: this.seed, offset };
  }

  toJSON(): RngStateJSON {
    return { seed: this.seed, counter: this.counter };
  }

  static fromJSON(j: RngStateJSON | string): RngState {
    const o = (typeof j === 'string' ? JSON.parse(j) : j) as Partial<RngStateJSON> | null;
    if (o == null || typeof o !== 'object') throw new Error(`kinkless: RngState.fromJSON: expected { seed, counter }, got ${String(o)}`);
    return new RngState(o.seed as number, o.counter as number);
  }

  clone(): RngState {
    return new RngState(this.seed, this.counter);
  }
}
