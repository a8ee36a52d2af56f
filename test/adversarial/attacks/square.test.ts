// The Square attack (adversarial/attacks/square.ts) on a multiclass linear model
// z = W flatten(x) (no bias, box far away), where the minimal distance to a
// misclassification is known in closed form (float64 here):
//   L-inf: d = min_{t != y} (z_y - z_t) / ||w_y - w_t||_1   (optimum at a cube vertex)
//   L2:    d = min_{t != y} (z_y - z_t) / ||w_y - w_t||_2
// With no bias, scaling x scales every margin, so each example is scaled to d = 1.
// Below d no point of the ball is misclassified (so none may be fooled at 0.98 d); above
// it, Square must find one with a budget of 5000 queries: L-inf at 1.05 d; L2 only well
// above d (1.4 d on a smooth W, 1.5 d on an i.i.d. one: see the NOTE at the L2 tests). Also:
// targeted runs reach targets with a float64 certificate of reachability, the attack works
// on a model whose backward throws (it never asks for a gradient), the L2 search takes the
// decisions of a float64 replay of the documented update, outputs stay in the box and the
// ball, seeds reproduce, and bad options give clear errors.
import { describe, expect, it } from 'vitest';
import { testDevice } from '../../helpers/device.ts';
import { randArray } from '../../helpers/compare.ts';
import { Tensor, clone, flatten, grad, record, sum, type Device } from '../../../engine/index.ts';
import { linear } from '../../../engine/ops/matmul.ts';
import { Module, parameter } from '../../../nn/module.ts';
import { Square, makeAttack } from '../../../adversarial/attacks/index.ts';
import { squareL2Replay64, type SquareL2Case } from '../../reference/square64.ts';

const N = 16, H = 8, D = H * H, C = 10;
const FAR: [number, number] = [-1e3, 1e3];

/** logits = W flatten(x); with `boom`, any gradient through the input throws. */
class Lin extends Module {
  readonly W: Tensor;
  constructor(device: Device, readonly w: Float64Array, readonly dim: number, readonly boom = false) {
    super();
    this.W = this.registerParameter('W', parameter(device, Float32Array.from(w), [C, dim]));
  }
  forward(x: Tensor): Tensor {
    let h = x;
    if (this.boom) {
      h = clone(x);
      record(h, 'boom', [x], () => {
        throw new Error('Lin(boom): a gradient was requested');
      });
    }
    return linear(flatten(h), this.W, null);
  }
}

type Norm = 'linf' | 'l2';

/** Float64 logits of one example. */
function logits(W: Float64Array, x: ArrayLike<number>, dim: number): number[] {
  return Array.from({ length: C }, (_, c) => {
    let z = 0;
    for (let k = 0; k < dim; k++) z += W[c * dim + k]! * x[k]!;
    return z;
  });
}

function argmax(z: number[]): number {
  let b = 0;
  for (let c = 1; c < C; c++) if (z[c]! > z[b]!) b = c;
  return b;
}

/** Label (the argmax) and closed-form minimal distance of one example with `dim` inputs. */
function distance(W: Float64Array, x: ArrayLike<number>, norm: Norm, dim = D): { y: number; d: number } {
  const z = logits(W, x, dim);
  const y = argmax(z);
  let d = Infinity;
  for (let t = 0; t < C; t++) {
    if (t === y) continue;
    let n = 0;
    for (let k = 0; k < dim; k++) {
      const v = W[y * dim + k]! - W[t * dim + k]!;
      n += norm === 'linf' ? Math.abs(v) : v * v;
    }
    d = Math.min(d, (z[y]! - z[t]!) / (norm === 'linf' ? n : Math.sqrt(n)));
  }
  return { y, d };
}

/**
 * Rows of a spatially smooth W on h x h inputs: each class is a sum of 4 separable 2-D
 * cosines cos(pi u (i + 1/2) / h) cos(pi v (j + 1/2) / h) with frequencies u, v in {0, 1, 2}
 * and weights uniform in [-1, 1], plus uniform noise of amplitude 0.05 per pixel (float32
 * values). Every w_y - w_t, the optimal L2 direction, is then smooth, as image gradients are.
 */
