// Batched command encoding: many dispatches share one command encoder and compute pass
// and are submitted together; the batch is flushed on readback, upload, or when full.
// Per-dispatch uniforms live in one arena buffer written once per batch.
import type { Device } from './device.ts';
import type { Kernel } from '../kernels/kernel.ts';

/** What a dispatch computes, for profiles (`kinkless profile`): all optional. */
export interface DispatchInfo {
  /** The engine op that launched it (e.g. 'conv2d', 'matmul', 'adam'). */
  op?: string;
  /** Its geometry in words, e.g. 'N128 C32 H26x26 -> O64 3x3 s2' or 'M128 K9216 N10'. */
  geometry?: string;
  /** Floating-point operations (multiply and add counted separately). */
  flops?: number;
  /** Bytes read plus written (the minimum traffic: each input and output once). */
  bytes?: number;
}

export interface DispatchSpec {
  /** The kernel (a descriptor from kernels/ with its parameters bound). */
  kernel: Kernel;
  /** What it computes (profiles); ops fill it where they know. */
  info?: DispatchInfo;
  /** Storage buffers bound at @binding(1), @binding(2), ... in the kernel's declared order. */
  buffers: GPUBuffer[];
  /** Uniform block bound at @binding(0) (at most 256 bytes). */
  uniforms?: ArrayBuffer | ArrayBufferView;
  /** Workgroup counts (each <= maxComputeWorkgroupsPerDimension). */
  workgroups: [number, number?, number?];
}

/** Watches the queue (profiles: engine/profile.ts). Every hook optional. */
export interface QueueObserver {
  /** Per dispatch, before it is encoded; timestamp writes returned give it a compute pass of its own. */
  dispatch?(spec: DispatchSpec): GPUComputePassTimestampWrites | undefined;
  /** Before a batch's encoder is finished and submitted (e.g. to resolve queries into it). */
  beforeSubmit?(encoder: GPUCommandEncoder): void;
}

const MAX_BATCH = 512;
const UNIFORM_SLOT = 256;

export class CommandQueue {
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private count = 0;
  private arena: GPUBuffer;
  private arenaCpu: Uint8Array;
  private arenaUsed = 0;
  private readonly slot: number;
  /** Name of the last kernel encoded (for error messages). */
  lastKernel: string | null = null;
  /** Total dispatches and submits so far (diagnostics, benchmarks). */
  dispatches = 0;
  submits = 0;
  /** Readbacks, uploads and buffer copies so far (profiles). */
  readbacks = 0;
  uploads = 0;
  copies = 0;
  /** Optional watcher (profiles); null when none. */
  observer: QueueObserver | null = null;

  constructor(
    private readonly device: Device,
    private readonly debug: boolean,
  ) {
    const align = device.limits.minUniformBufferOffsetAlignment ?? 256;
    this.slot = Math.max(UNIFORM_SLOT, align);
    this.arena = device.gpu.createBuffer({ size: this.slot * MAX_BATCH, usage: 0x40 /* UNIFORM */ | 0x8 /* COPY_DST */, label: 'uniform_arena' });
    this.arenaCpu = new Uint8Array(this.slot * MAX_BATCH);
  }

  private ensurePass(): GPUComputePassEncoder {
    if (!this.encoder) this.encoder = this.device.gpu.createCommandEncoder();
    if (!this.pass) this.pass = this.encoder.beginComputePass();
    return this.pass;
  }

  private endPass(): void {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
  }

