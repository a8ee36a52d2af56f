// How a learnable activation parameter's RAW value maps to its effective value (the
// table's constraints, kernels/activations.ts: |raw|, raw^2 or raw), the inverse used for
// initial raw values, and the domain check of effective values. Re-exported by
// activations.ts; pure functions, no WGSL.
import type { ActivationParam, ParamConstraint } from './activation_types.ts';

/** Effective value of a raw value under a constraint. */
export function constrain(c: ParamConstraint, raw: number): number {
  return c === 'abs' ? Math.abs(raw) : c === 'square' ? raw * raw : raw;
}

/**
 * The raw value whose constraint gives `eff` (a learnable parameter's initial raw value):
 * eff itself, or sqrt(eff) under 'square'. Throws for a negative eff under 'abs'/'square',
 * which no raw value reaches.
 */
export function unconstrain(c: ParamConstraint, eff: number): number {
  if (c !== 'none' && !(eff >= 0)) throw new Error(`a parameter learned as ${c === 'abs' ? '|raw|' : 'raw^2'} cannot start at ${eff} (must be >= 0)`);
  return c === 'square' ? Math.sqrt(eff) : eff;
}

/** Why effective value v of parameter p is outside its domain (null when inside). */
export function paramDomainError(p: ActivationParam, v: number): string | null {
  const d = p.domain;
  if (!d) return null;
  if (d.gt !== undefined && !(v > d.gt)) return `> ${d.gt} (${d.why})`;
  if (d.lt !== undefined && !(v < d.lt)) return `< ${d.lt} (${d.why})`;
  return null;
}
