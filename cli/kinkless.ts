// The kinkless command line: dispatches the subcommands doctor, train, attack, eval,
// study, reproduce and bench (each in its cli/cmd_*.ts or doctor.ts) and maps usage
// errors to exit code 2.
import { doctor } from './doctor.ts';
import { cmdTrain } from './cmd_train.ts';
import { cmdReproduce } from './cmd_reproduce.ts';
import { cmdEval } from './cmd_eval.ts';
import { cmdStudy } from './cmd_study.ts';
import { cmdBench } from './cmd_bench.ts';
import { cmdProfile } from './cmd_profile.ts';
import { cmdMerge } from './cmd_merge.ts';
import { cmdExport } from './cmd_export.ts';
import { UsageError } from './args.ts';

const USAGE = `kinkless <command> [options]

Commands:
  doctor     print the WebGPU adapter, its limits and one kernel round trip
  train      train a model (standard or adversarial loop) on MNIST / CIFAR-10
  attack     run attacks on a model (checkpoint) and report robust accuracy
  eval       clean and robust accuracy plus gradient-masking sanity checks
  study      gradient-quality studies: 'study kink' (pre-activations near ReLU's kink, gradient
             stability, first-order fidelity, PGD success against steps)
  profile    per-kernel breakdown of one training step or attack (GPU timestamps)
  reproduce  reproduce an experiment: 'reproduce sat' (activation comparison + ablation;
             --shard i/n runs one slice of its jobs)
  merge      build one 'reproduce sat' report from the run directories of its shards
  bench      benchmark suite: kernels and training steps against TF.js, a copy roofline, PyTorch
  export     export a checkpoint for PyTorch: 'export <checkpoint> --torch <dir>'

Options:
  --help     show help for a command

Examples:
  npx kinkless doctor
  npx kinkless doctor --adapter llvmpipe`;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    console.log(USAGE);
    return cmd ? 0 : 2;
  }
  if (cmd === 'doctor') {
    const opts: { adapter?: string; backend?: 'vulkan' } = {};
    for (let i = 0; i < rest.length; i++) {
      const a = rest[i]!;
      if (a === '--help' || a === '-h') {
        console.log('kinkless doctor [--adapter NAME] [--backend vulkan|metal|d3d12|opengles]\n\nPrints the adapter, its limits and one kernel round trip.\n\nExample:\n  npx kinkless doctor --adapter llvmpipe');
        return 0;
      } else if (a === '--adapter') opts.adapter = rest[++i];
      else if (a === '--backend') opts.backend = rest[++i] as 'vulkan';
      else {
        console.error(`kinkless doctor: unknown option "${a}" (try --help)`);
        return 2;
      }
    }
    return doctor(opts);
  }
  if (cmd === 'train') return cmdTrain(rest);
  if (cmd === 'reproduce') return cmdReproduce(rest);
  if (cmd === 'eval' || cmd === 'attack') return cmdEval(rest, cmd);
  if (cmd === 'study') return cmdStudy(rest);
  if (cmd === 'bench') return cmdBench(rest);
  if (cmd === 'profile') return cmdProfile(rest);
  if (cmd === 'merge') return cmdMerge(rest);
  if (cmd === 'export') return cmdExport(rest);
  console.error(`kinkless: unknown command "${cmd}"\n\n${USAGE}`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: Error) => {
    console.error(err instanceof UsageError ? `${err.message}\n(see --help)` : err.message);
    process.exitCode = err instanceof UsageError ? 2 : 1;
  },
);
