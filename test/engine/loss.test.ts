// softmax / logSoftmax / fused softmax cross-entropy, forward and backward, against the
// float64 references in kernels/softmax_xent.ts (themselves checked by central differences);
// awkward class counts, batch sizes off the workgroup size, |logits| = 1e30, bad labels.
import { describe, it, expect } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import { expectClose, f32, randArray } from '../helpers/compare.ts';
import { dot, maxRelErr, numericGrad } from '../reference/gradcheck.ts';
import { logSoftmax64, logSoftmaxBackward64, softmax64, softmaxBackward64, xent64, xentBackward64 } from '../../kernels/softmax_xent.ts';
import { accuracyCount, checkLabels, logSoftmax, softmax, softmaxCrossEntropy, type Reduction } from '../../engine/ops/loss.ts';
import * as E from '../../engine/index.ts';

function randLabels(N: number, C: number, seed: number): Int32Array {
  return Int32Array.from(randArray(N, seed, 0, C), (v) => Math.min(C - 1, Math.floor(v)));
}

function reduce64(l: Float64Array, r: Reduction): Float64Array {
  if (r === 'none') return l;
  const s = l.reduce((a, b) => a + b, 0);
  return Float64Array.of(r === 'sum' ? s : s / l.length);
}

/** Move axis `a` of a [d0, d1, d2] array to the end (for the float64 reference of other axes). */
function permute3(x: ArrayLike<number>, shape: number[], order: number[]): Float64Array {
  const out = new Float64Array(x.length);
  const ns = order.map((o) => shape[o]!);
  for (let i = 0; i < ns[0]!; i++)
    for (let j = 0; j < ns[1]!; j++)
      for (let k = 0; k < ns[2]!; k++) {
        const c = [0, 0, 0];
        c[order[0]!] = i;
        c[order[1]!] = j;
        c[order[2]!] = k;
        out[(i * ns[1]! + j) * ns[2]! + k] = x[(c[0]! * shape[1]! + c[1]!) * shape[2]! + c[2]!]!;
      }
  return out;
}

function invPerm(p: number[]): number[] {
  const r = new Array<number>(p.length);
  p.forEach((v, i) => (r[v] = i));
  return r;
}

describe('float64 references vs central differences', () => {
  const C = 7;
  const N = 3;
  const x = randArray(N * C, 3, -3, 3);
  const labels = [2, 0, 6];
  const dy = randArray(N * C, 4, -1, 1);
  it('logSoftmax and softmax backward', () => {
    expect(maxRelErr(logSoftmaxBackward64(x, dy, C), numericGrad((z) => dot(dy, logSoftmax64(z, C)), x))).toBeLessThan(1e-8);
    expect(maxRelErr(softmaxBackward64(x, dy, C), numericGrad((z) => dot(dy, softmax64(z, C)), x))).toBeLessThan(1e-8);
  });
  it('cross-entropy backward, with and without label smoothing', () => {
    const w = [0.3, -1.2, 2];
    for (const ls of [0, 0.1, 1]) {
      const want = numericGrad((z) => dot(w, xent64(z, labels, C, ls)), x);
      expect(maxRelErr(xentBackward64(x, labels, C, ls, w), want)).toBeLessThan(1e-8);
    }
  });
  it('label smoothing matches the definition -sum(target * log p)', () => {
    // ls = 1: the target is uniform, loss = lse - mean(z)
    const l = xent64([1, 2, 3], [0], 3, 1)[0]!;
    expect(l).toBeCloseTo(Math.log(Math.exp(1) + Math.exp(2) + Math.exp(3)) - 2, 12);
  });
});

