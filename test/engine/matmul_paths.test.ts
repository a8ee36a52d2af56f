// Every GEMM path (register-blocked 'fast', subgroup A-broadcast, mirror B-broadcast, split-K
// with its reduce, and the 'auto' choice) against the float64 reference matmul64, on shapes
// that divide none of the tiles (1, 7, 33, 129), all four transpose combinations, batches,
// bias, fused activation epilogues (uniform and tensor parameters, saveZ) and extreme values.
// The subgroup paths run only where the adapter has the fixed subgroup size they are
// written for (llvmpipe: 8); elsewhere 'auto' must fall back and explicit requests throw.
import { describe, it, expect } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import { expectClose, expectNoNaN, f32, randArray } from '../helpers/compare.ts';
import { matmul64 } from '../../kernels/matmul.ts';
import * as E from '../../engine/index.ts';
import type { Device } from '../../engine/device.ts';
import { chooseMatmulKernel, matmulAct, matmulRaw, subgroupGemmSupported, type MatmulRawOptions } from '../../engine/ops/matmul.ts';

const dev: Device = await testDevice();
const SG = subgroupGemmSupported(dev);

/** The paths under test; `sg` paths need subgroup support. */
const PATHS: { name: string; o: MatmulRawOptions; sg: boolean }[] = [
  { name: 'fast', o: { kernel: 'fast' }, sg: false },
  { name: 'subgroup 8x32', o: { kernel: 'subgroup', sg: { layout: 'bcastA', rows: 8, vecs: 1 } }, sg: true },
  { name: 'subgroup 4x64', o: { kernel: 'subgroup', sg: { layout: 'bcastA', rows: 4, vecs: 2 } }, sg: true },
  { name: 'mirror 8x4', o: { kernel: 'mirror', sg: { rows: 1, vecs: 1 } }, sg: true },
  { name: 'mirror 16x8', o: { kernel: 'mirror', sg: { rows: 2, vecs: 2 } }, sg: true },
  { name: 'split-K 3 (subgroup)', o: { kernel: 'splitk', splitK: 3 }, sg: true },
  { name: 'split-K 2 (mirror)', o: { kernel: 'mirror', splitK: 2 }, sg: true },
  { name: 'auto', o: {}, sg: false },
];
const paths = PATHS.filter((p) => SG || !p.sg);

const TR = [
  [false, false],
  [true, false],
  [false, true],
  [true, true],
] as const;

interface Case {
  M: number;
  N: number;
  K: number;
  tA: boolean;
  tB: boolean;
  /** Batch of a and b (1 = shared / 2-D). */
  bA?: number;
  bB?: number;
  bias?: boolean;
  seed?: number;
  scale?: number;
}

/** Run one product on the GPU and compare it with matmul64 (tolerance ~ K * eps * |a||b|). */
async function check(c: Case, o: MatmulRawOptions, what: string): Promise<void> {
  const { M, N, K, tA, tB } = c;
  const bA = c.bA ?? 1;
  const bB = c.bB ?? 1;
  const batch = Math.max(bA, bB);
  const s = c.scale ?? 1;
  const seed = c.seed ?? M * 131 + N * 17 + K;
  const a = f32(Array.from(randArray(bA * M * K, seed), (v) => v * s));
  const b = f32(Array.from(randArray(bB * K * N, seed + 1), (v) => v * s));
  const bias = c.bias ? f32(randArray(N, seed + 2)) : undefined;
  const matA = tA ? [K, M] : [M, K];
  const matB = tB ? [N, K] : [K, N];
  const A = E.Tensor.from(dev, Float32Array.from(a), bA > 1 ? [bA, ...matA] : matA);
  const B = E.Tensor.from(dev, Float32Array.from(b), bB > 1 ? [bB, ...matB] : matB);
  const Bias = bias ? E.Tensor.from(dev, Float32Array.from(bias), [N]) : undefined;
  const Y = matmulRaw(A, B, { ...o, transA: tA, transB: tB, bias: Bias });
  const want = matmul64(a, b, { M, N, K, batch, batchA: bA, batchB: bB, transA: tA, transB: tB }, bias);
  const got = await Y.f32();
  expectNoNaN(got, what);
  // NOTE: inputs in [-s, s]: the float32 sum of K products errs by at most ~K eps s^2.
  expectClose(got, want, { atol: 1.2e-7 * K * s * s + 1e-6 * s * s, rtol: 1e-5 }, what);
  for (const t of [A, B, Y, ...(Bias ? [Bias] : [])]) t.dispose();
}

