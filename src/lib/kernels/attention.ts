// Causal attention with grouped KV heads over the KV cache. One workgroup per (head, row): grid (H, M); each thread
// runs an online softmax over a strided subset of the keys 0..pos (the last W of them under a sliding window), then the partial (max, sum, output) are merged in
// workgroup memory. Also writes the row's log-sum-exp, which a backward pass needs to recompute probabilities.
// Gemma 2's soft-capping (softcap > 0): each score s = scale q.k becomes softcap tanh(s / softcap) before the softmax.

import { need, type BufferDecl, type Kernel } from '../gpu/program.js';
import { TANH_SAFE } from './activation.js';
import { ROW_INFO, SHARED, STEP, STEP_STRUCT } from './common.js';

/**
 * Threads per workgroup for head dimension `dh`: the merge buffer (threads x Dh floats) stays at 12 KiB, so with the
 * rest the kernel fits WebGPU's default 16 KiB of workgroup memory (Dh 64: 48 threads; Dh 128: 24).
 */
export function attentionThreads(dh: number): number {
  return Math.max(8, Math.min(64, Math.floor(3072 / dh)));
}

/**
 * The uniforms and buffers of both attention kernels (this one and the many-row one of kernels/attention-rows.ts).
 * window: a sliding window of W positions (a query at p sees keys p - W < j <= p), 0 for none; softcap: 0 for none.
 */
export const ATTENTION_PARAMS = { H: 'u32', Hkv: 'u32', C: 'u32', scale: 'f32', window: 'u32', softcap: 'f32' } as const;
export const ATTENTION_BUFFERS: Record<string, BufferDecl> = {
  S: STEP,
  q: { type: 'array<f32>', access: 'read', shape: '(M, H, Dh)' },
  rowInfo: ROW_INFO,
  kc: { type: 'array<f32>', access: 'read', shape: '(slots, Hkv, C, Dh)' },
  vc: { type: 'array<f32>', access: 'read', shape: '(slots, Hkv, C, Dh)' },
  out: { type: 'array<f32>', access: 'read_write', shape: '(M, H, Dh)' },
  lse: { type: 'array<f32>', access: 'read_write', shape: '(M, H)' },
};

export function attentionKernel(dh: number): Kernel {
  return {
    name: 'attention', workgroupSize: attentionThreads(dh), structs: STEP_STRUCT, constants: { ...SHARED, DH: dh },
    grid: (s) => { const { H, rows } = need('attention', s); return [H, rows, 1]; },
    params: ATTENTION_PARAMS, buffers: ATTENTION_BUFFERS,
    source: /* wgsl */ `${TANH_SAFE}
var<workgroup> qs: array<f32, DH>;
var<workgroup> partO: array<f32, WG * DH>;
var<workgroup> partM: array<f32, WG>;
var<workgroup> partL: array<f32, WG>;

fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) tid: u32) {
  let h = wid.x;
  let m = wid.y;
  if (m >= S.rows) { return; }
  let slot = rowInfo[RI * m + RI_SLOT];
  let pos = rowInfo[RI * m + RI_POS];
  let kvh = h / (P.H / P.Hkv);
  for (var d = tid; d < DH; d += WG) { qs[d] = q[(m * P.H + h) * DH + d] * P.scale; }
  workgroupBarrier();

  var mx = NEG_BIG;
  var l = 0.0;
  var o: array<f32, DH>;
  let first = select(0u, pos + 1u - P.window, P.window > 0u && pos + 1u > P.window);
  for (var j = first + tid; j <= pos; j += WG) {
    let kb = ((slot * P.Hkv + kvh) * P.C + j % P.C) * DH; // a ring of C rows (C past every position when full)
    var s = 0.0;
    for (var d = 0u; d < DH; d++) { s += qs[d] * kc[kb + d]; }
    if (P.softcap > 0.0) { s = P.softcap * tanh_safe(s / P.softcap); }
    let newMax = max(mx, s);
    let corr = exp(mx - newMax);
    let p = exp(s - newMax);
    l = l * corr + p;
    for (var d = 0u; d < DH; d++) { o[d] = o[d] * corr + p * vc[kb + d]; }
    mx = newMax;
  }
  partM[tid] = mx;
  workgroupBarrier();
  var gmax = NEG_BIG;
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
}`,
  };
}
