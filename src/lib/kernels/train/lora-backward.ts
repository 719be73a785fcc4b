// LoRA in training, for one projection group (G modules sharing an input X, e.g. q|k|v on the normalized x).
// The adapter being trained sits in bank slot `slot`; the bank holds A and B' = scaling * B. Dropout on the LoRA
// input is a hash of (seed, row, column), so the backward recomputes exactly the forward's mask.
//   shrink: u[m, g, :] = drop(X)[m] A_g^T                          (forward; saved for dB)
//   w:      w[m, g, :] = dY_g[m] B'_g                               (dY_g: the group's output-gradient columns)
//   dB:     gB[rows of g, :] += scaling * dY_g^T u[:, g, :]         (gradient of the true B)
//   dA:     gA[g] += w[:, g, :]^T drop(X)
//   dX:     dX += (sum_g w[:, g, :] A_g) * dropmask

// Grids: one thread per output element, 64 threads per workgroup.

import { layout, structCode } from '../../gpu/layout.js';
import { need, type BufferDecl, type Kernel, type Sizes } from '../../gpu/program.js';

const THREADS = 64;

const DROPOUT = /* wgsl */ `
fn pcg(v: u32) -> u32 {
  let s = v * 747796405u + 2891336453u;
  let w = ((s >> ((s >> 28u) + 4u)) ^ s) * 277803737u;
  return (w >> 22u) ^ w;
}
// Inverted dropout factor of element (m, k): 0, or 1 / (1 - p).
fn dropFactor(seed: u32, p: f32, m: u32, k: u32) -> f32 {
  if (p <= 0.0) { return 1.0; }
  let h = pcg(seed ^ pcg(stepSeed.seed) ^ pcg((m * 0x9E3779B9u) ^ pcg(k)));
  let r = f32(h >> 8u) / 16777216.0;
  return select(0.0, 1.0 / (1.0 - p), r >= p);
}`;

/** One uniform block for every LoRA training kernel (each reads the fields it needs). */
export const LORA_TRAIN_PARAMS = {
  M: 'u32', K: 'u32', G: 'u32', rank: 'u32', ldx: 'u32', slot: 'u32', seed: 'u32', p: 'f32',
  ldy: 'u32', yOff: 'u32', outF: 'u32', bRows: 'u32', bRow0: 'u32', seg: 'u32', scaling: 'f32',
} as const;

/** This micro-step's dropout seed, written once per micro-step (packBlock); the kernels with dropout bind it. */
export const SEED_LAYOUT = layout('Seed', { seed: 'u32' });
const STEP_SEED: BufferDecl = { type: 'Seed', access: 'uniform' };
const f32s = (access: 'read' | 'read_write', shape: string): BufferDecl => ({ type: 'array<f32>', access, shape });

/** `outputs` says how many threads a kernel runs from its sizes (M, G, rank, K, outF). */
function loraKernel(name: string, buffers: Record<string, BufferDecl>, dropout: boolean, main: string, outputs: (s: Sizes) => number): Kernel {
  return {
    name, workgroupSize: THREADS, params: LORA_TRAIN_PARAMS,
    grid: (s) => [Math.ceil(outputs(need(name, s)) / THREADS), 1, 1],
    buffers: dropout ? { ...buffers, stepSeed: STEP_SEED } : buffers,
    structs: dropout ? structCode(SEED_LAYOUT) : undefined,
    source: (dropout ? DROPOUT : '') + main,
  };
}

export function loraShrinkTrainKernel(): Kernel {
  return loraKernel('lora_shrink_train', { x: f32s('read', '(M, ldx)'), loraA: f32s('read', '(slots, G, r, K)'), u: f32s('read_write', '(M, G, r)') }, true, /* wgsl */ `
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let outs = P.G * P.rank;
  let i = gid.x;
  if (i >= P.M * outs) { return; }
  let m = i / outs;
  let o = i % outs;
  let a0 = (P.slot * outs + o) * P.K;
  var t = 0.0;
  for (var k = 0u; k < P.K; k++) { t += x[m * P.ldx + k] * dropFactor(P.seed, P.p, m, k) * loraA[a0 + k]; }
  u[i] = t;
}`, (s) => s.M * s.G * s.rank);
}

export function loraWKernel(): Kernel {
  return loraKernel('lora_w', { dy: f32s('read', '(M, ldy)'), loraB: f32s('read', '(slots, bRows, r), scaled'), w: f32s('read_write', '(M, G, r)') }, false, /* wgsl */ `
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x;
  if (i >= P.M * P.rank) { return; }
  let m = i / P.rank;
  let j = i % P.rank;
  var t = 0.0;
  for (var o = 0u; o < P.outF; o++) { t += dy[m * P.ldy + P.yOff + o] * loraB[(P.slot * P.bRows + P.bRow0 + o) * P.rank + j]; }
  w[(m * P.G + P.seg) * P.rank + j] = t;
}`, (s) => s.M * s.rank);
}

export function loraGradBKernel(): Kernel {
  return loraKernel('lora_grad_b', { dy: f32s('read', '(M, ldy)'), u: f32s('read', '(M, G, r)'), gB: f32s('read_write', '(bRows, r): gradient of the true B') }, false, /* wgsl */ `
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x;
  if (i >= P.outF * P.rank) { return; }
  let o = i / P.rank;
  let j = i % P.rank;
  var t = 0.0;
  for (var m = 0u; m < P.M; m++) { t += dy[m * P.ldy + P.yOff + o] * u[(m * P.G + P.seg) * P.rank + j]; }
  gB[(P.bRow0 + o) * P.rank + j] += P.scaling * t;
}`, (s) => s.outF * s.rank);
}

export function loraGradAKernel(): Kernel {
  return loraKernel('lora_grad_a', { x: f32s('read', '(M, ldx)'), w: f32s('read', '(M, G, r)'), gA: f32s('read_write', '(G, r, K)') }, true, /* wgsl */ `
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x;
  if (i >= P.G * P.rank * P.K) { return; }
  let gj = i / P.K;
  let k = i % P.K;
  var t = 0.0;
  for (var m = 0u; m < P.M; m++) { t += w[m * P.G * P.rank + gj] * x[m * P.ldx + k] * dropFactor(P.seed, P.p, m, k); }
  gA[i] += t;
}`, (s) => s.G * s.rank * s.K);
}

export function loraGradXKernel(): Kernel {
  return loraKernel('lora_grad_x', { w: f32s('read', '(M, G, r)'), loraA: f32s('read', '(slots, G, r, K)'), dx: f32s('read_write', '(M, ldx), accumulated') }, true, /* wgsl */ `
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x;
  if (i >= P.M * P.K) { return; }
  let m = i / P.K;
  let k = i % P.K;
  let outs = P.G * P.rank;
  var t = 0.0;
  for (var o = 0u; o < outs; o++) { t += w[m * outs + o] * loraA[(P.slot * outs + o) * P.K + k]; }
  dx[m * P.ldx + k] += t * dropFactor(P.seed, P.p, m, k);
}`, (s) => s.M * s.K);
}
