// Smooth Adversarial Training (Xie et al. 2020). SAT proper is any adversarial loop run on
// a model whose activation is smooth (that is only the model's activation spec). The
// paper's ablation keeps a ReLU forward pass and uses a smooth derivative in the backward
// pass only (a model whose activation spec has a `backward` surrogate, e.g.
// { kind: 'relu', backward: { kind: 'softplus', params: [10] } }), with separate switches
// for the attacker's backward (inner maximisation) and the optimizer's backward (outer
// minimisation). Every loop takes the switches `attackerSmooth` / `optimizerSmooth`:
// before generating adversarial examples the loop calls setSurrogate(model,
// attackerSmooth), before the training forward setSurrogate(model, optimizerSmooth).
// An undefined switch leaves the model's surrogate state as it is (on by default, so a
// surrogate model uses its surrogate in both passes).
//
// NOTE: Free-AT, YOPO and FreeLB obtain the attacker's gradient and the parameter
// gradients from ONE backward pass, so they accept the switches only when they agree.
import type { Module } from '../../nn/module.ts';
import { activationLayers, setSurrogate } from '../../nn/activation.ts';
import { PgdAt, type PgdAtOptions } from './pgd_at.ts';

export interface SmoothSwitches {
  /** Surrogate derivative in the attacker's backward (inner maximisation). */
  attackerSmooth?: boolean;
  /** Surrogate derivative in the optimizer's backward (outer minimisation). */
  optimizerSmooth?: boolean;
}

export function checkSwitches(who: string, s: SmoothSwitches): void {
  for (const k of ['attackerSmooth', 'optimizerSmooth'] as const) {
    const v = s[k];
    if (v !== undefined && typeof v !== 'boolean') throw new Error(`kinkless: ${who}: ${k} must be a boolean, got ${JSON.stringify(v)}`);
  }
}

/**
 * For loops whose attack and update share one backward: the single switch to use (the
 * one given, or both when they agree); throws when they differ.
 */
export function sharedSwitch(who: string, s: SmoothSwitches): boolean | undefined {
  checkSwitches(who, s);
  const { attackerSmooth: a, optimizerSmooth: o } = s;
  if (a !== undefined && o !== undefined && a !== o) {
    throw new Error(`kinkless: ${who}: attackerSmooth (${a}) and optimizerSmooth (${o}) differ, but this loop gets the attack's and the parameters' gradients from one backward pass; give one switch or equal values`);
  }
  return a ?? o;
}

/**
 * Run fn with every activation's surrogate switched to `on` (no change when undefined),
 * restoring each layer's previous state afterwards. The switch is read when a forward is
 * recorded, so fn must contain the forwards whose backward should use it.
 */
export function withSurrogate<T>(model: Module, on: boolean | undefined, fn: () => T): T {
  if (on === undefined) return fn();
  const layers = activationLayers(model);
  const prev = setSurrogate(model, on);
  try {
    return fn();
  } finally {
    layers.forEach((l, i) => (l.surrogateOn = prev[i]!));
  }
}

/**
 * SAT as in the paper's ImageNet setup: PGD-AT with ONE step of size eps from a random
 * start (override steps / alpha for other setups), the model's activation (smooth, or a
 * ReLU with a surrogate backward) and the two ablation switches.
 */
export function satTraining(opts: Omit<PgdAtOptions, 'steps' | 'alpha'> & { steps?: number; alpha?: number }): PgdAt {
  return new PgdAt({ ...opts, steps: opts.steps ?? 1, alpha: opts.alpha ?? opts.eps, randomStart: opts.randomStart ?? true, name: opts.name ?? 'sat' });
}
