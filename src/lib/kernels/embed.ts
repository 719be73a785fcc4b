// Embedding lookup: x[m, :] = E[tokens[m], :]. The table may be split into row shards (vocab ranges) when it is
// larger than one storage binding; each shard's dispatch writes only the rows whose token falls in its range.

import { enableF16, STEP_STRUCT, weightType } from './common.js';

export function embedShader(f16: boolean): string {
  return /* wgsl */ `${enableF16(f16)}
${STEP_STRUCT}
struct Params { D: u32, rowStart: u32, rowCount: u32, ldw: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<uniform> S: Step;
@group(0) @binding(2) var<storage, read> E: array<${weightType(f16)}>;   // (rowCount, ldw)
@group(0) @binding(3) var<storage, read> tokens: array<u32>;           // (M)
@group(0) @binding(4) var<storage, read_write> x: array<f32>;          // (M, D)

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let idx = gid.x + gid.y * nwg.x * 256u;
  let m = idx / P.D;
  let d = idx % P.D;
  if (m >= S.rows) { return; }
  let t = tokens[m];
  if (t < P.rowStart || t >= P.rowStart + P.rowCount) { return; }
  x[m * P.D + d] = f32(E[(t - P.rowStart) * P.ldw + d]);
}`;
}
