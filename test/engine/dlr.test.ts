// The DLR loss (untargeted and targeted), forward and backward, against the float64
// reference test/reference/dlr64.ts (itself checked by central differences here), on
// batch sizes off the workgroup size, class counts 3..1000, large logits, and bad shapes.
import { describe, expect, it } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import { randArray } from '../helpers/compare.ts';
import { dlr64 } from '../reference/dlr64.ts';
import { dlrLoss } from '../../engine/ops/dlr.ts';
import { Tensor, grad, sum, mul } from '../../engine/index.ts';

function labels(N: number, C: number, seed: number, avoid?: Int32Array): Int32Array {
  const r = randArray(N, seed, 0, C);
  return Int32Array.from(r, (v, i) => {
    let c = Math.min(C - 1, Math.floor(v));
    if (avoid && c === avoid[i]) c = (c + 1) % C;
    return c;
  });
}

describe('DLR loss', () => {
  it('the float64 reference matches central differences', () => {
    const N = 3, C = 6;
    const z = Float64Array.from(randArray(N * C, 11, -3, 3));
    const y = labels(N, C, 12);
    const t = labels(N, C, 13, y);
    for (const tt of [undefined, t]) {
      const dy = [0.7, -1.3, 2];
      const g = dlr64(z, N, C, y, tt).grad(dy);
      for (let i = 0; i < N * C; i++) {
        const h = 1e-6;
        const zp = Float64Array.from(z); zp[i]! += h;
        const zm = Float64Array.from(z); zm[i]! -= h;
        const lp = dlr64(zp, N, C, y, tt).loss, lm = dlr64(zm, N, C, y, tt).loss;
        let fd = 0;
        for (let r = 0; r < N; r++) fd += (dy[r]! * (lp[r]! - lm[r]!)) / (2 * h);
        expect(Math.abs(fd - g[i]!)).toBeLessThan(1e-6 * (1 + Math.abs(fd)));
      }
    }
  });

  for (const [N, C, scale] of [[1, 3, 1], [67, 10, 5], [130, 4, 1], [5, 1000, 3], [33, 10, 1e4]] as const) {
    for (const targeted of [false, true]) {
      if (targeted && C < 4) continue;
      it(`N=${N} C=${C} |z|~${scale}${targeted ? ' targeted' : ''}: loss and gradient match float64`, async () => {
        const d = await testDevice();
        const z = Float32Array.from(randArray(N * C, N + C, -scale, scale));
        const y = labels(N, C, 7 * N + C);
        const tl = targeted ? labels(N, C, 5 * N + C, y) : undefined;
        const dy = Float32Array.from(randArray(N, 3 * N, -2, 2));
        const zt = Tensor.from(d, z, [N, C]);
        zt.requiresGrad = true;
        const yt = Tensor.from(d, y, [N], 'i32');
        const tt = tl ? Tensor.from(d, tl, [N], 'i32') : null;
        const L = dlrLoss(zt, yt, { targets: tt });
        const [g] = grad(sum(mul(L, Tensor.from(d, dy, [N]))), [zt]) as [Tensor];
        const ref = dlr64(z, N, C, y, tl);
        const got = await L.data();
        for (let r = 0; r < N; r++) expect(Math.abs(got[r]! - ref.loss[r]!)).toBeLessThan(2e-5 * (1 + Math.abs(ref.loss[r]!)));
        const gr = ref.grad(dy);
        const gg = await g.data();
        const gmax = Math.max(...gr.map(Math.abs));
        for (let i = 0; i < N * C; i++) expect(Math.abs(gg[i]! - gr[i]!)).toBeLessThan(1e-4 * gmax + 1e-7);
      });
    }
  }

  it('ties: the lower class index ranks first (all logits equal gives loss 0, finite gradient)', async () => {
    const d = await testDevice();
    const z = new Float32Array(2 * 5).fill(1.5);
    const y = Int32Array.of(0, 3);
    const zt = Tensor.from(d, z, [2, 5]);
    const L = await dlrLoss(zt, Tensor.from(d, y, [2], 'i32')).data();
    const ref = dlr64(z, 2, 5, y).loss;
    expect(Array.from(L)).toEqual(Array.from(ref, (v) => Math.fround(v)));
  });

  it('rejects too few classes and mismatched labels, naming the argument', async () => {
    const d = await testDevice();
    const z2 = Tensor.from(d, new Float32Array(4), [2, 2]);
    const y2 = Tensor.from(d, Int32Array.of(0, 1), [2], 'i32');
    expect(() => dlrLoss(z2, y2)).toThrow(/at least 3 classes/);
    const z3 = Tensor.from(d, new Float32Array(6), [2, 3]);
    expect(() => dlrLoss(z3, y2, { targets: y2 })).toThrow(/targeted DLR loss needs at least 4 classes/);
    expect(() => dlrLoss(z3, Tensor.from(d, Int32Array.of(0), [1], 'i32'))).toThrow(/labels must be an i32 tensor \[2\]/);
  });
});
