// Threat-model geometry as engine ops (no autograd: they act on perturbations, never on
// the tape): per-example norms ([N, 1, ..., 1], keepdims), unit ascent directions,
// projections onto an L-inf or L2 eps-ball intersected with the pixel box, projected
// steps, random starts in the ball, and APGD's per-example step-size bookkeeping. Each is
// one fused kernel of kernels/threat.ts where it can be. Nothing here reads back.
import { Tensor, assertSameDevice, shapeStr } from '../tensor.ts';
import { THREAT, type ThreatOp } from '../../kernels/threat.ts';
import { launchEw, type EwOptions } from './ew_launch.ts';
import { abs, sign, zerosLike } from './elementwise.ts';
import { max, sum } from './reduce.ts';
import { randomNormal, randomUniform } from './random.ts';

export type BallNorm = 'linf' | 'l2';

/** An eps-ball of the norm around each example, intersected with the box [lo, hi]. */
export interface Ball {
  norm: BallNorm;
  eps: number;
  bounds: readonly [number, number];
}

// NOTE: the smallest scale used to guard divisions by per-example norms; far below any
// gradient that matters and well inside the normal float32 range.
const TINY = 1e-30;

function op(name: ThreatOp, inputs: Tensor[], opts?: EwOptions): Tensor {
  return launchEw(THREAT, name, inputs, opts);
}

function checkF32(who: string, named: [string, Tensor][]): void {
  for (const [nm, t] of named) {
    if (!(t instanceof Tensor)) throw new Error(`kinkless: ${who}: ${nm} must be a Tensor, got ${String(t)}`);
    if (t.dtype !== 'f32') throw new Error(`kinkless: ${who}: ${nm} must be f32, got an ${t.dtype} tensor of shape ${shapeStr(t.shape)}`);
  }
  assertSameDevice(who, ...named.map(([, t]) => t));
}

function checkSameShape(who: string, a: [string, Tensor], b: [string, Tensor]): void {
  const [na, ta] = a;
  const [nb, tb] = b;
  if (ta.rank !== tb.rank || ta.shape.some((d, i) => d !== tb.shape[i])) {
    throw new Error(`kinkless: ${who}: ${nb} must have ${na}'s shape ${shapeStr(ta.shape)}, got ${shapeStr(tb.shape)}`);
  }
}

function checkBounds(who: string, b: readonly [number, number]): void {
  if (!Array.isArray(b) || b.length !== 2 || !Number.isFinite(b[0]) || !Number.isFinite(b[1]) || !(b[0] < b[1])) {
    throw new Error(`kinkless: ${who}: bounds must be [lo, hi], finite, lo < hi, got ${JSON.stringify(b)}`);
  }
}

function checkBall(who: string, ball: Ball): void {
  if (ball == null || (ball.norm !== 'linf' && ball.norm !== 'l2')) throw new Error(`kinkless: ${who}: ball.norm must be 'linf' or 'l2', got ${JSON.stringify(ball?.norm)}`);
  if (!Number.isFinite(ball.eps) || ball.eps < 0) throw new Error(`kinkless: ${who}: ball.eps must be a finite number >= 0, got ${String(ball.eps)}`);
  checkBounds(who, ball.bounds);
}

function checkFinite(who: string, arg: string, v: number): void {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`kinkless: ${who}: ${arg} must be a finite number, got ${String(v)}`);
}

/** Axes of one example: every axis but the batch axis. */
export function exampleAxes(t: Tensor): number[] {
  return Array.from({ length: t.rank - 1 }, (_, i) => i + 1);
}

/** Per-example shape [N, 1, ..., 1] of a batch tensor. */
export function perExampleShape(t: Tensor): number[] {
  return [t.shape[0]!, ...exampleAxes(t).map(() => 1)];
}

/**
 * Per-example L2 norm, [N, 1, ..., 1]. NOTE: computed as m * ||t / m|| with m = max|t|
 * per example, so tiny values (|t| ~ 1e-20, whose squares underflow float32) still get
 * their true norm, and an all-zero example gets exactly 0.
 */
export function l2NormPerExample(t: Tensor): Tensor {
  checkF32('l2NormPerExample', [['t', t]]);
  const ax = exampleAxes(t);
  const a = abs(t);
  const m = max(a, ax, true);
  a.dispose();
  const sq = op('l2_scaled_square', [t, m], { scalars: [TINY] });
  const ss = sum(sq, ax, true);
  sq.dispose();
  const n = op('l2_norm', [ss, m]);
  ss.dispose();
  m.dispose();
  return n;
}

/** Per-example L-inf norm, [N, 1, ..., 1]. */
export function linfNormPerExample(t: Tensor): Tensor {
  checkF32('linfNormPerExample', [['t', t]]);
  const a = abs(t);
  const m = max(a, exampleAxes(t), true);
  a.dispose();
  return m;
}

