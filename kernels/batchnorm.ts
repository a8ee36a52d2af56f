// WGSL builders for batch normalisation over the channel axis of an [N, C, HW] view
// (BatchNorm2d: HW = H*W; BatchNorm1d: HW = 1 or L). Per-channel reductions over the
// M = N*HW elements of a channel run in two stages: one thread per (segment of SEG
// elements, channel) writes a partial, then one thread per channel combines the P
// partials of its channel (a 2-D grid of C * M/SEG threads: parallel over channels and
// within each channel).
//
// Per-channel statistics live in a `stats` buffer of 3*C floats:
//   stats[c] = shift, stats[C + c] = mean - shift, stats[2C + c] = 1 / sqrt(var + eps)
// so that xhat = ((x - shift) - (mean - shift)) * invstd.
// NOTE: numerics. In training the shift is the channel's first element: every sum runs
// over x - shift, whose magnitude is the data's spread, not its offset (x = 1000 + noise
// loses nothing), and x - shift is exact when both are close (Sterbenz). Each segment is
// reduced in two passes (segment mean, then sum of squared deviations from it) and segments
// are merged with Chan et al.'s formula M2 = sum(M2_k + n_k (m_k - m)^2): a sum of
// non-negative terms, no E[x^2] - E[x]^2 cancellation. In eval mode shift = running mean.

import { defineKernel, type Binding } from './kernel.ts';
import { gridMain } from './wgsl_grid.ts';

/** Threads per workgroup of the elementwise kernels. */
export const BN_WG = 256;
/** Threads per workgroup of the segment and per-channel kernels. */
export const BN_CH_WG = 64;
/** Default segment length (elements reduced by one thread). */
export const BN_SEG = 256;

type BnBinding = [name: string, type: string, rw: boolean];

function decls(list: BnBinding[]): string {
  return list
    .map(([n, t, rw], i) => `@group(0) @binding(${i + 1}) var<storage, ${rw ? 'read_write' : 'read'}> ${n}: array<${t}>;`)
    .join('\n');
}

/** Segmented-reduction uniforms: C, HW, M = N*HW, SEG = segment length, P = segments per channel. */
const SEG_U = `struct U { C: u32, HW: u32, M: u32, SEG: u32, P: u32, p0: u32, p1: u32, p2: u32 };
@group(0) @binding(0) var<uniform> u: U;`;

/**
 * Loop of thread (p, c) over elements j in [j0, j1) of channel c, running `body` with `a`
 * the flat index of element j: (n*C + c)*HW + i for n = j / HW, i = j % HW. One division
 * per segment; `a` steps to the next image's plane when i wraps.
 */
function walk(body: string): string {
  return `  {
    var i = j0 % u.HW;
    var a = ((j0 / u.HW) * u.C + c) * u.HW + i;
    for (var j = j0; j < j1; j++) {
${body}
      i++;
      a++;
      if (i == u.HW) { i = 0u; a += (u.C - 1u) * u.HW; }
    }
  }`;
}

const SEG_HEAD = `@compute @workgroup_size(${BN_CH_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let p = gid.x;
  let c = gid.y;
  if (p >= u.P) { return; }
  let j0 = p * u.SEG;
  let j1 = min(j0 + u.SEG, u.M);`;

/**
 * batchnorm_stats: thread (p, c) reduces segment p of channel c in two passes to
 * part[(c*P + p)*2 + 0] = segment mean of (x - shift), part[... + 1] = segment M2.
 * NOTE: no workgroup memory: on lavapipe a barrier-tree version was ~20x slower.
 */
const STATS_B: BnBinding[] = [['x', 'f32', false], ['part', 'f32', true]];

export function batchnormStatsWgsl(): string {
  return `// batchnorm_stats (thread per channel segment, two passes)
${SEG_U}
${decls(STATS_B)}
${SEG_HEAD}
  let shift = x[c * u.HW];
  var s = 0.0;
${walk('      s += x[a] - shift;')}
  let sm = s / f32(j1 - j0);
  var q = 0.0;
${walk('      let d = (x[a] - shift) - sm;\n      q += d * d;')}
  part[(c * u.P + p) * 2u] = sm;
  part[(c * u.P + p) * 2u + 1u] = q;
}
`;
}

