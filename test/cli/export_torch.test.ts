// `kinkless export --torch`: models trained a few steps here (so weights, batch-norm
// statistics and learnable activation parameters are away from their init) are exported,
// loaded by PyTorch from the generated model.py alone, and must give our logits within
// 1e-5 relative (max |ours - torch| / max |ours|). Skipped where no python3 has torch
// (KINKLESS_TORCH_PYTHON, default /usr/bin/python3, as the bench peer).
import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testDevice } from '../helpers/device.ts';
import * as E from '../../engine/index.ts';
import { SmallCnn } from '../../nn/models/small_cnn.ts';
import { WideResNet } from '../../nn/models/resnet.ts';
import { Adam } from '../../nn/optim.ts';
import type { Model } from '../../nn/models/common.ts';
import type { ActivationSpec } from '../../nn/activation.ts';
import { saveModel } from '../../nn/model_checkpoint.ts';
import { cmdExport } from '../../cli/cmd_export.ts';
import { torchAvailable, torchPython } from '../../bench/peers/torch.ts';

const TORCH = torchAvailable();

const DRIVER = String.raw`
import importlib.util, json, sys
import torch
out = []
for case in json.load(open(sys.argv[1])):
    spec = importlib.util.spec_from_file_location("exported_" + str(len(out)), case["dir"] + "/model.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    net = mod.load()
    x = torch.frombuffer(bytearray(open(case["input"], "rb").read()), dtype=torch.float32).reshape(case["shape"])
    with torch.no_grad():
        y = net(x)
    acts = [[float(v) for v in (m.effective() if torch.is_tensor(m.effective()) else torch.tensor(m.effective()))] for m in net.modules() if isinstance(m, mod.Activation)]
    out.append({"logits": y.flatten().tolist(), "acts": acts})
print(json.dumps(out))
`;

function inputs(n: number, shape: number[], seed: number): Float32Array {
  const size = n * shape.reduce((a, b) => a * b, 1);
  return Float32Array.from({ length: size }, (_, i) => 0.5 + 0.5 * Math.sin(i * 0.731 + seed));
}

