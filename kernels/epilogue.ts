// WGSL of the activation epilogue shared by the fused matmul / conv2d kernels: wraps an
// activation snippet (defining `act_f(z, p)` and `act_params()`, from
// engine/ops/activation.ts) into the `fn epi_act(z: f32) -> f32` those kernels include.
// engine/ops/epilogue.ts launches it (buffers, uniform words, autograd inputs).
import { wgslMath } from './wgsl_math.ts';

/** `fn epi_act` around `activationWgsl` (which defines act_f and act_params), with the math helpers it uses. */
export function epilogueActWgsl(activationWgsl: string): string {
  return `${wgslMath()}
${activationWgsl}
fn epi_act(z: f32) -> f32 {
  return act_f(z, act_params());
}`;
}
