// The Square attack (Andriushchenko, Croce, Flammarion and Hein 2020, "Square Attack: a
// query-efficient black-box adversarial attack via random search"), AutoAttack's
// gradient-free member, written from the paper and AutoAttack's published description
// (docs/autoattack.md, "Square"). Random search on the margin loss
//   m(x) = z_y(x) - max_{j != y} z_j(x)       (targeted: max_{j != t} z_j(x) - z_t(x))
// from a start on the eps-sphere, proposing at every iteration a change of one square
// window (its side from the schedule of p) and keeping it, per example, when it lowers m.
// An example is done once m <= 0; only the others are queried (the batch is compacted as
// examples succeed), and the run stops early when none is left.
//
// It never computes a gradient: every forward runs under noGrad with the parameters
// frozen. The accept/reject decisions need the margins on the host at every iteration, so
// the attack is asynchronous: use `await perturb()` (or `attack()` for the query counts);
// the synchronous `generate()` throws.
import { Tensor, add, addClipped, clamp, clone, concat, div, gather, l2NormPerExample, maximum, mul, noGrad, projectBall, scope, sqrt, sub, sum, where, type Device } from '../../engine/index.ts';
import type { Module } from '../../nn/module.ts';
import { Rng, deriveSeed } from '../../nn/data/loader.ts';
import { checkCount, resolveThreat, type Norm } from '../threat.ts';
import { BaseAttack, checkBatch, enterAttackMode, type AttackOptions } from './common.ts';
import { fmt } from './fgsm.ts';
import { etaWindow, l2Side, linfSide, placeWindow, squareP } from './square_geometry.ts';

export interface SquareOptions extends AttackOptions {
  norm?: Norm;
  eps: number;
  bounds?: [number, number];
  /** Iterations after the initial query (AutoAttack's n_queries; default 5000). */
  queries?: number;
  /** Initial fraction of pixels per square (default 0.8). */
  pInit?: number;
  /**
   * Map iterations onto the schedule's 10000-iteration scale (default false, as in
   * AutoAttack's standard version, which runs the unscaled schedule for 5000 queries).
   */
  rescaleSchedule?: boolean;
}

/** What one run of the attack found. */
export interface SquareResult {
  /** Adversarial examples (a fresh tensor owned by the caller), in the box and the ball. */
  xAdv: Tensor;
  /**
   * Forward passes of each example after the clean check: 0 when the clean input is
   * already misclassified, else 1 (the start) + the iterations it took part in.
   */
  queries: Int32Array;
  /** 1 where the returned point has margin <= 0 (misclassified, or the target reached). */
  fooled: Uint8Array;
  /** Each example's best (lowest) margin, at the returned point. */
  margins: Float64Array;
}

interface Active {
  x: Tensor; // clean inputs of the examples still attacked
  best: Tensor; // their best points so far
  idx: number[]; // their positions in the batch
  m: Float64Array; // their best margins
}

export class Square extends BaseAttack {
  readonly name: string;
  readonly queries: number;
  readonly pInit: number;
  readonly rescaleSchedule: boolean;
  /** Query counts of the last perturb() call (see SquareResult.queries). */
  lastQueries: Int32Array | null = null;
  /** Success flags of the last perturb() call. */
  lastFooled: Uint8Array | null = null;

  constructor(opts: SquareOptions) {
    super('Square', resolveThreat({ norm: opts?.norm ?? 'linf', eps: opts?.eps, bounds: opts?.bounds }, 'Square'), opts);
    this.queries = opts.queries ?? 5000;
    checkCount('Square', 'queries', this.queries, 1);
    this.pInit = opts.pInit ?? 0.8;
    if (typeof this.pInit !== 'number' || !(this.pInit > 0 && this.pInit <= 1)) throw new Error(`kinkless: Square: pInit must be a number in (0, 1], got ${String(opts.pInit)}`);
    this.rescaleSchedule = opts.rescaleSchedule ?? false;
    const t = this.threat;
    this.name = `Square-${this.queries}(${t.norm}, eps=${fmt(t.eps)}${this.targeted ? ', targeted' : ''})`;
  }

  protected run(): Tensor {
    throw new Error(`kinkless: ${this.name}: generate() cannot run the Square attack: it reads the margins back at every iteration; use 'await attack.perturb(model, x, y)'`);
  }

  override generate(_model: Module, _x: Tensor, _y: Tensor): Tensor {
    return this.run();
  }

