// The kink study (adversarial/study/kink.ts, cli/cmd_study.ts) on tiny models whose answers
// are known in closed form, every expected value computed here in float64:
//  - a linear binary classifier (logits [0, w.x + b], CE = softplus(-y z)): the input
//    gradient is -y s(-y z) w, so consecutive PGD gradients have cosine exactly 1, the
//    stability ratio is |s(-y z') - s(-y z)| / s(-y z) with no sign flips, and the
//    first-order error of the loss is (1/2) s(1 - s) (w.delta)^2 to second order;
//  - tiny MLPs with pre-activations placed exactly at 0 (fractions within tau known, for
//    ReLU and SiLU alike), and one where ReLU's kink sits at the input so tiny noise switches
//    a unit on (ReLU's gradient jumps, SiLU's moves by O(sigma));
//  - the written comparison on hand-made results; the CLI's help and errors.
import { describe, it, expect } from 'vitest';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BinaryLinear } from '../../helpers/binary_linear.ts';
import { testDevice } from '../../helpers/device.ts';
import { expectClose, f32, randArray } from '../../helpers/compare.ts';
import { Tensor, flatten, type Device } from '../../../engine/index.ts';
import { linear } from '../../../engine/ops/matmul.ts';
import { Module, parameter } from '../../../nn/module.ts';
import { Activation, activationLayers, isObserved } from '../../../nn/activation.ts';
import { Pgd } from '../../../adversarial/attacks/index.ts';
import { PreActRecorder, compareKinkStudies, firstOrderFidelity, gradientStability, pearson, pgdTrajectory, studyKink, successEntry, summarize, type KinkStudyResult } from '../../../adversarial/study/kink.ts';
import { cmdStudy, STUDY_HELP } from '../../../cli/cmd_study.ts';
import { UsageError } from '../../../cli/args.ts';

const sig = (t: number) => 1 / (1 + Math.exp(-t));
/** Wilson 95% interval from its definition: the roots p of |p - k/n| = z sqrt(p(1-p)/n). */
function wilson64(k: number, n: number): [number, number] {
  const z2 = 1.959963984540054 ** 2;
  const ph = k / n;
  const a = 1 + z2 / n;
  const b = -(2 * ph + z2 / n);
  const disc = Math.sqrt(Math.max(0, b * b - 4 * a * ph * ph));
  return [Math.max(0, (-b - disc) / (2 * a)), Math.min(1, (-b + disc) / (2 * a))];
}
const ones = (s: string) => [...s].filter((c) => c === '1').length;
const softplus = (z: number) => Math.max(z, 0) + Math.log1p(Math.exp(-Math.abs(z)));
const ysign = (label: number) => (label === 1 ? 1 : -1);

// ---------------------------------------------------------------- linear binary model

const SHAPE = [1, 3, 5]; // D = 15
const D = 15;
const N = 6;


async function linearSetup(seed: number) {
  const d = await testDevice();
  const w = f32(randArray(D, seed, -1, 1));
  for (let i = 0; i < D; i++) if (Math.abs(w[i]!) < 0.1) w[i] = w[i]! < 0 ? -0.1 : 0.1;
  const b = 0.1;
  const x = f32(randArray(N * D, seed + 3, 0.4, 0.6));
  const labels = Int32Array.from({ length: N }, (_, i) => i % 2);
  const model = new BinaryLinear(d, w, b);
  const X = Tensor.from(d, Float32Array.from(x), [N, ...SHAPE]);
  const Y = Tensor.from(d, labels, [N], 'i32');
  const z = (xs: ArrayLike<number>, n: number) => w.reduce((a, wi, i) => a + wi * xs[n * D + i]!, b);
  return { d, w, b, x, labels, model, X, Y, z };
}