function smoothW(h: number, seed: number): Float64Array {
  const P = h * h;
  const r = randArray(C * 4 * 3 + C * P, seed, 0, 1);
  let q = 0;
  const W = new Float64Array(C * P);
  for (let c = 0; c < C; c++) {
    for (let k = 0; k < 4; k++) {
      const u = Math.floor(r[q++]! * 3);
      const v = Math.floor(r[q++]! * 3);
      const a = 2 * r[q++]! - 1;
      for (let i = 0; i < h; i++) for (let j = 0; j < h; j++) W[c * P + i * h + j] += a * Math.cos((Math.PI * u * (i + 0.5)) / h) * Math.cos((Math.PI * v * (j + 0.5)) / h);
    }
    for (let k = 0; k < P; k++) W[c * P + k] += 0.05 * (2 * r[q++]! - 1);
  }
  return Float64Array.from(W, (v) => Math.fround(v));
}

/**
 * N examples on h x h inputs for the weights W (default: i.i.d. uniform per pixel on 8 x 8),
 * each scaled to distance 1; labels and distances recomputed in float64 from the float32
 * inputs.
 */
async function linearCase(norm: Norm, boom = false, h = H, Wgiven?: Float64Array) {
  const dev = await testDevice();
  const P = h * h;
  const W = Wgiven ?? Float64Array.from(randArray(C * P, 5, -1, 1), (v) => Math.fround(v));
  const X = new Float32Array(N * P);
  const Y = new Int32Array(N);
  const d = new Float64Array(N);
  for (let r = 0; r < N; r++) {
    const x = randArray(P, 100 + r, -1, 1);
    const d0 = distance(W, x, norm, P).d;
    const xs = Float32Array.from(x, (v) => v / d0);
    const got = distance(W, xs, norm, P); // recomputed from the float32 inputs
    X.set(xs, r * P);
    Y[r] = got.y;
    d[r] = got.d;
  }
  const model = new Lin(dev, W, P, boom);
  return { dev, W, X, Y, d, P, model, x: Tensor.from(dev, X, [N, 1, h, h]), y: Tensor.from(dev, Y, [N], 'i32') };
}

/** Largest per-example perturbation norm of xa - x (float64). */
function maxNorm(xa: Float32Array, x: Float32Array, per: number, norm: Norm): number[] {
  const out: number[] = [];
  for (let r = 0; r < xa.length / per; r++) {
    let n = 0;
    for (let k = 0; k < per; k++) {
      const v = Math.abs(xa[r * per + k]! - x[r * per + k]!);
      n = norm === 'linf' ? Math.max(n, v) : n + v * v;
    }
    out.push(norm === 'linf' ? n : Math.sqrt(n));
  }
  return out;
}

/**
 * True when no single-pixel sign flip of the L-inf vertex delta = xa - x lowers the margin
 * z_y - max_{t != y} z_t (float64): where a random search with 1 x 1 squares can stop.
 */
function singleFlipLocalMin(W: Float64Array, x: Float32Array, xa: Float32Array, y: number): boolean {
  const margin = (v: ArrayLike<number>) => {
    const z = logits(W, v, D);
    let o = -Infinity;
    for (let c = 0; c < C; c++) if (c !== y) o = Math.max(o, z[c]!);
    return z[y]! - o;
  };
  const m0 = margin(xa);
  for (let k = 0; k < D; k++) {
    const v = Float64Array.from(xa);
    v[k] = 2 * x[k]! - xa[k]!; // the flipped sign
    if (margin(v) < m0 - 1e-9 * Math.abs(m0)) return false;
  }
  return true;
}

