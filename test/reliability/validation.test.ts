// Input validation across the public entry points: tensors and ops, layers, optimizers,
// attacks, training loops, data readers, checkpoints, CLI flags and the device. Each bad
// input must fail with a kinkless error that names the argument, the value and what was
// expected; no raw Dawn validation message may reach the user. With
// KINKLESS_PRINT_TABLE=1 the test prints the table of docs/reliability.md from the real
// messages.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import * as E from '../../engine/index.ts';
import { conv2d } from '../../engine/ops/conv2d.ts';
import { checkLabels, softmaxCrossEntropy } from '../../engine/ops/loss.ts';
import { copyVec4Kernel } from '../../kernels/copy.ts';
import { Conv2d, Flatten, Linear, Sequential } from '../../nn/layers.ts';
import { Activation } from '../../nn/activation.ts';
import { SmallCnn } from '../../nn/models/small_cnn.ts';
import { Adam, SGD } from '../../nn/optim.ts';
import { constantLr } from '../../nn/schedule.ts';
import { saveModel, loadModel } from '../../nn/model_checkpoint.ts';
import { loadCheckpointFile } from '../../nn/checkpoint.ts';
import { BatchIterator, augmentBatch, gatherBatch, type ImageSet } from '../../nn/data/loader.ts';
import { parseIdx } from '../../nn/data/idx.ts';
import { Fgsm, Pgd } from '../../adversarial/attacks/index.ts';
import { StandardTraining, train } from '../../adversarial/trainer.ts';
import { FastAt } from '../../adversarial/train/fast_at.ts';
import { PgdAt } from '../../adversarial/train/pgd_at.ts';
import { nanGuard } from '../../adversarial/guard_nan.ts';
import { checkpointHooks, resumeTraining } from '../../adversarial/resume.ts';
import { parseFlags } from '../../cli/args.ts';
import { TRAIN_FLAGS } from '../../cli/train_run.ts';

