// matmul / linear forward and backward against float64 references (kernels/matmul.ts's
// matmul64, checked itself against central differences), on shapes that do not divide the
// 4x8 / 8x4 register tiles, with transposes, broadcast batches and extreme magnitudes.
import { describe, it, expect } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import { expectClose, expectNoNaN, f32, randArray } from '../helpers/compare.ts';
import { dot, numericGrad, maxRelErr } from '../reference/gradcheck.ts';
import { matmul64 } from '../../kernels/matmul.ts';
import * as E from '../../engine/index.ts';
import { linear, matmul, matmulAct, matmulRaw, type MatmulKernel } from '../../engine/ops/matmul.ts';

type Dims = { M: number; N: number; K: number; transA?: boolean; transB?: boolean };

/** float64 transpose of the last two dims of a [batch, r, c] stack. */
function tr64(x: ArrayLike<number>, batch: number, r: number, c: number): Float64Array {
  const y = new Float64Array(batch * r * c);
  for (let z = 0; z < batch; z++) for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) y[z * r * c + j * r + i] = x[z * r * c + i * c + j]!;
  return y;
}

/** Reference gradients of sum(y * dy) for y = op(a) op(b) (batch broadcast where batchA/B = 1). */
function grads64(a: Float64Array, b: Float64Array, dy: Float64Array, d: Dims & { batch: number; batchA: number; batchB: number }) {
  const { M, N, K, batch } = d;
  // dĀ[z] = dy[z] · B̄[z]^T, dB̄[z] = Ā[z]^T · dy[z], computed with plain loops.
  const aBar = (z: number, m: number, k: number) => a[(d.batchA === 1 ? 0 : z) * M * K + (d.transA ? k * M + m : m * K + k)]!;
  const bBar = (z: number, k: number, n: number) => b[(d.batchB === 1 ? 0 : z) * K * N + (d.transB ? n * K + k : k * N + n)]!;
  const da = new Float64Array(a.length);
  const db = new Float64Array(b.length);
  for (let z = 0; z < batch; z++) {
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        const g = dy[z * M * N + m * N + n]!;
        if (g === 0) continue;
        for (let k = 0; k < K; k++) {
          const ai = (d.batchA === 1 ? 0 : z) * M * K + (d.transA ? k * M + m : m * K + k);
          const bi = (d.batchB === 1 ? 0 : z) * K * N + (d.transB ? n * K + k : k * N + n);
          da[ai] += g * bBar(z, k, n);
          db[bi] += g * aBar(z, m, k);
        }
      }
    }
  }
  return { da, db };
}

describe('matmul float64 reference', () => {
  it('gradients agree with central differences (transposes, broadcast batch)', () => {
    for (const [tA, tB] of [[false, false], [true, false], [false, true], [true, true]] as const) {
      const d = { M: 3, N: 4, K: 5, batch: 2, batchA: 2, batchB: 1, transA: tA, transB: tB };
      const a = randArray(2 * 15, 3);
      const b = randArray(20, 4);
      const dy = randArray(2 * 12, 5);
      const { da, db } = grads64(a, b, dy, d);
      const ga = numericGrad((x) => dot(matmul64(x, b, d), dy), a);
      const gb = numericGrad((x) => dot(matmul64(a, x, d), dy), b);
      expect(maxRelErr(da, ga)).toBeLessThan(1e-7);
      expect(maxRelErr(db, gb)).toBeLessThan(1e-7);
    }
  });
  it('transposes agree with explicit transposed copies', () => {
    const a = randArray(6, 1);
    const b = randArray(12, 2);
    const y = matmul64(a, b, { M: 2, N: 4, K: 3 });
    const y2 = matmul64(tr64(a, 1, 2, 3), tr64(b, 1, 3, 4), { M: 2, N: 4, K: 3, transA: true, transB: true });
    expect(maxRelErr(y2, y)).toBe(0);
  });
});

