// float64 reference for batch normalisation over the channel axis of an [N, C, HW]
// layout (BatchNorm2d with HW = H*W, BatchNorm1d with HW = 1): forward in training mode
// (batch statistics, running-stat update with the unbiased variance) and eval mode
// (running statistics), and the backward of both.

export interface Bn64Shape {
  N: number;
  C: number;
  HW: number;
}

export interface Bn64Opts {
  training: boolean;
  momentum: number;
  eps: number;
}

export interface Bn64Result {
  y: Float64Array;
  /** Statistics used for normalisation (batch or running), per channel. */
  mean: Float64Array;
  /** Biased (normalisation) variance in training; the running variance in eval. */
  var: Float64Array;
  /** Running statistics after the call (unchanged in eval). */
  runningMean: Float64Array;
  runningVar: Float64Array;
}

function channel(s: Bn64Shape, c: number, f: (i: number) => void): void {
  for (let n = 0; n < s.N; n++) for (let k = 0; k < s.HW; k++) f((n * s.C + c) * s.HW + k);
}

/** Two-pass per-channel mean and biased variance. */
export function channelStats64(x: ArrayLike<number>, s: Bn64Shape): { mean: Float64Array; var: Float64Array } {
  const M = s.N * s.HW;
  const mean = new Float64Array(s.C);
  const v = new Float64Array(s.C);
  for (let c = 0; c < s.C; c++) {
    let a = 0;
    channel(s, c, (i) => (a += x[i]!));
    const m = a / M;
    let q = 0;
    channel(s, c, (i) => (q += (x[i]! - m) ** 2));
    mean[c] = m;
    v[c] = q / M;
  }
  return { mean, var: v };
}

export function bnForward64(
  x: ArrayLike<number>,
  s: Bn64Shape,
  gamma: ArrayLike<number> | null,
  beta: ArrayLike<number> | null,
  running: { mean: ArrayLike<number>; var: ArrayLike<number> },
  o: Bn64Opts,
): Bn64Result {
  const M = s.N * s.HW;
  const runningMean = Float64Array.from(running.mean);
  const runningVar = Float64Array.from(running.var);
  let mean: Float64Array;
  let v: Float64Array;
  if (o.training) {
    ({ mean, var: v } = channelStats64(x, s));
    for (let c = 0; c < s.C; c++) {
      runningMean[c] = (1 - o.momentum) * runningMean[c]! + o.momentum * mean[c]!;
      runningVar[c] = (1 - o.momentum) * runningVar[c]! + o.momentum * ((v[c]! * M) / (M - 1));
    }
  } else {
    mean = Float64Array.from(running.mean);
    v = Float64Array.from(running.var);
  }
  const y = new Float64Array(x.length);
  for (let c = 0; c < s.C; c++) {
    const sd = Math.sqrt(v[c]! + o.eps);
    const g = gamma ? gamma[c]! : 1;
    const b = beta ? beta[c]! : 0;
    channel(s, c, (i) => (y[i] = (g * (x[i]! - mean[c]!)) / sd + b));
  }
  return { y, mean, var: v, runningMean, runningVar };
}

/** Gradients of sum(dy * y) w.r.t. x, gamma and beta. */
export function bnBackward64(
  x: ArrayLike<number>,
  dy: ArrayLike<number>,
  s: Bn64Shape,
  gamma: ArrayLike<number> | null,
  running: { mean: ArrayLike<number>; var: ArrayLike<number> },
  o: Bn64Opts,
): { dx: Float64Array; dgamma: Float64Array; dbeta: Float64Array } {
  const M = s.N * s.HW;
  const { mean, var: v } = bnForward64(x, s, null, null, running, o);
  const dx = new Float64Array(x.length);
  const dgamma = new Float64Array(s.C);
  const dbeta = new Float64Array(s.C);
  for (let c = 0; c < s.C; c++) {
    const inv = 1 / Math.sqrt(v[c]! + o.eps);
    const g = gamma ? gamma[c]! : 1;
    let sdy = 0;
    let sdyx = 0;
    channel(s, c, (i) => {
      sdy += dy[i]!;
      sdyx += dy[i]! * (x[i]! - mean[c]!) * inv;
    });
    dbeta[c] = sdy;
    dgamma[c] = sdyx;
    channel(s, c, (i) => {
      const xhat = (x[i]! - mean[c]!) * inv;
      // training: the batch mean and variance depend on x too
      dx[i] = o.training ? g * inv * (dy[i]! - sdy / M - (xhat * sdyx) / M) : g * inv * dy[i]!;
    });
  }
  return { dx, dgamma, dbeta };
}
