// 2-D convolution (NCHW x, OIHW w, optional bias) with stride, padding, dilation and
// groups (depthwise included), with autograd: dx, dw and db. Launches the fast
// register-blocked kernels of kernels/conv2d.ts, or the naive ones (kernels/conv2d_naive.ts)
// on request or when a launch grid would exceed the device's per-dimension limit.
import { Tensor, assertSameDevice, shapeStr, type Shape } from '../tensor.ts';
import { needsGrad, record } from '../autograd.ts';
import {
  CONV_WG,
  conv2dBackwardFilterFastWgsl,
  conv2dBackwardInputFastWgsl,
  conv2dFastWgsl,
  conv2dPackFilterWgsl,
  conv2dPackedWgsl,
  conv2dPadWgsl,
  convBlock,
  convPackedSpan,
  type ConvEpilogue,
  convUniformWords,
  type ConvGeom,
} from '../../kernels/conv2d.ts';
import { CONV_NAIVE_WG, conv2dBackwardFilterNaiveWgsl, conv2dBackwardInputNaiveWgsl, conv2dNaiveWgsl } from '../../kernels/conv2d_naive.ts';
import { grid1d } from '../../kernels/elementwise.ts';
import { Uniforms, alloc } from './launch.ts';
import { sum } from './reduce.ts';

export type Pair = number | readonly [number, number];
/**
 * 'fast': packed kernels where they apply (>= 4 channels per group; stride 1 for dx),
 * else 'direct'. 'direct': the register-blocked kernels on unpadded tensors (any options).
 * 'naive': one output per thread (oracle and baseline).
 */
export type ConvImpl = 'fast' | 'direct' | 'naive';

export interface Conv2dOptions {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  groups?: number;
  /** Kernel family (default 'fast'; see ConvImpl). */
  impl?: ConvImpl;
  /**
   * Fused forward epilogue: WGSL defining `fn epi_act(z: f32) -> f32`, applied to
   * conv + bias before the store. Forward only: throws when a gradient is needed.
   */
  act?: string;
}

export type { ConvGeom };

const MAX_GROUPS = 65535;

function pair(op: string, name: string, v: Pair | undefined, dflt: number, min: number): [number, number] {
  const p: readonly unknown[] = v === undefined ? [dflt, dflt] : typeof v === 'number' ? [v, v] : Array.isArray(v) ? v : [];
  if (p.length !== 2 || !p.every((d) => Number.isInteger(d) && (d as number) >= min)) {
    throw new Error(`kinkless: ${op}: ${name} must be an integer >= ${min} or a pair [h, w] of them, got ${JSON.stringify(v)}`);
  }
  return [p[0] as number, p[1] as number];
}

/** Validate shapes and options; returns the resolved geometry. */
export function conv2dGeometry(xShape: Shape, wShape: Shape, opts: Conv2dOptions = {}, bShape?: Shape | null): ConvGeom {
  const op = 'conv2d';
  if (xShape.length !== 4) throw new Error(`kinkless: ${op}: x must have rank 4 [N, C, H, W], got shape ${shapeStr(xShape)}`);
  if (wShape.length !== 4) throw new Error(`kinkless: ${op}: w must have rank 4 [O, C/groups, KH, KW], got shape ${shapeStr(wShape)}`);
  const [N, C, H, W] = xShape as [number, number, number, number];
  const [O, Cg, KH, KW] = wShape as [number, number, number, number];
  for (const [nm, s] of [['x', xShape], ['w', wShape]] as const) {
    if (s.some((d) => d < 1)) throw new Error(`kinkless: ${op}: ${nm} must have no empty dimension, got shape ${shapeStr(s)}`);
  }
  const G = opts.groups ?? 1;
  if (!Number.isInteger(G) || G < 1) throw new Error(`kinkless: ${op}: groups must be a positive integer, got ${String(opts.groups)}`);
  if (C % G !== 0) throw new Error(`kinkless: ${op}: input channels C=${C} (x shape ${shapeStr(xShape)}) must be divisible by groups=${G}`);
  if (O % G !== 0) throw new Error(`kinkless: ${op}: output channels O=${O} (w shape ${shapeStr(wShape)}) must be divisible by groups=${G}`);
  if (Cg !== C / G) {
    throw new Error(`kinkless: ${op}: w shape ${shapeStr(wShape)} has ${Cg} channels per group, expected C/groups = ${C}/${G} = ${C / G} for x shape ${shapeStr(xShape)}`);
  }
  const [sh, sw] = pair(op, 'stride', opts.stride, 1, 1);
  const [ph, pw] = pair(op, 'padding', opts.padding, 0, 0);
  const [dlh, dlw] = pair(op, 'dilation', opts.dilation, 1, 1);
  const OH = Math.floor((H + 2 * ph - dlh * (KH - 1) - 1) / sh) + 1;
  const OW = Math.floor((W + 2 * pw - dlw * (KW - 1) - 1) / sw) + 1;
  if (OH <= 0 || OW <= 0) {
    throw new Error(
      `kinkless: ${op}: output size ${OH}x${OW} is not positive: input ${H}x${W}, kernel ${KH}x${KW}, stride [${sh}, ${sw}], padding [${ph}, ${pw}], dilation [${dlh}, ${dlw}]`,
    );
  }
  if (bShape && (bShape.length !== 1 || bShape[0] !== O)) throw new Error(`kinkless: ${op}: b must have shape [${O}] (one per output channel), got ${shapeStr(bShape)}`);
  return { N, C, H, W, O, OH, OW, G, KH, KW, Cg, Og: O / G, sh, sw, ph, pw, dlh, dlw };
}

