// Qwen3's q/k norms: each head of q and of k (Dh values) RMS-normalized and scaled by its gain (q_norm for the H query
// heads, k_norm for the Hkv key heads), before RoPE; v passes through. transformers' Qwen3RMSNorm over head_dim:
//   y = x * rstd * g,  rstd = 1 / sqrt(mean(x^2) + eps).
// Backward (per head, the frozen gains): dx = rstd * (dy * g) - x * rstd^3 / Dh * sum_j(dy_j g_j x_j); v's gradient
// passes through unchanged.
// Grid: one thread per (row, q or k head), rows (H + Hkv) threads; each walks its Dh values (Dh <= 256).

import { need, threads, type Kernel } from '../gpu/program.js';
import { STEP, STEP_STRUCT, WORKGROUP } from './common.js';

// The rows come from the step's uniform (S.rows): one recorded dispatch serves every decode and prefill size.
const PARAMS = { H: 'u32', Hkv: 'u32', Dh: 'u32', eps: 'f32' } as const;
const GRID = (name: string) => (s: Record<string, number>) => { const { rows, H, Hkv } = need(name, s); return threads(rows * (H + Hkv), WORKGROUP); };

/** The thread's (row, head) and the offsets of its head in qkv and of its gain in (q_norm | k_norm). */
const HEAD = /* wgsl */ `
struct Head { ok: bool, at: u32, g: u32 }
fn head_of(gid: vec3u, nwg: vec3u) -> Head {
  let idx = gid.x + gid.y * nwg.x * WG;
  let perRow = P.H + P.Hkv;
  let m = idx / perRow;
  let h = idx % perRow;
  return Head(m < S.rows, (m * (P.H + 2u * P.Hkv) + h) * P.Dh, select(P.Dh, 0u, h < P.H));
}`;

/**
 * In place on qkv (inference: the projection's output, read by RoPE next), or from `x` into `y` (training keeps the
 * projection's output for the backward; v is copied through).
 */
export function qkNormKernel(inPlace: boolean): Kernel {
  const src = inPlace ? 'y' : 'x';
  return {
    name: inPlace ? 'qk_norm_inplace' : 'qk_norm', workgroupSize: WORKGROUP, structs: STEP_STRUCT, params: PARAMS, grid: GRID(inPlace ? 'qk_norm_inplace' : 'qk_norm'),
    buffers: {
      S: STEP,
      ...(inPlace ? {} : { x: { type: 'array<f32>', access: 'read', shape: '(M, (H + 2 Hkv) Dh)' } }),
      gain: { type: 'array<f32>', access: 'read', shape: '(2, Dh): q_norm | k_norm' },
      y: { type: 'array<f32>', access: 'read_write', shape: '(M, (H + 2 Hkv) Dh)' },
    },
    source: /* wgsl */ `${HEAD}
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = head_of(gid, nwg);
  if (!t.ok) { return; }
  var ss = 0.0;
  for (var i = 0u; i < P.Dh; i++) { let v = ${src}[t.at + i]; ss += v * v; }
  let rstd = inverseSqrt(ss / f32(P.Dh) + P.eps);
  for (var i = 0u; i < P.Dh; i++) { y[t.at + i] = ${src}[t.at + i] * rstd * gain[t.g + i]; }
${inPlace ? '' : `  // The thread of the row's first q head copies the row's v heads through.
  if ((gid.x + gid.y * nwg.x * WG) % (P.H + P.Hkv) == 0u) {
    let v0 = t.at + (P.H + P.Hkv) * P.Dh;
    for (var i = 0u; i < P.Hkv * P.Dh; i++) { y[v0 + i] = x[v0 + i]; }
  }`}
}`,
  };
}

/** dqkv (the gradient of the normalized q, k; v's as it is) becomes the gradient of the projection's output, in place. */
export function qkNormBackwardKernel(): Kernel {
  return {
    name: 'qk_norm_backward', workgroupSize: WORKGROUP, structs: STEP_STRUCT, params: PARAMS, grid: GRID('qk_norm_backward'),
    buffers: {
      S: STEP,
      x: { type: 'array<f32>', access: 'read', shape: '(M, (H + 2 Hkv) Dh): the projection output' },
      gain: { type: 'array<f32>', access: 'read', shape: '(2, Dh): q_norm | k_norm' },
      dqkv: { type: 'array<f32>', access: 'read_write', shape: '(M, (H + 2 Hkv) Dh)' },
    },
    source: /* wgsl */ `${HEAD}
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = head_of(gid, nwg);
  if (!t.ok) { return; }
  var ss = 0.0;
  var dot = 0.0;
  for (var i = 0u; i < P.Dh; i++) {
    let v = x[t.at + i];
    ss += v * v;
    dot += dqkv[t.at + i] * gain[t.g + i] * v;
  }
  let rstd = inverseSqrt(ss / f32(P.Dh) + P.eps);
  let c = rstd * rstd * rstd / f32(P.Dh) * dot;
  for (var i = 0u; i < P.Dh; i++) { dqkv[t.at + i] = rstd * dqkv[t.at + i] * gain[t.g + i] - x[t.at + i] * c; }
}`,
  };
}
