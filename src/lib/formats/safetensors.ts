// safetensors: 8-byte little-endian header length N, N bytes of JSON, then the data area.
// The header is validated strictly (every rule below has its own `reason`), because a corrupt download must fail with
// a message, not with a wrong model. Tensors are streamed one at a time so a large file is never held twice.

import { SafetensorsError } from '../errors.js';

/** Every dtype safetensors defines, with its size in bytes. The engine itself loads F32, F16 and BF16. */
export const SAFETENSORS_DTYPES: Record<string, number> = {
  BOOL: 1, U8: 1, I8: 1, F8_E5M2: 1, F8_E4M3: 1, I16: 2, U16: 2, F16: 2, BF16: 2,
  I32: 4, U32: 4, F32: 4, I64: 8, U64: 8, F64: 8,
};

/** The reference implementation refuses headers over 100 MB. */
export const MAX_HEADER_BYTES = 100_000_000;

export interface TensorInfo {
  name: string;
  dtype: string;
  shape: number[];
  /** Byte offsets relative to the start of the data area. */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  /** Byte offset of the data area in the file (8 + N). */
  dataStart: number;
  tensors: TensorInfo[];
  metadata: Record<string, string>;
}

export type SafetensorsReason =
  | 'truncated' | 'header-length' | 'invalid-json' | 'invalid-entry' | 'unknown-dtype' | 'bad-shape'
  | 'offsets-out-of-bounds' | 'offsets-overlap' | 'offsets-gap' | 'data-length' | 'size-mismatch' | 'bad-metadata';

function fail(file: string, reason: SafetensorsReason, message: string): never {
  throw new SafetensorsError(`${file}: ${message}. The file is corrupt or not a safetensors file: download it again.`, { file, reason });
}

/** Reads N from the first 8 bytes and checks it against the file size and the cap. */
export function readHeaderLength(first8: Uint8Array, fileSize: number, file = 'safetensors file'): number {
  if (first8.byteLength < 8 || fileSize < 8) fail(file, 'truncated', `only ${fileSize} bytes, shorter than the 8-byte header length`);
  const view = new DataView(first8.buffer, first8.byteOffset, 8);
  const n = view.getUint32(0, true) + view.getUint32(4, true) * 2 ** 32;
  if (n < 2 || n > MAX_HEADER_BYTES) fail(file, 'header-length', `header length ${n} is outside 2..${MAX_HEADER_BYTES}`);
  if (8 + n > fileSize) fail(file, 'header-length', `header length ${n} runs past the end of the ${fileSize}-byte file`);
  return n;
}

/** Parses and validates the JSON header. `headerBytes` are the N bytes after the length prefix. */
export function parseHeader(headerBytes: Uint8Array, fileSize: number, file = 'safetensors file'): SafetensorsHeader {
  const dataStart = 8 + headerBytes.byteLength;
  const dataSize = fileSize - dataStart;
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
  } catch {
    fail(file, 'invalid-json', 'the header is not valid UTF-8 JSON');
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) fail(file, 'invalid-json', 'the header is not a JSON object');
  const tensors: TensorInfo[] = [];
  let metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof value !== 'object' || value === null || Array.isArray(value) ||
          !Object.values(value).every((v) => typeof v === 'string')) {
        fail(file, 'bad-metadata', '__metadata__ must map strings to strings');
      }
      metadata = { ...(value as Record<string, string>) };
      continue;
    }
    tensors.push(parseEntry(file, name, value, dataSize));
  }
  // As the reference implementation: sorted by offsets, the tensors tile the data area exactly, from 0 to its end.
  // A header-length prefix that is off by a byte (a header ending in padding spaces still parses) moves the data area,
  // and this is what catches it.
  const sorted = [...tensors].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let end = 0;
  for (const t of sorted) {
    if (t.begin < end) fail(file, 'offsets-overlap', `tensor "${t.name}" starts at byte ${t.begin}, inside the tensor before it (which ends at ${end})`);
    if (t.begin > end) fail(file, 'offsets-gap', `tensor "${t.name}" starts at byte ${t.begin} but the tensor before it ends at ${end}; the data area must hold the tensors back to back`);
    end = t.end;
  }
  if (end !== dataSize) {
    fail(file, 'data-length', `the data area is ${dataSize} bytes but the tensors end at byte ${end}; the header length or the file size is wrong`);
  }
  return { dataStart, tensors, metadata };
}

function parseEntry(file: string, name: string, value: unknown, dataSize: number): TensorInfo {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(file, 'invalid-entry', `entry "${name}" is not an object`);
  const { dtype, shape, data_offsets: offsets } = value as Record<string, unknown>;
  if (typeof dtype !== 'string') fail(file, 'invalid-entry', `entry "${name}" has no dtype`);
  const size = SAFETENSORS_DTYPES[dtype];
  if (size === undefined) fail(file, 'unknown-dtype', `tensor "${name}" has unknown dtype "${dtype}"`);
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    fail(file, 'bad-shape', `tensor "${name}" has shape ${JSON.stringify(shape)}, not a list of non-negative integers`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
    fail(file, 'invalid-entry', `tensor "${name}" has data_offsets ${JSON.stringify(offsets)}, not two non-negative integers`);
  }
  const [begin, end] = offsets as number[];
  if (begin > end || end > dataSize) {
    fail(file, 'offsets-out-of-bounds', `tensor "${name}" spans bytes ${begin}..${end}, outside the ${dataSize}-byte data area`);
  }
  const elements = (shape as number[]).reduce((a, b) => a * b, 1);
  if (elements * size !== end - begin) {
    fail(file, 'size-mismatch', `tensor "${name}" is ${dtype}${JSON.stringify(shape)} = ${elements * size} bytes but its offsets span ${end - begin}`);
  }
  return { name, dtype, shape: shape as number[], begin, end };
}

