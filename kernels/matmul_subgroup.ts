// Subgroup GEMM: y[z] = op(a[z]) · op(b[z]) (+ bias, then an optional activation) with one
// subgroup per workgroup, operands shared across lanes by subgroupBroadcast instead of
// workgroup memory. Same uniform layout, bindings and epilogue hook as kernels/matmul.ts.
//
// Two layouts (L = lanes = the subgroup size the kernel is written for, 8 on llvmpipe):
// - 'bcastA' (default): the workgroup owns `rows` rows and L*4*vecs columns; lane l owns
//   the columns n0 + 32g + 4l (+0..3) of every row. Per K chunk of L, lane l loads the
//   A element (row r, k + l) of each row, then for kk in 0..L-1 takes A(r, k + kk) with
//   subgroupBroadcast(a_r, kk) and multiplies it into its own vec4 of B row k + kk.
// - 'bcastB' (mirror): the workgroup owns L*rows rows and 4*vecs columns; lane l owns the
//   rows m0 + r*L + l. Per chunk, lane l loads B row k + l (its vec4 column groups), the
//   k loop broadcasts B(k + kk, cols) while each lane reads its own A(row, k + kk).
// The K remainder (K % L) runs one k at a time with no broadcast (every lane reads it).
//
// splitK: workgroup z = batch * S + s computes the K slice [s*KS, min(K, (s+1)*KS)) (KS =
// the uniform word `pad`, a multiple of L) into partial[z] ([M, N]); no bias or epilogue
// (kernels/matmul_splitk.ts sums the S slices and applies them).
//
// NOTE: the lane index is read from @builtin(subgroup_invocation_id), never assumed equal
// to local_invocation_id, and the engine picks this family only when the adapter reports
// subgroupMinSize == subgroupMaxSize == L (a workgroup of L invocations is then exactly one
// subgroup, which the broadcasts rely on). Measured on llvmpipe (docs/matmul.md): the
// broadcast is a register shuffle, so a K chunk costs rows + L loads for rows * L vec4 FMAs
// per lane instead of the register-blocked kernel's (tm + tn) loads per tm * tn / 4.

import { defineKernel, reads, writes, type Binding } from './kernel.ts';

export type SgLayout = 'bcastA' | 'bcastB';

export interface SgMatmulParams {
  /** Subgroup size the kernel is written for (also its workgroup size). */
  lanes: number;
  layout: SgLayout;
  /** bcastA: rows per workgroup; bcastB: rows per lane (tile M = lanes * rows). */
  rows: number;
  /** vec4 column groups per lane (1 or 2). */
  vecs: 1 | 2;
  transA: boolean;
  transB: boolean;
  /** Contiguous axis of a (K, or M with transA) is a multiple of 4 (bcastB, !transA: vec4 A loads). */
  vecA: boolean;
  /** Contiguous axis of b (N, or K with transB) is a multiple of 4: vec4 loads. */
  vecB: boolean;
  /** N is a multiple of 4: vec4 stores. */
  vecY: boolean;
  bias: boolean;
  /** WGSL defining `fn epi_act(z: f32) -> f32` (adds `act: vec4<f32>` to the uniforms). */
  act?: string;
  saveZ: boolean;
  /** Read-only storage bindings the act snippet declares after the outputs. */
  epiBindings: number;
  /** Write K-slice partials (no bias / act / saveZ). */
  splitK: boolean;
  /**
   * Which of the 4 batch dims (right-aligned, as the uniform's bshape) exceed 1, or unset:
   * split the workgroup's z index over all four. Dims of size 1 take no index, and the
   * outermost dim left takes the rest of it without a division, so a batch with one
   * dim > 1 (or none) needs no division at all, whatever its size.
   * NOTE (llvmpipe): x86 has no vector integer division, so each `%` / `/` by a uniform
   * runs as scalar divisions (8 per workgroup with all four dims).
   */
  batchDims?: readonly boolean[];
}

/** Output tile [rows, cols] of one workgroup. */
export function sgTile(p: Pick<SgMatmulParams, 'lanes' | 'layout' | 'rows' | 'vecs'>): [number, number] {
  return p.layout === 'bcastA' ? [p.rows, p.lanes * 4 * p.vecs] : [p.lanes * p.rows, 4 * p.vecs];
}

