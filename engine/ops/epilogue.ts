// The activation epilogue of the fused matmul / conv2d launches: turns an activation spec
// into the `fn epi_act` WGSL the kernels include (built by kernels/epilogue.ts), the
// buffers the epilogue binds (a learnable params tensor) and the four f32 uniform words of
// the kernels' `act` field.
import type { Tensor } from '../tensor.ts';
import type { ActivationKind } from '../../kernels/activations.ts';
import { epilogueActWgsl } from '../../kernels/epilogue.ts';
import { activationEpilogue, type ActivationSpec, type ResolvedActivation } from './activation.ts';

/** A fused activation for a forward launch: y = act(z); with saveZ, z is written too. */
export interface FusedAct {
  /** The activation (fused.ts passes the ResolvedActivation it resolved once). */
  spec: ActivationSpec | ActivationKind | ResolvedActivation;
  /** Also write the pre-activation z (what the backward needs). */
  saveZ: boolean;
}

/** What one kernel launch needs to apply an epilogue. */
export interface EpilogueLaunch {
  /** WGSL defining `fn epi_act(z: f32) -> f32` (and, for tensor params, their binding). */
  act: string;
  saveZ: boolean;
  /** Buffers to append to the launch's bindings (from the binding given to epilogueLaunch). */
  buffers: GPUBuffer[];
  /** The `act: vec4<f32>` uniform words. */
  uniformF32: [number, number, number, number];
  /** Autograd inputs the epilogue adds (the learnable params tensor, if any). */
  inputs: Tensor[];
}

/**
 * Epilogue launch data for `a` (undefined: none). `binding` is the first binding free after
 * the kernel's own outputs (matmulEpilogueBinding / convEpilogueBinding / gemmEpilogueBinding).
 * NOTE: the epilogue evaluates act_f(z, act_params()) per element: uniform params come from
 * u.act.xy; tensor params are read (and constrained) in the shader, so no readback.
 */
export function epilogueLaunch(op: string, a: FusedAct | undefined, binding: number): EpilogueLaunch | null {
  if (a === undefined) return null;
  const ep = activationEpilogue(op, a.spec, { binding, uniformField: 'u.act' });
  return { act: epilogueActWgsl(ep.wgsl), saveZ: a.saveZ, buffers: ep.buffers, uniformF32: ep.uniformF32, inputs: ep.inputs };
}
