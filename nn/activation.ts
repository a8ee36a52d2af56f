// Activation module built from an ActivationSpec (engine/ops/activation.ts, the one spec
// type): kind, parameters (fixed or learnable), shared by a whole network (Dai et al.) or
// owned by one layer (SAT), and an optional surrogate derivative (e.g. ReLU forward with a
// softplus(a=10) backward, SAT's ablation). The spec is resolved once, at construction.
import { Tensor, type Device } from '../engine/index.ts';
import { activation, resolveActivation, type ActivationSpec, type ResolvedActivation } from '../engine/ops/activation.ts';
import { unconstrain, type ActivationKind } from '../engine/index.ts';
import { Module, allModules, parameter } from './module.ts';

export type { ActivationSpec, ResolvedActivation };

/**
 * Creates the learnable raw-parameter tensor for a spec (null when not learnable): [P], or
 * [channels, P] with spec.channels (one set per channel of the input's dim 1, every row the
 * same initial values), each effective initial value mapped back through its parameter's
 * constraint (the table's:
 * SmoothReLU a = w^2 starts at w = 20; PReLU raw, PAF init 0 where abs would freeze it;
 * the rest |raw|).
 */
export function makeActivationParams(device: Device, spec: ActivationSpec | ActivationKind | ResolvedActivation): Tensor | null {
  const r = resolveActivation('Activation', spec);
  if (!r.learnable) return null;
  const raw = r.params.map((v, i) => {
    try {
      return unconstrain(r.def.params[i]!.constraint, v);
    } catch (e) {
      throw new Error(`kinkless: Activation ${r.kind}: learnable ${r.def.paramNames[i]}: ${(e as Error).message}`);
    }
  });
  const C = r.channels;
  if (C === null) return parameter(device, Float32Array.from(raw), [raw.length], 'activation');
  const rows = new Float32Array(C * raw.length);
  for (let c = 0; c < C; c++) rows.set(raw, c * raw.length);
  return parameter(device, rows, [C, raw.length], 'activation');
}

/**
 * Called with an Activation layer and its input z (the pre-activation) at the start of the
 * layer's forward. z is valid only during the call and inside the caller's scope: keep()
 * anything derived from it, never dispose z.
 */
export type ActivationObserver = (layer: Activation, z: Tensor) => void;

// Per-layer observer registrations (one entry object per observeActivations call, so the
// same function registered twice is removed once per disposer). Keyed by layer, weakly:
// no process-wide hook, and a dropped model takes its entries with it.
const OBSERVERS = new WeakMap<Activation, Set<{ fn: ActivationObserver }>>();

/**
 * Observe the input of every Activation layer of `model` (or of the given layers) at each
 * forward, for studies (adversarial/study counts the pre-activations near ReLU's kink).
 * Returns a disposer that removes exactly this registration (idempotent). While a layer is
 * observed, Sequential runs it unfused so that z exists; unobserved layers cost nothing.
 * Layers added to the model afterwards are not observed.
 */
export function observeActivations(model: Module | readonly Activation[], fn: ActivationObserver): () => void {
  if (typeof fn !== 'function') throw new Error(`kinkless: observeActivations: fn must be a function, got ${String(fn)}`);
  const layers = model instanceof Module ? activationLayers(model) : [...model];
  const entry = { fn };
  for (const l of layers) {
    if (!(l instanceof Activation)) throw new Error(`kinkless: observeActivations: expected a Module or Activation layers, got ${String(l)}`);
    let set = OBSERVERS.get(l);
    if (!set) OBSERVERS.set(l, (set = new Set()));
    set.add(entry);
  }
  let live = true;
  return () => {
    if (!live) return;
    live = false;
    for (const l of layers) {
      const set = OBSERVERS.get(l);
      set?.delete(entry);
      if (set && set.size === 0) OBSERVERS.delete(l);
    }
  };
}

/** Whether observeActivations currently observes this layer. */
export function isObserved(layer: Activation): boolean {
  return OBSERVERS.has(layer);
}

export class Activation extends Module {
  /** The resolved spec (host params: the initial values when learnable). */
  readonly spec: ResolvedActivation;
  readonly params: Tensor | null;
  /** What forward() applies with the surrogate on / off (resolved once, here). */
  private readonly applied: { on: ResolvedActivation; off: ResolvedActivation };
  /**
   * `sharedParams`: the network-wide parameter tensor (when spec.shared); it is
   * registered by the model, not by this layer.
   */
  constructor(device: Device, spec: ActivationSpec | ActivationKind, sharedParams?: Tensor | null) {
    super();
    this.spec = resolveActivation('Activation', spec);
    if (this.spec.raw) throw new Error(`kinkless: Activation ${this.spec.kind}: pass params (initial values) and learnable, not a raw tensor (the layer creates it)`);
    if (this.spec.learnable) {
      if (this.spec.shared) {
        if (!sharedParams) throw new Error(`kinkless: Activation ${this.spec.kind}: shared learnable parameters must be created by the model (makeActivationParams) and passed in`);
        this.params = sharedParams;
      } else this.params = this.registerParameter('params', makeActivationParams(device, this.spec)!);
    } else this.params = null;
    const on = this.params ? this.spec.with({ raw: this.params }) : this.spec;
    this.applied = { on, off: on.with({ backward: null }) };
  }
  /** Use the surrogate derivative (when the spec has one) in forwards recorded from now on. */
  surrogateOn = true;

  /** The resolved spec forward() applies now (the surrogate only while surrogateOn). */
  engineSpec(): ResolvedActivation {
    return this.surrogateOn ? this.applied.on : this.applied.off;
  }

  /**
   * The spec a Conv2d / Linear right before this layer may fuse into its epilogue
   * (Sequential does so by default), or null when this layer must run on its own: it is
   * observed (observeActivations: the observer must see z at this layer's forward), it has
   * per-channel params (the fused epilogues apply one parameter set), or a subclass
   * overrides forward. Surrogates and learnable params fuse: the fused op reads the
   * surrogate state here, at forward time, exactly as forward() does.
   */
  fusableSpec(): ResolvedActivation | null {
    if (OBSERVERS.has(this) || this.forward !== Activation.prototype.forward) return null;
    if (this.applied.on.channels !== null) return null; // per-channel params: the epilogues take one set
    return this.engineSpec();
  }

  forward(x: Tensor): Tensor {
    const obs = OBSERVERS.get(this);
    if (obs) for (const o of [...obs]) o.fn(this, x);
    return activation(x, this.engineSpec());
  }
}

/** Every Activation layer in a model (depth-first). */
export function activationLayers(m: Module): Activation[] {
  return allModules(m).filter((x): x is Activation => x instanceof Activation);
}

/**
 * Switch the surrogate derivative on or off for every activation in the model (SAT's
 * ablation: separate switches for the attacker's and the optimizer's backward pass).
 * Returns the previous states so they can be restored.
 */
export function setSurrogate(m: Module, on: boolean): boolean[] {
  const layers = activationLayers(m);
  const prev = layers.map((l) => l.surrogateOn);
  for (const l of layers) l.surrogateOn = on;
  return prev;
}
