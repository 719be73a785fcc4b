// AdamW (decoupled weight decay, as torch.optim.AdamW) with clipping by the global gradient norm, all on the GPU so
// a step needs no readback: `sumsq` writes each gradient buffer's sum of squares into one slot of `partials`,
// `clip` turns them into the norm and the factor min(1, maxNorm / (norm + 1e-6)) (torch's clip_grad_norm_), and
// `adamw` updates parameters and moments, zeroes the gradient, and writes the bank copy (A as is, B x scaling).
// A non-finite gradient norm, or a skip flag set by the CPU, leaves parameters and moments untouched.

// Grids: sumsq (1) per gradient buffer, clip (1), adamw one thread per element.

import { layout, structCode } from '../../gpu/layout.js';
import { need, threads, type Kernel } from '../../gpu/program.js';
import { WORKGROUP } from '../common.js';

export function sumSquaresKernel(): Kernel {
  return {
    name: 'sum_squares', workgroupSize: WORKGROUP, params: { n: 'u32', slot: 'u32' }, grid: () => [1, 1, 1],
    buffers: {
      g: { type: 'array<f32>', access: 'read', shape: '(n)' },
      partials: { type: 'array<f32>', access: 'read_write', shape: '(gradient buffers)' },
    },
    source: /* wgsl */ `
var<workgroup> red: array<f32, WG>;
fn main(@builtin(local_invocation_index) tid: u32) {
  var s = 0.0;
  for (var i = tid; i < P.n; i += WG) { s += g[i] * g[i]; }
  red[tid] = s;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k >>= 1u) {
    if (tid < k) { red[tid] += red[tid + k]; }
    workgroupBarrier();
  }
  if (tid == 0u) { partials[P.slot] = red[0]; }
}`,
  };
}

export function clipKernel(): Kernel {
  return {
    name: 'clip', workgroupSize: 1, params: { count: 'u32', maxNorm: 'f32' }, grid: () => [1, 1, 1],
    buffers: {
      partials: { type: 'array<f32>', access: 'read', shape: '(count)' },
      norm: { type: 'array<f32>', access: 'read_write', shape: '[norm, clip factor]' },
    },
    source: /* wgsl */ `
fn main() {
  var s = 0.0;
  for (var i = 0u; i < P.count; i++) { s += partials[i]; }
  let n = sqrt(s);
  norm[0] = n;
  norm[1] = select(1.0, min(1.0, P.maxNorm / (n + 1e-6)), P.maxNorm > 0.0);
  // A NaN or infinite norm (checked on the bits: compilers may fold NaN comparisons away) marks the step as skipped.
  if ((bitcast<u32>(n) & 0x7f800000u) == 0x7f800000u) { norm[1] = -1.0; }
}`,
  };
}

/**
 * The per-step values of AdamW, shared by every adamw dispatch of a graph (one buffer written per step with
 * packBlock). skip != 0 (a non-finite loss seen on the CPU) or a negative clip factor (non-finite gradient norm): the
 * gradient is dropped and parameters and moments stay as they were.
 */
export const ADAMW_STEP_LAYOUT = layout('AdamStep', { lr: 'f32', beta1: 'f32', beta2: 'f32', eps: 'f32', weightDecay: 'f32', bc1: 'f32', bc2: 'f32', skip: 'f32' });

export function adamwKernel(): Kernel {
  return {
    name: 'adamw', workgroupSize: WORKGROUP, structs: structCode(ADAMW_STEP_LAYOUT), grid: (s) => threads(need('adamw', s).n, WORKGROUP),
    params: { n: 'u32', bankOff: 'u32', bankScale: 'f32' },
    buffers: {
      S: { type: 'AdamStep', access: 'uniform' },
      param: { type: 'array<f32>', access: 'read_write', shape: '(n)' },
      grad: { type: 'array<f32>', access: 'read_write', shape: '(n)' },
      m1: { type: 'array<f32>', access: 'read_write', shape: '(n)' },
      m2: { type: 'array<f32>', access: 'read_write', shape: '(n)' },
      norm: { type: 'array<f32>', access: 'read', shape: '[norm, clip factor]' },
      bank: { type: 'array<f32>', access: 'read_write', shape: '(slots, ...): the inference copy' },
    },
    source: /* wgsl */ `
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  if (S.skip != 0.0 || norm[1] < 0.0) { grad[i] = 0.0; return; }
  let g = grad[i] * norm[1];
  let a = S.beta1 * m1[i] + (1.0 - S.beta1) * g;
  let b = S.beta2 * m2[i] + (1.0 - S.beta2) * g * g;
  m1[i] = a;
  m2[i] = b;
  var p = param[i] * (1.0 - S.lr * S.weightDecay);
  p -= S.lr * (a / S.bc1) / (sqrt(b / S.bc2) + S.eps);
  param[i] = p;
  grad[i] = 0.0;
  bank[P.bankOff + i] = p * P.bankScale;
}`,
  };
}
