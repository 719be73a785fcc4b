// LoRA shrink: u[m, g, :] = xin[m] A[slot(m), g]^T for each module g of a projection group, where xin is x, or x
// RMS-normalized with gain when the group's matmul fuses the norm (so u sees the same input as the base matmul).
// One workgroup per row; rows without an adapter write zeros. Rank is small (<= 64), so one thread per output.

import { STEP_STRUCT } from './common.js';

export function loraShrinkShader(norm: boolean): string {
  return /* wgsl */ `
${STEP_STRUCT}
struct Params { K: u32, G: u32, rank: u32, ldx: u32, eps: f32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<uniform> S: Step;
@group(0) @binding(2) var<storage, read> x: array<f32>;              // (M, ldx)
@group(0) @binding(3) var<storage, read> rowInfo: array<u32>;        // (M, 4)
@group(0) @binding(4) var<storage, read> loraA: array<f32>;          // (slots, G, r, K)
@group(0) @binding(5) var<storage, read_write> u: array<f32>;        // (M, G, r)
${norm ? '@group(0) @binding(6) var<storage, read> gain: array<f32>;            // (K)' : ''}
var<workgroup> red: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) tid: u32) {
  let m = wid.x;
  if (m >= S.rows) { return; }
  let outs = P.G * P.rank;
  let xb = m * P.ldx;
  var rstd = 1.0;
  ${norm ? `var ss = 0.0;
  for (var k = tid; k < P.K; k += 256u) { ss += x[xb + k] * x[xb + k]; }
  red[tid] = ss;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) {
    if (tid < s) { red[tid] += red[tid + s]; }
    workgroupBarrier();
  }
  rstd = inverseSqrt(red[0] / f32(P.K) + P.eps);` : ''}
  // After the barriers: the slot is read from storage, so branching on it must come last.
  let slot = rowInfo[4u * m + 2u];
  if (slot == 0u) {
    for (var o = tid; o < outs; o += 256u) { u[m * outs + o] = 0.0; }
    return;
  }
  for (var o = tid; o < outs; o += 256u) {
    let a0 = (slot * outs + o) * P.K;
    var t = 0.0;
    for (var k = 0u; k < P.K; k++) { t += x[xb + k]${norm ? ' * gain[k]' : ''} * loraA[a0 + k]; }
    u[m * outs + o] = t * rstd;
  }
}`;
}
