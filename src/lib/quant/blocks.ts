// Weight-only quantization of a (N, K) matrix, row by row, in blocks of 32 along K (the input dimension), each block
// with one f16 scale. Both formats are symmetric (no per-block minimum). Measured on the built-in model's layer
// matrices, a scale+min int4 variant (Q4_1's rule) lowers the relative RMS error from 0.086 to 0.078 but costs a second
// f16 per block (0.625 instead of 0.5625 bytes a weight), while symmetric q4 already moves perplexity on bundled data
// by about 1% (tests/gpu/quantized.test.ts): the bytes are worth more than the error.
//   q8: w ~ d * q, q in [-127, 127], d = max|w| / 127                    (llama.cpp's Q8_0 rule)
//   q4: w ~ d * q, q in [-8, 7],     d = w* / -8, w* the value of max |w|  (llama.cpp's Q4_0 rule: the extreme value
//       maps exactly to -8, so the 16th level is used)
// GPU layout of one row, in u32 words (rows are independent, so a matrix splits into row shards as before):
//   [data: nb * WPB words][scales: ceil(nb / 2) words]
//   q8: word j holds elements 4j .. 4j+3, one signed byte each, lowest byte first       (WPB = 8 words per block)
//   q4: word j holds elements 8j .. 8j+7, one nibble (q + 8) each, lowest nibble first  (WPB = 4)
//   scales: f16 bits, block 2i in the low half of word i, block 2i+1 in the high half (WGSL's unpack2x16float order)
// K need not be a multiple of 32: the last block is padded with zeros (which quantize to 0 exactly).

import { f16ToF32, f32ToF16 } from '../formats/dtype.js';

/** How a weight matrix is stored on the GPU. */
export type WeightFormat = 'f32' | 'f16' | 'q8' | 'q4';
export type QuantFormat = 'q8' | 'q4';

export const QBLOCK = 32;

export function isQuantized(f: WeightFormat): f is QuantFormat {
  return f === 'q8' || f === 'q4';
}

/** Data words per block of 32 elements. */
export const WORDS_PER_BLOCK: Record<QuantFormat, number> = { q8: 8, q4: 4 };

export interface RowLayout {
  /** Blocks per row. */
  blocks: number;
  /** Words of packed values per row (the scales follow them). */
  dataWords: number;
  /** Row stride in u32 words: data then scales. */
  words: number;
}

export function rowLayout(format: QuantFormat, k: number): RowLayout {
  const blocks = Math.ceil(k / QBLOCK);
  const dataWords = blocks * WORDS_PER_BLOCK[format];
  return { blocks, dataWords, words: dataWords + Math.ceil(blocks / 2) };
}

/** Bytes one stored element costs on average, scales included (for memory estimates). */
export function bytesPerWeight(format: WeightFormat): number {
  return { f32: 4, f16: 2, q8: 1 + 2 / QBLOCK, q4: 0.5 + 2 / QBLOCK }[format];
}

/**
 * Quantizes `rows` rows of K values (row-major, no padding) into the GPU layout. Values must be finite (the loader
 * checks them while decoding).
 */
export function quantizeRows(src: Float32Array, rows: number, k: number, format: QuantFormat): Uint32Array {
  const { blocks, dataWords, words } = rowLayout(format, k);
  const out = new Uint32Array(rows * words);
  const q = new Int32Array(QBLOCK);
  for (let r = 0; r < rows; r++) {
    const row = src.subarray(r * k, (r + 1) * k);
    const base = r * words;
    for (let b = 0; b < blocks; b++) {
      const k0 = b * QBLOCK;
      const k1 = Math.min(k, k0 + QBLOCK);
      const h = f32ToF16(blockScale(row, k0, k1, format));
      const d = f16ToF32(h);
      const inv = d === 0 ? 0 : 1 / d;
      const [lo, hi] = format === 'q8' ? [-127, 127] : [-8, 7];
      for (let i = 0; i < QBLOCK; i++) {
        const v = k0 + i < k1 ? Math.round(row[k0 + i] * inv) : 0;
        q[i] = Math.min(hi, Math.max(lo, v));
      }
      if (format === 'q8') {
        for (let j = 0; j < 8; j++) {
          out[base + b * 8 + j] = ((q[4 * j] & 0xff) | ((q[4 * j + 1] & 0xff) << 8) | ((q[4 * j + 2] & 0xff) << 16) | ((q[4 * j + 3] & 0xff) << 24)) >>> 0;
        }
      } else {
        for (let j = 0; j < 4; j++) {
          let w = 0;
          for (let n = 0; n < 8; n++) w |= (q[8 * j + n] + 8) << (4 * n);
          out[base + b * 4 + j] = w >>> 0;
        }
      }
      out[base + dataWords + (b >> 1)] |= (b & 1 ? h << 16 : h) >>> 0;
    }
  }
  return out;
}

/** The scale of one block (before f16 rounding). */
function blockScale(row: Float32Array, k0: number, k1: number, format: QuantFormat): number {
  let extreme = 0;
  for (let i = k0; i < k1; i++) if (Math.abs(row[i]) > Math.abs(extreme)) extreme = row[i];
  return format === 'q8' ? Math.abs(extreme) / 127 : extreme / -8;
}

/** The values a quantized matrix stands for, (rows, K) row-major: what the GPU kernels compute with. */
export function dequantizeRows(data: Uint32Array, rows: number, k: number, format: QuantFormat): Float32Array {
  const { blocks, dataWords, words } = rowLayout(format, k);
  const out = new Float32Array(rows * k);
  for (let r = 0; r < rows; r++) {
    const base = r * words;
    for (let b = 0; b < blocks; b++) {
      const sw = data[base + dataWords + (b >> 1)];
      const d = f16ToF32(b & 1 ? sw >>> 16 : sw & 0xffff);
      for (let i = 0; i < QBLOCK && b * QBLOCK + i < k; i++) {
        const kk = b * QBLOCK + i;
        const q = format === 'q8'
          ? (data[base + (kk >> 2)] << (24 - 8 * (kk & 3))) >> 24
          : ((data[base + (kk >> 3)] >>> (4 * (kk & 7))) & 15) - 8;
        out[r * k + kk] = d * q;
      }
    }
  }
  return out;
}
