// Host-side geometry of the Square attack (docs/autoattack.md, "Square"): the schedule of
// p (the fraction of pixels a square covers) over iterations, the square sides it implies
// for L-inf and L2, and the L2 attack's centred "pseudo-Gaussian" window patterns. Plain
// numbers, no tensors: square.ts turns them into small host-built tensors per iteration.

/**
 * Breakpoints of the published schedule, defined for 10000 iterations: p = pInit for
 * it <= 10, then pInit / 2 for 10 < it <= 50, / 4 up to 200, / 8 up to 500, / 16 up to
 * 1000, / 32 up to 2000, / 64 up to 4000, / 128 up to 6000, / 256 up to 8000, / 512 after.
 */
const BREAKS = [10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000];

/**
 * p at iteration `it` (0-based). With `rescale`, `it` is first mapped to the 10000-iteration
 * scale as floor(it / nIter * 10000) (AutoAttack's resc_schedule); AutoAttack's standard
 * version runs 5000 queries WITHOUT rescaling, so it only reaches the p_init / 128 stage.
 */
export function squareP(pInit: number, it: number, nIter: number, rescale: boolean): number {
  const t = rescale ? Math.floor((it / nIter) * 10000) : it;
  let k = 0;
  while (k < BREAKS.length && t > BREAKS[k]!) k++;
  return pInit / 2 ** k;
}

/**
 * Side of the L-inf square: round(sqrt(p H W)) (p times the pixels of one channel), at
 * least 1, at most min(H, W).
 */
export function linfSide(p: number, h: number, w: number): number {
  return Math.min(Math.max(Math.round(Math.sqrt(p * h * w)), 1), h, w);
}

/** Side of the L2 windows: round(sqrt(p H W)), at least 3, made odd, at most min(H, W). */
export function l2Side(p: number, h: number, w: number): number {
  let s = Math.max(Math.round(Math.sqrt(p * h * w)), 3);
  if (s % 2 === 0) s++;
  return Math.min(s, h, w);
}

/**
 * The a x b "rectangle" pattern, row-major, unit L2 norm: the pixel at Chebyshev distance k
 * from the centre (floor(a/2), floor(b/2)) gets sum_{r=k}^{R-1} 1/(r+1)^2 with
 * R = max(floor(a/2), floor(b/2)) + 1 (nested rectangles of weight 1/(r+1)^2), then the
 * whole pattern is divided by its L2 norm. Empty (a = 0) gives an empty array.
 */
export function etaRectangle(a: number, b: number): Float64Array {
  const out = new Float64Array(a * b);
  if (out.length === 0) return out;
  const ca = Math.floor(a / 2);
  const cb = Math.floor(b / 2);
  const R = Math.max(ca, cb) + 1;
  const tail = new Float64Array(R + 1); // tail[k] = sum_{r=k}^{R-1} 1/(r+1)^2
  for (let r = R - 1; r >= 0; r--) tail[r] = tail[r + 1]! + 1 / ((r + 1) * (r + 1));
  let ss = 0;
  for (let i = 0; i < a; i++) {
    for (let j = 0; j < b; j++) {
      const k = Math.max(Math.abs(i - ca), Math.abs(j - cb));
      const v = k < R ? tail[k]! : 0;
      out[i * b + j] = v;
      ss += v * v;
    }
  }
  const n = Math.sqrt(ss);
  for (let i = 0; i < out.length; i++) out[i] = out[i]! / n;
  return out;
}

/**
 * The s x s window pattern of the L2 attack: the top floor(s/2) rows are etaRectangle of
 * that height, the other rows minus etaRectangle of theirs, normalised to unit L2 norm,
 * and transposed when `transpose` (drawn with probability 1/2 by the caller).
 */
export function etaWindow(s: number, transpose: boolean): Float64Array {
  const top = Math.floor(s / 2);
  const a = etaRectangle(top, s);
  const b = etaRectangle(s - top, s);
  const out = new Float64Array(s * s);
  out.set(a, 0);
  for (let i = 0; i < b.length; i++) out[a.length + i] = -b[i]!;
  let ss = 0;
  for (const v of out) ss += v * v;
  const n = Math.sqrt(ss);
  for (let i = 0; i < out.length; i++) out[i] = out[i]! / n;
  if (!transpose) return out;
  const t = new Float64Array(s * s);
  for (let i = 0; i < s; i++) for (let j = 0; j < s; j++) t[j * s + i] = out[i * s + j]!;
  return t;
}

/**
 * An H x W plane (Float32, row-major) holding `pattern` (s x s) at rows vh.., columns vw..,
 * cropped at the border, zero elsewhere; a null pattern writes 1 (a window mask).
 */
export function placeWindow(h: number, w: number, s: number, vh: number, vw: number, pattern: Float64Array | null, into?: Float32Array): Float32Array {
  const out = into ?? new Float32Array(h * w);
  for (let i = 0; i < s && vh + i < h; i++) {
    for (let j = 0; j < s && vw + j < w; j++) {
      const v = pattern ? pattern[i * s + j]! : 1;
      out[(vh + i) * w + vw + j] = into ? out[(vh + i) * w + vw + j]! + v : v;
    }
  }
  return out;
}
