// Attacks: FGSM, FGM, PGD (L-inf / L2, restarts, targeted), APGD-CE, APGD-DLR/T, FAB-T, Square; and makeAttack, which
// builds one from a plain JSON spec (CLI, configs, reports).
import { Fgsm, type FgsmOptions } from './fgsm.ts';
import { Fgm, type FgmOptions } from './fgm.ts';
import { Pgd, type PgdOptions } from './pgd.ts';
import { Apgd, type ApgdOptions } from './apgd.ts';
import { FabTargeted, type FabOptions } from './fab.ts';
import { Square, type SquareOptions } from './square.ts';
import type { Attack } from './common.ts';

export * from './common.ts';
export { Fgsm, fgsm, fmt, type FgsmOptions } from './fgsm.ts';
export { Fgm, fgm, type FgmOptions } from './fgm.ts';
export { Pgd, pgd, type PgdOptions, type StepTrace } from './pgd.ts';
export { Apgd, apgd, apgdCheckpoints, type ApgdOptions } from './apgd.ts';
export { Square, square, type SquareOptions, type SquareResult } from './square.ts';

export type AttackSpec =
  | ({ kind: 'fgsm' } & FgsmOptions)
  | ({ kind: 'fgm' } & FgmOptions)
  | ({ kind: 'pgd' } & PgdOptions)
  | ({ kind: 'apgd' } & ApgdOptions)
  | ({ kind: 'fab' } & FabOptions)
  | ({ kind: 'square' } & SquareOptions);

/** Build an attack from { kind, ...options }; errors name the unknown kind. */
export function makeAttack(spec: AttackSpec): Attack {
  switch (spec?.kind) {
    case 'fgsm':
      return new Fgsm(spec);
    case 'fgm':
      return new Fgm(spec);
    case 'pgd':
      return new Pgd(spec);
    case 'apgd':
      return new Apgd(spec);
    case 'fab':
      return new FabTargeted(spec);
    case 'square':
      return new Square(spec);
    default:
      throw new Error(`kinkless: makeAttack: kind must be 'fgsm', 'fgm', 'pgd', 'apgd', 'fab' or 'square', got ${JSON.stringify((spec as { kind?: unknown })?.kind)}`);
  }
}
export { ApgdTargeted, apgdTargeted, type ApgdTargetedOptions } from './apgd_targeted.ts';
export type { ApgdLoss } from './apgd.ts';
export { FabTargeted, fabTargeted, type FabOptions } from './fab.ts';
