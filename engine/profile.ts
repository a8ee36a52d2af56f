// Per-kernel profile of a unit of GPU work (a training step, an attack): each dispatch
// runs in a compute pass of its own that writes GPU timestamps (the 'timestamp-query'
// feature); rows aggregate by (op, kernel, geometry), sorted by time. Also counts, per
// step, dispatches, submits, readbacks, uploads, copies, pool acquires / buffers created /
// destroyed and pipeline creations. Without timestamps it falls back to counts and the
// step's wall time only (per-kernel times are then null). Used by `kinkless profile`.
import type { Device } from './device.ts';
import type { DispatchSpec, QueueObserver } from './queue.ts';

export interface ProfileRow {
  op: string;
  /** Kernel (pipeline) name. */
  kernel: string;
  geometry: string;
  /** Dispatches over all measured steps. */
  calls: number;
  /** GPU milliseconds per step (null without timestamps). */
  msPerStep: number | null;
  /** Share of the step's summed kernel time (null without timestamps). */
  share: number | null;
  /** GFLOP/s, where every call's flops are known (else null). */
  gflops: number | null;
  /** GB/s of minimum traffic, where every call's bytes are known (else null). */
  gbps: number | null;
}

export interface StepCounters {
  dispatches: number;
  submits: number;
  readbacks: number;
  uploads: number;
  copies: number;
  poolAcquires: number;
  buffersCreated: number;
  buffersDestroyed: number;
  pipelinesCreated: number;
}

export interface ProfileResult {
  /** 'gpu-timestamps', or 'none' (no timestamp-query: counts and wall time only). */
  timing: 'gpu-timestamps' | 'none';
  note: string;
  warmup: number;
  steps: number;
  /** Wall milliseconds per measured step (median); includes the profiler's own overhead. */
  wallMsPerStep: number;
  /** Summed kernel GPU milliseconds per step (null without timestamps). */
  gpuMsPerStep: number | null;
  /** Counters per measured step (means over the steps). */
  perStep: StepCounters;
  /** Totals over the measured steps (the rows' calls sum to dispatches). */
  totals: StepCounters;
  /** Dispatches whose time could not be measured (query slots exhausted). */
  untimed: number;
  rows: ProfileRow[];
}

export interface ProfileOptions {
  warmup?: number;
  steps?: number;
  /** 'auto' (default): GPU timestamps where the device has them; 'none': counts only. */
  timing?: 'auto' | 'none';
}

const SLOTS = 1024; // query slots per submit: two per dispatch, a batch holds at most 512

interface Acc {
  op: string;
  kernel: string;
  geometry: string;
  calls: number;
  ns: number;
  flops: number;
  bytes: number;
  flopsKnown: boolean;
  bytesKnown: boolean;
}

function counters(d: Device): StepCounters {
  const q = d.queue;
  return {
    dispatches: q.dispatches,
    submits: q.submits,
    readbacks: q.readbacks,
    uploads: q.uploads,
    copies: q.copies,
    poolAcquires: d.pool.acquires,
    buffersCreated: d.pool.created,
    buffersDestroyed: d.pool.destroyed,
    pipelinesCreated: d.pipelines.created,
  };
}

/** Collects dispatches and their GPU timestamps while attached to a device's queue. */
class Recorder implements QueueObserver {
  readonly acc = new Map<string, Acc>();
  untimed = 0;
  private readonly set: GPUQuerySet | null;
  private readonly resolveBuf: GPUBuffer | null;
  private used = 0;
  private batch: Acc[] = [];
  private pending: { read: GPUBuffer; accs: Acc[] }[] = [];

  constructor(
    private readonly device: Device,
    readonly timed: boolean,
  ) {
    this.set = timed ? device.gpu.createQuerySet({ type: 'timestamp', count: SLOTS }) : null;
    this.resolveBuf = timed ? device.gpu.createBuffer({ size: SLOTS * 8, usage: 0x200 /* QUERY_RESOLVE */ | 0x4 /* COPY_SRC */, label: 'profile_resolve' }) : null;
  }

