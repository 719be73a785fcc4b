// Element types of checkpoint files and their conversions. Arithmetic on the GPU is always f32; float weights are
// stored as f16 (unpacked in the kernels, on any device), or f32 when forced. BF16 and F16 sources are widened with
// exact bit tricks.

import { NonFiniteError } from '../errors.js';

export type DType = 'F32' | 'F16' | 'BF16';

export const DTYPE_BYTES: Record<DType, number> = { F32: 4, F16: 2, BF16: 2 };

export function isDType(s: unknown): s is DType {
  return s === 'F32' || s === 'F16' || s === 'BF16';
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE half (as its 16 bits) to a JS number; exact. */
export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** A number to IEEE half bits, round to nearest even (as numpy/torch do). */
export function f32ToF16(v: number): number {
  f32[0] = v;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && (half & 1))) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1))) half++;
  return sign | half;
}

export function bf16ToF32(b: number): number {
  u32[0] = b << 16;
  return f32[0];
}

/** A number to bfloat16 bits, round to nearest even (as torch does). */
export function f32ToBF16(v: number): number {
  f32[0] = v;
  const x = u32[0];
  if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) return (x >>> 16) | 0x40;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/**
 * Where a decoder found the first value that is NaN or infinite (or, converting to f16, beyond f16's range): an
 * index into the decoded slice, -1 when every value was finite. Decoders check while they convert, so guarding a
 * checkpoint against NaN/Inf costs no extra pass over its bytes.
 */
export interface FiniteCheck {
  index: number;
  value: number;
}

export const finiteCheck = (): FiniteCheck => ({ index: -1, value: 0 });

/** The typed error for a tensor whose values are not all finite (or not all representable in f16 storage). */
export function nonFinite(file: string, tensor: string, c: FiniteCheck, f16Storage = false): NonFiniteError {
  const overflow = f16Storage && Number.isFinite(c.value);
  return new NonFiniteError(
    overflow
      ? `${file}: tensor "${tensor}" holds ${c.value} at index ${c.index}, beyond the f16 range (±65504) the GPU stores weights in. Load the model with f32 weights (lora-lab --f32).`
      : `${file}: tensor "${tensor}" holds ${c.value} at index ${c.index} (the first non-finite value). The file is corrupt or was saved after training diverged: download it again, or use an earlier checkpoint.`,
    { file, tensor, index: c.index, value: String(c.value) },
  );
}


/** Decodes little-endian raw bytes of `dtype` into f32. `bytes` need not be aligned. */
export function decodeToF32(bytes: Uint8Array, dtype: DType, check?: FiniteCheck): Float32Array {
  const n = bytes.byteLength / DTYPE_BYTES[dtype];
  const out = new Float32Array(n);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let bad = -1;
  if (dtype === 'F32') {
    for (let i = 0; i < n; i++) {
      const v = view.getFloat32(4 * i, true);
      out[i] = v;
      if (v - v !== 0 && bad < 0) bad = i; // NaN or ±Inf
    }
  } else if (dtype === 'F16') {
    for (let i = 0; i < n; i++) {
      const h = view.getUint16(2 * i, true);
      out[i] = f16ToF32(h);
      if ((h & 0x7c00) === 0x7c00 && bad < 0) bad = i;
    }
  } else {
    const o32 = new Uint32Array(out.buffer);
    for (let i = 0; i < n; i++) {
      const b = view.getUint16(2 * i, true);
      o32[i] = b << 16;
      if ((b & 0x7f80) === 0x7f80 && bad < 0) bad = i;
    }
  }
  if (check && bad >= 0 && check.index < 0) { check.index = bad; check.value = out[bad]; }
  return out;
}

/**
 * Decodes raw bytes of `dtype` into f16 bits (exact for F16, rounded for F32 and BF16). With `check`, a finite value
 * that overflows f16 (|x| > 65504 rounds to Inf) counts as non-finite too.
 */
export function decodeToF16(bytes: Uint8Array, dtype: DType, check?: FiniteCheck): Uint16Array {
  const n = bytes.byteLength / DTYPE_BYTES[dtype];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Uint16Array(n);
  // One loop per dtype (no per-element dtype branch); each checks the f16 bits it writes: NaN, Inf, and finite
  // values that overflowed f16.
  let bad = -1;
  const INF = 0x7c00;
  if (dtype === 'F16') {
    for (let i = 0; i < n; i++) { const h = (out[i] = view.getUint16(2 * i, true)); if ((h & INF) === INF && bad < 0) bad = i; }
  } else if (dtype === 'F32') {
    for (let i = 0; i < n; i++) { const h = (out[i] = f32ToF16(view.getFloat32(4 * i, true))); if ((h & INF) === INF && bad < 0) bad = i; }
  } else {
    for (let i = 0; i < n; i++) { const h = (out[i] = f32ToF16(bf16ToF32(view.getUint16(2 * i, true)))); if ((h & INF) === INF && bad < 0) bad = i; }
  }
  if (check && bad >= 0 && check.index < 0) {
    check.index = bad;
    check.value = dtype === 'F32' ? view.getFloat32(4 * bad, true) : dtype === 'BF16' ? bf16ToF32(view.getUint16(2 * bad, true)) : f16ToF32(out[bad]);
  }
  return out;
}

/** Encodes f32 values as little-endian bytes of `dtype`. */
export function encodeFromF32(values: ArrayLike<number>, dtype: DType): Uint8Array {
  const out = new Uint8Array(values.length * DTYPE_BYTES[dtype]);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) {
    if (dtype === 'F32') view.setFloat32(4 * i, values[i], true);
    else if (dtype === 'F16') view.setUint16(2 * i, f32ToF16(values[i]), true);
    else view.setUint16(2 * i, f32ToBF16(values[i]), true);
  }
  return out;
}
