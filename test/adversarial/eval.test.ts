// Robust evaluation: the per-example worst-case combination on hand-made correctness
// vectors, an end-to-end case on a linear binary model whose outcome under FGSM and FGM
// is known in closed form (margin y z against eps ||w||_1 and eps ||w||_2) plus a replay
// attack that flips a chosen subset, and the gradient-masking checks on an honest linear
// model (all pass) and on a saturated one (zero gradients, huge eps leaves accuracy up).
import { describe, it, expect } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import { f32, randArray } from '../helpers/compare.ts';
import { Tensor, flatten, type Device } from '../../engine/index.ts';
import { linear } from '../../engine/ops/matmul.ts';
import { Module, parameter } from '../../nn/module.ts';
import type { ImageSet } from '../../nn/data/loader.ts';
import { Fgm, Fgsm, type Attack } from '../../adversarial/attacks/index.ts';
import { resolveThreat } from '../../adversarial/threat.ts';
import { evaluateRobust, maskingChecks, maskingVerdict, worstCaseCorrect } from '../../adversarial/eval.ts';

const SHAPE: [number, number, number] = [3, 5, 7];
const D = 105;

/** logits = [0, w.x + b]. */
class BinaryLinear extends Module {
  constructor(device: Device, w: Float64Array, b: number) {
    super();
    const W = new Float32Array(2 * D);
    W.set(Float32Array.from(w), D);
    this.registerParameter('W', parameter(device, W, [2, D]));
    this.registerParameter('b', parameter(device, Float32Array.from([0, b]), [2], 'bias'));
  }
  forward(x: Tensor): Tensor {
    const [W, b] = this.parameters() as [Tensor, Tensor];
    return linear(flatten(x), W, b);
  }
}

/** Test double: returns precomputed adversarial images, batch after batch. */
class Replay implements Attack {
  readonly name = 'replay';
  readonly threat = resolveThreat({ norm: 'linf', eps: 1 });
  private pos = 0;
  constructor(private readonly images: Float32Array) {}
  generate(_m: Module, x: Tensor, _y?: Tensor): Tensor {
    const n = x.shape[0]!;
    const t = Tensor.from(x.device, this.images.subarray(this.pos * D, (this.pos + n) * D), x.shape);
    this.pos += n;
    return t;
  }
  async perturb(m: Module, x: Tensor, y: Tensor): Promise<Tensor> {
    return this.generate(m, x, y);
  }
}

function makeData(n: number, seed: number, flipEvery: number): { data: ImageSet; w: Float64Array; b: number; z: number[] } {
  const w = f32(randArray(D, seed, -1, 1));
  const b = 0.1;
  const x = f32(randArray(n * D, seed + 1, 0.4, 0.6));
  const z: number[] = [];
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let zi = b;
    for (let j = 0; j < D; j++) zi += w[j]! * x[i * D + j]!;
    z.push(zi);
    labels[i] = (zi > 0 ? 1 : 0) ^ (i % flipEvery === flipEvery - 1 ? 1 : 0); // some clean errors
  }
  return { data: { images: Float32Array.from(x), labels, n, shape: SHAPE }, w, b, z };
}

describe('worst-case combination', () => {
  it('an example is robust only if correct clean and under every attack', () => {
    const clean = [1, 1, 1, 0, 1, 1, 1];
    const a = [1, 0, 1, 1, 1, 0, 1];
    const b = [1, 1, 0, 1, 1, 0, 1];
    expect(Array.from(worstCaseCorrect(clean, [a, b]))).toEqual([1, 0, 0, 0, 1, 0, 1]);
    expect(Array.from(worstCaseCorrect(clean, []))).toEqual(clean);
    expect(() => worstCaseCorrect(clean, [a, [1, 0]])).toThrow(/attack 1 has 2 entries, clean has 7/);
  });
});

