// Headless WebGPU device: Dawn bootstrap through the `webgpu` package, adapter choice,
// limits, error and device-loss handling. Owns the buffer pool, the pipeline cache and
// the batched command queue; everything GPU-side goes through a Device passed explicitly.
import { create } from 'webgpu';
import { BufferPool } from './buffer_pool.ts';
import { PipelineCache } from './pipeline_cache.ts';
import { gpuWait, defaultWaitMode, type WaitMode } from './gpu_wait.ts';
import { CommandQueue, type DispatchSpec } from './queue.ts';

export type Backend = 'vulkan' | 'metal' | 'd3d12' | 'opengles' | 'null';

export interface DeviceOptions {
  /** Dawn backend (default: Dawn's choice, Vulkan on Linux). */
  backend?: Backend;
  /** Substring of the adapter name/description to require, e.g. "llvmpipe". */
  adapter?: string;
  powerPreference?: GPUPowerPreference;
  /** Print every shader's WGSL when its pipeline is created (also env KINKLESS_DUMP_SHADERS=1). */
  dumpShaders?: boolean;
  /** Wrap every dispatch in a validation error scope (slow; also env KINKLESS_DEBUG=1). */
  debug?: boolean;
  /** Dawn toggles, e.g. "disable_robustness" (also env KINKLESS_DAWN_TOGGLES). */
  dawnToggles?: string;
  /**
   * Dawn toggles to disable (also env KINKLESS_DAWN_DISABLE_TOGGLES), e.g.
   * "timestamp_quantization": Dawn rounds GPU timestamps to 65536 ns steps by default
   * (measured on llvmpipe); profiles (`kinkless profile`) disable it. See docs/profile.md.
   */
  dawnDisableToggles?: string;
  /** Cap on bytes kept in the buffer pool's free lists (default 512 MiB). */
  poolCapBytes?: number;
  /** Cap on live + pooled buffer bytes; allocations above it throw a clear error (default: none). */
  memoryLimitBytes?: number;
  /**
   * How to wait for the GPU: 'timer' (default) leaves the CPU to the driver while a GPU
   * promise is pending; 'spin' keeps dawn.node's busy ticks (env KINKLESS_GPU_WAIT=spin).
   */
  gpuWait?: WaitMode;
}

export interface AdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  isFallbackAdapter: boolean;
  featureLevel: string;
  /** Smallest and largest subgroup sizes the adapter may use (0 when it does not say). */
  subgroupMinSize: number;
  subgroupMaxSize: number;
}

let nextDeviceId = 1;
/** Dawn instances by their options (see createDevice); never released. */
const instances = new Map<string, GPU>();

/** Limits the kernels rely on; requested up to what the adapter offers. */
const WANTED_LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupsPerDimension',
] as const;

export class DeviceLostError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DeviceLostError';
  }
}

export class Device {
  readonly id = nextDeviceId++;
  readonly gpu: GPUDevice;
  readonly adapter: AdapterSummary;
  readonly limits: Record<string, number>;
  readonly features: string[];
  readonly pool: BufferPool;
  readonly pipelines: PipelineCache;
  readonly queue: CommandQueue;
  /** How this device's waits treat dawn.node's event ticks (see engine/gpu_wait.ts). */
  readonly waitMode: WaitMode;
  /** Set when the device is lost or destroyed; every later GPU call throws it. */
  lostReason: string | null = null;
  private pendingErrors: string[] = [];
  private destroyed = false;

  /** The Dawn instance (also kept in a module-level list; see createDevice). */
  readonly instance: GPU;

