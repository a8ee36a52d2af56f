// WGSL builders for layout and indexing ops: a strided copy (permute, slice, concat and the
// backward of pad/concat), a gather-or-fill kernel (pad, and the backward of slice), an
// index_select gather with two scatter-free backwards, take-along-axis and one-hot.
//
// NOTE: every pure copy moves raw 32-bit words (`array<u32>`), so f32 and i32 tensors share
// one pipeline and copies are bit-exact (NaN payloads, -0 and denormals survive).
// Indices are i32 and valid in [0, A): an index outside that range reads as 0 in the
// forward kernels and receives no gradient in the backward kernels (no readback needed;
// see assertIndexRange in engine/ops/indexing.ts for an explicit check).

import { defineKernel, reads, writes } from './kernel.ts';
import { gridMain } from './wgsl_grid.ts';

export const LAYOUT_WG = 256;
/** Max rank of the strided kernels (shapes and strides live in two vec4 uniforms each). */
export const LAYOUT_MAX_RANK = 8;
/**
 * Elements each strided_copy / pad_gather thread moves along the innermost dimension.
 * NOTE: 16 measured ~3-4x faster than 4 on lavapipe (per-invocation overhead dominates);
 * on a discrete GPU a lane-contiguous mapping would coalesce better.
 */
export const COPY_EPT = 16;

const DIM = (arr: string, d: string) => `u.${arr}[${d} / 4u][${d} % 4u]`;

/**
 * strided_copy: for every coordinate c of `shape` (rank >= 1),
 *   y[dbase + sum c_d * dst_d] = x[sbase + sum c_d * sst_d].
 * Source strides are signed (negative slice steps). Each thread moves up to COPY_EPT
 * consecutive elements of the innermost dim, so the div/mod walk is paid once per 4.
 * With `vec4`, every offset, stride and the inner size are in units of 4 words (the caller
 * checks that the innermost dim is contiguous on both sides and everything is 4-aligned).
 * Uniforms: threads, rank, gx, chunks (= ceil(shape[rank-1] / EPT)), sbase (i32), dbase,
 * then shape, sst (i32), dst, each array<vec4, 2>.
 */
export function stridedCopyWgsl(vec4: boolean): string {
  const W = vec4 ? 'vec4<u32>' : 'u32';
  return `// strided_copy${vec4 ? ' (vec4)' : ''} (raw 32-bit words)
struct U {
  threads: u32, rank: u32, gx: u32, chunks: u32,
  sbase: i32, dbase: u32, p0: u32, p1: u32,
  shape: array<vec4<u32>, 2>,
  sst: array<vec4<i32>, 2>,
  dst: array<vec4<u32>, 2>,
};
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<${W}>;
@group(0) @binding(2) var<storage, read_write> y: array<${W}>;
${gridMain(LAYOUT_WG, 't', 'u.threads')}
  let last = u.rank - 1u;
  let inner = ${DIM('shape', 'last')};
  let sin = ${DIM('sst', 'last')};
  let din = ${DIM('dst', 'last')};
  var row = t / u.chunks;
  let c0 = (t - row * u.chunks) * ${COPY_EPT}u;
  var so = u.sbase + i32(c0) * sin;
  var dof = u.dbase + c0 * din;
  for (var j = 1u; j < u.rank; j++) {
    let d = last - j;
    let n = ${DIM('shape', 'd')};
    let c = row % n;
    row = row / n;
    so += i32(c) * ${DIM('sst', 'd')};
    dof += c * ${DIM('dst', 'd')};
  }
  let cnt = min(${COPY_EPT}u, inner - c0);
  for (var e = 0u; e < cnt; e++) {
    y[dof] = x[u32(so)];
    so += sin;
    dof += din;
  }
}
`;
}

/**
 * transpose_block4: x [B, R, C] -> y [B, C, R] (contiguous, R and C multiples of 4). Each
 * thread moves one 4x4 block with four vec4 loads and four vec4 stores (register-blocked, no
 * workgroup memory: the faster shape on lavapipe). Uniforms: B, R4 (= R/4), C4 (= C/4), gx.
 */