function check(p: SgMatmulParams): void {
  if (![4, 8, 16, 32].includes(p.lanes)) throw new Error(`matmul_sg: lanes must be 4, 8, 16 or 32, got ${p.lanes}`);
  if (!(Number.isInteger(p.rows) && p.rows >= 1 && p.rows <= 16)) throw new Error(`matmul_sg: rows must be an integer in 1..16, got ${p.rows}`);
  if (p.saveZ && !p.act) throw new Error('matmul_sg: saveZ needs an act epilogue');
  if (p.batchDims && p.batchDims.length !== 4) throw new Error(`matmul_sg: batchDims must have 4 flags, got ${p.batchDims.length}`);
  if (p.splitK && (p.bias || p.act)) throw new Error('matmul_sg: splitK partials take no bias or act (the reduce applies them)');
}

const XYZW = 'xyzw';

function batchOffsets(z: string, batchDims?: readonly boolean[]): string {
  // Innermost (w) to outermost (x); only the dims that exceed 1 when batchDims is given.
  const dims = ['w', 'z', 'y', 'x'].filter((_c, i) => !batchDims || batchDims[3 - i]);
  if (dims.length === 0) return '  let ao = 0u;\n  let bo = 0u;';
  const lines = [`  var rem = ${z};`, '  var ao = 0u;', '  var bo = 0u;'];
  dims.forEach((c, i) => {
    // The outermost dim takes the rest of the index (it is below its size): no division.
    if (batchDims && i === dims.length - 1) lines.push(`  ao += rem * u.astr.${c}; bo += rem * u.bstr.${c};`);
    else lines.push(`  { let c = rem % u.bshape.${c}; rem = rem / u.bshape.${c}; ao += c * u.astr.${c}; bo += c * u.bstr.${c}; }`);
  });
  return lines.join('\n');
}

function vec4(e: (c: number) => string): string {
  return `vec4<f32>(${[0, 1, 2, 3].map(e).join(', ')})`;
}