describe('kink study on a linear binary model (closed form)', () => {
  it('consecutive PGD gradients have cosine 1; predictions and accuracy follow the float64 path', async () => {
    const s = await linearSetup(5);
    const eps = 0.05;
    const alpha = 0.01;
    const steps = 8;
    const { traj, xAdv } = await pgdTrajectory(s.model, s.X, s.Y, { eps, alpha, steps, randomStart: false });
    xAdv.dispose();
    expect(traj.cosine.length).toBe(steps);
    for (const c of traj.cosine) expectClose(c, new Array(N).fill(1), { atol: 2e-6, rtol: 0 }, 'cosine');
    // From zero, delta_k = -min(k alpha, eps) y sign(w): 5 moving steps, then none.
    const l1 = s.w.reduce((a, v) => a + Math.abs(v), 0);
    for (let k = 0; k <= steps; k++) {
      const move = Math.min(k * alpha, eps);
      const zk = Array.from({ length: N }, (_, n) => s.z(s.x, n) - move * ysign(s.labels[n]!) * l1);
      expectClose(traj.obj[k]!, zk.map((z, n) => softplus(-ysign(s.labels[n]!) * z)), { atol: 2e-6, rtol: 1e-5 }, `CE at iterate ${k}`);
      expect(Array.from(traj.correct[k]!)).toEqual(zk.map((z, n) => ((z > 0 ? 1 : 0) === s.labels[n] ? 1 : 0)));
      if (k < steps) {
        const step = Math.min((k + 1) * alpha, eps) - move;
        // g_k . (delta_{k+1} - delta_k) = s(-y z_k) * step * ||w||_1
        expectClose(traj.predicted[k]!, zk.map((z, n) => sig(-ysign(s.labels[n]!) * z) * step * l1), { atol: 2e-6, rtol: 2e-4 }, `prediction at ${k}`);
      }
    }
  });

  it('the instrumented PGD has the same iterates as attacks/pgd.ts (random start, same seed)', async () => {
    const s = await linearSetup(7);
    const { xAdv } = await pgdTrajectory(s.model, s.X, s.Y, { eps: 0.05, alpha: 0.007, steps: 4, seed: 9 });
    const ref = new Pgd({ eps: 0.05, alpha: 0.007, steps: 4, seed: 9 }).generate(s.model, s.X, s.Y);
    expect(Array.from(await xAdv.f32())).toEqual(Array.from(await ref.f32()));
  });

  it('stability ratio is |s(-y z\') - s(-y z)| / s(-y z) with no sign flips', async () => {
    const s = await linearSetup(11);
    for (const sigma of [1e-3, 3e-2]) {
      const xi64 = f32(randArray(N * D, 31, -sigma, sigma));
      const xi = Tensor.from(s.d, Float32Array.from(xi64), [N, ...SHAPE]);
      const st = await gradientStability(s.model, s.X, s.Y, xi);
      const xp = f32(s.x.map((v, i) => v + xi64[i]!));
      const want = Array.from({ length: N }, (_, n) => {
        const y = ysign(s.labels[n]!);
        const a = sig(-y * s.z(s.x, n));
        return Math.abs(sig(-y * s.z(xp, n)) - a) / a;
      });
      expectClose(st.ratio, want, { atol: 2e-6, rtol: 1e-3 }, `ratio sigma ${sigma}`);
      expect(Array.from(st.signFlip)).toEqual(new Array(N).fill(0));
      const l2 = Math.hypot(...s.w);
      expectClose(st.gradNorm, Array.from({ length: N }, (_, n) => sig(-ysign(s.labels[n]!) * s.z(s.x, n)) * l2), { atol: 1e-7, rtol: 1e-5 }, 'grad norm');
    }
  });

  it('first-order fidelity: actual and predicted match float64 and differ at second order', async () => {
    const s = await linearSetup(13);
    for (const h of [1e-3, 1e-2]) {
      const delta64 = Float64Array.from({ length: N * D }, (_, i) => h * ysign(s.labels[Math.floor(i / D)]!) * -Math.sign(s.w[i % D]!));
      const delta = Tensor.from(s.d, Float32Array.from(delta64), [N, ...SHAPE]);
      const f = await firstOrderFidelity(s.model, s.X, s.Y, delta);
      const xp = f32(s.x.map((v, i) => v + Math.fround(delta64[i]!)));
      const actual: number[] = [];
      const pred: number[] = [];
      for (let n = 0; n < N; n++) {
        const y = ysign(s.labels[n]!);
        const z0 = s.z(s.x, n);
        actual.push(softplus(-y * s.z(xp, n)) - softplus(-y * z0));
        const wd = s.w.reduce((a, wi, i) => a + wi * Math.fround(delta64[n * D + i]!), 0);
        pred.push(-y * sig(-y * z0) * wd);
        // Second order, with the step the float32 input actually took (x + delta rounds):
        // actual - g.dx = (1/2) s(1-s) (w.dx)^2 + O(|w.dx|^3), |softplus'''| <= 0.1.
        const wdx = s.w.reduce((a, wi, i) => a + wi * (xp[n * D + i]! - s.x[n * D + i]!), 0);
        const sg = sig(-y * z0);
        expect(Math.abs(actual[n]! + y * sg * wdx - 0.5 * sg * (1 - sg) * wdx * wdx)).toBeLessThan((0.1 / 6) * Math.abs(wdx) ** 3 + 1e-15);
      }
      expectClose(f.actual, actual, { atol: 3e-7, rtol: 1e-4 }, `actual h=${h}`);
      expectClose(f.predicted, pred, { atol: 1e-7, rtol: 1e-5 }, `predicted h=${h}`);
    }
  });

  it('summarize and pearson', () => {
    const s = summarize([3, NaN, 1, 2, 4, Infinity]);
    expect(s).toEqual({ n: 4, mean: 2.5, median: 2.5, medianLo: NaN, medianHi: NaN, p10: 1.3, p90: 3.7 });
    expect(pearson([1, 2, 3], [2, 4, 6])).toBeCloseTo(1, 12);
    expect(pearson([1, 2, 3], [3, 2, 1])).toBeCloseTo(-1, 12);
    expect(pearson([1, 2, 3, 4], [1, 3, 2, 4])).toBeCloseTo(0.8, 12);
    expect(pearson([1, 1], [2, 3])).toBeNaN();
  });
});

