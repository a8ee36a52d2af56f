// `kinkless profile`: per-kernel breakdown of one training step (any loop, model and
// activation `train` accepts) or one attack (--attack), measured with GPU timestamps after
// warm-up steps; prints a table sorted by time and writes it as JSON (docs/profile.md).
import { createDevice, adapterName, scope } from '../engine/index.ts';
import { profileSteps, formatProfile } from '../engine/profile.ts';
import { helpText, parseFlags, UsageError, type FlagSpec } from './args.ts';
import { DATA_FLAGS, MODEL_FLAGS, buildModel, loadData } from './setup.ts';
import { TRAIN_FLAGS, makeLoop, type LoopKind } from './train_run.ts';
import { uploadBatch, type TrainContext } from '../adversarial/trainer.ts';
import { activationParamGroups } from '../adversarial/train/index.ts';
import { Pgd, Fgsm } from '../adversarial/attacks/index.ts';
import { Adam, SGD } from '../nn/optim.ts';
import { makeSchedule } from '../nn/schedule.ts';
import { RUN_FLAGS, RunDir, defaultRunName } from './rundir.ts';
import { writeFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

const { steps: pgdSteps, epochs: _e, stopAfter: _s, evalEvery: _v, robustVal: _r, robustValFrom: _rf, ...TRAIN_REST } = TRAIN_FLAGS;

const FLAGS: Record<string, FlagSpec> = {
  ...DATA_FLAGS,
  ...MODEL_FLAGS,
  ...TRAIN_REST,
  attackSteps: { ...pgdSteps!, help: 'PGD steps (pgd loop, --attack pgd) or K (freelb)' },
  attack: { type: 'string', help: 'profile one attack on a batch instead of a training step', choices: ['none', 'pgd', 'fgsm'], default: 'none' },
  warmup: { type: 'int', help: 'unmeasured warm-up steps (pipelines, buffer pool)', default: 2, min: 0 },
  steps: { type: 'int', help: 'measured steps', default: 3, min: 1 },
  timing: { type: 'string', help: "per-kernel timing: auto (GPU timestamps where the adapter has 'timestamp-query') or none (counts only)", choices: ['auto', 'none'], default: 'auto' },
  quantized: { type: 'bool', help: "keep Dawn's timestamp quantization (65536 ns steps); off by default here", default: false },
  json: { type: 'string', help: 'write the JSON here (default: <out>/<name>/profile.json)' },
  ...RUN_FLAGS,
};

export const PROFILE_HELP = helpText(
  'kinkless profile [options]',
  "Per-kernel breakdown of one training step (or one attack with --attack): per kernel its op,\nname, geometry, calls, GPU time, share of the step, GFLOP/s and GB/s where known, sorted by\ntime; per step dispatches, submits, readbacks, uploads, copies, pool acquires, buffers\ncreated / destroyed and pipelines created. Prints the table and writes profile.json\n(docs/profile.md).",
  FLAGS,
  [
    'npx kinkless profile --batch-size 128                           # standard step, small CNN',
    'npx kinkless profile --loop fast --activation silu',
    'npx kinkless profile --loop pgd --attack-steps 10 --model madry_mnist --json prof.json',
    'npx kinkless profile --attack pgd --attack-steps 20',
  ],
);

export async function cmdProfile(argv: string[]): Promise<number> {
  const { flags, help } = parseFlags('kinkless profile', argv, FLAGS);
  if (help) {
    console.log(PROFILE_HELP);
    return 0;
  }
  const data = loadData(flags);
  const bs = flags.batchSize as number;
  if (bs > data.train.n) throw new UsageError(`--batch-size: ${bs} is more than the ${data.train.n} training images`);
  const device = await createDevice(flags.quantized ? {} : { dawnDisableToggles: 'timestamp_quantization' });
  try {
    const model = buildModel(device, flags, data.train);
    const idx = Int32Array.from({ length: bs }, (_, i) => i);
    const f = { ...flags, steps: flags.attackSteps };
    const attackKind = flags.attack as string;
    let step: (i: number) => void;
    let what: string;
    let dispose = (): void => undefined;
    if (attackKind !== 'none') {
      const eps = flags.eps as number;
      const atk = attackKind === 'pgd' ? new Pgd({ eps, alpha: (flags.alpha as number | undefined) ?? eps / 4, steps: flags.attackSteps as number, bnMode: flags.bnMode as 'eval' | 'train', seed: flags.seed as number }) : new Fgsm({ eps, bnMode: flags.bnMode as 'eval' | 'train' });
      what = `attack ${attackKind}${attackKind === 'pgd' ? `-${flags.attackSteps}` : ''} (eps ${eps})`;
      step = () =>
        scope(() => {
          const { x, y } = uploadBatch(device, data.train, idx);
          atk.generate(model, x, y);
        });
    } else {
      const loop = makeLoop(flags.loop as LoopKind, f);
      const groups = activationParamGroups(model, {});
      const opt = flags.optimizer === 'sgd' ? new SGD(groups, { lr: flags.lr as number, momentum: flags.momentum as number, weightDecay: flags.weightDecay as number }) : new Adam(groups, { lr: flags.lr as number, weightDecay: flags.weightDecay as number });
      dispose = () => opt.dispose();
      const ctx: TrainContext = { device, model, opt, schedule: makeSchedule({ kind: 'constant', lr: flags.lr as number }), step: 0, epoch: 0 };
      model.train(true);
      what = `train step, loop ${flags.loop}`;
      step = (i) =>
        scope(() => {
          ctx.step = i;
          const { x, y } = uploadBatch(device, data.train, idx);
          loop.trainBatch(ctx, x, y);
        });
    }
    const p = await profileSteps(device, step, { warmup: flags.warmup as number, steps: flags.steps as number, timing: flags.timing as 'auto' | 'none' });
    dispose();
    const header = `kinkless profile: ${what}; ${model.config.name}, ${flags.activation}, batch ${bs}; ${adapterName(device)}`;
    console.log(`${header}\n\n${formatProfile(p)}`);
    let path = flags.json as string | undefined;
    if (!path) path = new RunDir((flags.name as string) ?? defaultRunName('profile'), flags.out as string).path('profile.json');
    mkdirSync(dirname(path), { recursive: true });
    const json = { command: 'profile', what, model: model.config.name, activation: flags.activation, batchSize: bs, adapter: adapterName(device), timestampQuantization: flags.quantized as boolean, flags, ...p };
    writeFileSync(path, `${JSON.stringify(json, null, 2)}\n`);
    console.log(`\nJSON: ${path}`);
    return 0;
  } finally {
    device.destroy();
  }
}
