// Cross-entropy over the vocabulary for a chunk of rows, in place: logits become dlogits = (softmax - onehot) * w,
// w = 1 / (number of unmasked labels in the whole batch). Masked rows (label 0xffffffff, i.e. -100) get zero
// gradient and zero loss. One workgroup per row; the row's loss (lse - logit[label]) goes to `loss`.
// Gemma 2's final soft-capping (softcap c > 0): the softmax reads z = c tanh(x / c) of each logit x, and the gradient
// written is d/dx: (softmax - onehot) w (1 - tanh^2(x / c)). c = 0: the logits as they are.
// `perRow`: each row's gradient is also multiplied by its own weight (rowWeight, any sign): a preference objective
// weighs each sequence's log-likelihood by dLoss/dlogp of that sequence (training/preference.ts).

// Grid: one workgroup per row of the chunk.

import { need, type Kernel } from '../../gpu/program.js';
import { TANH_SAFE } from '../activation.js';
import { SHARED, WORKGROUP } from '../common.js';

export function crossEntropyKernel(perRow = false): Kernel {
  return {
    name: perRow ? 'cross_entropy_weighted' : 'cross_entropy', workgroupSize: WORKGROUP, constants: SHARED,
    grid: (s) => [need('cross_entropy', s).rows, 1, 1],
    // weight changes per step (1 / labels of the accumulated batch): the trainer rewrites it by name.
    params: { rows: 'u32', V: 'u32', labelOff: 'u32', weight: 'f32', softcap: 'f32' },
    buffers: {
      logits: { type: 'array<f32>', access: 'read_write', shape: '(rows, V) -> dlogits' },
      labels: { type: 'array<u32>', access: 'read', shape: '(M), NONE where masked' },
      loss: { type: 'array<f32>', access: 'read_write', shape: '(M)' },
      ...(perRow ? { rowWeight: { type: 'array<f32>', access: 'read', shape: '(M) each row\'s gradient weight' } } : {}),
    },
    source: /* wgsl */ `${TANH_SAFE}
var<workgroup> red: array<f32, WG>;

// The logit the softmax reads (soft-capped or not), and its derivative by the stored one.
fn z(i: u32) -> vec2<f32> {
  if (P.softcap <= 0.0) { return vec2<f32>(logits[i], 1.0); }
  let t = tanh_safe(logits[i] / P.softcap);
  return vec2<f32>(P.softcap * t, 1.0 - t * t);
}

fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) tid: u32) {
  let r = wid.x;
  if (r >= P.rows) { return; }
  let label = labels[P.labelOff + r];
  let b = r * P.V;
  var mx = NEG_BIG;
  for (var v = tid; v < P.V; v += WG) { mx = max(mx, z(b + v).x); }
  red[tid] = mx;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (tid < s) { red[tid] = max(red[tid], red[tid + s]); }
    workgroupBarrier();
  }
  mx = red[0];
  workgroupBarrier();
  var sum = 0.0;
  for (var v = tid; v < P.V; v += WG) { sum += exp(z(b + v).x - mx); }
  red[tid] = sum;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (tid < s) { red[tid] += red[tid + s]; }
    workgroupBarrier();
  }
  let lse = mx + log(red[0]);
  let masked = label == NONE;
  if (tid == 0u) { loss[P.labelOff + r] = select(lse - z(b + label).x, 0.0, masked); }
  workgroupBarrier();
  for (var v = tid; v < P.V; v += WG) {
    let zv = z(b + v);
    let g = (exp(zv.x - lse) - select(0.0, 1.0, v == label)) * zv.y;
    logits[b + v] = select(g * P.weight${perRow ? ' * rowWeight[P.labelOff + r]' : ''}, 0.0, masked);
  }
}`,
  };
}