  dispatch(spec: DispatchSpec): GPUComputePassTimestampWrites | undefined {
    const info = spec.info ?? {};
    const op = info.op ?? '?';
    const geometry = info.geometry ?? '';
    const key = `${op}\u0000${spec.kernel.name}\u0000${geometry}`;
    let a = this.acc.get(key);
    if (!a) this.acc.set(key, (a = { op, kernel: spec.kernel.name, geometry, calls: 0, ns: 0, flops: 0, bytes: 0, flopsKnown: true, bytesKnown: true }));
    a.calls++;
    if (info.flops !== undefined) a.flops += info.flops;
    else a.flopsKnown = false;
    if (info.bytes !== undefined) a.bytes += info.bytes;
    else a.bytesKnown = false;
    if (!this.set) return undefined;
    if (this.used + 2 > SLOTS) {
      this.untimed++;
      return undefined;
    }
    const i = this.used;
    this.used += 2;
    this.batch.push(a);
    return { querySet: this.set, beginningOfPassWriteIndex: i, endOfPassWriteIndex: i + 1 };
  }

  beforeSubmit(encoder: GPUCommandEncoder): void {
    if (!this.set || this.used === 0) return;
    const read = this.device.gpu.createBuffer({ size: this.used * 8, usage: 0x1 /* MAP_READ */ | 0x8 /* COPY_DST */, label: 'profile_read' });
    encoder.resolveQuerySet(this.set, 0, this.used, this.resolveBuf!, 0);
    encoder.copyBufferToBuffer(this.resolveBuf!, 0, read, 0, this.used * 8);
    this.pending.push({ read, accs: this.batch });
    this.batch = [];
    this.used = 0;
  }

  /** Wait (through the device's wait, no busy loop) for every resolved batch; add the times. */
  async collect(): Promise<void> {
    for (const p of this.pending.splice(0)) {
      await this.device.wait(p.read.mapAsync(0x1 /* READ */));
      const t = new BigUint64Array(p.read.getMappedRange().slice(0));
      p.read.unmap();
      p.read.destroy();
      p.accs.forEach((a, j) => {
        const d = Number(t[2 * j + 1]! - t[2 * j]!);
        // NOTE: an end stamp before its begin (a driver quirk) counts as 0, never negative.
        a.ns += d > 0 ? d : 0;
      });
    }
  }

  destroy(): void {
    for (const p of this.pending.splice(0)) p.read.destroy();
    this.set?.destroy();
    this.resolveBuf?.destroy();
  }
}

function diff(a: StepCounters, b: StepCounters): StepCounters {
  const out = {} as StepCounters;
  for (const k of Object.keys(a) as (keyof StepCounters)[]) out[k] = b[k] - a[k];
  return out;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h]! : (s[h - 1]! + s[h]!) / 2;
}

/**
 * Profile `step` (which encodes GPU work; it may await readbacks): `warmup` unmeasured
 * calls, then `steps` measured ones, each followed by a device sync.
 */
