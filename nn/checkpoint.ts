// Checkpoints in the safetensors format: an 8-byte little-endian header length, a
// JSON header ({name: {dtype, shape, data_offsets}}, plus "__metadata__" with
// string values), padded with spaces to a multiple of 8, then the little-endian
// tensor bytes laid out contiguously in sorted-name order. Files are written
// atomically (temp file, fsync, rename).
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { randomBytes } from 'node:crypto';
import { readFileNamed } from './read_file.ts';

export type SafetensorsDtype = 'F32' | 'I32' | 'F64' | 'I64' | 'U8';
export type NamedArrayData = Float32Array | Int32Array | Float64Array | BigInt64Array | Uint8Array;

export interface NamedArray {
  dtype: SafetensorsDtype;
  shape: number[];
  data: NamedArrayData;
}

export interface Safetensors {
  tensors: Record<string, NamedArray>;
  metadata: Record<string, string>;
}

interface DtypeInfo {
  size: number;
  ctor: { new (buf: ArrayBuffer): NamedArrayData; name: string };
}

const DTYPES: Record<SafetensorsDtype, DtypeInfo> = {
  F32: { size: 4, ctor: Float32Array },
  I32: { size: 4, ctor: Int32Array },
  F64: { size: 8, ctor: Float64Array },
  I64: { size: 8, ctor: BigInt64Array },
  U8: { size: 1, ctor: Uint8Array },
};

const isDtype = (d: unknown): d is SafetensorsDtype => typeof d === 'string' && Object.hasOwn(DTYPES, d);

// NOTE: safetensors data is little-endian. On little-endian hosts (all Node targets
// in practice) typed-array bytes are copied as-is; otherwise bytes are swapped.
const HOST_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function swapBytes(bytes: Uint8Array, size: number): void {
  for (let i = 0; i < bytes.length; i += size) bytes.subarray(i, i + size).reverse();
}

const MAX_HEADER = 100 * 1024 * 1024;
const META_KEY = '__metadata__';

function numel(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function checkShape(shape: unknown, what: string): number[] {
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new Error(`${what}: shape ${JSON.stringify(shape)} is not an array of non-negative integers`);
  }
  return shape as number[];
}

/** Serialises named tensors (and optional string metadata) as a safetensors byte buffer. */
export function encodeSafetensors(tensors: Record<string, NamedArray>, metadata?: Record<string, string>): Uint8Array {
  const names = Object.keys(tensors).sort();
  // Null-prototype records so that a tensor named '__proto__' is an ordinary key.
  const header: Record<string, unknown> = Object.create(null);
  if (metadata && Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new Error(`encodeSafetensors: metadata '${k}' is ${typeof v}; safetensors metadata values must be strings`);
    }
    header[META_KEY] = Object.assign(Object.create(null), metadata);
  }
  let offset = 0;
  for (const name of names) {
    const t = tensors[name];
    if (name === META_KEY || name.length === 0) throw new Error(`encodeSafetensors: invalid tensor name '${name}'`);
    if (!isDtype(t.dtype)) {
      throw new Error(`encodeSafetensors: tensor '${name}' has dtype '${String(t.dtype)}'; expected one of ${Object.keys(DTYPES).join(', ')}`);
    }
    const info = DTYPES[t.dtype];
    checkShape(t.shape, `encodeSafetensors: tensor '${name}'`);
    if (!(t.data instanceof info.ctor)) {
      throw new Error(`encodeSafetensors: tensor '${name}' is ${t.dtype} but its data is a ${t.data.constructor.name}; expected ${info.ctor.name}`);
    }
    if (t.data.length !== numel(t.shape)) {
      throw new Error(`encodeSafetensors: tensor '${name}' has ${t.data.length} elements; shape [${t.shape.join(', ')}] needs ${numel(t.shape)}`);
    }
    const nbytes = t.data.length * info.size;
    header[name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + nbytes] };
    offset += nbytes;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const out = new Uint8Array(8 + padded + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  let at = 8 + padded;
  for (const name of names) {
    const d = tensors[name].data;
    const bytes = new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
    out.set(bytes, at);
    if (!HOST_LE) swapBytes(out.subarray(at, at + bytes.length), DTYPES[tensors[name].dtype].size);
    at += bytes.length;
  }
  return out;
}

