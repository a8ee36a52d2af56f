// Pre-activation recorder of the kink study: while started (observeActivations), counts
// per Activation layer how many inputs lie within |z| < tau (and exactly 0) in each
// forward, bucketed by the PGD step the caller tags, and copies tagged forwards for
// histograms. Counts stay on the GPU until flush().
import { Tensor, abs, clone, eq, keep, lt, noGrad, sum } from '../../engine/index.ts';
import { Activation, observeActivations } from '../../nn/activation.ts';
import type { Module } from '../../nn/module.ts';
import { checkCount, checkPositive } from '../threat.ts';

async function read(t: Tensor): Promise<Float32Array> {
  const v = await t.f32();
  t.dispose();
  return v;
}

/** Dotted module paths of a model's Activation layers, depth-first (activationLayers order). */
export function activationPaths(model: Module): { layer: Activation; path: string }[] {
  const out: { layer: Activation; path: string }[] = [];
  const walk = (m: Module, path: string) => {
    if (m instanceof Activation) out.push({ layer: m, path: path || '(root)' });
    for (const [name, c] of m.children()) walk(c, path ? `${path}.${name}` : name);
  };
  walk(model, '');
  return out;
}

export interface LayerPreActStats {
  path: string;
  /** Pre-activations seen per forward (all examples). */
  perForward: number;
  /** [tau]: fraction with |z| < tau at the clean point (forwards tagged step < 0). */
  clean: number[];
  /** [step][tau]: fraction with |z| < tau in the forwards tagged with that step (>= 0). */
  fractionByStep: number[][];
  /** [tau]: over every forward tagged step >= 0 (the attack's). */
  fraction: number[];
  /** Fraction exactly 0, over the attack's forwards. */
  exactZero: number;
  /** Histograms of z on [-range, range] from snapshot forwards (fraction of ALL values per bin). */
  histograms: Record<string, number[]>;
}

/**
 * Counts, during the forwards it sees, how many inputs of each Activation layer of `model`
 * lie within |z| < tau (on the GPU: one indicator and one sum per layer and tau), bucketed
 * by `step` (set it before each forward). Forwards whose step `snapshotFor` maps to a key
 * have their pre-activations copied for host-side histograms (under that key). Observes the model's Activation layers (observeActivations) between
 * start() and stop().
 */
export class PreActRecorder {
  readonly paths: { layer: Activation; path: string }[];
  step = 0;
  /** Which forwards to copy for histograms: a key for the current step, or null (default: none). */
  snapshotFor: (step: number) => string | null = () => null;
  private readonly index = new Map<Activation, number>();
  private counts: { layer: number; step: number; total: number; t: Tensor[] }[] = [];
  private snaps: { layer: number; key: string; t: Tensor }[] = [];
  private hist = new Map<string, Float64Array>();
  private histTotal = new Map<string, number>();
  private byStep = new Map<string, { n: number; hits: number[] }>();
  private sizes = new Map<number, number>();

  constructor(
    model: Module,
    readonly taus: number[],
    readonly histRange = 0.25,
    readonly bins = 50,
  ) {
    for (const t of taus) checkPositive('PreActRecorder', 'tau', t);
    checkPositive('PreActRecorder', 'histRange', histRange);
    checkCount('PreActRecorder', 'bins', bins, 1);
    this.paths = activationPaths(model);
    this.paths.forEach((p, i) => this.index.set(p.layer, i));
  }

  private readonly hook = (layer: Activation, z: Tensor): void => this.observe(layer, z);

  private unobserve: (() => void) | undefined;

  start(): this {
    this.unobserve ??= observeActivations(this.paths.map((p) => p.layer), this.hook);
    return this;
  }

  stop(): void {
    this.unobserve = void this.unobserve?.();
  }

  private observe(layer: Activation, z: Tensor): void {
    const li = this.index.get(layer);
    if (li === undefined) return; // a layer of another model
    noGrad(() => {
      const az = abs(z);
      const t = [...this.taus.map((tau) => lt(az, tau)), eq(z, 0)];
      az.dispose();
      const sums = t.map((m) => {
        const s = keep(sum(m));
        m.dispose();
        return s;
      });
      this.counts.push({ layer: li, step: this.step, total: z.size, t: sums });
      this.sizes.set(li, z.size);
      const key = this.snapshotFor(this.step);
      if (key !== null) this.snaps.push({ layer: li, key, t: keep(clone(z)) });
    });
  }

  /** Read back and fold the pending counts and snapshots (call between batches to bound memory). */
  async flush(): Promise<void> {
    for (const c of this.counts) {
      const vals: number[] = [];
      for (const t of c.t) vals.push((await read(t))[0]!);
      const k = `${c.layer}:${c.step}`;
      const e = this.byStep.get(k) ?? { n: 0, hits: new Array<number>(vals.length).fill(0) };
      e.n += c.total;
      vals.forEach((v, i) => (e.hits[i]! += v));
      this.byStep.set(k, e);
    }
    this.counts = [];
    for (const s of this.snaps) {
      const v = await read(s.t);
      const k = `${s.layer}:${s.key}`;
      const h = this.hist.get(k) ?? new Float64Array(this.bins);
      const w = (2 * this.histRange) / this.bins;
      for (let i = 0; i < v.length; i++) {
        const b = Math.floor((v[i]! + this.histRange) / w);
        if (b >= 0 && b < this.bins) h[b]!++;
        else if (v[i] === this.histRange) h[this.bins - 1]!++;
      }
      this.hist.set(k, h);
      this.histTotal.set(k, (this.histTotal.get(k) ?? 0) + v.length);
    }
    this.snaps = [];
  }

  /**
   * Per-layer statistics (flushes first). Forwards tagged step < 0 (the clean point) give
   * `clean`; the others give `fractionByStep` and the overall `fraction` / `exactZero`.
   */
  async result(): Promise<LayerPreActStats[]> {
    await this.flush();
    const T = this.taus.length;
    return this.paths.map((p, li) => {
      const steps = [...this.byStep.keys()].filter((k) => k.startsWith(`${li}:`)).map((k) => Number(k.split(':')[1])).sort((a, b) => a - b);
      const fractionByStep: number[][] = [];
      let clean: number[] = this.taus.map(() => NaN);
      let n = 0;
      const hits = new Array<number>(T + 1).fill(0);
      for (const s of steps) {
        const e = this.byStep.get(`${li}:${s}`)!;
        const f = e.hits.slice(0, T).map((h) => h / e.n);
        if (s < 0) {
          clean = f;
          continue;
        }
        fractionByStep[s] = f;
        n += e.n;
        e.hits.forEach((h, i) => (hits[i]! += h));
      }
      const histograms: Record<string, number[]> = {};
      for (const [k, h] of this.hist) {
        const i = k.indexOf(':');
        if (Number(k.slice(0, i)) === li) histograms[k.slice(i + 1)] = Array.from(h, (c) => c / this.histTotal.get(k)!);
      }
      return { path: p.path, perForward: this.sizes.get(li) ?? 0, clean, fractionByStep, fraction: hits.slice(0, T).map((h) => (n ? h / n : NaN)), exactZero: n ? hits[T]! / n : NaN, histograms };
    });
  }

  /** Dispose anything not yet read back and uninstall the hook. */
  dispose(): void {
    this.stop();
    for (const c of this.counts) for (const t of c.t) t.dispose();
    for (const s of this.snaps) s.t.dispose();
    this.counts = [];
    this.snaps = [];
  }
}
