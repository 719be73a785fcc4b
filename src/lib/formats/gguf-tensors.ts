// GGML tensor types as stored in GGUF files, and their dequantization to f32 (block layouts from ggml's
// ggml-common.h; all little-endian). Rows are contiguous along ne[0], the input dimension, and a row is a whole
// number of blocks.
//   F32, F16, BF16      plain
//   Q8_0 (32 / block)   d: f16, qs: int8[32]                               w = d q
//   Q4_0 (32 / block)   d: f16, qs: u8[16]; element j low nibble of qs[j], element j + 16 the high nibble; w = d (q - 8)
//   Q4_K (256 / block)  d, dmin: f16; scales: u8[12] (8 six-bit scales and mins); qs: u8[128]
//                       sub-block s of 32: w = d sc_s q - dmin m_s; groups of 64 take the low nibbles of 32 bytes for
//                       their first sub-block and the high nibbles of the same bytes for the second
//   Q6_K (256 / block)  ql: u8[128] (low 4 bits), qh: u8[64] (high 2 bits), scales: int8[16], d: f16;  w = d sc (q - 32)

import { FileFormatError } from '../errors.js';
import { bf16ToF32, f16ToF32 } from './dtype.js';

/** GGML type ids (ggml.h) of the types the engine reads. */
export const GGML = { F32: 0, F16: 1, Q4_0: 2, Q8_0: 8, Q4_K: 12, Q6_K: 14, BF16: 30 } as const;
export type GgmlType = (typeof GGML)[keyof typeof GGML];

const NAMES = new Map<number, string>(Object.entries(GGML).map(([k, v]) => [v, k]));

/** Elements per block and bytes per block. */
const LAYOUT: Record<GgmlType, [number, number]> = {
  [GGML.F32]: [1, 4], [GGML.F16]: [1, 2], [GGML.BF16]: [1, 2],
  [GGML.Q8_0]: [32, 34], [GGML.Q4_0]: [32, 18], [GGML.Q4_K]: [256, 144], [GGML.Q6_K]: [256, 210],
};

export function ggmlTypeName(t: number): string {
  return NAMES.get(t) ?? `type ${t}`;
}

export function isSupportedType(t: number): t is GgmlType {
  return NAMES.has(t);
}

/** Bytes of `count` elements of type `t`; throws when `rowLength` is not a whole number of blocks. */
export function tensorBytes(t: GgmlType, count: number, rowLength: number, tensor = 'tensor'): number {
  const [per, bytes] = LAYOUT[t];
  if (rowLength % per !== 0) {
    throw new FileFormatError(`${tensor} is ${ggmlTypeName(t)} with rows of ${rowLength} elements, not a multiple of its block of ${per}. The file is corrupt.`, { tensor });
  }
  return (count / per) * bytes;
}

/** Dequantizes `count` elements (whole blocks) of type `t` from `src`. */
export function dequantize(t: GgmlType, src: Uint8Array, count: number): Float32Array {
  const out = new Float32Array(count);
  const v = new DataView(src.buffer, src.byteOffset, src.byteLength);
  const half = (o: number) => f16ToF32(v.getUint16(o, true));
  switch (t) {
    case GGML.F32:
      for (let i = 0; i < count; i++) out[i] = v.getFloat32(4 * i, true);
      break;
    case GGML.F16:
      for (let i = 0; i < count; i++) out[i] = half(2 * i);
      break;
    case GGML.BF16:
      for (let i = 0; i < count; i++) out[i] = bf16ToF32(v.getUint16(2 * i, true));
      break;
    case GGML.Q8_0:
      for (let b = 0; b < count / 32; b++) {
        const o = 34 * b, d = half(o);
        for (let j = 0; j < 32; j++) out[32 * b + j] = d * v.getInt8(o + 2 + j);
      }
      break;
    case GGML.Q4_0:
      for (let b = 0; b < count / 32; b++) {
        const o = 18 * b, d = half(o);
        for (let j = 0; j < 16; j++) {
          const q = src[o + 2 + j];
          out[32 * b + j] = d * ((q & 15) - 8);
          out[32 * b + j + 16] = d * ((q >> 4) - 8);
        }
      }
      break;
    case GGML.Q4_K:
      for (let b = 0; b < count / 256; b++) {
        const o = 144 * b, d = half(o), dmin = half(o + 2);
        const sc = src.subarray(o + 4, o + 16);
        const qs = src.subarray(o + 16, o + 144);
        for (let g = 0; g < 4; g++) {
          const [s1, m1] = scaleMinK4(2 * g, sc);
          const [s2, m2] = scaleMinK4(2 * g + 1, sc);
          for (let l = 0; l < 32; l++) {
            const q = qs[32 * g + l];
            out[256 * b + 64 * g + l] = d * s1 * (q & 15) - dmin * m1;
            out[256 * b + 64 * g + 32 + l] = d * s2 * (q >> 4) - dmin * m2;
          }
        }
      }
      break;
    case GGML.Q6_K:
      for (let b = 0; b < count / 256; b++) {
        const o = 210 * b, d = half(o + 208);
        for (let h = 0; h < 2; h++) {
          const ql = o + 64 * h, qh = o + 128 + 32 * h, sc = o + 192 + 8 * h, y = 256 * b + 128 * h;
          for (let l = 0; l < 32; l++) {
            const is = l >> 4;
            const hb = src[qh + l];
            const q1 = ((src[ql + l] & 15) | ((hb & 3) << 4)) - 32;
            const q2 = ((src[ql + l + 32] & 15) | (((hb >> 2) & 3) << 4)) - 32;
            const q3 = ((src[ql + l] >> 4) | (((hb >> 4) & 3) << 4)) - 32;
            const q4 = ((src[ql + l + 32] >> 4) | (((hb >> 6) & 3) << 4)) - 32;
            out[y + l] = d * v.getInt8(sc + is) * q1;
            out[y + l + 32] = d * v.getInt8(sc + is + 2) * q2;
            out[y + l + 64] = d * v.getInt8(sc + is + 4) * q3;
            out[y + l + 96] = d * v.getInt8(sc + is + 6) * q4;
          }
        }
      }
      break;
  }
  return out;
}

/** The 6-bit scale and min of sub-block j of a Q4_K block (ggml's get_scale_min_k4). */
function scaleMinK4(j: number, s: Uint8Array): [number, number] {
  if (j < 4) return [s[j] & 63, s[j + 4] & 63];
  return [(s[j + 4] & 15) | ((s[j - 4] >> 6) << 4), (s[j + 4] >> 4) | ((s[j] >> 6) << 4)];
}
