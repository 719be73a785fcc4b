// Quantizing rows into GGML blocks, for GGUF export: F16, Q8_0, Q5_0, Q4_K and Q6_K, the types llama.cpp's F16, Q8_0
// and Q4_K_M files are made of. Each follows ggml's reference quantizer (quantize_row_<type>_ref in ggml-quants.c,
// without an importance matrix, as llama-quantize runs without one) in float32 arithmetic: every operation is rounded
// to float32 (Math.fround) in ggml's order, so the blocks are the ones ggml writes, bit for bit (checked against ggml's
// own output in tests/unit/gguf-quantize.test.ts). The block layouts are the readers' (gguf-tensors.ts).

import { f16ToF32, f32ToF16 } from './dtype.js';
import { GGML, type GgmlType } from './gguf-tensors.js';

const f = Math.fround;
const QK_K = 256;
const GROUP_MAX_EPS = f(1e-15);

/** ggml's nearest_int: round half to even through the float32 magic number (|x| < 2^22). */
function nearestInt(x: number): number {
  return f(x + 12582912) - 12582912;
}

/** The float32 that a half-precision round trip gives, as ggml's GGML_FP16_TO_FP32(GGML_FP32_TO_FP16(x)). */
const viaHalf = (x: number) => f16ToF32(f32ToF16(x));

/** Element and byte sizes of the blocks this module writes. */
export const QUANT_BLOCKS: Partial<Record<GgmlType, { elements: number; bytes: number }>> = {
  [GGML.F16]: { elements: 1, bytes: 2 },
  [GGML.Q8_0]: { elements: 32, bytes: 34 },
  [GGML.Q5_0]: { elements: 32, bytes: 22 },
  [GGML.Q4_K]: { elements: 256, bytes: 144 },
  [GGML.Q6_K]: { elements: 256, bytes: 210 },
};

/** `x` (whole blocks of `type`) as GGML blocks. */
export function quantize(type: GgmlType, x: Float32Array): Uint8Array {
  const b = QUANT_BLOCKS[type];
  if (!b) throw new Error(`quantize: type ${type} is not written by LoRA Lab`);
  if (x.length % b.elements !== 0) throw new Error(`quantize: ${x.length} values are not whole blocks of ${b.elements}`);
  const out = new Uint8Array((x.length / b.elements) * b.bytes);
  const v = new DataView(out.buffer);
  const n = x.length / b.elements;
  switch (type) {
    case GGML.F16:
      for (let i = 0; i < x.length; i++) v.setUint16(2 * i, f32ToF16(x[i]), true);
      break;
    case GGML.Q8_0:
      for (let i = 0; i < n; i++) q8_0(x.subarray(32 * i, 32 * i + 32), v, 34 * i);
      break;
    case GGML.Q5_0:
      for (let i = 0; i < n; i++) q5_0(x.subarray(32 * i, 32 * i + 32), v, 22 * i);
      break;
    case GGML.Q4_K:
      for (let i = 0; i < n; i++) q4_K(x.subarray(256 * i, 256 * i + 256), out.subarray(144 * i, 144 * i + 144));
      break;
    case GGML.Q6_K:
      for (let i = 0; i < n; i++) q6_K(x.subarray(256 * i, 256 * i + 256), out.subarray(210 * i, 210 * i + 210));
      break;
  }
  return out;
}

// Q8_0: d (f16), 32 int8; x = d q.
function q8_0(x: Float32Array, v: DataView, o: number): void {
  let amax = 0;
  for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[j]));
  const d = f(amax / 127);
  const id = d ? f(1 / d) : 0;
  v.setUint16(o, f32ToF16(d), true);
  for (let j = 0; j < 32; j++) {
    const x0 = f(x[j] * id);
    v.setInt8(o + 2 + j, Math.sign(x0) * Math.floor(Math.abs(x0) + 0.5)); // roundf: half away from zero
  }
}

// Q5_0: d (f16), 32 high bits, 16 bytes of low nibbles; x = d (q - 16), d from the value of largest magnitude.
function q5_0(x: Float32Array, v: DataView, o: number): void {
  let amax = 0;
  let max = 0;
  for (let j = 0; j < 32; j++) {
    if (amax < Math.abs(x[j])) { amax = Math.abs(x[j]); max = x[j]; }
  }
  const d = f(max / -16);
  const id = d ? f(1 / d) : 0;
  v.setUint16(o, f32ToF16(d), true);
  let qh = 0;
  for (let j = 0; j < 16; j++) {
    const xi0 = Math.min(31, Math.trunc(f(f(x[j] * id) + 16.5)));
    const xi1 = Math.min(31, Math.trunc(f(f(x[16 + j] * id) + 16.5)));
    v.setUint8(o + 6 + j, (xi0 & 15) | ((xi1 & 15) << 4));
    qh |= ((xi0 & 0x10) >> 4) << j;
    qh |= ((xi1 & 0x10) >> 4) << (j + 16);
  }
  v.setUint32(o + 2, qh >>> 0, true);
}

