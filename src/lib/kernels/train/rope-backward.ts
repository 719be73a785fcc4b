// RoPE backward: the rotation is orthogonal, so the gradient rotates back by -angle. Gathers dq (rows) and dk, dv
// (cache layout) into dqkv (M, (H + 2 Hkv) Dh), the gradient of the qkv projection's output.

// Grid: one thread per (row, head, pair).

import { need, threads, type Kernel } from '../../gpu/program.js';
import { WORKGROUP } from '../common.js';

export function ropeBackwardKernel(): Kernel {
  return {
    name: 'rope_backward', workgroupSize: WORKGROUP,
    grid: (s) => { const { M, H, Hkv, Dh } = need('rope_backward', s); return threads(M * (H + 2 * Hkv) * (Dh / 2), WORKGROUP); },
    params: { H: 'u32', Hkv: 'u32', Dh: 'u32', T: 'u32', M: 'u32', R: 'u32' },
    buffers: {
      dq: { type: 'array<f32>', access: 'read', shape: '(M, H, Dh)' },
      dk: { type: 'array<f32>', access: 'read', shape: '(B, Hkv, T, Dh)' },
      dv: { type: 'array<f32>', access: 'read', shape: '(B, Hkv, T, Dh)' },
      rope: { type: 'array<vec2<f32>>', access: 'read', shape: '(T, R / 2)' },
      dqkv: { type: 'array<f32>', access: 'read_write', shape: '(M, (H + 2 Hkv) Dh)' },
    },
    source: /* wgsl */ `
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let half = P.Dh / 2u;
  let perRow = (P.H + 2u * P.Hkv) * half;
  let idx = gid.x + gid.y * nwg.x * WG;
  let m = idx / perRow;
  if (m >= P.M) { return; }
  let j = idx % perRow;
  let head = j / half;
  let i = j % half;
  let b = m / P.T;
  let t = m % P.T;
  let dst = m * (P.H + 2u * P.Hkv) * P.Dh + head * P.Dh;
  // Pair slot i: dims (i, i + R/2) rotated back while i < R/2, else two unrotated dims (partial rotary) passed back.
  let rh = P.R / 2u;
  let i0 = select(P.R + 2u * (i - rh), i, i < rh);
  let i1 = select(i0 + 1u, i + rh, i < rh);
  var a = 0.0;
  var c2 = 0.0;
  if (head < P.H) {
    let src = (m * P.H + head) * P.Dh;
    a = dq[src + i0];
    c2 = dq[src + i1];
  } else if (head < P.H + P.Hkv) {
    let src = ((b * P.Hkv + head - P.H) * P.T + t) * P.Dh;
    a = dk[src + i0];
    c2 = dk[src + i1];
  } else {
    let src = ((b * P.Hkv + head - P.H - P.Hkv) * P.T + t) * P.Dh;
    dqkv[dst + i] = dv[src + i];
    dqkv[dst + i + half] = dv[src + i + half];
    return;
  }
  if (i >= rh) {
    dqkv[dst + i0] = a;
    dqkv[dst + i1] = c2;
    return;
  }
  let cs = rope[t * rh + i]; // (cos, sin) of position t (model/config.ts, ropeTable)
  let c = cs.x;
  let s = cs.y;
  dqkv[dst + i0] = a * c + c2 * s;
  dqkv[dst + i1] = c2 * c - a * s;
}`,
  };
}
