// conv2d as GEMMs (impl 'gemm', no autograd): im2col / col2im (kernels/conv2d_gemm.ts)
// around the batched matmul (matmulRaw; its 'auto' picks the GEMM kernel), chunked over
// the batch to bound the temporaries (ConvRun.gemmChunkBytes). The forward can hand its
// im2col to the filter gradient (ConvRun.keepIm2colBytes), which then skips rebuilding it.
import type { Tensor } from '../tensor.ts';
import { GEMM_EPT, GEMM_WG, col2imPhaseEpt, conv2dCol2imKernel, conv2dCol2imPhaseKernel, conv2dGemmPackFilterKernel, conv2dIm2colKernel, gemmBakedFromWords, gemmUniformWords } from '../../kernels/conv2d_gemm.ts';
import { GEMM_EPI_EPT, GEMM_EPI_WG, conv2dGemmEpilogueKernel, gemmEpilogueBinding } from '../../kernels/conv2d_epilogue.ts';
import type { ConvGeom } from '../../kernels/conv2d_common.ts';
import { grid1d } from '../../kernels/elementwise.ts';
import { Uniforms, alloc } from './launch.ts';
import { matmulAct, matmulRaw } from './matmul.ts';
import { epilogueLaunch, type FusedAct } from './epilogue.ts';
import { stridedCopy } from './layout.ts';
import { sum } from './reduce.ts';
import { add } from './elementwise.ts';
import { allocOut, type FwdOut } from './conv2d_direct.ts';
import { chooseDcolLayout, chooseGemmForward, gemmDwPerImage, convBytes, convInfo, gemmChunk, gemmKp, type ConvRun } from './conv2d_plan.ts';

/** A forward im2col kept for the filter gradient: col [G, N*OH*OW, Kp] (column `ones` all ones, or -1). */
export interface KeptIm2col {
  col: Tensor;
  Kp: number;
  ones: number;
}

/**
 * im2col of images [n0, n0 + Nc) into col [G, Nc*OH*OW, Kp] (column `ones` all ones, or -1).
 * `bake`: the geometry as constants in the kernel (ConvRun.bakeGeometry).
 */
export function conv2dIm2col(x: Tensor, p: ConvGeom, n0: number, Nc: number, Kp: number, ones: number, what = 'im2col', bake = true): Tensor {
  const device = x.device;
  const rows = p.G * Nc * p.OH * p.OW;
  const col = alloc(device, [p.G, Nc * p.OH * p.OW, Kp]);
  const E = Math.min(GEMM_EPT, Kp);
  const nblk = Math.ceil(Kp / E);
  const threads = rows * nblk;
  const g = grid1d(threads, GEMM_WG);
  const words = gemmUniformWords(p, { Nc, n0, gx: g.gx, Kp, ones, nblk, threads });
  const u = new Uniforms().i32(...words).bytes();
  const xBytes = (convBytes(p).x / p.N) * Nc;
  device.dispatch({
    kernel: conv2dIm2colKernel({ vec: Kp % 4 === 0, E, baked: bake ? gemmBakedFromWords(words) : null }),
    buffers: [x.buffer, col.buffer],
    uniforms: u,
    workgroups: g.workgroups,
    info: convInfo(p, what, 0, xBytes + 4 * col.size),
  });
  return col;
}

/** Images [n0, n0 + Nc) of t [N, ...] as a [Nc, ...rest] tensor (a view when it is all of t). */
function batchSlice(t: Tensor, n0: number, Nc: number, rest: number[]): Tensor {
  const per = rest.reduce((a, b) => a * b, 1);
  if (n0 === 0 && Nc === t.shape[0]) return t.view([Nc, ...rest]);
  const r = alloc(t.device, [Nc, ...rest]);
  stridedCopy(t, r, [Nc * per], n0 * per, [1], 0, [1]);
  return r;
}

/**
 * GEMM forward: per chunk of images, col = im2col(x) (with a ones column when there is a
 * bias), yT_g = col_g · [W_g | b_g | 0]^T, then one permute of yT [G, Nc, OH*OW, Og] into
 * y [N, O, OH, OW]. With `keep` and the whole batch in one chunk of at most
 * run.keepIm2colBytes, col is returned for the filter gradient instead of freed.
 * NOTE: a fused activation runs in the permute (conv2d_gemm_epilogue): the permute is the
 * one pass over the output anyway, and there it writes y = act(z) and z together in NCHW
 * order (in the matmul epilogue, z would need a second permute).
 */
