// float64 replay of the L2 Square attack (docs/autoattack.md, "Square") on a linear model
// z = W flatten(x), written from the documented algorithm: the start grid, the two-window
// update (W1 gets its normalised old content plus a signed window pattern, rescaled per
// channel to sqrt(max(eps^2 - ||delta||^2, 0) / C + ||delta on W1 u W2||^2); W2 zeroed;
// the whole rescaled to eps and clipped to the box), strict acceptance, retirement at
// margin <= 0 and the query counts. It draws from the same seeded stream in the order the
// documentation gives (the attack's first call: key offset 0), so it must take the same
// decisions as adversarial/attacks/square.ts unless two margins it compares are within
// float32 rounding of each other: `minGap` reports the closest such comparison (of
// candidates that move the point at all).
// The schedule, the sides and the window patterns come from square_geometry.ts, which
// test/adversarial/attacks/square_geometry.test.ts checks against its own construction.
import { Rng, deriveSeed } from '../../nn/data/loader.ts';
import { etaWindow, l2Side, squareP } from '../../adversarial/attacks/square_geometry.ts';

export interface SquareL2Case {
  /** Weights [classes, C*H*W] (row-major). */
  W: Float64Array;
  classes: number;
  /** Inputs [N, C, H, W] (row-major). */
  X: ArrayLike<number>;
  shape: readonly [number, number, number, number];
  labels: ArrayLike<number>;
  eps: number;
  bounds: readonly [number, number];
  queries: number;
  pInit: number;
  seed: number;
}

export interface SquareL2Replay {
  xAdv: Float64Array;
  queries: Int32Array;
  fooled: Uint8Array;
  margins: Float64Array;
  /**
   * Smallest |a - b| / max(1, |a|, |b|) over the margin comparisons (acceptance and <= 0),
   * leaving out candidates within 1e-4 eps of the best point.
   */
  minGap: number;
}