const SHAPES: [number, number, number][] = [
  [17, 33, 65],
  [1, 1, 1],
  [64, 48, 1],
  [5, 3, 1000],
  [33, 17, 16],
  [32, 32, 32],
  [7, 9, 4],
];

async function checkForward(M: number, N: number, K: number, tA: boolean, tB: boolean, kernel: MatmulKernel = 'fast') {
  const dev = await testDevice();
  const a = f32(randArray(M * K, M + 7 * K, -1, 1));
  const b = f32(randArray(K * N, N + 3 * K, -1, 1));
  const A = E.Tensor.from(dev, Float32Array.from(a), tA ? [K, M] : [M, K]);
  const B = E.Tensor.from(dev, Float32Array.from(b), tB ? [N, K] : [K, N]);
  const Y = matmulRaw(A, B, { transA: tA, transB: tB, kernel });
  expect(Y.shape).toEqual([M, N]);
  const want = matmul64(a, b, { M, N, K, transA: tA, transB: tB });
  // NOTE: float32 accumulation error grows ~ sqrt(K) |a||b|; values are in [-1, 1].
  expectClose(await Y.f32(), want, { atol: 2e-6 * K + 1e-6, rtol: 1e-5 }, `${kernel} ${M}x${N}x${K} tA=${tA} tB=${tB}`);
  for (const t of [A, B, Y]) t.dispose();
}

describe('matmul forward', () => {
  for (const [M, N, K] of SHAPES) {
    for (const [tA, tB] of [[false, false], [true, false], [false, true], [true, true]] as const) {
      it(`${M}x${N}x${K} transA=${tA} transB=${tB}`, () => checkForward(M, N, K, tA, tB));
    }
  }
  it('naive and tiled kernels agree with the reference too', async () => {
    for (const kernel of ['naive', 'tiled'] as const) {
      await checkForward(17, 33, 65, false, false, kernel);
      await checkForward(17, 33, 65, true, true, kernel);
      await checkForward(40, 36, 33, false, true, kernel);
    }
  });
  it('large K (4099) and a wide output (1x1031x20)', async () => {
    await checkForward(9, 12, 4099, false, false);
    await checkForward(9, 12, 4099, false, true);
    await checkForward(1, 1031, 20, true, false);
  });
  it('every register-tile shape handles ragged edges', async () => {
    const dev = await testDevice();
    const [M, N, K] = [19, 21, 23];
    const a = f32(randArray(M * K, 11));
    const b = f32(randArray(K * N, 12));
    const want = matmul64(a, b, { M, N, K });
    const A = E.Tensor.from(dev, Float32Array.from(a), [M, K]);
    const B = E.Tensor.from(dev, Float32Array.from(b), [K, N]);
    // NOTE: each variant is a separate pipeline (~1 s to compile on lavapipe): a sample.
    const variants: [1 | 2 | 4 | 8, 4 | 8, [number, number]][] = [[1, 4, [8, 8]], [2, 8, [8, 1]], [4, 4, [16, 4]], [8, 4, [8, 1]], [4, 8, [8, 8]]];
    for (const [tm, tn, wg] of variants) {
      const Y = matmulRaw(A, B, { tm, tn, wg });
      expectClose(await Y.f32(), want, { atol: 1e-5, rtol: 1e-5 }, `tm=${tm} tn=${tn} wg=${wg}`);
      Y.dispose();
    }
  });
  it('extreme magnitudes stay finite and accurate (no NaN)', async () => {
    const dev = await testDevice();
    const [M, N, K] = [9, 10, 11];
    for (const scale of [1e18, 1e-18]) {
      const a = f32(Array.from(randArray(M * K, 21), (v) => v * scale));
      const b = f32(Array.from(randArray(K * N, 22), (v) => v * scale));
      const want = matmul64(a, b, { M, N, K });
      const Y = matmulRaw(E.Tensor.from(dev, Float32Array.from(a), [M, K]), E.Tensor.from(dev, Float32Array.from(b), [K, N]));
      const got = await Y.f32();
      expectNoNaN(got, `scale ${scale}`);
      // 1e-36 products are float32 denormals (may flush to zero): compare absolutely there.
      expectClose(got, want, scale > 1 ? { atol: 0, rtol: 1e-4 } : { atol: 1e-37, rtol: 1e-4 }, `scale ${scale}`);
    }
    // Overflowing products give +-inf, never NaN, when signs agree.
    const big = E.Tensor.from(dev, new Float32Array(4 * 4).fill(3e30), [4, 4]);
    const got = await matmulRaw(big, big).f32();
    for (const v of got) expect(v).toBe(Infinity);
  });
});