export function gemmForward(x: Tensor, w: Tensor, b: Tensor | null, p: ConvGeom, act: FusedAct | undefined, run: ConvRun, keep: boolean): FwdOut & { kept: KeptIm2col | null } {
  const device = x.device;
  const CK = p.Cg * p.KH * p.KW;
  const OHW = p.OH * p.OW;
  if (p.G === 1 && chooseGemmForward(p, run, device) === 'direct') {
    const Kp = gemmKp(p, !!b);
    if (gemmChunk(p, device, Math.max(Kp * OHW, p.O * OHW), run.gemmChunkBytes) === p.N) return gemmForwardDirect(x, w, b, p, act, run, keep);
  }
  // NOTE: the bias is folded into the product as a ones column of col, except when col is
  // to be kept for dw and CK % 4 == 0: there the column would widen K (dw's N) past CK
  // (MNIST conv2: 292 vs 288 columns, one more 32-column block of the dw product), so the
  // bias is added in the permute instead. Elsewhere the ones column sits in the padding.
  // NOTE: K padded to a multiple of 4 (zero columns) so that both operands load as vec4.
  const KpKeep = gemmKp(p, false);
  const keepCol = keep && gemmChunk(p, device, Math.max(p.G * KpKeep * OHW, p.O * OHW), run.gemmChunkBytes) === p.N && 4 * p.G * p.N * OHW * KpKeep <= run.keepIm2colBytes;
  const foldBias = !!b && !(keepCol && CK % 4 === 0);
  const Kp = gemmKp(p, foldBias);
  const ones = foldBias ? CK : -1;
  // NOTE: the filter is packed transposed, [G, Kp, Og], so the product is a plain A·B:
  // measured 12-26% faster than A·B^T on MNIST conv2's shape ([18432, 292] x [292, 64]).
  const wa = alloc(device, [p.G, Kp, p.Og]);
  const threads = p.O * Kp;
  const g = grid1d(threads, GEMM_WG);
  const u = new Uniforms().i32(...gemmUniformWords(p, { Nc: 0, n0: 0, gx: g.gx, Kp, ones, nblk: 0, threads })).bytes();
  device.dispatch({
    kernel: conv2dGemmPackFilterKernel({ bias: foldBias }),
    buffers: foldBias ? [w.buffer, b!.buffer, wa.buffer] : [w.buffer, wa.buffer],
    uniforms: u,
    workgroups: g.workgroups,
    info: convInfo(p, 'fwd gemm pack filter', 0, convBytes(p).w + 4 * wa.size),
  });
  const Nc = gemmChunk(p, device, Math.max(p.G * Kp * OHW, p.O * OHW), run.gemmChunkBytes)!;
  const bias = b && !foldBias ? b : null;
  const launch = act ? epilogueLaunch('conv2d', act, gemmEpilogueBinding(act.saveZ, !!bias)) : null;
  const out = allocOut(device, p, act?.saveZ);
  let kept: KeptIm2col | null = null;
  for (let n0 = 0; n0 < p.N; n0 += Nc) {
    const nc = Math.min(Nc, p.N - n0);
    const col = conv2dIm2col(x, p, n0, nc, Kp, ones, 'fwd im2col', run.bakeGeometry);
    const yt = matmulRaw(col, wa);
    if (keepCol) kept = { col, Kp, ones };
    else col.dispose();
    if (launch || bias) {
      const threads = nc * p.O * Math.ceil(OHW / GEMM_EPI_EPT);
      const g = grid1d(threads, GEMM_EPI_WG);
      const u = new Uniforms().i32(nc, p.O, OHW, p.Og, n0, g.gx, threads, 0).f32(...(launch?.uniformF32 ?? [0, 0, 0, 0])).bytes();
      const saveZ = !!launch?.saveZ;
      device.dispatch({
        kernel: conv2dGemmEpilogueKernel({ act: launch?.act ?? null, actBuffers: launch?.buffers.length ?? 0, saveZ, bias: !!bias, baked: run.bakeGeometry ? { O: p.O, OHW, Og: p.Og } : null }),
        buffers: [yt.buffer, out.y.buffer, ...(out.z ? [out.z.buffer] : []), ...(bias ? [bias.buffer] : []), ...(launch?.buffers ?? [])],
        uniforms: u,
        workgroups: g.workgroups,
        info: convInfo(p, 'fwd gemm epilogue', 0, 4 * yt.size * (saveZ ? 3 : 2)),
      });
    } else {
      // yt [G, nc, OHW, Og] -> y[n0 + n, g*Og + o, pix], iterated in y's order (n, g, o, pix).
      stridedCopy(yt, out.y, [nc, p.G, p.Og, OHW], 0, [OHW * p.Og, nc * OHW * p.Og, 1, p.Og], n0 * p.O * OHW, [p.O * OHW, p.Og * OHW, OHW, 1]);
    }
    yt.dispose();
  }
  wa.dispose();
  return { ...out, kept };
}