export function squareL2Replay64(k: SquareL2Case): SquareL2Replay {
  const [N, C, H, Wd] = k.shape;
  const HW = H * Wd;
  const P = C * HW;
  const [lo, hi] = k.bounds;
  const rng = new Rng(deriveSeed(k.seed, 0));
  let minGap = Infinity;
  const gap = (a: number, b: number) => (minGap = Math.min(minGap, Math.abs(a - b) / Math.max(1, Math.abs(a), Math.abs(b))));
  const margin = (v: ArrayLike<number>, y: number) => {
    let zy = 0;
    let other = -Infinity;
    for (let c = 0; c < k.classes; c++) {
      let z = 0;
      for (let j = 0; j < P; j++) z += k.W[c * P + j]! * v[j]!;
      if (c === y) zy = z;
      else other = Math.max(other, z);
    }
    return zy - other;
  };
  const xOf = (e: number) => Float64Array.from({ length: P }, (_, j) => k.X[e * P + j]!);
  const norm = (v: ArrayLike<number>, from = 0, n = v.length) => {
    let s = 0;
    for (let j = from; j < from + n; j++) s += v[j]! ** 2;
    return Math.sqrt(s);
  };
  /** clip(x + d * eps / ||d||, lo, hi) (the projection onto the ball is then a no-op). */
  const onSphere = (x: Float64Array, d: Float64Array) => {
    const f = k.eps / (norm(d) + 1e-12);
    return Float64Array.from(x, (v, j) => Math.min(hi, Math.max(lo, v + d[j]! * f)));
  };
  const inWin = (i: number, j: number, vh: number, vw: number, s: number) => i >= vh && i < vh + s && j >= vw && j < vw + s;

  const xAdv = new Float64Array(N * P);
  const queries = new Int32Array(N);
  const fooled = new Uint8Array(N);
  const margins = new Float64Array(N);
  const best: Float64Array[] = [];
  const m: number[] = [];
  let active: number[] = [];
  for (let e = 0; e < N; e++) {
    const m0 = margin(xOf(e), k.labels[e]!);
    gap(m0, 0);
    if (m0 <= 0) {
      xAdv.set(xOf(e), e * P);
      margins[e] = m0;
      fooled[e] = 1;
    } else active.push(e);
  }
  const retire = () => {
    active = active.filter((e) => {
      gap(m[e]!, 0);
      if (m[e]! > 0) return true;
      xAdv.set(best[e]!, e * P);
      margins[e] = m[e]!;
      fooled[e] = 1;
      return false;
    });
  };
  if (active.length) {
    // Start: a grid of side-s0 windows from the centred offset, one pattern (its transpose
    // drawn per window) times a sign per (example, channel, window), scaled to norm eps.
    const s0 = Math.max(1, Math.floor(Math.min(H, Wd) / 5));
    const h0 = Math.max(Math.floor((H - 5 * s0) / 2), 0);
    const w0 = Math.max(Math.floor((Wd - 5 * s0) / 2), 0);
    const wins: { vh: number; vw: number; eta: Float64Array }[] = [];
    for (let i = 0; i < Math.floor(H / s0); i++) {
      for (let j = 0; j < Math.floor(Wd / s0); j++) {
        const vh = h0 + i * s0;
        const vw = w0 + j * s0;
        if (vh < H && vw < Wd) wins.push({ vh, vw, eta: etaWindow(s0, rng.next() < 0.5) });
      }
    }
    for (const e of active) {
      const d = new Float64Array(P);
      for (let c = 0; c < C; c++) {
        for (const w of wins) {
          const sg = rng.next() < 0.5 ? -1 : 1;
          for (let a = 0; a < s0 && w.vh + a < H; a++) for (let b = 0; b < s0 && w.vw + b < Wd; b++) d[c * HW + (w.vh + a) * Wd + w.vw + b] += sg * w.eta[a * s0 + b]!;
        }
      }
      best[e] = onSphere(xOf(e), d);
      m[e] = margin(best[e]!, k.labels[e]!);
      queries[e] = 1;
    }
    retire();
  }
  for (let it = 0; active.length && it < k.queries; it++) {
    const s = l2Side(squareP(k.pInit, it, k.queries, false), H, Wd);
    const vh = rng.int(H - s + 1);
    const vw = rng.int(Wd - s + 1);
    const vh2 = rng.int(H - s + 1);
    const vw2 = rng.int(Wd - s + 1);
    const eta = etaWindow(s, rng.next() < 0.5);
    const signs = Float64Array.from({ length: active.length * C }, () => (rng.next() < 0.5 ? -1 : 1));
    active.forEach((e, r) => {
      const x = xOf(e);
      const delta = Float64Array.from(best[e]!, (v, j) => v - x[j]!);
      let nImg2 = 0;
      let nWin2 = 0;
      for (let j = 0; j < P; j++) {
        const i = Math.floor((j % HW) / Wd);
        const jj = j % Wd;
        nImg2 += delta[j]! ** 2;
        if (inWin(i, jj, vh, vw, s) || inWin(i, jj, vh2, vw2, s)) nWin2 += delta[j]! ** 2;
      }
      const target = Math.sqrt(Math.max(k.eps ** 2 - nImg2, 0) / C + nWin2);
      const d2 = Float64Array.from(delta);
      for (let c = 0; c < C; c++) {
        // W1's new content, then W2 zeroed, then W1 written (W1 wins where they overlap).
        const nd = new Float64Array(s * s);
        let n1 = 0;
        for (let a = 0; a < s; a++) for (let b = 0; b < s; b++) if (vh + a < H && vw + b < Wd) n1 += delta[c * HW + (vh + a) * Wd + vw + b]! ** 2;
        n1 = Math.sqrt(n1);
        for (let a = 0; a < s; a++) {
          for (let b = 0; b < s; b++) {
            if (vh + a >= H || vw + b >= Wd) continue;
            nd[a * s + b] = signs[r * C + c]! * eta[a * s + b]! + delta[c * HW + (vh + a) * Wd + vw + b]! / (n1 + 1e-12);
          }
        }
        const ndn = norm(nd);
        for (let a = 0; a < s && vh2 + a < H; a++) for (let b = 0; b < s && vw2 + b < Wd; b++) d2[c * HW + (vh2 + a) * Wd + vw2 + b] = 0;
        for (let a = 0; a < s && vh + a < H; a++) for (let b = 0; b < s && vw + b < Wd; b++) d2[c * HW + (vh + a) * Wd + vw + b] = (nd[a * s + b]! / (ndn + 1e-12)) * target;
      }
      const cand = onSphere(x, d2);
      const mc = margin(cand, k.labels[e]!);
      queries[e]!++;
      // A candidate within 1e-4 eps of the best point (a proposal whose two windows hold no
      // mass) leaves the same point to that tolerance whichever way rounding decides.
      if (norm(Float64Array.from(cand, (v, j) => v - best[e]![j]!)) > 1e-4 * k.eps) gap(mc, m[e]!);
      if (mc < m[e]!) {
        best[e] = cand;
        m[e] = mc;
      }
    });
    retire();
  }
  for (const e of active) {
    xAdv.set(best[e]!, e * P);
    margins[e] = m[e]!;
  }
  return { xAdv, queries, fooled, margins, minGap };
}