/**
 * ggml's make_qkx2_quants: levels L in 0..nmax and a scale and min (returned as [scale, -min]) for `x`, searching
 * scales around the min-max one for the least weighted squared error.
 */
function makeQkx2(x: Float32Array, w: Float32Array, nmax: number, L: Uint8Array, rmin: number, rdelta: number, nstep: number): [number, number] {
  const n = x.length;
  const Laux = new Uint8Array(n);
  let min = x[0];
  let max = x[0];
  let sumW = w[0];
  let sumX = f(sumW * x[0]);
  for (let i = 1; i < n; i++) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    sumW = f(sumW + w[i]);
    sumX = f(sumX + f(w[i] * x[i]));
  }
  if (min > 0) min = 0;
  if (max === min) {
    L.fill(0);
    return [0, -min];
  }
  let iscale = f(nmax / f(max - min));
  let scale = f(1 / iscale);
  let bestError = 0;
  for (let i = 0; i < n; i++) {
    L[i] = Math.max(0, Math.min(nmax, nearestInt(f(iscale * f(x[i] - min)))));
    const diff = f(f(f(scale * L[i]) + min) - x[i]);
    bestError = f(bestError + f(w[i] * f(diff * diff)));
  }
  for (let is = 0; is <= nstep; is++) {
    iscale = f(f(f(rmin + f(rdelta * is)) + nmax) / f(max - min));
    let sumL = 0, sumL2 = 0, sumXL = 0;
    for (let i = 0; i < n; i++) {
      const l = Math.max(0, Math.min(nmax, nearestInt(f(iscale * f(x[i] - min)))));
      Laux[i] = l;
      const wl = f(w[i] * l);
      sumL = f(sumL + wl);
      sumL2 = f(sumL2 + f(wl * l));
      sumXL = f(sumXL + f(wl * x[i]));
    }
    const D = f(f(sumW * sumL2) - f(sumL * sumL));
    if (D > 0) {
      let thisScale = f(f(f(sumW * sumXL) - f(sumX * sumL)) / D);
      let thisMin = f(f(f(sumL2 * sumX) - f(sumL * sumXL)) / D);
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = f(sumXL / sumL2);
      }
      let cur = 0;
      for (let i = 0; i < n; i++) {
        const diff = f(f(f(thisScale * Laux[i]) + thisMin) - x[i]);
        cur = f(cur + f(w[i] * f(diff * diff)));
      }
      if (cur < bestError) {
        L.set(Laux);
        bestError = cur;
        scale = thisScale;
        min = thisMin;
      }
    }
  }
  return [scale, -min];
}

/** The 6-bit scale and min of sub-block j from a K-quant's 12 packed bytes (get_scale_min_k4). */
function scaleMinK4(j: number, q: Uint8Array): [number, number] {
  if (j < 4) return [q[j] & 63, q[j + 4] & 63];
  return [(q[j + 4] & 15) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4)];
}

// Q4_K: d, dmin (f16); 8 sub-blocks of 32 with 6-bit scales and mins; 4-bit levels. x = d sc q - dmin m.
function q4_K(x: Float32Array, y: Uint8Array): void {
  const L = new Uint8Array(QK_K);
  const w = new Float32Array(32);
  const mins = new Float32Array(8);
  const scales = new Float32Array(8);
  let maxScale = 0;
  let maxMin = 0;
  for (let j = 0; j < 8; j++) {
    const xs = x.subarray(32 * j, 32 * j + 32);
    let sumX2 = 0;
    for (let l = 0; l < 32; l++) sumX2 = f(sumX2 + f(xs[l] * xs[l]));
    const avX = f(Math.sqrt(f(sumX2 / 32)));
    for (let l = 0; l < 32; l++) w[l] = f(avX + Math.abs(xs[l]));
    const [scale, min] = makeQkx2(xs, w, 15, L.subarray(32 * j, 32 * j + 32), f(-1), f(0.1), 20);
    scales[j] = scale;
    mins[j] = min;
    if (scale > maxScale) maxScale = scale;
    if (min > maxMin) maxMin = min;
  }
  const invScale = maxScale > 0 ? f(63 / maxScale) : 0;
  const invMin = maxMin > 0 ? f(63 / maxMin) : 0;
  const sc = y.subarray(4, 16);
  sc.fill(0);
  for (let j = 0; j < 8; j++) {
    const ls = Math.min(63, nearestInt(f(invScale * scales[j])) & 255);
    const lm = Math.min(63, nearestInt(f(invMin * mins[j])) & 255);
    if (j < 4) {
      sc[j] = ls;
      sc[j + 4] = lm;
    } else {
      sc[j + 4] = (ls & 15) | ((lm & 15) << 4);
      sc[j - 4] |= (ls >> 4) << 6;
      sc[j] |= (lm >> 4) << 6;
    }
  }
  const v = new DataView(y.buffer, y.byteOffset, y.byteLength);
  v.setUint16(0, f32ToF16(f(maxScale / 63)), true);
  v.setUint16(2, f32ToF16(f(maxMin / 63)), true);
  const d0 = viaHalf(f(maxScale / 63));
  const m0 = viaHalf(f(maxMin / 63));
  for (let j = 0; j < 8; j++) {
    const [s, m] = scaleMinK4(j, sc);
    const d = f(d0 * s);
    if (!d) continue;
    const dm = f(m0 * m);
    for (let ii = 0; ii < 32; ii++) L[32 * j + ii] = Math.max(0, Math.min(15, nearestInt(f(f(x[32 * j + ii] + dm) / d))));
  }
  const q = y.subarray(16);
  for (let j = 0, o = 0; j < QK_K; j += 64, o += 32) {
    for (let l = 0; l < 32; l++) q[o + l] = L[j + l] | (L[j + l + 32] << 4);
  }
}

