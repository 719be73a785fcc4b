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
//   Q5_0 (32 / block)   d: f16, qh: u32 (5th bits), qs: u8[16] as Q4_0;                           w = d (q - 16)
//   Q5_1 (32 / block)   d, m: f16, qh: u32, qs: u8[16];                                           w = d q + m
//   Q2_K (256 / block)  scales: u8[16] (4-bit scale | 4-bit min per 16), qs: u8[64] (2 bits), d, dmin: f16
//                       w = d sc q - dmin m; each 32 bytes of qs hold 128 values, 2 bits at shifts 0, 2, 4, 6
//   Q3_K (256 / block)  hmask: u8[32] (3rd bits), qs: u8[64] (2 bits), scales: u8[12] (16 six-bit), d: f16
//                       w = d (sc - 32) (q - (hmask bit ? 0 : 4))
//   Q5_K (256 / block)  d, dmin: f16, scales: u8[12] as Q4_K, qh: u8[32] (5th bits), qs: u8[128];  w = d sc q - dmin m
//   IQ4_NL (32 / block) d: f16, qs: u8[16] (nibbles index a fixed table of 16 values);            w = d table[q]
//   IQ4_XS (256 / block) d: f16, scales_h: u16, scales_l: u8[4] (8 six-bit scales), qs: u8[128];  w = d (sc - 32) table[q]
// Every product and sum is rounded to f32 where ggml's C code rounds it (ggml-quants.c, dequantize_row_*), so the
// values are ggml's bit for bit (tests/fixtures/ggml-vectors.json, made by ggml itself).

import { FileFormatError } from '../errors.js';
import { bf16ToF32, f16ToF32 } from './dtype.js';

/** GGML type ids (ggml.h) of the types the engine reads. */
export const GGML = { F32: 0, F16: 1, Q4_0: 2, Q5_0: 6, Q5_1: 7, Q8_0: 8, Q2_K: 10, Q3_K: 11, Q4_K: 12, Q5_K: 13, Q6_K: 14, IQ4_NL: 20, IQ4_XS: 23, BF16: 30 } as const;
export type GgmlType = (typeof GGML)[keyof typeof GGML];

const NAMES = new Map<number, string>(Object.entries(GGML).map(([k, v]) => [v, k]));

/** Elements per block and bytes per block. */
const LAYOUT: Record<GgmlType, [number, number]> = {
  [GGML.F32]: [1, 4], [GGML.F16]: [1, 2], [GGML.BF16]: [1, 2],
  [GGML.Q8_0]: [32, 34], [GGML.Q4_0]: [32, 18], [GGML.Q4_K]: [256, 144], [GGML.Q6_K]: [256, 210],
  [GGML.Q5_0]: [32, 22], [GGML.Q5_1]: [32, 24], [GGML.Q2_K]: [256, 84], [GGML.Q3_K]: [256, 110], [GGML.Q5_K]: [256, 176],
  [GGML.IQ4_NL]: [32, 18], [GGML.IQ4_XS]: [256, 136],
};

/** GGML type names by id for the types the engine does not read (errors name them). */
const OTHER_NAMES: Record<number, string> = {
  3: 'Q4_1', 9: 'Q8_1', 15: 'Q8_K', 16: 'IQ2_XXS', 17: 'IQ2_XS', 18: 'IQ3_XXS', 19: 'IQ1_S', 21: 'IQ3_S', 22: 'IQ2_S',
  24: 'I8', 25: 'I16', 26: 'I32', 27: 'I64', 28: 'F64', 29: 'IQ1_M', 34: 'TQ1_0', 35: 'TQ2_0', 39: 'MXFP4',
};

/** The GGUF file types (llama.cpp's ftypes) whose tensors are all of types the engine reads. */
export const LOADABLE_FILE_TYPES = 'F32, F16, BF16, Q8_0, Q6_K, Q5_K_M/S, Q5_0, Q5_1, Q4_K_M/S, Q4_0, Q3_K_S/M/L, Q2_K, IQ4_NL and IQ4_XS';

export function ggmlTypeName(t: number): string {
  return NAMES.get(t) ?? OTHER_NAMES[t] ?? `type ${t}`;
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
    case GGML.Q5_0:
    case GGML.Q5_1:
      dequantQ5(t === GGML.Q5_1, v, src, out, count);
      break;
    case GGML.Q2_K:
      dequantQ2K(v, src, out, count);
      break;
    case GGML.Q3_K:
      dequantQ3K(v, src, out, count);
      break;
    case GGML.Q5_K:
      dequantQ5K(v, src, out, count);
      break;
    case GGML.IQ4_NL:
    case GGML.IQ4_XS:
      dequantIQ4(t === GGML.IQ4_XS, v, src, out, count);
      break;
  }
  return out;
}

const f32 = Math.fround;

/** Q5_0: w = d (q - 16); Q5_1: w = d q + m. The 5th bit of value j (and j + 16) is bit j (j + 16) of qh. */
function dequantQ5(withMin: boolean, v: DataView, src: Uint8Array, out: Float32Array, count: number): void {
  const size = withMin ? 24 : 22;
  for (let b = 0; b < count / 32; b++) {
    const o = size * b;
    const d = f16ToF32(v.getUint16(o, true));
    const m = withMin ? f16ToF32(v.getUint16(o + 2, true)) : 0;
    const qh = v.getUint32(o + (withMin ? 4 : 2), true);
    const qs = o + (withMin ? 8 : 6);
    for (let j = 0; j < 16; j++) {
      const x0 = (src[qs + j] & 15) | (((qh >>> j) << 4) & 16);
      const x1 = (src[qs + j] >> 4) | ((qh >>> (j + 12)) & 16);
      out[32 * b + j] = withMin ? f32(f32(x0 * d) + m) : f32((x0 - 16) * d);
      out[32 * b + j + 16] = withMin ? f32(f32(x1 * d) + m) : f32((x1 - 16) * d);
    }
  }
}

