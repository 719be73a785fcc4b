// The reward head of a reward model (transformers' LlamaForSequenceClassification with one label): the reward of a
// sequence is the final-normed hidden state of its last token dotted with the head w (D), no bias. Sequences come in
// pairs, 2p the chosen answer and 2p + 1 the rejected one, and the pairwise loss is
//   loss_p = -log sigmoid(r_2p - r_2p+1) = softplus(r_2p+1 - r_2p)
// (the loss of InstructGPT's and TRL's reward trainers), weighted by w = 1 / (pairs in the accumulated batch).
// With `gradient`, it also writes dxn at each last row (dxn = dr_b head; dxn is zero elsewhere, filled before) and
// accumulates the head's gradient gHead += sum_b dr_b xn[end_b]. A pair whose `ends` holds NONE is padding: no loss,
// no gradient. One workgroup does all of it: B is small (MAX_REWARD_BATCH), and D-long dot products are cheap.

// Grid: one workgroup.

import type { Kernel } from '../../gpu/program.js';
import { NONE, WORKGROUP } from '../common.js';

/** Sequences per reward micro-step (pairs x 2) the head kernel holds in workgroup memory. */
export const MAX_REWARD_BATCH = 64;

export function rewardHeadKernel(gradient: boolean): Kernel {
  return {
    name: `reward_head${gradient ? '_grad' : ''}`, workgroupSize: WORKGROUP, grid: () => [1, 1, 1],
    constants: { NONE, MAXB: MAX_REWARD_BATCH },
    // weight changes per step (1 / pairs of the accumulated batch): the trainer rewrites it by name.
    params: { B: 'u32', D: 'u32', weight: 'f32' },
    buffers: {
      xn: { type: 'array<f32>', access: 'read', shape: '(M, D) final-normed hidden states' },
      ends: { type: 'array<u32>', access: 'read', shape: '(B) row of each sequence\'s last token, NONE for padding' },
      head: { type: 'array<f32>', access: 'read', shape: '(D)' },
      rewards: { type: 'array<f32>', access: 'read_write', shape: '(B)' },
      loss: { type: 'array<f32>', access: 'read_write', shape: '(B / 2) per pair' },
      ...(gradient ? {
        dxn: { type: 'array<f32>', access: 'read_write', shape: '(M, D), zero but at the last rows' },
        gHead: { type: 'array<f32>', access: 'read_write', shape: '(D) accumulated' },
      } : {}),
    },
    source: /* wgsl */ `
var<workgroup> red: array<f32, WG>;
var<workgroup> r: array<f32, MAXB>;
var<workgroup> dr: array<f32, MAXB>;

fn main(@builtin(local_invocation_index) tid: u32) {
  // r_b = xn[end_b] . head
  for (var b = 0u; b < P.B; b++) {
    let e = ends[b];
    var s = 0.0;
    if (e != NONE) { for (var d = tid; d < P.D; d += WG) { s += xn[e * P.D + d] * head[d]; } }
    red[tid] = s;
    workgroupBarrier();
    for (var k = WG / 2u; k > 0u; k >>= 1u) {
      if (tid < k) { red[tid] += red[tid + k]; }
      workgroupBarrier();
    }
    if (tid == 0u) { r[b] = red[0]; rewards[b] = red[0]; }
    workgroupBarrier();
  }
  // loss_p = softplus(z), z = r_rejected - r_chosen; d loss / d r_chosen = -sigmoid(z), d / d r_rejected = sigmoid(z)
  let p = tid;
  if (p < P.B / 2u) {
    let live = ends[2u * p] != NONE && ends[2u * p + 1u] != NONE;
    let z = r[2u * p + 1u] - r[2u * p];
    let softplus = max(z, 0.0) + log(1.0 + exp(-abs(z)));
    let s = 1.0 / (1.0 + exp(-z));
    loss[p] = select(0.0, softplus, live);
    dr[2u * p] = select(0.0, -s * P.weight, live);
    dr[2u * p + 1u] = select(0.0, s * P.weight, live);
  }
  workgroupBarrier();
  ${gradient ? `for (var d = tid; d < P.D; d += WG) {
    var g = 0.0;
    for (var b = 0u; b < P.B; b++) {
      let e = ends[b];
      if (e == NONE) { continue; }
      g += dr[b] * xn[e * P.D + d];
      dxn[e * P.D + d] += dr[b] * head[d];
    }
    gHead[d] += g;
  }` : ''}
}`,
  };
}