export async function profileSteps(device: Device, step: (i: number) => void | Promise<void>, opts: ProfileOptions = {}): Promise<ProfileResult> {
  const warmup = opts.warmup ?? 2;
  const steps = opts.steps ?? 3;
  if (!Number.isInteger(warmup) || warmup < 0) throw new Error(`kinkless: profile: warmup must be an integer >= 0, got ${warmup}`);
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`kinkless: profile: steps must be an integer >= 1, got ${steps}`);
  if (device.queue.observer) throw new Error('kinkless: profile: this device already has a queue observer (a profile in progress?)');
  const hasTs = device.features.includes('timestamp-query');
  const timed = (opts.timing ?? 'auto') === 'auto' && hasTs;
  for (let i = 0; i < warmup; i++) await step(i);
  await device.sync();
  const rec = new Recorder(device, timed);
  const c0 = counters(device);
  const walls: number[] = [];
  device.queue.observer = rec;
  try {
    for (let i = 0; i < steps; i++) {
      const t0 = performance.now();
      await step(warmup + i);
      await device.sync();
      walls.push(performance.now() - t0);
      await rec.collect();
    }
  } finally {
    device.queue.flush();
    device.queue.observer = null;
    await rec.collect().catch(() => undefined);
    rec.destroy();
  }
  const totals = diff(c0, counters(device));
  const perStep = {} as StepCounters;
  for (const k of Object.keys(totals) as (keyof StepCounters)[]) perStep[k] = totals[k] / steps;
  const totalNs = [...rec.acc.values()].reduce((s, a) => s + a.ns, 0);
  const rows: ProfileRow[] = [...rec.acc.values()].map((a) => {
    const sec = a.ns / 1e9;
    return {
      op: a.op,
      kernel: a.kernel,
      geometry: a.geometry,
      calls: a.calls,
      msPerStep: timed ? a.ns / 1e6 / steps : null,
      share: timed && totalNs > 0 ? a.ns / totalNs : null,
      gflops: timed && a.flopsKnown && sec > 0 ? a.flops / sec / 1e9 : null,
      gbps: timed && a.bytesKnown && sec > 0 ? a.bytes / sec / 1e9 : null,
    };
  });
  rows.sort((x, y) => (y.msPerStep ?? 0) - (x.msPerStep ?? 0) || y.calls - x.calls);
  const note = timed
    ? 'GPU timestamps: each dispatch in a compute pass of its own (this adds pass overhead; the step wall time includes it)'
    : hasTs
      ? 'timing off (--timing none): counts and wall time only'
      : "no 'timestamp-query' on this adapter: per-kernel times unavailable; counts and the step's wall time only";
  return { timing: timed ? 'gpu-timestamps' : 'none', note, warmup, steps, wallMsPerStep: median(walls), gpuMsPerStep: timed ? totalNs / 1e6 / steps : null, perStep, totals, untimed: rec.untimed, rows };
}

/** The profile as a fixed-width text table plus the per-step counters. */
export function formatProfile(p: ProfileResult): string {
  const f = (v: number | null, d: number): string => (v === null ? '-' : v.toFixed(d));
  const head = ['op', 'kernel', 'geometry', 'calls/step', 'ms/step', 'share', 'GFLOP/s', 'GB/s'];
  const body = p.rows.map((r) => [r.op, r.kernel, r.geometry || '-', f(r.calls / p.steps, 1), f(r.msPerStep, 3), r.share === null ? '-' : `${(100 * r.share).toFixed(1)}%`, f(r.gflops, 2), f(r.gbps, 2)]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i >= 3 ? c.padStart(w[i]!) : c.padEnd(w[i]!))).join('  ').trimEnd();
  const c = p.perStep;
  return [
    line(head),
    line(w.map((n) => '-'.repeat(n))),
    ...body.map(line),
    '',
    `timing: ${p.note}`,
    `per step (mean of ${p.steps} after ${p.warmup} warm-up): wall ${p.wallMsPerStep.toFixed(2)} ms${p.gpuMsPerStep !== null ? `, kernels ${p.gpuMsPerStep.toFixed(2)} ms` : ''}`,
    `  dispatches ${c.dispatches}, submits ${c.submits}, readbacks ${c.readbacks}, uploads ${c.uploads}, copies ${c.copies}`,
    `  pool acquires ${c.poolAcquires}, buffers created ${c.buffersCreated}, destroyed ${c.buffersDestroyed}, pipelines created ${c.pipelinesCreated}`,
    ...(p.untimed ? [`  ${p.untimed} dispatches untimed (query slots exhausted)`] : []),
  ].join('\n');
}
