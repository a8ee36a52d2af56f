// WGSL builders for batched matmul y[z] = op(a[z]) · op(b[z]) (+ bias, then an optional
// activation), where op transposes when transA / transB is set; plus a float64 reference.
//
// Three kernels share one uniform layout and binding order:
// - matmulWgsl (fast): register-blocked; each thread computes a TM x TN block of y (default
//   8 x 4) held in vec4 accumulators, loading vec4s along each operand's contiguous axis.
//   No workgroup memory: on lavapipe (SIMD across invocations, no real shared memory) this
//   was ~3x faster than shared-memory tiling.
// - matmulTiledWgsl: the classic workgroup-shared-memory tiled kernel (benchmark only).
// - matmulNaiveWgsl: one output per thread, scalar loop; the correctness and speed baseline.
// Each has a kernel descriptor (matmulFastKernel, matmulNaiveKernel, matmulTiledKernel) at the
// end. The subgroup GEMM (kernels/matmul_subgroup.ts) shares the layout and bindings.
//
// Uniforms (u32 words): M, N, K, 0, then bshape (vec4), astr (vec4), bstr (vec4): the
// (up to 4) batch dims of y, right-aligned and padded with 1, and the element strides of a
// and b along them (0 where that operand is broadcast). Workgroup z indexes the batch.
// Bindings: 1 a, 2 b, [3 bias], then y.
//
// Epilogue hook: `act` is WGSL source that defines `fn epi_act(z: f32) -> f32`; when given,
// every output is written as epi_act(acc + bias[n]) straight from registers, and the
// uniform block gains a field `act: vec4<f32>` (after bstr; the snippet may read it, e.g.
// activation parameters). The snippet may define helper functions and declare bindings
// after the outputs (see matmulEpilogueBinding). With `saveZ`, the pre-activation
// z = acc + bias[n] is stored too, to a second output bound right after y (fused
// training epilogues keep z for the backward).

import { defineKernel, reads, writes, type Binding } from './kernel.ts';

export interface MatmulKernelOptions {
  /** a is stored [K, M] (per batch) instead of [M, K]. */
  transA?: boolean;
  /** b is stored [N, K] (per batch) instead of [K, N]. */
  transB?: boolean;
  /** Add a bias vector of length N (binding 3) before the activation. */
  bias?: boolean;
  /** WGSL defining `fn epi_act(z: f32) -> f32`, applied to each output before the store. */
  act?: string;
  /** Also store z = acc (+ bias) to an output bound right after y (needs `act`). */
  saveZ?: boolean;
}

/** The first binding free for an epilogue's own buffers (after a, b, [bias], y, [z]). */
export function matmulEpilogueBinding(o: { bias?: boolean; saveZ?: boolean }): number {
  return 4 + (o.bias ? 1 : 0) + (o.saveZ ? 1 : 0);
}

function checkEpi(o: MatmulKernelOptions): void {
  if (o.saveZ && !o.act) throw new Error('matmul kernel: saveZ needs an act epilogue');
}

export interface MatmulFastOptions extends MatmulKernelOptions {
  /** Rows per thread (1, 2, 4 or 8; transA vec4 loads need 4 or 8). Default 8. */
  tm?: 1 | 2 | 4 | 8;
  /** Columns per thread (4 or 8). */
  tn?: 4 | 8;
  /** Contiguous axis of a (K, or M with transA) is a multiple of 4: vec4 loads. */
  vecA?: boolean;
  /** Contiguous axis of b (N, or K with transB) is a multiple of 4: vec4 loads. */
  vecB?: boolean;
  /** N is a multiple of 4: vec4 stores. */
  vecY?: boolean;
  /** Workgroup size [x, y]; x threads span N (4 columns each), y threads span M. */
  wg?: [number, number];
}

export const MM_MAX_BATCH_DIMS = 4;