describe('evaluateRobust end to end', () => {
  it('matches the closed-form outcome on a linear model, batch size not dividing n', async () => {
    const d = await testDevice();
    const n = 40;
    const { data, w, b, z } = makeData(n, 31, 7);
    const model = new BinaryLinear(d, w, b);
    const l1 = w.reduce((a, v) => a + Math.abs(v), 0);
    const l2 = Math.hypot(...w);
    const margins = z.map((zi, i) => (data.labels[i] === 1 ? zi : -zi));
    // Pick eps values whose thresholds split the examples, away from any margin.
    const sorted = margins.filter((m) => m > 0).sort((p, q) => p - q);
    const mid = (k: number) => (sorted[k]! + sorted[k + 1]!) / 2;
    const epsInf = mid(Math.floor(sorted.length * 0.6)) / l1;
    const epsL2 = mid(Math.floor(sorted.length * 0.3)) / l2;
    for (const m of margins) {
      expect(Math.abs(m - epsInf * l1)).toBeGreaterThan(1e-4);
      expect(Math.abs(m - epsL2 * l2)).toBeGreaterThan(1e-4);
    }
    // The replay attack mirrors every 3rd example across the boundary (z -> -z).
    const mirror = new Float32Array(data.images);
    for (let i = 0; i < n; i += 3) for (let j = 0; j < D; j++) mirror[i * D + j] = data.images[i * D + j]! - (2 * z[i]! * w[j]!) / (l2 * l2);
    const attacks: Attack[] = [new Fgsm({ eps: epsInf }), new Fgm({ eps: epsL2 }), new Replay(mirror)];
    const model0 = model.train(true);
    const progress: [number, string, number][] = [];
    const r = await evaluateRobust(d, model0, data, { attacks, batchSize: 16, perExample: true, countZeroGrad: true, onProgress: (i) => progress.push([i.done, i.attack, i.batchEnd]) });
    // One progress call per (batch, attack), done rising to n.
    const batches = Math.ceil(n / 16);
    expect(progress.length).toBe(batches * attacks.length);
    expect(progress.every((p, k) => k === 0 || p[0] > progress[k - 1]![0])).toBe(true);
    expect(progress[progress.length - 1]).toEqual([n, 'replay', n]);
    expect(progress.slice(0, 3).map((p) => p[1])).toEqual(attacks.map((a) => a.name));
    expect(model.training).toBe(true);
    const clean = margins.map((m) => (m > 0 ? 1 : 0));
    const fgsm = margins.map((m) => (m > epsInf * l1 ? 1 : 0));
    const fgm = margins.map((m) => (m > epsL2 * l2 ? 1 : 0));
    // A clean-wrong example is pushed further away, so it stays wrong.
    const replay = margins.map((m, i) => (i % 3 === 0 ? (m < 0 ? 1 : 0) : m > 0 ? 1 : 0));
    const worst = clean.map((c, i) => c & fgsm[i]! & fgm[i]! & replay[i]!);
    expect(r.perExample!.clean).toEqual(clean);
    expect(r.perExample!.attacks).toEqual([fgsm, fgm, replay]);
    expect(r.perExample!.worstCase).toEqual(worst);
    const cnt = (a: number[]) => a.reduce((s, v) => s + v, 0);
    expect(r.n).toBe(n);
    expect(r.clean.correct).toBe(cnt(clean));
    expect(r.attacks.map((a) => a.correct)).toEqual([cnt(fgsm), cnt(fgm), cnt(replay)]);
    expect(r.worstCase.correct).toBe(cnt(worst));
    expect(r.worstCase.accuracy).toBeCloseTo(cnt(worst) / n, 12);
    // The three attacks each remove examples the others keep: the worst case is below every one.
    expect(cnt(worst)).toBeLessThan(Math.min(cnt(fgsm), cnt(fgm), cnt(replay)));
    expect(r.zeroGradExamples).toBe(0);
    expect(() => JSON.stringify(r)).not.toThrow();
    expect(JSON.parse(JSON.stringify(r)).worstCase.over).toEqual(['clean', attacks[0]!.name, attacks[1]!.name, 'replay']);
  });

  it('rejects targeted attacks and empty data', async () => {
    const d = await testDevice();
    const { data, w, b } = makeData(4, 3, 5);
    const model = new BinaryLinear(d, w, b);
    await expect(evaluateRobust(d, model, data, { attacks: [new Fgsm({ eps: 0.1, targeted: true })] })).rejects.toThrow(/is targeted/);
    await expect(evaluateRobust(d, model, data, { attacks: [], limit: 0 })).rejects.toThrow(/no examples to evaluate/);
    await expect(evaluateRobust(d, model, { ...data, images: new Float32Array(3) }, { attacks: [] })).rejects.toThrow(/need 4 and 420/);
  });
});