/**
 * batchnorm_stats_finish: thread per channel merges the P partials (Chan et al.), writes
 * stats, and with `update` moves the running stats in place:
 * running = (1 - momentum) * running + momentum * batch, with the UNBIASED variance M2/(M-1).
 * Uniforms: C, HW, M, SEG, P, momentum (f32), eps (f32).
 */
function statsFinishB(update: boolean): BnBinding[] {
  const b: BnBinding[] = [['x', 'f32', false], ['part', 'f32', false], ['stats', 'f32', true]];
  if (update) b.push(['running_mean', 'f32', true], ['running_var', 'f32', true]);
  return b;
}

export function batchnormStatsFinishWgsl(update: boolean): string {
  const b = statsFinishB(update);
  return `// batchnorm_stats_finish${update ? ' (updates running stats)' : ''}
struct U { C: u32, HW: u32, M: u32, SEG: u32, P: u32, momentum: f32, eps: f32, p0: u32 };
@group(0) @binding(0) var<uniform> u: U;
${decls(b)}
@compute @workgroup_size(${BN_CH_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= u.C) { return; }
  let shift = x[c * u.HW];
  var sm = 0.0;
  for (var k = 0u; k < u.P; k++) {
    sm += f32(min(u.SEG, u.M - k * u.SEG)) * part[(c * u.P + k) * 2u];
  }
  let m = sm / f32(u.M);
  var q = 0.0;
  for (var k = 0u; k < u.P; k++) {
    let i = (c * u.P + k) * 2u;
    let d = part[i] - m;
    q += part[i + 1u] + f32(min(u.SEG, u.M - k * u.SEG)) * d * d;
  }
  stats[c] = shift;
  stats[u.C + c] = m;
  stats[2u * u.C + c] = 1.0 / sqrt(q / f32(u.M) + u.eps);
${
  update
    ? `  running_mean[c] = (1.0 - u.momentum) * running_mean[c] + u.momentum * (shift + m);
  running_var[c] = (1.0 - u.momentum) * running_var[c] + u.momentum * (q / f32(u.M - 1u));`
    : ''
}
}
`;
}

/** batchnorm_eval_stats: stats from the running statistics (thread per channel). Uniforms: C, eps (f32). */
const EVAL_STATS_B: BnBinding[] = [['running_mean', 'f32', false], ['running_var', 'f32', false], ['stats', 'f32', true]];

export function batchnormEvalStatsWgsl(): string {
  return `// batchnorm_eval_stats
struct U { C: u32, eps: f32, p0: u32, p1: u32 };
@group(0) @binding(0) var<uniform> u: U;
${decls(EVAL_STATS_B)}
@compute @workgroup_size(${BN_CH_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= u.C) { return; }
  stats[c] = running_mean[c];
  stats[u.C + c] = 0.0;
  stats[2u * u.C + c] = 1.0 / sqrt(running_var[c] + u.eps);
}
`;
}

export interface BnAffine {
  /** vec4 path: HW % 4 == 0, so the 4 lanes of a vec4 share one channel. */
  vec4: boolean;
  gamma: boolean;
  beta: boolean;
}

/** Elementwise uniforms: n = threads, C, HW, gx (threads along x), invM (f32). */
const EW_U = `struct U { n: u32, C: u32, HW: u32, gx: u32, invM: f32, p0: u32, p1: u32, p2: u32 };
@group(0) @binding(0) var<uniform> u: U;`;

function ewHead(vec4: boolean): string {
  return `${gridMain(BN_WG, 't', 'u.n')}
  let c = ((t * ${vec4 ? 4 : 1}u) / u.HW) % u.C;
  let shift = stats[c];
  let mr = stats[u.C + c];
  let invstd = stats[2u * u.C + c];`;
}

