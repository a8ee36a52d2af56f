// float64 references for the threat-model geometry (engine/ops/threat.ts), dropout and the
// fused optimizer updates (engine/ops/optim.ts), written from their definitions and
// independent of the GPU code. Batches are flat arrays of N examples of D values each.

export type Arr = Float64Array;

const clip = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v));

/** Per-example ||.||_2 of [N, D]. */
export function l2Norm64(t: ArrayLike<number>, N: number): Arr {
  const D = t.length / N;
  const out = new Float64Array(N);
  for (let i = 0; i < N; i++) {
    let s = 0;
    for (let j = 0; j < D; j++) s += t[i * D + j]! ** 2;
    out[i] = Math.sqrt(s);
  }
  return out;
}

/** Per-example ||.||_inf of [N, D]. */
export function linfNorm64(t: ArrayLike<number>, N: number): Arr {
  const D = t.length / N;
  const out = new Float64Array(N);
  for (let i = 0; i < N; i++) for (let j = 0; j < D; j++) out[i] = Math.max(out[i]!, Math.abs(t[i * D + j]!));
  return out;
}

/** g / n per example (0 where n = 0). */
export function normalize64(g: ArrayLike<number>, n: ArrayLike<number>): Arr {
  const N = n.length;
  const D = g.length / N;
  return Float64Array.from(g, (v, k) => (n[Math.floor(k / D)]! > 0 ? v / n[Math.floor(k / D)]! : 0));
}

/** The ball-then-box projection: clip(P_ball(delta) + x, lo, hi) - x. */
export function projectBall64(x: ArrayLike<number>, delta: ArrayLike<number>, N: number, norm: 'linf' | 'l2', eps: number, lo: number, hi: number): Arr {
  const D = x.length / N;
  const n = l2Norm64(delta, N);
  return Float64Array.from(delta, (d, k) => {
    const i = Math.floor(k / D);
    const inBall = norm === 'linf' ? clip(d, -eps, eps) : n[i]! > eps ? (d * eps) / n[i]! : d;
    return clip(inBall + x[k]!, lo, hi) - x[k]!;
  });
}

/** delta + step_i * dir, then projectBall64 (step per example). */
export function stepBall64(x: ArrayLike<number>, delta: ArrayLike<number>, dir: ArrayLike<number>, step: ArrayLike<number>, N: number, norm: 'linf' | 'l2', eps: number, lo: number, hi: number): Arr {
  const D = x.length / N;
  const moved = Float64Array.from(delta, (d, k) => d + step[Math.floor(k / D)]! * dir[k]!);
  return projectBall64(x, moved, N, norm, eps, lo, hi);
}

/** sign(g) (L-inf) or g / ||g||_2 per example (L2). */
export function ascent64(g: ArrayLike<number>, N: number, norm: 'linf' | 'l2'): Arr {
  if (norm === 'linf') return Float64Array.from(g, Math.sign);
  return normalize64(g, l2Norm64(g, N));
}

export function boxStep64(x: ArrayLike<number>, dir: ArrayLike<number>, scale: number, lo: number, hi: number, signOf = false): Arr {
  return Float64Array.from(x, (v, k) => clip(v + scale * (signOf ? Math.sign(dir[k]!) : dir[k]!), lo, hi));
}

/** APGD's checkpoint mask: inc < thr or (halved == 0 and fBestCheck >= fBest). */
export function apgdReduce64(inc: ArrayLike<number>, halved: ArrayLike<number>, fBestCheck: ArrayLike<number>, fBest: ArrayLike<number>, thr: number): Arr {
  return Float64Array.from(inc, (v, i) => (v < thr || (halved[i] === 0 && fBestCheck[i]! >= fBest[i]!) ? 1 : 0));
}

/** One SGD step (PyTorch semantics, dampening 0) on copies of p and v. */
export function sgdStep64(p: ArrayLike<number>, g: ArrayLike<number>, v: ArrayLike<number>, gscale: number, lr: number, mu: number, wd: number, nesterov: boolean): { p: Arr; v: Arr } {
  const P = Float64Array.from(p);
  const V = Float64Array.from(v);
  for (let i = 0; i < P.length; i++) {
    const gi = g[i]! * gscale + wd * P[i]!;
    V[i] = mu * V[i]! + gi;
    P[i] = P[i]! - lr * (nesterov ? gi + mu * V[i]! : V[i]!);
  }
  return { p: P, v: V };
}

/** One Adam / AdamW step at step count t on copies of p, m, v. */
export function adamStep64(p: ArrayLike<number>, g: ArrayLike<number>, m: ArrayLike<number>, v: ArrayLike<number>, o: { gscale: number; lr: number; b1: number; b2: number; eps: number; wd: number; t: number; decoupled: boolean }): { p: Arr; m: Arr; v: Arr } {
  const P = Float64Array.from(p);
  const M = Float64Array.from(m);
  const V = Float64Array.from(v);
  const bc1 = 1 - o.b1 ** o.t;
  const bc2 = 1 - o.b2 ** o.t;
  for (let i = 0; i < P.length; i++) {
    let gi = g[i]! * o.gscale;
    if (o.decoupled) P[i] = P[i]! - o.lr * o.wd * P[i]!;
    else gi += o.wd * P[i]!;
    M[i] = o.b1 * M[i]! + (1 - o.b1) * gi;
    V[i] = o.b2 * V[i]! + (1 - o.b2) * gi * gi;
    P[i] = P[i]! - (o.lr * (M[i]! / bc1)) / (Math.sqrt(V[i]! / bc2) + o.eps);
  }
  return { p: P, m: M, v: V };
}
