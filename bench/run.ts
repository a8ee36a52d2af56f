// `npm run bench [-- flags]`: the benchmark suite (bench/suite.ts) with the flags of
// `kinkless bench` (cli/cmd_bench.ts): --filter <substring>, --quick, --wall, --report,
// --compare <old.json>, --out <dir>, --no-tfjs, --no-torch, --no-save. See bench/README.md.
import { cmdBench } from '../cli/cmd_bench.ts';
import { UsageError } from '../cli/args.ts';

try {
  process.exitCode = await cmdBench(process.argv.slice(2));
} catch (e) {
  console.error(e instanceof UsageError ? `${e.message}\n(see --help)` : (e as Error).stack ?? String(e));
  process.exitCode = e instanceof UsageError ? 2 : 1;
}
