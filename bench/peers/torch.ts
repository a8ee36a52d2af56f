// Optional PyTorch CPU peer: when `/usr/bin/python3 -c "import torch"` works (Debian's
// python3-torch; a pyenv python3 earlier on PATH does not see it, hence the absolute
// path, overridable with KINKLESS_TORCH_PYTHON), runs bench/peers/torch_peer.py as a
// separate process after the GPU cases (so the two never share the CPU), parses its JSON
// lines and returns them as bench rows named 'torch cpu 1 thread' / 'torch cpu N threads'
// in the same groups as our rows (peer ... / e2e ...). Without torch the suite runs
// without these rows and says why.
// Fairness: the peer's environment drops OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE (set on
// some machines for other programs; a forced core type / cache size made OpenBLAS about 2x
// slower here), and the report names the BLAS torch really runs on (classifyBlas). Debian's
// python3-torch falls back to the reference BLAS (netlib, many times slower) unless
// libopenblas0-pthread is installed: such a peer is flagged, not compared silently.
import { execFileSync, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchRow } from '../harness.ts';

/** Variables removed from the peer's environment (and only there). */
export const PEER_ENV_UNSET = ['OPENBLAS_CORETYPE', 'OPENBLAS_L2_SIZE'] as const;

/** The peer's environment: ours without PEER_ENV_UNSET; `removed` lists what was set. */
export function torchPeerEnv(env: NodeJS.ProcessEnv = process.env): { env: NodeJS.ProcessEnv; removed: string[] } {
  const out: NodeJS.ProcessEnv = { ...env };
  const removed: string[] = [];
  for (const k of PEER_ENV_UNSET) {
    if (out[k] !== undefined) {
      removed.push(`${k}=${out[k]}`);
      delete out[k];
    }
  }
  return { env: out, removed };
}

export interface BlasInfo {
  backend: 'OpenBLAS' | 'MKL' | 'BLIS' | 'ATLAS' | 'reference BLAS' | 'unknown';
  /** Human-readable: library, version, variant, core. */
  detail: string;
  /** The netlib reference BLAS: unoptimised, the peer's numbers are not representative. */
  reference: boolean;
}

/** What the peer reported about its BLAS (the first JSON line's blas fields). */
export interface BlasReport {
  blas_libs?: string[];
  openblas_config?: string;
  openblas_core?: string;
  torch_blas_info?: string | null;
}

/**
 * Classifies the BLAS a torch process runs on from its mapped libraries (Debian resolves
 * libblas.so.3 through alternatives: .../openblas-pthread/libblas.so.3 is OpenBLAS,
 * .../blas/libblas.so.3 the reference BLAS) and torch's BLAS_INFO (pip wheels link MKL
 * statically, so no library shows up).
 */
export function classifyBlas(r: BlasReport): BlasInfo {
  const libs = r.blas_libs ?? [];
  const has = (re: RegExp) => libs.find((p) => re.test(p));
  const info = r.torch_blas_info ? `torch BLAS_INFO=${r.torch_blas_info}` : '';
  const withInfo = (s: string) => [s, info].filter(Boolean).join('; ');
  const ob = has(/openblas/i);
  if (ob) {
    const variant = /openblas-(pthread|openmp|serial)/i.exec(ob)?.[1];
    const ver = /OpenBLAS (\S+)/.exec(r.openblas_config ?? '')?.[1] ?? /r(\d+\.\d+\.\d+)/.exec(ob)?.[1];
    const core = r.openblas_core ? `core ${r.openblas_core}` : '';
    return { backend: 'OpenBLAS', detail: withInfo([`OpenBLAS${ver ? ` ${ver}` : ''}${variant ? ` (${variant})` : ''}`, core].filter(Boolean).join(', ')), reference: false };
  }
  const mkl = has(/mkl/i);
  if (mkl || /mkl/i.test(r.torch_blas_info ?? '')) return { backend: 'MKL', detail: withInfo(mkl ? `MKL (${mkl})` : 'MKL (linked into torch)'), reference: false };
  const blis = has(/blis/i);
  if (blis) return { backend: 'BLIS', detail: withInfo(`BLIS (${blis})`), reference: false };
  const atlas = has(/atlas/i);
  if (atlas) return { backend: 'ATLAS', detail: withInfo(`ATLAS (${atlas})`), reference: false };
  const ref = has(/libblas\.so/i);
  if (ref) return { backend: 'reference BLAS', detail: withInfo(`reference BLAS (${ref})`), reference: true };
  if (/open/i.test(r.torch_blas_info ?? '')) return { backend: 'OpenBLAS', detail: withInfo('OpenBLAS (linked into torch)'), reference: false };
  return { backend: 'unknown', detail: withInfo('no BLAS library mapped'), reference: false };
}

/** One line for the bench report: torch, its BLAS (flagged when it is the reference one), threads, env. */
export function torchNote(t: Pick<TorchResult, 'version' | 'defaultThreads' | 'seconds' | 'blas' | 'envRemoved'>): string {
  const b = t.blas.reference
    ? `BLAS: ${t.blas.detail} - the unoptimised reference BLAS, so these PyTorch rows understate PyTorch; install an optimised BLAS (Debian: apt install libopenblas0-pthread)`
    : `BLAS: ${t.blas.detail}`;
  const env = t.envRemoved.length ? `; unset for the peer: ${t.envRemoved.join(', ')}` : '';
  return `PyTorch ${t.version} on the CPU (${b}; default ${t.defaultThreads} thread${t.defaultThreads === 1 ? '' : 's'}${env}) ran ${t.seconds.toFixed(0)} s`;
}

export interface TorchResult {
  version: string;
  defaultThreads: number;
  blas: BlasInfo;
  /** PEER_ENV_UNSET variables that were set here and removed for the peer ("NAME=value"). */
  envRemoved: string[];
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

interface Line extends BlasReport {
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
export function parseTorchLines(text: string): { version: string; defaultThreads: number; blas: BlasInfo; rows: BenchRow[] } {
  let version = 'unknown';
  let defaultThreads = 1;
  let blas: BlasInfo = classifyBlas({});
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
      blas = classifyBlas(j);
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
  return { version, defaultThreads, blas, rows };
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
  const { env, removed } = torchPeerEnv();
  const out = await new Promise<string>((resolve, reject) => {
    const p = spawn(python, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
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
  return { ...parseTorchLines(out), envRemoved: removed, seconds: (performance.now() - t0) / 1000 };
}