/** batchnorm_forward: y = ((x - shift) - mr) * invstd * gamma + beta. Bindings: x, stats, [gamma], [beta], y. */
function forwardB(o: BnAffine): BnBinding[] {
  const T = o.vec4 ? 'vec4<f32>' : 'f32';
  const b: BnBinding[] = [['x', T, false], ['stats', 'f32', false]];
  if (o.gamma) b.push(['gamma', 'f32', false]);
  if (o.beta) b.push(['beta', 'f32', false]);
  b.push(['y', T, true]);
  return b;
}

export function batchnormForwardWgsl(o: BnAffine): string {
  const T = o.vec4 ? 'vec4<f32>' : 'f32';
  const b = forwardB(o);
  return `// batchnorm_forward (${o.vec4 ? 'vec4' : 'scalar'}${o.gamma ? ', gamma' : ''}${o.beta ? ', beta' : ''})
${EW_U}
${decls(b)}
alias T = ${T};
${ewHead(o.vec4)}
  let scale = invstd${o.gamma ? ' * gamma[c]' : ''};
  y[t] = ((x[t] - T(shift)) - T(mr)) * scale${o.beta ? ' + beta[c]' : ''};
}
`;
}

/**
 * batchnorm_backward_reduce: thread (p, c) writes the sums of dy and dy * xhat over
 * segment p of channel c to part[(c*P + p)*2 + {0, 1}]. Bindings: x, dy, stats, part.
 */
const BWD_REDUCE_B: BnBinding[] = [['x', 'f32', false], ['dy', 'f32', false], ['stats', 'f32', false], ['part', 'f32', true]];

export function batchnormBackwardReduceWgsl(): string {
  return `// batchnorm_backward_reduce (thread per channel segment)
${SEG_U}
${decls(BWD_REDUCE_B)}
${SEG_HEAD}
  let shift = stats[c];
  let mr = stats[u.C + c];
  let invstd = stats[2u * u.C + c];
  var sg = 0.0;
  var sgx = 0.0;
${walk('      let g = dy[a];\n      sg += g;\n      sgx += g * ((x[a] - shift) - mr);')}
  part[(c * u.P + p) * 2u] = sg;
  part[(c * u.P + p) * 2u + 1u] = sgx * invstd;
}
`;
}

/** batchnorm_backward_reduce_finish: sdy[c] = sum of dy, sdyx[c] = sum of dy * xhat. Uniforms: segment layout. */
const BWD_FINISH_B: BnBinding[] = [['part', 'f32', false], ['sdy', 'f32', true], ['sdyx', 'f32', true]];

export function batchnormBackwardReduceFinishWgsl(): string {
  return `// batchnorm_backward_reduce_finish
${SEG_U}
${decls(BWD_FINISH_B)}
@compute @workgroup_size(${BN_CH_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= u.C) { return; }
  var a = 0.0;
  var b = 0.0;
  for (var k = 0u; k < u.P; k++) {
    a += part[(c * u.P + k) * 2u];
    b += part[(c * u.P + k) * 2u + 1u];
  }
  sdy[c] = a;
  sdyx[c] = b;
}
`;
}

/**
 * batchnorm_backward (dx). Training (batch statistics):
 *   dx = gamma * invstd * (dy - sdy/M - xhat * sdyx/M); bindings x, dy, stats, [gamma], sdy, sdyx, dx.
 * Eval (running statistics, an affine map): dx = dy * gamma * invstd; bindings dy, stats, [gamma], dx.
 */
export interface BnBackward {
  vec4: boolean;
  gamma: boolean;
  training: boolean;
}

function backwardB(o: BnBackward): BnBinding[] {
  const T = o.vec4 ? 'vec4<f32>' : 'f32';
  const b: BnBinding[] = o.training ? [['x', T, false], ['dy', T, false], ['stats', 'f32', false]] : [['dy', T, false], ['stats', 'f32', false]];
  if (o.gamma) b.push(['gamma', 'f32', false]);
  if (o.training) b.push(['sdy', 'f32', false], ['sdyx', 'f32', false]);
  b.push(['dx', T, true]);
  return b;
}

