// The AutoAttack stage registry: stage name -> how to build its attacks for a threat model,
// a seed and the budgets. The runner (adversarial/autoattack.ts) runs a stage's attacks one
// after the other, each on the examples still robust at that point. 'apgd-t' and 'fab-t' are one attack
// per target class (ranks 2..nTargets+1 of the clean logits), so every target only sees the
// examples the previous targets left robust. Budgets and the sequence: docs/autoattack.md.
import type { Attack, BnMode } from './attacks/common.ts';
import { Apgd } from './attacks/apgd.ts';
import { ApgdTargeted } from './attacks/apgd_targeted.ts';
import type { ResolvedThreat } from './threat.ts';
import { FabTargeted } from './attacks/fab.ts';
import { Square } from './attacks/square.ts';

/** The standard AutoAttack sequence (Croce and Hein 2020). */
export const STANDARD_SEQUENCE: readonly string[] = ['apgd-ce', 'apgd-t', 'fab-t', 'square'];

/** Per-stage budgets; the defaults are AutoAttack's standard version. */
export interface StageBudgets {
  /** APGD iterations per run (APGD-CE and each APGD-T target), default 100. */
  apgdSteps: number;
  /** APGD-CE restarts, default 1. */
  apgdRestarts: number;
  /** Target classes of APGD-T and FAB-T (at most classes - 1), default 9. */
  targets: number;
  /** FAB-T iterations per target, default 100. */
  fabSteps: number;
  /** FAB-T restarts, default 1. */
  fabRestarts: number;
  /** Square queries per example, default 5000. */
  squareQueries: number;
  /** Square's initial fraction of pixels per square, default 0.8. */
  squarePInit: number;
  /** Model mode during every attack, default 'eval'. */
  bnMode: BnMode;
}

export const STANDARD_BUDGETS: Readonly<StageBudgets> = { apgdSteps: 100, apgdRestarts: 1, targets: 9, fabSteps: 100, fabRestarts: 1, squareQueries: 5000, squarePInit: 0.8, bnMode: 'eval' };

/** One attack of a stage, with the label the report gives it. */
export interface StagePart {
  label: string;
  attack: Attack;
}

export interface StageDef {
  /** True for attacks that never use the model's gradient (the masking warning's evidence). */
  gradientFree: boolean;
  /**
   * The stage's attacks, run in order on the examples still robust. `classes` is the
   * model's number of classes (known after the clean pass).
   */
  make(threat: ResolvedThreat, seed: number, budgets: StageBudgets, classes: number): StagePart[];
}

export type StageRegistry = Readonly<Record<string, StageDef>>;

/** Target ranks 2..n+1 with n = min(targets, classes - 1). */
export function targetRanks(targets: number, classes: number): number[] {
  const n = Math.min(targets, classes - 1);
  return Array.from({ length: Math.max(0, n) }, (_, i) => i + 2);
}

export const STAGES: StageRegistry = {
  'apgd-ce': {
    gradientFree: false,
    make: (t, seed, b) => [{ label: 'apgd-ce', attack: new Apgd({ norm: t.norm, eps: t.eps, bounds: t.bounds, steps: b.apgdSteps, restarts: b.apgdRestarts, loss: 'ce', seed, bnMode: b.bnMode }) }],
  },
  'apgd-t': {
    gradientFree: false,
    make: (t, seed, b, classes) => {
      if (classes < 4) throw new Error(`kinkless: AutoAttack: apgd-t needs at least 4 classes (the targeted DLR loss), the model has ${classes}`);
      const all = new ApgdTargeted({ norm: t.norm, eps: t.eps, bounds: t.bounds, steps: b.apgdSteps, restarts: 1, nTargetClasses: b.targets, seed, bnMode: b.bnMode });
      return targetRanks(b.targets, classes).map((r) => ({ label: `apgd-t (target rank ${r})`, attack: all.target(r) }));
    },
  },
  'fab-t': {
    gradientFree: false,
    make: (t, seed, b, classes) =>
      targetRanks(b.targets, classes).map((r) => ({
        label: `fab-t (target rank ${r})`,
        attack: new FabTargeted({ norm: t.norm, eps: t.eps, bounds: t.bounds, steps: b.fabSteps, restarts: b.fabRestarts, targetRank: r, seed: seed + r, bnMode: b.bnMode }),
      })),
  },
  'square': { gradientFree: true, make: (t, seed, b) => [{ label: 'square', attack: new Square({ norm: t.norm, eps: t.eps, bounds: t.bounds, queries: b.squareQueries, pInit: b.squarePInit, seed, bnMode: b.bnMode }) }] },
};

/** Every stage name AutoAttack knows (built here or not). */
export const KNOWN_STAGES: readonly string[] = STANDARD_SEQUENCE;

/**
 * Checks a list of stage names against a registry; the error names the bad value and the
 * allowed names (and says when a known stage is not built in this version).
 */
export function checkStageNames(who: string, names: readonly string[], registry: StageRegistry = STAGES): void {
  if (!Array.isArray(names) || names.length === 0) throw new Error(`kinkless: ${who}: attacks must be a non-empty list of stage names (${Object.keys(registry).join(', ')}), got ${JSON.stringify(names)}`);
  const seen = new Set<string>();
  for (const n of names) {
    if (seen.has(n)) throw new Error(`kinkless: ${who}: stage "${n}" is listed twice in ${JSON.stringify(names)}`);
    seen.add(n);
    if (registry[n]) continue;
    if (KNOWN_STAGES.includes(n)) throw new Error(`kinkless: ${who}: stage "${n}" is not built in this version; available: ${Object.keys(registry).join(', ')}`);
    throw new Error(`kinkless: ${who}: unknown stage "${n}"; allowed: ${Object.keys(registry).join(', ')}${Object.keys(registry).length < KNOWN_STAGES.length ? ` (not built yet: ${KNOWN_STAGES.filter((k) => !registry[k]).join(', ')})` : ''}`);
  }
}