/**
 * Default fast-kernel shape. NOTE: on lavapipe every non-uniform storage load is a per-lane
 * loop (one branch per lane per load instruction), so a vec4 load costs about as much as a
 * scalar one and the cost scales with load instructions per FMA: (tm + tn) / (tm * tn) per
 * K chunk. 8x4 with 8x1 workgroups measured best (8x8 spills; unrolling K spills too).
 */
export const MM_FAST_DEFAULTS: { tm: 1 | 2 | 4 | 8; tn: 4 | 8; wg: [number, number] } = { tm: 8, tn: 4, wg: [8, 1] };

/** Uniform struct; `act` adds the epilogue's vec4<f32> field (16 more bytes). */
function header(act: boolean): string {
  return `struct U { M: u32, N: u32, K: u32, pad: u32, bshape: vec4<u32>, astr: vec4<u32>, bstr: vec4<u32>${act ? ', act: vec4<f32>' : ''} };
@group(0) @binding(0) var<uniform> u: U;`;
}

function bindings(aT: string, bT: string, yT: string, bias: boolean, saveZ = false): string {
  const lines = [
    `@group(0) @binding(1) var<storage, read> a: array<${aT}>;`,
    `@group(0) @binding(2) var<storage, read> b: array<${bT}>;`,
  ];
  if (bias) lines.push(`@group(0) @binding(3) var<storage, read> bias: array<f32>;`);
  lines.push(`@group(0) @binding(${bias ? 4 : 3}) var<storage, read_write> y: array<${yT}>;`);
  if (saveZ) lines.push(`@group(0) @binding(${bias ? 5 : 4}) var<storage, read_write> z: array<${yT}>;`);
  return lines.join('\n');
}

/** WGSL computing the batch offsets ao, bo (elements) from the batch index z. */
function batchOffsets(z: string): string {
  const lines = [`  var rem = ${z};`, '  var ao = 0u;', '  var bo = 0u;'];
  for (const c of ['w', 'z', 'y', 'x']) {
    lines.push(`  { let c = rem % u.bshape.${c}; rem = rem / u.bshape.${c}; ao += c * u.astr.${c}; bo += c * u.bstr.${c}; }`);
  }
  return lines.join('\n');
}

function actFns(act: string | undefined): string {
  return act ? `${act}\nfn epi_act4(v: vec4<f32>) -> vec4<f32> { return vec4<f32>(epi_act(v.x), epi_act(v.y), epi_act(v.z), epi_act(v.w)); }` : '';
}

