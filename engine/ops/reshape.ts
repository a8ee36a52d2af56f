// reshape / flatten / squeeze / unsqueeze: views sharing storage, with autograd.
import { Tensor, checkShape, shapeSize, shapeStr, type Shape } from '../tensor.ts';
import { record } from '../autograd.ts';

/** Reshape (one dim may be -1). Shares storage with x; no copy. */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const s = [...shape];
  const neg = s.filter((d) => d === -1).length;
  if (neg > 1) throw new Error(`kinkless: reshape: at most one -1 allowed in shape ${shapeStr(shape)}`);
  if (neg === 1) {
    const known = s.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
    if (known === 0 || x.size % known !== 0) throw new Error(`kinkless: reshape: cannot reshape ${shapeStr(x.shape)} (size ${x.size}) to ${shapeStr(shape)}`);
    s[s.indexOf(-1)] = x.size / known;
  }
  checkShape(s, 'reshape shape');
  if (shapeSize(s) !== x.size) throw new Error(`kinkless: reshape: cannot reshape ${shapeStr(x.shape)} (size ${x.size}) to ${shapeStr(shape)} (size ${shapeSize(s)})`);
  const y = x.view(s);
  const xShape: Shape = x.shape;
  record(y, 'reshape', [x], (dy) => [dy.view(xShape)]);
  return y;
}

/** Collapse dims from `start` on into one: [N, C, H, W] -> [N, C*H*W]. */
export function flatten(x: Tensor, start = 1): Tensor {
  if (start < 0 || start > x.rank) throw new Error(`kinkless: flatten: start must be in [0, ${x.rank}], got ${start}`);
  return reshape(x, [...x.shape.slice(0, start), x.shape.slice(start).reduce((a, b) => a * b, 1)]);
}

export function unsqueeze(x: Tensor, axis: number): Tensor {
  const a = axis < 0 ? axis + x.rank + 1 : axis;
  if (a < 0 || a > x.rank) throw new Error(`kinkless: unsqueeze: axis ${axis} out of range for rank ${x.rank}`);
  const s = [...x.shape];
  s.splice(a, 0, 1);
  return reshape(x, s);
}

export function squeeze(x: Tensor, axis?: number): Tensor {
  if (axis === undefined) return reshape(x, x.shape.filter((d) => d !== 1));
  const a = axis < 0 ? axis + x.rank : axis;
  if (x.shape[a] !== 1) throw new Error(`kinkless: squeeze: dim ${axis} of ${shapeStr(x.shape)} is not 1`);
  const s = [...x.shape];
  s.splice(a, 1);
  return reshape(x, s);
}
