import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SafetensorsError } from '../../src/lib/errors.js';
import { decodeToF32, encodeFromF32, f16ToF32, f32ToBF16, f32ToF16 } from '../../src/lib/formats/dtype.js';
import { readSafetensors, streamSafetensors, writeSafetensors, type SafetensorsReason } from '../../src/lib/formats/safetensors.js';
import { Rng } from '../../src/lib/util/rng.js';

function headerFile(header: unknown, dataBytes = 0, rawJson?: string): Uint8Array {
  const json = new TextEncoder().encode(rawJson ?? JSON.stringify(header));
  const out = new Uint8Array(8 + json.byteLength + dataBytes);
  new DataView(out.buffer).setUint32(0, json.byteLength, true);
  out.set(json, 8);
  return out;
}

function reasonOf(f: () => unknown): SafetensorsReason | 'none' | 'other' {
  try {
    f();
    return 'none';
  } catch (e) {
    return e instanceof SafetensorsError ? (e.details.reason as SafetensorsReason) : 'other';
  }
}

describe('safetensors writer and reader', () => {
  it('round-trips F32, F16 and BF16 tensors with metadata', () => {
    const values = [0, 1, -2.5, 65504, 1e-3, -0.1];
    const tensors = (['F32', 'F16', 'BF16'] as const).map((dtype, i) => ({
      name: `t${i}`, dtype, shape: [2, 3], data: encodeFromF32(values, dtype),
    }));
    const file = writeSafetensors(tensors, { format: 'pt' });
    const { header, data } = readSafetensors(file);
    expect(header.metadata).toEqual({ format: 'pt' });
    expect(header.dataStart % 8).toBe(0);
    for (const t of tensors) {
      expect(data.get(t.name)).toEqual(t.data);
      const back = decodeToF32(data.get(t.name)!, t.dtype);
      values.forEach((v, i) => expect(Math.abs(back[i] - v)).toBeLessThanOrEqual(Math.abs(v) * (t.dtype === 'BF16' ? 4e-3 : 5e-4) + 1e-7));
    }
  });

  it('rounds f16 and bf16 to nearest even like torch', () => {
    expect(f32ToF16(1 + 2 ** -11)).toBe(0x3c00); // tie -> even
    expect(f32ToF16(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(f16ToF32(f32ToF16(2 ** -24))).toBe(2 ** -24); // smallest subnormal
    expect(f32ToF16(70000)).toBe(0x7c00); // overflow -> inf
    expect(f32ToBF16(1 + 2 ** -8)).toBe(0x3f80);
    expect(f32ToBF16(1 + 3 * 2 ** -8)).toBe(0x3f82);
  });

  it('reads the real adapter files in the fixtures', () => {
    for (const dir of ['smollm2-360m-instruct-r8-qv', 'qwen25-05b-instruct-r8-qv']) {
      const bytes = new Uint8Array(readFileSync(new URL(`../fixtures/adapters/${dir}/adapter_model.safetensors`, import.meta.url)));
      const { header } = readSafetensors(bytes);
      expect(header.tensors.length).toBe(dir.startsWith('smollm2') ? 128 : 96);
      const a = header.tensors.find((t) => t.name.endsWith('layers.0.self_attn.q_proj.lora_A.weight'))!;
      expect(a.dtype).toBe('F32');
      expect(a.shape[0]).toBe(8);
    }
  });

  it('streams tensors in file order whatever the chunk size', async () => {
    const rng = new Rng(5);
    const tensors = Array.from({ length: 5 }, (_, i) => ({
      name: `w${i}`, dtype: 'F32', shape: [i + 1, 7],
      data: encodeFromF32(Array.from({ length: (i + 1) * 7 }, () => rng.normal()), 'F32'),
    }));
    const file = writeSafetensors(tensors);
    for (const chunk of [1, 3, 7, 64, 1 << 20]) {
      const got: string[] = [];
      await streamSafetensors((async function* () {
        for (let o = 0; o < file.byteLength; o += chunk) yield file.subarray(o, o + chunk);
      })(), file.byteLength, () => {}, (t, b) => {
        got.push(t.name);
        expect(b).toEqual(tensors.find((x) => x.name === t.name)!.data);
      });
      expect(got).toEqual(tensors.map((t) => t.name));
    }
  });

  it('throws a truncated error when the stream ends early', async () => {
    const file = writeSafetensors([{ name: 'a', dtype: 'F32', shape: [4], data: new Uint8Array(16) }]);
    const cut = file.subarray(0, file.byteLength - 4);
    await expect(streamSafetensors((async function* () { yield cut; })(), file.byteLength, () => {}, () => {}))
      .rejects.toMatchObject({ name: 'SafetensorsError', details: { reason: 'truncated' } });
  });
});

describe('safetensors header validation', () => {
  const ok = { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
  const cases: [string, () => Uint8Array, SafetensorsReason][] = [
    ['file shorter than 8 bytes', () => new Uint8Array(5), 'truncated'],
    ['header length past the file', () => { const f = headerFile(ok, 8); new DataView(f.buffer).setUint32(0, 9999, true); return f; }, 'header-length'],
    ['header length over the 100 MB cap', () => { const f = headerFile(ok, 8); new DataView(f.buffer).setUint32(4, 1, true); return f; }, 'header-length'],
    ['header not JSON', () => headerFile(null, 0, '{"a": '), 'invalid-json'],
    ['header not UTF-8', () => { const f = headerFile(null, 0, '{"\u00e9":1}'); f[11] = 0xff; return f; }, 'invalid-json'],
    ['header a JSON array', () => headerFile([1, 2]), 'invalid-json'],
    ['entry not an object', () => headerFile({ a: 3 }), 'invalid-entry'],
    ['unknown dtype', () => headerFile({ a: { dtype: 'F12', shape: [2], data_offsets: [0, 8] } }, 8), 'unknown-dtype'],
    ['negative dimension', () => headerFile({ a: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } }, 8), 'bad-shape'],
    ['offsets past the data area', () => headerFile({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, 4), 'offsets-out-of-bounds'],
    ['offsets reversed', () => headerFile({ a: { dtype: 'F32', shape: [0], data_offsets: [8, 0] } }, 8), 'offsets-out-of-bounds'],
    ['overlapping tensors', () => headerFile({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, 12), 'offsets-overlap'],
    ['size not shape x dtype', () => headerFile({ a: { dtype: 'F16', shape: [3], data_offsets: [0, 8] } }, 8), 'size-mismatch'],
    ['metadata not strings', () => headerFile({ __metadata__: { format: 1 } }), 'bad-metadata'],
  ];
  it.each(cases)('%s', (_name, make, reason) => {
    expect(reasonOf(() => readSafetensors(make()))).toBe(reason);
  });

  it('a fuzz loop of mutated headers never crashes or hangs', () => {
    const rng = new Rng(99);
    const base = writeSafetensors([
      { name: 'model.layers.0.mlp.up_proj.weight', dtype: 'F16', shape: [3, 5], data: new Uint8Array(30) },
      { name: 'b', dtype: 'BF16', shape: [7], data: new Uint8Array(14) },
    ], { format: 'pt' });
    const headerLen = new DataView(base.buffer).getUint32(0, true);
    const counts: Record<string, number> = {};
    const t0 = Date.now();
    for (let i = 0; i < 3000; i++) {
      const f = base.slice();
      const edits = 1 + rng.int(4);
      for (let e = 0; e < edits; e++) {
        const at = rng.int(8 + headerLen);
        f[at] = rng.next() < 0.5 ? rng.int(256) : '0123456789[]{}",:-.e'.charCodeAt(rng.int(20));
      }
      const file = rng.next() < 0.1 ? f.subarray(0, rng.int(f.byteLength)) : f;
      const r = reasonOf(() => readSafetensors(file));
      expect(r).not.toBe('other');
      counts[r] = (counts[r] ?? 0) + 1;
    }
    expect(Date.now() - t0).toBeLessThan(20_000);
    expect(Object.keys(counts).length).toBeGreaterThan(4);
  });
});