function uniforms(p: ConvGeom, gx = 0, rows = 0, S = 0, extra: number[] = [0, 0, 0]): ArrayBuffer {
  const words = convUniformWords(p, gx, rows, S);
  words.splice(21, 3, ...extra);
  return new Uniforms().i32(...words).bytes();
}

function fits(...dims: number[]): boolean {
  return dims.every((d) => d <= MAX_GROUPS);
}

/** Largest x span (vec4 loads per row) the packed kernel unrolls. */
const PACKED_MAX_SPAN = 6;

/** Whether the packed forward kernel applies: >= 4 channels per group and a short row span. */
function packedOk(p: ConvGeom): boolean {
  return p.Og >= 4 && convPackedSpan({ KW: p.KW, sw: p.sw, dlw: p.dlw }) <= PACKED_MAX_SPAN;
}

/**
 * Packed forward: zero-pad x into rows of a multiple of 4 floats, pack the filter as
 * [G, Cg, KH, KW, OgP] (optionally flipped and transposed), run conv2dPackedWgsl.
 * `flip`: w is the ORIGINAL filter of a stride-1 conv whose input gradient this computes.
 */
function packedForward(x: Tensor, w: Tensor, b: Tensor | null, p: ConvGeom, epi: ConvEpilogue, flip: boolean): Tensor {
  const device = x.device;
  const OB = p.Og >= 8 ? 8 : 4;
  const OgP = Math.ceil(p.Og / OB) * OB;
  const NV = convPackedSpan({ KW: p.KW, sw: p.sw, dlw: p.dlw });
  const OWB = Math.ceil(p.OW / 4);
  const Hp = p.H + 2 * p.ph;
  const Wp = Math.max(Math.ceil((p.W + 2 * p.pw) / 4) * 4, 4 * (OWB - 1) * p.sw + 4 * NV);
  const xp = alloc(device, [p.N, p.C, Hp, Wp]);
  const gp = grid1d(xp.size, CONV_WG);
  device.dispatch({ name: 'conv2d_pad', wgsl: conv2dPadWgsl(), buffers: [x.buffer, xp.buffer], uniforms: uniforms(p, gp.gx, 0, 0, [Hp, Wp / 4, OgP / 4]), workgroups: gp.workgroups });
  const wt = alloc(device, [p.G, p.Cg, p.KH, p.KW, OgP]);
  const gw = grid1d(wt.size, CONV_WG);
  device.dispatch({ name: 'conv2d_pack_filter', wgsl: conv2dPackFilterWgsl(flip), buffers: [w.buffer, wt.buffer], uniforms: uniforms(p, gw.gx, 0, 0, [Hp, Wp / 4, OgP / 4]), workgroups: gw.workgroups });
  const y = alloc(device, [p.N, p.O, p.OH, p.OW]);
  const gx = Math.ceil((p.OH * OWB) / CONV_WG);
  const gy = p.G * (OgP / OB);
  const bufs = b ? [xp.buffer, wt.buffer, b.buffer, y.buffer] : [xp.buffer, wt.buffer, y.buffer];
  device.dispatch({
    name: 'conv2d_packed',
    wgsl: conv2dPackedWgsl({ OB, KW: p.KW, sw: p.sw, dlw: p.dlw, epi }),
    buffers: bufs,
    uniforms: uniforms(p, 0, 0, 0, [Hp, Wp / 4, OgP / 4]),
    workgroups: [gx, gy, p.N],
  });
  xp.dispose();
  wt.dispose();
  return y;
}