  override async perturb(model: Module, x: Tensor, y: Tensor): Promise<Tensor> {
    const r = await this.attack(model, x, y);
    return r.xAdv;
  }

  /** Run the attack on x [N, C, H, W] with labels y (targets when targeted). */
  async attack(model: Module, x: Tensor, y: Tensor): Promise<SquareResult> {
    checkBatch(this.name, x, y);
    if (x.rank !== 4) throw new Error(`kinkless: ${this.name}: x must be images [N, C, H, W], got [${x.shape.join(', ')}]`);
    const key = this.nextKey(1);
    const rng = new Rng(deriveSeed(key.seed, key.offset));
    const restore = enterAttackMode(model, this.bnMode);
    try {
      return await this.search(model, x, y, rng);
    } finally {
      restore();
    }
  }

  private async search(model: Module, x: Tensor, y: Tensor, rng: Rng): Promise<SquareResult> {
    const N = x.shape[0]!;
    if (N === 0) return { xAdv: clone(x), queries: new Int32Array(0), fooled: new Uint8Array(0), margins: new Float64Array(0) };
    const labels = Int32Array.from(await y.data());
    const queries = new Int32Array(N);
    const margins = new Float64Array(N);
    const done: { t: Tensor; idx: number[] }[] = [];
    const keepOut = (t: Tensor, idx: number[], m: Float64Array) => {
      done.push({ t, idx });
      idx.forEach((g, i) => (margins[g] = m[i]!));
    };
    let a: Active | null = null;
    try {
      const m0 = await this.margins(model, x, labels, Array.from({ length: N }, (_, i) => i));
      const all = Array.from({ length: N }, (_, i) => i);
      const hit = all.filter((i) => m0[i]! <= 0);
      const rest = all.filter((i) => m0[i]! > 0);
      if (hit.length) keepOut(this.take(x, hit), hit, Float64Array.from(hit, (i) => m0[i]!));
      if (rest.length) {
        const xr = this.take(x, rest);
        a = { x: xr, best: this.start(xr, rng), idx: rest, m: new Float64Array(0) };
        a.m = await this.margins(model, a.best, labels, rest);
        for (const g of rest) queries[g] = 1;
        a = this.retire(a, keepOut);
        for (let it = 0; a && it < this.queries; it++) {
          const cand = this.propose(a, it, rng);
          const m = await this.margins(model, cand, labels, a.idx).catch((e: unknown) => {
            cand.dispose();
            throw e;
          });
          for (const g of a.idx) queries[g]!++;
          this.accept(a, cand, m);
          a = this.retire(a, keepOut);
        }
        if (a) {
          keepOut(a.best, a.idx, a.m);
          a.x.dispose();
          a = null;
        }
      }
      const xAdv = this.assemble(done, N);
      const fooled = Uint8Array.from(margins, (v) => (v <= 0 ? 1 : 0));
      this.lastQueries = queries;
      this.lastFooled = fooled;
      return { xAdv, queries, fooled, margins };
    } finally {
      for (const d of done) d.t.dispose();
      if (a) for (const t of [a.x, a.best]) t.dispose();
    }
  }

  /** Rows `idx` of t (a fresh tensor). */
  private take(t: Tensor, idx: number[]): Tensor {
    return scope(() => gather(t, Tensor.from(t.device, Int32Array.from(idx), [idx.length], 'i32')));
  }

  /**
   * Per-example margins (float64 on the host from the read-back logits) of xq, whose rows
   * are the batch examples `idx`.
   */
  private async margins(model: Module, xq: Tensor, labels: Int32Array, idx: number[]): Promise<Float64Array> {
    const logits = noGrad(() => scope(() => model.forward(xq)));
    if (logits.rank !== 2 || logits.shape[0] !== idx.length) {
      logits.dispose();
      throw new Error(`kinkless: ${this.name}: the model must return logits [${idx.length}, classes], got [${logits.shape.join(', ')}]`);
    }
    const C = logits.shape[1]!;
    const z = await logits.f32();
    logits.dispose();
    const out = new Float64Array(idx.length);
    for (let r = 0; r < idx.length; r++) {
      const yl = labels[idx[r]!]!;
      if (!(yl >= 0 && yl < C)) throw new Error(`kinkless: ${this.name}: label ${yl} of example ${idx[r]} is outside [0, ${C})`);
      let other = -Infinity;
      for (let c = 0; c < C; c++) if (c !== yl && z[r * C + c]! > other) other = z[r * C + c]!;
      const zy = z[r * C + yl]!;
      out[r] = this.targeted ? other - zy : zy - other;
    }
    return out;
  }

