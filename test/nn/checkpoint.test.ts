// Tests for safetensors checkpoints: bytes checked by an independent minimal reader
// written here from the format spec, round trips, clear errors on truncated or
// corrupt files, atomic writes that keep the old file on failure, checkCompatible.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  checkCompatible,
  decodeSafetensors,
  encodeSafetensors,
  loadCheckpointFile,
  saveCheckpointFile,
  type NamedArray,
} from '../../nn/checkpoint.ts';

const dir = mkdtempSync(join(tmpdir(), 'kinkless-ckpt-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * Independent reader, from the spec: u64 LE header size N, N bytes of JSON, then a
 * byte buffer; each entry's data_offsets are relative to the buffer's start; all
 * values little-endian. Reads element by element with DataView (no typed-array copy).
 */
function specRead(bytes: Uint8Array) {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let n = 0;
  for (let i = 7; i >= 0; i--) n = n * 256 + bytes[i];
  const headerText = Buffer.from(bytes.subarray(8, 8 + n)).toString('utf8');
  const header = JSON.parse(headerText);
  const base = 8 + n;
  const out: Record<string, { dtype: string; shape: number[]; begin: number; end: number; values: (number | bigint)[] }> = {};
  for (const [name, e] of Object.entries<any>(header)) {
    if (name === '__metadata__') continue;
    const [begin, end] = e.data_offsets;
    const values: (number | bigint)[] = [];
    const size = { F32: 4, I32: 4, F64: 8, I64: 8, U8: 1 }[e.dtype as 'F32']!;
    for (let p = base + begin; p < base + end; p += size) {
      if (e.dtype === 'F32') values.push(dv.getFloat32(p, true));
      else if (e.dtype === 'I32') values.push(dv.getInt32(p, true));
      else if (e.dtype === 'F64') values.push(dv.getFloat64(p, true));
      else if (e.dtype === 'I64') values.push(dv.getBigInt64(p, true));
      else values.push(dv.getUint8(p));
    }
    out[name] = { dtype: e.dtype, shape: e.shape, begin, end, values };
  }
  return { n, headerText, header, base, out };
}

const sample = (): Record<string, NamedArray> => ({
  'w.conv1': { dtype: 'F32', shape: [2, 3], data: Float32Array.from([1.5, -2, 0.25, 3, 1e-7, -1e20]) },
  bias: { dtype: 'F64', shape: [2], data: Float64Array.from([Math.PI, -0]) },
  count: { dtype: 'I32', shape: [], data: Int32Array.from([-123456]) },
  step: { dtype: 'I64', shape: [1], data: BigInt64Array.from([9007199254740993n]) },
  mask: { dtype: 'U8', shape: [3], data: Uint8Array.from([0, 255, 7]) },
  empty: { dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
});

/** Builds a file from a raw header object and data bytes (for corrupt-file tests). */
function rawFile(header: unknown, data: Uint8Array, headerText = JSON.stringify(header)): Uint8Array {
  const h = new TextEncoder().encode(headerText);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

describe('encodeSafetensors', () => {
  it('matches the spec as read by an independent reader', () => {
    const t = sample();
    const bytes = encodeSafetensors(t, { format: 'kinkless', epoch: '3' });
    const r = specRead(bytes);
    expect(r.n % 8).toBe(0);
    expect(r.headerText.startsWith('{')).toBe(true);
    expect(/^[^]*\} *$/.test(r.headerText)).toBe(true); // padded with spaces only
    expect(r.header.__metadata__).toEqual({ format: 'kinkless', epoch: '3' });
    // Contiguous in sorted-name order, covering the whole buffer.
    const names = Object.keys(t).sort();
    let cursor = 0;
    for (const name of names) {
      expect(r.out[name].begin).toBe(cursor);
      cursor = r.out[name].end;
    }
    expect(r.base + cursor).toBe(bytes.length);
    for (const [name, a] of Object.entries(t)) {
      expect(r.out[name].dtype).toBe(a.dtype);
      expect(r.out[name].shape).toEqual(a.shape);
      expect(r.out[name].values).toEqual([...(a.data as ArrayLike<number | bigint> & Iterable<number | bigint>)]);
    }
  });

  it('round-trips through decodeSafetensors and files', () => {
    const t = sample();
    const p = join(dir, 'rt.safetensors');
    saveCheckpointFile(p, t, { note: 'hi' });
    const back = loadCheckpointFile(p);
    expect(back.metadata).toEqual({ note: 'hi' });
    expect(Object.keys(back.tensors).sort()).toEqual(Object.keys(t).sort());
    for (const [name, a] of Object.entries(t)) {
      expect(back.tensors[name].dtype).toBe(a.dtype);
      expect(back.tensors[name].shape).toEqual(a.shape);
      expect(back.tensors[name].data).toBeInstanceOf(a.data.constructor);
      expect([...(back.tensors[name].data as Iterable<number | bigint>)]).toEqual([...(a.data as Iterable<number | bigint>)]);
    }
    expect(Object.is(back.tensors.bias.data[1], -0)).toBe(true);
    expect(readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('reads a file built independently by hand', () => {
    // One F32 [2] = [1, -2] and one U8 [1] = [9], offsets per spec, unaligned U8 first.
    const data = new Uint8Array([9, 0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0]);
    const f = rawFile({ a: { dtype: 'U8', shape: [1], data_offsets: [0, 1] }, b: { dtype: 'F32', shape: [2], data_offsets: [1, 9] } }, data);
    const r = decodeSafetensors(f, 'hand');
    expect([...r.tensors.a.data]).toEqual([9]);
    expect([...r.tensors.b.data]).toEqual([1, -2]);
  });

  it('rejects invalid inputs, naming the tensor', () => {
    expect(() => encodeSafetensors({ x: { dtype: 'F32', shape: [3], data: new Float32Array(2) } })).toThrow(/'x' has 2 elements; shape \[3\] needs 3/);
    expect(() => encodeSafetensors({ x: { dtype: 'F32', shape: [2], data: new Float64Array(2) } })).toThrow(/'x' is F32 but its data is a Float64Array/);
    expect(() => encodeSafetensors({}, { a: 3 as unknown as string })).toThrow(/metadata 'a' is number/);
  });
});

describe('decodeSafetensors errors', () => {
  const good = encodeSafetensors(sample(), { a: 'b' });

  it('truncated files', () => {
    expect(() => decodeSafetensors(good.subarray(0, 5), 'f.st')).toThrow(/f\.st: truncated: 5 bytes/);
    expect(() => decodeSafetensors(good.subarray(0, 40), 'f.st')).toThrow(/f\.st: truncated: header length is \d+ bytes but only 32 bytes follow/);
    expect(() => decodeSafetensors(good.subarray(0, good.length - 3), 'f.st')).toThrow(/f\.st: tensor '[^']+': data_offsets \[\d+, \d+\] out of range.*truncated/);
  });

  it('corrupt header length, invalid JSON, non-object header', () => {
    const bad = good.slice();
    bad[7] = 0x40;
    expect(() => decodeSafetensors(bad, 'f.st')).toThrow(/corrupt header length/);
    const j = good.slice();
    j[8] = 0x5b; // '[' instead of '{'
    expect(() => decodeSafetensors(j, 'f.st')).toThrow(/f\.st: corrupt header: invalid JSON/);
    expect(() => decodeSafetensors(rawFile([], new Uint8Array(0)), 'arr')).toThrow(/arr: corrupt header: expected a JSON object/);
    const u = rawFile(null, new Uint8Array(0), '{"\xff"}');
    u[10] = 0xff;
    expect(() => decodeSafetensors(u, 'utf')).toThrow(/utf: corrupt header/);
  });

  it('offsets out of range, overlapping, holes, trailing bytes', () => {
    const d = new Uint8Array(16);
    const e = (o: number[]) => ({ dtype: 'F32', shape: [2], data_offsets: o });
    expect(() => decodeSafetensors(rawFile({ a: e([0, 8]), b: e([12, 20]) }, d), 's')).toThrow(/tensor 'b': data_offsets \[12, 20\] out of range/);
    expect(() => decodeSafetensors(rawFile({ a: e([0, 8]), b: e([4, 12]) }, d), 's')).toThrow(/tensor 'b'.*overlap tensor 'a'/);
    expect(() => decodeSafetensors(rawFile({ a: e([0, 8]), b: e([8, 16]), c: e([0, 8]) }, d), 's')).toThrow(/overlap/);
    expect(() => decodeSafetensors(rawFile({ a: e([0, 8]) }, d), 's')).toThrow(/8 trailing bytes/);
    expect(() => decodeSafetensors(rawFile({ a: e([8, 16]) }, d), 's')).toThrow(/tensor 'a': hole of 8 bytes/);
    expect(() => decodeSafetensors(rawFile({ a: e([8, 0]) }, d), 's')).toThrow(/tensor 'a': data_offsets \[8,0\]/);
  });

  it('shape/size mismatch, bad dtype, bad metadata', () => {
    const d = new Uint8Array(8);
    expect(() => decodeSafetensors(rawFile({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, d), 's')).toThrow(
      /tensor 'w': F32 shape \[3\] needs 12 bytes but data_offsets \[0, 8\] span 8/,
    );
    expect(() => decodeSafetensors(rawFile({ w: { dtype: 'BF16', shape: [4], data_offsets: [0, 8] } }, d), 's')).toThrow(/tensor 'w': unsupported dtype "BF16"/);
    expect(() => decodeSafetensors(rawFile({ w: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } }, d), 's')).toThrow(/tensor 'w': shape \[-2\]/);
    expect(() => decodeSafetensors(rawFile({ __metadata__: { k: 1 } }, new Uint8Array(0)), 's')).toThrow(/__metadata__ 'k' is 1/);
  });
});

describe('saveCheckpointFile atomicity', () => {
  it('a write failing partway leaves the previous file intact and no temp file', () => {
    const p = join(dir, 'atomic.safetensors');
    const v1 = { w: { dtype: 'F32', shape: [4], data: Float32Array.from([1, 2, 3, 4]) } } as Record<string, NamedArray>;
    saveCheckpointFile(p, v1, { v: '1' });
    const before = readFileSync(p);
    const v2 = { w: { dtype: 'F32', shape: [4], data: Float32Array.from([5, 6, 7, 8]) } } as Record<string, NamedArray>;
    expect(() => saveCheckpointFile(p, v2, { v: '2' }, { _failAfterBytes: 20 })).toThrow(
      /atomic\.safetensors: write failed, previous file \(if any\) left intact: simulated failure after 20 bytes/,
    );
    expect(readFileSync(p).equals(before)).toBe(true);
    expect(loadCheckpointFile(p).metadata.v).toBe('1');
    expect(readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
    saveCheckpointFile(p, v2, { v: '2' });
    expect([...loadCheckpointFile(p).tensors.w.data]).toEqual([5, 6, 7, 8]);
  });

  it('a failed first write leaves no file at all; missing files are named', () => {
    const p = join(dir, 'never.safetensors');
    expect(() => saveCheckpointFile(p, {}, undefined, { _failAfterBytes: 0 })).toThrow(/simulated failure/);
    expect(existsSync(p)).toBe(false);
    expect(() => loadCheckpointFile(p)).toThrow(/never\.safetensors: cannot read file/);
    expect(() => saveCheckpointFile(join(dir, 'no', 'dir.st'), {})).toThrow(/dir\.st: write failed/);
  });

  it('truncated file on disk gives a clear error naming the path', () => {
    const p = join(dir, 'trunc.safetensors');
    writeFileSync(p, encodeSafetensors(sample()).subarray(0, 50));
    expect(() => loadCheckpointFile(p)).toThrow(/trunc\.safetensors: truncated/);
  });
});

describe('checkCompatible', () => {
  const expected = { 'a.w': { shape: [2, 3], dtype: 'F32' }, 'a.b': { shape: [3], dtype: 'F32' } };
  it('accepts a match and names missing, mismatched and unexpected tensors', () => {
    checkCompatible(expected, { 'a.w': { shape: [2, 3], dtype: 'F32' }, 'a.b': { shape: [3], dtype: 'F32' } });
    expect(() => checkCompatible(expected, { 'a.w': { shape: [2, 3], dtype: 'F32' } })).toThrow(/missing tensor 'a\.b' \(expected F32 \[3\]\)/);
    expect(() => checkCompatible(expected, { 'a.w': { shape: [3, 2], dtype: 'F32' }, 'a.b': { shape: [3], dtype: 'F32' } })).toThrow(
      /tensor 'a\.w': shape \[3, 2\], expected \[2, 3\]/,
    );
    expect(() => checkCompatible(expected, { 'a.w': { shape: [2, 3], dtype: 'F64' }, 'a.b': { shape: [3], dtype: 'F32' } })).toThrow(
      /tensor 'a\.w': dtype F64, expected F32/,
    );
    const extra = { ...expected, 'opt.m': { shape: [1], dtype: 'F32' } };
    expect(() => checkCompatible(expected, extra)).toThrow(/unexpected tensor 'opt\.m'/);
    checkCompatible(expected, extra, { allowUnexpected: true });
  });
});
