// Seeded weight initialisation (Kaiming / Xavier, uniform or normal), computed on the host
// with the counter-based Rng so the same seed gives the same weights everywhere.
import { Rng, deriveSeed } from './data/loader.ts';

export type InitKind = 'kaiming_uniform' | 'kaiming_normal' | 'xavier_uniform' | 'xavier_normal' | 'zeros' | 'ones' | 'uniform';

/** fan_in / fan_out of a weight of shape [out, in, ...kernel]. */
export function fans(shape: readonly number[]): { fanIn: number; fanOut: number } {
  if (shape.length < 2) return { fanIn: shape[0] ?? 1, fanOut: shape[0] ?? 1 };
  const rf = shape.slice(2).reduce((a, b) => a * b, 1);
  return { fanIn: shape[1]! * rf, fanOut: shape[0]! * rf };
}

function normals(rng: Rng, n: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i += 2) {
    // Box-Muller; u1 in (0, 1] so log is finite.
    const u1 = 1 - rng.next();
    const u2 = rng.next();
    const r = Math.sqrt(-2 * Math.log(u1));
    out[i] = r * Math.cos(2 * Math.PI * u2);
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * u2);
  }
  return out;
}

/** Fill `out` with zero-mean values of standard deviation `std`: uniform on [-sqrt(3) std, sqrt(3) std) or normal. */
function fillWithStd(out: Float32Array, rng: Rng, uniform: boolean, std: number): Float32Array {
  const n = out.length;
  if (uniform) {
    const b = Math.sqrt(3) * std;
    for (let i = 0; i < n; i++) out[i] = (2 * rng.next() - 1) * b;
  } else {
    const z = normals(rng, n);
    for (let i = 0; i < n; i++) out[i] = z[i]! * std;
  }
  return out;
}

/**
 * Initial values for a tensor of `shape`. Kaiming uses gain sqrt(2) (ReLU) by default,
 * `a` = negative slope as in PyTorch: gain = sqrt(2 / (1 + a^2)). PyTorch's default
 * Linear/Conv init is kaiming_uniform with a = sqrt(5) (bound 1/sqrt(fan_in)).
 */
export function initValues(kind: InitKind, shape: readonly number[], seed: number, opts: { a?: number; gain?: number; bound?: number } = {}): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  const rng = new Rng(deriveSeed(seed, n));
  const { fanIn, fanOut } = fans(shape);
  switch (kind) {
    case 'zeros':
      return out;
    case 'ones':
      return out.fill(1);
    case 'uniform': {
      const b = opts.bound ?? 1;
      for (let i = 0; i < n; i++) out[i] = (2 * rng.next() - 1) * b;
      return out;
    }
    case 'kaiming_uniform':
    case 'kaiming_normal': {
      const a = opts.a ?? 0;
      const gain = opts.gain ?? Math.sqrt(2 / (1 + a * a));
      return fillWithStd(out, rng, kind === 'kaiming_uniform', gain / Math.sqrt(fanIn));
    }
    case 'xavier_uniform':
    case 'xavier_normal': {
      const gain = opts.gain ?? 1;
      return fillWithStd(out, rng, kind === 'xavier_uniform', gain * Math.sqrt(2 / (fanIn + fanOut)));
    }
    default:
      throw new Error(`kinkless: init: unknown kind "${String(kind)}"; expected one of kaiming_uniform, kaiming_normal, xavier_uniform, xavier_normal, zeros, ones, uniform`);
  }
}