describe('logSoftmax / softmax', () => {
  const shapes: [number[], number][] = [
    [[37, 10], -1],
    [[5, 1000], 1],
    [[130, 3], -1],
    [[9, 1], -1],
    [[4, 7, 5], 1],
    [[6, 3, 11], 0],
  ];
  for (const [shape, axis] of shapes) {
    for (const kind of ['logSoftmax', 'softmax'] as const) {
      it(`${kind} ${JSON.stringify(shape)} axis ${axis}`, async () => {
        const d = await testDevice();
        const n = shape.reduce((a, b) => a * b, 1);
        const x = f32(randArray(n, n, -8, 8));
        const dyv = f32(randArray(n, n + 1, -1, 1));
        const X = E.Tensor.from(d, Float32Array.from(x), shape);
        X.requiresGrad = true;
        const Y = (kind === 'logSoftmax' ? logSoftmax : softmax)(X, axis);
        const [dX] = E.grad(Y, [X], E.Tensor.from(d, Float32Array.from(dyv), shape));
        // reference: move the axis last, compute row-wise, move back
        const a = axis < 0 ? axis + shape.length : axis;
        const sh3 = shape.length === 3 ? shape : [1, ...shape];
        const a3 = shape.length === 3 ? a : a + 1;
        const order = [0, 1, 2].filter((i) => i !== a3).concat([a3]);
        const C = sh3[a3]!;
        const xp = permute3(x, sh3, order);
        const dp = permute3(dyv, sh3, order);
        const back = invPerm(order);
        const ps = order.map((o) => sh3[o]!);
        const yw = permute3(kind === 'logSoftmax' ? logSoftmax64(xp, C) : softmax64(xp, C), ps, back);
        const gw = permute3(kind === 'logSoftmax' ? logSoftmaxBackward64(xp, dp, C) : softmaxBackward64(xp, dp, C), ps, back);
        expectClose(await Y.f32(), yw, { atol: 2e-6, rtol: 1e-5 }, `${kind} forward`);
        expectClose(await dX!.f32(), gw, { atol: 2e-6, rtol: 1e-4 }, `${kind} backward`);
      });
    }
  }
  it('rows of |x| = 1e30 stay finite', async () => {
    const d = await testDevice();
    const x = f32([1e30, -1e30, 0, 5, -1e30, -1e30, -1e30, -1e30, 1e30, 1e30, 1e30, 1e30]);
    const X = E.Tensor.from(d, Float32Array.from(x), [3, 4]);
    X.requiresGrad = true;
    const Y = logSoftmax(X);
    const dyv = f32([0.5, -1, 2, 0.25, 1, 1, 1, 1, 1, -2, 3, 0]);
    const [g] = E.grad(Y, [X], E.Tensor.from(d, Float32Array.from(dyv), [3, 4]));
    expectClose(await Y.f32(), logSoftmax64(x, 4), { atol: 1e-6, rtol: 1e-6 }, 'logSoftmax 1e30');
    expectClose(await g!.f32(), logSoftmaxBackward64(x, dyv, 4), { atol: 1e-6, rtol: 1e-5 }, 'logSoftmax 1e30 backward');
    expectClose(await softmax(X).f32(), softmax64(x, 4), { atol: 1e-7, rtol: 1e-6 }, 'softmax 1e30');
  });
  it('errors', async () => {
    const d = await testDevice();
    expect(() => logSoftmax(E.Tensor.from(d, [1, 2], [2]), 1)).toThrow(/log_softmax: axis 1 is out of range for a tensor of rank 1/);
    expect(() => softmax(E.Tensor.from(d, new Int32Array([1, 2]), [2]))).toThrow(/softmax: x must be f32, got an i32/);
  });
});