  constructor(gpu: GPUDevice, adapter: AdapterSummary, features: string[], opts: DeviceOptions, instance: GPU) {
    this.gpu = gpu;
    this.instance = instance;
    this.adapter = adapter;
    this.features = features;
    const lim: Record<string, number> = {};
    for (const k in gpu.limits) lim[k] = (gpu.limits as unknown as Record<string, number>)[k]!;
    // Dawn exposes limits as getters on the prototype.
    for (const k of [...WANTED_LIMITS, 'minUniformBufferOffsetAlignment', 'minStorageBufferOffsetAlignment', 'maxUniformBufferBindingSize']) {
      lim[k] = (gpu.limits as unknown as Record<string, number>)[k]!;
    }
    this.limits = lim;
    this.waitMode = opts.gpuWait ?? defaultWaitMode();
    const dump = opts.dumpShaders ?? process.env.KINKLESS_DUMP_SHADERS === '1';
    const debug = opts.debug ?? process.env.KINKLESS_DEBUG === '1';
    this.pool = new BufferPool(this, opts.poolCapBytes ?? 512 * 1024 * 1024);
    if (opts.memoryLimitBytes !== undefined) this.pool.limitBytes = opts.memoryLimitBytes;
    this.pipelines = new PipelineCache(this, dump);
    this.queue = new CommandQueue(this, debug);
    gpu.onuncapturederror = (ev: GPUUncapturedErrorEvent) => {
      const kernel = this.queue.lastKernel ? ` (last kernel encoded: ${this.queue.lastKernel})` : '';
      this.pendingErrors.push(`${ev.error.constructor?.name ?? 'GPUError'}: ${ev.error.message}${kernel}`);
    };
    gpu.lost.then((info: GPUDeviceLostInfo) => {
      if (!this.lostReason) this.lostReason = this.destroyed ? 'device destroyed' : `device lost (${info.reason}): ${info.message}`;
    });
  }

  /** Driver and runtime settings in force, for `doctor` and reports. */
  settings(): { name: string; value: string }[] {
    const out = [{ name: 'gpu wait', value: this.waitMode === 'timer' ? 'timer (no busy wait; KINKLESS_GPU_WAIT=spin for dawn.node\'s own ticks)' : 'spin (dawn.node\'s immediate ticks)' }];
    if (isLlvmpipe(this.adapter)) {
      const t = process.env.LP_NUM_THREADS;
      // NOTE: no thread count is forced: 2, 4, 8 and 16 threads measured no faster than the
      // driver's default (one per core) on the MNIST steps (docs/software-gpu.md).
      out.push({ name: 'LP_NUM_THREADS', value: t ? `${t} (from the environment)` : `unset (llvmpipe default: one thread per core)` });
    }
    return out;
  }

  /** Throws if the device is lost/destroyed or an uncaptured GPU error was reported. */
  check(): void {
    if (this.lostReason) throw new DeviceLostError(`kinkless: GPU ${this.lostReason}; no further GPU work is possible on this Device`);
    if (this.pendingErrors.length) {
      const errs = this.pendingErrors.splice(0);
      throw new Error(`kinkless: GPU error: ${errs.join('; ')}`);
    }
  }

  /** Encode one compute dispatch into the current batch (see CommandQueue). */
  dispatch(spec: DispatchSpec): void {
    this.queue.dispatch(spec);
  }

  /** Submit every batched command. */
  flush(): void {
    this.queue.flush();
  }

  /** Wait until the GPU has finished all submitted work; reports pipeline/GPU errors. */
  async sync(): Promise<void> {
    this.queue.flush();
    await this.wait(this.gpu.queue.onSubmittedWorkDone());
    await this.pipelines.checkPending();
    this.check();
  }

  /** Await a GPU promise without busy-waiting (this device's wait mode). */
  wait<T>(p: Promise<T>): Promise<T> {
    return gpuWait(p, this.waitMode);
  }

  /** Memory accounting, readable by tests. */
  stats(): { liveBuffers: number; liveBytes: number; pooledBuffers: number; pooledBytes: number; pipelines: number } {
    return { ...this.pool.stats(), pipelines: this.pipelines.size };
  }

  /** Release the device. The Node process can exit afterwards by itself. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    try {
      this.queue.flush();
    } catch {
      /* device may already be lost */
    }
    this.pool.destroyAll();
    this.lostReason = this.lostReason ?? 'device destroyed';
    this.gpu.destroy();
  }

  get isDestroyed(): boolean {
    return this.destroyed;
  }
}

function noAdapterMessage(opts: DeviceOptions): string {
  const wanted = opts.adapter ? ` matching "${opts.adapter}"` : '';
  const lines = [
    `kinkless: no WebGPU adapter found${wanted}${opts.backend ? ` on backend "${opts.backend}"` : ''}.`,
    'On a machine without a GPU, install a software Vulkan driver (Mesa >= 24 lavapipe):',
    '  Debian 12:   bash scripts/setup-software-gpu.sh   (mesa-vulkan-drivers from bookworm-backports)',
    '  Debian 13 / Ubuntu 24.04+:  apt-get install mesa-vulkan-drivers',
    '  Fedora: dnf install mesa-vulkan-drivers vulkan-loader;  Arch: pacman -S vulkan-swrast',
  ];
  return lines.join('\n');
}

