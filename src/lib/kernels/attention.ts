// Causal attention with grouped KV heads over the KV cache. One workgroup per (row, head); each thread runs an
// online softmax over a strided subset of the keys 0..pos, then the partial (max, sum, output) are merged in
// workgroup memory. Also writes the row's log-sum-exp, which a backward pass needs to recompute probabilities.

import { NEG_BIG, STEP_STRUCT } from './common.js';

/**
 * Threads per workgroup for head dimension `dh`: the merge buffer (threads x Dh floats) stays at 12 KiB, so with the
 * rest the kernel fits WebGPU's default 16 KiB of workgroup memory (Dh 64: 48 threads; Dh 128: 24).
 */
export function attentionThreads(dh: number): number {
  return Math.max(8, Math.min(64, Math.floor(3072 / dh)));
}

export function attentionShader(dh: number): string {
  const wg = attentionThreads(dh);
  return /* wgsl */ `
${STEP_STRUCT}
struct Params { H: u32, Hkv: u32, C: u32, scale: f32 }
const DH: u32 = ${dh}u;
const WG: u32 = ${wg}u;
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<uniform> S: Step;
@group(0) @binding(2) var<storage, read> q: array<f32>;              // (M, H, Dh)
@group(0) @binding(3) var<storage, read> rowInfo: array<u32>;        // (M, 4): slot, position, lora slot, lora scale
@group(0) @binding(4) var<storage, read> kc: array<f32>;             // (slots, Hkv, C, Dh)
@group(0) @binding(5) var<storage, read> vc: array<f32>;             // (slots, Hkv, C, Dh)
@group(0) @binding(6) var<storage, read_write> out: array<f32>;      // (M, H, Dh)
@group(0) @binding(7) var<storage, read_write> lse: array<f32>;      // (M, H)

var<workgroup> qs: array<f32, DH>;
var<workgroup> partO: array<f32, ${wg * dh}>;
var<workgroup> partM: array<f32, WG>;
var<workgroup> partL: array<f32, WG>;

@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) tid: u32) {
  let h = wid.x;
  let m = wid.y;
  if (m >= S.rows) { return; }
  let slot = rowInfo[4u * m];
  let pos = rowInfo[4u * m + 1u];
  let kvh = h / (P.H / P.Hkv);
  for (var d = tid; d < DH; d += WG) { qs[d] = q[(m * P.H + h) * DH + d] * P.scale; }
  workgroupBarrier();

  var mx = ${NEG_BIG};
  var l = 0.0;
  var o: array<f32, DH>;
  for (var j = tid; j <= pos; j += WG) {
    let kb = ((slot * P.Hkv + kvh) * P.C + j) * DH;
    var s = 0.0;
    for (var d = 0u; d < DH; d++) { s += qs[d] * kc[kb + d]; }
    let newMax = max(mx, s);
    let corr = exp(mx - newMax);
    let p = exp(s - newMax);
    l = l * corr + p;
    for (var d = 0u; d < DH; d++) { o[d] = o[d] * corr + p * vc[kb + d]; }
    mx = newMax;
  }
  partM[tid] = mx;
  workgroupBarrier();
  var gmax = ${NEG_BIG};
  for (var t = 0u; t < WG; t++) { gmax = max(gmax, partM[t]); }
  let f = exp(mx - gmax);
  partL[tid] = l * f;
  for (var d = 0u; d < DH; d++) { partO[tid * DH + d] = o[d] * f; }
  workgroupBarrier();
  var total = 0.0;
  for (var t = 0u; t < WG; t++) { total += partL[t]; }
  for (var d = tid; d < DH; d += WG) {
    var acc = 0.0;
    for (var t = 0u; t < WG; t++) { acc += partO[t * DH + d]; }
    out[(m * P.H + h) * DH + d] = acc / total;
  }
  if (tid == 0u) { lse[m * P.H + h] = gmax + log(total); }
}`;
}
