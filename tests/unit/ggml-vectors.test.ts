// The GGML block types of llama.cpp's usual files (Q2_K ... Q5_K, Q5_0, Q5_1, IQ4_NL, IQ4_XS), dequantized bit for bit
// as ggml itself does: tests/fixtures/ggml-vectors.json holds blocks made by ggml's reference quantizers and the floats
// its dequantize_row_* gives for them (scripts/gguf/ggml-vectors.py, through ctypes on node-llama-cpp's prebuilt
// libggml-base.so). Each type's size rule refuses rows that are not whole blocks.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { dequantize, ggmlTypeName, isSupportedType, tensorBytes, type GgmlType } from '../../src/lib/formats/gguf-tensors.js';

interface Vector { type: number; elements: number; blockElements: number; blockBytes: number; blocks: string; floats: string }
const doc = JSON.parse(readFileSync(new URL('../fixtures/ggml-vectors.json', import.meta.url), 'utf8')) as { made_by: string; vectors: Record<string, Vector> };
const bytes = (b64: string) => new Uint8Array(Buffer.from(b64, 'base64'));

describe('GGML block types against ggml\'s own dequantization', () => {
  it('covers the types llama.cpp\'s K-quant and IQ4 files use', () => {
    expect(Object.keys(doc.vectors).sort()).toEqual(['IQ4_NL', 'IQ4_XS', 'Q2_K', 'Q3_K', 'Q5_0', 'Q5_1', 'Q5_K']);
    expect(doc.made_by).toMatch(/dequantize_row_/);
  });

  for (const [name, v] of Object.entries(doc.vectors)) {
    it(`${name}: every value equals ggml's, bit for bit`, () => {
      expect(isSupportedType(v.type)).toBe(true);
      expect(ggmlTypeName(v.type)).toBe(name);
      const blocks = bytes(v.blocks);
      expect(tensorBytes(v.type as GgmlType, v.elements, v.elements)).toBe(blocks.length);
      const got = dequantize(v.type as GgmlType, blocks, v.elements);
      const want = new Float32Array(bytes(v.floats).buffer.slice(0));
      const differ = [...got.keys()].filter((i) => Object.is(got[i], want[i]) === false && got[i] !== want[i]);
      expect(differ.map((i) => `${i}: ${got[i]} vs ${want[i]}`).slice(0, 5)).toEqual([]);
      expect(new Uint32Array(got.buffer)).toEqual(new Uint32Array(want.buffer));
      // A block read at another offset (one byte short) is not a block: the size rule refuses rows that are not whole.
      expect(() => tensorBytes(v.type as GgmlType, v.elements - 1, v.elements - 1, 'blk.0.ffn_down.weight')).toThrow(new RegExp(`${name} with rows of ${v.elements - 1} elements, not a multiple of its block of ${v.blockElements}`));
    });
  }

  it('names the types it does not read, by name', () => {
    expect(ggmlTypeName(16)).toBe('IQ2_XXS');
    expect(ggmlTypeName(35)).toBe('TQ2_0');
    expect(isSupportedType(16)).toBe(false);
    expect(ggmlTypeName(99)).toBe('type 99');
  });
});
