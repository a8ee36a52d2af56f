// WGSL builders and float64 references for softmax, log-softmax and the fused softmax
// cross-entropy (with PyTorch-style label smoothing), forward and backward, plus the
// per-row "argmax == label" kernel behind accuracy counts. All kernels run one thread per
// row: on lavapipe that beats shared-memory trees for the class counts of classifiers
// (10 to 1000), and each row is read at most twice.
//
// NOTE: stability. A row's max m and s = sum exp(z - m) are built in ONE online pass
// (when a new max arrives, s is rescaled by exp(m_old - m_new)); every exp argument is
// <= 0 and goes through k_exp_neg (clamped, flushed to 0 below -88), so logits of
// magnitude 1e30 give finite results. log-sum-exp = m + log(s) with s in [1, C].
import { WGSL_EXP_NEG } from './wgsl_math.ts';
import { defineKernel, reads, writes } from './kernel.ts';
import { gridMain } from './wgsl_grid.ts';

export const SX_WG = 64;

// Online max / sum-exp over row r of an [outer, R, inner] view; leaves `m`, `s`, `base0`.
function onlinePass(src: string): string {
  return `  let ou = row / u.inner;
  let iv = row % u.inner;
  let base0 = ou * u.R * u.inner + iv;
  var m = ${src}[base0];
  var s = 1.0;
  for (var r = 1u; r < u.R; r++) {
    let v = ${src}[base0 + r * u.inner];
    if (v > m) { s = s * k_exp_neg(m - v) + 1.0; m = v; } else { s = s + k_exp_neg(v - m); }
  }`;
}

const ROW_HEAD = `struct U { outer: u32, R: u32, inner: u32, gx: u32 };
@group(0) @binding(0) var<uniform> u: U;`;

const ROW_MAIN = `${gridMain(SX_WG, 'row', 'u.outer * u.inner')}`;

/** softmax / log_softmax over the middle axis of [outer, R, inner]. Uniforms: outer, R, inner, gx. */
export function softmaxWgsl(log: boolean): string {
  const write = log ? 'y[i] = (x[i] - m) - ls;' : 'y[i] = k_exp_neg(x[i] - m) * inv_s;';
  return `// ${log ? 'log_softmax' : 'softmax'} (thread per row)
${ROW_HEAD}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
${WGSL_EXP_NEG}
${ROW_MAIN}
${onlinePass('x')}
  let ls = log(s);
  let inv_s = 1.0 / s;
  for (var r = 0u; r < u.R; r++) {
    let i = base0 + r * u.inner;
    ${write}
  }
}
`;
}

/**
 * Backward from the saved output y: log_softmax: dx = dy - exp(y) * sum(dy);
 * softmax: dx = y * (dy - sum(dy * y)). Uniforms: outer, R, inner, gx.
 */
export function softmaxBackwardWgsl(log: boolean): string {
  const acc = log ? 'dy[i]' : 'dy[i] * y[i]';
  const write = log ? 'dx[i] = dy[i] - k_exp_neg(y[i]) * t;' : 'dx[i] = y[i] * (dy[i] - t);';
  return `// ${log ? 'log_softmax' : 'softmax'}_backward (thread per row)
${ROW_HEAD}
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
${WGSL_EXP_NEG}
${ROW_MAIN}
  let ou = row / u.inner;
  let iv = row % u.inner;
  let base0 = ou * u.R * u.inner + iv;
  var t = 0.0;
  for (var r = 0u; r < u.R; r++) {
    let i = base0 + r * u.inner;
    t = t + ${acc};
  }
  for (var r = 0u; r < u.R; r++) {
    let i = base0 + r * u.inner;
    ${write}
  }
}
`;
}

const XENT_HEAD = `struct U { outer: u32, R: u32, inner: u32, gx: u32, ls: f32, scale: f32, dy_stride: u32, p0: u32 };
@group(0) @binding(0) var<uniform> u: U;`;

// NOTE: a label outside [0, C) writes NaN (this quiet-NaN bit pattern) for that row's loss
// and for its whole gradient row, so a bad label can never go unnoticed nor read out of
// bounds. engine/ops/loss.ts checkLabels() finds the culprit. (OR-ing in the zero uniform
// p0 keeps the NaN out of constant evaluation, where WGSL makes it a compile error.)
const NAN = 'bitcast<f32>(0x7fc00000u | u.p0)';