const dir = mkdtempSync(join(tmpdir(), 'kinkless-rel-val-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Case {
  area: string;
  input: string;
  run: () => unknown;
  /** The message must match this (argument, value, expectation). */
  want: RegExp;
}

/** Raw Dawn / WebGPU wording that must never surface. */
const RAW = /\[(Buffer|Texture|BindGroup|ComputePipeline|CommandEncoder)|GPUValidationError|Validation error|is invalid|Dawn/;

async function messageOf(fn: () => unknown): Promise<string | null> {
  try {
    await fn();
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}

describe('validation of public entry points', () => {
  it('every bad input gives a clear error naming the argument, the value and what was expected', async () => {
    const d = await testDevice();
    const d2 = await E.createDevice();
    const x23 = E.keep(E.Tensor.from(d, [1, 2, 3, 4, 5, 6], [2, 3]));
    const other = E.keep(E.Tensor.from(d2, [1, 2, 3, 4, 5, 6], [2, 3]));
    const gone = E.Tensor.from(d, [1, 2]);
    gone.dispose();
    const img = E.keep(E.Tensor.from(d, new Float32Array(2 * 64).fill(0.5), [2, 1, 8, 8]));
    const lab = E.keep(E.Tensor.from(d, [1, 2], [2], 'i32'));
    const tiny = new Sequential(new Flatten(), new Linear(d, 64, 10, { seed: 1 }));
    const opt = new SGD(tiny.parameters(), { lr: 0.1 });
    const ctx = { device: d, model: tiny, opt, schedule: constantLr(0.1) };
    const data: ImageSet = { images: new Float32Array(4 * 64), labels: Int32Array.from([0, 1, 2, 3]), n: 4, shape: [1, 8, 8] };
    const empty: ImageSet = { images: new Float32Array(0), labels: new Int32Array(0), n: 0, shape: [1, 8, 8] };
    const ckpt = join(dir, 'tiny.safetensors');
    await saveModel(ckpt, tiny);
    const truncated = join(dir, 'truncated.safetensors');
    writeFileSync(truncated, new Uint8Array([16, 0, 0, 0, 0, 0, 0, 0, 123, 34]));
    const other28 = new Sequential(new Flatten(), new Linear(d, 64, 12, { seed: 1 }));
    const pgd = (o: Record<string, unknown>) => () => new Pgd({ eps: 0.1, alpha: 0.01, steps: 3, ...o } as never);
    const flags = (...argv: string[]) => () => parseFlags('train', argv, TRAIN_FLAGS);

    const cases: Case[] = [
      // tensors and ops
      { area: 'tensor', input: 'Tensor.from(6 values, shape [4])', run: () => E.Tensor.from(d, [1, 2, 3, 4, 5, 6], [4]), want: /data has 6 elements but shape \[4\] needs 4/ },
      { area: 'tensor', input: 'shape [2, -1]', run: () => E.Tensor.empty(d, [2, -1]), want: /shape must be an array of non-negative integers, got \[2, -1\]/ },
      { area: 'tensor', input: 'i32 data 1.5', run: () => E.Tensor.from(d, [1.5], [1], 'i32'), want: /int32 tensor data must be integers, got 1.5 at index 0/ },
      { area: 'ops', input: 'add([2, 3], [4])', run: () => E.add(x23, E.Tensor.from(d, [1, 2, 3, 4])), want: /\[2, 3\].*\[4\]/ },
      { area: 'ops', input: 'add(tensor on device #1, tensor on device #2)', run: () => E.add(x23, other), want: /different devices \(#\d+ and #\d+\)/ },
      { area: 'ops', input: 'matmul([2, 3], [2, 3])', run: () => E.matmul(x23, x23), want: /matmul.*\[2, 3\]/ },
      { area: 'ops', input: 'matmul of an i32 tensor', run: () => E.matmul(lab.view([1, 2]), x23), want: /matmul.*f32.*i32/ },
      { area: 'ops', input: 'conv2d weight of shape [3, 3]', run: () => conv2d(img, E.Tensor.from(d, new Float32Array(9), [3, 3])), want: /conv2d: w must have rank 4 .*got shape \[3, 3\]/ },
      { area: 'ops', input: 'conv2d 1-channel x, 2-channel w', run: () => conv2d(img, E.Tensor.from(d, new Float32Array(36), [2, 2, 3, 3])), want: /conv2d.*channel/i },
      { area: 'ops', input: 'sum over axis 5 of a rank-2 tensor', run: () => E.sum(x23, 5), want: /sum.*axis.*5/ },
      { area: 'ops', input: 'reshape [2, 3] to [4]', run: () => E.reshape(x23, [4]), want: /reshape.*\[2, 3\].*\[4\]/ },
      { area: 'ops', input: 'a disposed tensor as input', run: () => E.add(gone, gone), want: /already disposed/ },
      { area: 'ops', input: 'item() of a [2, 3] tensor', run: () => x23.item(), want: /item\(\) needs a one-element tensor, got shape \[2, 3\]/ },
      { area: 'autograd', input: 'backward of a [2] output without dy', run: () => E.backward(E.mul(E.keep(Object.assign(E.Tensor.from(d, [1, 2]), { requiresGrad: true })), 2)), want: /backward: output of shape \[2\] is not a scalar; pass dy/ },
      { area: 'autograd', input: 'grad w.r.t. a tensor without requiresGrad', run: () => E.grad(E.sum(x23), [x23]), want: /grad: .* requiresGrad = false/ },
      { area: 'loss', input: 'cross-entropy with f32 labels', run: () => softmaxCrossEntropy(x23, x23), want: /labels must be an i32 tensor \[2\] .*got f32 \[2, 3\]/ },
      { area: 'loss', input: 'cross-entropy with 3 labels for 2 rows', run: () => softmaxCrossEntropy(x23, E.Tensor.from(d, [0, 1, 2], [3], 'i32')), want: /labels must be an i32 tensor \[2\] .*got i32 \[3\]/ },
      { area: 'loss', input: 'mean cross-entropy of an empty batch', run: () => softmaxCrossEntropy(E.Tensor.empty(d, [0, 10]), E.Tensor.empty(d, [0], 'i32')), want: /mean of an empty batch .* is undefined/ },
      { area: 'loss', input: 'label 10 with 10 classes (checkLabels)', run: () => checkLabels(E.Tensor.from(d, [3, 10], [2], 'i32'), 10), want: /label.*10.*\[0, 10\)|10.*out of range/ },
      { area: 'random', input: 'randomUniform lo = hi = 1', run: () => E.randomUniform(d, [3], { seed: 1, lo: 1, hi: 1 }), want: /lo \(1\) must be < hi \(1\)/ },
      { area: 'random', input: 'randomUniform seed -1', run: () => E.randomUniform(d, [3], { seed: -1 }), want: /seed must be an integer in \[0, 2\^53\), got -1/ },
      { area: 'device', input: 'a dispatch of 70000 workgroups', run: () => d.dispatch({ kernel: copyVec4Kernel, buffers: [], workgroups: [70000] }), want: /kernel "copy_vec4": workgroup counts \[70000, 1, 1\] must be integers <= 65535/ },
      { area: 'device', input: 'a 2^40-element tensor', run: () => E.Tensor.empty(d, [2 ** 20, 2 ** 20]), want: /cannot allocate tensor \[1048576, 1048576\]: 4398046511104 bytes exceeds the device's largest storage buffer/ },
      { area: 'device', input: 'createDevice({ adapter: "no-such-gpu" })', run: () => E.createDevice({ adapter: 'no-such-gpu' }), want: /no WebGPU adapter found matching "no-such-gpu"/ },
      { area: 'device', input: 'createDevice({ memoryLimitBytes: -1 })', run: () => E.createDevice({ memoryLimitBytes: -1 }), want: /memoryLimitBytes must be a number of bytes >= 0, got -1/ },
      // layers
      { area: 'layers', input: 'Linear(0 -> 3)', run: () => new Linear(d, 0, 3), want: /Linear: inFeatures must be a positive integer, got 0/ },
      { area: 'layers', input: 'Linear(64 -> 10) on [2, 1, 8, 8]', run: () => new Linear(d, 64, 10).forward(img), want: /Linear\(64 -> 10\): input must be \[N, 64\], got \[2, 1, 8, 8\]/ },
      { area: 'layers', input: 'Conv2d(1 -> 4, kernel 0)', run: () => new Conv2d(d, 1, 4, 0), want: /Conv2d: .*kernel.* got 0/ },
      { area: 'layers', input: 'SmallCnn on [2, 1, 8, 8]', run: () => new SmallCnn(d).forward(img), want: /SmallCnn: input must be \[N, 1, 28, 28\], got \[2, 1, 8, 8\]/ },
      { area: 'layers', input: 'activation "swish"', run: () => new Activation(d, 'swish' as never), want: /unknown activation kind "swish"; valid kinds: relu, softplus/ },
      { area: 'layers', input: 'softplus with 2 parameters', run: () => new Activation(d, { kind: 'psoftplus', params: [1, 2] }), want: /Activation: spec.params for psoftplus must have 1 value\(s\) \[a\], got 2/ },
      { area: 'layers', input: 'pssilu parameter NaN', run: () => new Activation(d, { kind: 'pssilu', params: [NaN, 1] }), want: /Activation: spec.params a of pssilu must be a finite number, got NaN/ },
      // optimizers
      { area: 'optim', input: 'SGD lr NaN', run: () => new SGD(tiny.parameters(), { lr: NaN }), want: /SGD: lr must be a finite number >= 0, got NaN/ },
      { area: 'optim', input: 'SGD with no parameters', run: () => new SGD([], { lr: 0.1 }), want: /SGD: params must be a non-empty array/ },
      { area: 'optim', input: 'Adam betas [1, 0.999]', run: () => new Adam(tiny.parameters(), { lr: 0.1, betas: [1, 0.999] }), want: /Adam: betas\[0\] must be in \[0, 1\), got 1/ },
      { area: 'optim', input: 'step(lr = -1)', run: () => opt.step(-1), want: /step: lr must be a finite number >= 0, got -1/ },
      // attacks
      { area: 'attacks', input: 'PGD eps NaN', run: pgd({ eps: NaN }), want: /PGD: eps must be a finite number >= 0, got NaN/ },
      { area: 'attacks', input: 'PGD eps -0.1', run: pgd({ eps: -0.1 }), want: /PGD: eps must be a finite number >= 0, got -0.1/ },
      { area: 'attacks', input: 'PGD alpha 0', run: pgd({ alpha: 0 }), want: /PGD: alpha must be a finite number > 0, got 0/ },
      { area: 'attacks', input: 'PGD steps 2.5', run: pgd({ steps: 2.5 }), want: /PGD: steps must be an integer >= 0, got 2.5/ },
      { area: 'attacks', input: 'PGD bounds [1, 0]', run: pgd({ bounds: [1, 0] }), want: /PGD: bounds must be finite numbers with lo < hi, got \[1, 0\]/ },
      { area: 'attacks', input: 'PGD norm "l3"', run: pgd({ norm: 'l3' }), want: /PGD: norm must be 'linf' or 'l2', got "l3"/ },
      { area: 'attacks', input: 'FGSM bnMode "test"', run: () => new Fgsm({ eps: 0.1, bnMode: 'test' as never }), want: /bnMode must be 'eval' or 'train', got "test"/ },
      { area: 'attacks', input: 'generate with f32 labels', run: () => new Fgsm({ eps: 0.1 }).generate(tiny, img, E.Tensor.from(d, [1, 2])), want: /y must be an i32 tensor \[2\] of labels, got f32 \[2\]/ },
      { area: 'attacks', input: 'generate with 3 labels for 2 images', run: () => new Fgsm({ eps: 0.1 }).generate(tiny, img, E.Tensor.from(d, [1, 2, 3], [3], 'i32')), want: /y must be an i32 tensor \[2\] of labels, got i32 \[3\]/ },
      { area: 'attacks', input: 'generate with x [128] (no batch axis)', run: () => new Fgsm({ eps: 0.1 }).generate(tiny, img.view([128]), lab), want: /x must be an f32 tensor \[N, \.\.\.\], got f32 \[128\]/ },
      // loops
      { area: 'loops', input: 'FastAt eps Infinity', run: () => new FastAt({ eps: Infinity }), want: /FastAt: eps must be a finite number > 0, got Infinity/ },
      { area: 'loops', input: 'FastAt alpha -0.1', run: () => new FastAt({ eps: 0.1, alpha: -0.1 }), want: /FastAt: alpha must be a finite number > 0, got -0.1/ },
      { area: 'loops', input: 'FastAt co.every 0', run: () => new FastAt({ eps: 0.1, co: { every: 0 } }), want: /FastAt: co.every must be an integer >= 1, got 0/ },
      { area: 'loops', input: 'PgdAt without bnMode', run: () => new PgdAt({ eps: 0.1, alpha: 0.01, steps: 3 } as never), want: /PgdAt: bnMode must be 'eval' .* or 'train' .*, got undefined/ },
      { area: 'loops', input: 'train epochs 0', run: () => train(new StandardTraining(), ctx, data, { epochs: 0, batchSize: 2, seed: 0 }), want: /train: epochs must be a positive integer, got 0/ },
      { area: 'loops', input: 'train batchSize 2.5', run: () => train(new StandardTraining(), ctx, data, { epochs: 1, batchSize: 2.5, seed: 0 }), want: /train: batchSize must be a positive integer, got 2.5/ },
      { area: 'loops', input: 'train seed NaN', run: () => train(new StandardTraining(), ctx, data, { epochs: 1, batchSize: 2, seed: NaN }), want: /train: seed must be an integer, got NaN/ },
      { area: 'loops', input: 'train on an empty dataset', run: () => train(new StandardTraining(), ctx, empty, { epochs: 1, batchSize: 2, seed: 0 }), want: /train: the training set is empty/ },
      { area: 'loops', input: 'resume state of batchSize 4 into batchSize 2', run: () => train(new StandardTraining(), ctx, data, { epochs: 1, batchSize: 2, seed: 0, iteratorState: { seed: 0, epoch: 0, position: 0, n: 4, batchSize: 4, shuffle: true, dropLast: false } }), want: /BatchIterator.restore: state has batchSize = 4, this iterator has 2/ },
      { area: 'loops', input: 'nanGuard every 0', run: () => nanGuard({ model: tiny, every: 0 }), want: /nanGuard: every must be an integer >= 1, got 0/ },
      { area: 'loops', input: 'checkpointHooks everySteps -1', run: () => checkpointHooks({ path: ckpt, everySteps: -1 }, { model: tiny, opt, loop: new StandardTraining() }, data, { batchSize: 2, seed: 0 }), want: /checkpointHooks: everySteps must be an integer >= 0, got -1/ },
      { area: 'loops', input: 'resumeTraining from a model-only checkpoint', run: () => resumeTraining(ckpt, { model: tiny, opt, loop: new StandardTraining() }), want: /holds no training state/ },
      // data
      { area: 'data', input: 'gatherBatch index 9 of 4 samples', run: () => gatherBatch(data.images, data.labels, [0, 9], 64), want: /gatherBatch: idx\[1\] = 9 is out of range; dataset has 4 samples/ },
      { area: 'data', input: 'BatchIterator batchSize 0', run: () => new BatchIterator(4, { batchSize: 0, seed: 0 }), want: /BatchIterator: batchSize = 0; expected an integer >= 1/ },
      { area: 'data', input: 'augmentBatch pad -1', run: () => augmentBatch(new Float32Array(64), [1, 1, 8, 8], { pad: -1, flip: false, seed: 0 }), want: /augmentBatch: pad = -1; expected an integer >= 0/ },
      { area: 'data', input: 'IDX file of 3 garbage bytes', run: () => parseIdx(new Uint8Array([1, 2, 3]), 'labels.idx'), want: /labels.idx/ },
      { area: 'checkpoint', input: 'truncated safetensors file', run: () => loadCheckpointFile(truncated), want: /truncated: header length is 16 bytes but only 2 bytes follow/ },
      { area: 'checkpoint', input: 'checkpoint of Linear(64 -> 10) into Linear(64 -> 12)', run: () => loadModel(ckpt, other28), want: /cannot load .*tiny.safetensors: tensor "1.weight": shape \[10, 64\], expected \[12, 64\]/ },
      { area: 'checkpoint', input: 'missing file', run: () => loadCheckpointFile(join(dir, 'nope.safetensors')), want: /cannot read file: ENOENT/ },
      // CLI
      { area: 'cli', input: '--eps abc', run: flags('--eps', 'abc'), want: /train: option --eps: expected a number, got "abc"/ },
      { area: 'cli', input: '--eps -1', run: flags('--eps', '-1'), want: /train: option --eps: must be >= 0, got -1/ },
      { area: 'cli', input: '--lr NaN', run: flags('--lr', 'NaN'), want: /train: option --lr: expected a number, got "NaN"/ },
      { area: 'cli', input: '--lr Infinity', run: flags('--lr', 'Infinity'), want: /train: option --lr: expected a number, got "Infinity"/ },
      { area: 'cli', input: '--epochs 0', run: flags('--epochs', '0'), want: /train: option --epochs: must be >= 1, got 0/ },
      { area: 'cli', input: '--batch-size 1.5', run: flags('--batch-size', '1.5'), want: /train: option --batch-size: expected an integer, got "1.5"/ },
      { area: 'cli', input: '--loop bogus', run: flags('--loop', 'bogus'), want: /train: option --loop: expected one of standard, pgd, fast, free, yopo, freelb, got "bogus"/ },
      { area: 'cli', input: '--epsilon 0.3 (unknown)', run: flags('--epsilon', '0.3'), want: /train: unknown option "--epsilon". Known options: --loop/ },
      { area: 'cli', input: '--eps (no value)', run: flags('--eps'), want: /train: --eps needs a value/ },
    ];

    const rows: string[] = [];
    const problems: string[] = [];
    for (const c of cases) {
      const msg = await messageOf(c.run);
      if (msg === null) {
        problems.push(`${c.area}: ${c.input}: no error`);
        continue;
      }
      if (!c.want.test(msg)) problems.push(`${c.area}: ${c.input}: message ${JSON.stringify(msg)} does not match ${c.want}`);
      if (RAW.test(msg)) problems.push(`${c.area}: ${c.input}: raw Dawn wording in ${JSON.stringify(msg)}`);
      const first = msg.split('\n')[0]!;
      rows.push(`| ${c.area} | ${c.input.replace(/\|/g, '\\|')} | \`${first.split(dir).join('<tmp>').replace(/\|/g, '\\|').replace(/`/g, "'")}\`${msg.includes('\n') ? ' (+ hints)' : ''} |`);
    }
    if (process.env.KINKLESS_PRINT_TABLE === '1') console.log(['| area | bad input | error |', '|---|---|---|', ...rows].join('\n'));
    expect(problems).toEqual([]);
    expect(rows.length).toBe(cases.length);
    d2.destroy();
    tiny.dispose();
    opt.dispose();
  });

  it('no raw Dawn validation error on an empty batch: attacks and the loss of a 0-example batch', async () => {
    const d = await testDevice();
    const model = new Sequential(new Flatten(), new Linear(d, 64, 10, { seed: 1 }));
    const x = E.Tensor.empty(d, [0, 1, 8, 8]);
    const y = E.Tensor.empty(d, [0], 'i32');
    const msg = await messageOf(async () => {
      const adv = new Pgd({ eps: 0.1, alpha: 0.05, steps: 2 }).generate(model, x, y);
      const l = softmaxCrossEntropy(model.forward(adv), y, { reduction: 'sum' });
      return [adv.shape, await l.item()];
    });
    // Either it works (empty adversarial batch, loss 0) or it fails with a kinkless error.
    if (process.env.KINKLESS_PRINT_TABLE === '1') console.log(`empty batch through PGD + loss: ${msg ?? 'works (no error)'}`);
    if (msg !== null) expect(msg).toMatch(/^kinkless: /);
    if (msg !== null) expect(msg).not.toMatch(RAW);
    await d.sync();
    model.dispose();
  });
});