/** Q2_K: 16 groups of 16, each with a 4-bit scale and min; 2-bit values, four to a byte. */
function dequantQ2K(v: DataView, src: Uint8Array, out: Float32Array, count: number): void {
  for (let b = 0; b < count / 256; b++) {
    const o = 84 * b, d = f16ToF32(v.getUint16(o + 80, true)), dmin = f16ToF32(v.getUint16(o + 82, true));
    let y = 256 * b, is = 0;
    for (let n = 0; n < 2; n++) {
      const q = o + 16 + 32 * n;
      for (let shift = 0; shift < 8; shift += 2) {
        for (let half = 0; half < 2; half++) {
          const sc = src[o + is++];
          const dl = f32(d * (sc & 15)), ml = f32(dmin * (sc >> 4));
          for (let l = 0; l < 16; l++) out[y++] = f32(f32(dl * ((src[q + 16 * half + l] >> shift) & 3)) - ml);
        }
      }
    }
  }
}

/** Q3_K: 16 six-bit scales (low nibbles in bytes 0..7, high pairs in 8..11), 2-bit values and a high bit mask. */
function dequantQ3K(v: DataView, src: Uint8Array, out: Float32Array, count: number): void {
  const scales = new Int8Array(16);
  for (let b = 0; b < count / 256; b++) {
    const o = 110 * b, d = f16ToF32(v.getUint16(o + 108, true));
    const s = o + 96;
    for (let j = 0; j < 16; j++) {
      const low = j < 8 ? src[s + j] & 15 : src[s + j - 8] >> 4;
      scales[j] = (low | (((src[s + 8 + (j % 4)] >> (2 * Math.floor(j / 4))) & 3) << 4)) - 32;
    }
    let y = 256 * b, is = 0, m = 1;
    for (let n = 0; n < 2; n++) {
      const q = o + 32 + 32 * n;
      for (let shift = 0; shift < 8; shift += 2) {
        for (let half = 0; half < 2; half++) {
          const dl = f32(d * scales[is++]);
          for (let l = 0; l < 16; l++) {
            const i = 16 * half + l;
            out[y++] = f32(dl * (((src[q + i] >> shift) & 3) - (src[o + i] & m ? 0 : 4)));
          }
        }
        m <<= 1;
      }
    }
  }
}

/** Q5_K: Q4_K's scales and mins, with a 5th bit per value from qh (two bits of each qh byte per group of 64). */
function dequantQ5K(v: DataView, src: Uint8Array, out: Float32Array, count: number): void {
  for (let b = 0; b < count / 256; b++) {
    const o = 176 * b, d = f16ToF32(v.getUint16(o, true)), dmin = f16ToF32(v.getUint16(o + 2, true));
    const sc = src.subarray(o + 4, o + 16);
    const qh = o + 16, ql = o + 48;
    for (let g = 0; g < 4; g++) {
      const [s1, m1] = scaleMinK4(2 * g, sc);
      const [s2, m2] = scaleMinK4(2 * g + 1, sc);
      const d1 = f32(d * s1), n1 = f32(dmin * m1), d2 = f32(d * s2), n2 = f32(dmin * m2);
      const u1 = 1 << (2 * g), u2 = 2 << (2 * g);
      for (let l = 0; l < 32; l++) {
        const q = src[ql + 32 * g + l], h = src[qh + l];
        out[256 * b + 64 * g + l] = f32(f32(d1 * ((q & 15) + (h & u1 ? 16 : 0))) - n1);
        out[256 * b + 64 * g + 32 + l] = f32(f32(d2 * ((q >> 4) + (h & u2 ? 16 : 0))) - n2);
      }
    }
  }
}

/** The 16 values IQ4_NL and IQ4_XS nibbles index (ggml's kvalues_iq4nl). */
const IQ4_VALUES = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

/** IQ4_NL: one scale per 32; IQ4_XS: 8 six-bit scales per 256 (low nibbles in scales_l, high pairs in scales_h). */
function dequantIQ4(xs: boolean, v: DataView, src: Uint8Array, out: Float32Array, count: number): void {
  const per = xs ? 256 : 32, size = xs ? 136 : 18;
  for (let b = 0; b < count / per; b++) {
    const o = size * b, d = f16ToF32(v.getUint16(o, true));
    for (let ib = 0; ib < per / 32; ib++) {
      let dl = d;
      let qs = o + 2 + 16 * ib;
      if (xs) {
        const hi = v.getUint16(o + 2, true);
        const ls = ((src[o + 4 + (ib >> 1)] >> (4 * (ib % 2))) & 15) | (((hi >> (2 * ib)) & 3) << 4);
        dl = f32(d * (ls - 32));
        qs = o + 8 + 16 * ib;
      }
      const y = per * b + 32 * ib;
      for (let j = 0; j < 16; j++) {
        out[y + j] = f32(dl * IQ4_VALUES[src[qs + j] & 15]);
        out[y + j + 16] = f32(dl * IQ4_VALUES[src[qs + j] >> 4]);
      }
    }
  }
}

/** The 6-bit scale and min of sub-block j of a Q4_K block (ggml's get_scale_min_k4). */
function scaleMinK4(j: number, s: Uint8Array): [number, number] {
  if (j < 4) return [s[j] & 63, s[j + 4] & 63];
  return [(s[j + 4] & 15) | ((s[j - 4] >> 6) << 4), (s[j + 4] >> 4) | ((s[j] >> 6) << 4)];
}
