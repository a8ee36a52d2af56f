// Internal launcher of named elementwise ops (kernels/elementwise.ts families): picks the
// vec4 / scalar / broadcasting path, packs the uniforms and dispatches. Engine-only: not
// exported from engine/index.ts; every public op wraps it with its checks and autograd.
import { Tensor, assertSameDevice, type DType, type Shape } from '../tensor.ts';
import { EW_MAX_RANK, broadcastShapes, broadcastStrides, grid1d, type ElementwiseKernel, type EwFamily } from '../../kernels/elementwise.ts';
import { Uniforms, alloc, padTo } from './launch.ts';

export interface EwOptions {
  out?: DType;
  /** Up to 4 f32 scalars, s.x .. s.w in the expression. */
  scalars?: number[];
  /** Output shape (defaults to the broadcast of the inputs). */
  shape?: Shape;
}

function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Launch `op` of `family` over broadcast inputs (no autograd). */
export function launchEw<K extends string>(family: EwFamily<K>, op: K, inputs: Tensor[], opts: EwOptions = {}): Tensor {
  const def = family.ops[op];
  if (!def) throw new Error(`kinkless: internal error: no op "${op}" in elementwise family "${family.name}"`);
  if (inputs.length !== def.arity) throw new Error(`kinkless: internal error: ${family.name}.${op} takes ${def.arity} inputs, got ${inputs.length}`);
  if ((opts.scalars?.length ?? 0) > 4) throw new Error(`kinkless: internal error: ${family.name}.${op}: at most 4 scalars, got ${opts.scalars!.length}`);
  const device = assertSameDevice(op, ...inputs);
  const outShape = opts.shape ?? broadcastShapes(op, ...inputs.map((t) => t.shape));
  const out = alloc(device, outShape, opts.out ?? 'f32');
  const n = out.size;
  if (n === 0) return out;
  const contiguous = inputs.every((t) => sameShape(t.shape, outShape));
  const mode: ElementwiseKernel['mode'] = contiguous ? (n % 4 === 0 ? 'vec4' : 'flat') : 'broadcast';
  if (outShape.length > EW_MAX_RANK && mode === 'broadcast') throw new Error(`kinkless: ${op}: rank ${outShape.length} exceeds ${EW_MAX_RANK}`);
  const kernel = family.kernel({ op, inputs: inputs.map((t) => t.dtype), out: out.dtype, mode });
  const threads = mode === 'vec4' ? n / 4 : n;
  const g = grid1d(threads);
  const u = new Uniforms().u32(threads, outShape.length, g.gx, 0);
  u.u32(...padTo(outShape, 8, 1));
  for (const t of inputs) u.u32(...padTo(mode === 'broadcast' ? broadcastStrides(t.shape, outShape) : [], 8, 0));
  u.f32(...padTo(opts.scalars ?? [], 4, 0));
  const bytes = 4 * (n + inputs.reduce((a, t) => a + t.size, 0));
  device.dispatch({ kernel, buffers: [...inputs.map((t) => t.buffer), out.buffer], uniforms: u.bytes(), workgroups: g.workgroups, info: { op: `${family.name}.${op}`, geometry: `n${n} ${mode}`, bytes } });
  return out;
}
