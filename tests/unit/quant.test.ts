// q8/q4 block quantization (src/lib/quant/blocks.ts) against a float64 reference written from the layout's
// description: scales, integer levels and byte/nibble positions read back with a DataView, not with the module's
// own shifts; odd K (a last block padded with zeros); zero blocks; the error bounds the rules promise.

import { describe, expect, it } from 'vitest';
import { f16ToF32, f32ToF16 } from '../../src/lib/formats/dtype.js';
import { bytesPerWeight, dequantizeRows, quantizeRows, rowLayout, type QuantFormat } from '../../src/lib/quant/blocks.js';
import { Rng } from '../../src/lib/util/rng.js';
import { InvalidArgumentError } from '../../src/lib/errors.js';
import { CATALOG } from '../../src/lib/hub/model-catalog.js';
import { choosePrecision, weightBytes, type Precision } from '../../src/lib/quant/precision.js';

/** The levels and f16 scale of one block, in float64, from the rules in the module's header. */
function referenceBlock(values: number[], format: QuantFormat): { scale: number; q: number[] } {
  let extreme = 0;
  for (const v of values) if (Math.abs(v) > Math.abs(extreme)) extreme = v;
  const scale = f16ToF32(f32ToF16(format === 'q8' ? Math.abs(extreme) / 127 : extreme / -8));
  const [lo, hi] = format === 'q8' ? [-127, 127] : [-8, 7];
  const q = values.map((v) => (scale === 0 ? 0 : Math.min(hi, Math.max(lo, Math.round(v / scale))) + 0)); // + 0: no -0 levels
  while (q.length < 32) q.push(0);
  return { scale, q };
}

/** Reads level i of block b of a row from little-endian bytes (a byte per q8 value, a nibble per q4 value). */
function storedLevel(bytes: DataView, rowByte: number, format: QuantFormat, b: number, i: number): number {
  if (format === 'q8') return bytes.getInt8(rowByte + b * 32 + i);
  const byte = bytes.getUint8(rowByte + b * 16 + (i >> 1));
  return (i & 1 ? byte >> 4 : byte & 15) - 8;
}

describe('block quantization', () => {
  for (const format of ['q8', 'q4'] as const) {
    it.each([[3, 5], [4, 32], [2, 45], [3, 77], [1, 300]])(`${format}: %i rows of K=%i match the float64 reference bit for bit`, (rows, k) => {
      const rng = new Rng(rows * 1000 + k);
      const w = Float32Array.from({ length: rows * k }, () => rng.normal() * 0.05);
      if (k >= 64) w.fill(0, 32, 64); // an all-zero block in row 0 gets scale 0 and levels 0
      const packed = quantizeRows(w, rows, k, format);
      const { blocks, dataWords, words } = rowLayout(format, k);
      expect(packed.length).toBe(rows * words);
      const bytes = new DataView(packed.buffer);
      const deq = dequantizeRows(packed, rows, k, format);
      for (let r = 0; r < rows; r++) {
        for (let b = 0; b < blocks; b++) {
          const vals = Array.from(w.subarray(r * k + b * 32, r * k + Math.min(k, b * 32 + 32)));
          const ref = referenceBlock(vals, format);
          const scaleBits = bytes.getUint16(r * words * 4 + dataWords * 4 + 2 * b, true);
          expect(f16ToF32(scaleBits)).toBe(ref.scale);
          for (let i = 0; i < 32; i++) {
            expect(storedLevel(bytes, r * words * 4, format, b, i)).toBe(ref.q[i]);
            if (b * 32 + i < k) expect(deq[r * k + b * 32 + i] + 0).toBe(Math.fround(ref.scale * ref.q[i]) + 0); // +0: -0 and 0 are one value here
          }
        }
      }
    });
  }

  it('keeps each value within half a step (q4: a full step where the level clamps at +7 against the extreme -8)', () => {
    const rng = new Rng(9);
    const k = 97;
    const w = Float32Array.from({ length: 4 * k }, () => rng.normal());
    for (const format of ['q8', 'q4'] as const) {
      const deq = dequantizeRows(quantizeRows(w, 4, k, format), 4, k, format);
      for (let r = 0; r < 4; r++) for (let b = 0; b * 32 < k; b++) {
        const vals = Array.from(w.subarray(r * k + b * 32, r * k + Math.min(k, b * 32 + 32)));
        const { scale } = referenceBlock(vals, format);
        vals.forEach((v, i) => {
          const err = Math.abs(deq[r * k + b * 32 + i] - v);
          const clamped = format === 'q4' && Math.abs(v / scale) > 7.5;
          // f16 rounding of the scale moves the grid by at most 2^-11 of a step per level.
          expect(err).toBeLessThanOrEqual(Math.abs(scale) * ((clamped ? 1 : 0.5) + 8 * 2 ** -11) + 1e-7);
        });
      }
    }
  });

  it('costs the bytes the layout says', () => {
    expect(rowLayout('q8', 64)).toEqual({ blocks: 2, dataWords: 16, words: 17 });
    expect(rowLayout('q4', 45)).toEqual({ blocks: 2, dataWords: 8, words: 9 });
    expect(rowLayout('q4', 128).words * 4).toBe(128 * bytesPerWeight('q4'));
    expect(rowLayout('q4', 96).words).toBe(12 + 2); // three scales take two words
    expect(rowLayout('q8', 128).words * 4).toBe(128 * bytesPerWeight('q8'));
  });
});

