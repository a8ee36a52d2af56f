// Optional PyTorch CPU peer: when `/usr/bin/python3 -c "import torch"` works (Debian's
// python3-torch; a pyenv python3 earlier on PATH does not see it, hence the absolute
// path, overridable with KINKLESS_TORCH_PYTHON), runs bench/peers/torch_peer.py as a
// separate process after the GPU cases (so the two never share the CPU), parses its JSON
// lines and returns them as bench rows named 'torch cpu 1 thread' / 'torch cpu N threads'
// in the same groups as our rows (peer ... / e2e ...). Without torch the suite runs
// without these rows and says why.
import { execFileSync, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchRow } from '../harness.ts';

export interface TorchResult {
  version: string;
  defaultThreads: number;
  rows: BenchRow[];
  /** Seconds the peer process ran. */
  seconds: number;
}

export function torchPython(): string {
  return process.env.KINKLESS_TORCH_PYTHON || '/usr/bin/python3';
}

/** The torch version when importable, else null. */
export function torchAvailable(python = torchPython()): string | null {
  try {
    return execFileSync(python, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 60_000 }).trim() || null;
  } catch {
    return null;
  }
}

export function torchRowName(threads: number): string {
  return `torch cpu ${threads} thread${threads === 1 ? '' : 's'}`;
}

interface Line {
  torch?: string;
  default_threads?: number;
  group?: string;
  threads?: number;
  median_ms?: number;
  min_ms?: number;
  max_ms?: number;
  runs?: number;
  flops?: number;
  bytes?: number;
  items?: number;
}

/** Parse torch_peer.py's stdout into rows (exported for tests). */
export function parseTorchLines(text: string): { version: string; defaultThreads: number; rows: BenchRow[] } {
  let version = 'unknown';
  let defaultThreads = 1;
  const rows: BenchRow[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line.startsWith('{')) continue;
    let j: Line;
    try {
      j = JSON.parse(line) as Line;
    } catch {
      continue;
    }
    if (j.torch) {
      version = j.torch;
      defaultThreads = j.default_threads ?? 1;
      continue;
    }
    if (!j.group || typeof j.median_ms !== 'number' || typeof j.threads !== 'number') continue;
    const ms = j.median_ms;
    const row: BenchRow = { group: j.group, name: torchRowName(j.threads), median_ms: ms, min_ms: j.min_ms ?? ms, max_ms: j.max_ms ?? ms, runs: j.runs ?? 1, method: 'wall', impl: `torch-${j.threads}t` };
    if (j.flops) row.gflops = j.flops / (ms * 1e6);
    if (j.bytes) row.gbps = j.bytes / (ms * 1e6);
    if (j.items) row.items_per_s = j.items / (ms / 1e3);
    rows.push(row);
  }
  return { version, defaultThreads, rows };
}

/** Run the PyTorch peer; rejects with the reason when it cannot run. */
export async function runTorchPeer(opts: { quick: boolean; filter?: string | null; mnistDir?: string; threads?: number[]; onLine?(line: string): void }): Promise<TorchResult> {
  const python = torchPython();
  const script = join(dirname(fileURLToPath(import.meta.url)), 'torch_peer.py');
  const args = [script];
  if (opts.quick) args.push('--quick');
  if (opts.filter) args.push('--filter', opts.filter);
  if (opts.mnistDir) args.push('--mnist-dir', opts.mnistDir);
  if (opts.threads?.length) args.push('--threads', opts.threads.join(','));
  const t0 = performance.now();
  const out = await new Promise<string>((resolve, reject) => {
    const p = spawn(python, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let pending = '';
    p.stdout.setEncoding('utf8');
    p.stderr.setEncoding('utf8');
    p.stdout.on('data', (d: string) => {
      stdout += d;
      pending += d;
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const l of lines) if (l.trim()) opts.onLine?.(l);
    });
    p.stderr.on('data', (d: string) => (stderr += d));
    p.on('error', (e) => reject(new Error(`cannot start ${python}: ${e.message}`)));
    p.on('close', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`${python} ${script} exited with ${code}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`))));
  });
  return { ...parseTorchLines(out), seconds: (performance.now() - t0) / 1000 };
}
