// Optional NaN/Inf guard for train(): every N global steps it checks the step's loss and
// every parameter's gradient norm, reduced on the GPU into one [P] vector and read back
// once; on a non-finite value it stops training with an error that names the step, the
// first parameter (in the model's parameter order) with a non-finite gradient, and the
// last good checkpoint, so the run can be resumed from there with a lower learning rate.
import { Tensor, keep, scope, zeros, type Device } from '../engine/index.ts';
import type { Module } from '../nn/module.ts';
import type { StepInfo, TrainHooks } from './trainer.ts';
import { l2NormPerExample } from './threat.ts';

/** Thrown by the guard; `step` is the global step whose loss or gradients were non-finite. */
export class NonFiniteError extends Error {
  constructor(
    message: string,
    readonly step: number,
    /** Name of the first parameter with a non-finite gradient (null when only the loss was). */
    readonly parameter: string | null,
    /** Last good checkpoint path (null when none was configured or written yet). */
    readonly checkpoint: string | null,
  ) {
    super(message);
    this.name = 'NonFiniteError';
  }
}

/**
 * Per-parameter gradient L2 norms as one f32 [P] tensor (GPU only, no readback): entry i
 * belongs to params[i], 0 when it has no gradient. NOTE: each norm is max|g| * ||g / max|g|||
 * (threat.ts), so a finite gradient always gets a finite norm (no overflow of the squares at
 * |g| ~ 1e20), while a NaN or Inf anywhere in g makes the norm NaN (Inf / Inf and NaN both
 * propagate through the division and the sum).
 */
export function gradNorms(device: Device, params: readonly Tensor[]): Tensor {
  const out = zeros(device, [Math.max(params.length, 1)]);
  scope(() => {
    params.forEach((p, i) => {
      if (!p.grad || p.grad.size === 0) return;
      const g2 = p.grad.view([1, p.grad.size]);
      const n = l2NormPerExample(g2);
      device.queue.copy(n.buffer, 0, out.buffer, i * 4, 4);
    });
  });
  return out;
}

export interface NanGuardOptions {
  model: Module;
  /**
   * Check every N global steps (default 1). Hooks run only on train()'s logged steps
   * (step % logEvery === 0 and each epoch's last step), so use a multiple of logEvery.
   */
  every?: number;
  /** The last good checkpoint: a fixed path or a getter (e.g. checkpointHooks().lastPath). */
  checkpoint?: string | (() => string | null);
}

export interface NanGuardHooks extends TrainHooks {
  /** Number of checks run so far. */
  readonly checks: number;
  /** Global step of the last check that passed (-1 before the first). */
  readonly lastGoodStep: number;
}

function fmtNum(v: number): string {
  return Number.isNaN(v) ? 'NaN' : v === Infinity ? 'Infinity' : v === -Infinity ? '-Infinity' : String(v);
}

/**
 * Hooks for train() that throw NonFiniteError at the first check that sees a non-finite
 * loss or gradient. Runs after the step's optimizer update, while parameters' .grad still
 * hold that step's gradients (loops zero them at the start of the next step). Put it first
 * when merging with checkpoint hooks, so that a bad state is never saved as "good".
 */
export function nanGuard(opts: NanGuardOptions): NanGuardHooks {
  if (!opts || typeof opts.model?.namedParameters !== 'function') throw new Error('kinkless: nanGuard: options { model } are required');
  const every = opts.every ?? 1;
  if (!Number.isInteger(every) || every < 1) throw new Error(`kinkless: nanGuard: every must be an integer >= 1, got ${String(every)}`);
  const ck = opts.checkpoint;
  if (ck !== undefined && typeof ck !== 'string' && typeof ck !== 'function') throw new Error(`kinkless: nanGuard: checkpoint must be a path or a function returning one, got ${String(ck)}`);
  const state = { checks: 0, lastGoodStep: -1 };
  const named = opts.model.namedParameters();
  const check = async (info: StepInfo): Promise<void> => {
    if (info.step % every !== 0 && info.stepInEpoch !== info.stepsPerEpoch) return;
    const params = named.map(([, p]) => p);
    if (!params.length) return;
    const device = params[0]!.device;
    const norms = keep(gradNorms(device, params));
    let v: Float32Array;
    try {
      v = await norms.f32();
    } finally {
      norms.dispose();
    }
    state.checks++;
    const bad: number[] = [];
    for (let i = 0; i < params.length; i++) if (!Number.isFinite(v[i]!)) bad.push(i);
    const lossBad = !Number.isFinite(info.loss);
    if (!bad.length && !lossBad) {
      state.lastGoodStep = info.step;
      return;
    }
    const path = typeof ck === 'function' ? ck() : (ck ?? null);
    const parts = [`kinkless: nanGuard: non-finite training state at step ${info.step} (epoch ${info.epoch}, batch ${info.stepInEpoch} of ${info.stepsPerEpoch}, lr ${info.lr})`];
    parts.push(`loss = ${fmtNum(info.loss)}`);
    if (bad.length) {
      const [name] = named[bad[0]!]!;
      parts.push(`first parameter with a non-finite gradient: "${name}" (gradient L2 norm ${fmtNum(v[bad[0]!]!)}; ${bad.length} of ${params.length} parameters affected)`);
    } else parts.push('every gradient is finite');
    parts.push(state.lastGoodStep >= 0 ? `last good check at step ${state.lastGoodStep}` : 'no earlier check passed');
    parts.push(path ? `last good checkpoint: ${path}` : 'no checkpoint configured');
    throw new NonFiniteError(parts.join('; '), info.step, bad.length ? named[bad[0]!]![0] : null, path);
  };
  return {
    onStep: check,
    get checks() {
      return state.checks;
    },
    get lastGoodStep() {
      return state.lastGoodStep;
    },
  };
}
