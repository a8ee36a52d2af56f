// Square attack throughput (queries/s, wall clock including the per-iteration readback of
// the logits): L-inf Square (eps 0.02, p_init 0.8) on the first 100 MNIST test images (50
// with --quick), 50 iterations, against the small MNIST CNN (nn/models/small_cnn.ts,
// untrained, seed 1) in eval mode. The labels are the model's own clean predictions, so
// every image is attacked. A query is one example's forward pass; examples leave the
// batch once fooled. NOTE: the small eps keeps nearly every image in the batch for all
// iterations, as in AutoAttack, where Square runs last on the points that resisted the
// gradient attacks (at eps 0.3 the untrained model falls in ~20 queries and the case
// would time tiny batches).
// items/s = queries/s: the count comes from a first run in setup, and every timed run
// (a fresh attack with the same seed, hence the same searches) must reproduce it.
import type { Device } from '../engine/device.ts';
import { Tensor, argmax, noGrad, scope } from '../engine/index.ts';
import { Square } from '../adversarial/attacks/index.ts';
import { loadMnist } from '../nn/data/mnist.ts';
import { SmallCnn } from '../nn/models/small_cnn.ts';
import type { BenchCase } from './harness.ts';
import { KINKLESS } from './peers.bench.ts';

export const SQUARE_BENCH = { eps: 0.02, iterations: 50, images: 100, quickImages: 50, seed: 1 } as const;

export function cases(device: Device, opts: { quick: boolean }): BenchCase[] {
  const n = opts.quick ? SQUARE_BENCH.quickImages : SQUARE_BENCH.images;
  let model: SmallCnn | null = null;
  let x: Tensor | null = null;
  let y: Tensor | null = null;
  let expected = 0;
  const attack = () => new Square({ eps: SQUARE_BENCH.eps, queries: SQUARE_BENCH.iterations, seed: SQUARE_BENCH.seed });
  const runOnce = async (): Promise<number> => {
    const r = await attack().attack(model!, x!, y!);
    r.xAdv.dispose();
    return r.queries.reduce((a, b) => a + b, 0);
  };
  const c: BenchCase = {
    group: `e2e Square-${SQUARE_BENCH.iterations} L-inf attack ${n} images (queries/s)`,
    name: KINKLESS,
    impl: 'kinkless',
    method: 'wall',
    runs: 3,
    warmup: 0,
    async setup() {
      const d = loadMnist().test;
      model = new SmallCnn(device, { seed: 1 });
      model.eval();
      x = Tensor.from(device, d.images.subarray(0, n * 784), [n, 1, 28, 28]);
      const pred = noGrad(() => scope(() => argmax(model!.forward(x!), -1)));
      y = Tensor.from(device, Int32Array.from(await pred.data()), [n], 'i32');
      pred.dispose();
      expected = await runOnce(); // also compiles the pipelines
      c.items = expected;
    },
    async run() {
      const got = await runOnce();
      if (got !== expected) throw new Error(`square bench: a run made ${got} queries, the first ${expected}: the searches are not reproducible`);
    },
    teardown() {
      x?.dispose();
      y?.dispose();
      model?.dispose();
      model = x = y = null;
    },
  };
  return [c];
}
