// Shared model plumbing: the config every model takes (activation as a constructor
// option everywhere), and a helper that builds activation layers with shared params.
import { Tensor, type Device } from '../../engine/index.ts';
import { Activation, makeActivationParams, type ActivationSpec } from '../activation.ts';
import { resolveActivation, type ActivationKind } from '../../engine/index.ts';
import { Module } from '../module.ts';

export interface ModelConfig {
  activation?: ActivationSpec | ActivationKind;
  inChannels?: number;
  numClasses?: number;
  /** Per-channel input normalisation applied inside the model (inputs stay in [0,1]). */
  normalize?: { mean: number[]; std: number[] };
  seed?: number;
}

/** Builds Activation layers; with a shared learnable spec they all use one parameter tensor. */
export class ActivationFactory {
  readonly shared: Tensor | null;
  constructor(
    private readonly device: Device,
    readonly spec: ActivationSpec | ActivationKind,
    owner: { registerShared(t: Tensor): void },
  ) {
    const r = resolveActivation('ActivationFactory', spec);
    this.shared = r.learnable && r.shared ? makeActivationParams(device, r) : null;
    if (this.shared) owner.registerShared(this.shared);
  }
  make(): Activation {
    return new Activation(this.device, this.spec, this.shared);
  }
}

/** Base for models: exposes shared activation parameter registration. */
export abstract class Model extends Module {
  abstract readonly config: ModelConfig & { name: string };
  registerShared(t: Tensor): void {
    this.registerParameter('act_params', t);
  }
}
