// Inverted dropout's kernels (engine/ops/dropout.ts): y = x * mask * scale forward and
// dx = dy * mask * scale backward, with mask a {0, 1} f32 tensor and scale = 1 / (1 - p).
import { elementwiseFamily } from './elementwise.ts';

export const DROPOUT = elementwiseFamily('dropout', {
  dropout: { arity: 2, expr: 'a0 * a1 * s.x' },
  dropout_backward: { arity: 2, expr: 'a0 * a1 * s.x' },
});