export function transposeBlock4Wgsl(): string {
  return `// transpose_block4 (raw 32-bit words)
struct U { B: u32, R4: u32, C4: u32, gx: u32 };
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> y: array<vec4<u32>>;
${gridMain(LAYOUT_WG, 't', 'u.B * u.R4 * u.C4')}
  let cb = t % u.C4;
  let rest = t / u.C4;
  let rb = rest % u.R4;
  let b = rest / u.R4;
  let xi = (b * u.R4 * 4u + rb * 4u) * u.C4 + cb;
  let m0 = x[xi];
  let m1 = x[xi + u.C4];
  let m2 = x[xi + 2u * u.C4];
  let m3 = x[xi + 3u * u.C4];
  let yi = (b * u.C4 * 4u + cb * 4u) * u.R4 + rb;
  y[yi] = vec4<u32>(m0.x, m1.x, m2.x, m3.x);
  y[yi + u.R4] = vec4<u32>(m0.y, m1.y, m2.y, m3.y);
  y[yi + 2u * u.R4] = vec4<u32>(m0.z, m1.z, m2.z, m3.z);
  y[yi + 3u * u.R4] = vec4<u32>(m0.w, m1.w, m2.w, m3.w);
}
`;
}

/**
 * pad_gather: y is contiguous with shape `shape` (rank >= 1); for each coordinate c, dim d:
 *   t_d = c_d - off_d; the source coordinate is k_d = t_d / step_d when step_d divides t_d
 *   and 0 <= k_d < sshape_d; y = x[sum k_d * sstr_d] if every dim has a source, else `fill`.
 * Pad forward is (off = before, step = 1); slice backward is (off = start, step = step);
 * pad backward is (off = -before, step = 1). `unit` (all steps 1) drops the divisions.
 * Each thread fills up to COPY_EPT consecutive elements of the innermost dim, so the
 * outer-dim walk is paid once per run. Uniforms: threads, rank, gx, fill (raw bits), chunks,
 * 3 pad words, then shape, off (i32), step (i32), sshape, sstr, each array<vec4, 2>.
 */
export function padGatherWgsl(unit: boolean): string {
  const src = (k: string, d: string) =>
    unit
      ? `let ${k} = t_;\n    let ok_ = ${k} >= 0 && u32(${k}) < ${DIM('sshape', d)};`
      : `let s_ = ${DIM('step', d)};\n    let ${k} = t_ / s_;\n    let ok_ = ${k} * s_ == t_ && ${k} >= 0 && u32(${k}) < ${DIM('sshape', d)};`;
  return `// pad_gather${unit ? ' (unit steps)' : ''} (raw 32-bit words)
struct U {
  threads: u32, rank: u32, gx: u32, fill: u32,
  chunks: u32, p0: u32, p1: u32, p2: u32,
  shape: array<vec4<u32>, 2>,
  off: array<vec4<i32>, 2>,
  step: array<vec4<i32>, 2>,
  sshape: array<vec4<u32>, 2>,
  sstr: array<vec4<u32>, 2>,
};
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read_write> y: array<u32>;
${gridMain(LAYOUT_WG, 't', 'u.threads')}
  let last = u.rank - 1u;
  let inner = ${DIM('shape', 'last')};
  var row = t / u.chunks;
  let c0 = (t - row * u.chunks) * ${COPY_EPT}u;
  let obase = row * inner + c0;
  var src = 0u;
  var inside = true;
  for (var j = 1u; j < u.rank; j++) {
    let d = last - j;
    let n = ${DIM('shape', 'd')};
    let c = row % n;
    row = row / n;
    let t_ = i32(c) - ${DIM('off', 'd')};
    ${src('k', 'd')}
    if (!ok_) { inside = false; }
    src += u32(max(k, 0)) * ${DIM('sstr', 'd')};
  }
  let cnt = min(${COPY_EPT}u, inner - c0);
  let offl = ${DIM('off', 'last')};
  let strl = ${DIM('sstr', 'last')};
  for (var e = 0u; e < cnt; e++) {
    var v = u.fill;
    if (inside) {
      let t_ = i32(c0 + e) - offl;
      ${src('k', 'last')}
      if (ok_) { v = x[src + u32(k) * strl]; }
    }
    y[obase + e] = v;
  }
}
`;
}

/**
 * Host side: merge pad_gather dims. Dim d+1 folds into dim d when it is untouched
 * (off 0, step 1, same size as its source) and dim d has step 1; size-1 untouched dims drop.
 */