/** Forward kernel launch (no autograd). */
export function conv2dForward(x: Tensor, w: Tensor, b: Tensor | null, p: ConvGeom, impl: ConvImpl = 'fast', act?: string): Tensor {
  const device = x.device;
  const epi = { bias: b !== null, act };
  const OB = convBlock(p.Og);
  const gx = Math.ceil((p.OH * Math.ceil(p.OW / 4)) / CONV_WG);
  const gy = p.G * Math.ceil(p.Og / OB);
  if (impl === 'fast' && packedOk(p) && fits(gx, gy, p.N)) return packedForward(x, w, b, p, epi, false);
  const y = alloc(device, [p.N, p.O, p.OH, p.OW]);
  const bufs = b ? [x.buffer, w.buffer, b.buffer, y.buffer] : [x.buffer, w.buffer, y.buffer];
  if (impl !== 'naive' && fits(gx, gy, p.N)) {
    device.dispatch({ name: 'conv2d', wgsl: conv2dFastWgsl(OB, 4, epi), buffers: bufs, uniforms: uniforms(p), workgroups: [gx, gy, p.N] });
  } else {
    const g = grid1d(y.size, CONV_NAIVE_WG);
    device.dispatch({ name: 'conv2d_naive', wgsl: conv2dNaiveWgsl(epi), buffers: bufs, uniforms: uniforms(p, g.gx), workgroups: g.workgroups });
  }
  return y;
}

/** Input gradient dx [N, C, H, W] from dy [N, O, OH, OW] (no autograd). */
export function conv2dBackwardInput(dy: Tensor, w: Tensor, p: ConvGeom, impl: ConvImpl = 'fast'): Tensor {
  const device = dy.device;
  if (impl === 'fast' && p.sh === 1 && p.sw === 1 && p.ph <= (p.KH - 1) * p.dlh && p.pw <= (p.KW - 1) * p.dlw) {
    // NOTE: with stride 1 the input gradient is a forward conv of dy with the flipped,
    // channel-transposed filter and padding (K-1)*dilation - padding.
    const q: ConvGeom = {
      ...p, C: p.O, H: p.OH, W: p.OW, O: p.C, OH: p.H, OW: p.W, Cg: p.Og, Og: p.Cg,
      ph: (p.KH - 1) * p.dlh - p.ph, pw: (p.KW - 1) * p.dlw - p.pw,
    };
    if (packedOk(q) && fits(Math.ceil((q.OH * Math.ceil(q.OW / 4)) / CONV_WG), q.G * Math.ceil(q.Og / 4), q.N)) return packedForward(dy, w, null, q, { bias: false }, true);
  }
  const dx = alloc(device, [p.N, p.C, p.H, p.W]);
  const IB = convBlock(p.Cg);
  const gx = Math.ceil((Math.ceil(p.H / p.sh) * Math.ceil(Math.ceil(p.W / p.sw) / 4)) / CONV_WG);
  const gy = p.G * Math.ceil(p.Cg / IB);
  const gz = p.N * p.sh * p.sw;
  // NOTE: with stride > kernel extent some dx pixels get no tap at all; the fast kernel
  // still visits (and writes zeros to) every pixel of every phase.
  if (impl !== 'naive' && fits(gx, gy, gz)) {
    device.dispatch({ name: 'conv2d_backward_input', wgsl: conv2dBackwardInputFastWgsl(IB, 4), buffers: [dy.buffer, w.buffer, dx.buffer], uniforms: uniforms(p), workgroups: [gx, gy, gz] });
  } else {
    const g = grid1d(dx.size, CONV_NAIVE_WG);
    device.dispatch({ name: 'conv2d_backward_input_naive', wgsl: conv2dBackwardInputNaiveWgsl(), buffers: [dy.buffer, w.buffer, dx.buffer], uniforms: uniforms(p, g.gx), workgroups: g.workgroups });
  }
  return dx;
}

