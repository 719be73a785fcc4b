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

/**
 * How a kernel walks its row m: a workgroup a row, its threads over k = tid, tid + WG, ... and their sums reduced
 * through workgroup memory; or (perThread) a thread a row over every k, its sums its own.
 */
function rowKernel(name: string, perThread: boolean, buffers: Record<string, BufferDecl>, body: (sum: (v: string) => string) => string): Kernel {
  const rows = perThread ? ROW_THREADS : 1;
  const main = perThread
    ? 'fn main(@builtin(global_invocation_id) gid: vec3u) {\n  let m = gid.x;\n  let k0 = 0u;\n  let kStep = 1u;'
    : 'fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) tid: u32) {\n  let m = wid.x;\n  let k0 = tid;\n  let kStep = WG;';
  return {
    name: perThread ? `${name}_rows` : name, workgroupSize: perThread ? ROW_THREADS : WORKGROUP, params: PARAMS, buffers,
    grid: (s) => [Math.ceil(need(name, s).M / rows), 1, 1],
    source: `${perThread ? '' : REDUCE}
${main}
  if (m >= P.M) { return; }
  let b = m * P.K;
${body(perThread ? (v) => v : (v) => `reduce(tid, ${v})`)}
}`,
  };
}

export function rmsnormKernel(perThread = false): Kernel {
  return rowKernel('rmsnorm', perThread, { ...INPUTS, y: { type: 'array<f32>', access: 'read_write', shape: '(M, K)' } }, (sum) => /* wgsl */ `
  var ss = 0.0;
  for (var k = k0; k < P.K; k += kStep) { ss += x[b + k] * x[b + k]; }
  let rstd = inverseSqrt(${sum('ss')} / f32(P.K) + P.eps);
  for (var k = k0; k < P.K; k += kStep) { y[b + k] = x[b + k] * rstd * gain[k]; }`);
}

export function rmsnormBackwardKernel(perThread = false): Kernel {
  const buffers: Record<string, BufferDecl> = {
    ...INPUTS,
    dy: { type: 'array<f32>', access: 'read', shape: '(M, K)' },
    dx: { type: 'array<f32>', access: 'read_write', shape: '(M, K), accumulated' },
  };
  return rowKernel('rmsnorm_backward', perThread, buffers, (sum) => /* wgsl */ `
  var ss = 0.0;
  var dot = 0.0;
  for (var k = k0; k < P.K; k += kStep) {
    ss += x[b + k] * x[b + k];
    dot += dy[b + k] * gain[k] * x[b + k];
  }
  let rstd = inverseSqrt(${sum('ss')} / f32(P.K) + P.eps);
  let d = ${sum('dot')};
  let c = rstd * rstd * rstd / f32(P.K) * d;
  for (var k = k0; k < P.K; k += kStep) { dx[b + k] += rstd * dy[b + k] * gain[k] - x[b + k] * c; }`);
}