describe('Square on a linear model (closed-form distances)', () => {
  it('L-inf: fools at least 14 of 16 at 1.05 d, the rest sit at single-flip local minima; none at 0.98 d', async () => {
    const s = await linearCase('linf');
    const eps = 1.05 * Math.max(...s.d);
    const atk = new Square({ eps, bounds: FAR, seed: 1 });
    const r = await atk.attack(s.model, s.x, s.y);
    const xa = await r.xAdv.f32();
    const pred = Array.from({ length: N }, (_, i) => argmax(logits(s.W, xa.subarray(i * D, (i + 1) * D), D)));
    const fooled = pred.filter((p, i) => p !== s.Y[i]).length;
    // NOTE: the margin is a minimum of linear functions (one per competitor), so greedy
    // search can lock onto a competitor whose own optimal vertex does not cross the boundary
    // (measured: 15 of 16 fooled, one locked). Any unfooled example must be such a lock-in.
    expect(fooled).toBeGreaterThanOrEqual(14);
    for (let i = 0; i < N; i++) {
      expect(r.fooled[i], `fooled flag of example ${i}`).toBe(pred[i] !== s.Y[i] ? 1 : 0);
      if (pred[i] === s.Y[i]) expect(singleFlipLocalMin(s.W, s.X.subarray(i * D, (i + 1) * D), xa.subarray(i * D, (i + 1) * D), s.Y[i]!), `example ${i}`).toBe(true);
      if (pred[i] !== s.Y[i]) expect(r.queries[i]).toBeLessThan(5001);
    }
    // NOTE: x + eps rounds to float32 at |x| up to ~30 here: allow a few ulps of max |x|.
    const ulps = 4 * 2 ** -24 * Math.max(...Array.from(s.X, Math.abs));
    for (const n of maxNorm(xa, s.X, D, 'linf')) expect(n).toBeLessThanOrEqual(eps * (1 + 1e-6) + ulps);
    // Below d: impossible, whatever the search does (a short budget suffices to show it).
    const low = new Square({ eps: 0.98 * Math.min(...s.d), bounds: FAR, seed: 2, queries: 300 });
    const rl = await low.attack(s.model, s.x, s.y);
    expect(Array.from(rl.fooled)).toEqual(new Array(N).fill(0));
    expect(Array.from(rl.queries)).toEqual(new Array(N).fill(301));
  });

  /** L2 Square at f d (seed 1, default 5000 queries): every example fooled, in the ball; none at 0.98 d. */
  async function l2FoolsAllAt(s: Awaited<ReturnType<typeof linearCase>>, f: number) {
    const P = s.P;
    const eps = f * Math.max(...s.d);
    const r = await new Square({ norm: 'l2', eps, bounds: FAR, seed: 1 }).attack(s.model, s.x, s.y);
    const xa = await r.xAdv.f32();
    for (let i = 0; i < N; i++) {
      expect(argmax(logits(s.W, xa.subarray(i * P, (i + 1) * P), P)), `example ${i}`).not.toBe(s.Y[i]);
      expect(r.fooled[i], `fooled flag of example ${i}`).toBe(1);
      expect(r.queries[i]).toBeLessThanOrEqual(5001);
    }
    const ulps = 4 * 2 ** -24 * Math.max(...Array.from(s.X, Math.abs)) * Math.sqrt(P);
    for (const n of maxNorm(xa, s.X, P, 'l2')) expect(n).toBeLessThanOrEqual(eps * (1 + 1e-5) + ulps);
    // Below d: impossible, whatever the search does (a short budget suffices to show it).
    const low = new Square({ norm: 'l2', eps: 0.98 * Math.min(...s.d), bounds: FAR, seed: 2, queries: 300 });
    const rl = await low.attack(s.model, s.x, s.y);
    expect(Array.from(rl.fooled)).toEqual(new Array(N).fill(0));
    expect(Array.from(rl.queries)).toEqual(new Array(N).fill(301));
  }

  // NOTE: L2 Square does not get close to d on these models, and that is the published
  // algorithm, not this implementation: every proposal zeroes a second window W2 and puts
  // the mass of W1 u W2 into W1 as an equal mix of W1's old (normalised) content and a
  // fixed dipole pattern, a large move that near the optimum loses more (the zeroed W2)
  // than it gains, so the search stalls well short of the optimal direction. A float64
  // host re-implementation of the published update (another random stream) gave the same
  // picture. Fooled of 16 at 1.02 / 1.05 / 1.1 / 1.2 / 1.3 / 1.4 / 1.5 d (docs/autoattack.md):
  //   i.i.d. W, 8 x 8:   0 / 0 / 0 / 1 / - / - / 16 (at most 1260 queries at 1.5 d);
  //   smooth W, 12 x 12: 0 / 0 / 0 / 3 / 16 (up to 4301 queries) / 16 (2446) / 16 (991).
  // The L-inf test above is the sharp one; these check the L2 search makes real progress.
  it('L2, i.i.d. W on 8 x 8: fools all 16 at 1.5 d within the budget, none at 0.98 d', async () => {
    await l2FoolsAllAt(await linearCase('l2'), 1.5);
  });

  it('L2, spatially smooth W on 12 x 12: fools all 16 at 1.4 d within the budget, none at 0.98 d', async () => {
    // 12 x 12 does not divide the window sides (7, 5, 3 on 8 x 8; 11, 9, 5, 3 here). At 1.3 d
    // all 16 fall too, but the last at 4301 queries of 5000 (and the host re-implementation
    // fooled 14): 1.4 d leaves room for another device's rounding of the logits.
    await l2FoolsAllAt(await linearCase('l2', false, 12, smoothW(12, 5)), 1.4);
  });
});

