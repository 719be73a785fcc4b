// A GGUF v3 file from metadata and tensors (ggml/docs/gguf.md): "GGUF", version, tensor and key counts; each key with
// its value type and value; each tensor's name, dimensions (ne[0], the row length, first), type and offset; then the
// data, every tensor aligned to general.alignment (32). Written as a list of chunks (a Blob's parts, or writes to a
// file), so a model is never copied into one buffer.

import type { GgmlType } from './gguf-tensors.js';

/** A metadata value with its GGUF type. Arrays hold one element type. */
export type GgufValue =
  | { type: 'u32' | 'i32' | 'f32' | 'u64'; value: number }
  | { type: 'bool'; value: boolean }
  | { type: 'str'; value: string }
  | { type: 'str[]'; value: readonly string[] }
  | { type: 'i32[]' | 'f32[]'; value: ArrayLike<number> };

export interface GgufTensorData {
  name: string;
  /** ne[0] (the row length) first, as GGUF stores them. */
  dims: readonly number[];
  type: GgmlType;
  data: Uint8Array;
}

export const GGUF_ALIGNMENT = 32;
const TYPE_ID = { u32: 4, i32: 5, f32: 6, bool: 7, str: 8, arr: 9, u64: 10 } as const;

/** Little-endian bytes, grown as needed. */
class Bytes {
  #buf = new Uint8Array(1 << 16);
  #view = new DataView(this.#buf.buffer);
  length = 0;

  #room(n: number): void {
    if (this.length + n <= this.#buf.length) return;
    const next = new Uint8Array(Math.max(this.#buf.length * 2, this.length + n));
    next.set(this.#buf.subarray(0, this.length));
    this.#buf = next;
    this.#view = new DataView(next.buffer);
  }
  u32(v: number): void { this.#room(4); this.#view.setUint32(this.length, v, true); this.length += 4; }
  i32(v: number): void { this.#room(4); this.#view.setInt32(this.length, v, true); this.length += 4; }
  f32(v: number): void { this.#room(4); this.#view.setFloat32(this.length, v, true); this.length += 4; }
  u64(v: number): void { this.#room(8); this.#view.setBigUint64(this.length, BigInt(v), true); this.length += 8; }
  u8(v: number): void { this.#room(1); this.#buf[this.length++] = v; }
  str(s: string): void {
    const b = new TextEncoder().encode(s);
    this.u64(b.length);
    this.#room(b.length);
    this.#buf.set(b, this.length);
    this.length += b.length;
  }
  pad(to: number): void { while (this.length % to) this.u8(0); }
  bytes(): Uint8Array { return this.#buf.slice(0, this.length); }
}

function putValue(b: Bytes, v: GgufValue): void {
  switch (v.type) {
    case 'u32': b.u32(TYPE_ID.u32); b.u32(v.value); break;
    case 'i32': b.u32(TYPE_ID.i32); b.i32(v.value); break;
    case 'f32': b.u32(TYPE_ID.f32); b.f32(v.value); break;
    case 'u64': b.u32(TYPE_ID.u64); b.u64(v.value); break;
    case 'bool': b.u32(TYPE_ID.bool); b.u8(v.value ? 1 : 0); break;
    case 'str': b.u32(TYPE_ID.str); b.str(v.value); break;
    case 'str[]':
      b.u32(TYPE_ID.arr); b.u32(TYPE_ID.str); b.u64(v.value.length);
      for (const s of v.value) b.str(s);
      break;
    case 'i32[]':
    case 'f32[]':
      b.u32(TYPE_ID.arr); b.u32(v.type === 'i32[]' ? TYPE_ID.i32 : TYPE_ID.f32); b.u64(v.value.length);
      for (let i = 0; i < v.value.length; i++) (v.type === 'i32[]' ? b.i32(v.value[i]) : b.f32(v.value[i]));
      break;
  }
}

/** The file as chunks: the header (metadata and tensor infos, padded), then each tensor's data and its padding. */
export function ggufChunks(metadata: [string, GgufValue][], tensors: readonly GgufTensorData[]): Uint8Array[] {
  const names = new Set<string>();
  for (const t of tensors) {
    if (names.has(t.name)) throw new Error(`GGUF writer: tensor ${t.name} is listed twice`);
    names.add(t.name);
  }
  const head = new Bytes();
  head.u32(0x46554747); // "GGUF"
  head.u32(3);
  head.u64(tensors.length);
  head.u64(metadata.length + 1);
  head.str('general.alignment');
  putValue(head, { type: 'u32', value: GGUF_ALIGNMENT });
  for (const [key, v] of metadata) {
    head.str(key);
    putValue(head, v);
  }
  let offset = 0;
  for (const t of tensors) {
    head.str(t.name);
    head.u32(t.dims.length);
    for (const d of t.dims) head.u64(d);
    head.u32(t.type);
    head.u64(offset);
    offset += Math.ceil(t.data.byteLength / GGUF_ALIGNMENT) * GGUF_ALIGNMENT;
  }
  head.pad(GGUF_ALIGNMENT);
  const chunks = [head.bytes()];
  for (const t of tensors) {
    chunks.push(t.data);
    const pad = (GGUF_ALIGNMENT - (t.data.byteLength % GGUF_ALIGNMENT)) % GGUF_ALIGNMENT;
    if (pad) chunks.push(new Uint8Array(pad));
  }
  return chunks;
}