// ---------------------------------------------------------------- tiny MLPs with placed pre-activations

/** x -> flatten -> W1 x + b1 -> act -> W2 . + b2 [-> act -> W3 . + b3]; weights given. */
class TinyMlp extends Module {
  readonly ps: Tensor[] = [];
  readonly acts: Activation[] = [];
  constructor(device: Device, kind: 'relu' | 'silu', layers: { W: ArrayLike<number>; b: ArrayLike<number>; out: number; inp: number }[]) {
    super();
    layers.forEach((l, i) => {
      this.ps.push(this.registerParameter(`W${i}`, parameter(device, Float32Array.from(l.W), [l.out, l.inp])));
      this.ps.push(this.registerParameter(`b${i}`, parameter(device, Float32Array.from(l.b), [l.out], 'bias')));
      if (i < layers.length - 1) this.acts.push(this.registerModule(`act${i}`, new Activation(device, kind)));
    });
  }
  forward(x: Tensor): Tensor {
    let h = flatten(x);
    for (let i = 0; i < this.ps.length / 2; i++) {
      h = linear(h, this.ps[2 * i]!, this.ps[2 * i + 1]!);
      if (i < this.acts.length) h = this.acts[i]!.forward(h);
    }
    return h;
  }
}

const B1 = [0, 0, 5e-4, -5e-4, 5e-3, -0.06, 0.5, 2];
const B2 = [0, 0.02, -0.3, 1e-4, 7];
const TAUS = [1e-3, 1e-2, 1e-1];

function hist64(values: number[], range: number, bins: number): number[] {
  const h = new Array<number>(bins).fill(0);
  for (const v of values) {
    const b = Math.floor(((v + range) / (2 * range)) * bins);
    if (b >= 0 && b < bins) h[b]! += 1 / values.length;
  }
  return h;
}

