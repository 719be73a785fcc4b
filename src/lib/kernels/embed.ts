// Embedding lookup: x[m, :] = E[tokens[m], :]. The table may be split into row shards (vocab ranges) when it is
// larger than one storage binding; each shard's dispatch writes only the rows whose token falls in its range.
// Grid: one thread per (row, d), M D threads.

import { need, threads, type Kernel } from '../gpu/program.js';
import { STEP, STEP_STRUCT, WORKGROUP, weightType } from './common.js';

export function embedKernel(f16: boolean): Kernel {
  return {
    name: 'embed', f16, workgroupSize: WORKGROUP, structs: STEP_STRUCT,
    grid: (s) => { const { rows, D } = need('embed', s); return threads(rows * D, WORKGROUP); },
    params: { D: 'u32', rowStart: 'u32', rowCount: 'u32', ldw: 'u32' },
    buffers: {
      S: STEP,
      E: { type: `array<${weightType(f16)}>`, access: 'read', shape: '(rowCount, ldw)' },
      tokens: { type: 'array<u32>', access: 'read', shape: '(M)' },
      x: { type: 'array<f32>', access: 'read_write', shape: '(M, D)' },
    },
    source: /* wgsl */ `
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let idx = gid.x + gid.y * nwg.x * WG;
  let m = idx / P.D;
  let d = idx % P.D;
  if (m >= S.rows) { return; }
  let t = tokens[m];
  if (t < P.rowStart || t >= P.rowStart + P.rowCount) { return; }
  x[m * P.D + d] = f32(E[(t - P.rowStart) * P.ldw + d]);
}`,
  };
}
