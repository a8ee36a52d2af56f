// Adversarial training loops (each a TrainLoop for adversarial/trainer.ts): PGD-AT, fast
// FGSM-AT with a catastrophic-overfitting detector, Free-AT, YOPO, FreeLB, SAT (switches
// on every loop plus a PGD-1 preset), and the guards they share (PSSiLU regularisation,
// activation parameter groups, robust-overfitting guard, hook chaining).
export { PgdAt, outerStep, type PgdAtOptions, type AdvLoopCommon } from './pgd_at.ts';
export { FastAt, CoDetector, type FastAtOptions, type FastAtCoOptions, type CoDetectorOptions, type CoCheck, type CoState } from './fast_at.ts';
export { FreeAt, type FreeAtOptions } from './free_at.ts';
export { Yopo, splitFirstLayer, type YopoOptions, type YopoSplit } from './yopo.ts';
export { FreeLb, dropoutLayers, type FreeLbOptions } from './freelb.ts';
export { satTraining, withSurrogate, sharedSwitch, type SmoothSwitches } from './sat.ts';
export {
  RobustOverfitGuard,
  activationParamGroups,
  activationRegTerm,
  chainHooks,
  clipPssiluBGrad,
  pssiluParams,
  trainingObjective,
  objectiveFromLogits,
  type ActivationRegOptions,
  type ActivationGroupOptions,
  type RobustGuardOptions,
  type GuardRecord,
} from './guards.ts';