export function matmulSgWgsl(p: SgMatmulParams): string {
  check(p);
  const L = p.lanes;
  const R = [...Array(p.rows).keys()];
  const G = [...Array(p.vecs).keys()];
  const KK = [...Array(L).keys()];
  const tA = p.transA;
  const tB = p.transB;
  const mirror = p.layout === 'bcastB';
  const [tileM, tileN] = sgTile(p);
  const pre: string[] = [];
  const chunk: string[] = [];
  const tail: string[] = [];
  // Row index of accumulator row r, and this lane's column base of group g.
  const row = (r: number) => (mirror ? `m0 + ${r * L}u + lane` : `m0 + ${r}u`);
  const col = (g: number) => (mirror ? `n0 + ${4 * g}u` : `n0 + ${L * 4 * g}u + 4u * lane`);
  // Element types of the a / b arrays: vec4 where the kernel loads vec4s along their rows.
  const aVec = mirror && !tA && p.vecA;
  const bVec = !tB ? p.vecB : p.vecB && !mirror;
  // Row bases of a, clamped so that rows past M read valid memory (never stored).
  for (const r of R) pre.push(tA ? `  let ca${r} = ao + min(${row(r)}, u.M - 1u);` : `  let ra${r} = ao + min(${row(r)}, u.M - 1u) * u.K;`);
  const aAt = (r: number, k: string) => (tA ? `a[ca${r} + (${k}) * u.M]` : aVec ? `a[(ra${r} + ${k}) / 4u][(ra${r} + ${k}) % 4u]` : `a[ra${r} + ${k}]`);
  // Column bases of b (clamped likewise).
  for (const g of G) {
    if (!tB && p.vecB) pre.push(`  let cb${g} = bo + min(${col(g)}, u.N - 4u);`);
    else if (!tB) for (let c = 0; c < 4; c++) pre.push(`  let cb${g}_${c} = bo + min(${col(g)} + ${c}u, u.N - 1u);`);
    else for (let c = 0; c < 4; c++) pre.push(`  let rb${g}_${c} = bo + min(${col(g)} + ${c}u, u.N - 1u) * u.K;`);
  }
  // B(k, this lane's 4 columns of group g) as a vec4 (any layout; scalar loads where not vec).
  const bRow = (g: number, k: string) => {
    if (!tB && p.vecB) return `b[(cb${g} + (${k}) * u.N) / 4u]`;
    if (!tB) return vec4((c) => `b[cb${g}_${c} + (${k}) * u.N]`);
    if (bVec) return vec4((c) => `b[(rb${g}_${c} + ${k}) / 4u][(rb${g}_${c} + ${k}) % 4u]`);
    return vec4((c) => `b[rb${g}_${c} + ${k}]`);
  };
  const fma = (r: number, g: number, s: string, bv: string) => `    acc${r}_${g} += ${s} * ${bv};`;
  if (!mirror) {
    for (const r of R) chunk.push(`    let a${r} = ${aAt(r, 'k + lane')};`);
    if (tB && p.vecB) {
      // Each of the lane's 4 columns is a contiguous run along K: L/4 vec4 loads per column.
      for (const g of G) for (let c = 0; c < 4; c++) for (let h = 0; h < L / 4; h++) chunk.push(`    let bt${g}_${c}_${h} = b[(rb${g}_${c} + k + ${4 * h}u) / 4u];`);
    }
    for (const kk of KK) {
      for (const g of G) {
        const bv = tB && p.vecB ? vec4((c) => `bt${g}_${c}_${Math.floor(kk / 4)}.${XYZW[kk % 4]}`) : bRow(g, `k + ${kk}u`);
        chunk.push(`    let b${kk}_${g} = ${bv};`);
      }
      for (const r of R) {
        chunk.push(`    let s${kk}_${r} = subgroupBroadcast(a${r}, ${kk}u);`);
        for (const g of G) chunk.push(fma(r, g, `s${kk}_${r}`, `b${kk}_${g}`));
      }
    }
  } else {
    for (const g of G) chunk.push(`    let bl${g} = ${bRow(g, 'k + lane')};`);
    const vA = aVec;
    for (const r of R) {
      if (vA) for (let h = 0; h < L / 4; h++) chunk.push(`    let av${r}_${h} = a[(ra${r} + k + ${4 * h}u) / 4u];`);
    }
    for (const kk of KK) {
      for (const g of G) chunk.push(`    let bb${kk}_${g} = subgroupBroadcast(bl${g}, ${kk}u);`);
      for (const r of R) {
        const av = vA ? `av${r}_${Math.floor(kk / 4)}.${XYZW[kk % 4]}` : aAt(r, `k + ${kk}u`);
        chunk.push(`    let a${kk}_${r} = ${av};`);
        for (const g of G) chunk.push(fma(r, g, `a${kk}_${r}`, `bb${kk}_${g}`));
      }
    }
  }
  for (const r of R) tail.push(`    let s${r} = ${aAt(r, 'k')};`);
  for (const g of G) tail.push(`    let t${g} = ${bRow(g, 'k')};`);
  for (const r of R) for (const g of G) tail.push(fma(r, g, `s${r}`, `t${g}`));

  const outs = `${p.splitK ? 'partial' : 'y'}`;
  const st = (buf: string, val: string) =>
    p.vecY ? `${buf}[(yo + m * u.N + n) / 4u] = ${val};` : [0, 1, 2, 3].map((c) => `if (n + ${c}u < u.N) { ${buf}[yo + m * u.N + n + ${c}u] = ${val}.${XYZW[c]}; }`).join(' ');
  const biasLoad = p.bias ? G.map((g) => `  let bv${g} = ${vec4((c) => `bias[min(${col(g)} + ${c}u, u.N - 1u)]`)};`).join('\n') : '';
  let stores: string;
  if (!p.act) {
    stores = R.flatMap((r) =>
      G.map((g) => `  { let m = ${row(r)}; let n = ${col(g)}; if (m < u.M && n < u.N) { let v = acc${r}_${g}${p.bias ? ` + bv${g}` : ''}; ${st(outs, 'v')} } }`),
    ).join('\n');
  } else {
    // NOTE: with an activation the rows are stored by a loop whose trip count comes from the
    // uniforms (not unrolled), so the activation is inlined `vecs` times, not rows * vecs
    // times (shader compile time; same choice as the register-blocked kernel).
    const body = G.map(
      (g) => `    { let n = ${col(g)}; if (m < u.M && n < u.N) { let zv = accs[r * ${p.vecs}u + ${g}u]${p.bias ? ` + bv${g}` : ''}; let v = epi_act4(zv); ${st('y', 'v')}${p.saveZ ? ` ${st('z', 'zv')}` : ''} } }`,
    ).join('\n');
    const rowOf = mirror ? `m0 + r * ${L}u + lane` : 'm0 + r';
    stores = `  var accs = array<vec4<f32>, ${p.rows * p.vecs}>(${R.flatMap((r) => G.map((g) => `acc${r}_${g}`)).join(', ')});
  let nr = min(${p.rows}u, u.M - min(m0, u.M));
  for (var r = 0u; r < nr; r++) {
    let m = ${rowOf};
${body}
  }`;
  }
  const bT = bVec ? 'vec4<f32>' : 'f32';
  const aT = aVec ? 'vec4<f32>' : 'f32';
  const yT = p.vecY ? 'vec4<f32>' : 'f32';
  const decl: string[] = [
    `@group(0) @binding(1) var<storage, read> a: array<${aT}>;`,
    `@group(0) @binding(2) var<storage, read> b: array<${bT}>;`,
  ];
  let nb = 3;
  if (p.bias) decl.push(`@group(0) @binding(${nb++}) var<storage, read> bias: array<f32>;`);
  decl.push(`@group(0) @binding(${nb++}) var<storage, read_write> ${outs}: array<${yT}>;`);
  if (p.saveZ) decl.push(`@group(0) @binding(${nb++}) var<storage, read_write> z: array<${yT}>;`);
  // The K range: all of K, or this workgroup's slice.
  const kRange = p.splitK
    ? `  let S = (u.K + u.pad - 1u) / u.pad;
  let s = wid.z % S;
  let kBeg = s * u.pad;
  let kEnd = min(u.K, kBeg + u.pad);
${batchOffsets('wid.z / S', p.batchDims)}`
    : `  let kBeg = 0u;
  let kEnd = u.K;
${batchOffsets('wid.z', p.batchDims)}`;
  // NOTE: `m0 > u.M` workgroups never exist (grid from M), so nr above is >= 1.
  return `// matmul_sg (${p.layout}, lanes=${L}, tile ${tileM}x${tileN}, transA=${tA}, transB=${tB}, vecA=${p.vecA}, vecB=${p.vecB}, vecY=${p.vecY}${p.bias ? ', bias' : ''}${p.act ? ', act' : ''}${p.saveZ ? ', saveZ' : ''}${p.splitK ? ', splitK' : ''})
enable subgroups;
struct U { M: u32, N: u32, K: u32, pad: u32, bshape: vec4<u32>, astr: vec4<u32>, bstr: vec4<u32>${p.act ? ', act: vec4<f32>' : ''} };
@group(0) @binding(0) var<uniform> u: U;
${decl.join('\n')}
${p.act ? `${p.act}\nfn epi_act4(v: vec4<f32>) -> vec4<f32> { return vec4<f32>(epi_act(v.x), epi_act(v.y), epi_act(v.z), epi_act(v.w)); }` : ''}
@compute @workgroup_size(${L})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(subgroup_invocation_id) lane: u32) {
  let m0 = wid.y * ${tileM}u;
  let n0 = wid.x * ${tileN}u;
${kRange}
  let yo = wid.z * u.M * u.N;
${pre.join('\n')}
${R.flatMap((r) => G.map((g) => `  var acc${r}_${g} = vec4<f32>(0.0);`)).join('\n')}
  let kMain = kBeg + ((kEnd - kBeg) / ${L}u) * ${L}u;
  var k = kBeg;
  for (; k < kMain; k += ${L}u) {
${chunk.join('\n')}
  }
  for (; k < kEnd; k++) {
${tail.join('\n')}
  }
${biasLoad}
${stores}
}
`;
}

function sgBindings(p: SgMatmulParams): Binding[] {
  const out = reads('a', 'b');
  if (p.bias) out.push(...reads('bias'));
  out.push(...writes(p.splitK ? 'partial' : 'y'));
  if (p.saveZ) out.push(...writes('z'));
  for (let i = 0; i < p.epiBindings; i++) out.push(...reads(i === 0 ? 'act_raw' : `epi${i}`));
  return out;
}

/** Descriptor of the subgroup GEMM family. */
export const matmulSgKernel = defineKernel<SgMatmulParams>({
  name: 'matmul_sg',
  label: (p) => `matmul_sg${p.layout === 'bcastB' ? '_mirror' : ''}${p.splitK ? '_splitk' : ''}${p.act ? '_act' : ''}`,
  key: (p) =>
    [p.lanes, p.layout, p.rows, p.vecs, +p.transA, +p.transB, +p.vecA, +p.vecB, +p.vecY, +p.bias, +p.saveZ, p.epiBindings, +p.splitK, p.batchDims ? p.batchDims.map((d) => +d).join('') : 'u', p.act ?? ''].join(':'),
  bindings: sgBindings,
  build: matmulSgWgsl,
});
