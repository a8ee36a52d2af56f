// conv2d launches of the direct kernel families (no autograd): the packed forward (and the
// stride-1 dx as a packed forward of dy), the register-blocked direct kernels, the
// per-pixel kernels for short reductions and the naive oracle kernels, for the forward,
// the input gradient and the filter gradient. engine/ops/conv2d.ts and conv2d_backward.ts
// pick among them (conv2d_plan.ts).
import type { Tensor } from '../tensor.ts';
import { CONV_WG, convBlock, convEpilogueBinding, convUniformWords, type ConvEpilogue, type ConvGeom, type ConvUniformExtra } from '../../kernels/conv2d_common.ts';
import { conv2dDwFastKernel, conv2dDxFastKernel, conv2dFastKernel } from '../../kernels/conv2d.ts';
import { conv2dPackFilterKernel, conv2dPackedKernel, conv2dPadKernel, convPackedSpan } from '../../kernels/conv2d_packed.ts';
import { conv2dDwPixelKernel, conv2dPixelKernel, convPixelDwBlock } from '../../kernels/conv2d_pixel.ts';
import { CONV_NAIVE_WG, conv2dDwNaiveKernel, conv2dDxNaiveKernel, conv2dNaiveKernel } from '../../kernels/conv2d_naive.ts';
import { grid1d } from '../../kernels/elementwise.ts';
import { Uniforms, alloc } from './launch.ts';
import { epilogueLaunch, type EpilogueLaunch, type FusedAct } from './epilogue.ts';
import { sum } from './reduce.ts';
import { convBytes, convFlops, convInfo, fits, packedDxGeom, packedOk } from './conv2d_plan.ts';

/** A forward's outputs: y, and the pre-activation z when the epilogue saves it. */
export interface FwdOut {
  y: Tensor;
  z: Tensor | null;
}

/** The conv uniform block (named launch fields), plus the epilogue's act words. */
export function convUniforms(p: ConvGeom, e: ConvUniformExtra = {}, epi: EpilogueLaunch | null = null): ArrayBuffer {
  const u = new Uniforms().i32(...convUniformWords(p, e));
  if (epi) u.f32(...epi.uniformF32);
  return u.bytes();
}

/** Epilogue of the direct kernels (packed / fast / pixel / naive): bindings after x, w, [b], y, [z]. */
function directEpilogue(b: Tensor | null, act: FusedAct | undefined): { epi: ConvEpilogue; launch: EpilogueLaunch | null } {
  const saveZ = !!act?.saveZ;
  const launch = epilogueLaunch('conv2d', act, convEpilogueBinding({ bias: b !== null, saveZ }));
  return { epi: { bias: b !== null, act: launch?.act, actBuffers: launch?.buffers.length ?? 0, saveZ }, launch };
}

function outBuffers(o: FwdOut, launch: EpilogueLaunch | null): GPUBuffer[] {
  return [o.y.buffer, ...(o.z ? [o.z.buffer] : []), ...(launch?.buffers ?? [])];
}

export function allocOut(device: Tensor['device'], p: ConvGeom, saveZ: boolean | undefined): FwdOut {
  const shape = [p.N, p.O, p.OH, p.OW];
  return { y: alloc(device, shape), z: saveZ ? alloc(device, shape, 'f32', 'conv2d pre-activation') : null };
}

/** Bytes of a forward's main pass: x, w, [b], y, [z]. */
function fwdBytes(p: ConvGeom, bias: boolean, saveZ: boolean): number {
  const t = convBytes(p);
  return t.x + t.w + (bias ? 4 * p.O : 0) + t.y * (saveZ ? 2 : 1);
}

/**
 * Packed forward: zero-pad x into rows of a multiple of 4 floats, pack the filter as
 * [G, Cg, KH, KW, OgP] (optionally flipped and transposed), run the packed kernel.
 * `flip`: w is the ORIGINAL filter of a stride-1 conv whose input gradient this computes
 * (`p` is then the dx-as-forward geometry; `what` names the pass in profiles).
 */