describe('precision at load', () => {
  const shape = (repo: string) => CATALOG.find((m) => m.repo === repo)!.shape;

  it('auto keeps float weights up to 1 GiB, then q8, then q4; f16 unless f32 is forced; unknown names are refused', () => {
    expect(choosePrecision('auto', shape('HuggingFaceTB/SmolLM2-135M-Instruct'), true)).toBe('f16');
    expect(choosePrecision('auto', shape('HuggingFaceTB/SmolLM2-135M-Instruct'), false)).toBe('f32');
    expect(choosePrecision('auto', shape('Qwen/Qwen2.5-0.5B-Instruct'), true)).toBe('f16');    // 0.99 GB at f16
    expect(choosePrecision('auto', shape('Qwen/Qwen2.5-0.5B-Instruct'), false)).toBe('q8');   // 1.98 GB at f32
    expect(choosePrecision('auto', shape('meta-llama/Llama-3.2-1B-Instruct'), true)).toBe('q4'); // 1.33 GB at q8
    expect(choosePrecision('q8', shape('HuggingFaceTB/SmolLM2-135M-Instruct'), true)).toBe('q8');
    expect(() => choosePrecision('f16', shape('HuggingFaceTB/SmolLM2-135M-Instruct'), false)).toThrow(/f32 weights forced.*choose f32, q8 or q4/);
    expect(() => choosePrecision('q3' as Precision, shape('HuggingFaceTB/SmolLM2-135M-Instruct'), true)).toThrow(InvalidArgumentError);
  });

  it('1B-class models fit 1.2 GB of weights at q4 (embedding and lm_head at q8)', () => {
    for (const repo of ['meta-llama/Llama-3.2-1B-Instruct', 'TinyLlama/TinyLlama-1.1B-Chat-v1.0', 'Qwen/Qwen2.5-1.5B-Instruct']) {
      const q4 = weightBytes(shape(repo), 'q4', true);
      const f16 = weightBytes(shape(repo), 'f16', true);
      console.log(`${repo}: weights ${(f16 / 1e9).toFixed(2)} GB at f16, ${(weightBytes(shape(repo), 'q8', true) / 1e9).toFixed(2)} GB at q8, ${(q4 / 1e9).toFixed(2)} GB at q4`);
      expect(q4).toBeLessThanOrEqual(1.2e9);
      expect(q4 / f16).toBeLessThan(0.4);
    }
  });
});
