// Fused activation kernels (engine/ops/activation.ts) on 4M and 16M floats (1M with
// --quick), forward and backward (dx, plus the param grads for PSSiLU), against
//   (a) the same function composed from engine primitive ops (mul, div, exp, add, ...)
//       with autograd through the composition, and
//   (c) the plain vec4 device copy kernel (kernels/copy.ts).
// Rows: `copy N` (bytes = 2 N floats); `<act> fwd|bwd N fused` with baseline = the copy
// kernel, so its ratio is the FRACTION OF COPY BANDWIDTH reached (bytes: forward reads x
// and writes y = 2 N floats; backward reads x, dy and writes dx = 3 N floats); then
// `<act> fwd|bwd N composed` with baseline = the fused row and the same logical bytes,
// so its ratio is composed / fused throughput, i.e. 1 / (speedup of the fused kernel);
// `<act> fwd+bwd N one-pass` is activationValueAndGrad (y, dx and the param grads from one
// read of x and dy; bytes 4 N floats), the one-kernel counterpart of the fwd + bwd rows.
// GELU: there is no erf primitive op, so the composition is the tanh form (cheaper than
// erf); the fused kernel is the exact erf form. The composed backward times grad()
// through a graph built once in setup (as autograd would after one forward).
import type { Device } from '../engine/device.ts';
import * as E from '../engine/index.ts';
import { activation, activationBackwardFromZ, type ActivationSpec } from '../engine/ops/activation.ts';
import { activationValueAndGrad } from '../engine/ops/activation_value_grad.ts';
import { Uniforms } from '../engine/ops/launch.ts';
import { grid1d } from '../kernels/elementwise.ts';
import { COPY_WORKGROUP, copyVec4Kernel } from '../kernels/copy.ts';
import type { BenchCase } from './harness.ts';
import { geluForwardBefore } from './gelu_baseline.ts';

type Kind = 'silu' | 'gelu' | 'pssilu';
const KINDS: Kind[] = ['silu', 'gelu', 'pssilu'];
const F = 4;

function sigmoid(z: E.Tensor): E.Tensor {
  return E.div(1, E.add(E.exp(E.neg(z)), 1));
}

/** The activation from primitive ops; for pssilu two [1] raw params a, b (effective = |raw|). */
function composed(kind: Kind, x: E.Tensor, ab: [E.Tensor, E.Tensor] | null): E.Tensor {
  if (kind === 'silu') return E.mul(x, sigmoid(x));
  if (kind === 'gelu') {
    const c = 2 * Math.sqrt(2 / Math.PI);
    const u = E.mul(E.add(x, E.mul(E.powScalar(x, 3), 0.044715)), c);
    return E.mul(x, sigmoid(u));
  }
  const a = E.abs(ab![0]);
  const b = E.abs(ab![1]);
  return E.div(E.mul(x, E.sub(sigmoid(E.mul(x, a)), b)), E.sub(1, b));
}

