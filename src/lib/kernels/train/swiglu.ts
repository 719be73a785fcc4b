// The gated linear unit on a (M, 2F) buffer holding gate | up: h = act(g) * u (SwiGLU: SiLU; GeGLU: tanh GELU), and
// its backward dg = dh * u * act'(g), du = dh * act(g) (the activations: kernels/activation.ts).
// Grid: one thread per (row, f), M F threads.

import { need, threads, type Kernel } from '../../gpu/program.js';
import { ACTIVATIONS, actFn, type GluAct } from '../activation.js';
import { WORKGROUP } from '../common.js';

const GATE_UP = { type: 'array<f32>', access: 'read', shape: '(M, 2F): gate | up' } as const;

// Element i = m F + f of the (M, F) output reads gate (m, f) and up (m, f).
const HELPERS = /* wgsl */ `${ACTIVATIONS}
fn gateAt(i: u32) -> u32 { return (i / P.F) * 2u * P.F + i % P.F; }
fn gate(i: u32) -> f32 { return gu[gateAt(i)]; }
fn up(i: u32) -> f32 { return gu[gateAt(i) + P.F]; }`;

export function swigluKernel(act: GluAct = 'silu'): Kernel {
  return {
    name: act === 'silu' ? 'swiglu' : `glu_${act}`, workgroupSize: WORKGROUP, params: { M: 'u32', F: 'u32' },
    grid: (s) => { const { M, F } = need('swiglu', s); return threads(M * F, WORKGROUP); },
    buffers: { gu: GATE_UP, h: { type: 'array<f32>', access: 'read_write', shape: '(M, F)' } },
    source: /* wgsl */ `${HELPERS}
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.M * P.F) { return; }
  h[i] = ${actFn(act)}(gate(i)) * up(i);
}`,
  };
}

export function swigluBackwardKernel(act: GluAct = 'silu'): Kernel {
  return {
    name: act === 'silu' ? 'swiglu_backward' : `glu_${act}_backward`, workgroupSize: WORKGROUP, params: { M: 'u32', F: 'u32' },
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
  dgu[gateAt(i)] = dh[i] * u * ${actFn(act, true)}(g);
  dgu[gateAt(i) + P.F] = dh[i] * ${actFn(act)}(g);
}`,
  };
}