describe('matmul backward and batching', () => {
  const cases: { name: string; as: number[]; bs: number[]; tA?: boolean; tB?: boolean }[] = [
    { name: '2-D 17x33x65', as: [17, 65], bs: [65, 33] },
    { name: '2-D transA', as: [65, 17], bs: [65, 33], tA: true },
    { name: '2-D transB', as: [17, 65], bs: [33, 65], tB: true },
    { name: '2-D both', as: [65, 17], bs: [33, 65], tA: true, tB: true },
    { name: 'equal batch', as: [3, 9, 13], bs: [3, 13, 6] },
    { name: 'b shared (2-D)', as: [4, 9, 13], bs: [13, 6] },
    { name: 'b shared, transB', as: [4, 9, 13], bs: [6, 13], tB: true },
    { name: 'b shared, transA', as: [4, 13, 9], bs: [13, 6], tA: true },
    { name: 'a shared (2-D)', as: [9, 13], bs: [3, 13, 6] },
    { name: 'broadcast [2,1] x [3]', as: [2, 1, 5, 7], bs: [3, 7, 6], tB: false },
    { name: 'broadcast with transposes', as: [2, 1, 7, 5], bs: [1, 3, 6, 7], tA: true, tB: true },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const dev = await testDevice();
      const ar = c.as.length;
      const br = c.bs.length;
      const [M, K] = c.tA ? [c.as[ar - 1]!, c.as[ar - 2]!] : [c.as[ar - 2]!, c.as[ar - 1]!];
      const N = c.tB ? c.bs[br - 2]! : c.bs[br - 1]!;
      // Broadcast batch in float64: materialise per-batch operand offsets.
      const aB = c.as.slice(0, -2);
      const bB = c.bs.slice(0, -2);
      const rank = Math.max(aB.length, bB.length);
      const yB: number[] = [];
      for (let i = 0; i < rank; i++) yB.push(Math.max(aB[aB.length - rank + i] ?? 1, bB[bB.length - rank + i] ?? 1));
      const batch = yB.reduce((x, y) => x * y, 1);
      const idx = (shape: number[], coords: number[]) => shape.reduce((acc, d, i) => acc * d + (d === 1 ? 0 : coords[coords.length - shape.length + i]!), 0);
      const a = f32(randArray(c.as.reduce((x, y) => x * y, 1), 31));
      const b = f32(randArray(c.bs.reduce((x, y) => x * y, 1), 32));
      const dy = f32(randArray(batch * M * N, 33));
      const yWant = new Float64Array(batch * M * N);
      const daWant = new Float64Array(a.length);
      const dbWant = new Float64Array(b.length);
      for (let z = 0; z < batch; z++) {
        const coords: number[] = [];
        let rem = z;
        for (let i = rank - 1; i >= 0; i--) {
          coords[i] = rem % yB[i]!;
          rem = Math.floor(rem / yB[i]!);
        }
        const ao = idx(aB, coords) * M * K;
        const bo = idx(bB, coords) * K * N;
        const d = { M, N, K, transA: c.tA, transB: c.tB };
        const as = a.subarray(ao, ao + M * K);
        const bs = b.subarray(bo, bo + K * N);
        yWant.set(matmul64(as, bs, d), z * M * N);
        const g = grads64(as, bs, dy.subarray(z * M * N, (z + 1) * M * N), { ...d, batch: 1, batchA: 1, batchB: 1 });
        for (let i = 0; i < g.da.length; i++) daWant[ao + i] += g.da[i]!;
        for (let i = 0; i < g.db.length; i++) dbWant[bo + i] += g.db[i]!;
      }
      const A = E.Tensor.from(dev, Float32Array.from(a), c.as);
      const B = E.Tensor.from(dev, Float32Array.from(b), c.bs);
      A.requiresGrad = true;
      B.requiresGrad = true;
      const Y = matmul(A, B, { transA: c.tA, transB: c.tB });
      expect(Y.shape).toEqual([...yB, M, N]);
      const tol = { atol: 1e-5 * Math.max(K, batch * M, batch * N) ** 0.5 * 4, rtol: 1e-5 };
      expectClose(await Y.f32(), yWant, tol, `${c.name} y`);
      const DY = E.Tensor.from(dev, Float32Array.from(dy), Y.shape);
      const [gA, gB] = E.grad(Y, [A, B], DY);
      expect(gA!.shape).toEqual(c.as);
      expect(gB!.shape).toEqual(c.bs);
      expectClose(await gA!.f32(), daWant, tol, `${c.name} da`);
      expectClose(await gB!.f32(), dbWant, tol, `${c.name} db`);
    });
  }
  it('does not leak buffers across many forward+backward steps', async () => {
    const dev = await testDevice();
    const A = E.Tensor.from(dev, Float32Array.from(randArray(4 * 9 * 13, 1)), [4, 9, 13]);
    const B = E.Tensor.from(dev, Float32Array.from(randArray(13 * 6, 2)), [13, 6]);
    A.requiresGrad = true;
    B.requiresGrad = true;
    const step = () => E.scope(() => {
      const [ga, gb] = E.grad(E.sum(matmul(A, B)), [A, B]);
      ga!.dispose();
      gb!.dispose();
    });
    step();
    await dev.sync();
    const before = dev.stats();
    for (let i = 0; i < 20; i++) step();
    await dev.sync();
    const after = dev.stats();
    expect(after.liveBuffers).toBe(before.liveBuffers);
    expect(after.liveBytes).toBe(before.liveBytes);
  });
});

