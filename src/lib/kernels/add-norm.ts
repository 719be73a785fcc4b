// Gemma's post-norms: the attention (or MLP) output y is RMS-normalized and scaled by its gain before it joins the
// residual stream: x[m] += y[m] * rstd * g, rstd = 1 / sqrt(mean(y[m]^2) + eps). Inference and training run the same
// kernel (training adds into a copy of the stream); its backward is the RMSNorm backward (train/norm.ts) with the
// stream's gradient as dy.
// Grid: one workgroup per row (S.rows rows, from the step's uniform).

import { need, type Kernel } from '../gpu/program.js';
import { STEP, STEP_STRUCT, WORKGROUP } from './common.js';
import { REDUCE } from './train/norm.js';

export function addNormKernel(): Kernel {
  return {
    name: 'add_norm', workgroupSize: WORKGROUP, structs: STEP_STRUCT, params: { K: 'u32', eps: 'f32' },
    grid: (s) => [need('add_norm', s).rows, 1, 1],
    buffers: {
      S: STEP,
      y: { type: 'array<f32>', access: 'read', shape: '(M, K)' },
      gain: { type: 'array<f32>', access: 'read', shape: '(K)' },
      x: { type: 'array<f32>', access: 'read_write', shape: '(M, K): the residual stream, added to' },
    },
    source: /* wgsl */ `${REDUCE}
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) tid: u32) {
  let m = wid.x;
  if (m >= S.rows) { return; }
  let b = m * P.K;
  var ss = 0.0;
  for (var k = tid; k < P.K; k += WG) { ss += y[b + k] * y[b + k]; }
  let rstd = inverseSqrt(reduce(tid, ss) / f32(P.K) + P.eps);
  for (var k = tid; k < P.K; k += WG) { x[b + k] += y[b + k] * rstd * gain[k]; }
}`,
  };
}
