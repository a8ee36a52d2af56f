// Pieces of the loops whose attack and parameter update share one backward pass (Free-AT,
// FreeLB, YOPO): the option checks with their single smooth switch and threat model, and
// the hand-over of the per-pass result (each reports its last pass).
import type { BatchResult } from '../trainer.ts';
import { resolveThreat, type Norm, type ResolvedThreat } from '../threat.ts';
import { checkCommon, checkOptions, type AdvLoopCommon } from './pgd_at.ts';
import { sharedSwitch } from './sat.ts';

interface ThreatOptions extends AdvLoopCommon {
  eps: number;
  bounds?: [number, number];
}

/**
 * Checks a shared-backward loop's options (an object, the common options, one smooth
 * switch: sharedSwitch) and resolves its threat model; `norm` reads the norm from the
 * checked options.
 */
export function sharedBackwardSetup<O extends ThreatOptions>(who: string, opts: O, norm: (o: O) => Norm): { smooth: boolean | undefined; threat: ResolvedThreat } {
  checkOptions(who, opts);
  checkCommon(who, opts);
  const smooth = sharedSwitch(who, opts);
  return { smooth, threat: resolveThreat({ norm: norm(opts), eps: opts.eps, bounds: opts.bounds }, who) };
}

/** The result of the pass just run; disposes the previous pass's loss sum and correct count. */
export function replaceResult(prev: BatchResult | null, next: BatchResult): BatchResult {
  if (prev) {
    prev.lossSum.dispose();
    prev.correct.dispose();
  }
  return next;
}