export function packedForward(x: Tensor, w: Tensor, b: Tensor | null, p: ConvGeom, act: FusedAct | undefined, flip: boolean, what = 'fwd', bake = true): FwdOut {
  const device = x.device;
  const OB = p.Og >= 8 ? 8 : 4;
  const OgP = Math.ceil(p.Og / OB) * OB;
  const NV = convPackedSpan({ KW: p.KW, sw: p.sw, dlw: p.dlw });
  const OWB = Math.ceil(p.OW / 4);
  const Hp = p.H + 2 * p.ph;
  const Wp = Math.max(Math.ceil((p.W + 2 * p.pw) / 4) * 4, 4 * (OWB - 1) * p.sw + 4 * NV);
  const packed = { Hp, Wq: Wp / 4, OgQ: OgP / 4 };
  const xp = alloc(device, [p.N, p.C, Hp, Wp]);
  const gp = grid1d(xp.size, CONV_WG);
  device.dispatch({
    kernel: conv2dPadKernel({ baked: bake ? { Hp, Wq: Wp / 4 } : null }),
    buffers: [x.buffer, xp.buffer],
    uniforms: convUniforms(p, { gx: gp.gx, ...packed }),
    workgroups: gp.workgroups,
    info: convInfo(p, `${what} pad`, 0, convBytes(p).x + 4 * xp.size),
  });
  const wt = alloc(device, [p.G, p.Cg, p.KH, p.KW, OgP]);
  const gw = grid1d(wt.size, CONV_WG);
  device.dispatch({
    kernel: conv2dPackFilterKernel({ flip }),
    buffers: [w.buffer, wt.buffer],
    uniforms: convUniforms(p, { gx: gw.gx, ...packed }),
    workgroups: gw.workgroups,
    info: convInfo(p, `${what} pack filter`, 0, convBytes(p).w + 4 * wt.size),
  });
  const { epi, launch } = directEpilogue(b, act);
  const out = allocOut(device, p, epi.saveZ);
  const gx = Math.ceil((p.OH * OWB) / CONV_WG);
  const gy = p.G * (OgP / OB);
  device.dispatch({
    kernel: conv2dPackedKernel({ OB, KW: p.KW, sw: p.sw, dlw: p.dlw, epi, baked: bake ? { OH: p.OH, OW: p.OW, OgQ: OgP / 4 } : null }),
    buffers: [xp.buffer, wt.buffer, ...(b ? [b.buffer] : []), ...outBuffers(out, launch)],
    uniforms: convUniforms(p, packed, launch),
    workgroups: [gx, gy, p.N],
    info: convInfo(p, what, convFlops(p), fwdBytes(p, !!b, !!epi.saveZ)),
  });
  xp.dispose();
  wt.dispose();
  return out;
}

/**
 * Forward by a direct kernel family: 'fast' (packed where it applies, else the
 * register-blocked kernel), 'direct', 'pixel' or 'naive' (also where a grid would not fit).
 */
export function directForward(x: Tensor, w: Tensor, b: Tensor | null, p: ConvGeom, impl: 'fast' | 'direct' | 'pixel' | 'naive', act: FusedAct | undefined, bake = true): FwdOut {
  const device = x.device;
  const OB = convBlock(p.Og);
  const gx = Math.ceil((p.OH * Math.ceil(p.OW / 4)) / CONV_WG);
  const gy = p.G * Math.ceil(p.Og / OB);
  if (impl === 'fast' && packedOk(p) && fits(gx, gy, p.N)) return packedForward(x, w, b, p, act, false, 'fwd', bake);
  const { epi, launch } = directEpilogue(b, act);
  const out = allocOut(device, p, epi.saveZ);
  const bufs = [x.buffer, w.buffer, ...(b ? [b.buffer] : []), ...outBuffers(out, launch)];
  const info = convInfo(p, 'fwd', convFlops(p), fwdBytes(p, !!b, !!epi.saveZ));
  if (impl === 'pixel') {
    const POB = Math.min(PIXEL_OB, p.Og);
    const gz = p.G * Math.ceil(p.Og / POB);
    const g = grid1d(p.N * Math.ceil((p.OH * p.OW) / 4), CONV_WG);
    if (fits(gz)) {
      const kernel = conv2dPixelKernel({ OB: POB, Cg: p.Cg, KH: p.KH, KW: p.KW, vec: (p.OH * p.OW) % 4 === 0, epi });
      device.dispatch({ kernel, buffers: bufs, uniforms: convUniforms(p, { gx: g.gx }, launch), workgroups: [g.workgroups[0], g.workgroups[1], gz], info });
      return out;
    }
  }
  if (impl !== 'naive' && fits(gx, gy, p.N)) {
    device.dispatch({ kernel: conv2dFastKernel({ OB, PB: 4, epi }), buffers: bufs, uniforms: convUniforms(p, {}, launch), workgroups: [gx, gy, p.N], info });
  } else {
    const g = grid1d(out.y.size, CONV_NAIVE_WG);
    device.dispatch({ kernel: conv2dNaiveKernel({ epi }), buffers: bufs, uniforms: convUniforms(p, { gx: g.gx }, launch), workgroups: g.workgroups, info });
  }
  return out;
}

/** Output channels per thread of the per-pixel forward. */
export const PIXEL_OB = 8;