describe('softmaxCrossEntropy', () => {
  const cases: [number, number][] = [
    [67, 10],
    [130, 1],
    [65, 3],
    [19, 1000],
    [1, 10],
  ];
  for (const [N, C] of cases) {
    for (const ls of [0, 0.1]) {
      it(`N=${N} C=${C} labelSmoothing ${ls}, all reductions, forward and backward`, async () => {
        const d = await testDevice();
        const x = f32(randArray(N * C, N * 31 + C, -6, 6));
        const lab = randLabels(N, C, C + 7);
        const X = E.Tensor.from(d, Float32Array.from(x), [N, C]);
        X.requiresGrad = true;
        const L = E.Tensor.from(d, lab, [N], 'i32');
        const per = xent64(x, lab, C, ls);
        for (const reduction of ['mean', 'sum', 'none'] as const) {
          const Y = softmaxCrossEntropy(X, L, { labelSmoothing: ls, reduction });
          expect(Y.shape).toEqual(reduction === 'none' ? [N] : []);
          const want = reduce64(per, reduction);
          expectClose(await Y.f32(), want, { atol: 3e-6 * (reduction === 'sum' ? N : 1), rtol: 2e-6 }, `loss ${reduction}`);
          const dyv = reduction === 'none' ? f32(randArray(N, 5, -2, 2)) : Float64Array.of(1.75);
          const [g] = E.grad(Y, [X], E.Tensor.from(d, Float32Array.from(dyv), Y.shape));
          const dyRow = reduction === 'none' ? dyv : new Float64Array(N).fill(reduction === 'mean' ? 1.75 / N : 1.75);
          expectClose(await g!.f32(), xentBackward64(x, lab, C, ls, dyRow), { atol: 2e-7, rtol: 2e-5 }, `grad ${reduction}`);
        }
      });
    }
  }

  it('logits of magnitude 1e30: finite losses and gradients', async () => {
    const d = await testDevice();
    const C = 5;
    const rows = [
      [1e30, -1e30, 0, 3, -1e30], // label on the -1e30 logit: loss 2e30
      [1e30, 1e30, 1e30, 1e30, 1e30], // all tied: log C
      [-1e30, -1e30, -1e30, -1e30, -1e30],
      [-1e30, 2, -1e30, 1e30, 1e30], // two tied maxima
      [1e30, -1e30, 0, 3, -1e30],
    ];
    const lab = Int32Array.from([1, 2, 4, 3, 0]);
    const x = f32(rows.flat());
    const X = E.Tensor.from(d, Float32Array.from(x), [rows.length, C]);
    X.requiresGrad = true;
    const L = E.Tensor.from(d, lab, [rows.length], 'i32');
    for (const ls of [0, 0.2]) {
      const Y = softmaxCrossEntropy(X, L, { labelSmoothing: ls, reduction: 'none' });
      const got = await Y.f32();
      for (const v of got) expect(Number.isFinite(v)).toBe(true);
      expectClose(got, xent64(x, lab, C, ls), { atol: 1e-6, rtol: 1e-6 }, `1e30 losses ls=${ls}`);
      const dyv = Float64Array.from([1, 0.5, -1, 2, 1]);
      const [g] = E.grad(Y, [X], E.Tensor.from(d, Float32Array.from(dyv), [rows.length]));
      expectClose(await g!.f32(), xentBackward64(x, lab, C, ls, dyv), { atol: 1e-6, rtol: 1e-5 }, `1e30 grad ls=${ls}`);
    }
    const mean = await softmaxCrossEntropy(X, L).item();
    expect(mean).toBeCloseTo((2e30 + 0 + 0 + 0 + 0) / 5 + (Math.log(5) * 2 + Math.log(2)) / 5, -24);
  });

  it('labelSmoothing = 1 gives lse - mean(z); the gradient rows sum to zero', async () => {
    const d = await testDevice();
    const N = 33;
    const C = 12;
    const x = f32(randArray(N * C, 77, -4, 4));
    const lab = randLabels(N, C, 78);
    const X = E.Tensor.from(d, Float32Array.from(x), [N, C]);
    X.requiresGrad = true;
    const Y = softmaxCrossEntropy(X, E.Tensor.from(d, lab, [N], 'i32'), { labelSmoothing: 1, reduction: 'sum' });
    expectClose([await Y.item()], reduce64(xent64(x, lab, C, 1), 'sum'), { atol: 1e-4, rtol: 1e-6 }, 'ls = 1');
    const [g] = E.grad(Y, [X]);
    const gv = await g!.f32();
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let c = 0; c < C; c++) s += gv[n * C + c]!;
      expect(Math.abs(s)).toBeLessThan(1e-6);
    }
  });

  it('labels outside [0, C): NaN loss and gradient row, checkLabels names the culprit', async () => {
    const d = await testDevice();
    const x = f32(randArray(4 * 3, 9, -1, 1));
    const X = E.Tensor.from(d, Float32Array.from(x), [4, 3]);
    X.requiresGrad = true;
    const L = E.Tensor.from(d, Int32Array.from([0, 3, 2, -1]), [4], 'i32');
    const per = await softmaxCrossEntropy(X, L, { reduction: 'none' }).f32();
    expect(Number.isNaN(per[1]!)).toBe(true);
    expect(Number.isNaN(per[3]!)).toBe(true);
    expectClose([per[0]!, per[2]!], [xent64(x, [0], 3)[0]!, xent64(x.slice(6), [2], 3)[0]!], { atol: 1e-6, rtol: 1e-6 }, 'good rows');
    const Y = softmaxCrossEntropy(X, L);
    expect(Number.isNaN(await Y.item())).toBe(true);
    const gv = await E.grad(Y, [X])[0]!.f32();
    expect([0, 1, 2, 6, 7, 8].every((i) => Number.isFinite(gv[i]!))).toBe(true);
    expect([3, 4, 5, 9, 10, 11].every((i) => Number.isNaN(gv[i]!))).toBe(true);
    await expect(checkLabels(L, 3)).rejects.toThrow(/checkLabels: label 3 at index 1 is outside \[0, 3\) \(2 bad labels in all\)/);
    await expect(checkLabels(E.Tensor.from(d, Int32Array.from([0, 1, 2]), [3], 'i32'), 3)).resolves.toBeUndefined();
    await expect(checkLabels(E.Tensor.from(d, Int32Array.from([0, -7]), [2], 'i32'), 10)).rejects.toThrow(/label -7 at index 1 is outside \[0, 10\)$/);
    await expect(checkLabels(L, 0)).rejects.toThrow(/C must be a positive integer, got 0/);
  });

  it('bad arguments give clear errors', async () => {
    const d = await testDevice();
    const X = E.Tensor.from(d, new Float32Array(6), [2, 3]);
    const L = E.Tensor.from(d, Int32Array.from([0, 1]), [2], 'i32');
    expect(() => softmaxCrossEntropy(X, E.Tensor.from(d, [0, 1], [2]))).toThrow(/softmaxCrossEntropy: labels must be an i32 tensor \[2\] to match logits \[2, 3\], got f32 \[2\]/);
    expect(() => softmaxCrossEntropy(X, E.Tensor.from(d, Int32Array.from([0, 1, 1]), [3], 'i32'))).toThrow(/labels must be an i32 tensor \[2\]/);
    expect(() => softmaxCrossEntropy(E.Tensor.from(d, new Float32Array(6), [6]), L)).toThrow(/logits must be an f32 tensor \[N, C\], got f32 \[6\]/);
    expect(() => softmaxCrossEntropy(X, L, { labelSmoothing: 1.5 })).toThrow(/labelSmoothing must be a number in \[0, 1\], got 1.5/);
    expect(() => softmaxCrossEntropy(X, L, { reduction: 'avg' as Reduction })).toThrow(/reduction must be 'mean', 'sum' or 'none', got "avg"/);
    const X0 = E.Tensor.from(d, new Float32Array(0), [0, 3]);
    const L0 = E.Tensor.from(d, new Int32Array(0), [0], 'i32');
    expect(() => softmaxCrossEntropy(X0, L0)).toThrow(/mean of an empty batch/);
    expect(await softmaxCrossEntropy(X0, L0, { reduction: 'sum' }).item()).toBe(0);
    expect(() => softmaxCrossEntropy(E.Tensor.from(d, new Float32Array(0), [2, 0]), L)).toThrow(/no classes/);
  });

  it('keeps live buffers flat over repeated steps', async () => {
    const d = await testDevice();
    const X = E.keep(E.Tensor.from(d, Float32Array.from(randArray(50 * 10, 1)), [50, 10]));
    X.requiresGrad = true;
    const L = E.keep(E.Tensor.from(d, randLabels(50, 10, 2), [50], 'i32'));
    const step = () => E.scope(() => {
      const y = softmaxCrossEntropy(X, L, { labelSmoothing: 0.1 });
      E.backward(y);
      accuracyCount(X, L);
      logSoftmax(X);
    });
    step();
    X.zeroGrad();
    await d.sync();
    const before = d.stats();
    for (let i = 0; i < 20; i++) {
      step();
      X.zeroGrad();
    }
    await d.sync();
    const after = d.stats();
    expect(after.liveBuffers).toBe(before.liveBuffers);
  });
});