describe.each(paths)('matmul path $name', ({ name, o }) => {
  it('ragged shapes (1, 7, 33, 129) with every transpose combination', async () => {
    const shapes: [number, number, number][] = [
      [1, 1, 1],
      [7, 33, 129],
      [33, 7, 129],
      [129, 33, 7],
      [1, 129, 33],
    ];
    for (const [M, N, K] of shapes) for (const [tA, tB] of TR) await check({ M, N, K, tA, tB }, o, `${name} ${M}x${N}x${K} tA=${tA} tB=${tB}`);
  });
  it('vec4 layouts (multiples of 4) with ragged tiles, and a long K', async () => {
    for (const [tA, tB] of TR) await check({ M: 36, N: 44, K: 68, tA, tB }, o, `${name} 36x44x68 tA=${tA} tB=${tB}`);
    await check({ M: 12, N: 10, K: 2052, tA: false, tB: true, bias: true }, o, `${name} dense-like 12x10x2052 tB`);
    await check({ M: 9, N: 12, K: 1029, tA: true, tB: false }, o, `${name} 9x12x1029 tA`);
  });
  it('batches (equal, broadcast a, broadcast b with transA) and bias', async () => {
    await check({ M: 7, N: 9, K: 13, tA: false, tB: false, bA: 3, bB: 3, bias: true }, o, `${name} batch 3`);
    await check({ M: 7, N: 9, K: 13, tA: true, tB: true, bA: 1, bB: 2 }, o, `${name} a shared`);
    await check({ M: 33, N: 8, K: 20, tA: true, tB: false, bA: 2, bB: 1, bias: true }, o, `${name} b shared, transA`);
    await check({ M: 5, N: 12, K: 16, tA: false, tB: true, bA: 4, bB: 1 }, o, `${name} b shared (folded rows)`);
  });
  it('extreme magnitudes: accurate at 1e18 and 1e-18, inf rows stay in their rows', async () => {
    await check({ M: 9, N: 10, K: 11, tA: false, tB: false, scale: 1e18 }, o, `${name} 1e18`);
    // 1e-36 products are float32 denormals (may flush to zero): compare absolutely there.
    const [M, N, K] = [9, 10, 11];
    const a = f32(Array.from(randArray(M * K, 5), (v) => v * 1e-18));
    const b = f32(Array.from(randArray(K * N, 6), (v) => v * 1e-18));
    const Y = matmulRaw(E.Tensor.from(dev, Float32Array.from(a), [M, K]), E.Tensor.from(dev, Float32Array.from(b), [K, N]), o);
    expectClose(await Y.f32(), matmul64(a, b, { M, N, K }), { atol: 1e-37, rtol: 1e-4 }, `${name} 1e-18`);
    // The last row of a and the last column of b are +inf; every other entry is finite and
    // positive, so y is +inf exactly in the last row and column (edge lanes clamp their reads
    // to that row / column and must not store what they computed from it elsewhere).
    for (const [m, n, k] of [
      [9, 10, 11],
      [33, 37, 20],
    ] as const) {
      const av = new Float32Array(m * k).map((_, i) => (Math.floor(i / k) === m - 1 ? Infinity : 0.5 + (i % 3)));
      const bv = new Float32Array(k * n).map((_, i) => (i % n === n - 1 ? Infinity : 0.25 + (i % 5)));
      const got = await matmulRaw(E.Tensor.from(dev, av, [m, k]), E.Tensor.from(dev, bv, [k, n]), o).f32();
      const want = matmul64(av, bv, { M: m, N: n, K: k });
      expectNoNaN(got, `${name} inf`);
      for (let i = 0; i < got.length; i++) if (got[i] !== want[i] && !(Math.abs(got[i]! - want[i]!) <= 1e-5 * want[i]!)) throw new Error(`${name} inf ${m}x${n}x${k}: y[${i}] = ${got[i]}, want ${want[i]}`);
    }
  });
  it('fused epilogues: relu with saveZ, prelu with a tensor parameter, prelu with a uniform parameter and no bias', async () => {
    const [M, N, K] = [33, 10, 1030];
    const x = f32(randArray(M * K, 71));
    const w = f32(randArray(N * K, 72));
    const bias = f32(randArray(N, 73));
    const X = E.Tensor.from(dev, Float32Array.from(x), [M, K]);
    const W = E.Tensor.from(dev, Float32Array.from(w), [N, K]);
    const Bt = E.Tensor.from(dev, Float32Array.from(bias), [N]);
    const zWant = matmul64(x, w, { M, N, K, transB: true }, bias);
    const tol = { atol: 1.2e-7 * K + 1e-6, rtol: 1e-5 };
    const r = matmulAct(X, W, { ...o, transB: true, bias: Bt }, { spec: 'relu', saveZ: true });
    expectClose(await r.y.f32(), Array.from(zWant, (v) => Math.max(v, 0)), tol, `${name} relu y`);
    expectClose(await r.z!.f32(), zWant, tol, `${name} relu z`);
    const pa = E.Tensor.from(dev, [0.25], [1]);
    const p = matmulAct(X, W, { ...o, transB: true, bias: Bt }, { spec: { kind: 'prelu', raw: pa }, saveZ: false });
    expect(p.z).toBeNull();
    expectClose(await p.y.f32(), Array.from(zWant, (v) => (v > 0 ? v : 0.25 * v)), tol, `${name} prelu (tensor a)`);
    const z0 = matmul64(x, w, { M, N, K, transB: true });
    const l = matmulAct(X, W, { ...o, transB: true }, { spec: { kind: 'prelu', params: [-2] }, saveZ: false });
    expectClose(await l.y.f32(), Array.from(z0, (v) => (v > 0 ? v : -2 * v)), { atol: 2 * tol.atol, rtol: 1e-5 }, `${name} prelu (uniform a = -2), no bias`);
  });
});