/** Register-blocked vec4 kernel. Grid: [ceil(N / (4 wg.x)), ceil(M / (tm wg.y)), batch]. */
export function matmulWgsl(o: MatmulFastOptions = {}): string {
  checkEpi(o);
  const tm = o.tm ?? MM_FAST_DEFAULTS.tm;
  const tn = o.tn ?? MM_FAST_DEFAULTS.tn;
  const [wx, wy] = o.wg ?? MM_FAST_DEFAULTS.wg;
  const tA = !!o.transA;
  const tB = !!o.transB;
  const vA = !!o.vecA;
  const vB = !!o.vecB;
  const vY = !!o.vecY;
  const R = [...Array(tm).keys()];
  const C = [0, 1, 2, 3];
  const L: string[] = [];
  // Row/column bases, clamped so that out-of-range threads read valid memory (never stored).
  if (!tA) {
    for (const r of R) L.push(`  let ra${r} = ao + min(m0 + ${r}u, u.M - 1u) * u.K;`);
  } else if (vA) {
    for (let h = 0; h < tm / 4; h++) L.push(`  let ca${h} = ao + min(m0 + ${4 * h}u, u.M - 4u);`);
  } else {
    for (const r of R) L.push(`  let ca${r} = ao + min(m0 + ${r}u, u.M - 1u);`);
  }
  const G = [...Array(tn / 4).keys()];
  const NC = [...Array(tn).keys()];
  if (!tB) {
    if (vB) for (const g of G) L.push(`  let cb_${g} = bo + min(n0 + ${4 * g}u, u.N - 4u);`);
    else for (const c of NC) L.push(`  let cb${c} = bo + min(n0 + ${c}u, u.N - 1u);`);
  } else {
    for (const c of NC) L.push(`  let rb${c} = bo + min(n0 + ${c}u, u.N - 1u) * u.K;`);
  }
  const pre = L.join('\n');
  const vec4s = (e: (i: number) => string) => `vec4<f32>(${C.map(e).join(', ')})`;
  // a_r: A(m0+r, k..k+3) as a vec4 over k (transposed in registers when transA).
  const aLoads: string[] = [];
  if (!tA) {
    for (const r of R) aLoads.push(`    let a${r} = ${vA ? `a[(ra${r} + k) / 4u]` : vec4s((i) => `a[ra${r} + k + ${i}u]`)};`);
  } else {
    // am_kk: A(m0..m0+3 (+4h), k+kk) over m; then a_r = vec4 over kk.
    for (const kk of C) {
      if (vA) for (let h = 0; h < tm / 4; h++) aLoads.push(`    let am${kk}_${h} = a[(ca${h} + (k + ${kk}u) * u.M) / 4u];`);
      else aLoads.push(`    let ak${kk} = (k + ${kk}u) * u.M;`);
    }
    for (const r of R) {
      const h = Math.floor(r / 4);
      const comp = 'xyzw'[r % 4];
      aLoads.push(`    let a${r} = ${vA ? vec4s((kk) => `am${kk}_${h}.${comp}`) : vec4s((kk) => `a[ca${r} + ak${kk}]`)};`);
    }
  }
  // b_kk_g: B(k+kk, n0+4g..n0+4g+3) as a vec4 over n (transposed in registers when transB).
  const bLoads: string[] = [];
  if (!tB) {
    for (const kk of C) {
      bLoads.push(`    let bk${kk} = (k + ${kk}u) * u.N;`);
      for (const g of G) {
        bLoads.push(`    let b${kk}_${g} = ${vB ? `b[(cb_${g} + bk${kk}) / 4u]` : vec4s((c) => `b[cb${4 * g + c} + bk${kk}]`)};`);
      }
    }
  } else {
    for (const c of NC) bLoads.push(`    let bn${c} = ${vB ? `b[(rb${c} + k) / 4u]` : vec4s((i) => `b[rb${c} + k + ${i}u]`)};`);
    for (const kk of C) for (const g of G) bLoads.push(`    let b${kk}_${g} = ${vec4s((c) => `bn${4 * g + c}.${'xyzw'[kk]}`)};`);
  }
  const fmas = R.flatMap((r) => G.map((g) => `    acc${r}_${g} += a${r}.x * b0_${g} + a${r}.y * b1_${g} + a${r}.z * b2_${g} + a${r}.w * b3_${g};`)).join('\n');
  // K tail, only when K % 4 != 0 is possible: vec4 loads along K imply K % 4 == 0.
  const hasTail = !((!tA && vA) || (tB && vB));
  const tailA: string[] = [];
  if (tA && vA) for (let h = 0; h < tm / 4; h++) tailA.push(`    let sv${h} = a[(ca${h} + k * u.M) / 4u];`);
  for (const r of R) {
    if (!tA) tailA.push(`    let s${r} = a[ra${r} + k];`);
    else if (vA) tailA.push(`    let s${r} = sv${Math.floor(r / 4)}.${'xyzw'[r % 4]};`);
    else tailA.push(`    let s${r} = a[ca${r} + k * u.M];`);
  }
  const tailB = G.map((g) => {
    if (!tB) return vB ? `    let t${g} = b[(cb_${g} + k * u.N) / 4u];` : `    let t${g} = ${vec4s((c) => `b[cb${4 * g + c} + k * u.N]`)};`;
    return `    let t${g} = ${vec4s((c) => `b[rb${4 * g + c} + k]`)};`;
  }).join('\n');
  const tailFma = R.flatMap((r) => G.map((g) => `    acc${r}_${g} += s${r} * t${g};`)).join('\n');
  const biasLoad = o.bias ? G.map((g) => `  let bv${g} = ${vec4s((c) => `bias[min(n0 + ${4 * g + c}u, u.N - 1u)]`)};`).join('\n') : '';
  const st = (buf: string, val: string, n: string) =>
    vY
      ? `${buf}[(yo + m * u.N + ${n}) / 4u] = ${val};`
      : C.map((c) => `if (${n} + ${c}u < u.N) { ${buf}[yo + m * u.N + ${n} + ${c}u] = ${val}.${'xyzw'[c]}; }`).join(' ');
  let stores: string;
  if (!o.act) {
    stores = R.flatMap((r) => G.map((g) => {
      const zv = o.bias ? `acc${r}_${g} + bv${g}` : `acc${r}_${g}`;
      const n = `n0 + ${4 * g}u`;
      return `  { let m = m0 + ${r}u; if (m < u.M && ${n} < u.N) { let v = ${zv}; ${st('y', 'v', n)} } }`;
    })).join('\n');
  } else {
    // NOTE: with an activation the rows are stored by a loop with a data-dependent trip
    // count (not unrolled), so the activation is inlined tn times instead of tm*tn times.
    // Measured on lavapipe, GELU, 8x4 tile: cold shader compile 1.1 s as a loop vs 2.6 s
    // unrolled (1.06 s with no activation); run time 2048x256x64 also lower (107 vs 132 ms / 5).
    const body = G.map((g) => {
      const zv = `accs[r * ${tn / 4}u + ${g}u]${o.bias ? ` + bv${g}` : ''}`;
      const n = `n0 + ${4 * g}u`;
      return `    if (${n} < u.N) { let zv = ${zv}; let v = epi_act4(zv); ${st('y', 'v', n)}${o.saveZ ? ` ${st('z', 'zv', n)}` : ''} }`;
    }).join('\n');
    stores = `  var accs = array<vec4<f32>, ${tm * (tn / 4)}>(${R.flatMap((r) => G.map((g) => `acc${r}_${g}`)).join(', ')});
  let rowsLeft = min(${tm}u, u.M - min(m0, u.M));
  for (var r = 0u; r < rowsLeft; r++) {
    let m = m0 + r;
${body}
  }`;
  }
  // One 4-deep K chunk at offset kc (loads, in-register transposes, FMAs).
  const chunk = [...aLoads, ...bLoads, fmas].join('\n');
  const vt = (v: boolean) => (v ? 'vec4<f32>' : 'f32');
  return `// matmul (register-blocked ${tm}x${tn}, transA=${tA}, transB=${tB}, vecA=${vA}, vecB=${vB}, vecY=${vY}${o.bias ? ', bias' : ''}${o.act ? ', act' : ''}${o.saveZ ? ', saveZ' : ''})
${header(!!o.act)}
${bindings(vt(vA), vt(vB), vt(vY), !!o.bias, o.saveZ)}
${actFns(o.act)}
@compute @workgroup_size(${wx}, ${wy})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let n0 = gid.x * ${tn}u;
  // With wg.y == 1 the rows come from the workgroup id alone (uniform across the workgroup).
  let m0 = ${wy === 1 ? `wid.y * ${tm}u` : `(wid.y * ${wy}u + lid.y) * ${tm}u`};
${batchOffsets('wid.z')}
  let yo = wid.z * u.M * u.N;
${pre}
${R.flatMap((r) => G.map((g) => `  var acc${r}_${g} = vec4<f32>(0.0);`)).join('\n')}
  let K4 = u.K & ~3u;
  var k = 0u;
  for (; k < K4; k += 4u) {
${chunk}
  }
${hasTail ? `  for (k = K4; k < u.K; k++) {\n${tailA.join('\n')}\n${tailB}\n${tailFma}\n  }` : ''}
${biasLoad}
${stores}
}
`;
}

