// GPU buffer pool keyed by size class, with live-buffer and live-byte accounting and a
// cap on the bytes kept in free lists. Every storage buffer of the engine comes from here.
import type { Device } from './device.ts';

const STORAGE_USAGE = 0x80 /* STORAGE */ | 0x4 /* COPY_SRC */ | 0x8; /* COPY_DST */

/** Size class: 256-byte minimum, then 4 classes per power of two (at most 25% waste). */
export function sizeClass(bytes: number): number {
  if (bytes <= 256) return 256;
  const p = 2 ** Math.floor(Math.log2(bytes));
  const step = p / 4;
  return Math.ceil(bytes / step) * step;
}

export class BufferPool {
  private free = new Map<number, GPUBuffer[]>();
  private live = new Map<GPUBuffer, number>();
  private liveBytes = 0;
  private freeBytes = 0;
  private freeCount = 0;
  /** Bytes ever allocated from the driver (diagnostics). */
  createdBytes = 0;
  /** Acquires, driver allocations and destroyed buffers so far (profiles). */
  acquires = 0;
  created = 0;
  destroyed = 0;

  /**
   * Cap on live + pooled bytes (default Infinity: the driver decides). Above it, the pool
   * first trims its free lists, then refuses the allocation with an error naming it.
   */
  limitBytes = Infinity;

  constructor(
    private readonly device: Device,
    public capBytes: number,
  ) {}

  /** Get a storage buffer of at least `bytes` bytes. `label` names the allocation in errors. */
  acquire(bytes: number, label = 'tensor'): GPUBuffer {
    this.device.check();
    if (!Number.isFinite(bytes) || bytes < 0) throw new Error(`kinkless: buffer size for ${label} must be a non-negative number, got ${bytes}`);
    this.acquires++;
    const cls = sizeClass(Math.max(bytes, 4));
    const maxBuf = this.device.limits.maxBufferSize ?? 268435456;
    const maxBind = this.device.limits.maxStorageBufferBindingSize ?? 134217728;
    if (cls > Math.min(maxBuf, maxBind)) {
      throw new Error(
        `kinkless: cannot allocate ${label}: ${bytes} bytes exceeds the device's largest storage buffer (${Math.min(maxBuf, maxBind)} bytes on this adapter)`,
      );
    }
    const list = this.free.get(cls);
    let buf = list?.pop();
    if (buf) {
      this.freeBytes -= cls;
      this.freeCount--;
    } else {
      if (this.liveBytes + this.freeBytes + cls > this.limitBytes) this.trim();
      if (this.liveBytes + cls > this.limitBytes) {
        throw new Error(
          `kinkless: out of device memory allocating ${label}: ${bytes} bytes (size class ${cls}) with ${this.liveBytes} bytes in ${this.live.size} live buffers exceeds the memory limit of ${this.limitBytes} bytes (memoryLimitBytes); dispose tensors or lower the batch size`,
        );
      }
      try {
        buf = this.device.gpu.createBuffer({ size: cls, usage: STORAGE_USAGE, label });
      } catch (e) {
        throw new Error(`kinkless: out of device memory allocating ${label} (${bytes} bytes; ${this.liveBytes} bytes live): ${(e as Error).message}`);
      }
      this.createdBytes += cls;
      this.created++;
    }
    this.live.set(buf, cls);
    this.liveBytes += cls;
    return buf;
  }

  /** Return a buffer to the pool (or destroy it when the pool is over its cap). */
  release(buf: GPUBuffer): void {
    const cls = this.live.get(buf);
    if (cls === undefined) throw new Error('kinkless: internal error: releasing a buffer the pool does not own (double dispose?)');
    this.live.delete(buf);
    this.liveBytes -= cls;
    if (this.device.isDestroyed) return;
    if (this.freeBytes + cls > this.capBytes) {
      // The buffer may still be referenced by batched commands: flush before destroying.
      this.device.queue.flush();
      buf.destroy();
      this.destroyed++;
      return;
    }
    let list = this.free.get(cls);
    if (!list) this.free.set(cls, (list = []));
    list.push(buf);
    this.freeBytes += cls;
    this.freeCount++;
  }

  /** Destroy every pooled (free) buffer, returning their memory to the driver. */
  trim(): void {
    this.device.queue.flush();
    this.destroyed += this.freeCount;
    for (const list of this.free.values()) for (const b of list) b.destroy();
    this.free.clear();
    this.freeBytes = 0;
    this.freeCount = 0;
  }

  destroyAll(): void {
    for (const list of this.free.values()) for (const b of list) b.destroy();
    this.free.clear();
    for (const b of this.live.keys()) b.destroy();
    this.freeBytes = 0;
    this.freeCount = 0;
  }

  stats(): { liveBuffers: number; liveBytes: number; pooledBuffers: number; pooledBytes: number } {
    return { liveBuffers: this.live.size, liveBytes: this.liveBytes, pooledBuffers: this.freeCount, pooledBytes: this.freeBytes };
  }
}