describe('Square, targeted', () => {
  it('L-inf: reaches targets known to be reachable (a float64 certificate vertex per example)', async () => {
    const s = await linearCase('linf');
    const eps = 3 * Math.max(...s.d);
    // Target: the first class t after y for which the vertex x + eps sign(w_t - mean_{j != t} w_j)
    // makes t the argmax (checked in float64): a witness that the target is reachable.
    const tg = Int32Array.from(s.Y, (y, i) => {
      const x = s.X.subarray(i * D, (i + 1) * D);
      for (let k = 1; k < C; k++) {
        const t = (y + k) % C;
        const v = Float64Array.from(x, (xv, p) => {
          let m = 0;
          for (let j = 0; j < C; j++) if (j !== t) m += s.W[j * D + p]! / (C - 1);
          return xv + eps * Math.sign(s.W[t * D + p]! - m);
        });
        if (argmax(logits(s.W, v, D)) === t) return t;
      }
      throw new Error(`no certified target for example ${i}`);
    });
    const r = await new Square({ eps, bounds: FAR, seed: 4, targeted: true }).attack(s.model, s.x, Tensor.from(s.dev, tg, [N], 'i32'));
    const xa = await r.xAdv.f32();
    let hit = 0;
    for (let i = 0; i < N; i++) {
      const z = logits(s.W, xa.subarray(i * D, (i + 1) * D), D);
      const reached = argmax(z) === tg[i];
      hit += reached ? 1 : 0;
      expect(r.fooled[i], `example ${i}`).toBe(reached ? 1 : 0);
      // The reported margin is max_{j != t} z_j - z_t at the returned point (float64 here).
      const other = Math.max(...z.filter((_, c) => c !== tg[i]));
      expect(r.margins[i]).toBeCloseTo(other - z[tg[i]!]!, 3);
    }
    expect(hit).toBe(N); // measured: 16 of 16
  });
});

