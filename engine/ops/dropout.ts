// Inverted dropout as an engine op with its backward: y = x * mask / (1 - p), dx = dy *
// mask / (1 - p). The mask ({0, 1} f32, x's shape) is the caller's (nn/layers.ts draws it
// with bernoulliMask and may reuse it across forwards, as FreeLB does).
import { Tensor, assertSameDevice, shapeStr } from '../tensor.ts';
import { record } from '../autograd.ts';
import { DROPOUT } from '../../kernels/dropout.ts';
import { launchEw } from './ew_launch.ts';

/** x * mask / (1 - p) with its gradient w.r.t. x (the mask gets none). */
export function dropout(x: Tensor, mask: Tensor, p: number): Tensor {
  const who = 'dropout';
  if (!(typeof p === 'number' && p >= 0 && p < 1)) throw new Error(`kinkless: ${who}: p must be in [0, 1), got ${String(p)}`);
  for (const [nm, t] of [['x', x], ['mask', mask]] as const) {
    if (!(t instanceof Tensor)) throw new Error(`kinkless: ${who}: ${nm} must be a Tensor, got ${String(t)}`);
    if (t.dtype !== 'f32') throw new Error(`kinkless: ${who}: ${nm} must be f32, got an ${t.dtype} tensor of shape ${shapeStr(t.shape)}`);
  }
  assertSameDevice(who, x, mask);
  if (mask.rank !== x.rank || mask.shape.some((d, i) => d !== x.shape[i])) {
    throw new Error(`kinkless: ${who}: mask must have x's shape ${shapeStr(x.shape)}, got ${shapeStr(mask.shape)}`);
  }
  const scale = 1 / (1 - p);
  const y = launchEw(DROPOUT, 'dropout', [x, mask], { scalars: [scale] });
  return record(y, 'dropout', [x], (dy) => [launchEw(DROPOUT, 'dropout_backward', [dy, mask], { scalars: [scale] })]);
}