/** Parses a whole file held in memory (adapters, tests). Returns the header and a view of each tensor's bytes. */
export function readSafetensors(bytes: Uint8Array, file = 'safetensors file'): { header: SafetensorsHeader; data: Map<string, Uint8Array> } {
  const n = readHeaderLength(bytes.subarray(0, 8), bytes.byteLength, file);
  const header = parseHeader(bytes.subarray(8, 8 + n), bytes.byteLength, file);
  const data = new Map<string, Uint8Array>();
  for (const t of header.tensors) data.set(t.name, bytes.subarray(header.dataStart + t.begin, header.dataStart + t.end));
  return { header, data };
}

/**
 * Streams a file: parses the header as soon as its bytes arrive, then hands each tensor's bytes to `onTensor`
 * in file order, holding at most one tensor (plus one incoming chunk) in memory.
 */
export async function streamSafetensors(
  chunks: AsyncIterable<Uint8Array>,
  fileSize: number,
  onHeader: (h: SafetensorsHeader) => void | Promise<void>,
  onTensor: (t: TensorInfo, bytes: Uint8Array) => void | Promise<void>,
  file = 'safetensors file',
): Promise<void> {
  let pos = 0; // bytes of the file consumed so far
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  let want = 8;
  let stage: 'len' | 'header' | 'data' = 'len';
  let header: SafetensorsHeader | undefined;
  let order: TensorInfo[] = [];
  let next = 0;
  let current: Uint8Array | undefined; // bytes of order[next], filled as they arrive
  let filled = 0;

  const take = (n: number): Uint8Array => {
    const out = new Uint8Array(n);
    let o = 0;
    while (o < n) {
      const c = pending[0];
      const k = Math.min(c.byteLength, n - o);
      out.set(c.subarray(0, k), o);
      o += k;
      if (k === c.byteLength) pending.shift(); else pending[0] = c.subarray(k);
    }
    pendingBytes -= n;
    return out;
  };

  for await (const chunk of chunks) {
    if (stage !== 'data') {
      pending.push(chunk);
      pendingBytes += chunk.byteLength;
      if (stage === 'len' && pendingBytes >= 8) {
        want = readHeaderLength(take(8), fileSize, file);
        stage = 'header';
      }
      if (stage === 'header' && pendingBytes >= want) {
        header = parseHeader(take(want), fileSize, file);
        await onHeader(header);
        order = [...header.tensors].sort((a, b) => a.begin - b.begin);
        pos = header.dataStart;
        stage = 'data';
        const rest = pending;
        pending = [];
        pendingBytes = 0;
        for (const c of rest) await feed(c);
      }
      continue;
    }
    await feed(chunk);
  }
  if (stage !== 'data') fail(file, 'truncated', `the file ended inside the header`);
  await emitEmpty();
  if (next < order.length) fail(file, 'truncated', `the file ended before tensor "${order[next].name}" was complete`);
  if (pos !== fileSize) fail(file, 'data-length', `the stream held ${pos} bytes but the file size is ${fileSize}`);

  /** Zero-size tensors take no bytes: they are complete as soon as the stream reaches their offset. */
  async function emitEmpty(): Promise<void> {
    while (next < order.length && order[next].begin === order[next].end && header!.dataStart + order[next].begin <= pos) {
      await onTensor(order[next++], new Uint8Array(0));
    }
  }

  async function feed(chunk: Uint8Array): Promise<void> {
    let off = 0;
    await emitEmpty();
    while (off < chunk.byteLength && next < order.length) {
      const t = order[next];
      const tEnd = header!.dataStart + t.end;
      current ??= new Uint8Array(t.end - t.begin);
      const k = Math.min(tEnd - pos, chunk.byteLength - off);
      current.set(chunk.subarray(off, off + k), filled);
      filled += k;
      off += k;
      pos += k;
      if (pos === tEnd) {
        const bytes = current;
        current = undefined;
        filled = 0;
        next++;
        await onTensor(t, bytes);
        await emitEmpty();
      }
    }
    pos += chunk.byteLength - off;
  }
}

export interface TensorToWrite {
  name: string;
  dtype: string;
  shape: number[];
  data: Uint8Array;
}

/** Writes a safetensors file: tensors in the given order, header padded with spaces to a multiple of 8 bytes. */
export function writeSafetensors(tensors: TensorToWrite[], metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    const elements = t.shape.reduce((a, b) => a * b, 1);
    const expected = elements * (SAFETENSORS_DTYPES[t.dtype] ?? NaN);
    if (expected !== t.data.byteLength) {
      throw new SafetensorsError(`cannot write "${t.name}": ${t.dtype}${JSON.stringify(t.shape)} needs ${expected} bytes, got ${t.data.byteLength}`, { reason: 'size-mismatch' });
    }
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.byteLength / 8) * 8;
  const headerBytes = new Uint8Array(padded).fill(0x20);
  headerBytes.set(json);
  json = headerBytes;
  const out = new Uint8Array(8 + padded + offset);
  new DataView(out.buffer).setUint32(0, padded, true);
  out.set(json, 8);
  let o = 8 + padded;
  for (const t of tensors) {
    out.set(t.data, o);
    o += t.data.byteLength;
  }
  return out;
}