/**
 * Per-example loss of softmax cross-entropy over [N, C] logits (outer = N, R = C,
 * inner = 1): loss = log(s) + (1 - ls)(m - z_y) + ls * mean(m - z), which is
 * lse - (1 - ls) z_y - ls mean(z) with every term a difference from the row max.
 * mean(m - z) is accumulated online too, in units of 1/C (no overflow for |z| <= 1e38).
 * Bindings: logits, labels (i32), losses. Uniforms: N, C, 1, gx, ls, -, -, -.
 */
export function xentWgsl(): string {
  return `// softmax_cross_entropy (thread per row)
${XENT_HEAD}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<i32>;
@group(0) @binding(3) var<storage, read_write> losses: array<f32>;
${WGSL_EXP_NEG}
${ROW_MAIN}
  let inv_c = 1.0 / f32(u.R);
  let base0 = row * u.R;
  var m = x[base0];
  var s = 1.0;
  var md = 0.0;
  for (var r = 1u; r < u.R; r++) {
    let v = x[base0 + r];
    if (v > m) {
      s = s * k_exp_neg(m - v) + 1.0;
      md = md + f32(r) * ((v - m) * inv_c);
      m = v;
    } else {
      s = s + k_exp_neg(v - m);
      md = md + (m - v) * inv_c;
    }
  }
  let lab = labels[row];
  if (lab < 0 || u32(lab) >= u.R) { losses[row] = ${NAN}; return; }
  let zy = x[base0 + u32(lab)];
  losses[row] = log(s) + (1.0 - u.ls) * (m - zy) + select(0.0, u.ls * md, u.ls > 0.0);
}
`;
}

/**
 * dlogits = (softmax(z) - target) * dy[row * dy_stride] * scale, target = (1 - ls) onehot(y)
 * + ls / C. Bindings: logits, labels, dy, dx. Uniforms: N, C, 1, gx, ls, scale, dy_stride.
 */
export function xentBackwardWgsl(): string {
  return `// softmax_cross_entropy_backward (thread per row)
${XENT_HEAD}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<i32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;
${WGSL_EXP_NEG}
${ROW_MAIN}
${onlinePass('x')}
  let lab = labels[row];
  let bad = lab < 0 || u32(lab) >= u.R;
  let g = dy[row * u.dy_stride] * u.scale;
  let inv_s = 1.0 / s;
  let t_off = u.ls / f32(u.R);
  let t_on = t_off + (1.0 - u.ls);
  for (var r = 0u; r < u.R; r++) {
    let i = base0 + r;
    let p = k_exp_neg(x[i] - m) * inv_s;
    let t = select(t_off, t_on, i32(r) == lab);
    dx[i] = select((p - t) * g, ${NAN}, bad);
  }
}
`;
}

/** 1.0 where the first argmax of the row equals the label, else 0.0. Uniforms: N, C, 1, gx. */
export function correctWgsl(): string {
  return `// accuracy_correct (thread per row)
${ROW_HEAD}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<i32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
${ROW_MAIN}
  let base0 = row * u.R;
  var best = x[base0];
  var bi = 0;
  for (var r = 1u; r < u.R; r++) {
    let v = x[base0 + r];
    if (v > best) { best = v; bi = i32(r); }
  }
  y[row] = select(0.0, 1.0, bi == labels[row]);
}
`;
}

// ---------------------------------------------------------------- descriptors

const B_X_Y = [...reads('x'), ...writes('y')];

/** softmax / log_softmax over the middle axis (thread per row). Bindings: x, y. */
export const softmaxKernel = defineKernel<{ log: boolean }>({
  name: 'softmax',
  label: (p) => (p.log ? 'log_softmax' : 'softmax'),
  key: (p) => (p.log ? 'log' : 'exp'),
  bindings: () => B_X_Y,
  build: (p) => softmaxWgsl(p.log),
});

const B_SMB = [...reads('y', 'dy'), ...writes('dx')];

/** Backward of softmax / log_softmax from the saved output. Bindings: y, dy, dx. */
export const softmaxBackwardKernel = defineKernel<{ log: boolean }>({
  name: 'softmax_backward',
  label: (p) => (p.log ? 'log_softmax_backward' : 'softmax_backward'),
  key: (p) => (p.log ? 'log' : 'exp'),
  bindings: () => B_SMB,
  build: (p) => softmaxBackwardWgsl(p.log),
});

const B_XENT = [...reads('x', 'labels'), ...writes('losses')];

