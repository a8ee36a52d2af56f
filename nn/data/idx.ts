// IDX file reader/writer (the MNIST container format): a 4-byte magic (two zero
// bytes, a dtype code, the number of dims), big-endian uint32 dims, then the
// big-endian data. gzip-compressed input (magic 1f 8b) is inflated transparently.
import { readFileNamed } from '../read_file.ts';
import { gunzipSync } from 'node:zlib';

export type IdxDtype = 'u8' | 'i8' | 'i16' | 'i32' | 'f32' | 'f64';
export type IdxData = Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;

export interface IdxArray {
  dims: number[];
  dtype: IdxDtype;
  data: IdxData;
}

interface DtypeInfo {
  dtype: IdxDtype;
  code: number;
  size: number;
  name: string;
}

const DTYPES: DtypeInfo[] = [
  { dtype: 'u8', code: 0x08, size: 1, name: 'unsigned byte' },
  { dtype: 'i8', code: 0x09, size: 1, name: 'signed byte' },
  { dtype: 'i16', code: 0x0b, size: 2, name: 'short' },
  { dtype: 'i32', code: 0x0c, size: 4, name: 'int' },
  { dtype: 'f32', code: 0x0d, size: 4, name: 'float' },
  { dtype: 'f64', code: 0x0e, size: 8, name: 'double' },
];

const hex = (v: number, width = 2): string => '0x' + v.toString(16).padStart(width, '0');

/** True when `buf` starts with the gzip magic bytes 1f 8b. */
export function isGzip(buf: Uint8Array): boolean {
  return buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b;
}

/**
 * Parses an IDX buffer (optionally gzip-compressed). `name` (usually the file path)
 * is used in error messages. The returned data is a fresh copy in host order.
 */
export function parseIdx(buf: Uint8Array, name: string): IdxArray {
  if (isGzip(buf)) {
    try {
      buf = gunzipSync(buf);
    } catch (e) {
      throw new Error(`IDX ${name}: looks gzip-compressed (starts with 1f 8b) but failed to inflate: ${(e as Error).message}`);
    }
  }
  if (buf.length < 4) {
    throw new Error(`IDX ${name}: file is ${buf.length} bytes, too short for the 4-byte magic number`);
  }
  if (buf[0] !== 0 || buf[1] !== 0) {
    const magic = ((buf[0] << 24) | (buf[1] << 16) | (buf[2] << 8) | buf[3]) >>> 0;
    throw new Error(
      `IDX ${name}: wrong magic number ${hex(magic, 8)}; expected 0x0000TTNN (two zero bytes, a dtype code, ` +
        `the number of dims), e.g. 0x00000803 for ubyte images or 0x00000801 for ubyte labels`,
    );
  }
  const info = DTYPES.find((d) => d.code === buf[2]);
  if (!info) {
    throw new Error(
      `IDX ${name}: unknown dtype code ${hex(buf[2])} in the magic number; expected one of ` +
        DTYPES.map((d) => `${hex(d.code)} (${d.name})`).join(', '),
    );
  }
  const ndims = buf[3];
  if (ndims === 0) {
    throw new Error(`IDX ${name}: magic number declares 0 dimensions; expected at least 1`);
  }
  const headerBytes = 4 + 4 * ndims;
  if (buf.length < headerBytes) {
    throw new Error(`IDX ${name}: truncated header: ${ndims} dims need ${headerBytes} header bytes, file has ${buf.length}`);
  }
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const dims: number[] = [];
  let count = 1;
  for (let i = 0; i < ndims; i++) {
    const d = view.getUint32(4 + 4 * i, false);
    if (d === 0) {
      throw new Error(`IDX ${name}: dimension ${i} is 0 (dims so far: [${[...dims, d].join(', ')}]); expected every dimension >= 1`);
    }
    dims.push(d);
    count *= d;
  }
  const expectedBytes = headerBytes + count * info.size;
  if (buf.length !== expectedBytes) {
    const what = buf.length < expectedBytes ? 'truncated' : 'has trailing bytes';
    throw new Error(
      `IDX ${name}: file ${what}: dims [${dims.join(', ')}] of ${info.name} (${info.size} B) need ` +
        `${expectedBytes} bytes in all, found ${buf.length}`,
    );
  }
  return { dims, dtype: info.dtype, data: decodeBody(view, headerBytes, count, info) };
}

function decodeBody(view: DataView, off: number, count: number, info: DtypeInfo): IdxData {
  const bytes = new Uint8Array(view.buffer, view.byteOffset + off, count * info.size);
  switch (info.dtype) {
    case 'u8':
      return bytes.slice();
    case 'i8':
      return new Int8Array(bytes.slice().buffer);
    case 'i16':
      return readBigEndian(new Int16Array(count), (i) => view.getInt16(off + 2 * i, false));
    case 'i32':
      return readBigEndian(new Int32Array(count), (i) => view.getInt32(off + 4 * i, false));
    case 'f32':
      return readBigEndian(new Float32Array(count), (i) => view.getFloat32(off + 4 * i, false));
    case 'f64':
      return readBigEndian(new Float64Array(count), (i) => view.getFloat64(off + 8 * i, false));
  }
}

/** Fills `out` with element i = read(i) (a big-endian DataView read) and returns it. */
function readBigEndian<A extends Int16Array | Int32Array | Float32Array | Float64Array>(out: A, read: (i: number) => number): A {
  for (let i = 0; i < out.length; i++) out[i] = read(i);
  return out;
}

/** Reads and parses an IDX file (plain or gzip); errors name the path. */
export function readIdxFile(path: string): IdxArray {
  return parseIdx(readFileNamed('IDX', path), path);
}

/** Serialises an array as an uncompressed IDX buffer (big-endian). */
export function encodeIdx(dims: number[], dtype: IdxDtype, data: ArrayLike<number>): Uint8Array {
  const info = DTYPES.find((d) => d.dtype === dtype);
  if (!info) throw new Error(`encodeIdx: unknown dtype '${dtype}'; expected one of ${DTYPES.map((d) => d.dtype).join(', ')}`);
  if (dims.length < 1 || dims.length > 255) throw new Error(`encodeIdx: ${dims.length} dims; expected 1..255`);
  let count = 1;
  for (const [i, d] of dims.entries()) {
    if (!Number.isInteger(d) || d < 1 || d > 0xffffffff) {
      throw new Error(`encodeIdx: dims[${i}] = ${d}; expected an integer in 1..2^32-1`);
    }
    count *= d;
  }
  if (data.length !== count) {
    throw new Error(`encodeIdx: data has ${data.length} elements; dims [${dims.join(', ')}] need ${count}`);
  }
  const off = 4 + 4 * dims.length;
  const out = new Uint8Array(off + count * info.size);
  const view = new DataView(out.buffer);
  out[2] = info.code;
  out[3] = dims.length;
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  for (let i = 0; i < count; i++) {
    const v = data[i];
    switch (dtype) {
      case 'u8': view.setUint8(off + i, v); break;
      case 'i8': view.setInt8(off + i, v); break;
      case 'i16': view.setInt16(off + 2 * i, v, false); break;
      case 'i32': view.setInt32(off + 4 * i, v, false); break;
      case 'f32': view.setFloat32(off + 4 * i, v, false); break;
      case 'f64': view.setFloat64(off + 8 * i, v, false); break;
    }
  }
  return out;
}
