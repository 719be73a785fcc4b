// RoPE on q and k (rotate_half convention of transformers' LLaMA: pairs (i, i + Dh/2)), then k and v written into
// the KV cache at (slot, position) of each row. Positions and slots come from a GPU buffer, so the same recorded
// step serves every decode position.

import { STEP_STRUCT } from './common.js';

export function ropeKvShader(): string {
  return /* wgsl */ `
${STEP_STRUCT}
struct Params { H: u32, Hkv: u32, Dh: u32, C: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<uniform> S: Step;
@group(0) @binding(2) var<storage, read> qkv: array<f32>;            // (M, (H + 2 Hkv) Dh)
@group(0) @binding(3) var<storage, read> rowInfo: array<u32>;        // (M, 4): slot, position, lora slot, lora scale
@group(0) @binding(4) var<storage, read> invFreq: array<f32>;        // (Dh / 2)
@group(0) @binding(5) var<storage, read_write> q: array<f32>;        // (M, H, Dh)
@group(0) @binding(6) var<storage, read_write> kc: array<f32>;       // (slots, Hkv, C, Dh)
@group(0) @binding(7) var<storage, read_write> vc: array<f32>;       // (slots, Hkv, C, Dh)

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let half = P.Dh / 2u;
  let perRow = (P.H + 2u * P.Hkv) * half;
  let idx = gid.x + gid.y * nwg.x * 256u;
  let m = idx / perRow;
  if (m >= S.rows) { return; }
  let j = idx % perRow;
  let head = j / half;
  let i = j % half;
  let slot = rowInfo[4u * m];
  let pos = rowInfo[4u * m + 1u];
  let src = m * (P.H + 2u * P.Hkv) * P.Dh + head * P.Dh;
  let a = qkv[src + i];
  let b = qkv[src + i + half];
  if (head >= P.H + P.Hkv) {
    let dst = ((slot * P.Hkv + head - P.H - P.Hkv) * P.C + pos) * P.Dh;
    vc[dst + i] = a;
    vc[dst + i + half] = b;
    return;
  }
  let angle = f32(pos) * invFreq[i];
  let c = cos(angle);
  let s = sin(angle);
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
}`;
}
