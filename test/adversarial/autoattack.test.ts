// The AutoAttack runner. With hand-built fake attacks on a fixed linear model (the attacks
// decode each example's index from its first feature and break known indices): every stage
// receives exactly the examples still robust, the worst case is the per-example minimum
// over the attacks run alone, points outside the eps ball are rejected and counted, and the
// masking warning counts the gradient-free stage's breaks. Then a real run (APGD-CE, APGD-T)
// on a random linear model, checked against the closed-form L-inf distance to the decision
// boundary: d = min_{t != y} (z_y - z_t) / ||w_y - w_t||_1.
import { describe, expect, it } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import { randArray } from '../helpers/compare.ts';
import { Tensor, linear, type Device } from '../../engine/index.ts';
import { Module, parameter } from '../../nn/module.ts';
import { Linear } from '../../nn/layers.ts';
import { autoAttack, autoAttackTable, withinThreat } from '../../adversarial/autoattack.ts';
import { checkStageNames, type StageRegistry } from '../../adversarial/autoattack_stages.ts';
import { resolveThreat } from '../../adversarial/threat.ts';
import type { Attack } from '../../adversarial/attacks/index.ts';

const C = 4;
const D = 1 + C;
const N = 37; // batches of 8: 4 full + 5
const EPS = 0.3;

/** logits = x[:, 1..C] (feature 0 carries the example's id and is ignored). */
class Picker extends Module {
  readonly w: Tensor;
  constructor(d: Device) {
    super();
    const w = new Float32Array(C * D);
    for (let c = 0; c < C; c++) w[c * D + 1 + c] = 1;
    this.w = this.registerParameter('w', parameter(d, w, [C, D]));
  }
  forward(x: Tensor): Tensor {
    return linear(x, this.w);
  }
}

const cls = (i: number) => i % C;
/** Examples misclassified without attack: the label is not the argmax. */
const cleanWrong = (i: number) => i % 7 === 3;

function data(d: Device) {
  const x = new Float32Array(N * D);
  const y = new Int32Array(N);
  for (let i = 0; i < N; i++) {
    x[i * D] = (i + 1) / 128;
    for (let c = 0; c < C; c++) x[i * D + 1 + c] = c === cls(i) ? 0.6 : 0.2;
    y[i] = cleanWrong(i) ? (cls(i) + 1) % C : cls(i);
  }
  return { x: Tensor.from(d, x, [N, D]), y: Tensor.from(d, y, [N], 'i32') };
}

/**
 * Moves `shift` of score from the label to the next class on the examples in `breaks`
 * (misclassified when shift > 0.2; L-inf size = shift), leaves the others unchanged, and
 * records the example ids it was given.
 */
function fake(name: string, breaks: Set<number>, log: Map<string, number[]>, shift = EPS): Attack {
  const threat = resolveThreat({ norm: 'linf', eps: EPS });
  return {
    name,
    threat,
    generate: () => {
      throw new Error('fake: use perturb');
    },
    perturb: async (_m, xb, yb) => {
      const xv = await xb.f32();
      const yv = await yb.data();
      const k = xb.shape[0]!;
      for (let r = 0; r < k; r++) {
        const id = Math.round(xv[r * D]! * 128) - 1;
        log.set(name, [...(log.get(name) ?? []), id]);
        if (!breaks.has(id)) continue;
        const lab = yv[r]!;
        xv[r * D + 1 + lab] = xv[r * D + 1 + lab]! - shift;
        xv[r * D + 1 + ((lab + 1) % C)] = xv[r * D + 1 + ((lab + 1) % C)]! + shift;
      }
      return Tensor.from(xb.device, xv, [...xb.shape]);
    },
  };
}

const A = new Set([0, 1, 2, 5, 10, 17, 24, 30, 36]);
const B = new Set([1, 2, 4, 8, 9, 11, 12, 20]);
const T = new Set([4, 6, 7, 13, 21, 33]); // the gradient-free stage
const V = new Set([14, 15, 16]); // breaks with shift 0.35 > eps: must be rejected