describe('accuracyCount', () => {
  it('counts first-argmax == label on the GPU, ties and bad labels included', async () => {
    const d = await testDevice();
    for (const [N, C] of [[130, 10], [7, 1], [9, 1000]] as const) {
      const x = f32(randArray(N * C, N + C, -3, 3));
      const lab = randLabels(N, C, 3);
      for (let n = 0; n < N; n += 2) lab[n] = 0; // make some rows likely correct
      let want = 0;
      for (let n = 0; n < N; n++) {
        let bi = 0;
        for (let c = 1; c < C; c++) if (x[n * C + c]! > x[n * C + bi]!) bi = c;
        if (bi === lab[n]) want++;
      }
      const A = accuracyCount(E.Tensor.from(d, Float32Array.from(x), [N, C]), E.Tensor.from(d, lab, [N], 'i32'));
      expect(A.shape).toEqual([]);
      expect(A.dtype).toBe('f32');
      expect(await A.item()).toBe(want);
    }
    const X = E.Tensor.from(d, [1, 5, 5, 2, 2, 2, 0, 0, 9], [3, 3]);
    expect(await accuracyCount(X, E.Tensor.from(d, Int32Array.from([1, 0, 2]), [3], 'i32')).item()).toBe(3);
    expect(await accuracyCount(X, E.Tensor.from(d, Int32Array.from([2, 1, 7]), [3], 'i32')).item()).toBe(0);
  });
});
