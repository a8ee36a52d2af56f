// `kinkless export <checkpoint> --torch <dir>`: writes <dir>/model.py (a self-contained
// PyTorch definition of the checkpoint's architecture and activations, cli/torch_export.ts)
// and <dir>/model.safetensors (the model's tensors, without optimizer state). Format-1
// checkpoints (no recorded architecture) are rebuilt through their config on the GPU first.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createDevice } from '../engine/index.ts';
import { encodeSafetensors, loadCheckpointFile, type NamedArray } from '../nn/checkpoint.ts';
import { checkpointInfo, describeModel, modelFromCheckpoint, type Architecture } from '../nn/model_checkpoint.ts';
import { helpText, parseFlags, UsageError, type FlagSpec } from './args.ts';
import { torchModule } from './torch_export.ts';

const FLAGS: Record<string, FlagSpec> = {
  torch: { type: 'string', help: 'directory to write model.py and model.safetensors into (created if missing)' },
};

export const EXPORT_HELP = helpText(
  'kinkless export <checkpoint> --torch <dir>',
  'Export a model checkpoint for PyTorch: <dir>/model.py defines the architecture and every\nactivation with its parameters (no kinkless needed), <dir>/model.safetensors holds the\nweights (optimizer state dropped). In Python:\n  import sys; sys.path.insert(0, "<dir>")\n  from model import load\n  net = load()   # eval mode; net(x) gives the logits',
  FLAGS,
  ['npx kinkless export runs/my-run/small_cnn.safetensors --torch exported/'],
);

export async function cmdExport(argv: string[]): Promise<number> {
  const { flags, positional, help } = parseFlags('kinkless export', argv, FLAGS);
  if (help) {
    console.log(EXPORT_HELP);
    return 0;
  }
  if (positional.length !== 1) throw new UsageError(`kinkless export: expected one checkpoint path, got ${positional.length ? `"${positional.join(' ')}"` : 'nothing'}`);
  const ckpt = positional[0]!;
  if (!existsSync(ckpt)) throw new UsageError(`kinkless export: checkpoint "${ckpt}" does not exist`);
  const out = flags.torch as string | undefined;
  if (!out) throw new UsageError('kinkless export: --torch <dir> is required (the only export target)');
  const { tensors, metadata } = loadCheckpointFile(ckpt);
  const info = checkpointInfo(metadata, ckpt);
  let arch: Architecture | null = info.architecture;
  if (!arch) {
    const device = await createDevice();
    try {
      const { model } = await modelFromCheckpoint(device, ckpt);
      arch = await describeModel(model);
    } finally {
      device.destroy();
    }
  }
  const model: Record<string, NamedArray> = {};
  for (const [k, v] of Object.entries(tensors)) if (!k.startsWith('__optim__.')) model[k] = v;
  const sharedName = arch.activations.find((a) => a.learnable && a.shared)?.tensor;
  const shared = sharedName ? { name: sharedName, length: model[sharedName]?.shape[0] ?? 0 } : null;
  const py = torchModule(arch, shared, ckpt);
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'model.py'), py);
  writeFileSync(join(out, 'model.safetensors'), encodeSafetensors(model, { format: 'kinkless-torch-export-1', source: ckpt, model: arch.model }));
  console.log(`kinkless export: ${arch.model} (${Object.keys(model).length} tensors) -> ${join(out, 'model.py')}, ${join(out, 'model.safetensors')}`);
  return 0;
}
