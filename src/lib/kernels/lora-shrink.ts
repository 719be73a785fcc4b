// LoRA shrink: u[m, g, :] = xin[m] A[slot(m), g]^T for each module g of a projection group, where xin is x, or x
// RMS-normalized with gain when the group's matmul fuses the norm (so u sees the same input as the base matmul).
// One workgroup per row (grid (M)); rows without an adapter write zeros. Rank is small (<= 64): one thread per output.

import { need, type Kernel } from '../gpu/program.js';
import { ROW_INFO, SHARED, STEP, STEP_STRUCT, WORKGROUP } from './common.js';

export function loraShrinkKernel(norm: boolean): Kernel {
  return {
    name: norm ? 'lora_shrink_norm' : 'lora_shrink', workgroupSize: WORKGROUP, structs: STEP_STRUCT, constants: SHARED,
    grid: (s) => [need('lora_shrink', s).rows, 1, 1],
    params: { K: 'u32', G: 'u32', rank: 'u32', ldx: 'u32', eps: 'f32' },
    buffers: {
      S: STEP,
      x: { type: 'array<f32>', access: 'read', shape: '(M, ldx)' },
      rowInfo: ROW_INFO,
      loraA: { type: 'array<f32>', access: 'read', shape: '(slots, G, r, K)' },
      u: { type: 'array<f32>', access: 'read_write', shape: '(M, G, r)' },
      ...(norm ? { gain: { type: 'array<f32>', access: 'read' as const, shape: '(K)' } } : {}),
    },
    source: /* wgsl */ `
var<workgroup> red: array<f32, WG>;

fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) tid: u32) {
  let m = wid.x;
  if (m >= S.rows) { return; }
  let outs = P.G * P.rank;
  let xb = m * P.ldx;
  var rstd = 1.0;
  ${norm ? `var ss = 0.0;
  for (var k = tid; k < P.K; k += WG) { ss += x[xb + k] * x[xb + k]; }
  red[tid] = ss;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (tid < s) { red[tid] += red[tid + s]; }
    workgroupBarrier();
  }
  rstd = inverseSqrt(red[0] / f32(P.K) + P.eps);` : ''}
  // After the barriers: the slot is read from storage, so branching on it must come last.
  let slot = rowInfo[RI * m + RI_LORA_SLOT];
  if (slot == 0u) {
    for (var o = tid; o < outs; o += WG) { u[m * outs + o] = 0.0; }
    return;
  }
  for (var o = tid; o < outs; o += WG) {
    let a0 = (slot * outs + o) * P.K;
    var t = 0.0;
    for (var k = 0u; k < P.K; k++) { t += x[xb + k]${norm ? ' * gain[k]' : ''} * loraA[a0 + k]; }
    u[m * outs + o] = t * rstd;
  }
}`,
  };
}
