// RoPE on q and k (rotate_half convention of transformers' LLaMA: pairs (i, i + Dh/2)), then k and v written into
// the KV cache at (slot, position) of each row. Positions and slots come from a GPU buffer, so the same recorded
// step serves every decode position; each position's cos and sin come from a table made on the CPU (ropeTable).
// Grid: one thread per (row, head, pair), M (H + 2 Hkv) Dh / 2 threads.

import { need, threads, type Kernel } from '../gpu/program.js';
import { ROW_INFO, SHARED, STEP, STEP_STRUCT, WORKGROUP } from './common.js';

export function ropeKvKernel(): Kernel {
  return {
    name: 'rope_kv', workgroupSize: WORKGROUP, structs: STEP_STRUCT, constants: SHARED,
    grid: (s) => { const { rows, H, Hkv, Dh } = need('rope_kv', s); return threads(rows * (H + 2 * Hkv) * (Dh / 2), WORKGROUP); },
    params: { H: 'u32', Hkv: 'u32', Dh: 'u32', C: 'u32' },
    buffers: {
      S: STEP,
      qkv: { type: 'array<f32>', access: 'read', shape: '(M, (H + 2 Hkv) Dh)' },
      rowInfo: ROW_INFO,
      rope: { type: 'array<vec2<f32>>', access: 'read', shape: '(C, Dh / 2)' },
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
    let dst = ((slot * P.Hkv + head - P.H - P.Hkv) * P.C + pos) * P.Dh;
    vc[dst + i] = a;
    vc[dst + i + half] = b;
    return;
  }
  let cs = rope[pos * half + i];
  let c = cs.x;
  let s = cs.y;
  let ra = a * c - b * s;
  let rb = b * c + a * s;
  if (head < P.H) {
    let dst = (m * P.H + head) * P.Dh;
    q[dst + i] = ra;
    q[dst + i + half] = rb;
  } else {
    let dst = ((slot * P.Hkv + head - P.H) * P.C + pos) * P.Dh;
    kc[dst + i] = ra;
    kc[dst + i + half] = rb;
  }
}`,
  };
}