/** One output per thread. Grid: [ceil(N / 16), ceil(M / 16), batch]. */
export function matmulNaiveWgsl(o: MatmulKernelOptions = {}): string {
  checkEpi(o);
  const ai = o.transA ? 'ao + k * u.M + m' : 'ao + m * u.K + k';
  const bi = o.transB ? 'bo + n * u.K + k' : 'bo + k * u.N + n';
  const zv = o.bias ? 'acc + bias[n]' : 'acc';
  const v = o.act ? 'epi_act(zv)' : 'zv';
  return `// matmul_naive (transA=${!!o.transA}, transB=${!!o.transB}${o.bias ? ', bias' : ''}${o.act ? ', act' : ''}${o.saveZ ? ', saveZ' : ''})
${header(!!o.act)}
${bindings('f32', 'f32', 'f32', !!o.bias, o.saveZ)}
${o.act ?? ''}
@compute @workgroup_size(16, 16)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let n = gid.x;
  let m = gid.y;
  if (m >= u.M || n >= u.N) { return; }
${batchOffsets('gid.z')}
  var acc = 0.0;
  for (var k = 0u; k < u.K; k++) {
    acc += a[${ai}] * b[${bi}];
  }
  let zv = ${zv};
  let yi = gid.z * u.M * u.N + m * u.N + n;
  y[yi] = ${v};${o.saveZ ? '\n  z[yi] = zv;' : ''}
}
`;
}

