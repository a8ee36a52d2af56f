// Tensor: a float32 or int32 array in a pooled GPU buffer, with shape, dtype, device and
// autograd metadata. Ops live in engine/ops/*; this file holds storage, creation and readback.
import type { Device } from './device.ts';
import type { GradNode } from './autograd.ts';
import { trackTensor } from './scope.ts';

export type DType = 'f32' | 'i32';
export type Shape = readonly number[];

export function shapeSize(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function checkShape(shape: Shape, what = 'shape'): void {
  if (!Array.isArray(shape)) throw new Error(`kinkless: ${what} must be an array of non-negative integers, got ${String(shape)}`);
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`kinkless: ${what} must be an array of non-negative integers, got [${shape.join(', ')}]`);
  }
}

export function shapeStr(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

/** A pooled GPU buffer shared by a tensor and its views; returned to the pool at refs = 0. */
export class Storage {
  refs = 0;
  constructor(readonly buffer: GPUBuffer) {}
}

export class Tensor {
  readonly __isTensor = true;
  readonly shape: Shape;
  readonly dtype: DType;
  readonly device: Device;
  readonly size: number;
  /** Autograd: set on leaves (parameters, attack inputs) to collect gradients. */
  requiresGrad = false;
  /** Accumulated gradient of a leaf after backward(). Owned by this tensor. */
  grad: Tensor | null = null;
  /** Autograd node that produced this tensor (null for leaves / no-grad results). */
  node: GradNode | null = null;
  name: string | undefined;
  private storage: Storage | null;

  /** Low-level: wrap a pool buffer (or share another tensor's storage). Use the creation helpers instead. */
  constructor(device: Device, shape: Shape, dtype: DType, buffer: GPUBuffer | Storage) {
    this.device = device;
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    this.size = shapeSize(shape);
    const st = buffer instanceof Storage ? buffer : new Storage(buffer);
    st.refs++;
    this.storage = st;
    trackTensor(this);
  }

  /** A tensor of another shape (same size) sharing this one's storage (no copy, no autograd). */
  view(shape: Shape): Tensor {
    checkShape(shape);
    if (shapeSize(shape) !== this.size) throw new Error(`kinkless: cannot view shape ${shapeStr(this.shape)} as ${shapeStr(shape)} (sizes ${this.size} and ${shapeSize(shape)})`);
    if (!this.storage) throw new Error(`kinkless: tensor ${this.name ?? shapeStr(this.shape)} was already disposed`);
    return new Tensor(this.device, shape, this.dtype, this.storage);
  }

  /** Allocate an uninitialised tensor. */
  static empty(device: Device, shape: Shape, dtype: DType = 'f32', label?: string): Tensor {
    checkShape(shape);
    const buf = device.pool.acquire(shapeSize(shape) * 4, label ?? `tensor ${shapeStr(shape)}`);
    return new Tensor(device, shape, dtype, buf);
  }

  /** Upload host data. `data` length must equal the shape's size. */
  static from(device: Device, data: ArrayLike<number>, shape?: Shape, dtype?: DType): Tensor {
    const dt: DType = dtype ?? (data instanceof Int32Array ? 'i32' : 'f32');
    const shp = shape ?? [data.length];
    checkShape(shp);
    const n = shapeSize(shp);
    if (data.length !== n) throw new Error(`kinkless: data has ${data.length} elements but shape ${shapeStr(shp)} needs ${n}`);
    const arr = dt === 'f32' ? (data instanceof Float32Array ? data : Float32Array.from(data)) : data instanceof Int32Array ? data : Int32Array.from(data);
    if (dt === 'i32') {
      for (let i = 0; i < arr.length; i++) {
        if (!Number.isInteger(data[i])) throw new Error(`kinkless: int32 tensor data must be integers, got ${data[i]} at index ${i}`);
      }
    }
    const t = Tensor.empty(device, shp, dt);
    device.queue.upload(t.buffer, arr);
    return t;
  }

  get buffer(): GPUBuffer {
    if (!this.storage) throw new Error(`kinkless: tensor ${this.name ?? shapeStr(this.shape)} was already disposed`);
    return this.storage.buffer;
  }

  get isDisposed(): boolean {
    return this.storage === null;
  }

  get rank(): number {
    return this.shape.length;
  }

  /** Read the values back to the host (flushes batched GPU work). */
  async data(): Promise<Float32Array | Int32Array> {
    const buf = this.buffer;
    const bytes = await this.device.queue.read(buf, this.size * 4);
    return this.dtype === 'f32' ? new Float32Array(bytes) : new Int32Array(bytes);
  }

  async f32(): Promise<Float32Array> {
    if (this.dtype !== 'f32') throw new Error(`kinkless: f32() on an ${this.dtype} tensor`);
    return (await this.data()) as Float32Array;
  }

  /** The single value of a one-element tensor. */
  async item(): Promise<number> {
    if (this.size !== 1) throw new Error(`kinkless: item() needs a one-element tensor, got shape ${shapeStr(this.shape)}`);
    return (await this.data())[0]!;
  }

  /** Release the GPU buffer (and the gradient). Safe to call twice. */
  dispose(): void {
    if (this.storage) {
      if (--this.storage.refs === 0) this.device.pool.release(this.storage.buffer);
      this.storage = null;
    }
    this.node = null;
    if (this.grad) {
      this.grad.dispose();
      this.grad = null;
    }
  }

  /** Drop the accumulated gradient. */
  zeroGrad(): void {
    if (this.grad) {
      this.grad.dispose();
      this.grad = null;
    }
  }

  toString(): string {
    return `Tensor(${this.dtype}, ${shapeStr(this.shape)}${this.requiresGrad ? ', requiresGrad' : ''})`;
  }
}

export function assertSameDevice(op: string, ...ts: Tensor[]): Device {
  const d = ts[0]!.device;
  for (const t of ts) {
    if (t.device !== d) throw new Error(`kinkless: ${op}: tensors live on different devices (#${d.id} and #${t.device.id})`);
    if (t.isDisposed) throw new Error(`kinkless: ${op}: input ${t.name ?? shapeStr(t.shape)} was already disposed`);
  }
  return d;
}

export function assertDType(op: string, arg: string, t: Tensor, dtype: DType): void {
  if (t.dtype !== dtype) throw new Error(`kinkless: ${op}: ${arg} must be ${dtype}, got ${t.dtype} tensor of shape ${shapeStr(t.shape)}`);
}
