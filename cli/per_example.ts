// `kinkless eval --save-per-example`: one CSV row per test example with its label, the
// clean prediction and logits, and whether it survives each attack and the worst case.
import { Tensor, noGrad, scope, type Device } from '../engine/index.ts';
import { saveModes, type Module } from '../nn/module.ts';
import type { ImageSet } from '../nn/data/loader.ts';
import type { RobustReport } from '../adversarial/eval.ts';

/** Clean logits [n, classes] of the first n examples, eval mode (the model's modes are restored). */
export async function cleanLogits(device: Device, model: Module, data: ImageSet, n: number, batchSize: number): Promise<{ logits: Float32Array; classes: number }> {
  const sample = data.shape.reduce((a, b) => a * b, 1);
  const restoreModes = saveModes(model);
  model.eval();
  const parts: Float32Array[] = [];
  let classes = 0;
  try {
    for (let s = 0; s < n; s += batchSize) {
      const e = Math.min(n, s + batchSize);
      const y = noGrad(() => scope(() => model.forward(Tensor.from(device, data.images.subarray(s * sample, e * sample), [e - s, ...data.shape]))));
      classes = y.shape[1]!;
      parts.push(await y.f32());
      y.dispose();
    }
  } finally {
    restoreModes();
  }
  const logits = new Float32Array(n * classes);
  let at = 0;
  for (const p of parts) {
    logits.set(p, at);
    at += p.length;
  }
  return { logits, classes };
}

const csvName = (s: string) => s.replace(/[^A-Za-z0-9_]+/g, '_');

/**
 * CSV: index, label, pred (argmax of the clean logits), correct_clean, correct_<attack>...,
 * robust (correct clean and under every attack), logit_0.. (float32 values, shortest form).
 */
export function perExampleCsv(report: RobustReport, labels: Int32Array, logits: Float32Array, classes: number): string {
  const pe = report.perExample;
  if (!pe) throw new Error('kinkless: perExampleCsv: the report has no per-example vectors (evaluateRobust perExample: true)');
  const names = report.attacks.map((a) => `correct_${csvName(a.name)}`);
  const head = ['index', 'label', 'pred', 'correct_clean', ...names, 'robust', ...Array.from({ length: classes }, (_, k) => `logit_${k}`)];
  const rows = [head.join(',')];
  for (let i = 0; i < report.n; i++) {
    const l = logits.subarray(i * classes, (i + 1) * classes);
    let pred = 0;
    for (let k = 1; k < classes; k++) if (l[k]! > l[pred]!) pred = k;
    rows.push([i, labels[i], pred, pe.clean[i], ...pe.attacks.map((a) => a[i]), pe.worstCase[i], ...Array.from(l, (v) => String(v))].join(','));
  }
  return `${rows.join('\n')}\n`;
}
