// Bench-only A/B baseline for the GELU (erf) forward: the activation forward kernel with
// the value taken from k_gelu_parts(x).x (6 octave pieces for R plus the Taylor branch near
// 0, the forward before k_gelu_f; kernels/wgsl_gelu_forward.ts; appended from the bench-only
// kernels/wgsl_gelu_parts_before.ts, no longer in wgslMath()) and k_exp_neg_half_sq's k
// from the saturating u32(kf) as before (the same k), dispatched exactly as
// engine/ops/activation.ts dispatches the real one (vec4, same workgroup size, same
// uniforms). Rows that use it say "before" in their name; the engine never uses it.
import type { Tensor } from '../engine/tensor.ts';
import * as E from '../engine/index.ts';
import { actInfo, canVec4, resolveActivation, uniformsFor } from '../engine/ops/activation.ts';
import { ACT_WG, activationForwardWgsl, type ActKernelConfig } from '../kernels/activation_kernels.ts';
import { grid1d } from '../kernels/elementwise.ts';
import { defineKernel, reads, writes } from '../kernels/kernel.ts';
import { wgslMath } from '../kernels/wgsl_math.ts';
import { WGSL_GELU_PARTS_BEFORE } from '../kernels/wgsl_gelu_parts_before.ts';

const CFG: ActKernelConfig = { kind: 'gelu', params: 'none', surrogate: null, vec4: true };
const NEW_BODY = 'return k_gelu_f(x);';
const OLD_BODY = 'return k_gelu_parts(x).x;';
const NEW_K = 'let k = bitcast<u32>(kf + 8388608.0) & 0x3ffu;';
const OLD_K = 'let k = u32(kf);';

const geluBeforeKernel = defineKernel<null>({
  name: 'bench_gelu_forward_before',
  label: () => 'bench_gelu_forward_before',
  key: () => 'v4',
  bindings: () => [...reads('x'), ...writes('y')],
  build: () => {
    const src = activationForwardWgsl(CFG, wgslMath());
    for (const want of [NEW_BODY, NEW_K]) {
      if (!src.includes(want)) throw new Error(`bench gelu baseline: the forward kernel no longer contains "${want}"`);
    }
    return src.replace(NEW_BODY, OLD_BODY).replace(NEW_K, OLD_K) + WGSL_GELU_PARTS_BEFORE;
  },
});

/** y = GELU(x) with the baseline kernel (x: f32, vec4 path as the engine's, no autograd). */
export function geluForwardBefore(x: Tensor): Tensor {
  const n = x.size;
  const y = E.Tensor.empty(x.device, [...x.shape]);
  if (!canVec4(n, [x.buffer, y.buffer], true)) throw new Error(`geluForwardBefore: the buffers of x (size ${n}) do not hold ceil(size / 4) vec4s`);
  const nv = Math.ceil(n / 4);
  const g = grid1d(nv, ACT_WG);
  const r = resolveActivation('geluForwardBefore', 'gelu');
  x.device.dispatch({
    kernel: geluBeforeKernel(null),
    info: actInfo('activation', x, 2 * n * 4),
    buffers: [x.buffer, y.buffer],
    uniforms: uniformsFor(n, nv, g.gx, r),
    workgroups: g.workgroups,
  });
  return y;
}