/** Parses a safetensors buffer; `source` (file path or label) names it in errors. */
export function decodeSafetensors(bytes: Uint8Array, source: string): Safetensors {
  const fail = (msg: string): never => {
    throw new Error(`safetensors ${source}: ${msg}`);
  };
  if (bytes.length < 8) fail(`truncated: ${bytes.length} bytes, fewer than the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const hlen64 = view.getBigUint64(0, true);
  if (hlen64 > BigInt(MAX_HEADER)) fail(`corrupt header length ${hlen64} (limit ${MAX_HEADER}); not a safetensors file?`);
  const hlen = Number(hlen64);
  if (8 + hlen > bytes.length) fail(`truncated: header length is ${hlen} bytes but only ${bytes.length - 8} bytes follow`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + hlen));
  } catch {
    return fail(`corrupt header: ${hlen} header bytes are not valid UTF-8`);
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    return fail(`corrupt header: invalid JSON (${(e as Error).message}); header starts ${JSON.stringify(text.slice(0, 60))}`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail(`corrupt header: expected a JSON object, found ${JSON.stringify(text.slice(0, 60))}`);
  const dataStart = 8 + hlen;
  const dataLen = bytes.length - dataStart;
  const metadata: Record<string, string> = Object.create(null);
  const entries: { name: string; dtype: SafetensorsDtype; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === META_KEY) {
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail(`__metadata__ must be an object of strings`);
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`__metadata__ '${k}' is ${JSON.stringify(v)}; metadata values must be strings`);
        metadata[k] = v as string;
      }
      continue;
    }
    if (typeof raw !== 'object' || raw === null) fail(`tensor '${name}': header entry is ${JSON.stringify(raw)}, expected {dtype, shape, data_offsets}`);
    const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (!isDtype(e.dtype)) fail(`tensor '${name}': unsupported dtype ${JSON.stringify(e.dtype)}; expected one of ${Object.keys(DTYPES).join(', ')}`);
    const shape = checkShape(e.shape, `safetensors ${source}: tensor '${name}'`);
    const off = e.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((v) => Number.isSafeInteger(v) && v >= 0) || off[0] > off[1]) {
      fail(`tensor '${name}': data_offsets ${JSON.stringify(off)}; expected [begin, end] with 0 <= begin <= end`);
    }
    const [begin, end] = off as number[];
    if (end > dataLen) fail(`tensor '${name}': data_offsets [${begin}, ${end}] out of range; the data section has ${dataLen} bytes (truncated file?)`);
    const dtype = e.dtype as SafetensorsDtype;
    const want = numel(shape) * DTYPES[dtype].size;
    if (end - begin !== want) {
      fail(`tensor '${name}': ${dtype} shape [${shape.join(', ')}] needs ${want} bytes but data_offsets [${begin}, ${end}] span ${end - begin}`);
    }
    entries.push({ name, dtype, shape, begin, end });
  }
  // The data section must be covered exactly: no overlaps, no holes, no trailing bytes.
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let prev = '(start)';
  for (const e of sorted) {
    if (e.begin < cursor) fail(`tensor '${e.name}': data_offsets [${e.begin}, ${e.end}] overlap tensor '${prev}' (which ends at ${cursor})`);
    if (e.begin > cursor) fail(`tensor '${e.name}': hole of ${e.begin - cursor} bytes before it (data_offsets start at ${e.begin}, previous data ends at ${cursor})`);
    cursor = e.end;
    prev = e.name;
  }
  if (cursor !== dataLen) fail(`${dataLen - cursor} trailing bytes after the last tensor (data section ${dataLen} bytes, tensors cover ${cursor})`);
  const tensors: Record<string, NamedArray> = Object.create(null);
  for (const e of entries) {
    const info = DTYPES[e.dtype];
    // Copy into a fresh, aligned buffer (file offsets need not be aligned). Not
    // bytes.slice(): on a Node Buffer that returns a view into a shared pool.
    const copy = new Uint8Array(e.end - e.begin);
    copy.set(bytes.subarray(dataStart + e.begin, dataStart + e.end));
    if (!HOST_LE) swapBytes(copy, info.size);
    tensors[e.name] = { dtype: e.dtype, shape: e.shape, data: new info.ctor(copy.buffer) };
  }
  return { tensors, metadata };
}

export interface SaveOptions {
  /** Test hook: write only this many bytes of the temp file, then throw. */
  _failAfterBytes?: number;
}

/**
 * Writes a checkpoint atomically: the bytes go to `path.tmp-<pid>-<rand>`, which is
 * fsynced and renamed over `path`, so a crash never leaves a half-written `path`.
 */
export function saveCheckpointFile(
  path: string,
  tensors: Record<string, NamedArray>,
  metadata?: Record<string, string>,
  opts: SaveOptions = {},
): void {
  const bytes = encodeSafetensors(tensors, metadata);
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  let fd: number | undefined;
  try {
    fd = openSync(tmp, 'wx');
    const limit = opts._failAfterBytes ?? Infinity;
    let at = 0;
    const CHUNK = 1 << 24;
    while (at < bytes.length) {
      const n = Math.min(CHUNK, bytes.length - at, Math.max(0, limit - at));
      if (n === 0) throw new Error(`simulated failure after ${at} bytes (_failAfterBytes)`);
      at += writeSync(fd, bytes, at, n);
    }
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
  } catch (e) {
    if (fd !== undefined) {
      try {
        closeSync(fd);
      } catch {
        /* already failing */
      }
    }
    try {
      unlinkSync(tmp);
    } catch {
      /* the temp file may not exist */
    }
    throw new Error(`saveCheckpointFile ${path}: write failed, previous file (if any) left intact: ${(e as Error).message}`);
  }
  // Persist the rename itself; not supported on every platform, so best effort.
  try {
    const dfd = openSync(dirname(path), 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch {
    /* directory fsync unsupported (e.g. Windows) */
  }
}

/** Reads and decodes a safetensors checkpoint file. */
export function loadCheckpointFile(path: string): Safetensors {
  return decodeSafetensors(readFileNamed('loadCheckpointFile', path), path);
}

/**
 * Checks that `loaded` holds every expected tensor with the same shape and dtype.
 * Unexpected extra tensors are an error unless `allowUnexpected`. Lists every problem.
 */
export function checkCompatible(
  expected: Record<string, { shape: number[]; dtype: string }>,
  loaded: Record<string, { shape: number[]; dtype: string }>,
  opts: { allowUnexpected?: boolean; source?: string } = {},
): void {
  const problems: string[] = [];
  for (const [name, want] of Object.entries(expected)) {
    const got = loaded[name];
    if (!got) {
      problems.push(`missing tensor '${name}' (expected ${want.dtype} [${want.shape.join(', ')}])`);
      continue;
    }
    if (got.dtype !== want.dtype) problems.push(`tensor '${name}': dtype ${got.dtype}, expected ${want.dtype}`);
    if (got.shape.length !== want.shape.length || got.shape.some((d, i) => d !== want.shape[i])) {
      problems.push(`tensor '${name}': shape [${got.shape.join(', ')}], expected [${want.shape.join(', ')}]`);
    }
  }
  if (!opts.allowUnexpected) {
    for (const name of Object.keys(loaded)) {
      if (!Object.hasOwn(expected, name)) problems.push(`unexpected tensor '${name}'`);
    }
  }
  if (problems.length > 0) {
    const shown = problems.slice(0, 10).join('; ') + (problems.length > 10 ? `; ... and ${problems.length - 10} more` : '');
    throw new Error(`checkpoint${opts.source ? ' ' + opts.source : ''} incompatible: ${shown}`);
  }
}