function registry(log: Map<string, number[]>): StageRegistry {
  return {
    a: { gradientFree: false, make: () => [{ label: 'a', attack: fake('a', A, log) }] },
    b: { gradientFree: false, make: () => [{ label: 'b1', attack: fake('b1', new Set([...B].filter((i) => i % 2 === 0)), log) }, { label: 'b2', attack: fake('b2', new Set([...B].filter((i) => i % 2 === 1)), log) }] },
    v: { gradientFree: false, make: () => [{ label: 'v', attack: fake('v', V, log, 0.35) }] },
    sq: { gradientFree: true, make: () => [{ label: 'sq', attack: fake('sq', T, log) }] },
  };
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

describe('autoAttack with fake attacks', () => {
  it('each stage gets exactly the examples still robust; the worst case is the per-example minimum', async () => {
    const d = await testDevice();
    const { x, y } = data(d);
    const log = new Map<string, number[]>();
    const progress: string[] = [];
    const r = await autoAttack(new Picker(d), x, y, { norm: 'linf', eps: EPS, attacks: ['a', 'b', 'v', 'sq'], batchSize: 8, registry: registry(log), onProgress: (p) => progress.push(`${p.stage} ${p.batch}/${p.batches}`) });
    // independent bookkeeping from the construction
    let alive = range(N).filter((i) => !cleanWrong(i));
    const expectStage = (label: string, breaks: Set<number>, counts: boolean) => {
      expect([...(log.get(label) ?? [])].sort((p, q) => p - q), label).toEqual(alive);
      const st = r.stages.find((s) => s.label === label)!;
      expect(st.attacked, label).toBe(alive.length);
      const hit = alive.filter((i) => breaks.has(i));
      if (counts) {
        expect(st.broken, label).toBe(hit.length);
        alive = alive.filter((i) => !breaks.has(i));
      } else {
        expect(st.broken, label).toBe(0);
        expect(st.violations, label).toBe(hit.length);
      }
      expect(st.robust, label).toBe(alive.length);
    };
    expect(r.clean.correct).toBe(range(N).filter((i) => !cleanWrong(i)).length);
    expectStage('a', A, true);
    expectStage('b1', new Set([...B].filter((i) => i % 2 === 0)), true);
    expectStage('b2', new Set([...B].filter((i) => i % 2 === 1)), true);
    expectStage('v', V, false);
    const beforeSq = alive.filter((i) => T.has(i)).length;
    expectStage('sq', T, true);
    expect(r.robust.correct).toBe(alive.length);
    expect(r.perExample.robust).toEqual(range(N).map((i) => (alive.includes(i) ? 1 : 0)));
    expect(r.violations).toBe(V.size);
    // who broke what
    expect(r.perExample.brokenBy[3]).toBe('clean');
    expect(r.perExample.brokenBy[1]).toBe('a');
    expect(r.perExample.brokenBy[4]).toBe('b1');
    expect(r.perExample.brokenBy[6]).toBe('sq');
    expect(r.perExample.brokenBy[14]).toBe(null);
    // masking: the gradient-free stage's breaks, all missed by a, b and v
    expect(beforeSq).toBeGreaterThan(0);
    expect(r.masking.count).toBe(beforeSq);
    expect(r.masking.warning).toMatch(new RegExp(`sq \\(gradient-free\\) broke ${beforeSq} examples that every gradient-based stage \\(a, b, v\\) missed`));
    expect(autoAttackTable(r)).toMatch(/MASKING WARNING/);
    expect(autoAttackTable(r)).toMatch(/rejected: 3 misclassified point/);
    // Wilson interval around the worst case
    expect(r.robust.lo).toBeLessThan(r.robust.accuracy);
    expect(r.robust.hi).toBeGreaterThan(r.robust.accuracy);
    // a progress line per batch: clean 5 batches of 8, then each stage's batches
    expect(progress.slice(0, 5)).toEqual(['clean 1/5', 'clean 2/5', 'clean 3/5', 'clean 4/5', 'clean 5/5']);
    expect(progress).toContain(`sq ${Math.ceil(r.stages.at(-1)!.attacked / 8)}/${Math.ceil(r.stages.at(-1)!.attacked / 8)}`);

    // each attack alone: the sequence's robust flags are the per-example minimum
    const alone: number[][] = [];
    for (const s of ['a', 'b', 'v', 'sq']) {
      const one = await autoAttack(new Picker(d), x, y, { norm: 'linf', eps: EPS, attacks: [s], batchSize: 8, registry: registry(new Map()) });
      alone.push(one.perExample.robust);
      if (s === 'sq') expect(one.masking.count, 'no gradient stage ran before: no warning').toBe(0);
    }
    expect(r.perExample.robust).toEqual(range(N).map((i) => Math.min(...alone.map((a) => a[i]!))));
  });

  it('the masking warning stays silent when the gradient stages found everything', async () => {
    const d = await testDevice();
    const { x, y } = data(d);
    const reg = registry(new Map());
    const r = await autoAttack(new Picker(d), x, y, { norm: 'linf', eps: EPS, attacks: ['a', 'sq'], batchSize: 64, registry: { a: { gradientFree: false, make: () => [{ label: 'a', attack: fake('a', new Set([...A, ...T]), new Map()) }] }, sq: reg.sq! } });
    expect(r.stages[1]!.broken).toBe(0);
    expect(r.masking).toEqual({ count: 0, warning: null });
  });

  it('host ball check: rejects a point just outside the ball or the box, accepts one at eps', () => {
    const t = resolveThreat({ norm: 'linf', eps: 0.1 });
    const x = [0.5, 0.5];
    expect(withinThreat(x, [0.6, 0.4], 0, 2, t)).toBe(true);
    expect(withinThreat(x, [0.6001, 0.5], 0, 2, t)).toBe(false);
    expect(withinThreat([0.95, 0.5], [1.0001, 0.5], 0, 2, t)).toBe(false);
    expect(withinThreat(x, [NaN, 0.5], 0, 2, t)).toBe(false);
    const l2 = resolveThreat({ norm: 'l2', eps: 0.5 });
    expect(withinThreat(x, [0.8, 0.9], 0, 2, l2)).toBe(true); // norm 0.5 exactly
    expect(withinThreat(x, [0.8, 0.901], 0, 2, l2)).toBe(false);
  });

  it('bad stage names: the error names the value and the allowed list', () => {
    expect(() => checkStageNames('t', ['apgd-ce', 'pgd'])).toThrow(/unknown stage "pgd"; allowed: apgd-ce, apgd-t/);
    expect(() => checkStageNames('t', ['apgd-ce', 'apgd-ce'])).toThrow(/listed twice/);
    expect(() => checkStageNames('t', [])).toThrow(/non-empty list/);
  });

  it('apgd-t on a model with fewer than 4 classes is refused with the class count', async () => {
    const d = await testDevice();
    const m = new Linear(d, D, 3, { seed: 1 });
    const { x } = data(d);
    const y = Tensor.from(d, new Int32Array(N), [N], 'i32');
    await expect(autoAttack(m, x, y, { norm: 'linf', eps: 0.1, attacks: ['apgd-t'] })).rejects.toThrow(/apgd-t needs at least 4 classes .* the model has 3/);
  });
});

describe('autoAttack with APGD-CE and APGD-T on a linear model (closed-form distance)', () => {
  it('breaks what lies within eps, never what lies beyond, and returns valid points', async () => {
    const d = await testDevice();
    const n = 29;
    const f = 8;
    const k = 10;
    const model = new Linear(d, f, k, { seed: 5 });
    const W = Float64Array.from(await model.weight.f32());
    const bias = Float64Array.from(await model.bias!.f32());
    const xv = Float32Array.from(randArray(n * f, 21, -1, 1));
    const logits = (v: ArrayLike<number>, r: number) => Array.from({ length: k }, (_, c) => bias[c]! + range(f).reduce((s, j) => s + W[c * f + j]! * v[r * f + j]!, 0));
    const argmaxOf = (z: number[]) => z.reduce((b, v, c) => (v > z[b]! ? c : b), 0);
    const y = new Int32Array(n);
    const dist = new Float64Array(n);
    for (let r = 0; r < n; r++) {
      const z = logits(xv, r);
      const p = argmaxOf(z);
      y[r] = r % 9 === 4 ? (p + 1) % k : p; // a few wrong labels: not robust from the start
      dist[r] = Infinity;
      for (let t = 0; t < k; t++) {
        if (t === p) continue;
        const l1 = range(f).reduce((s, j) => s + Math.abs(W[p * f + j]! - W[t * f + j]!), 0);
        dist[r] = Math.min(dist[r]!, (z[p]! - z[t]!) / l1);
      }
    }
    const ok = range(n).filter((r) => r % 9 !== 4);
    const sorted = ok.map((r) => dist[r]!).sort((a, b) => a - b);
    const eps = sorted[Math.floor(sorted.length / 2)]!;
    // both sides of the boundary are populated (the checks below are not vacuous)
    expect(ok.filter((r) => dist[r]! < 0.98 * eps).length).toBeGreaterThanOrEqual(8);
    expect(ok.filter((r) => dist[r]! > 1.01 * eps + 1e-3).length).toBeGreaterThanOrEqual(8);
    const progress: string[] = [];
    const r = await autoAttack(model, Tensor.from(d, xv, [n, f]), Tensor.from(d, y, [n], 'i32'), {
      norm: 'linf',
      eps,
      bounds: [-100, 100],
      attacks: ['apgd-ce', 'apgd-t'],
      batchSize: 6,
      seed: 3,
      returnAdversarial: true,
      onProgress: (p) => progress.push(p.stage),
    });
    expect(r.stages.map((s) => s.label)).toEqual(['apgd-ce', ...range(9).map((i) => `apgd-t (target rank ${i + 2})`)]);
    expect(r.clean.correct).toBe(ok.length);
    for (const i of range(n)) {
      if (!ok.includes(i)) {
        expect(r.perExample.brokenBy[i], `example ${i}`).toBe('clean');
        continue;
      }
      if (dist[i]! > 1.01 * eps + 1e-3) expect(r.perExample.robust[i], `example ${i} at distance ${dist[i]} > eps ${eps}`).toBe(1);
      if (dist[i]! < 0.98 * eps) expect(r.perExample.robust[i], `example ${i} at distance ${dist[i]} < eps ${eps}`).toBe(0);
      // the returned point: misclassified and within eps (float64 here) when broken, x when robust
      const xa = r.xAdv!.subarray(i * f, (i + 1) * f);
      const linf = Math.max(...range(f).map((j) => Math.abs(xa[j]! - xv[i * f + j]!)));
      if (r.perExample.robust[i]) expect(linf).toBe(0);
      else {
        // misclassified: the label's logit is not above every other (float32 on the GPU decided a
        // point on the boundary; allow float32 rounding of the logits)
        const z = logits(xa, 0);
        const margin = z[y[i]!]! - Math.max(...z.filter((_, c) => c !== y[i]));
        expect(margin, `example ${i}`).toBeLessThanOrEqual(1e-5);
        expect(linf).toBeLessThanOrEqual(eps * (1 + 1e-5) + 1e-4);
      }
    }
    // stage bookkeeping: each stage attacks what the previous left
    let left = r.clean.correct;
    for (const s of r.stages) {
      expect(s.attacked).toBe(left);
      left -= s.broken;
      expect(s.robust).toBe(left);
    }
    expect(r.robust.correct).toBe(left);
    expect(r.violations).toBe(0);
    expect(progress).toContain('apgd-t (target rank 10)');
  }, 240_000);
});