export function cases(device: Device, opts: { quick: boolean }): BenchCase[] {
  const sizes: [number, string][] = opts.quick ? [[1 << 20, '1M']] : [[1 << 22, '4M'], [1 << 24, '16M']];
  const list: BenchCase[] = [];
  for (const [n, label] of sizes) {
    const group = `activation ${label}`;
    let x: E.Tensor | null = null;
    let dy: E.Tensor | null = null;
    let out: E.Tensor | null = null;
    const setupIO = () => {
      if (x) return;
      const h = new Float32Array(n);
      for (let i = 0; i < n; i++) h[i] = ((i * 2654435761) % 2000) / 250 - 4; // [-4, 4)
      x = E.Tensor.from(device, h, [n]);
      dy = E.Tensor.from(device, h.map((v) => v * 0.1), [n]);
      out = E.Tensor.empty(device, [n]);
    };
    const freeIO = () => {
      for (const t of [x, dy, out]) t?.dispose();
      x = dy = out = null;
    };
    const g = grid1d(n / 4, COPY_WORKGROUP);
    const copyU = new Uniforms().u32(n / 4, g.gx).bytes();
    const copyName = `copy ${label}`;
    list.push({
      group,
      name: copyName,
      bytes: 2 * n * F,
      setup: setupIO,
      run() {
        device.dispatch({ kernel: copyVec4Kernel, buffers: [x!.buffer, out!.buffer], uniforms: copyU, workgroups: g.workgroups });
      },
    });
    for (const kind of KINDS) {
      let params: E.Tensor | null = null;
      let split: [E.Tensor, E.Tensor] | null = null; // the same values as two [1] tensors, for the composition
      let graph: { y: E.Tensor; wrt: E.Tensor[] } | null = null;
      const spec = (): ActivationSpec => (kind === 'pssilu' ? { kind, raw: params! } : { kind });
      const setupParams = () => {
        setupIO();
        if (kind === 'pssilu' && !params) {
          params = E.keep(E.Tensor.from(device, [1, 1e-8], [2]));
          split = [E.keep(E.Tensor.from(device, [1], [1])), E.keep(E.Tensor.from(device, [1e-8], [1]))];
          for (const t of [params, ...split]) t.requiresGrad = true;
        }
      };
      const fusedFwd = `${kind} fwd ${label} fused`;
      const fusedBwd = `${kind} bwd ${label} fused${kind === 'pssilu' ? ' (dx + da, db)' : ''}`;
      list.push(
        {
          group,
          name: fusedFwd,
          bytes: 2 * n * F,
          baseline: copyName,
          setup: setupParams,
          run() {
            E.noGrad(() => activation(x!, spec())).dispose();
          },
        },
        ...(kind === 'gelu'
          ? [
              {
                // A/B: the forward before k_gelu_f (value from k_gelu_parts; bench/gelu_baseline.ts).
                group,
                name: `gelu fwd ${label} fused (before: k_gelu_parts)`,
                bytes: 2 * n * F,
                baseline: copyName,
                setup: setupParams,
                run() {
                  geluForwardBefore(x!).dispose();
                },
              },
            ]
          : []),
        {
          group,
          name: `${kind} fwd ${label} composed`,
          bytes: 2 * n * F,
          baseline: fusedFwd,
          setup: setupParams,
          run() {
            E.noGrad(() => E.scope(() => void composed(kind, x!, split)));
          },
        },
        {
          group,
          name: fusedBwd,
          bytes: 3 * n * F,
          baseline: copyName,
          setup: setupParams,
          run() {
            const r = activationBackwardFromZ(x!, dy!, spec());
            r.dz?.dispose();
            r.dParams?.dispose();
          },
        },
        {
          // y and dx (and the param grads) from ONE pass: reads x, dy; writes y, dx.
          group,
          name: `${kind} fwd+bwd ${label} one-pass`,
          bytes: 4 * n * F,
          baseline: copyName,
          setup: setupParams,
          run() {
            const r = activationValueAndGrad(x!, spec(), dy!);
            for (const t of [r.y, r.dx, r.dParams]) t?.dispose();
          },
        },
        {
          group,
          name: `${kind} bwd ${label} composed`,
          bytes: 3 * n * F,
          baseline: fusedBwd,
          setup() {
            setupParams();
            x!.requiresGrad = true;
            const wrt = split ? [x!, ...split] : [x!];
            graph = { y: composed(kind, x!, split), wrt };
          },
          run() {
            for (const t of E.grad(graph!.y, graph!.wrt, dy!)) t.dispose();
          },
          teardown() {
            // Disposing y leaves the composed graph's intermediates to the GC of their closures:
            // free them explicitly by walking the tape.
            const seen = new Set<E.Tensor>();
            const stack = [graph!.y];
            while (stack.length) {
              const t = stack.pop()!;
              if (seen.has(t) || t === x || (split && split.includes(t))) continue;
              seen.add(t);
              stack.push(...(t.node?.inputs ?? []));
            }
            for (const t of seen) t.dispose();
            graph = null;
            x!.requiresGrad = false;
            if (kind === 'pssilu') {
              for (const t of [params, ...(split ?? [])]) t?.dispose();
              params = null;
              split = null;
            }
            if (kind === KINDS[KINDS.length - 1]) freeIO();
          },
        },
      );
    }
  }
  return list;
}