describe('pre-activations placed near the kink', () => {
  for (const kind of ['relu', 'silu'] as const) {
    it(`${kind}: fractions within tau, exact zeros and histograms per layer are the placed ones at every PGD step`, async () => {
      const d = await testDevice();
      const Din = 4;
      // Zero weights: the pre-activations are the biases whatever the input (and the attack) does.
      const model = new TinyMlp(d, kind, [
        { W: new Array(8 * Din).fill(0), b: B1, out: 8, inp: Din },
        { W: new Array(5 * 8).fill(0), b: B2, out: 5, inp: 8 },
        { W: randArray(2 * 5, 3), b: [0, 0], out: 2, inp: 5 },
      ]);
      const n = 3;
      const X = Tensor.from(d, Float32Array.from(randArray(n * Din, 5, 0, 1)), [n, 1, 2, 2]);
      const Y = Tensor.from(d, Int32Array.from([0, 1, 1]), [n], 'i32');
      const rec = new PreActRecorder(model, TAUS, 0.25, 5);
      rec.snapshotFor = (k) => (k < 0 ? 'clean' : k === 3 ? 'adv' : null);
      rec.start();
      try {
        const { xAdv } = await pgdTrajectory(model, X, Y, { eps: 0.1, steps: 3, seed: 1 }, rec);
        xAdv.dispose();
      } finally {
        rec.stop();
      }
      const layers = await rec.result();
      rec.dispose();
      expect(layers.map((l) => l.path)).toEqual(['act0', 'act1']);
      for (const [li, b] of [B1, B2].entries()) {
        const bf = Array.from(Float32Array.from(b));
        const want = TAUS.map((t) => bf.filter((v) => Math.abs(v) < t).length / bf.length);
        const l = layers[li]!;
        expect(l.perForward).toBe(n * b.length);
        expectClose(l.fraction, want, { atol: 1e-7, rtol: 0 }, `layer ${li} fraction`);
        expectClose(l.clean, want, { atol: 1e-7, rtol: 0 }, `layer ${li} clean`);
        expect(l.fractionByStep.length).toBe(4);
        for (const f of l.fractionByStep) expectClose(f, want, { atol: 1e-7, rtol: 0 }, `layer ${li} per step`);
        expect(l.exactZero).toBeCloseTo(bf.filter((v) => v === 0).length / bf.length, 7);
        for (const key of ['clean', 'adv']) expectClose(l.histograms[key]!, hist64(bf, 0.25, 5), { atol: 1e-7, rtol: 0 }, `layer ${li} histogram ${key}`);
      }
      expect(activationLayers(model).some(isObserved)).toBe(false);
    });
  }

  it("ReLU's kink at the input: tiny noise that switches the unit on makes the gradient jump; SiLU's moves by O(sigma)", async () => {
    const d = await testDevice();
    // Unit 0: z0 = 0.25 x0 - 0.25 x1 = 0 exactly at x = 0.5 (the kink); unit 1: always active.
    const W1 = [0.25, -0.25, 0, 0, 0.5, 0.25, -0.5, 0.25];
    const b1 = [0, 0.5];
    const W2 = [1.5, -0.5, -1, 0.75];
    const b2 = [0.1, -0.2];
    const n = 2;
    const x64 = new Array(n * 4).fill(0.5);
    const labels = [0, 1];
    const sigma = 1e-3;
    const xi64 = f32([sigma, -sigma, 0.5 * sigma, 0.3 * sigma, -sigma, sigma, 0.5 * sigma, 0.3 * sigma]); // example 0: z0 -> +0.5 sigma; example 1: -0.5 sigma
    const dact = { relu: (z: number) => (z > 0 ? 1 : 0), silu: (z: number) => sig(z) * (1 + z * (1 - sig(z))) };
    const act = { relu: (z: number) => Math.max(z, 0), silu: (z: number) => z * sig(z) };
    /** float64 CE and input gradient of example m at input xs (4 values). */
    const ref = (kind: 'relu' | 'silu', xs: number[], label: number) => {
      const z = [0, 1].map((j) => b1[j]! + [0, 1, 2, 3].reduce((a, i) => a + W1[j * 4 + i]! * xs[i]!, 0));
      const a = z.map(act[kind]);
      const lo = [0, 1].map((c) => b2[c]! + W2[c * 2]! * a[0]! + W2[c * 2 + 1]! * a[1]!);
      const m = Math.max(...lo);
      const lse = m + Math.log(lo.reduce((s, v) => s + Math.exp(v - m), 0));
      const p = lo.map((v) => Math.exp(v - lse));
      const dl = p.map((v, c) => v - (c === label ? 1 : 0));
      const dz = [0, 1].map((j) => dact[kind](z[j]!) * (W2[j]! * dl[0]! + W2[2 + j]! * dl[1]!));
      return { ce: lse - lo[label]!, g: [0, 1, 2, 3].map((i) => W1[i]! * dz[0]! + W1[4 + i]! * dz[1]!), z };
    };
    const ratios: Record<string, number[]> = {};
    for (const kind of ['relu', 'silu'] as const) {
      const model = new TinyMlp(d, kind, [
        { W: W1, b: b1, out: 2, inp: 4 },
        { W: W2, b: b2, out: 2, inp: 2 },
      ]);
      const X = Tensor.from(d, Float32Array.from(x64), [n, 1, 2, 2]);
      const Y = Tensor.from(d, Int32Array.from(labels), [n], 'i32');
      const xi = Tensor.from(d, Float32Array.from(xi64), [n, 1, 2, 2]);
      // The clean forward sees one of two pre-activations exactly at 0.
      const rec = new PreActRecorder(model, [1e-6]).start();
      const st = await (async () => {
        try {
          return await gradientStability(model, X, Y, xi);
        } finally {
          rec.stop();
        }
      })();
      const [layer] = await rec.result();
      rec.dispose();
      // Clean forward: z0 = 0.125 - 0.125 = 0 exactly in every summation order (2 of 4 values);
      // the noisy forward moves z0 off 0 in both examples (0 of 4): 2 / 8 overall.
      expect(layer!.exactZero).toBe(0.25);
      const want = [0, 1].map((m) => {
        const xs = x64.slice(m * 4, m * 4 + 4);
        const xp = xs.map((v, i) => Math.fround(v + xi64[m * 4 + i]!));
        const g0 = ref(kind, xs, labels[m]!).g;
        const g1 = ref(kind, xp, labels[m]!).g;
        return Math.hypot(...g1.map((v, i) => v - g0[i]!)) / Math.hypot(...g0);
      });
      expectClose(st.ratio, want, { atol: 1e-5, rtol: 2e-3 }, `${kind} stability ratio`);
      ratios[kind] = want;
      // First-order fidelity of a step that crosses the kink (x0 + h, x1 - h switches unit 0 on).
      const h = 0.01;
      const delta64 = f32([h, -h, 0, 0, h, -h, 0, 0]);
      const f = await firstOrderFidelity(model, X, Y, Tensor.from(d, Float32Array.from(delta64), [n, 1, 2, 2]));
      const wa = [0, 1].map((m) => {
        const xs = x64.slice(m * 4, m * 4 + 4);
        const xp = xs.map((v, i) => Math.fround(v + delta64[m * 4 + i]!));
        return { actual: ref(kind, xp, labels[m]!).ce - ref(kind, xs, labels[m]!).ce, pred: ref(kind, xs, labels[m]!).g.reduce((a, gi, i) => a + gi * delta64[m * 4 + i]!, 0) };
      });
      expectClose(f.actual, wa.map((v) => v.actual), { atol: 2e-6, rtol: 1e-3 }, `${kind} actual`);
      expectClose(f.predicted, wa.map((v) => v.pred), { atol: 1e-7, rtol: 1e-4 }, `${kind} predicted`);
    }
    // The float64 reference itself shows the kink: ReLU's example 0 (unit switched on) jumps.
    expect(ratios.relu![0]!).toBeGreaterThan(0.1);
    expect(ratios.relu![1]!).toBeLessThan(0.01);
    expect(Math.max(...ratios.silu!)).toBeLessThan(0.01);
  });
});

