// Teacher forcing: the logit each projected sequence gives its target token, out[s] = logits[s, targets[s]]. With the
// step's log-sum-exp (top-k stage 2, at temperature 1 without penalty) this is the token's log-probability, so an
// evaluation reads back one float per sequence instead of the vocabulary. Grid: one thread per sequence.

import { need, threads, type Kernel } from '../gpu/program.js';
import { STEP, STEP_STRUCT } from './common.js';

const THREADS = 64;

export function gatherTargetKernel(): Kernel {
  return {
    name: 'gather_target', workgroupSize: THREADS, structs: STEP_STRUCT,
    grid: (s) => threads(need('gather_target', s).seqs, THREADS),
    params: { V: 'u32' },
    buffers: {
      S: STEP,
      logits: { type: 'array<f32>', access: 'read', shape: '(S, V)' },
      targets: { type: 'array<u32>', access: 'read', shape: '(S)' },
      out: { type: 'array<f32>', access: 'read_write', shape: '(S)' },
    },
    source: /* wgsl */ `
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let s = gid.x;
  if (s >= S.seqs) { return; }
  out[s] = logits[s * P.V + targets[s]];
}`,
  };
}