export function batchnormBackwardWgsl(o: BnBackward): string {
  const T = o.vec4 ? 'vec4<f32>' : 'f32';
  const b = backwardB(o);
  const body = o.training
    ? `  let xhat = ((x[t] - T(shift)) - T(mr)) * invstd;
  dx[t] = (dy[t] - T(sdy[c] * u.invM) - xhat * (sdyx[c] * u.invM)) * scale;`
    : `  dx[t] = dy[t] * scale;`;
  return `// batchnorm_backward (${o.training ? 'training' : 'eval'}, ${o.vec4 ? 'vec4' : 'scalar'}${o.gamma ? ', gamma' : ''})
${EW_U}
${decls(b)}
alias T = ${T};
${ewHead(o.vec4)}
  let scale = invstd${o.gamma ? ' * gamma[c]' : ''};
${body}
}
`;
}

// ---------------------------------------------------------------- descriptors
// The binding lists above feed both the WGSL declarations and the descriptors.

function bind(list: BnBinding[]): Binding[] {
  return list.map(([name, , rw]) => ({ name, access: rw ? ('read_write' as const) : ('read' as const) }));
}

const B_STATS = bind(STATS_B);
const B_FINISH = [bind(statsFinishB(false)), bind(statsFinishB(true))] as const;
const B_EVAL = bind(EVAL_STATS_B);
const B_BWD_REDUCE = bind(BWD_REDUCE_B);
const B_BWD_FINISH = bind(BWD_FINISH_B);

/** Descriptor: batchnorm_stats (segment partials). Bindings: x, part. */
export const batchnormStatsKernel = defineKernel<void>({ name: 'batchnorm_stats', key: () => '', bindings: () => B_STATS, build: batchnormStatsWgsl })();

/** Descriptor: batchnorm_stats_finish (with running-stat updates when `update`). */
export const batchnormStatsFinishKernel = defineKernel<{ update: boolean }>({
  name: 'batchnorm_stats_finish',
  key: (p) => (p.update ? 'update' : 'plain'),
  bindings: (p) => B_FINISH[p.update ? 1 : 0],
  build: (p) => batchnormStatsFinishWgsl(p.update),
});

/** Descriptor: batchnorm_eval_stats. Bindings: running_mean, running_var, stats. */
export const batchnormEvalStatsKernel = defineKernel<void>({ name: 'batchnorm_eval_stats', key: () => '', bindings: () => B_EVAL, build: batchnormEvalStatsWgsl })();

/** Descriptor: batchnorm_forward, keyed by vec4 / gamma / beta. */
export const batchnormForwardKernel = defineKernel<BnAffine>({
  name: 'batchnorm_forward',
  key: (p) => `${p.vec4 ? 'v4' : 's'}${p.gamma ? 'g' : ''}${p.beta ? 'b' : ''}`,
  bindings: (p) => bind(forwardB(p)),
  build: batchnormForwardWgsl,
});

/** Descriptor: batchnorm_backward_reduce. Bindings: x, dy, stats, part. */
export const batchnormBackwardReduceKernel = defineKernel<void>({ name: 'batchnorm_backward_reduce', key: () => '', bindings: () => B_BWD_REDUCE, build: batchnormBackwardReduceWgsl })();

/** Descriptor: batchnorm_backward_reduce_finish. Bindings: part, sdy, sdyx. */
export const batchnormBackwardReduceFinishKernel = defineKernel<void>({
  name: 'batchnorm_backward_reduce_finish',
  key: () => '',
  bindings: () => B_BWD_FINISH,
  build: batchnormBackwardReduceFinishWgsl,
})();

/** Descriptor: batchnorm_backward (dx), keyed by vec4 / gamma / training. */
export const batchnormBackwardKernel = defineKernel<BnBackward>({
  name: 'batchnorm_backward',
  key: (p) => `${p.vec4 ? 'v4' : 's'}${p.gamma ? 'g' : ''}${p.training ? 't' : 'e'}`,
  bindings: (p) => bind(backwardB(p)),
  build: batchnormBackwardWgsl,
});