// ---------------------------------------------------------------- the whole study and its summary

function fakeResult(medians: { clean: number[]; adv: number[] }, cos: number, acc: number[]): KinkStudyResult {
  const sm = (v: number) => ({ n: 10, mean: v, median: v, medianLo: v, medianHi: v, p10: v, p90: v });
  const sigmas = [1e-4, 1e-3, 1e-2];
  return {
    n: 10, eps: 0.1, alpha: 0.025, steps: acc.length - 1, taus: [1e-3, 1e-2, 1e-1], sigmas, histRange: 0.25, bins: 10, cleanAccuracy: acc[0]!, clean: successEntry(0, Math.round(10 * acc[0]!), 10, 10, 0), zeroGradClean: 0,
    layers: [{ path: 'net.1', perForward: 100, clean: [0.01, 0.1, 0.5], fractionByStep: [], fraction: [0.02, 0.2, 0.6], exactZero: 0, histograms: {} }],
    cosine: { byStep: [], pooled: sm(cos), perExampleMean: sm(cos) },
    stability: sigmas.flatMap((s, i) => [{ sigma: s, at: 'clean' as const, ratio: sm(medians.clean[i]!), signFlip: sm(0.01), zeroGrad: 0 }, { sigma: s, at: 'adv' as const, ratio: sm(medians.adv[i]!), signFlip: sm(0.01), zeroGrad: 0 }]),
    fidelity: [{ step: 1e-3, ratio: sm(0.99), relError: sm(0.01), correlation: 0.99, excluded: 0 }],
    trajectoryFidelity: { ratio: sm(1), relError: sm(0), correlation: 1, excluded: 0 },
    success: acc.map((a, k) => successEntry(k, Math.round(10 * a), 10, 10, 10 - Math.round(10 * a))),
    successAt: [successEntry(1, Math.round(10 * acc[1]!), 10, 10, 10 - Math.round(10 * acc[1]!))],
    perImage: { clean: '1'.repeat(10), byStep: acc.map(() => '1'.repeat(10)) },
    seconds: 1,
  };
}