describe('linear', () => {
  it('x·w^T + b forward and backward (dx, dw, db)', async () => {
    const dev = await testDevice();
    const [Nr, In, Out] = [13, 65, 17];
    const x = f32(randArray(Nr * In, 41));
    const w = f32(randArray(Out * In, 42));
    const b = f32(randArray(Out, 43));
    const dy = f32(randArray(Nr * Out, 44));
    const yWant = matmul64(x, w, { M: Nr, N: Out, K: In, transB: true }, b);
    const g = grads64(x, w, dy, { M: Nr, N: Out, K: In, transB: true, batch: 1, batchA: 1, batchB: 1 });
    const dbWant = new Float64Array(Out);
    for (let i = 0; i < Nr; i++) for (let j = 0; j < Out; j++) dbWant[j] += dy[i * Out + j]!;
    const X = E.Tensor.from(dev, Float32Array.from(x), [Nr, In]);
    const W = E.Tensor.from(dev, Float32Array.from(w), [Out, In]);
    const Bt = E.Tensor.from(dev, Float32Array.from(b), [Out]);
    for (const t of [X, W, Bt]) t.requiresGrad = true;
    const Y = linear(X, W, Bt);
    expect(Y.shape).toEqual([Nr, Out]);
    expectClose(await Y.f32(), yWant, { atol: 1e-5, rtol: 1e-5 }, 'linear y');
    const [gx, gw, gb] = E.grad(Y, [X, W, Bt], E.Tensor.from(dev, Float32Array.from(dy), [Nr, Out]));
    expectClose(await gx!.f32(), g.da, { atol: 1e-5, rtol: 1e-5 }, 'linear dx');
    expectClose(await gw!.f32(), g.db, { atol: 1e-5, rtol: 1e-5 }, 'linear dw');
    expectClose(await gb!.f32(), dbWant, { atol: 1e-5, rtol: 1e-5 }, 'linear db');
  });
  it('without bias, with leading batch dims, and with an activation epilogue on every kernel (matmulAct)', async () => {
    const dev = await testDevice();
    const [In, Out] = [10, 7];
    const x = f32(randArray(2 * 3 * In, 51));
    const w = f32(randArray(Out * In, 52));
    const b = f32(randArray(Out, 53));
    const X = E.Tensor.from(dev, Float32Array.from(x), [2, 3, In]);
    const W = E.Tensor.from(dev, Float32Array.from(w), [Out, In]);
    const Bt = E.Tensor.from(dev, Float32Array.from(b), [Out]);
    const y0 = linear(X, W);
    expect(y0.shape).toEqual([2, 3, Out]);
    expectClose(await y0.f32(), matmul64(x, w, { M: 6, N: Out, K: In, transB: true }), { atol: 1e-5, rtol: 1e-5 }, 'no bias');
    const want = Array.from(matmul64(x, w, { M: 6, N: Out, K: In, transB: true }, b), (v) => (v > 0 ? v : 0.5 * v));
    for (const kernel of ['auto', 'fast', 'naive', 'tiled'] as const) {
      const y1 = matmulAct(X.view([6, In]), W, { transB: true, bias: Bt, kernel }, { spec: { kind: 'prelu', params: [0.5] }, saveZ: false }).y;
      expectClose(await y1.f32(), want, { atol: 1e-5, rtol: 1e-5 }, `epilogue ${kernel}`);
    }
  });
});

