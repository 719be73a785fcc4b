// Our GGML quantizers (GGUF export) write the blocks ggml's reference quantizers write for the same rows, bit for
// bit: tests/fixtures/ggml-quant-vectors.json holds rows and the blocks quantize_row_<type>_ref made of them
// (scripts/gguf/ggml-vectors.py, ggml's own library). And what they write dequantizes near the input.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { quantize } from '../../src/lib/formats/gguf-quantize.js';
import { dequantize, type GgmlType } from '../../src/lib/formats/gguf-tensors.js';

interface Vector { type: number; elements: number; blockElements: number; blockBytes: number; input: string; blocks: string }
const doc = JSON.parse(readFileSync(new URL('../fixtures/ggml-quant-vectors.json', import.meta.url), 'utf8')) as { vectors: Record<string, Vector> };
const MEASURED: Record<string, number> = { Q8_0: 0.0119, Q6_K: 0.0319, Q5_0: 0.0859, Q4_K: 0.0728 };
const bytes = (b64: string) => new Uint8Array(Buffer.from(b64, 'base64'));

describe('GGML quantizers against ggml', () => {
  it.each(Object.entries(doc.vectors))('%s: the same bytes as quantize_row_*_ref', (name, v) => {
    const x = new Float32Array(bytes(v.input).buffer);
    const want = bytes(v.blocks);
    const got = quantize(v.type as GgmlType, x);
    expect(got.length).toBe(want.length);
    const differ: number[] = [];
    for (let b = 0; b < want.length / v.blockBytes; b++) {
      if (!Buffer.from(got.subarray(b * v.blockBytes, (b + 1) * v.blockBytes)).equals(Buffer.from(want.subarray(b * v.blockBytes, (b + 1) * v.blockBytes)))) differ.push(b);
    }
    expect(differ, `${name}: blocks that differ`).toEqual([]);
    // What it wrote reads back near the input. Relative RMS error measured on these rows (outliers included): Q8_0
    // 0.0119, Q6_K 0.0319, Q5_0 0.0859, Q4_K 0.0728; bounded at 1.25x.
    const back = dequantize(v.type as GgmlType, got, x.length);
    let err = 0, norm = 0;
    for (let i = 0; i < x.length; i++) { err += (back[i] - x[i]) ** 2; norm += x[i] ** 2; }
    console.log(`${name}: relative RMS error ${Math.sqrt(err / norm).toFixed(4)}`);
    expect(Math.sqrt(err / norm)).toBeLessThan(1.25 * MEASURED[name]);
  });
});
