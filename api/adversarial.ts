// `kinkless/adversarial`: attacks (FGSM, FGM, PGD, APGD, FAB-T, Square), adversarial training loops, the
// trainer, robust evaluation with gradient-masking checks, the AutoAttack runner, threat models, resumable training.
/// <reference types="@webgpu/types" preserve="true" />
export * from '../adversarial/attacks/index.ts';
export * from '../adversarial/train/index.ts';
export * from '../adversarial/trainer.ts';
export * from '../adversarial/eval.ts';
export * from '../adversarial/autoattack.ts';
export * from '../adversarial/autoattack_stages.ts';
export * from '../adversarial/threat.ts';
export * from '../adversarial/resume.ts';
export * from '../adversarial/guard_nan.ts';
