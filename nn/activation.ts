// Activation module built from an ActivationSpec: kind, parameters (fixed or learnable),
// shared by a whole network (Dai et al.) or owned by one layer (SAT), and an optional
// surrogate derivative (e.g. ReLU forward with a softplus(a=10) backward, SAT's ablation).
import { Tensor, type Device } from '../engine/index.ts';
import { activation, type ActivationSpec as EngineActivationSpec } from '../engine/ops/activation.ts';
import { activationDef, type ActivationKind } from '../kernels/activations.ts';
import { Module, parameter } from './module.ts';

export interface ActivationSpec {
  kind: ActivationKind;
  /** Parameter values (effective); defaults from the activation table. */
  params?: number[];
  /** Learn the parameters (default: the table's hint, e.g. true for pssilu, prelu). */
  learnable?: boolean;
  /** One parameter set for the whole network (true, PAF) or one per layer (false, SAT). */
  shared?: boolean;
  /** Surrogate derivative: forward of `kind`, derivative of this spec. */
  backward?: { kind: ActivationKind; params?: number[] };
}

/** Validate a spec and fill in defaults; errors name the field and the value. */
export function resolveSpec(spec: ActivationSpec | ActivationKind): Required<Omit<ActivationSpec, 'backward'>> & Pick<ActivationSpec, 'backward'> {
  const s: ActivationSpec = typeof spec === 'string' ? { kind: spec } : spec;
  const def = activationDef(s.kind);
  const params = s.params ?? def.defaults;
  if (params.length !== def.paramNames.length) {
    throw new Error(`kinkless: activation ${s.kind}: expects ${def.paramNames.length} parameter(s) [${def.paramNames.join(', ')}], got ${params.length}`);
  }
  for (const p of params) if (!Number.isFinite(p)) throw new Error(`kinkless: activation ${s.kind}: parameters must be finite numbers, got ${p}`);
  if (s.backward) {
    const bd = activationDef(s.backward.kind);
    const bp = s.backward.params ?? bd.defaults;
    if (bp.length !== bd.paramNames.length) throw new Error(`kinkless: surrogate ${s.backward.kind}: expects ${bd.paramNames.length} parameter(s), got ${bp.length}`);
  }
  const learnable = (s.learnable ?? def.learnable) && def.paramNames.length > 0;
  return { kind: s.kind, params, learnable, shared: s.shared ?? false, backward: s.backward };
}

/** Creates the learnable raw-parameter tensor for a spec (null when not learnable). */
export function makeActivationParams(device: Device, spec: ActivationSpec | ActivationKind): Tensor | null {
  const r = resolveSpec(spec);
  if (!r.learnable) return null;
  const c = paramConstraint(r.kind);
  const raw = c === 'square' ? r.params.map((v) => Math.sqrt(v)) : r.params;
  return parameter(device, Float32Array.from(raw), [raw.length], 'activation');
}

/**
 * How learnable raw parameters map to effective ones, following the reference code:
 * SmoothReLU a = w^2 (SAT, w init 20); PReLU raw (PAF init 0, where abs would freeze it);
 * everything else |raw| (PAF).
 */
export function paramConstraint(kind: ActivationKind): 'abs' | 'square' | 'none' {
  return kind === 'smooth_relu' ? 'square' : kind === 'prelu' ? 'none' : 'abs';
}

export class Activation extends Module {
  readonly spec: ReturnType<typeof resolveSpec>;
  readonly params: Tensor | null;
  /**
   * `sharedParams`: the network-wide parameter tensor (when spec.shared); it is
   * registered by the model, not by this layer.
   */
  constructor(device: Device, spec: ActivationSpec | ActivationKind, sharedParams?: Tensor | null) {
    super();
    this.spec = resolveSpec(spec);
    if (this.spec.learnable) {
      if (this.spec.shared) {
        if (!sharedParams) throw new Error(`kinkless: Activation ${this.spec.kind}: shared learnable parameters must be created by the model (makeActivationParams) and passed in`);
        this.params = sharedParams;
      } else this.params = this.registerParameter('params', makeActivationParams(device, this.spec)!);
    } else this.params = null;
  }
  /** Use the surrogate derivative (when the spec has one) in forwards recorded from now on. */
  surrogateOn = true;

  /**
   * Optional global observer of every Activation layer's input (the pre-activation z), called
   * at the start of forward(). For studies only (adversarial/study/kink.ts counts the
   * pre-activations near ReLU's kink during attacks); undefined (the default) costs nothing.
   * z is valid only during the call and inside the caller's scope: keep() anything derived
   * from it, never dispose z. Set it back to undefined when done.
   */
  static observe: ((layer: Activation, z: Tensor) => void) | undefined = undefined;

  /** The engine spec forward() applies now (the surrogate only while surrogateOn). */
  engineSpec(): EngineActivationSpec {
    return {
      kind: this.spec.kind,
      params: this.params ?? this.spec.params,
      constraint: this.params ? paramConstraint(this.spec.kind) : 'none',
      backward: this.surrogateOn ? this.spec.backward : undefined,
    };
  }

  /**
   * The spec a Conv2d / Linear right before this layer may fuse into its epilogue
   * (Sequential does so by default), or null when this layer must run on its own:
   * Activation.observe is set (it must see z at this layer's forward), or a subclass
   * overrides forward. Surrogates and learnable params fuse: the fused op reads the
   * surrogate state here, at forward time, exactly as forward() does.
   */
  fusableSpec(): EngineActivationSpec | null {
    if (Activation.observe !== undefined || this.forward !== Activation.prototype.forward) return null;
    return this.engineSpec();
  }

  forward(x: Tensor): Tensor {
    Activation.observe?.(this, x);
    return activation(x, this.engineSpec());
  }
}

/** Every Activation layer in a model (depth-first). */
export function activationLayers(m: Module): Activation[] {
  const out: Activation[] = [];
  const walk = (mod: Module) => {
    if (mod instanceof Activation) out.push(mod);
    for (const [, c] of mod.children()) walk(c);
  };
  walk(m);
  return out;
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
