// Gemma 2's final-logit soft-capping, in place on the logits of the call's sequences: z <- c tanh(z / c), before the
// top-k, the log-sum-exp and the teacher-forced gather read them. (Training folds it into the cross-entropy kernel.)
// Grid: one thread per logit, S.seqs V threads.

import { need, threads, type Kernel } from '../gpu/program.js';
import { TANH_SAFE } from './activation.js';
import { STEP, STEP_STRUCT, WORKGROUP } from './common.js';

export function softcapKernel(): Kernel {
  return {
    name: 'softcap', workgroupSize: WORKGROUP, structs: STEP_STRUCT, params: { V: 'u32', softcap: 'f32' },
    grid: (s) => { const { seqs, V } = need('softcap', s); return threads(seqs * V, WORKGROUP); },
    buffers: { S: STEP, logits: { type: 'array<f32>', access: 'read_write', shape: '(seqs, V)' } },
    source: /* wgsl */ `${TANH_SAFE}
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= S.seqs * P.V) { return; }
  logits[i] = P.softcap * tanh_safe(logits[i] / P.softcap);
}`,
  };
}