/** Create a headless device. Throws a clear error when no adapter is available. */
export async function createDevice(opts: DeviceOptions = {}): Promise<Device> {
  if (opts.gpuWait !== undefined && opts.gpuWait !== 'timer' && opts.gpuWait !== 'spin') {
    throw new Error(`kinkless: createDevice: gpuWait must be 'timer' or 'spin', got ${String(opts.gpuWait)}`);
  }
  for (const k of ['poolCapBytes', 'memoryLimitBytes'] as const) {
    const v = opts[k];
    if (v !== undefined && (typeof v !== 'number' || Number.isNaN(v) || v < 0)) throw new Error(`kinkless: createDevice: ${k} must be a number of bytes >= 0, got ${String(v)}`);
  }
  const dawnOpts: string[] = [];
  if (opts.backend) dawnOpts.push(`backend=${opts.backend}`);
  const toggles = opts.dawnToggles ?? process.env.KINKLESS_DAWN_TOGGLES;
  if (toggles) dawnOpts.push(`enable-dawn-features=${toggles}`);
  const off = opts.dawnDisableToggles ?? process.env.KINKLESS_DAWN_DISABLE_TOGGLES;
  if (off) dawnOpts.push(`disable-dawn-features=${off}`);
  // NOTE: one Dawn instance per distinct set of instance options, reused by every device of
  // the process: Dawn logs its adapter notes (e.g. "maxDynamic...BuffersPerPipelineLayout
  // artificially reduced" on lavapipe) once per instance, so at most once per process.
  const key = dawnOpts.join('\n');
  let gpu = instances.get(key);
  if (!gpu) {
    gpu = create(dawnOpts) as GPU;
    instances.set(key, gpu);
  }
  const reqOpts: GPURequestAdapterOptions = {};
  if (opts.powerPreference) reqOpts.powerPreference = opts.powerPreference;
  let adapter = await gpu.requestAdapter(reqOpts);
  if (!adapter && !opts.powerPreference) adapter = await gpu.requestAdapter({ forceFallbackAdapter: true });
  if (!adapter) throw new Error(noAdapterMessage(opts));
  const info = adapter.info;
  const summary: AdapterSummary = {
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device,
    description: info.description,
    isFallbackAdapter: (info as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter ?? false,
    featureLevel: adapter.features.has('core-features-and-limits') ? 'core' : 'compatibility',
    subgroupMinSize: (info as unknown as { subgroupMinSize?: number }).subgroupMinSize ?? 0,
    subgroupMaxSize: (info as unknown as { subgroupMaxSize?: number }).subgroupMaxSize ?? 0,
  };
  if (opts.adapter) {
    const hay = `${summary.vendor} ${summary.architecture} ${summary.device} ${summary.description}`.toLowerCase();
    if (!hay.includes(opts.adapter.toLowerCase())) {
      throw new Error(`${noAdapterMessage(opts)}\n(found instead: "${summary.description || summary.device}")`);
    }
  }
  const requiredLimits: Record<string, number> = {};
  for (const k of WANTED_LIMITS) {
    const v = (adapter.limits as unknown as Record<string, number>)[k];
    if (typeof v === 'number') requiredLimits[k] = v;
  }
  const features: GPUFeatureName[] = [];
  if (adapter.features.has('timestamp-query')) features.push('timestamp-query');
  // Subgroup operations: kernels written for a known subgroup size use them where offered.
  if (adapter.features.has('subgroups' as GPUFeatureName)) features.push('subgroups' as GPUFeatureName);
  const dev = await adapter.requestDevice({ requiredLimits, requiredFeatures: features });
  // NOTE: Dawn instances are never released (the `instances` map holds them): one
  // garbage-collected while (or after) its device was in use crashes Dawn's worker threads
  // (futex / std::system_error / Segmentation fault). Holding the reference does not keep
  // Node from exiting.
  return new Device(dev, summary, features, opts, gpu);
}

/** Whether the adapter is Mesa's software rasterizer (lavapipe / llvmpipe). */
export function isLlvmpipe(a: AdapterSummary): boolean {
  return /llvmpipe|lavapipe/i.test(`${a.description} ${a.device} ${a.vendor} ${a.architecture}`);
}

/** Human-readable adapter name, e.g. "llvmpipe (LLVM 15.0.6, 256 bits)". */
export function adapterName(d: Device): string {
  const a = d.adapter;
  return a.description || a.device || a.vendor || 'unknown adapter';
}