describe('study summary and end to end', () => {
  it('compareKinkStudies names the lowest geometric-mean stability ratio (a point estimate) and reports rank changes', () => {
    const a = fakeResult({ clean: [1e-3, 0.1, 0.3], adv: [1e-2, 0.05, 0.2] }, 0.97, [0.9, 0.5, 0.4]);
    const b = fakeResult({ clean: [2e-3, 1e-3, 1e-2], adv: [1e-3, 1e-3, 1e-2] }, 0.999, [0.9, 0.6, 0.5]);
    const c = compareKinkStudies([{ label: 'relu', result: a }, { label: 'silu', result: b }]);
    expect(c.mostStable).toBe('silu');
    expect(c.stabilityScore.relu).toBeCloseTo(Math.cbrt(1e-3 * 0.1 * 0.3), 10);
    expect(c.stabilityScore.silu).toBeCloseTo(Math.cbrt(2e-3 * 1e-3 * 1e-2), 10);
    const text = c.lines.join('\n');
    expect(text).toMatch(/Lowest median gradient change at the clean points \(point estimate\): silu/);
    expect(text).toMatch(/at sigma = 0\.0001 relu has the lower median/); // 1e-3 < 2e-3 at the smallest sigma
    const flipped = compareKinkStudies([{ label: 'relu', result: b }, { label: 'silu', result: a }]);
    expect(flipped.mostStable).toBe('relu');
    expect(compareKinkStudies([{ label: 'only', result: a }]).lines.join('\n')).not.toMatch(/Lowest median/);
  });

  it('studyKink runs every measurement on a tiny MLP (two batches) and leaves no observer or buffers behind', async () => {
    const d = await testDevice();
    const n = 10;
    const model = new TinyMlp(d, 'relu', [
      { W: Array.from(randArray(6 * 4, 41)), b: Array.from(randArray(6, 42, -0.1, 0.1)), out: 6, inp: 4 },
      { W: Array.from(randArray(2 * 6, 43)), b: [0, 0], out: 2, inp: 6 },
    ]);
    const data = { images: Float32Array.from(randArray(n * 4, 44, 0, 1)), labels: Int32Array.from({ length: n }, (_, i) => i % 2), n, shape: [1, 2, 2] as [number, number, number] };
    await studyKink(d, model, data, { limit: 4, batchSize: 4, steps: 1 }); // warm the pipelines and pools
    const before = d.stats().liveBuffers;
    const r = await studyKink(d, model, data, { limit: 7, batchSize: 4, steps: 3, successSteps: [1, 2, 5] });
    expect(d.stats().liveBuffers).toBe(before);
    expect(activationLayers(model).some(isObserved)).toBe(false);
    expect(r.n).toBe(7);
    expect(r.success.length).toBe(4);
    expect(r.successAt.map((s) => s.step)).toEqual([1, 2, 3]); // 5 is clipped to the final iterate
    expect(r.layers.length).toBe(1);
    expect(r.layers[0]!.fractionByStep.length).toBe(4);
    expect(r.stability.length).toBe(6);
    expect(r.cosine.byStep.length).toBe(3);
    for (const s of r.stability) expect(s.ratio.n + s.zeroGrad).toBe(7);
    // Clean accuracy from a float64 forward of the same MLP.
    const W1 = f32(randArray(6 * 4, 41));
    const b1 = f32(randArray(6, 42, -0.1, 0.1));
    const W2 = f32(randArray(2 * 6, 43));
    const xs = f32(randArray(n * 4, 44, 0, 1));
    let ok = 0;
    for (let m = 0; m < 7; m++) {
      const h = [0, 1, 2, 3, 4, 5].map((j) => Math.max(0, b1[j]! + [0, 1, 2, 3].reduce((a, i) => a + W1[j * 4 + i]! * xs[m * 4 + i]!, 0)));
      const lo = [0, 1].map((c) => h.reduce((a, v, j) => a + W2[c * 6 + j]! * v, 0));
      if ((lo[1]! > lo[0]! ? 1 : 0) === m % 2) ok++;
    }
    expect(r.cleanAccuracy).toBeCloseTo(ok / 7, 10);
    // Counts, per-image outcomes and Wilson intervals agree with that count.
    expect(r.clean.correct).toBe(ok);
    expect([...r.perImage.clean].filter((c) => c === '1').length).toBe(ok);
    const [wlo, whi] = wilson64(ok, 7);
    expect(r.clean.lo).toBeCloseTo(wlo, 12);
    expect(r.clean.hi).toBeCloseTo(whi, 12);
    expect(r.perImage.byStep.length).toBe(4);
    r.success.forEach((e, k) => {
      const b = r.perImage.byStep[k]!;
      expect(b.length).toBe(7);
      expect(e.correct).toBe([...b].filter((c) => c === '1').length);
      expect(e.successes).toBe([...b].filter((c, j) => c === '0' && r.perImage.clean[j] === '1').length);
      expect(e.cleanCorrect).toBe(ok);
    });
  });

  it('cmdStudy: --help, unknown flag, wrong study name, conflicting and missing inputs', async () => {
    const logs: string[] = [];
    const orig = console.log;
    console.log = (m: string) => logs.push(m);
    try {
      expect(await cmdStudy(['kink', '--help'])).toBe(0);
    } finally {
      console.log = orig;
    }
    expect(logs.join('\n')).toBe(STUDY_HELP);
    expect(STUDY_HELP).toMatch(/Usage: kinkless study kink/);
    expect(STUDY_HELP).toMatch(/--train-steps/);
    await expect(cmdStudy(['kink', '--bogus'])).rejects.toThrow(/unknown option "--bogus"/);
    await expect(cmdStudy(['kink', '--steps', 'x'])).rejects.toThrow(UsageError);
    await expect(cmdStudy(['knik'])).rejects.toThrow(/expected the study name "kink", got "knik"/);
    await expect(cmdStudy(['kink', '--activation', 'relu', '--activations', 'silu'])).rejects.toThrow(/not both/);
    await expect(cmdStudy(['kink', '--checkpoint', '/nonexistent/x.safetensors'])).rejects.toThrow(/does not exist/);
    await expect(cmdStudy(['kink', '--sigmas', '1e-3,-1'])).rejects.toThrow(/--sigmas: "-1" is not a positive number/);
  });

  it('cmdStudy end to end on MNIST with a tiny budget writes the run directory', async () => {
    const out = mkdtempSync(join(tmpdir(), 'kink-'));
    const orig = console.log;
    console.log = () => {};
    let code: number;
    try {
      code = await cmdStudy(['kink', '--activations', 'relu,silu', '--train-steps', '1', '--train-batch-size', '8', '--limit', '6', '--batch-size', '6', '--steps', '2', '--out', out, '--name', 'k']);
    } finally {
      console.log = orig;
    }
    expect(code).toBe(0);
    const dir = join(out, 'k');
    for (const f of ['config.json', 'results.json', 'metrics.csv', 'per_image.json', 'report.md', 'stability_vs_sigma.svg', 'cosine_vs_step.svg', 'success_vs_steps.svg', 'fidelity_vs_step.svg', 'preact_hist_layer1.svg', 'preact_hist_layer2.svg', 'model-relu.safetensors']) expect(existsSync(join(dir, f)), f).toBe(true);
    const res = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8'));
    expect(res.models.map((m: { label: string }) => m.label)).toEqual(['relu', 'silu']);
    // The named activation is the one with the lower score in the same file.
    const sc = res.summary.stabilityScore as Record<string, number>;
    expect(res.summary.mostStable).toBe(sc.relu! < sc.silu! ? 'relu' : 'silu');
    const report = readFileSync(join(dir, 'report.md'), 'utf8');
    expect(report).toContain(`Lowest median gradient change at the clean points (point estimate): ${res.summary.mostStable}`);
    // per_image.json holds the outcomes; results.json does not repeat them.
    const pi = JSON.parse(readFileSync(join(dir, 'per_image.json'), 'utf8')).models as Record<string, { n: number; clean: string; byStep: string[] }>;
    expect(Object.keys(pi)).toEqual(['relu', 'silu']);
    expect(res.models[0].result.perImage).toBeUndefined();
    for (const l of ['relu', 'silu']) expect([pi[l]!.clean.length, pi[l]!.byStep.length, pi[l]!.byStep[2]!.length]).toEqual([6, 3, 6]);
    // metrics.csv: lo/hi columns; PGD accuracy rows carry the Wilson interval of the counts in per_image.json.
    const csv = readFileSync(join(dir, 'metrics.csv'), 'utf8').trim().split('\n');
    expect(csv[0]).toBe('run,metric,layer,param,value,lo,hi');
    const row = (run: string, metric: string, param: string) => csv.find((r) => r.startsWith(`"${run}","${metric}",` ) && r.split(',')[3]!.replace(/"/g, '') === param)!.split(',');
    for (const l of ['relu', 'silu']) {
      for (let k = 0; k <= 2; k++) {
        const c = ones(pi[l]!.byStep[k]!);
        const [lo, hi] = wilson64(c, 6);
        const r = row(l, 'pgd_accuracy', String(k));
        expect(Number(r[4])).toBeCloseTo(c / 6, 5);
        expect(Number(r[5])).toBeCloseTo(lo, 5);
        expect(Number(r[6])).toBeCloseTo(hi, 5);
      }
      const [clo, chi] = wilson64(ones(pi[l]!.clean), 6);
      expect(Number(row(l, 'clean_accuracy', '')[5])).toBeCloseTo(clo, 5);
      expect(Number(row(l, 'clean_accuracy', '')[6])).toBeCloseTo(chi, 5);
    }
    // silu against relu on the same 6 images: discordant counts from per_image.json, the exact
    // McNemar p by enumeration, and the report's table row and sentence carry those numbers.
    const a = pi.silu!.byStep[2]!;
    const b = pi.relu!.byStep[2]!;
    const onlyA = [...a].filter((c, j) => c === '1' && b[j] === '0').length;
    const onlyB = [...a].filter((c, j) => c === '0' && b[j] === '1').length;
    const m = onlyA + onlyB;
    let tail = 0;
    for (let i = 0; i <= Math.min(onlyA, onlyB); i++) tail += [...Array(i).keys()].reduce((acc, t) => (acc * (m - t)) / (t + 1), 1) / 2 ** m;
    const p = m === 0 ? 1 : Math.min(1, 2 * tail);
    const paired = res.summary.paired as { label: string; pgd: { table: { onlyA: number; onlyB: number }; p: number; diff: number } }[];
    expect(paired.map((x) => x.label)).toEqual(['silu']);
    expect([paired[0]!.pgd.table.onlyA, paired[0]!.pgd.table.onlyB]).toEqual([onlyA, onlyB]);
    expect(paired[0]!.pgd.p).toBeCloseTo(p, 12);
    expect(paired[0]!.pgd.diff).toBeCloseTo((onlyA - onlyB) / 6, 12);
    const pts = (d: number) => `${d >= 0 ? '+' : '-'}${Math.abs(100 * d).toFixed(1)}`;
    expect(report).toContain('## Against relu on the same images');
    expect(report).toContain(`| silu | ${pts((onlyA - onlyB) / 6)} [`);
    // one comparison, p >= 1/16 on 6 images: never significant, so the sentence says so with that p
    expect(report).toMatch(new RegExp(`\\*\\*silu\\*\\*: no significant difference from ReLU in accuracy under PGD-2 \\(eps 0\\.1\\) \\(exact McNemar p = ${p >= 0.995 ? '1' : String(Number(p.toPrecision(2)))}; difference ${pts((onlyA - onlyB) / 6).replace('+', '\\+')} points`));
    expect(existsSync(join(dir, 'success_vs_steps.svg')) && readFileSync(join(dir, 'success_vs_steps.svg'), 'utf8')).toContain('Wilson 95% intervals over 6 images');
    // A study of the saved checkpoint rebuilds the model from its metadata.
    console.log = () => {};
    try {
      expect(await cmdStudy(['kink', '--checkpoint', join(dir, 'model-silu.safetensors'), '--limit', '4', '--steps', '1', '--out', out, '--name', 'c'])).toBe(0);
    } finally {
      console.log = orig;
    }
    const rc = JSON.parse(readFileSync(join(out, 'c', 'results.json'), 'utf8'));
    expect(rc.models[0].activation).toBe('silu');
  });
});