/** Target number of workgroups for the split reduction of the filter gradient. */
const DW_TARGET_GROUPS = 48;
/** Cap on the partials buffer (floats). */
const DW_MAX_PARTIAL = 1 << 24;

/** Filter gradient dw [O, Cg, KH, KW] from dy and x (no autograd). */
export function conv2dBackwardFilter(dy: Tensor, x: Tensor, p: ConvGeom, impl: ConvImpl = 'fast'): Tensor {
  const device = dy.device;
  const wShape = [p.O, p.Cg, p.KH, p.KW];
  const wSize = p.O * p.Cg * p.KH * p.KW;
  const P = p.Cg * p.KH;
  let wg = 8;
  while (wg < P && wg < CONV_WG) wg *= 2;
  const OB = convBlock(p.Og, p.KW <= 4 ? 8 : 4);
  const gx = Math.ceil(P / wg);
  const gy = p.G * Math.ceil(p.Og / OB);
  const R = p.N * p.OH;
  let S = Math.min(R, Math.max(1, Math.ceil(DW_TARGET_GROUPS / (gx * gy))), Math.max(1, Math.floor(DW_MAX_PARTIAL / wSize)), MAX_GROUPS);
  const rows = Math.ceil(R / S);
  S = Math.ceil(R / rows);
  if (impl !== 'naive' && fits(gx, gy)) {
    const part = alloc(device, S === 1 ? wShape : [S, wSize]);
    device.dispatch({
      name: 'conv2d_backward_filter',
      wgsl: conv2dBackwardFilterFastWgsl(OB, p.KW, wg),
      buffers: [dy.buffer, x.buffer, part.buffer],
      uniforms: uniforms(p, 0, rows, S),
      workgroups: [gx, gy, S],
    });
    if (S === 1) return part;
    const s = sum(part, 0);
    part.dispose();
    const r = s.view(wShape);
    s.dispose();
    return r;
  }
  const dw = alloc(device, wShape);
  const g = grid1d(wSize, CONV_NAIVE_WG);
  device.dispatch({ name: 'conv2d_backward_filter_naive', wgsl: conv2dBackwardFilterNaiveWgsl(), buffers: [dy.buffer, x.buffer, dw.buffer], uniforms: uniforms(p, g.gx), workgroups: g.workgroups });
  return dw;
}

/**
 * conv2d(x [N, C, H, W], w [O, C/groups, KH, KW], b? [O], opts) -> y [N, O, OH, OW] with
 * OH = floor((H + 2*ph - dlh*(KH-1) - 1)/sh) + 1 (same for OW). Records dx, dw and db.
 */
export function conv2d(x: Tensor, w: Tensor, b?: Tensor | null, opts: Conv2dOptions = {}): Tensor {
  const op = 'conv2d';
  const inputs = b ? [x, w, b] : [x, w];
  assertSameDevice(op, ...inputs);
  for (const [nm, t] of [['x', x], ['w', w], ['b', b]] as const) {
    if (t && t.dtype !== 'f32') throw new Error(`kinkless: ${op}: ${nm} must be f32, got an ${t.dtype} tensor of shape ${shapeStr(t.shape)}`);
  }
  const impl = opts.impl ?? 'fast';
  if (impl !== 'fast' && impl !== 'direct' && impl !== 'naive') throw new Error(`kinkless: ${op}: impl must be 'fast', 'direct' or 'naive', got ${String(impl)}`);
  const p = conv2dGeometry(x.shape, w.shape, opts, b ? b.shape : null);
  if (opts.act !== undefined) {
    if (typeof opts.act !== 'string' || !/fn\s+epi_act\s*\(/.test(opts.act)) throw new Error(`kinkless: ${op}: act must be WGSL defining fn epi_act(z: f32) -> f32`);
    if (needsGrad(inputs)) throw new Error(`kinkless: ${op}: the fused act epilogue is forward-only; apply the activation as a separate op when a gradient is needed`);
  }
  const y = conv2dForward(x, w, b ?? null, p, impl, opts.act);
  record(y, op, inputs, (dy) => [
    x.requiresGrad ? conv2dBackwardInput(dy, w, p, impl) : null,
    w.requiresGrad ? conv2dBackwardFilter(dy, x, p, impl) : null,
    ...(b ? [b.requiresGrad ? sum(dy, [0, 2, 3]) : null] : []),
  ]);
  return y;
}
