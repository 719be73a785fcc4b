// SwiGLU on a (M, 2F) buffer holding gate | up: h = silu(g) * u, and its backward
// dg = dh * u * silu'(g), du = dh * silu(g), with silu'(g) = sigmoid(g) * (1 + g * (1 - sigmoid(g))).
// Grid: one thread per (row, f), M F threads.

import { need, threads, type Kernel } from '../../gpu/program.js';
import { WORKGROUP } from '../common.js';

const GATE_UP = { type: 'array<f32>', access: 'read', shape: '(M, 2F): gate | up' } as const;

// Element i = m F + f of the (M, F) output reads gate (m, f) and up (m, f).
const HELPERS = /* wgsl */ `
fn gateAt(i: u32) -> u32 { return (i / P.F) * 2u * P.F + i % P.F; }
fn gate(i: u32) -> f32 { return gu[gateAt(i)]; }
fn up(i: u32) -> f32 { return gu[gateAt(i) + P.F]; }`;

export function swigluKernel(): Kernel {
  return {
    name: 'swiglu', workgroupSize: WORKGROUP, params: { M: 'u32', F: 'u32' },
    grid: (s) => { const { M, F } = need('swiglu', s); return threads(M * F, WORKGROUP); },
    buffers: { gu: GATE_UP, h: { type: 'array<f32>', access: 'read_write', shape: '(M, F)' } },
    source: /* wgsl */ `${HELPERS}
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.M * P.F) { return; }
  let g = gate(i);
  h[i] = g / (1.0 + exp(-g)) * up(i);
}`,
  };
}

export function swigluBackwardKernel(): Kernel {
  return {
    name: 'swiglu_backward', workgroupSize: WORKGROUP, params: { M: 'u32', F: 'u32' },
    grid: (s) => { const { M, F } = need('swiglu_backward', s); return threads(M * F, WORKGROUP); },
    buffers: {
      gu: GATE_UP,
      dh: { type: 'array<f32>', access: 'read', shape: '(M, F)' },
      dgu: { type: 'array<f32>', access: 'read_write', shape: '(M, 2F)' },
    },
    source: /* wgsl */ `${HELPERS}
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.M * P.F) { return; }
  let g = gate(i);
  let u = up(i);
  let sg = 1.0 / (1.0 + exp(-g));
  dgu[gateAt(i)] = dh[i] * u * sg * (1.0 + g * (1.0 - sg));
  dgu[gateAt(i) + P.F] = dh[i] * g * sg;
}`,
  };
}
