// Embedding lookup: x[m, :] = scale E[tokens[m], :] (scale: Gemma's sqrt(D), else 1). The table may be split into row shards (vocab ranges) when it is
// larger than one storage binding; each shard's dispatch writes only the rows whose token falls in its range.
// The table is f32, f16 or q8 blocks (weight-read.ts; P.K = D is the row length the readers need).
// Grid: one thread per (row, d), M D threads.

import { need, threads, type Kernel } from '../gpu/program.js';
import type { WeightFormat } from '../quant/blocks.js';
import { STEP, STEP_STRUCT, WORKGROUP } from './common.js';
import { weightBuffer, weightReaders } from './weight-read.js';

export function embedKernel(format: WeightFormat): Kernel {
  return {
    name: `embed+${format}`, workgroupSize: WORKGROUP, structs: STEP_STRUCT,
    grid: (s) => { const { rows, D } = need('embed', s); return threads(rows * D, WORKGROUP); },
    params: { K: 'u32', rowStart: 'u32', rowCount: 'u32', ldw: 'u32', scale: 'f32' },
    buffers: {
      S: STEP,
      E: weightBuffer(format, '(rowCount, ldw)'),
      tokens: { type: 'array<u32>', access: 'read', shape: '(M)' },
      x: { type: 'array<f32>', access: 'read_write', shape: '(M, K)' },
    },
    source: /* wgsl */ `${weightReaders(format, 'E')}
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let idx = gid.x + gid.y * nwg.x * WG;
  let m = idx / P.K;
  let d = idx % P.K;
  if (m >= S.rows) { return; }
  let t = tokens[m];
  if (t < P.rowStart || t >= P.rowStart + P.rowCount) { return; }
  x[m * P.K + d] = EAt(t - P.rowStart, d) * P.scale;
}`,
  };
}
