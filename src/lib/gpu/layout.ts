// Records that WGSL and TypeScript share, declared once: the per-call Step block, AdamW's per-step block, the dropout
// seed, a token row's info and a top-k result row. From one declaration come the WGSL struct (uniform blocks) or the
// word-offset constants (records read from an array<u32>), the packer that writes them and the decoder that reads
// them back, so no side fills or reads a field by position.
//
//   uniform block:  struct Step { rows: u32, seqs: u32, ... }         (padded to 16 bytes)
//   word record:    const RI_SLOT: u32 = 0u; ... const RI: u32 = 4u;  (rowInfo[RI * m + RI_POS])
//   record + list:  [lse, count, (logit, id) x TOPK]                  (a header, then `count` entries)

import type { Scalar } from './program.js';

export type Fields = Record<string, Scalar>;

export interface Layout<F extends Fields = Fields, E extends Fields = Fields> {
  /** The WGSL struct's name (uniform blocks) or the prefix of the word-offset constants (records in arrays). */
  name: string;
  fields: F;
  /** A list of entries after the header (the top-k row's candidates). */
  list?: { fields: E; count: number };
}

export function layout<F extends Fields, E extends Fields = Record<never, Scalar>>(name: string, fields: F, list?: { fields: E; count: number }): Layout<F, E> {
  return { name, fields, list };
}

/** 4-byte words of one record: the header and its list. */
export function recordWords(l: Layout): number {
  return Object.keys(l.fields).length + (l.list ? l.list.count * Object.keys(l.list.fields).length : 0);
}

/** The WGSL struct of a uniform block, padded to 16 bytes. */
export function structCode(l: Layout): string {
  if (l.list) throw new Error(`layout ${l.name}: a uniform block has no list`);
  const fields = Object.entries(l.fields).map(([n, t]) => `${n}: ${t}`);
  for (let i = 0; fields.length % 4 !== 0; i++) fields.push(`pad${i}_: u32`);
  return `struct ${l.name} { ${fields.join(', ')} }`;
}

/** Word offsets of a record read from an array<u32>: PREFIX_FIELD for each field, PREFIX for the record's words. */
export function offsetConstants(l: Layout): Record<string, number> {
  const c: Record<string, number> = { [l.name]: recordWords(l) };
  const constName = (f: string) => `${l.name}_${f.replace(/[A-Z]/g, (x) => `_${x}`).toUpperCase()}`;
  Object.keys(l.fields).forEach((f, i) => { c[constName(f)] = i; });
  if (l.list) {
    c[`${l.name}_LIST`] = Object.keys(l.fields).length;
    c[`${l.name}_ENTRY`] = Object.keys(l.list.fields).length;
    Object.keys(l.list.fields).forEach((f, i) => { c[constName(`entry_${f}`)] = i; });
  }
  return c;
}

type Values<F extends Fields> = { [K in keyof F]: number };

function put(fields: Fields, values: Record<string, number>, u: Uint32Array, f: Float32Array, at: number, what: string): void {
  for (const name of Object.keys(values)) if (!(name in fields)) throw new Error(`${what} has no field "${name}"`);
  Object.entries(fields).forEach(([name, type], i) => {
    const v = values[name];
    if (v === undefined) throw new Error(`${what}: field "${name}" has no value`);
    if (type === 'f32') f[at + i] = v;
    else u[at + i] = v >>> 0;
  });
}

function get<F extends Fields>(fields: F, u: Uint32Array, f: Float32Array, at: number): Values<F> {
  const out: Record<string, number> = {};
  Object.entries(fields).forEach(([name, type], i) => { out[name] = type === 'f32' ? f[at + i] : u[at + i]; });
  return out as Values<F>;
}

/** A uniform block's bytes, every field by name (unknown or missing ones throw), padded to 16 bytes. */
export function packBlock<F extends Fields>(l: Layout<F>, values: Values<F>): Uint32Array {
  const words = Math.ceil(Object.keys(l.fields).length / 4) * 4;
  const u = new Uint32Array(words);
  put(l.fields, values, u, new Float32Array(u.buffer), 0, `layout ${l.name}`);
  return u;
}

/** `n` records (headers only) packed one after another, record i from `values(i)`. */
export function packRecords<F extends Fields>(l: Layout<F>, n: number, values: (i: number) => Values<F>): Uint32Array {
  const w = recordWords(l);
  const u = new Uint32Array(n * w);
  const f = new Float32Array(u.buffer);
  for (let i = 0; i < n; i++) put(l.fields, values(i), u, f, i * w, `layout ${l.name}`);
  return u;
}

/** Record `i` of `words`: its header fields and its list's entries. */
export function readRecord<F extends Fields, E extends Fields>(l: Layout<F, E>, words: Uint32Array, i: number): { header: Values<F>; list: Values<E>[] } {
  const f = new Float32Array(words.buffer, words.byteOffset, words.length);
  const base = i * recordWords(l);
  const header = get(l.fields, words, f, base);
  const list: Values<E>[] = [];
  if (l.list) {
    const n = Object.keys(l.list.fields).length;
    const first = base + Object.keys(l.fields).length;
    for (let k = 0; k < l.list.count; k++) list.push(get(l.list.fields, words, f, first + k * n));
  }
  return { header, list };
}
