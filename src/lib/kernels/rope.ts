// RoPE on q and k (rotate_half convention of transformers' LLaMA: pairs (i, i + R/2) of the first R dims of each head,
// R = Dh but for a partial rotary (Phi-4-mini: R = 0.75 Dh), whose other dims pass as they are), then k and v written into
// the KV cache at (slot, position) of each row: row position mod C of the slot's C rows (a layer with a sliding window
// keeps a ring shorter than the context; a full cache has C past every position). Positions and slots come from a GPU buffer, so the same recorded
// step serves every decode position; each position's cos and sin come from a table made on the CPU (ropeTable).
// Grid: one thread per (row, head, pair), M (H + 2 Hkv) Dh / 2 threads.

import { need, threads, type Kernel } from '../gpu/program.js';
import { ROW_INFO, SHARED, STEP, STEP_STRUCT, WORKGROUP } from './common.js';

export function ropeKvKernel(): Kernel {
  return {
    name: 'rope_kv', workgroupSize: WORKGROUP, structs: STEP_STRUCT, constants: SHARED,
    grid: (s) => { const { rows, H, Hkv, Dh } = need('rope_kv', s); return threads(rows * (H + 2 * Hkv) * (Dh / 2), WORKGROUP); },
    params: { H: 'u32', Hkv: 'u32', Dh: 'u32', C: 'u32', R: 'u32' },
    buffers: {
      S: STEP,
      qkv: { type: 'array<f32>', access: 'read', shape: '(M, (H + 2 Hkv) Dh)' },
      rowInfo: ROW_INFO,
      rope: { type: 'array<vec2<f32>>', access: 'read', shape: '(positions, R / 2)' },
      q: { type: 'array<f32>', access: 'read_write', shape: '(M, H, Dh)' },
      kc: { type: 'array<f32>', access: 'read_write', shape: '(slots, Hkv, C, Dh)' },
      vc: { type: 'array<f32>', access: 'read_write', shape: '(slots, Hkv, C, Dh)' },
    },
    source: /* wgsl */ `
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let half = P.Dh / 2u;
  let perRow = (P.H + 2u * P.Hkv) * half;
  let idx = gid.x + gid.y * nwg.x * WG;
  let m = idx / perRow;
  if (m >= S.rows) { return; }
  let j = idx % perRow;
  let head = j / half;
  let i = j % half;
  let slot = rowInfo[RI * m + RI_SLOT];
  let pos = rowInfo[RI * m + RI_POS];
  let src = m * (P.H + 2u * P.Hkv) * P.Dh + head * P.Dh;
  let a = qkv[src + i];
  let b = qkv[src + i + half];
  if (head >= P.H + P.Hkv) {
    let dst = ((slot * P.Hkv + head - P.H - P.Hkv) * P.C + pos % P.C) * P.Dh;
    vc[dst + i] = a;
    vc[dst + i + half] = b;
    return;
  }
  // Pair slot i rotates dims (i, i + R/2) while i < R/2; past that it carries two unrotated dims across.
  let rh = P.R / 2u;
  var i0 = i;
  var i1 = i + rh;
  var ra = 0.0;
  var rb = 0.0;
  if (i < rh) {
    let x0 = qkv[src + i0];
    let x1 = qkv[src + i1];
    let cs = rope[pos * rh + i];
    ra = x0 * cs.x - x1 * cs.y;
    rb = x1 * cs.x + x0 * cs.y;
  } else {
    i0 = P.R + 2u * (i - rh);
    i1 = i0 + 1u;
    ra = qkv[src + i0];
    rb = qkv[src + i1];
  }
  if (head < P.H) {
    let dst = (m * P.H + head) * P.Dh;
    q[dst + i0] = ra;
    q[dst + i1] = rb;
  } else {
    let dst = ((slot * P.Hkv + head - P.H) * P.C + pos % P.C) * P.Dh;
    kc[dst + i0] = ra;
    kc[dst + i1] = rb;
  }
}`,
  };
}
