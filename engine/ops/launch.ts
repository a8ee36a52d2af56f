// Shared helpers for op implementations: uniform packing and output allocation.
import { Tensor, type DType, type Shape } from '../tensor.ts';
import type { Device } from '../device.ts';

/** Packs u32/i32/f32 words into a uniform block (16-byte multiple). */
export class Uniforms {
  private words: number[] = [];
  private kinds: ('u' | 'i' | 'f')[] = [];
  u32(...v: number[]): this {
    for (const x of v) {
      this.words.push(x >>> 0);
      this.kinds.push('u');
    }
    return this;
  }
  i32(...v: number[]): this {
    for (const x of v) {
      this.words.push(x | 0);
      this.kinds.push('i');
    }
    return this;
  }
  f32(...v: number[]): this {
    for (const x of v) {
      this.words.push(x);
      this.kinds.push('f');
    }
    return this;
  }
  /** Pad to a 4-word (16-byte) boundary. */
  align4(): this {
    while (this.words.length % 4) this.u32(0);
    return this;
  }
  bytes(): ArrayBuffer {
    this.align4();
    const buf = new ArrayBuffer(this.words.length * 4);
    const dv = new DataView(buf);
    this.words.forEach((w, i) => {
      const k = this.kinds[i];
      if (k === 'f') dv.setFloat32(i * 4, w, true);
      else if (k === 'i') dv.setInt32(i * 4, w, true);
      else dv.setUint32(i * 4, w, true);
    });
    return buf;
  }
}

export function alloc(device: Device, shape: Shape, dtype: DType = 'f32', label?: string): Tensor {
  return Tensor.empty(device, shape, dtype, label);
}

/** Pads an array of dims to `len` entries with `fill` (for vec4-packed uniforms). */
export function padTo(a: readonly number[], len: number, fill = 1): number[] {
  const r = [...a];
  while (r.length < len) r.push(fill);
  return r;
}