export function collapsePadDims(
  shape: readonly number[],
  off: readonly number[],
  step: readonly number[],
  sshape: readonly number[],
  sstr: readonly number[],
): { shape: number[]; off: number[]; step: number[]; sshape: number[]; sstr: number[] } {
  const r = { shape: [] as number[], off: [] as number[], step: [] as number[], sshape: [] as number[], sstr: [] as number[] };
  for (let d = 0; d < shape.length; d++) {
    const n = shape[d]!;
    const untouched = off[d] === 0 && step[d] === 1 && sshape[d] === n;
    if (untouched && n === 1) continue;
    const k = r.shape.length - 1;
    if (untouched && k >= 0 && r.step[k] === 1 && r.sstr[k] === sstr[d]! * n) {
      r.shape[k] = r.shape[k]! * n;
      r.off[k] = r.off[k]! * n;
      r.sshape[k] = r.sshape[k]! * n;
      r.sstr[k] = sstr[d]!;
    } else {
      r.shape.push(n);
      r.off.push(off[d]!);
      r.step.push(step[d]!);
      r.sshape.push(sshape[d]!);
      r.sstr.push(sstr[d]!);
    }
  }
  if (r.shape.length === 0) return { shape: [1], off: [0], step: [1], sshape: [1], sstr: [0] };
  return r;
}

const GATHER_HEADER = `struct U { outer: u32, A: u32, K: u32, inner: u32, gx: u32, p0: u32, p1: u32, p2: u32 };
@group(0) @binding(0) var<uniform> u: U;`;

/** Thread per dx element of [outer, A, inner]: t, then i (inner index), oa (outer * A + a) and a. */
const GATHER_DX_MAIN = `${gridMain(LAYOUT_WG, 't', 'u.outer * u.A * u.inner')}
  let i = t % u.inner;
  let oa = t / u.inner;
  let a = oa % u.A;`;

/**
 * gather (index_select) and take_along_axis: x viewed as [outer, A, inner], a thread per
 * output; y[t] = x[o, a, i], or 0 when a is outside [0, A). gather: idx [K], y [outer, K,
 * inner], a = idx[k]. take_along_axis: idx [outer, inner], y [outer, inner], a = idx[o, i].
 */
function gatherReadWgsl(along: boolean): string {
  const title = along ? 'take_along_axis' : 'gather';
  const coords = along
    ? `let o = t / u.inner;
  let a = idx[t];`
    : `let ok = t / u.inner;
  let k = ok % u.K;
  let o = ok / u.K;
  let a = idx[k];`;
  return `// ${title} (raw 32-bit words)
${GATHER_HEADER}
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read> idx: array<i32>;
@group(0) @binding(3) var<storage, read_write> y: array<u32>;
${gridMain(LAYOUT_WG, 't', along ? 'u.outer * u.inner' : 'u.outer * u.K * u.inner')}
  let i = t % u.inner;
  ${coords}
  if (a >= 0 && u32(a) < u.A) { y[t] = x[(o * u.A + u32(a)) * u.inner + i]; } else { y[t] = 0u; }
}
`;
}

/** gather (index_select): y[o, k, i] = x[o, idx[k], i] (0 when idx[k] is outside [0, A)). */
export function gatherWgsl(): string {
  return gatherReadWgsl(false);
}

/**
 * gather_backward_naive: dx[o, a, i] = sum over k with idx[k] == a of dy[o, k, i]. Thread per
 * dx element, looping over all K indices: O(|dx| * K) work, no atomics, deterministic
 * (ascending k). Kept as the correctness baseline and used when outer*inner or K is tiny.
 */
export function gatherBackwardNaiveWgsl(): string {
  return `// gather_backward_naive
${GATHER_HEADER}
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> idx: array<i32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
${GATHER_DX_MAIN}
  let o = oa / u.A;
  var acc = 0.0;
  var p = o * u.K * u.inner + i;
  for (var k = 0u; k < u.K; k++) {
    if (idx[k] == i32(a)) { acc += dy[p]; }
    p += u.inner;
  }
  dx[t] = acc;
}
`;
}

/**
 * gather_backward_bucket: thread per destination a counts the indices equal to a
 * (pass 'count', writes cnt[a]) or lists them in ascending k at order[start[a]..]
 * (pass 'place'). O(A * K) integer compares in all, independent of outer*inner.
 */
export function gatherBucketWgsl(pass: 'count' | 'place'): string {
  const place = pass === 'place';
  return `// gather_backward_${pass}
${GATHER_HEADER}
@group(0) @binding(1) var<storage, read> idx: array<i32>;
${place ? '@group(0) @binding(2) var<storage, read> start: array<u32>;\n@group(0) @binding(3) var<storage, read_write> order: array<u32>;' : '@group(0) @binding(2) var<storage, read_write> cnt: array<u32>;'}
${gridMain(LAYOUT_WG, 'a', 'u.A')}
  let ai = i32(a);
  var j = ${place ? 'start[a]' : '0u'};
  for (var k = 0u; k < u.K; k++) {
    if (idx[k] == ai) { ${place ? 'order[j] = k; ' : ''}j++; }
  }
  ${place ? '' : 'cnt[a] = j;'}
}
`;
}