/**
 * GEMM forward, direct orientation (one group, the whole batch in one chunk): col =
 * im2col(x) with a ones column when there is a bias, then y_n = [W | b | 0] · col_n^T per
 * image ([O, OH*OW], i.e. y in NCHW) with the activation in the matmul's epilogue: no
 * permute pass. With `keep` (within run.keepIm2colBytes) col is returned for dw, whose
 * product then also yields db from the ones column.
 */
function gemmForwardDirect(x: Tensor, w: Tensor, b: Tensor | null, p: ConvGeom, act: FusedAct | undefined, run: ConvRun, keep: boolean): FwdOut & { kept: KeptIm2col | null } {
  const device = x.device;
  const OHW = p.OH * p.OW;
  const CK = p.Cg * p.KH * p.KW;
  const Kp = gemmKp(p, !!b);
  const ones = b ? CK : -1;
  const wa = alloc(device, [p.O, Kp]);
  const threads = p.O * Kp;
  const g = grid1d(threads, GEMM_WG);
  const u = new Uniforms().i32(...gemmUniformWords(p, { Nc: 0, n0: 0, gx: g.gx, Kp, ones, nblk: 0, threads })).bytes();
  device.dispatch({
    kernel: conv2dGemmPackFilterKernel({ bias: !!b, rows: true }),
    buffers: b ? [w.buffer, b.buffer, wa.buffer] : [w.buffer, wa.buffer],
    uniforms: u,
    workgroups: g.workgroups,
    info: convInfo(p, 'fwd gemm pack filter', 0, convBytes(p).w + 4 * wa.size),
  });
  const col = conv2dIm2col(x, p, 0, p.N, Kp, ones, 'fwd im2col', run.bakeGeometry);
  const colv = col.view([p.N, OHW, Kp]);
  const r = act ? matmulAct(wa, colv, { transB: true }, act) : { y: matmulRaw(wa, colv, { transB: true }), z: null };
  colv.dispose();
  wa.dispose();
  const keepCol = keep && 4 * p.N * OHW * Kp <= run.keepIm2colBytes;
  let kept: KeptIm2col | null = null;
  if (keepCol) kept = { col, Kp, ones };
  else col.dispose();
  const shape = [p.N, p.O, p.OH, p.OW];
  const y = r.y.view(shape);
  r.y.dispose();
  let z: Tensor | null = null;
  if (r.z) {
    z = r.z.view(shape);
    r.z.dispose();
  }
  return { y, z, kept };
}

/**
 * GEMM input gradient: per chunk of images a product into dcol, then a gather col2im into
 * dx (by stride phase for strided convs unless run.col2im is 'taps'). The layout of dcol
 * (chooseDcolLayout): pixel-major, dcol[n, g] = dy[n, g]^T · W_g ([OH*OW, CK]; dy[n, g]^T
 * materialised), or k-major, dcol[n, g] = W_g^T · dy[n, g] ([CK, OH*OW]; dy read in place).
 */