/** ggml's make_qx_quants with rmse_type 1 (weights x^2): signed levels in -nmax..nmax-1 (stored + nmax) and a scale. */
function makeQx(x: Float32Array, nmax: number, L: Int8Array): number {
  const n = x.length;
  let max = 0;
  let amax = 0;
  for (let i = 0; i < n; i++) {
    const ax = Math.abs(x[i]);
    if (ax > amax) { amax = ax; max = x[i]; }
  }
  if (amax < GROUP_MAX_EPS) {
    L.fill(0);
    return 0;
  }
  const level = (iscale: number, i: number) => Math.max(-nmax, Math.min(nmax - 1, nearestInt(f(iscale * x[i]))));
  const sums = (iscale: number): [number, number] => {
    let sumlx = 0, suml2 = 0;
    for (let i = 0; i < n; i++) {
      const l = level(iscale, i);
      const w = f(x[i] * x[i]);
      sumlx = f(sumlx + f(f(w * x[i]) * l));
      suml2 = f(suml2 + f(f(w * l) * l));
    }
    return [sumlx, suml2];
  };
  let iscale = f(-nmax / max);
  for (let i = 0; i < n; i++) L[i] = level(iscale, i) + nmax;
  let [sumlx, suml2] = sums(iscale);
  let scale = suml2 ? f(sumlx / suml2) : 0;
  let best = f(scale * sumlx);
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    iscale = f(-f(nmax + f(f(0.1) * is)) / max);
    [sumlx, suml2] = sums(iscale);
    if (suml2 > 0 && f(sumlx * sumlx) > f(best * suml2)) {
      for (let i = 0; i < n; i++) L[i] = level(iscale, i) + nmax;
      scale = f(sumlx / suml2);
      best = f(scale * sumlx);
    }
  }
  return scale;
}

// Q6_K: 128 bytes of low nibbles, 64 of high 2 bits, 16 int8 scales, d (f16). x = d sc (q - 32).
function q6_K(x: Float32Array, y: Uint8Array): void {
  const L = new Int8Array(QK_K);
  const scales = new Float32Array(16);
  let maxScale = 0;
  let maxAbsScale = 0;
  for (let ib = 0; ib < 16; ib++) {
    const scale = makeQx(x.subarray(16 * ib, 16 * ib + 16), 32, L.subarray(16 * ib, 16 * ib + 16));
    scales[ib] = scale;
    if (Math.abs(scale) > maxAbsScale) { maxAbsScale = Math.abs(scale); maxScale = scale; }
  }
  y.fill(0);
  if (maxAbsScale < GROUP_MAX_EPS) return;
  const v = new DataView(y.buffer, y.byteOffset, y.byteLength);
  const iscale = f(-128 / maxScale);
  v.setUint16(208, f32ToF16(f(1 / iscale)), true);
  const d0 = viaHalf(f(1 / iscale));
  for (let ib = 0; ib < 16; ib++) v.setInt8(192 + ib, Math.min(127, nearestInt(f(iscale * scales[ib]))));
  for (let j = 0; j < 16; j++) {
    const d = f(d0 * v.getInt8(192 + j));
    if (!d) continue;
    for (let ii = 0; ii < 16; ii++) L[16 * j + ii] = Math.max(-32, Math.min(31, nearestInt(f(x[16 * j + ii] / d)))) + 32;
  }
  for (let j = 0, ql = 0, qh = 128; j < QK_K; j += 128, ql += 64, qh += 32) {
    for (let l = 0; l < 32; l++) {
      const q1 = L[j + l] & 15, q2 = L[j + l + 32] & 15, q3 = L[j + l + 64] & 15, q4 = L[j + l + 96] & 15;
      y[ql + l] = q1 | (q3 << 4);
      y[ql + l + 32] = q2 | (q4 << 4);
      y[qh + l] = (L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6);
    }
  }
}