/**
 * exclusive_scan_u32: one workgroup; start[a] = sum of cnt[0..a), start[n] = total.
 * Each thread scans a contiguous chunk serially, the chunk totals are scanned in
 * workgroup memory (Hillis-Steele), then each thread writes its chunk. Uniforms: n, L (chunk).
 */
export function exclusiveScanWgsl(): string {
  return `// exclusive_scan_u32 (single workgroup)
struct U { n: u32, L: u32, p0: u32, p1: u32 };
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> cnt: array<u32>;
@group(0) @binding(2) var<storage, read_write> start: array<u32>;
var<workgroup> part: array<u32, ${LAYOUT_WG}>;
@compute @workgroup_size(${LAYOUT_WG})
fn main(@builtin(local_invocation_index) li: u32) {
  let a0 = min(li * u.L, u.n);
  let a1 = min(a0 + u.L, u.n);
  var s = 0u;
  for (var a = a0; a < a1; a++) { s += cnt[a]; }
  part[li] = s;
  workgroupBarrier();
  for (var off = 1u; off < ${LAYOUT_WG}u; off = off << 1u) {
    var v = part[li];
    if (li >= off) { v += part[li - off]; }
    workgroupBarrier();
    part[li] = v;
    workgroupBarrier();
  }
  var run = part[li] - s;
  for (var a = a0; a < a1; a++) { start[a] = run; run += cnt[a]; }
  if (li == ${LAYOUT_WG - 1}u) { start[u.n] = part[li]; }
}
`;
}

/** gather_backward_sum: dx[o, a, i] = sum over k in order[start[a]..start[a+1]) of dy[o, k, i]. */
export function gatherBackwardSumWgsl(): string {
  return `// gather_backward_sum
${GATHER_HEADER}
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> start: array<u32>;
@group(0) @binding(3) var<storage, read> order: array<u32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;
${GATHER_DX_MAIN}
  let base = (oa / u.A) * u.K * u.inner + i;
  var acc = 0.0;
  for (var j = start[a]; j < start[a + 1u]; j++) { acc += dy[base + order[j] * u.inner]; }
  dx[t] = acc;
}
`;
}

/** take_along_axis: x [outer, A, inner], idx [outer, inner] -> y [outer, inner], y[o, i] = x[o, idx[o, i], i] (0 outside [0, A)). */
export function takeAlongAxisWgsl(): string {
  return gatherReadWgsl(true);
}

/** take_along_axis_backward: dx[o, a, i] = dy[o, i] if idx[o, i] == a else 0 (thread per dx). */
export function takeAlongAxisBackwardWgsl(): string {
  return `// take_along_axis_backward
${GATHER_HEADER}
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> idx: array<i32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
${GATHER_DX_MAIN}
  let j = (oa / u.A) * u.inner + i;
  dx[t] = select(0.0, dy[j], idx[j] == i32(a));
}
`;
}

/** one_hot: y[n, c] = 1.0 if labels[n] == c else 0.0 (a label outside [0, C) gives a zero row). */
export function oneHotWgsl(): string {
  return `// one_hot
struct U { n: u32, C: u32, gx: u32, p0: u32 };
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> labels: array<i32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
${gridMain(LAYOUT_WG, 't', 'u.n * u.C')}
  y[t] = select(0.0, 1.0, labels[t / u.C] == i32(t % u.C));
}
`;
}

// ---------------------------------------------------------------- descriptors

const B_X_Y = [...reads('x'), ...writes('y')];

/** Descriptor: strided_copy (raw words; vec4 variant when everything is 4-aligned). Bindings: x, y. */
export const stridedCopyKernel = defineKernel<{ vec4: boolean }>({
  name: 'strided_copy',
  label: (p) => (p.vec4 ? 'strided_copy_vec4' : 'strided_copy'),
  key: (p) => (p.vec4 ? 'vec4' : 'u32'),
  bindings: () => B_X_Y,
  build: (p) => stridedCopyWgsl(p.vec4),
});

/** Descriptor: transpose_block4. Bindings: x, y. */
export const transposeBlock4Kernel = defineKernel<void>({ name: 'transpose_block4', key: () => '', bindings: () => B_X_Y, build: transposeBlock4Wgsl })();