export const MM_TILE = 32;

/**
 * Shared-memory tiled kernel: a 32x32 output tile per 8x8 workgroup (4x4 per thread),
 * 32x32 tiles of op(a) and op(b) staged through workgroup memory. Grid: [ceil(N/32), ceil(M/32), batch].
 */
export function matmulTiledWgsl(o: MatmulKernelOptions = {}): string {
  const T = MM_TILE;
  const aIdx = o.transA ? 'ao + kk * u.M + mm' : 'ao + mm * u.K + kk';
  const bIdx = o.transB ? 'bo + nn * u.K + kk' : 'bo + kk * u.N + nn';
  checkEpi(o);
  const zv = o.bias ? 'acc[i][j] + bias[n]' : 'acc[i][j]';
  const v = o.act ? 'epi_act(zv)' : 'zv';
  return `// matmul_tiled (shared memory ${T}x${T}, transA=${!!o.transA}, transB=${!!o.transB}${o.saveZ ? ', saveZ' : ''})
${header(!!o.act)}
${bindings('f32', 'f32', 'f32', !!o.bias, o.saveZ)}
${o.act ?? ''}
var<workgroup> ta: array<array<f32, ${T}>, ${T}>;
var<workgroup> tb: array<array<f32, ${T}>, ${T}>;
@compute @workgroup_size(8, 8)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
${batchOffsets('wid.z')}
  let mBase = wid.y * ${T}u;
  let nBase = wid.x * ${T}u;
  var acc: array<array<f32, 4>, 4>;
  for (var k0 = 0u; k0 < u.K; k0 += ${T}u) {
    for (var i = 0u; i < 4u; i++) {
      for (var j = 0u; j < 4u; j++) {
        let r = lid.y * 4u + i;
        let c = lid.x * 4u + j;
        { let mm = mBase + r; let kk = k0 + c;
          ta[r][c] = select(0.0, a[min(${aIdx}, arrayLength(&a) - 1u)], mm < u.M && kk < u.K); }
        { let kk = k0 + r; let nn = nBase + c;
          tb[r][c] = select(0.0, b[min(${bIdx}, arrayLength(&b) - 1u)], kk < u.K && nn < u.N); }
      }
    }
    workgroupBarrier();
    for (var kk = 0u; kk < ${T}u; kk++) {
      var av: array<f32, 4>;
      for (var i = 0u; i < 4u; i++) { av[i] = ta[lid.y * 4u + i][kk]; }
      for (var j = 0u; j < 4u; j++) {
        let bvv = tb[kk][lid.x * 4u + j];
        for (var i = 0u; i < 4u; i++) { acc[i][j] += av[i] * bvv; }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    for (var j = 0u; j < 4u; j++) {
      let m = mBase + lid.y * 4u + i;
      let n = nBase + lid.x * 4u + j;
      if (m < u.M && n < u.N) { let zv = ${zv}; let yi = wid.z * u.M * u.N + m * u.N + n; y[yi] = ${v};${o.saveZ ? ' z[yi] = zv;' : ''} }
    }
  }
}
`;
}

