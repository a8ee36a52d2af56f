// Module and Parameter: named parameters and buffers, train/eval mode, state dicts for
// checkpoints. Parameters and buffers are kept out of scopes and owned by their module.
import { Tensor, keep, type Device, type Shape } from '../engine/index.ts';
import type { NamedArray } from './checkpoint.ts';

/** A learnable tensor: requiresGrad, exempt from scopes, tagged with a group hint. */
export function parameter(device: Device, data: Float32Array, shape: Shape, group: ParamGroupHint = 'weight'): Tensor {
  const t = keep(Tensor.from(device, data, shape, 'f32'));
  t.requiresGrad = true;
  paramHints.set(t, group);
  return t;
}

/** Which optimizer group a parameter belongs to by default. */
export type ParamGroupHint = 'weight' | 'bias' | 'bn' | 'activation';
const paramHints = new WeakMap<Tensor, ParamGroupHint>();
export function paramHint(t: Tensor): ParamGroupHint {
  return paramHints.get(t) ?? 'weight';
}

export abstract class Module {
  training = true;
  private readonly _params = new Map<string, Tensor>();
  private readonly _buffers = new Map<string, Tensor>();
  private readonly _children = new Map<string, Module>();

  abstract forward(x: Tensor): Tensor;

  /** Alias for forward. */
  call(x: Tensor): Tensor {
    return this.forward(x);
  }

  protected registerParameter(name: string, t: Tensor): Tensor {
    this._params.set(name, t);
    t.name = name;
    return t;
  }

  protected registerBuffer(name: string, t: Tensor): Tensor {
    this._buffers.set(name, keep(t));
    t.name = name;
    return t;
  }

  protected registerModule<M extends Module>(name: string, m: M): M {
    this._children.set(name, m);
    return m;
  }

  children(): [string, Module][] {
    return [...this._children];
  }

  /** Parameters with dotted names ("0.weight", "block1.conv.weight"); shared tensors appear once. */
  namedParameters(prefix = '', seen = new Set<Tensor>()): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [n, p] of this._params) {
      if (seen.has(p)) continue;
      seen.add(p);
      out.push([prefix + n, p]);
    }
    for (const [n, c] of this._children) out.push(...c.namedParameters(`${prefix}${n}.`, seen));
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, p]) => p);
  }

  namedBuffers(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [n, b] of this._buffers) out.push([prefix + n, b]);
    for (const [n, c] of this._children) out.push(...c.namedBuffers(`${prefix}${n}.`));
    return out;
  }

  /** Set train (true) or eval (false) mode recursively. */
  train(on = true): this {
    this.training = on;
    for (const [, c] of this._children) c.train(on);
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  zeroGrad(): void {
    for (const p of this.parameters()) p.zeroGrad();
  }

  parameterCount(): number {
    return this.parameters().reduce((a, p) => a + p.size, 0);
  }

  /** Parameters and buffers read back to the host, by name. */
  async stateDict(): Promise<Record<string, NamedArray>> {
    const out: Record<string, NamedArray> = {};
    for (const [n, t] of [...this.namedParameters(), ...this.namedBuffers()]) {
      const data = await t.data();
      out[n] = { dtype: t.dtype === 'f32' ? 'F32' : 'I32', shape: [...t.shape], data: data instanceof Float32Array ? data : (data as Int32Array) };
    }
    return out;
  }

  /** Load values into the existing parameters/buffers; errors name the tensor on any mismatch. */
  loadStateDict(state: Record<string, NamedArray>, source = 'state dict'): void {
    const targets = [...this.namedParameters(), ...this.namedBuffers()];
    const problems: string[] = [];
    for (const [n, t] of targets) {
      const s = state[n];
      if (!s) {
        problems.push(`missing tensor "${n}"`);
        continue;
      }
      const want = t.dtype === 'f32' ? 'F32' : 'I32';
      if (s.dtype !== want) problems.push(`tensor "${n}": dtype ${s.dtype}, expected ${want}`);
      else if (s.shape.length !== t.shape.length || s.shape.some((d, i) => d !== t.shape[i])) {
        problems.push(`tensor "${n}": shape [${s.shape.join(', ')}], expected [${t.shape.join(', ')}]`);
      }
    }
    const known = new Set(targets.map(([n]) => n));
    for (const n of Object.keys(state)) if (!known.has(n)) problems.push(`unexpected tensor "${n}"`);
    if (problems.length) throw new Error(`kinkless: cannot load ${source}: ${problems.slice(0, 10).join('; ')}`);
    for (const [n, t] of targets) t.device.queue.upload(t.buffer, state[n]!.data as Float32Array | Int32Array);
  }

  /** Free every parameter and buffer. */
  dispose(): void {
    for (const p of this.parameters()) p.dispose();
    for (const [, b] of this.namedBuffers()) b.dispose();
  }
}

/** `model` and every module below it, depth-first (a module before its children, in registration order). */
export function allModules(model: Module): Module[] {
  const out: Module[] = [];
  const walk = (m: Module): void => {
    out.push(m);
    for (const [, c] of m.children()) walk(c);
  };
  walk(model);
  return out;
}

/**
 * Records the training flag of `model` and every module below it; the returned function
 * puts each flag back (around a temporary train() / eval() switch).
 */
export function saveModes(model: Module): () => void {
  const flags = allModules(model).map((m) => [m, m.training] as const);
  return () => {
    for (const [m, on] of flags) m.training = on;
  };
}