describe.skipIf(!TORCH)(`kinkless export --torch (PyTorch ${TORCH ?? 'absent'})`, () => {
  it('PyTorch reproduces our logits for relu, silu, pssilu, smooth_relu and a batch-norm WideResNet', async () => {
    const d = await testDevice();
    const dir = mkdtempSync(join(tmpdir(), 'kinkless-export-'));
    const cases: { label: string; make: () => Model; shape: number[] }[] = [
      { label: 'relu', make: () => new SmallCnn(d, { activation: 'relu', seed: 1 }), shape: [1, 28, 28] },
      { label: 'silu', make: () => new SmallCnn(d, { activation: 'silu', seed: 2 }), shape: [1, 28, 28] },
      { label: 'pssilu', make: () => new SmallCnn(d, { activation: { kind: 'pssilu', shared: true } as ActivationSpec, seed: 3 }), shape: [1, 28, 28] },
      { label: 'smooth_relu', make: () => new SmallCnn(d, { activation: { kind: 'smooth_relu', learnable: true } as ActivationSpec, seed: 4 }), shape: [1, 28, 28] },
      { label: 'wrn_10_1 gelu', make: () => new WideResNet(d, 10, 1, { activation: 'gelu', seed: 5, normalize: { mean: [0.49, 0.48, 0.45], std: [0.25, 0.24, 0.26] } }), shape: [3, 32, 32] },
    ];
    const n = 6;
    const jobs: { dir: string; input: string; shape: number[] }[] = [];
    const ours: Float32Array[] = [];
    const ourActs: number[][][] = [];
    for (const [i, c] of cases.entries()) {
      const m = c.make();
      // a few Adam steps with a large rate: weights, BN statistics and activation parameters move
      const opt = new Adam(m.parameters(), { lr: 0.01 });
      const x = E.Tensor.from(d, inputs(8, c.shape, i), [8, ...c.shape]);
      const y = E.Tensor.from(d, new Int32Array([0, 1, 2, 3, 4, 5, 6, 7]), [8], 'i32');
      for (let s = 0; s < 3; s++) {
        opt.zeroGrad();
        E.backward(E.softmaxCrossEntropy(m.forward(x), y));
        opt.step();
      }
      const ckpt = join(dir, `m${i}.safetensors`);
      await saveModel(ckpt, m, { config: m.config }, { opt, slotsPerParam: 2 });
      const out = join(dir, `torch${i}`);
      expect(await cmdExport([ckpt, '--torch', out])).toBe(0);
      m.eval();
      const xin = inputs(n, c.shape, 100 + i);
      ours.push(await m.forward(E.Tensor.from(d, xin, [n, ...c.shape])).f32());
      const arch = JSON.parse((await import('../../nn/checkpoint.ts')).loadCheckpointFile(ckpt).metadata.architecture!) as { activations: { params: number[] }[] };
      ourActs.push(arch.activations.map((a) => a.params));
      writeFileSync(join(dir, `x${i}.bin`), new Uint8Array(xin.buffer));
      jobs.push({ dir: out, input: join(dir, `x${i}.bin`), shape: [n, ...c.shape] });
      m.dispose();
    }
    writeFileSync(join(dir, 'cases.json'), JSON.stringify(jobs));
    writeFileSync(join(dir, 'driver.py'), DRIVER);
    const r = spawnSync(torchPython(), [join(dir, 'driver.py'), join(dir, 'cases.json')], { encoding: 'utf8', timeout: 300_000 });
    expect(r.status, r.stderr).toBe(0);
    const got = JSON.parse(r.stdout) as { logits: number[]; acts: number[][] }[];
    const report: string[] = [];
    cases.forEach((c, i) => {
      const a = ours[i]!;
      const b = got[i]!.logits;
      expect(b.length).toBe(a.length);
      let diff = 0;
      let scale = 0;
      for (let k = 0; k < a.length; k++) {
        diff = Math.max(diff, Math.abs(a[k]! - b[k]!));
        scale = Math.max(scale, Math.abs(a[k]!));
      }
      report.push(`${c.label}: max |ours - torch| ${diff.toExponential(2)}, max |logit| ${scale.toFixed(3)}, relative ${(diff / scale).toExponential(2)}`);
      expect(diff / scale, c.label).toBeLessThanOrEqual(1e-5);
      // PyTorch's effective activation parameters are the ones recorded in the checkpoint.
      got[i]!.acts.forEach((p, j) => p.forEach((v, k) => expect(Math.abs(v - ourActs[i]![j]![k]!)).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(v)))));
    });
    // The learnable parameters really moved away from their init (a = 1 for PSSiLU, 400 for SmoothReLU).
    expect(Math.abs(ourActs[2]![0]![0]! - 1)).toBeGreaterThan(1e-3);
    expect(Math.abs(ourActs[3]![0]![0]! - 400)).toBeGreaterThan(1e-3);
    console.log(`export --torch logits agreement (torch ${TORCH}):\n  ${report.join('\n  ')}`);
    // The generated file is self-contained: no kinkless import.
    expect(readFileSync(join(jobs[2]!.dir, 'model.py'), 'utf8')).not.toMatch(/kinkless\b.*import|import .*kinkless/);
  });
});

describe('kinkless export', () => {
  it('the CLI command is registered and reports bad input clearly', () => {
    const bin = join(process.cwd(), 'bin', 'kinkless.mjs');
    const h = spawnSync(process.execPath, [bin, 'export', '--help'], { encoding: 'utf8', timeout: 60_000 });
    expect(h.status).toBe(0);
    expect(h.stdout).toMatch(/from model import load/);
    const missing = spawnSync(process.execPath, [bin, 'export', '/nonexistent.safetensors', '--torch', tmpdir()], { encoding: 'utf8', timeout: 60_000 });
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/checkpoint "\/nonexistent.safetensors" does not exist/);
  });
});