export function gemmBackwardInput(dy: Tensor, w: Tensor, p: ConvGeom, run: ConvRun): Tensor {
  const device = dy.device;
  const CK = p.Cg * p.KH * p.KW;
  const kMajor = chooseDcolLayout(p, run, device) === 'k';
  const OHW = p.OH * p.OW;
  const HW = p.H * p.W;
  const dx = alloc(device, [p.N, p.C, p.H, p.W]);
  const wv = w.view([p.G, p.Og, CK]);
  // NOTE: for CK >= 32 the k-major product takes the filter packed transposed ([G, CK, Og],
  // the forward's packing kernel with no bias) so that A loads as vec4 along K = Og; for
  // CK < 32 it reads W^T by index (transA), as measured before this layout existed.
  const wt = kMajor && CK >= 32 ? packFilterT(w, p, CK) : null;
  const Nc = gemmChunk(p, device, Math.max(p.G * CK * OHW, p.O * OHW), run.gemmChunkBytes)!;
  const phase = run.col2im === 'phase' && (p.sh > 1 || p.sw > 1);
  for (let n0 = 0; n0 < p.N; n0 += Nc) {
    const nc = Math.min(Nc, p.N - n0);
    let dcol: Tensor;
    if (kMajor) {
      const dyc = batchSlice(dy, n0, nc, [p.G, p.Og, OHW]);
      dcol = wt ? matmulRaw(wt, dyc) : matmulRaw(wv, dyc, { transA: true });
      dyc.dispose();
    } else {
      // NOTE: dy is permuted to [nc, G, OHW, Og] first so the product is a plain A·B: the
      // copy plus A·B measured 12-20% faster than A^T·B on MNIST conv2's dx (interleaved A/B).
      const dyT = alloc(device, [nc, p.G, OHW, p.Og]);
      stridedCopy(dy, dyT, [nc, p.G, OHW, p.Og], n0 * p.O * OHW, [p.O * OHW, p.Og * OHW, 1, OHW], 0, [p.G * OHW * p.Og, OHW * p.Og, p.Og, 1]);
      dcol = matmulRaw(dyT, wv);
      dyT.dispose();
    }
    const info = convInfo(p, phase ? 'dx col2im phase' : 'dx col2im', 0, 4 * (dcol.size + nc * p.C * HW));
    if (phase) {
      const E = col2imPhaseEpt(p.W, p.sw);
      const nblk = Math.ceil(Math.ceil(p.W / p.sw) / E);
      const threads = p.sh * p.sw * nc * p.C * Math.ceil(p.H / p.sh) * nblk;
      const g = grid1d(threads, GEMM_WG);
      const words = gemmUniformWords(p, { Nc: nc, n0, gx: g.gx, Kp: CK, ones: -1, nblk, threads });
      const baked = run.bakeGeometry ? gemmBakedFromWords(words) : null;
      device.dispatch({ kernel: conv2dCol2imPhaseKernel({ sh: p.sh, sw: p.sw, kMajor, E, baked }), buffers: [dcol.buffer, dx.buffer], uniforms: new Uniforms().i32(...words).bytes(), workgroups: g.workgroups, info });
    } else {
      const nblk = Math.ceil(HW / GEMM_EPT);
      const threads = nc * p.C * nblk;
      const g = grid1d(threads, GEMM_WG);
      const words = gemmUniformWords(p, { Nc: nc, n0, gx: g.gx, Kp: CK, ones: -1, nblk, threads });
      const baked = run.bakeGeometry ? gemmBakedFromWords(words) : null;
      device.dispatch({ kernel: conv2dCol2imKernel({ sh: p.sh, sw: p.sw, vec: HW % 4 === 0, kMajor, baked }), buffers: [dcol.buffer, dx.buffer], uniforms: new Uniforms().i32(...words).bytes(), workgroups: g.workgroups, info });
    }
    dcol.dispose();
  }
  wv.dispose();
  wt?.dispose();
  return dx;
}

/** The filter packed transposed per group, [G, CK, Og] (no bias row): the k-major dx product's A. */
function packFilterT(w: Tensor, p: ConvGeom, CK: number): Tensor {
  const device = w.device;
  const wt = alloc(device, [p.G, CK, p.Og]);
  const threads = p.O * CK;
  const g = grid1d(threads, GEMM_WG);
  const u = new Uniforms().i32(...gemmUniformWords(p, { Nc: 0, n0: 0, gx: g.gx, Kp: CK, ones: -1, nblk: 0, threads })).bytes();
  device.dispatch({
    kernel: conv2dGemmPackFilterKernel({ bias: false }),
    buffers: [w.buffer, wt.buffer],
    uniforms: u,
    workgroups: g.workgroups,
    info: convInfo(p, 'dx pack filter', 0, convBytes(p).w + 4 * wt.size),
  });
  return wt;
}

/** Target number of matmul workgroups for the filter gradient (the K split fills the rest). */
const GEMM_DW_TARGET_GROUPS = 32;

