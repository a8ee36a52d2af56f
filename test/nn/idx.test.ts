// Tests for the IDX reader: round trips of files written here, a hand-built file,
// gzip input, and clear errors on wrong magic, wrong length and zero dims.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeIdx, parseIdx, readIdxFile, type IdxDtype } from '../../nn/data/idx.ts';

const dir = mkdtempSync(join(tmpdir(), 'kinkless-idx-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('parseIdx', () => {
  it('reads a hand-built big-endian ubyte image file (magic 0x00000803)', () => {
    // 2 images of 2x3: header 00 00 08 03, dims 2, 2, 3 (big-endian uint32).
    const bytes = new Uint8Array([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6, 250, 251, 252, 253, 254, 255]);
    const r = parseIdx(bytes, 'hand.idx');
    expect(r.dims).toEqual([2, 2, 3]);
    expect(r.dtype).toBe('u8');
    expect(r.data).toBeInstanceOf(Uint8Array);
    expect([...r.data]).toEqual([1, 2, 3, 4, 5, 6, 250, 251, 252, 253, 254, 255]);
  });

  it('reads a hand-built big-endian int32 file', () => {
    // magic 00 00 0C 01, dim 2, values 0x01020304 and -2 (ff ff ff fe).
    const bytes = new Uint8Array([0, 0, 0x0c, 1, 0, 0, 0, 2, 1, 2, 3, 4, 0xff, 0xff, 0xff, 0xfe]);
    const r = parseIdx(bytes, 'ints.idx');
    expect(r.dtype).toBe('i32');
    expect([...r.data]).toEqual([0x01020304, -2]);
  });

  const cases: [IdxDtype, number[], Function][] = [
    ['u8', [0, 1, 127, 255, 9, 42], Uint8Array],
    ['i8', [-128, -1, 0, 1, 127, 5], Int8Array],
    ['i16', [-32768, -1, 0, 1, 32767, 300], Int16Array],
    ['i32', [-2147483648, -1, 0, 1, 2147483647, 70000], Int32Array],
    ['f32', [-1.5, 0, 0.25, 3.5, 1e-3, -1e30], Float32Array],
    ['f64', [-1.5, 0, Math.PI, 1e300, -1e-300, 7], Float64Array],
  ];
  for (const [dtype, values, ctor] of cases) {
    it(`round-trips ${dtype} through a file, plain and gzip`, () => {
      const enc = encodeIdx([3, 2], dtype, values);
      const plain = join(dir, `a-${dtype}.idx`);
      const gz = join(dir, `a-${dtype}.idx.gz`);
      writeFileSync(plain, enc);
      writeFileSync(gz, gzipSync(enc));
      for (const p of [plain, gz]) {
        const r = readIdxFile(p);
        expect(r.dims).toEqual([3, 2]);
        expect(r.dtype).toBe(dtype);
        expect(r.data).toBeInstanceOf(ctor);
        const want = dtype === 'f32' ? [...Float32Array.from(values)] : values;
        expect([...r.data]).toEqual(want);
      }
    });
  }

  it('handles a Buffer with a non-zero byteOffset', () => {
    const enc = encodeIdx([2], 'i16', [-5, 6]);
    const big = new Uint8Array(enc.length + 3);
    big.set(enc, 3);
    expect([...parseIdx(big.subarray(3), 'offset').data]).toEqual([-5, 6]);
  });

  it('rejects a wrong magic number, naming the file and the value', () => {
    const bytes = encodeIdx([2], 'u8', [1, 2]);
    bytes[0] = 0x12;
    expect(() => parseIdx(bytes, 'bad-magic.idx')).toThrow(/bad-magic\.idx.*wrong magic number 0x12000801/);
    const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0, 0, 0, 0]);
    expect(() => parseIdx(png, 'image.png')).toThrow(/image\.png.*wrong magic/);
  });

  it('rejects an unknown dtype code', () => {
    const bytes = encodeIdx([2], 'u8', [1, 2]);
    bytes[2] = 0x0a;
    expect(() => parseIdx(bytes, 'x.idx')).toThrow(/x\.idx.*unknown dtype code 0x0a/);
  });

  it('rejects truncated data and trailing bytes with both sizes', () => {
    const enc = encodeIdx([2, 3], 'i16', [1, 2, 3, 4, 5, 6]);
    expect(() => parseIdx(enc.subarray(0, enc.length - 1), 'short.idx')).toThrow(/short\.idx.*truncated.*need 24 bytes.*found 23/);
    const long = new Uint8Array(enc.length + 2);
    long.set(enc);
    expect(() => parseIdx(long, 'long.idx')).toThrow(/long\.idx.*trailing bytes.*need 24 bytes.*found 26/);
    expect(() => parseIdx(enc.subarray(0, 6), 'hdr.idx')).toThrow(/hdr\.idx.*truncated header/);
    expect(() => parseIdx(new Uint8Array([0, 0]), 'tiny.idx')).toThrow(/tiny\.idx.*too short/);
  });

  it('rejects zero dims and zero-sized dimensions', () => {
    expect(() => parseIdx(new Uint8Array([0, 0, 8, 0]), 'nodims.idx')).toThrow(/nodims\.idx.*0 dimensions/);
    const z = new Uint8Array([0, 0, 8, 2, 0, 0, 0, 3, 0, 0, 0, 0]);
    expect(() => parseIdx(z, 'zero.idx')).toThrow(/zero\.idx.*dimension 1 is 0/);
  });

  it('reports corrupt gzip input', () => {
    const gz = gzipSync(encodeIdx([4], 'u8', [1, 2, 3, 4]));
    expect(() => parseIdx(gz.subarray(0, gz.length - 6), 'cut.gz')).toThrow(/cut\.gz.*gzip/);
  });

  it('names the path when the file is missing', () => {
    expect(() => readIdxFile(join(dir, 'nope.idx'))).toThrow(/nope\.idx.*cannot read/);
  });
});