/** Descriptor: pad_gather (unit steps) / pad_gather_strided. Bindings: x, y. */
export const padGatherKernel = defineKernel<{ unit: boolean }>({
  name: 'pad_gather',
  label: (p) => (p.unit ? 'pad_gather' : 'pad_gather_strided'),
  key: (p) => (p.unit ? 'unit' : 'strided'),
  bindings: () => B_X_Y,
  build: (p) => padGatherWgsl(p.unit),
});

const B_GATHER = [...reads('x', 'idx'), ...writes('y')];
const B_GATHER_BWD = [...reads('dy', 'idx'), ...writes('dx')];

/** Descriptor: gather (index_select). Bindings: x, idx, y. */
export const gatherKernel = defineKernel<void>({ name: 'gather', key: () => '', bindings: () => B_GATHER, build: gatherWgsl })();

/** Descriptor: gather_backward_naive. Bindings: dy, idx, dx. */
export const gatherBackwardNaiveKernel = defineKernel<void>({ name: 'gather_backward_naive', key: () => '', bindings: () => B_GATHER_BWD, build: gatherBackwardNaiveWgsl })();

const B_COUNT = [...reads('idx'), ...writes('cnt')];
const B_PLACE = [...reads('idx', 'start'), ...writes('order')];

/** Descriptor: gather_backward_count / gather_backward_place. Bindings: idx, cnt | idx, start, order. */
export const gatherBucketKernel = defineKernel<{ pass: 'count' | 'place' }>({
  name: 'gather_backward_bucket',
  label: (p) => `gather_backward_${p.pass}`,
  key: (p) => p.pass,
  bindings: (p) => (p.pass === 'place' ? B_PLACE : B_COUNT),
  build: (p) => gatherBucketWgsl(p.pass),
});

const B_SCAN = [...reads('cnt'), ...writes('start')];

/** Descriptor: exclusive_scan_u32 (one workgroup). Bindings: cnt, start. */
export const exclusiveScanKernel = defineKernel<void>({ name: 'exclusive_scan_u32', key: () => '', bindings: () => B_SCAN, build: exclusiveScanWgsl })();

const B_GSUM = [...reads('dy', 'start', 'order'), ...writes('dx')];

/** Descriptor: gather_backward_sum. Bindings: dy, start, order, dx. */
export const gatherBackwardSumKernel = defineKernel<void>({ name: 'gather_backward_sum', key: () => '', bindings: () => B_GSUM, build: gatherBackwardSumWgsl })();

/** Descriptor: take_along_axis. Bindings: x, idx, y. */
export const takeAlongAxisKernel = defineKernel<void>({ name: 'take_along_axis', key: () => '', bindings: () => B_GATHER, build: takeAlongAxisWgsl })();

/** Descriptor: take_along_axis_backward. Bindings: dy, idx, dx. */
export const takeAlongAxisBackwardKernel = defineKernel<void>({ name: 'take_along_axis_backward', key: () => '', bindings: () => B_GATHER_BWD, build: takeAlongAxisBackwardWgsl })();

const B_ONEHOT = [...reads('labels'), ...writes('y')];

/** Descriptor: one_hot. Bindings: labels, y. */
export const oneHotKernel = defineKernel<void>({ name: 'one_hot', key: () => '', bindings: () => B_ONEHOT, build: oneHotWgsl })();

/**
 * Drop size-1 dims and merge neighbours that are contiguous in both source and destination
 * (host side, for strided_copy): fewer dims means fewer div/mods per element.
 */
export function collapseDims(shape: readonly number[], sst: readonly number[], dst: readonly number[]): { shape: number[]; sst: number[]; dst: number[] } {
  const S: number[] = [];
  const A: number[] = [];
  const B: number[] = [];
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue;
    const k = S.length - 1;
    if (k >= 0 && A[k] === sst[d]! * shape[d]! && B[k] === dst[d]! * shape[d]!) {
      S[k] = S[k]! * shape[d]!;
      A[k] = sst[d]!;
      B[k] = dst[d]!;
    } else {
      S.push(shape[d]!);
      A.push(sst[d]!);
      B.push(dst[d]!);
    }
  }
  if (S.length === 0) return { shape: [1], sst: [0], dst: [0] };
  return { shape: S, sst: A, dst: B };
}

/** Row-major (contiguous) element strides of a shape. */
export function contiguousStrides(shape: readonly number[]): number[] {
  const st = new Array<number>(shape.length);
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    st[d] = acc;
    acc *= shape[d]!;
  }
  return st;
}