describe('gradient-masking checks', () => {
  it('an honest linear model passes every check', async () => {
    const d = await testDevice();
    const { data, w, b } = makeData(30, 41, 1000);
    const model = new BinaryLinear(d, w, b);
    const l1 = w.reduce((a, v) => a + Math.abs(v), 0);
    const r = await maskingChecks(d, model, data, { eps: 1.5 / l1, steps: 10, batchSize: 16 });
    expect(r.warnings).toEqual([]);
    expect(r.passed).toBe(true);
    expect(r.monotoneInEps).toBe(true);
    expect(r.epsCurve.map((p) => p.eps)).toEqual([0, 0.25, 0.5, 1, 2].map((k) => (k * 1.5) / l1));
    // On a linear model PGD and FGSM reach the same vertex.
    expect(r.pgdAccuracy).toBe(r.singleStepAccuracy);
    expect(r.hugeEpsAccuracy).toBe(0);
    expect(r.zeroGradExamples).toBe(0);
    expect(r.cleanAccuracy).toBe(1);
    // Each curve point: the exact count and its Wilson interval (at n of n: [n/(n + z^2), 1];
    // in between: the roots of |p - k/n| = z sqrt(p(1-p)/n), solved here).
    const z2 = 1.959963984540054 ** 2;
    expect(r.epsCurve[0]!.correct).toBe(r.n);
    expect(r.epsCurve[0]!.lo).toBeCloseTo(r.n / (r.n + z2), 14);
    expect(r.epsCurve[0]!.hi).toBe(1);
    for (const p of r.epsCurve) {
      expect(p.correct! / r.n).toBe(p.accuracy);
      const ph = p.correct! / r.n;
      const a = 1 + z2 / r.n;
      const b = -(2 * ph + z2 / r.n);
      const disc = Math.sqrt(b * b - 4 * a * ph * ph);
      expect(p.lo).toBeCloseTo(Math.max(0, (-b - disc) / (2 * a)), 10);
      expect(p.hi).toBeCloseTo(Math.min(1, (-b + disc) / (2 * a)), 10);
    }
  });

  it('a saturated model is flagged: zero input gradients and accuracy kept at huge eps', async () => {
    const d = await testDevice();
    const { data, w, b } = makeData(30, 43, 1000);
    // logits = [0, 1000 (w.x + b)]: the softmax is exactly one-hot in float32 for most examples.
    const model = new BinaryLinear(d, w.map((v) => v * 1000), b * 1000);
    const r = await maskingChecks(d, model, data, { eps: 0.02, steps: 5, batchSize: 30 });
    expect(r.passed).toBe(false);
    expect(r.zeroGradExamples).toBeGreaterThan(0);
    expect(r.hugeEpsNearZero).toBe(false);
    expect(r.hugeEpsAccuracy).toBeGreaterThan(0.5);
    expect(r.warnings.some((s) => /all-zero input gradient/.test(s))).toBe(true);
    expect(r.warnings.some((s) => /huge eps/.test(s))).toBe(true);
  });

  it('the verdict flags accuracy rising with eps and PGD weaker than FGSM (hand-made numbers)', () => {
    const base = { n: 50, norm: 'linf' as const, eps: 0.1, hugeEps: 1, hugeEpsAccuracy: 0, zeroGradExamples: 0 };
    const curve = [
      { eps: 0, accuracy: 0.9 },
      { eps: 0.05, accuracy: 0.6 },
      { eps: 0.1, accuracy: 0.64 },
      { eps: 0.2, accuracy: 0.3 },
    ];
    const v = maskingVerdict({ ...base, epsCurve: curve, singleStepName: 'FGSM', singleStepAccuracy: 0.5, pgdAccuracy: 0.64 });
    expect(v.monotoneInEps).toBe(false);
    expect(v.pgdNoWeakerThanSingleStep).toBe(false);
    expect(v.hugeEpsNearZero).toBe(true);
    expect(v.passed).toBe(false);
    expect(v.warnings).toEqual([
      'robust accuracy rises with eps: 0.6 at eps 0.05 -> 0.64 at eps 0.1',
      'PGD (0.64) is weaker than FGSM (0.5) at eps 0.1',
    ]);
    // Within the tolerance both pass.
    const t = maskingVerdict({ ...base, epsCurve: curve, singleStepAccuracy: 0.62, pgdAccuracy: 0.64 }, { tolerance: 0.05 });
    expect(t.passed).toBe(true);
    expect(t.cleanAccuracy).toBe(0.9);
    const z = maskingVerdict({ ...base, epsCurve: curve.slice(0, 2), singleStepAccuracy: 0.6, pgdAccuracy: 0.6, hugeEpsAccuracy: 0.2, zeroGradExamples: 5 });
    expect(z.warnings).toEqual(['accuracy under PGD at huge eps 1 is 0.2 (> 0.05): gradients may be masked', '5 of 50 examples have an all-zero input gradient']);
    expect(z.zeroGradFraction).toBe(0.1);
  });
});
