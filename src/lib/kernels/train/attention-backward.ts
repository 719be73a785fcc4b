// Causal GQA attention backward (no atomics), recomputing probabilities from the forward's log-sum-exp:
//   p_ij = exp(q_i . k_j * scale - lse_i), D_i = do_i . o_i, ds_ij = p_ij (do_i . v_j - D_i)
//   dq_i = scale sum_j ds_ij k_j                         (one workgroup per (row, head))
//   dk_j = scale sum_{i>=j, h in group} ds_ij q_i,  dv_j = sum p_ij do_i   (one workgroup per (key, kv head))
// Rows are B sequences of T positions (row = b T + t); K/V live in the cache layout (B, Hkv, T, Dh).
// Gemma 2's soft-capping (softcap c > 0): the softmax reads c tanh(s / c) of s = scale q.k, so ds is multiplied by its
// derivative 1 - tanh^2(s / c) (probs(): the probability and that factor).

// Grids: dq (H, M); dk/dv (Hkv, M).

import { need, type BufferDecl, type Kernel } from '../../gpu/program.js';
import { TANH_SAFE } from '../activation.js';

const f32s = (access: 'read' | 'read_write', shape: string): BufferDecl => ({ type: 'array<f32>', access, shape });

/** The inputs of every attention backward kernel (this file's and the many-row ones). */
export const BACKWARD_INPUTS: Record<string, BufferDecl> = {
  q: f32s('read', '(M, H, Dh), rotated'),
  kc: f32s('read', '(B, Hkv, T, Dh), rotated'),
  vc: f32s('read', '(B, Hkv, T, Dh)'),
  o: f32s('read', '(M, H, Dh) forward output'),
  dout: f32s('read', '(M, H, Dh)'),
  lse: f32s('read', '(M, H)'),
};

/** The probability of score s = scale q.k under log-sum-exp l, and d(capped score)/ds (1 without soft-capping). */
export const PROBS = /* wgsl */ `${TANH_SAFE}
fn probs(s: f32, l: f32) -> vec2<f32> {
  if (P.softcap <= 0.0) { return vec2<f32>(exp(s - l), 1.0); }
  let t = tanh_safe(s / P.softcap);
  return vec2<f32>(exp(P.softcap * t - l), 1.0 - t * t);
}`;

/** The uniforms of every attention backward kernel. */
export const BACKWARD_PARAMS = { H: 'u32', Hkv: 'u32', T: 'u32', scale: 'f32', M: 'u32', window: 'u32', softcap: 'f32' } as const;

const HELPERS = /* wgsl */ `${PROBS}
fn dotQK(qi: u32, kj: u32) -> f32 { var s = 0.0; for (var d = 0u; d < DH; d++) { s += q[qi + d] * kc[kj + d]; } return s; }
fn dotDV(di: u32, vj: u32) -> f32 { var s = 0.0; for (var d = 0u; d < DH; d++) { s += dout[di + d] * vc[vj + d]; } return s; }
fn dotDO(i: u32) -> f32 { var s = 0.0; for (var d = 0u; d < DH; d++) { s += dout[i + d] * o[i + d]; } return s; }`;

export function attentionBackwardThreads(dh: number): number {
  return Math.max(4, Math.min(32, Math.floor(2048 / dh)));
}

function attentionBackward(name: string, dh: number, outputs: Record<string, BufferDecl>, source: string, heads: 'H' | 'Hkv'): Kernel {
  return {
    name, workgroupSize: attentionBackwardThreads(dh), constants: { DH: dh },
    grid: (s) => { const n = need(name, s); return [n[heads], n.M, 1]; },
    // window: a sliding window of W positions (query i sees keys i - W < j <= i), 0 for none.
    params: BACKWARD_PARAMS,
    buffers: { ...BACKWARD_INPUTS, ...outputs }, source: HELPERS + source,
  };
}

export function attentionBackwardDqKernel(dh: number): Kernel {
  return attentionBackward('attention_backward_dq', dh, { dq: f32s('read_write', '(M, H, Dh)') }, /* wgsl */ `
var<workgroup> part: array<f32, WG * DH>;
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) tid: u32) {
  let h = wid.x;
  let m = wid.y;
  if (m >= P.M) { return; }
  let b = m / P.T;
  let t = m % P.T;
  let kvh = h / (P.H / P.Hkv);
  let qi = (m * P.H + h) * DH;
  let Di = dotDO(qi);
  let l = lse[m * P.H + h];
  var acc: array<f32, DH>;
  let first = select(0u, t + 1u - P.window, P.window > 0u && t + 1u > P.window);
  for (var j = first + tid; j <= t; j += WG) {
    let kj = ((b * P.Hkv + kvh) * P.T + j) * DH;
    let pg = probs(dotQK(qi, kj) * P.scale, l);
    let ds = pg.x * (dotDV(qi, kj) - Di) * pg.y * P.scale;
    for (var d = 0u; d < DH; d++) { acc[d] += ds * kc[kj + d]; }
  }
  for (var d = 0u; d < DH; d++) { part[tid * DH + d] = acc[d]; }
  workgroupBarrier();
  for (var d = tid; d < DH; d += WG) {
    var s = 0.0;
    for (var u = 0u; u < WG; u++) { s += part[u * DH + d]; }
    dq[qi + d] = s;
  }
}`, 'H');
}

export function attentionBackwardDkvKernel(dh: number): Kernel {
  return attentionBackward('attention_backward_dkv', dh, { dk: f32s('read_write', '(B, Hkv, T, Dh)'), dv: f32s('read_write', '(B, Hkv, T, Dh)') }, /* wgsl */ `
var<workgroup> partK: array<f32, WG * DH>;
var<workgroup> partV: array<f32, WG * DH>;
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) tid: u32) {
  let kvh = wid.x;
  let key = wid.y;          // b * T + j
  if (key >= P.M) { return; }
  let b = key / P.T;
  let j = key % P.T;
  let group = P.H / P.Hkv;
  let kj = ((b * P.Hkv + kvh) * P.T + j) * DH;
  var ak: array<f32, DH>;
  var av: array<f32, DH>;
  // The queries that see key j: j to T - 1, or to j + W - 1 under a sliding window of W.
  let last = select(P.T, min(P.T, j + P.window), P.window > 0u);
  let pairs = (last - j) * group;
  for (var e = tid; e < pairs; e += WG) {
    let i = j + e / group;              // query position
    let h = kvh * group + e % group;    // query head
    let m = b * P.T + i;
    let qi = (m * P.H + h) * DH;
    let pg = probs(dotQK(qi, kj) * P.scale, lse[m * P.H + h]);
    let ds = pg.x * (dotDV(qi, kj) - dotDO(qi)) * pg.y * P.scale;
    for (var d = 0u; d < DH; d++) {
      ak[d] += ds * q[qi + d];
      av[d] += pg.x * dout[qi + d];
    }
  }
  for (var d = 0u; d < DH; d++) { partK[tid * DH + d] = ak[d]; partV[tid * DH + d] = av[d]; }
  workgroupBarrier();
  for (var d = tid; d < DH; d += WG) {
    var sk = 0.0;
    var sv = 0.0;
    for (var u = 0u; u < WG; u++) { sk += partK[u * DH + d]; sv += partV[u * DH + d]; }
    dk[kj + d] = sk;
    dv[kj + d] = sv;
  }
}`, 'Hkv');
}