export function normPerExample(t: Tensor, norm: BallNorm): Tensor {
  if (norm !== 'linf' && norm !== 'l2') throw new Error(`kinkless: normPerExample: norm must be 'linf' or 'l2', got ${JSON.stringify(norm)}`);
  return norm === 'linf' ? linfNormPerExample(t) : l2NormPerExample(t);
}

/** g / n per example (n [N, 1, ..., 1] from normPerExample); 0 where n is 0. */
export function normalizePerExample(g: Tensor, n: Tensor): Tensor {
  checkF32('normalizePerExample', [['g', g], ['n', n]]);
  return op('normalize', [g, n], { scalars: [TINY] });
}

/** (a - b) / n per example; 0 where n is 0. */
export function diffOverNorm(a: Tensor, b: Tensor, n: Tensor): Tensor {
  checkF32('diffOverNorm', [['a', a], ['b', b], ['n', n]]);
  checkSameShape('diffOverNorm', ['a', a], ['b', b]);
  return op('diff_normalize', [a, b, n], { scalars: [TINY] });
}

/**
 * The steepest-ascent direction of unit norm: sign(g) for L-inf (sign(0) = 0), g/||g||_2
 * per example for L2 (0 where g is all zero).
 */
export function ascentDirection(g: Tensor, norm: BallNorm): Tensor {
  if (norm !== 'linf' && norm !== 'l2') throw new Error(`kinkless: ascentDirection: norm must be 'linf' or 'l2', got ${JSON.stringify(norm)}`);
  checkF32('ascentDirection', [['g', g]]);
  if (norm === 'linf') return sign(g);
  const n = l2NormPerExample(g);
  const d = op('normalize', [g, n], { scalars: [TINY] });
  n.dispose();
  return d;
}

/**
 * Project a perturbation onto the eps-ball, then onto the box: delta = clip(delta, -eps,
 * eps) (L-inf) or delta *= min(1, eps/||delta||) (L2), then delta = clip(x + delta, lo, hi)
 * - x (the order of docs/numerics.md). Clipping to the box only shrinks |delta_i| (x is
 * in the box), so the result stays in the ball.
 */
export function projectBall(x: Tensor, delta: Tensor, ball: Ball): Tensor {
  const who = 'projectBall';
  checkBall(who, ball);
  checkF32(who, [['x', x], ['delta', delta]]);
  checkSameShape(who, ['x', x], ['delta', delta]);
  const [lo, hi] = ball.bounds;
  if (ball.norm === 'linf') return op('project_linf', [x, delta], { scalars: [ball.eps, lo, hi] });
  const n = l2NormPerExample(delta);
  const r = op('project_l2', [x, delta, n], { scalars: [ball.eps, lo, hi] });
  n.dispose();
  return r;
}

/**
 * One projected step: projectBall(delta + step * dir). `step` is a number (< 0 descends)
 * or a per-example [N, 1, ..., 1] tensor. L-inf is one fused kernel.
 */
export function stepBall(x: Tensor, delta: Tensor, dir: Tensor, step: number | Tensor, ball: Ball): Tensor {
  const who = 'stepBall';
  checkBall(who, ball);
  checkF32(who, [['x', x], ['delta', delta], ['dir', dir], ...(typeof step === 'number' ? [] : [['step', step] as [string, Tensor]])]);
  checkSameShape(who, ['x', x], ['delta', delta]);
  checkSameShape(who, ['x', x], ['dir', dir]);
  if (typeof step === 'number') checkFinite(who, 'step', step);
  const [lo, hi] = ball.bounds;
  if (ball.norm === 'linf') {
    return typeof step === 'number' ? op('step_linf', [x, delta, dir], { scalars: [ball.eps, lo, hi, step] }) : op('step_linf_t', [x, delta, dir, step], { scalars: [ball.eps, lo, hi] });
  }
  const moved = axpy(delta, dir, step);
  const r = projectBall(x, moved, ball);
  moved.dispose();
  return r;
}

/** a + alpha * b, alpha a number or a tensor broadcasting against b (per-example steps). */
export function axpy(a: Tensor, b: Tensor, alpha: number | Tensor): Tensor {
  const who = 'axpy';
  checkF32(who, [['a', a], ['b', b], ...(typeof alpha === 'number' ? [] : [['alpha', alpha] as [string, Tensor]])]);
  checkSameShape(who, ['a', a], ['b', b]);
  if (typeof alpha === 'number') {
    checkFinite(who, 'alpha', alpha);
    return op('axpy', [a, b], { scalars: [alpha] });
  }
  return op('axpy_t', [a, b, alpha]);
}