  /** The starting points on the eps-sphere (clipped to the box). */
  private start(x: Tensor, rng: Rng): Tensor {
    const [n, C, H, W] = x.shape as [number, number, number, number];
    const t = this.threat;
    const [lo, hi] = t.bounds;
    if (t.norm === 'linf') {
      // Vertical stripes: one sign per (example, channel, column), the same down each column.
      const s = new Float32Array(n * C * W);
      for (let i = 0; i < s.length; i++) s[i] = rng.next() < 0.5 ? -t.eps : t.eps;
      return scope(() => clamp(add(x, Tensor.from(x.device, s, [n, C, 1, W])), lo, hi));
    }
    // L2: a grid of windows of side max(1, floor(min(H, W) / 5)), each an etaWindow pattern
    // (transposed with probability 1/2, shared by the batch) times a random sign per
    // (example, channel); then scaled to L2 norm eps per example.
    const s0 = Math.max(1, Math.floor(Math.min(H, W) / 5));
    const h0 = Math.floor((H - 5 * s0) / 2);
    const w0 = Math.floor((W - 5 * s0) / 2);
    const planes: Float32Array[] = [];
    for (let i = 0; i < Math.floor(H / s0); i++) {
      for (let j = 0; j < Math.floor(W / s0); j++) {
        const vh = Math.max(h0, 0) + i * s0;
        const vw = Math.max(w0, 0) + j * s0;
        if (vh >= H || vw >= W) continue;
        planes.push(placeWindow(H, W, s0, vh, vw, etaWindow(s0, rng.next() < 0.5)));
      }
    }
    const d = new Float64Array(n * C * H * W);
    for (let e = 0; e < n; e++) {
      for (let c = 0; c < C; c++) {
        const base = (e * C + c) * H * W;
        for (const p of planes) {
          const sg = rng.next() < 0.5 ? -1 : 1;
          for (let k = 0; k < H * W; k++) d[base + k] += sg * p[k]!;
        }
      }
    }
    const dd = new Float32Array(d.length);
    const per = C * H * W;
    for (let e = 0; e < n; e++) {
      let ss = 0;
      for (let k = 0; k < per; k++) ss += d[e * per + k]! ** 2;
      const f = ss > 0 ? t.eps / Math.sqrt(ss) : 0;
      for (let k = 0; k < per; k++) dd[e * per + k] = d[e * per + k]! * f;
    }
    return scope(() => addClipped(x, projectBall(x, Tensor.from(x.device, dd, x.shape), t), t.bounds));
  }

  /** The candidate of iteration `it` for every active example (a fresh tensor). */
  private propose(a: Active, it: number, rng: Rng): Tensor {
    const [, C, H, W] = a.x.shape as [number, number, number, number];
    const t = this.threat;
    const p = squareP(this.pInit, it, this.queries, this.rescaleSchedule);
    const dev = a.x.device;
    // NOTE: every offset where the window fits, 0..H - s. AutoAttack's reference code draws
    // from [0, H - s), never the last offset (on 8 x 8 with s = 7: offset 0 only); a float64
    // host re-implementation of the L2 loop fooled fewer with that range (docs/autoattack.md).
    const pos = (s: number) => [rng.int(H - s + 1), rng.int(W - s + 1)] as const;
    if (t.norm === 'linf') {
      // One square, shared by the batch (as in AutoAttack), set to +-eps per channel: the
      // best point plus 2 eps sign(channel) inside the window, projected onto the ball.
      const s = linfSide(p, H, W);
      const [vh, vw] = pos(s);
      const u = new Float32Array(C * H * W);
      for (let c = 0; c < C; c++) {
        const sg = rng.next() < 0.5 ? -1 : 1;
        const plane = placeWindow(H, W, s, vh, vw, null);
        for (let k = 0; k < H * W; k++) u[c * H * W + k] = plane[k]! * 2 * t.eps * sg;
      }
      return scope(() => {
        const d = add(sub(a.best, a.x), Tensor.from(dev, u, [1, C, H, W]));
        return addClipped(a.x, projectBall(a.x, d, t), t.bounds);
      });
    }
    return this.proposeL2(a, p, rng, pos);
  }

