// `kinkless train`: train one model (standard or adversarial loop) and write runs/<name>/.
import { createDevice } from '../engine/index.ts';
import { existsSync } from 'node:fs';
import { helpText, parseFlags, UsageError, type FlagSpec } from './args.ts';
import { loadModel } from '../nn/model_checkpoint.ts';
import { DATA_FLAGS, MODEL_FLAGS, buildModel, loadData } from './setup.ts';
import { TRAIN_FLAGS, trainRun, Interrupt } from './train_run.ts';
import { RUN_FLAGS, RunDir, defaultRunName } from './rundir.ts';
import { Progress } from './progress.ts';
import { lineChart } from './svg.ts';

const FLAGS: Record<string, FlagSpec> = {
  ...DATA_FLAGS,
  ...MODEL_FLAGS,
  ...TRAIN_FLAGS,
  from: { type: 'string', help: 'start from the weights of this checkpoint (fine-tuning; the optimizer starts fresh)' },
  ...RUN_FLAGS,
};

export const TRAIN_HELP = helpText(
  'kinkless train [options]',
  'Train one model on MNIST (embedded) or CIFAR-10 with a standard or adversarial loop.\nWrites runs/<name>/: config.json, metrics.csv, results.json, report.md, accuracy.svg and a\ncheckpoint (<model>.safetensors, saved after every epoch; Ctrl-C keeps the last one).',
  FLAGS,
  [
    'npx kinkless train --epochs 2                                  # standard training, small CNN, ReLU',
    'npx kinkless train --loop fast --eps 0.1 --activation silu      # fast FGSM-AT with SiLU',
    'npx kinkless train --loop pgd --eps 0.3 --steps 10 --model madry_mnist',
    'npx kinkless train --activation relu --surrogate softplus:10 --loop fast --no-attacker-smooth',
    'npx kinkless train --config my-run.json',
  ],
);

const pct = (v: number | undefined): string => (v !== undefined ? `${(100 * v).toFixed(2)}%` : '-');

export async function cmdTrain(argv: string[]): Promise<number> {
  const { flags, help } = parseFlags('kinkless train', argv, FLAGS);
  if (help) {
    console.log(TRAIN_HELP);
    return 0;
  }
  const data = loadData(flags);
  const run = new RunDir((flags.name as string) ?? defaultRunName('train'), flags.out as string);
  run.writeJson('config.json', { command: 'train', ...flags });
  const device = await createDevice();
  const interrupt = new Interrupt().install();
  try {
    const model = buildModel(device, flags, data.train);
    if (flags.from) {
      if (!existsSync(flags.from as string)) throw new UsageError(`--from: file "${flags.from}" does not exist`);
      loadModel(flags.from as string, model);
    }
    const bs = flags.batchSize as number;
    const valN = flags.robustVal as number;
    const trainN = valN > 0 && flags.robustValFrom !== 'test' ? data.train.n - valN : data.train.n;
    const stepsPerEpoch = Math.ceil(trainN / bs);
    let prog: Progress | null = null;
    console.log(`kinkless train: ${model.config.name} (${model.parameterCount()} parameters), ${flags.activation}, loop ${flags.loop}, ${trainN} training images${valN > 0 ? `, ${valN} held out (${flags.robustValFrom}) for the robust-overfitting guard` : ''} -> ${run.dir}`);
    const res = await trainRun(device, model, data, flags, {
      run,
      interrupt,
      hooks: {
        onStep: (i) => {
          if (!prog || i.stepInEpoch <= 1) prog = new Progress(`epoch ${i.epoch + 1}`, stepsPerEpoch);
          prog.update(i.stepInEpoch, `loss ${i.loss.toFixed(4)} lr ${i.lr.toExponential(2)}`);
        },
        onEpoch: (s) => {
          const val = s.valRobust !== undefined ? ` held-out clean ${(100 * s.valClean!).toFixed(2)}% PGD-10 ${(100 * s.valRobust).toFixed(2)}% (best epoch ${s.bestEpoch! + 1})` : '';
          prog?.done(`train loss ${s.trainLoss.toFixed(4)} acc ${(100 * s.trainAcc).toFixed(2)}%${s.testAcc !== undefined ? ` test acc ${(100 * s.testAcc).toFixed(2)}%` : ''}${val}`);
          prog = null;
        },
      },
    });
    const results = { status: res.interrupted ? 'interrupted' : 'completed', testAcc: res.testAcc, seconds: res.seconds, steps: res.steps, epochs: res.epochs, catastrophicOverfitting: res.coDetected, coDetail: res.coDetail, restoredStep: res.restoredStep, robustVal: res.robustVal };
    run.writeJson('results.json', results);
    run.writeText(
      'accuracy.svg',
      lineChart({
        title: 'Accuracy per epoch',
        xLabel: 'epoch',
        yLabel: 'accuracy',
        series: [
          { name: 'train', points: res.epochs.map((e) => [e.epoch + 1, e.trainAcc]) },
          { name: 'test (clean)', points: res.epochs.filter((e) => e.testAcc !== undefined).map((e) => [e.epoch + 1, e.testAcc!]) },
          ...(res.robustVal ? [{ name: 'held-out PGD-10', points: res.robustVal.history.map((h): [number, number] => [h.epoch + 1, h.robustAcc]) }] : []),
        ],
      }),
    );
    run.writeText(
      'report.md',
      `# kinkless train: ${run.dir}\n\n- model: ${model.config.name}, activation ${JSON.stringify(model.config.activation)}\n- loop: ${flags.loop}${flags.loop !== 'standard' ? `, eps ${flags.eps}` : ''}\n- status: ${results.status}\n- test accuracy (clean${res.interrupted ? ', last completed epoch' : ''}): ${(100 * res.testAcc).toFixed(2)}%\n- wall time: ${res.seconds.toFixed(1)} s, ${res.steps} steps\n${res.coDetected ? '- WARNING: catastrophic overfitting detected (PGD accuracy collapsed while FGSM accuracy stayed high)\n' : ''}${flags.stopAfter !== undefined && res.epochs.length < (flags.epochs as number) ? `- stopped after ${res.epochs.length} of the schedule's ${flags.epochs} epochs (--stop-after)\n` : ''}${res.robustVal ? `- robust-overfitting guard: ${res.robustVal.n} held-out images (${res.robustVal.from}), PGD-10 at eps ${flags.eps}; best epoch ${res.robustVal.best ? res.robustVal.best.epoch + 1 : '-'} (saved as ${model.config.name}_best.safetensors)\n` : ''}\n| epoch | train loss | train acc | test acc | held-out clean | held-out PGD-10 | seconds |\n|---|---|---|---|---|---|---|\n${res.epochs.map((e) => `| ${e.epoch + 1} | ${e.trainLoss.toFixed(4)} | ${(100 * e.trainAcc).toFixed(2)}% | ${pct(e.testAcc)} | ${pct(e.valClean)} | ${pct(e.valRobust)} | ${e.seconds.toFixed(1)} |`).join('\n')}\n\n![accuracy](accuracy.svg)\n`,
    );
    if (res.interrupted) {
      console.error(`kinkless train: interrupted; the last completed epoch's checkpoint is in ${run.dir}`);
      return 130;
    }
    console.log(`test accuracy ${(100 * res.testAcc).toFixed(2)}% in ${res.seconds.toFixed(1)} s; results in ${run.dir}`);
    return 0;
  } finally {
    interrupt.remove();
    device.destroy();
  }
}