/** clip(x + delta, lo, hi) - x: delta cut to the box. */
export function projectBox(x: Tensor, delta: Tensor, bounds: readonly [number, number]): Tensor {
  checkBounds('projectBox', bounds);
  checkF32('projectBox', [['x', x], ['delta', delta]]);
  checkSameShape('projectBox', ['x', x], ['delta', delta]);
  return op('project_box', [x, delta], { scalars: [bounds[0], bounds[1]] });
}

/** clip(x + delta, lo, hi) (exact in real arithmetic for delta in the box; removes rounding). */
export function addClipped(x: Tensor, delta: Tensor, bounds: readonly [number, number]): Tensor {
  checkBounds('addClipped', bounds);
  checkF32('addClipped', [['x', x], ['delta', delta]]);
  checkSameShape('addClipped', ['x', x], ['delta', delta]);
  return op('apply_delta', [x, delta], { scalars: [bounds[0], bounds[1]] });
}

/**
 * clip(x + scale * dir, lo, hi) in one pass; with `signOf` the direction is sign(dir)
 * (FGSM's step, sign(0) = 0).
 */
export function boxStep(x: Tensor, dir: Tensor, scale: number, bounds: readonly [number, number], opts: { signOf?: boolean } = {}): Tensor {
  const who = 'boxStep';
  checkBounds(who, bounds);
  checkFinite(who, 'scale', scale);
  checkF32(who, [['x', x], ['dir', dir]]);
  checkSameShape(who, ['x', x], ['dir', dir]);
  return op(opts.signOf ? 'box_step_sign' : 'box_step', [x, dir], { scalars: [scale, bounds[0], bounds[1]] });
}

/**
 * A random start inside the ball, clipped to the box. L-inf: U(-eps, eps) per coordinate.
 * L2: a uniformly random direction (normalised Gaussian) times eps * u, u ~ U(0, 1) per
 * example (so ||delta|| <= eps). Draws come from `next`, which hands out disjoint
 * (seed, offset) keys: x.size for the first draw, N for the L2 radii.
 */
export function randomBallStart(x: Tensor, ball: Ball, next: (n: number) => { seed: number; offset: number }): Tensor {
  const who = 'randomBallStart';
  checkBall(who, ball);
  checkF32(who, [['x', x]]);
  const device = x.device;
  if (ball.eps === 0) return zerosLike(x);
  let raw: Tensor;
  if (ball.norm === 'linf') raw = randomUniform(device, x.shape, { ...next(x.size), lo: -ball.eps, hi: ball.eps });
  else {
    const z = randomNormal(device, x.shape, next(x.size));
    const dir = ascentDirection(z, 'l2');
    z.dispose();
    const u = randomUniform(device, perExampleShape(x), next(x.shape[0]!));
    raw = op('scale_radius', [dir, u], { scalars: [ball.eps] });
    dir.dispose();
    u.dispose();
  }
  const r = op('project_box', [x, raw], { scalars: [ball.bounds[0], ball.bounds[1]] });
  raw.dispose();
  return r;
}

// ---------------------------------------------------------------- APGD bookkeeping

/** delta + a (z - delta) + b (delta - prev): APGD's momentum step (b = 1 - a). */
export function momentumMix(delta: Tensor, z: Tensor, prev: Tensor, a: number, b: number): Tensor {
  const who = 'momentumMix';
  checkF32(who, [['delta', delta], ['z', z], ['prev', prev]]);
  checkSameShape(who, ['delta', delta], ['z', z]);
  checkSameShape(who, ['delta', delta], ['prev', prev]);
  checkFinite(who, 'a', a);
  checkFinite(who, 'b', b);
  return op('momentum_mix', [delta, z, prev], { scalars: [a, b] });
}

/** count + (f > fPrev) per example: how many steps increased the objective. */
export function countIncrease(count: Tensor, f: Tensor, fPrev: Tensor): Tensor {
  checkF32('countIncrease', [['count', count], ['f', f], ['fPrev', fPrev]]);
  return op('count_increase', [count, f, fPrev]);
}

/**
 * APGD's step-size rule at a checkpoint, per example: 1 where inc < threshold (too few
 * increasing steps) or where eta was not halved last time (halved == 0) and the best
 * objective did not improve since (fBestCheck >= fBest); else 0.
 */
export function apgdReduceMask(inc: Tensor, halved: Tensor, fBestCheck: Tensor, fBest: Tensor, threshold: number): Tensor {
  checkF32('apgdReduceMask', [['inc', inc], ['halved', halved], ['fBestCheck', fBestCheck], ['fBest', fBest]]);
  checkFinite('apgdReduceMask', 'threshold', threshold);
  return op('apgd_reduce', [inc, halved, fBestCheck, fBest], { scalars: [threshold] });
}

/** eta / 2 where mask != 0 (mask broadcasts against eta). */
export function halveWhere(mask: Tensor, eta: Tensor): Tensor {
  checkF32('halveWhere', [['mask', mask], ['eta', eta]]);
  return op('halve_where', [mask, eta]);
}