describe('matmul errors', () => {
  it('names the op, the shapes and what was expected', async () => {
    const dev = await testDevice();
    const a = E.Tensor.from(dev, new Float32Array(6), [2, 3]);
    const b = E.Tensor.from(dev, new Float32Array(8), [4, 2]);
    expect(() => matmul(a, b)).toThrow(/kinkless: matmul: inner dimensions differ: a is \[\.\., 2, 3\] \(a has shape \[2, 3\]\) but b is \[\.\., 4, 2\]/);
    expect(() => matmul(a, b, { transB: true })).toThrow(/b\^T is \[\.\., 2, 4\]/);
    expect(() => matmul(a, E.Tensor.from(dev, new Float32Array(3), [3]))).toThrow(/matmul: b must have rank >= 2/);
    const a3 = E.Tensor.from(dev, new Float32Array(2 * 2 * 3), [2, 2, 3]);
    const b3 = E.Tensor.from(dev, new Float32Array(3 * 3 * 2), [3, 3, 2]);
    expect(() => matmul(a3, b3)).toThrow(/matmul: shapes \[2\] and \[3\] cannot be broadcast/);
    const w = E.Tensor.from(dev, new Float32Array(8), [2, 4]);
    expect(() => linear(a, w)).toThrow(/linear: x's last dim 3 .* must equal w's in-features 4/);
    const removed = { act: 'fn epi_act(z: f32) -> f32 { return z; }' } as unknown as Parameters<typeof matmulRaw>[2];
    expect(() => matmulRaw(a, E.Tensor.from(dev, new Float32Array(6), [3, 2]), removed)).toThrow(/matmul: option act \(a WGSL epi_act string\) was removed; pass the activation to matmulAct/);
    expect(() => linear(E.Tensor.from(dev, new Float32Array(4), [1, 4]), w, E.Tensor.from(dev, new Float32Array(3), [3]))).toThrow(/linear: b must have shape \[2\]/);
    expect(() => matmulRaw(a, E.Tensor.from(dev, new Float32Array(6), [3, 2]), { bias: E.Tensor.from(dev, new Float32Array(3), [3]) })).toThrow(/matmul: bias must be an f32 vector of shape \[2\]/);
  });
});