  /**
   * L2 proposal: window 1 gets its normalised old content plus a random-sign etaWindow,
   * rescaled per channel to sqrt(max(eps^2 - ||delta||^2, 0) / C + ||delta on windows 1
   * and 2||^2) (the mass of both windows moves into window 1); window 2 is zeroed; the
   * result is rescaled to L2 norm eps and clipped to the box.
   */
  private proposeL2(a: Active, p: number, rng: Rng, pos: (s: number) => readonly [number, number]): Tensor {
    const [n, C, H, W] = a.x.shape as [number, number, number, number];
    const t = this.threat;
    const dev = a.x.device;
    const s = l2Side(p, H, W);
    const [vh, vw] = pos(s);
    const [vh2, vw2] = pos(s);
    const m1 = placeWindow(H, W, s, vh, vw, null);
    const m2 = placeWindow(H, W, s, vh2, vw2, null);
    const keepM = Float32Array.from(m1, (v, k) => (v > 0 || m2[k]! > 0 ? 0 : 1));
    const unionM = Float32Array.from(keepM, (v) => 1 - v);
    const etaP = placeWindow(H, W, s, vh, vw, etaWindow(s, rng.next() < 0.5));
    const sg = Float32Array.from({ length: n * C }, () => (rng.next() < 0.5 ? -1 : 1));
    const plane = (v: Float32Array) => Tensor.from(dev, v, [1, 1, H, W]);
    return scope(() => {
      const delta = sub(a.best, a.x);
      const w1 = mul(delta, plane(m1));
      const nW1 = sqrt(sum(mul(w1, w1), [2, 3], true)); // [n, C, 1, 1]
      const nImg = l2NormPerExample(delta); // [n, 1, 1, 1]
      const nWin = l2NormPerExample(mul(delta, plane(unionM)));
      const fresh = mul(plane(etaP), Tensor.from(dev, sg, [n, C, 1, 1]));
      const nd = add(fresh, div(w1, add(nW1, 1e-12)));
      const ndn = sqrt(sum(mul(nd, nd), [2, 3], true));
      const room = maximum(sub(t.eps * t.eps, mul(nImg, nImg)), 0);
      const target = sqrt(add(div(room, C), mul(nWin, nWin)));
      const win = mul(div(nd, add(ndn, 1e-12)), target);
      const d2 = add(mul(delta, plane(keepM)), win);
      const scaled = mul(d2, div(t.eps, add(l2NormPerExample(d2), 1e-12)));
      return addClipped(a.x, projectBall(a.x, scaled, t), t.bounds);
    });
  }

  /** Keep the candidate where it lowers the margin (strictly); updates a.best and a.m. */
  private accept(a: Active, cand: Tensor, m: Float64Array): void {
    const n = a.idx.length;
    const ok = new Float32Array(n);
    let k = 0;
    for (let i = 0; i < n; i++) {
      if (m[i]! < a.m[i]!) {
        ok[i] = 1;
        a.m[i] = m[i]!;
        k++;
      }
    }
    if (k === 0) {
      cand.dispose();
      return;
    }
    const old = a.best;
    if (k === n) a.best = cand;
    else {
      a.best = scope(() => where(Tensor.from(cand.device, ok, [n, 1, 1, 1]), cand, old));
      cand.dispose();
    }
    old.dispose();
  }

  /** Hand the examples with margin <= 0 to `out` and compact the rest (null when none is left). */
  private retire(a: Active, out: (t: Tensor, idx: number[], m: Float64Array) => void): Active | null {
    const doneL: number[] = [];
    const keepL: number[] = [];
    a.m.forEach((v, i) => (v <= 0 ? doneL : keepL).push(i));
    if (doneL.length === 0) return a;
    out(this.take(a.best, doneL), doneL.map((i) => a.idx[i]!), Float64Array.from(doneL, (i) => a.m[i]!));
    const next: Active | null = keepL.length
      ? { x: this.take(a.x, keepL), best: this.take(a.best, keepL), idx: keepL.map((i) => a.idx[i]!), m: Float64Array.from(keepL, (i) => a.m[i]!) }
      : null;
    for (const t of [a.x, a.best]) t.dispose();
    return next;
  }

  /** The batch in its original order from the finished groups (copies only). */
  private assemble(done: { t: Tensor; idx: number[] }[], N: number): Tensor {
    const order = done.flatMap((d) => d.idx);
    const inv = new Int32Array(N);
    order.forEach((g, k) => (inv[g] = k));
    const dev: Device = done[0]!.t.device;
    return scope(() => {
      const all = done.length === 1 ? done[0]!.t : concat(done.map((d) => d.t), 0);
      return gather(all, Tensor.from(dev, inv, [N], 'i32'));
    });
  }
}

export function square(opts: SquareOptions): Square {
  return new Square(opts);
}
