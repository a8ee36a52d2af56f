// The hand-written limits of every activation at +inf and -inf (docs/activations-ieee.md),
// shared by test/kernels/activation_ieee.test.ts and activation_value_grad.test.ts.
import type { ActivationKind } from '../../kernels/activations.ts';

export const INF = Infinity;

export interface Limit {
  f: number;
  df: number;
  /** d f / d effective param, per param. */
  dp: number[];
}

/** Hand-written limits at +inf and -inf for effective params p. */
export const LIMITS: Record<ActivationKind, { params: number[][]; pos: (p: number[]) => Limit; neg: (p: number[]) => Limit }> = {
  relu: { params: [[]], pos: () => ({ f: INF, df: 1, dp: [] }), neg: () => ({ f: 0, df: 0, dp: [] }) },
  softplus: { params: [[1], [2.5]], pos: () => ({ f: INF, df: 1, dp: [0] }), neg: () => ({ f: 0, df: 0, dp: [0] }) },
  psoftplus: { params: [[1], [0.3]], pos: () => ({ f: INF, df: 1, dp: [0] }), neg: () => ({ f: 0, df: 0, dp: [0] }) },
  silu: { params: [[1], [1.5]], pos: () => ({ f: INF, df: 1, dp: [0] }), neg: () => ({ f: 0, df: 0, dp: [0] }) },
  gelu: { params: [[]], pos: () => ({ f: INF, df: 1, dp: [] }), neg: () => ({ f: 0, df: 0, dp: [] }) },
  gelu_tanh: { params: [[]], pos: () => ({ f: INF, df: 1, dp: [] }), neg: () => ({ f: 0, df: 0, dp: [] }) },
  elu: { params: [[1], [0.7]], pos: () => ({ f: INF, df: 1, dp: [0] }), neg: (p) => ({ f: -p[0]!, df: 0, dp: [-1] }) },
  celu: { params: [[1], [0.7]], pos: () => ({ f: INF, df: 1, dp: [0] }), neg: (p) => ({ f: -p[0]!, df: 0, dp: [-1] }) },
  // d/da [x - log1p(a x)/a] = log1p(a x)/a^2 - x/(a (1 + a x)) -> +inf
  smooth_relu: { params: [[400], [1]], pos: () => ({ f: INF, df: 1, dp: [INF] }), neg: () => ({ f: 0, df: 0, dp: [0] }) },
  // a x with a = 0 is 0 for every x: its limit is 0
  prelu: {
    params: [[0], [0.25], [-0.5]],
    pos: () => ({ f: INF, df: 1, dp: [0] }),
    neg: (p) => ({ f: p[0]! === 0 ? 0 : p[0]! > 0 ? -INF : INF, df: p[0]!, dp: [-INF] }),
  },
  // x (s(a x) - b)/(1 - b): at -inf, -b x/(1 - b) -> +inf for b > 0 (0 for b = 0)
  pssilu: {
    params: [[1, 1e-8], [2, 0.3], [1, 0]],
    pos: () => ({ f: INF, df: 1, dp: [0, 0] }),
    neg: (p) => ({ f: p[1]! === 0 ? 0 : INF, df: -p[1]! / (1 - p[1]!), dp: [0, INF] }),
  },
  mish: { params: [[]], pos: () => ({ f: INF, df: 1, dp: [] }), neg: () => ({ f: 0, df: 0, dp: [] }) },
};