describe('Square never asks for a gradient', () => {
  it('fools a model whose backward throws, and restores requiresGrad', async () => {
    const s = await linearCase('linf', true);
    // The model really does throw on any gradient through its input.
    const xg = clone(s.x);
    xg.requiresGrad = true;
    expect(() => grad(sum(s.model.forward(xg)), [xg])).toThrow(/a gradient was requested/);
    const r = await new Square({ eps: 2 * Math.max(...s.d), bounds: FAR, seed: 3 }).attack(s.model, s.x, s.y);
    const xa = await r.xAdv.f32();
    for (let i = 0; i < N; i++) expect(argmax(logits(s.W, xa.subarray(i * D, (i + 1) * D), D))).not.toBe(s.Y[i]);
    expect(s.model.W.requiresGrad).toBe(true);
  });
});

describe('Square: box, ball, bookkeeping, seeds, errors', () => {
  // Non-square images with 2 channels, inputs in [0, 1] near the edges so the box clips.
  const SH = [2, 5, 7] as const;
  const P = SH[0] * SH[1] * SH[2];
  const M = 5;
  async function boxCase() {
    const dev = await testDevice();
    const W = Float64Array.from(randArray(C * P, 11, -1, 1), (v) => Math.fround(v));
    const X = Float32Array.from(randArray(M * P, 12, 0, 1), (v) => (v < 0.2 ? 0 : v > 0.8 ? 1 : v));
    const model = new Lin(dev, W, P);
    const Y = Int32Array.from({ length: M }, (_, r) => argmax(logits(W, X.subarray(r * P, (r + 1) * P), P)));
    Y[0] = (Y[0]! + 1) % C; // already misclassified: no queries, returned unchanged
    return { dev, W, model, X, Y, x: Tensor.from(dev, X, [M, ...SH]), y: Tensor.from(dev, Y, [M], 'i32') };
  }

  for (const norm of ['linf', 'l2'] as const) {
    it(`${norm}: outputs in [0, 1] and the eps-ball; misclassified inputs untouched; seeds reproduce; no leaks`, async () => {
      const s = await boxCase();
      const eps = norm === 'linf' ? 0.3 : 2;
      const run = async (seed: number) => {
        const atk = new Square({ norm, eps, seed, queries: 40 });
        const r = await atk.attack(s.model, s.x, s.y);
        return { r, xa: await r.xAdv.f32(), atk };
      };
      const live = s.dev.stats().liveBuffers;
      const a = await run(7);
      // Nothing leaks: only the returned tensor stays alive.
      expect(s.dev.stats().liveBuffers).toBe(live + 1);
      for (const v of a.xa) expect(v >= 0 && v <= 1).toBe(true);
      for (const n of maxNorm(a.xa, s.X, P, norm)) expect(n).toBeLessThanOrEqual(eps * (1 + 1e-5) + 1e-7);
      expect(a.r.queries[0]).toBe(0);
      expect(Array.from(a.xa.subarray(0, P))).toEqual(Array.from(s.X.subarray(0, P)));
      for (let i = 1; i < M; i++) expect(a.r.queries[i]).toBeGreaterThanOrEqual(1);
      expect(Array.from(a.atk.lastQueries!)).toEqual(Array.from(a.r.queries));
      const b = await run(7);
      expect(Array.from(b.xa)).toEqual(Array.from(a.xa));
      expect(Array.from(b.r.queries)).toEqual(Array.from(a.r.queries));
      const c = await run(8);
      expect(Array.from(c.xa)).not.toEqual(Array.from(a.xa));
      // perturb() returns the same points as attack() for the same seed.
      const xp = await (await new Square({ norm, eps, seed: 7, queries: 40 }).perturb(s.model, s.x, s.y)).f32();
      expect(Array.from(xp)).toEqual(Array.from(a.xa));
    });
  }

  /**
   * L2 Square on the GPU against its float64 replay from the documented update
   * (test/reference/square64.ts, the same random stream): the same query counts and
   * successes, the same points and margins to float32 rounding. This pins the two-window
   * mass move, the per-channel rescaling, the box clip and the acceptance to the published
   * algorithm (docs/autoattack.md, "Square").
   */
  async function matchesReplay(k: SquareL2Case, model: Module, x: Tensor, y: Tensor) {
    const ref = squareL2Replay64(k);
    // The replay binds only where no two compared margins are within float32 rounding
    // (measured: closest relative gaps 4.5e-3 and 2.2e-4 in the two cases below).
    expect(ref.minGap).toBeGreaterThan(1e-4);
    const r = await new Square({ norm: 'l2', eps: k.eps, bounds: k.bounds as [number, number], seed: k.seed, queries: k.queries, pInit: k.pInit }).attack(model, x, y);
    expect(Array.from(r.queries)).toEqual(Array.from(ref.queries));
    expect(Array.from(r.fooled)).toEqual(Array.from(ref.fooled));
    const xa = await r.xAdv.f32();
    let err = 0;
    for (let j = 0; j < xa.length; j++) err = Math.max(err, Math.abs(xa[j]! - ref.xAdv[j]!));
    expect(err).toBeLessThan(1e-4); // measured 1.8e-7 (box case), 1.3e-5 (|x| up to ~30)
    for (let i = 0; i < k.shape[0]; i++) expect(Math.abs(r.margins[i]! - ref.margins[i]!)).toBeLessThan(1e-4 * Math.max(1, Math.abs(ref.margins[i]!)));
  }

  it('l2: the same decisions and points as a float64 replay of the documented update (2 x 5 x 7, box clipping)', async () => {
    // Inputs at the box edges: the clip leaves ||delta|| < eps, so the room term and its
    // division by C = 2 matter; the 4 attacked examples are fooled after 1 to 54 iterations.
    const s = await boxCase();
    await matchesReplay({ W: s.W, classes: C, X: s.X, shape: [M, ...SH], labels: s.Y, eps: 2, bounds: [0, 1], queries: 80, pInit: 0.8, seed: 7 }, s.model, s.x, s.y);
  });

  it('l2: the same decisions and points as a float64 replay of the documented update (8 x 8, sides 7, 5, 3)', async () => {
    // 300 iterations, none fooled yet: every schedule stage up to side 3 on 16 examples.
    const s = await linearCase('l2');
    await matchesReplay({ W: s.W, classes: C, X: s.X, shape: [N, 1, H, H], labels: s.Y, eps: 1.5 * Math.max(...s.d), bounds: FAR, queries: 300, pInit: 0.8, seed: 3 }, s.model, s.x, s.y);
  });

  it('rejects bad options and inputs with clear errors', async () => {
    const s = await boxCase();
    expect(() => new Square({ eps: -1 })).toThrow(/Square: eps must be a finite number >= 0, got -1/);
    expect(() => new Square({ eps: 0.1, norm: 'l1' as 'l2' })).toThrow(/norm must be 'linf' or 'l2', got "l1"/);
    expect(() => new Square({ eps: 0.1, queries: 0 })).toThrow(/queries must be an integer >= 1, got 0/);
    expect(() => new Square({ eps: 0.1, pInit: 1.5 })).toThrow(/pInit must be a number in \(0, 1\], got 1.5/);
    expect(() => new Square({ eps: 0.1, pInit: 0 })).toThrow(/pInit/);
    expect(() => new Square({ eps: 0.1, bnMode: 'x' as 'eval' })).toThrow(/bnMode/);
    const atk = new Square({ eps: 0.1 });
    expect(() => atk.generate(s.model, s.x, s.y)).toThrow(/use 'await attack.perturb/);
    const flat = Tensor.from(s.dev, s.X, [M, P]);
    await expect(atk.perturb(s.model, flat, s.y)).rejects.toThrow(/x must be images \[N, C, H, W\], got \[5, 70\]/);
    const bad = Tensor.from(s.dev, Int32Array.of(0, 1, 2, 3, C), [M], 'i32');
    await expect(atk.perturb(s.model, s.x, bad)).rejects.toThrow(/label 10 of example 4 is outside \[0, 10\)/);
    expect(s.model.W.requiresGrad).toBe(true);
    expect(makeAttack({ kind: 'square', eps: 0.1 })).toBeInstanceOf(Square);
  });
});