/** Input gradient dx [N, C, H, W] by a direct kernel family ('pixel' has none: it runs 'fast'). */
export function directBackwardInput(dy: Tensor, w: Tensor, p: ConvGeom, impl: 'fast' | 'direct' | 'pixel' | 'naive', bake = true): Tensor {
  const device = dy.device;
  const q = impl === 'fast' || impl === 'pixel' ? packedDxGeom(p) : null;
  if (q) return packedForward(dy, w, null, q, undefined, true, 'dx', bake).y;
  const dx = alloc(device, [p.N, p.C, p.H, p.W]);
  const IB = convBlock(p.Cg);
  const gx = Math.ceil((Math.ceil(p.H / p.sh) * Math.ceil(Math.ceil(p.W / p.sw) / 4)) / CONV_WG);
  const gy = p.G * Math.ceil(p.Cg / IB);
  const gz = p.N * p.sh * p.sw;
  const t = convBytes(p);
  const info = convInfo(p, 'dx', convFlops(p), t.y + t.w + t.x);
  // NOTE: with stride > kernel extent some dx pixels get no tap at all; the fast kernel
  // still visits (and writes zeros to) every pixel of every phase.
  if (impl !== 'naive' && fits(gx, gy, gz)) {
    device.dispatch({ kernel: conv2dDxFastKernel({ IB, PB: 4 }), buffers: [dy.buffer, w.buffer, dx.buffer], uniforms: convUniforms(p), workgroups: [gx, gy, gz], info });
  } else {
    const g = grid1d(dx.size, CONV_NAIVE_WG);
    device.dispatch({ kernel: conv2dDxNaiveKernel({}), buffers: [dy.buffer, w.buffer, dx.buffer], uniforms: convUniforms(p, { gx: g.gx }), workgroups: g.workgroups, info });
  }
  return dx;
}

/** Target number of workgroups for the split reduction of the filter gradient. */
const DW_TARGET_GROUPS = 48;
/** Target number of workgroups of the per-pixel filter gradient (partials, each 64 lanes). */
const DW_PIXEL_TARGET_GROUPS = 64;
/** Cap on the partials buffer (floats). */
const DW_MAX_PARTIAL = 1 << 24;

/** Sum the S partials [S, O*CK] of a split filter gradient into dw [O, Cg, KH, KW]. */
function sumPartials(part: Tensor, S: number, wShape: number[]): Tensor {
  if (S === 1) return part;
  const s = sum(part, 0);
  part.dispose();
  const r = s.view(wShape);
  s.dispose();
  return r;
}

/** Filter gradient dw [O, Cg, KH, KW] by a direct kernel family. */
export function directBackwardFilter(dy: Tensor, x: Tensor, p: ConvGeom, impl: 'fast' | 'direct' | 'pixel' | 'naive'): Tensor {
  const device = dy.device;
  const wShape = [p.O, p.Cg, p.KH, p.KW];
  const wSize = p.O * p.Cg * p.KH * p.KW;
  const t = convBytes(p);
  const bytes = t.y + t.x + t.w;
  if (impl === 'pixel') {
    const CK = p.Cg * p.KH * p.KW;
    const OB = convPixelDwBlock(p.Og, CK);
    const gy = p.G * Math.ceil(p.Og / OB);
    const items = p.N * Math.ceil((p.OH * p.OW) / 4);
    const S = Math.max(1, Math.min(Math.ceil(DW_PIXEL_TARGET_GROUPS / gy), Math.ceil(items / CONV_WG), Math.floor(DW_MAX_PARTIAL / wSize), 65535));
    if (fits(gy)) {
      const part = alloc(device, S === 1 ? wShape : [S, wSize]);
      device.dispatch({
        kernel: conv2dDwPixelKernel({ OB, Cg: p.Cg, KH: p.KH, KW: p.KW, vec: (p.OH * p.OW) % 4 === 0 }),
        buffers: [dy.buffer, x.buffer, part.buffer],
        uniforms: convUniforms(p),
        workgroups: [S, gy],
        info: convInfo(p, 'dw', convFlops(p), bytes),
      });
      return sumPartials(part, S, wShape);
    }
  }
  const P = p.Cg * p.KH;
  let wg = 8;
  while (wg < P && wg < CONV_WG) wg *= 2;
  const OB = convBlock(p.Og, p.KW <= 4 ? 8 : 4);
  const gx = Math.ceil(P / wg);
  const gy = p.G * Math.ceil(p.Og / OB);
  const R = p.N * p.OH;
  let S = Math.min(R, Math.max(1, Math.ceil(DW_TARGET_GROUPS / (gx * gy))), Math.max(1, Math.floor(DW_MAX_PARTIAL / wSize)), 65535);
  const rows = Math.ceil(R / S);
  S = Math.ceil(R / rows);
  if (impl !== 'naive' && fits(gx, gy)) {
    const part = alloc(device, S === 1 ? wShape : [S, wSize]);
    device.dispatch({
      kernel: conv2dDwFastKernel({ OB, KW: p.KW, wg }),
      buffers: [dy.buffer, x.buffer, part.buffer],
      uniforms: convUniforms(p, { rows, S }),
      workgroups: [gx, gy, S],
      info: convInfo(p, 'dw', convFlops(p), bytes),
    });
    return sumPartials(part, S, wShape);
  }
  const dw = alloc(device, wShape);
  const g = grid1d(wSize, CONV_NAIVE_WG);
  device.dispatch({ kernel: conv2dDwNaiveKernel({}), buffers: [dy.buffer, x.buffer, dw.buffer], uniforms: convUniforms(p, { gx: g.gx }), workgroups: g.workgroups, info: convInfo(p, 'dw', convFlops(p), bytes) });
  return dw;
}