/** Per-example softmax cross-entropy (no parameters). Bindings: x (logits), labels, losses. */
export const xentKernel = defineKernel<void>({ name: 'softmax_cross_entropy', key: () => '', bindings: () => B_XENT, build: xentWgsl })();

const B_XENTB = [...reads('x', 'labels', 'dy'), ...writes('dx')];

/** Gradient of softmax cross-entropy w.r.t. the logits. Bindings: x, labels, dy, dx. */
export const xentBackwardKernel = defineKernel<void>({ name: 'softmax_cross_entropy_backward', key: () => '', bindings: () => B_XENTB, build: xentBackwardWgsl })();

const B_CORRECT = [...reads('x', 'labels'), ...writes('y')];

/** 1.0 per row whose first argmax equals its label. Bindings: x, labels, y. */
export const correctKernel = defineKernel<void>({ name: 'accuracy_correct', key: () => '', bindings: () => B_CORRECT, build: correctWgsl })();

// ---------------------------------------------------------------- float64 references

/** Row-wise (last axis, rows of length C) log-softmax in float64. */
export function logSoftmax64(x: ArrayLike<number>, C: number): Float64Array {
  const y = new Float64Array(x.length);
  for (let b = 0; b < x.length; b += C) {
    let m = -Infinity;
    for (let c = 0; c < C; c++) m = Math.max(m, x[b + c]!);
    let s = 0;
    for (let c = 0; c < C; c++) s += Math.exp(x[b + c]! - m);
    const l = Math.log(s);
    for (let c = 0; c < C; c++) y[b + c] = x[b + c]! - m - l;
  }
  return y;
}

export function softmax64(x: ArrayLike<number>, C: number): Float64Array {
  return logSoftmax64(x, C).map(Math.exp);
}

/** d/dx of sum(dy * logSoftmax(x)): dy - softmax * sum(dy), per row. */
export function logSoftmaxBackward64(x: ArrayLike<number>, dy: ArrayLike<number>, C: number): Float64Array {
  const p = softmax64(x, C);
  const dx = new Float64Array(x.length);
  for (let b = 0; b < x.length; b += C) {
    let t = 0;
    for (let c = 0; c < C; c++) t += dy[b + c]!;
    for (let c = 0; c < C; c++) dx[b + c] = dy[b + c]! - p[b + c]! * t;
  }
  return dx;
}

/** d/dx of sum(dy * softmax(x)): p * (dy - sum(dy * p)), per row. */
export function softmaxBackward64(x: ArrayLike<number>, dy: ArrayLike<number>, C: number): Float64Array {
  const p = softmax64(x, C);
  const dx = new Float64Array(x.length);
  for (let b = 0; b < x.length; b += C) {
    let t = 0;
    for (let c = 0; c < C; c++) t += dy[b + c]! * p[b + c]!;
    for (let c = 0; c < C; c++) dx[b + c] = p[b + c]! * (dy[b + c]! - t);
  }
  return dx;
}

/** Per-example cross-entropy -sum(target * logSoftmax), target = (1-ls) onehot + ls/C. NaN for a bad label. */
export function xent64(x: ArrayLike<number>, labels: ArrayLike<number>, C: number, ls = 0): Float64Array {
  const N = labels.length;
  const lp = logSoftmax64(x, C);
  const out = new Float64Array(N);
  for (let n = 0; n < N; n++) {
    const y = labels[n]!;
    if (!(y >= 0 && y < C)) {
      out[n] = NaN;
      continue;
    }
    let l = 0;
    for (let c = 0; c < C; c++) {
      const t = ls / C + (c === y ? 1 - ls : 0);
      if (t !== 0) l -= t * lp[n * C + c]!;
    }
    out[n] = l;
  }
  return out;
}

/** Gradient of sum_n dyRow[n] * loss_n w.r.t. the logits: (softmax - target) * dyRow. */
export function xentBackward64(x: ArrayLike<number>, labels: ArrayLike<number>, C: number, ls: number, dyRow: ArrayLike<number>): Float64Array {
  const p = softmax64(x, C);
  const dx = new Float64Array(x.length);
  for (let n = 0; n < labels.length; n++) {
    for (let c = 0; c < C; c++) {
      const t = ls / C + (c === labels[n] ? 1 - ls : 0);
      dx[n * C + c] = (p[n * C + c]! - t) * dyRow[n]!;
    }
  }
  return dx;
}
