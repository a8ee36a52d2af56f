// Fused optimizer update kernels: each parameter's update (weight decay, momentum or Adam
// moments, gradient-norm scale) is one pass over p, g and the state, updated in place.
// The gradient scale comes from a one-element storage buffer, so clipping needs no readback.
// Launched by engine/ops/optim.ts through the descriptors at the end of this file.
import { defineKernel, reads, writes } from './kernel.ts';
import { gridMain } from './wgsl_grid.ts';

export const OPT_WG = 256;

/**
 * SGD with momentum (PyTorch semantics, dampening 0):
 *   g' = g*scale + wd*p;  v = mu*v + g';  d = nesterov ? g' + mu*v : v;  p -= lr*d.
 * Uniforms: n, gx, lr, mu, wd, nesterov(0/1).
 */
export function sgdWgsl(): string {
  return `// sgd_update
struct U { n: u32, gx: u32, lr: f32, mu: f32, wd: f32, nesterov: u32, p0: u32, p1: u32 };
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read> gscale: array<f32>;
@group(0) @binding(3) var<storage, read_write> p: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;
${gridMain(OPT_WG, 'i', 'u.n')}
  let pi = p[i];
  let gi = g[i] * gscale[0] + u.wd * pi;
  let vi = u.mu * v[i] + gi;
  v[i] = vi;
  let d = select(vi, gi + u.mu * vi, u.nesterov == 1u);
  p[i] = pi - u.lr * d;
}
`;
}

/**
 * Adam / AdamW: m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g^2;
 *   p -= lr * (m/bc1) / (sqrt(v/bc2) + eps)   (+ decoupled: p -= lr*wd*p for AdamW;
 *   Adam adds wd*p to g instead). Uniforms: n, gx, lr, b1, b2, eps, wd, bc1, bc2, decoupled.
 */
export function adamWgsl(): string {
  return `// adam_update
struct U { n: u32, gx: u32, lr: f32, b1: f32, b2: f32, eps: f32, wd: f32, bc1: f32, bc2: f32, decoupled: u32, p0: u32, p1: u32 };
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read> gscale: array<f32>;
@group(0) @binding(3) var<storage, read_write> p: array<f32>;
@group(0) @binding(4) var<storage, read_write> m: array<f32>;
@group(0) @binding(5) var<storage, read_write> v: array<f32>;
${gridMain(OPT_WG, 'i', 'u.n')}
  var pi = p[i];
  var gi = g[i] * gscale[0];
  if (u.decoupled == 1u) { pi = pi - u.lr * u.wd * pi; } else { gi = gi + u.wd * pi; }
  let mi = u.b1 * m[i] + (1.0 - u.b1) * gi;
  let vi = u.b2 * v[i] + (1.0 - u.b2) * gi * gi;
  m[i] = mi;
  v[i] = vi;
  p[i] = pi - u.lr * (mi / u.bc1) / (sqrt(vi / u.bc2) + u.eps);
}
`;
}

/**
 * Clip factor from a squared norm: scale = min(1, maxNorm / (sqrt(sq) + 1e-6)).
 * NOTE: the 1e-6 matches torch.nn.utils.clip_grad_norm_. Uniforms: maxNorm.
 */
export function clipScaleWgsl(): string {
  return `// clip_scale
struct U { maxNorm: f32, p0: u32, p1: u32, p2: u32 };
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> sq: array<f32>;
@group(0) @binding(2) var<storage, read_write> scale: array<f32>;
@compute @workgroup_size(1)
fn main() {
  scale[0] = min(1.0, u.maxNorm / (sqrt(max(sq[0], 0.0)) + 1e-6));
}
`;
}

/** Descriptors (no compile-time parameters: one pipeline each). */
export const sgdKernel = defineKernel<void>({ name: 'sgd_update', key: () => '', bindings: () => [...reads('g', 'gscale'), ...writes('p', 'v')], build: sgdWgsl });
export const adamKernel = defineKernel<void>({ name: 'adam_update', key: () => '', bindings: () => [...reads('g', 'gscale'), ...writes('p', 'm', 'v')], build: adamWgsl });
export const clipScaleKernel = defineKernel<void>({ name: 'clip_scale', key: () => '', bindings: () => [...reads('sq'), ...writes('scale')], build: clipScaleWgsl });