/**
 * float64 reference: y[z] = op(a[z]) op(b[z]) (+ bias[n]) for a [batch, M, K] (or [batch, K, M])
 * and b [batch, K, N] (or [batch, N, K]); batchA / batchB of 1 broadcast.
 */
export function matmul64(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  dims: { M: number; N: number; K: number; batch?: number; batchA?: number; batchB?: number; transA?: boolean; transB?: boolean },
  bias?: ArrayLike<number>,
): Float64Array {
  const { M, N, K } = dims;
  const batch = dims.batch ?? 1;
  const bA = dims.batchA ?? batch;
  const bB = dims.batchB ?? batch;
  const y = new Float64Array(batch * M * N);
  for (let z = 0; z < batch; z++) {
    const ao = (bA === 1 ? 0 : z) * M * K;
    const bo = (bB === 1 ? 0 : z) * K * N;
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let s = 0;
        for (let k = 0; k < K; k++) {
          const av = a[ao + (dims.transA ? k * M + m : m * K + k)]!;
          const bv = b[bo + (dims.transB ? n * K + k : k * N + n)]!;
          s += av * bv;
        }
        y[z * M * N + m * N + n] = s + (bias ? bias[n]! : 0);
      }
    }
  }
  return y;
}

/** Kernel parameters plus the number of read-only bindings the act snippet declares. */
export type MatmulDescParams<O> = O & { epiBindings: number };

/** Bindings shared by the three kernels: a, b, [bias], y, [z], then the epilogue's. */
function matmulBindings(o: MatmulDescParams<MatmulKernelOptions>): Binding[] {
  const out = reads('a', 'b');
  if (o.bias) out.push(...reads('bias'));
  out.push(...writes('y'));
  if (o.saveZ) out.push(...writes('z'));
  for (let i = 0; i < o.epiBindings; i++) out.push(...reads(i === 0 ? 'act_raw' : `epi${i}`)); // the act snippet declares act_raw (kernels/activation_kernels.ts)
  return out;
}

function baseKey(o: MatmulDescParams<MatmulKernelOptions>): string {
  return [+!!o.transA, +!!o.transB, +!!o.bias, +!!o.saveZ, o.epiBindings, o.act ?? ''].join(':');
}

/** Descriptor of the register-blocked kernel (matmulWgsl). */
export const matmulFastKernel = defineKernel<MatmulDescParams<MatmulFastOptions>>({
  name: 'matmul',
  label: (o) => `matmul${o.act ? '_act' : ''}`,
  key: (o) => {
    const d = MM_FAST_DEFAULTS;
    const wg = o.wg ?? d.wg;
    return [o.tm ?? d.tm, o.tn ?? d.tn, wg[0], wg[1], +!!o.vecA, +!!o.vecB, +!!o.vecY, baseKey(o)].join(':');
  },
  bindings: matmulBindings,
  build: matmulWgsl,
});

/** Descriptor of the one-output-per-thread baseline (matmulNaiveWgsl). */
export const matmulNaiveKernel = defineKernel<MatmulDescParams<MatmulKernelOptions>>({
  name: 'matmul_naive',
  label: (o) => `matmul_naive${o.act ? '_act' : ''}`,
  key: baseKey,
  bindings: matmulBindings,
  build: matmulNaiveWgsl,
});

/** Descriptor of the shared-memory tiled kernel (matmulTiledWgsl). */
export const matmulTiledKernel = defineKernel<MatmulDescParams<MatmulKernelOptions>>({
  name: 'matmul_tiled',
  label: (o) => `matmul_tiled${o.act ? '_act' : ''}`,
  key: baseKey,
  bindings: matmulBindings,
  build: matmulTiledWgsl,
});
