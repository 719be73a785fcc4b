// RMSNorm as its own pass (training keeps the normalized input for the LoRA gradients) and its backward.
// Forward: y = x * rstd * g, rstd = 1 / sqrt(mean(x^2) + eps).
// Backward (accumulating): dx += rstd * (dy * g) - x * rstd^3 / K * sum_j(dy_j g_j x_j).
// Grid: one workgroup per row (M); on CPU adapters (`perThread`) one thread per row, ROW_THREADS rows a workgroup.
// A CPU driver runs a workgroup's barriers as switches between its threads, and the tree reduction takes seven of them
// for a few hundred elements a row: the norms were a quarter of a training step on SwiftShader (bench, built-in
// model). A thread per row reads its row alone and needs none (a GPU would read the rows K apart: not there).

import { need, type BufferDecl, type Kernel } from '../../gpu/program.js';
import { WORKGROUP } from '../common.js';

const PARAMS = { M: 'u32', K: 'u32', eps: 'f32' } as const;
const INPUTS: Record<string, BufferDecl> = {
  x: { type: 'array<f32>', access: 'read', shape: '(M, K)' },
  gain: { type: 'array<f32>', access: 'read', shape: '(K)' },
};

/** A workgroup's sum of one value per thread (WG threads, a power of two). */
export const REDUCE = /* wgsl */ `
var<workgroup> red: array<f32, WG>;
fn reduce(tid: u32, v: f32) -> f32 {
  red[tid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (tid < s) { red[tid] += red[tid + s]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}`;

/** Rows a workgroup of the one-thread-per-row kernels covers: small, so that a few dozen rows still fill two cores. */
const ROW_THREADS = 16;

export function rmsnormKernel(perThread = false): Kernel {
  if (perThread) {
    return {
      name: 'rmsnorm_rows', workgroupSize: ROW_THREADS, params: PARAMS, grid: (s) => [Math.ceil(need('rmsnorm_rows', s).M / ROW_THREADS), 1, 1],
      buffers: { ...INPUTS, y: { type: 'array<f32>', access: 'read_write', shape: '(M, K)' } },
      source: /* wgsl */ `
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let m = gid.x;
  if (m >= P.M) { return; }
  let b = m * P.K;
  var ss = 0.0;
  for (var k = 0u; k < P.K; k++) { ss += x[b + k] * x[b + k]; }
  let rstd = inverseSqrt(ss / f32(P.K) + P.eps);
  for (var k = 0u; k < P.K; k++) { y[b + k] = x[b + k] * rstd * gain[k]; }
}`,
    };
  }
  return {
    name: 'rmsnorm', workgroupSize: WORKGROUP, params: PARAMS, grid: (s) => [need('rmsnorm', s).M, 1, 1],
    buffers: { ...INPUTS, y: { type: 'array<f32>', access: 'read_write', shape: '(M, K)' } },
    source: /* wgsl */ `${REDUCE}
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) tid: u32) {
  let m = wid.x;
  if (m >= P.M) { return; }
  var ss = 0.0;
  for (var k = tid; k < P.K; k += WG) { ss += x[m * P.K + k] * x[m * P.K + k]; }
  let rstd = inverseSqrt(reduce(tid, ss) / f32(P.K) + P.eps);
  for (var k = tid; k < P.K; k += WG) { y[m * P.K + k] = x[m * P.K + k] * rstd * gain[k]; }
}`,
  };
}

export function rmsnormBackwardKernel(perThread = false): Kernel {
  const buffers: Record<string, BufferDecl> = {
    ...INPUTS,
    dy: { type: 'array<f32>', access: 'read', shape: '(M, K)' },
    dx: { type: 'array<f32>', access: 'read_write', shape: '(M, K), accumulated' },
  };
  if (perThread) {
    return {
      name: 'rmsnorm_backward_rows', workgroupSize: ROW_THREADS, params: PARAMS, grid: (s) => [Math.ceil(need('rmsnorm_backward_rows', s).M / ROW_THREADS), 1, 1],
      buffers,
      source: /* wgsl */ `
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let m = gid.x;
  if (m >= P.M) { return; }
  let b = m * P.K;
  var ss = 0.0;
  var dot = 0.0;
  for (var k = 0u; k < P.K; k++) {
    ss += x[b + k] * x[b + k];
    dot += dy[b + k] * gain[k] * x[b + k];
  }
  let rstd = inverseSqrt(ss / f32(P.K) + P.eps);
  let c = rstd * rstd * rstd / f32(P.K) * dot;
  for (var k = 0u; k < P.K; k++) { dx[b + k] += rstd * dy[b + k] * gain[k] - x[b + k] * c; }
}`,
    };
  }
  return {
    name: 'rmsnorm_backward', workgroupSize: WORKGROUP, params: PARAMS, grid: (s) => [need('rmsnorm_backward', s).M, 1, 1],
    buffers,
    source: /* wgsl */ `${REDUCE}
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) tid: u32) {
  let m = wid.x;
  if (m >= P.M) { return; }
  let b = m * P.K;
  var ss = 0.0;
  var dot = 0.0;
  for (var k = tid; k < P.K; k += WG) {
    ss += x[b + k] * x[b + k];
    dot += dy[b + k] * gain[k] * x[b + k];
  }
  let rstd = inverseSqrt(reduce(tid, ss) / f32(P.K) + P.eps);
  let d = reduce(tid, dot);
  let c = rstd * rstd * rstd / f32(P.K) * d;
  for (var k = tid; k < P.K; k += WG) { dx[b + k] += rstd * dy[b + k] * gain[k] - x[b + k] * c; }
}`,
  };
}