/**
 * GEMM filter gradient: dW_g = dyP_g · col_g with K = images x OH*OW; dy is permuted to
 * dyP [G, S, Og, Ns*OH*OW] so that the long K can be split into S chunks of Ns images
 * (batched, partials summed) when the output alone gives too few workgroups. With `kept`
 * (the forward's im2col of the whole batch, Kp >= CK columns) the product runs on it and
 * the first CK of its Kp columns are dw (the bias and padding columns are dropped).
 * With `db` (and no kept im2col without a ones column) the im2col gets a ones column CK,
 * so that column of the product is the bias gradient (db[o] = sum of dy over images and
 * pixels), returned with dw; else db is null (the caller reduces dy itself).
 * NOTE: with one group and a narrow product (gemmDwPerImage, e.g. MNIST conv1: 12 columns
 * vs 676 pixels) the split is one image per slice (S = images): dyP is then dy itself (no
 * permute) and the per-image partials [S, Og, Kc] are small next to dy.
 */
export function gemmBackwardFilter(dy: Tensor, x: Tensor, p: ConvGeom, run: ConvRun, kept: KeptIm2col | null, db = false): { dw: Tensor; db: Tensor | null } {
  const device = dy.device;
  const CK = p.Cg * p.KH * p.KW;
  const OHW = p.OH * p.OW;
  const ones = kept ? kept.ones : db ? CK : -1;
  const Kc = kept ? kept.Kp : ones >= 0 ? gemmKp(p, true) : CK;
  const Nc = kept ? p.N : gemmChunk(p, device, Math.max(p.G * Kc * OHW, p.O * OHW), run.gemmChunkBytes)!;
  const groups = Math.ceil(Kc / 32) * Math.ceil(p.Og / 8) * p.G;
  const perImage = gemmDwPerImage(p, Kc);
  let acc: Tensor | null = null;
  for (let n0 = 0; n0 < p.N; n0 += Nc) {
    const nc = Math.min(Nc, p.N - n0);
    // S: the largest divisor of nc with S * groups <= target (at least 1), or nc (perImage).
    let S = 1;
    if (perImage) S = nc;
    else for (let d = 1; d <= nc; d++) if (nc % d === 0 && d * groups <= Math.max(GEMM_DW_TARGET_GROUPS, groups)) S = d;
    const Ns = nc / S;
    const col = kept ? kept.col : conv2dIm2col(x, p, n0, nc, Kc, ones, 'dw im2col', run.bakeGeometry);
    const colv = col.view([p.G, S, Ns * OHW, Kc]);
    if (!kept) col.dispose();
    let dyP: Tensor;
    if (perImage) {
      dyP = batchSlice(dy, n0, nc, [p.Og, OHW]).view([1, S, p.Og, OHW]);
    } else {
      dyP = alloc(device, [p.G, S, p.Og, Ns * OHW]);
      // dyP[g, s, o, m, pix] = dy[n0 + s*Ns + m, g*Og + o, pix]
      stridedCopy(dy, dyP, [p.G, S, p.Og, Ns, OHW], n0 * p.O * OHW, [p.Og * OHW, Ns * p.O * OHW, OHW, p.O * OHW, 1], 0, [S * p.Og * Ns * OHW, p.Og * Ns * OHW, Ns * OHW, OHW, 1]);
    }
    const prod = matmulRaw(dyP, colv);
    colv.dispose();
    dyP.dispose();
    const red = S > 1 ? sum(prod, 1) : prod;
    if (red !== prod) prod.dispose();
    const part = red.view([p.O * Kc]);
    red.dispose();
    if (acc) {
      const t = add(acc, part);
      acc.dispose();
      part.dispose();
      acc = t;
    } else {
      acc = part;
    }
  }
  let dw: Tensor;
  if (Kc !== CK) {
    // [G, Og, Kc] -> [O, CK]: the first CK columns of each row.
    dw = alloc(device, [p.O, p.Cg, p.KH, p.KW]);
    stridedCopy(acc!, dw, [p.O, CK], 0, [Kc, 1], 0, [CK, 1]);
  } else {
    dw = acc!.view([p.O, p.Cg, p.KH, p.KW]);
  }
  let dbOut: Tensor | null = null;
  if (db && ones >= 0) {
    dbOut = alloc(device, [p.O]);
    stridedCopy(acc!, dbOut, [p.O], ones, [Kc], 0, [1]);
  }
  acc!.dispose();
  return { dw, db: dbOut };
}