  dispatch(spec: DispatchSpec): void {
    this.device.check();
    const [x, y = 1, z = 1] = spec.workgroups;
    if (x === 0 || y === 0 || z === 0) return;
    const maxWg = this.device.limits.maxComputeWorkgroupsPerDimension ?? 65535;
    if (x > maxWg || y > maxWg || z > maxWg || !Number.isInteger(x) || !Number.isInteger(y) || !Number.isInteger(z)) {
      throw new Error(`kinkless: kernel "${spec.kernel.name}": workgroup counts [${x}, ${y}, ${z}] must be integers <= ${maxWg}`);
    }
    const k = spec.kernel;
    if (spec.buffers.length !== k.bindings.length) {
      throw new Error(`kinkless: kernel "${k.name}": ${spec.buffers.length} buffers bound, but it declares ${k.bindings.length} (${k.bindings.map((b) => b.name).join(', ')})`);
    }
    const pipeline = this.device.pipelines.get(k);
    if (this.count >= MAX_BATCH || (spec.uniforms && this.arenaUsed + this.slot > this.arenaCpu.byteLength)) this.flush();
    const timed = this.observer?.dispatch?.(spec);
    const entries: GPUBindGroupEntry[] = [];
    if (spec.uniforms) {
      const u = spec.uniforms;
      const bytes = u instanceof ArrayBuffer ? new Uint8Array(u) : new Uint8Array(u.buffer, u.byteOffset, u.byteLength);
      if (bytes.byteLength > UNIFORM_SLOT) throw new Error(`kinkless: kernel "${k.name}": uniform block of ${bytes.byteLength} bytes exceeds ${UNIFORM_SLOT}`);
      const off = this.arenaUsed;
      this.arenaCpu.set(bytes, off);
      this.arenaUsed += this.slot;
      // Pad to 16 bytes: uniform structs are sized in multiples of 16.
      entries.push({ binding: 0, resource: { buffer: this.arena, offset: off, size: Math.max(16, Math.ceil(bytes.byteLength / 16) * 16) } });
    }
    spec.buffers.forEach((b, i) => entries.push({ binding: i + 1, resource: { buffer: b } }));
    const gpu = this.device.gpu;
    if (this.debug) gpu.pushErrorScope('validation');
    const bindGroup = gpu.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries, label: k.name });
    const pass = timed ? this.timedPass(timed) : this.ensurePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y, z);
    if (timed) pass.end();
    this.lastKernel = k.name;
    this.count++;
    this.dispatches++;
    if (this.debug) {
      void gpu.popErrorScope().then((err) => {
        if (err) console.error(`kinkless: validation error in kernel "${k.name}": ${err.message}\n${k.build()}`);
      });
    }
  }

  /** A compute pass of its own for one dispatch, writing GPU timestamps (profiles). */
  private timedPass(timestampWrites: GPUComputePassTimestampWrites): GPUComputePassEncoder {
    this.endPass();
    if (!this.encoder) this.encoder = this.device.gpu.createCommandEncoder();
    return this.encoder.beginComputePass({ timestampWrites });
  }

  /** Encode a buffer-to-buffer copy in order with the batched dispatches. */
  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void {
    this.device.check();
    this.ensurePass();
    this.endPass();
    this.encoder!.copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
    this.count++;
    this.copies++;
  }

  /** Submit the batch (if any). */
  flush(): void {
    if (!this.encoder) return;
    this.endPass();
    if (this.arenaUsed > 0) this.device.gpu.queue.writeBuffer(this.arena, 0, this.arenaCpu, 0, this.arenaUsed);
    this.observer?.beforeSubmit?.(this.encoder);
    this.device.gpu.queue.submit([this.encoder.finish()]);
    this.encoder = null;
    this.count = 0;
    this.arenaUsed = 0;
    this.submits++;
  }

  /** Write host data into a buffer, ordered after every command encoded so far. */
  upload(dst: GPUBuffer, data: ArrayBufferView, dstOffset = 0): void {
    this.device.check();
    // NOTE: queue.writeBuffer runs before commands still sitting in an unsubmitted
    // encoder, which might read a recycled buffer's old contents: submit them first.
    this.flush();
    this.uploads++;
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const padded = bytes.byteLength % 4 === 0 ? bytes : (() => {
      const p = new Uint8Array(Math.ceil(bytes.byteLength / 4) * 4);
      p.set(bytes);
      return p;
    })();
    if (padded.byteLength > 0) this.device.gpu.queue.writeBuffer(dst, dstOffset, padded);
  }

  /** Read `bytes` bytes of `src` back to the host (flushes the batch). */
  async read(src: GPUBuffer, bytes: number, srcOffset = 0): Promise<ArrayBuffer> {
    this.device.check();
    const size = Math.max(4, Math.ceil(bytes / 4) * 4);
    this.readbacks++;
    const staging = this.device.gpu.createBuffer({ size, usage: 0x1 /* MAP_READ */ | 0x8 /* COPY_DST */, label: 'readback' });
    try {
      this.copy(src, srcOffset, staging, 0, size);
      this.flush();
      try {
        await this.device.wait(staging.mapAsync(0x1 /* READ */));
      } catch (e) {
        this.device.check();
        throw new Error(`kinkless: readback failed: ${(e as Error).message}`);
      }
      const out = staging.getMappedRange().slice(0, bytes);
      staging.unmap();
      await this.device.pipelines.checkPending();
      this.device.check();
      return out;
    } finally {
      staging.destroy();
    }
  }
}
