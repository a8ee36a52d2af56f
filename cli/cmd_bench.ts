// `kinkless bench`: the benchmark suite (bench/suite.ts) from the command line: kernel
// cases, TF.js on the same adapter, the optional PyTorch CPU peer, end-to-end training
// steps and attack throughput; JSON lines, tables, results file, report and regression
// check. `npm run bench -- <flags>` runs this command (package.json), so takes the same flags.
import { helpText, parseFlags, UsageError, type FlagSpec } from './args.ts';
import { DEFAULT_RESULTS_DIR, runSuite } from '../bench/suite.ts';

const FLAGS: Record<string, FlagSpec> = {
  filter: { type: 'string', help: 'keep cases whose "group/name" contains this substring (case-insensitive; "a|b" keeps either)' },
  quick: { type: 'bool', help: 'smaller sizes and fewer runs (about 2-3 minutes here)', default: false },
  wall: { type: 'bool', help: 'time kernel cases by wall clock instead of GPU timestamps', default: false },
  report: { type: 'bool', help: 'also write <results>/<date>-<adapter>.md with SVG charts', default: false },
  compare: { type: 'string', help: 'flag cases slower than in this earlier result JSON by more than the noise (exit 1 if any)' },
  out: { type: 'string', help: 'results folder', default: DEFAULT_RESULTS_DIR },
  tfjs: { type: 'bool', help: 'run the TF.js webgpu peer (--no-tfjs to skip)', default: true },
  torch: { type: 'bool', help: 'run the PyTorch CPU peer when /usr/bin/python3 has torch (--no-torch to skip)', default: true },
  save: { type: 'bool', help: 'write the result JSON (--no-save to skip)', default: true },
};

export const BENCH_HELP = helpText(
  'kinkless bench [options]',
  'Benchmarks: matmul, conv2d, elementwise and activation kernels (GPU timestamps), the same\nkernels pairwise against TF.js webgpu on the same adapter and PyTorch on the CPU (wall\nclock), and end-to-end images/s of a standard, a fast-AT and a PGD-10-AT training step of\nthe small MNIST CNN plus PGD-20 attack throughput. Each bench file runs in a process of\nits own. Prints one JSON line per case and tables; writes the result JSON (adapter,\nlimits, versions, commit). See bench/README.md.',
  FLAGS,
  ['npx kinkless bench --quick', 'npx kinkless bench --filter peer --report', 'npm run bench -- --compare bench/results/2025-01-01-llvmpipe.json'],
);

export async function cmdBench(argv: string[]): Promise<number> {
  const { flags, positional, help } = parseFlags('bench', argv, FLAGS);
  if (help) {
    console.log(BENCH_HELP);
    return 0;
  }
  if (positional.length) throw new UsageError(`bench: unexpected argument "${positional[0]}"`);
  return runSuite({
    filter: (flags.filter as string | undefined) ?? null,
    quick: flags.quick as boolean,
    wall: flags.wall as boolean,
    report: flags.report as boolean,
    compare: (flags.compare as string | undefined) ?? null,
    out: flags.out as string,
    tfjs: flags.tfjs as boolean,
    torch: flags.torch as boolean,
    save: flags.save as boolean,
  });
}