describe('matmul kernel choice', () => {
  it("'auto' picks the subgroup GEMM only on an adapter with fixed 8-wide subgroups", () => {
    const c = chooseMatmulKernel({ M: 1024, N: 1024, K: 1024, batch: 1 }, dev);
    expect(c.kernel).toBe(SG ? 'subgroup' : 'fast');
    if (!SG) expect(() => chooseMatmulKernel({ M: 8, N: 8, K: 8, batch: 1 }, dev, 'subgroup')).toThrow(/kernel 'subgroup' needs the 'subgroups' feature/);
  });
  it.runIf(SG)('tiles by shape; split-K only for a one-workgroup output with a long K', () => {
    const dense = chooseMatmulKernel({ M: 128, N: 10, K: 9216, batch: 1, transB: true }, dev);
    expect(dense).toEqual({ kernel: 'subgroup', tile: { layout: 'bcastB', rows: 2, vecs: 1 }, split: 1 });
    const short = chooseMatmulKernel({ M: 10, N: 9216, K: 128, batch: 1, transA: true }, dev);
    expect(short).toEqual({ kernel: 'subgroup', tile: { layout: 'bcastA', rows: 10, vecs: 1 }, split: 1 });
    const sq = chooseMatmulKernel({ M: 1024, N: 1024, K: 1024, batch: 1 }, dev);
    expect(sq).toEqual({ kernel: 'subgroup', tile: { layout: 'bcastB', rows: 4, vecs: 2 }, split: 1 });
    const one = chooseMatmulKernel({ M: 8, N: 4, K: 16384, batch: 1, transB: true }, dev);
    expect(one.kernel === 'subgroup' && one.split).toBeGreaterThan(1);
    // A forced split keeps slices of >= 512 (at least 2 slices).
    const forced = chooseMatmulKernel({ M: 128, N: 10, K: 1030, batch: 1 }, dev, 'splitk');
    expect(forced.kernel === 'subgroup' && forced.split).toBe(2);
  });
  it.runIf(SG)("'auto' splits K on a one-workgroup output and matches the reference", async () => {
    await check({ M: 5, N: 3, K: 5000, tA: false, tB: true, bias: true }, {}, 'auto one-group split');
    await check({ M: 5, N: 3, K: 5000, tA: true, tB: false, bA: 2, bB: 2 }, {}, 'auto batch 2 (no split)');
  });
  it('rejects a bad kernel name and a bad split count', async () => {
    const A = E.Tensor.from(dev, new Float32Array(4), [2, 2]);
    expect(() => matmulRaw(A, A, { kernel: 'bogus' as never })).toThrow(/matmul: kernel must be one of auto, fast/);
    if (SG) expect(() => matmulRaw(A, A, { kernel: 'subgroup', splitK: 0 })).toThrow(/splitK must be an integer >= 1, got 0/);
  });
});
