// LoRA in training, for one projection group (G modules sharing an input X, e.g. q|k|v on the normalized x). The
// adapter being trained sits in bank slot `slot`; the bank holds A and B' = scaling * B, B's rows of every module of
// the group stacked (module g's rows from its segment start: 0, seg1, seg2; output column o of dY is B's row o).
// Dropout on the LoRA input is a hash of (seed, row, column), so the backward recomputes exactly the forward's mask.
//   shrink: u[m, g, :] = drop(X)[m] A_g^T                          (forward; saved for dB)
//   w:      w[m, g, :] = dY_g[m] B'_g                               (dY_g: the columns of module g)
//   dB:     gB[o, :] += scaling * dY[:, o]^T u[:, g(o), :]          (gradient of the true B)
//   dA:     gA[g] += w[:, g, :]^T drop(X)
//   dX:     dX += (sum_g w[:, g, :] A_g) * dropmask
//
// Each element's dropout hash is the costly part (four PCG rounds), so the kernels that read drop(X) compute it once
// per (row, column) and output tile: shrink stages a tile of ROWS rows x 64 columns of drop(X) in workgroup memory
// for all of a workgroup's G R outputs; dA keeps OUTS outputs per thread (a column k), dX ROWS rows per thread.
// Grids: shrink (M / ROWS, 1), w (M G R / 64), dB (N R / 64), dA (K / 64, G R / OUTS), dX (K / 64, M / ROWS).

import { layout, structCode } from '../../gpu/layout.js';
import { need, type BufferDecl, type Kernel, type Sizes } from '../../gpu/program.js';

const THREADS = 64;
/** Rows of drop(X) a shrink or dX workgroup covers. */
const ROWS = 8;
/** Outputs (of the G R) a dA thread accumulates. */
const OUTS = 16;

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

/** The module (0, 1, 2) output column o belongs to, and where module g's columns start and end. */
const SEGMENTS = /* wgsl */ `
fn segOf(o: u32) -> u32 { return select(select(0u, 1u, o >= P.seg1), 2u, o >= P.seg2); }
fn segStart(g: u32) -> u32 { return select(select(0u, P.seg1, g == 1u), P.seg2, g == 2u); }
fn segEnd(g: u32) -> u32 { return select(P.bRows, segStart(g + 1u), g + 1u < P.G); }`;

/** One uniform block for every LoRA training kernel (each reads the fields it needs); seg1/seg2 as loraSegments. */
export const LORA_TRAIN_PARAMS = {
  M: 'u32', K: 'u32', G: 'u32', rank: 'u32', ldx: 'u32', slot: 'u32', seed: 'u32', p: 'f32',
  ldy: 'u32', bRows: 'u32', seg1: 'u32', seg2: 'u32', scaling: 'f32',
} as const;

/** This micro-step's dropout seed, written once per micro-step (packBlock); the kernels with dropout bind it. */
export const SEED_LAYOUT = layout('Seed', { seed: 'u32' });
const STEP_SEED: BufferDecl = { type: 'Seed', access: 'uniform' };
const f32s = (access: 'read' | 'read_write', shape: string): BufferDecl => ({ type: 'array<f32>', access, shape });

/** `grid` gives the workgroups from the sizes (M, G, rank, K, bRows). */
function loraKernel(name: string, buffers: Record<string, BufferDecl>, dropout: boolean, main: string, grid: (s: Sizes) => [number, number, number]): Kernel {
  return {
    name, workgroupSize: THREADS, params: LORA_TRAIN_PARAMS, constants: { ROWS, OUTS },
    grid: (s) => grid(need(name, s)),
    buffers: dropout ? { ...buffers, stepSeed: STEP_SEED } : buffers,
    structs: dropout ? structCode(SEED_LAYOUT) : undefined,
    source: (dropout ? DROPOUT : '') + SEGMENTS + main,
  };
}
const up = (n: number, d: number) => Math.ceil(n / d);

export function loraShrinkTrainKernel(): Kernel {
  return loraKernel('lora_shrink_train', { x: f32s('read', '(M, ldx)'), loraA: f32s('read', '(slots, G, r, K)'), u: f32s('read_write', '(M, G, r)') }, true, /* wgsl */ `
var<workgroup> xd: array<f32, ROWS * WG>;  // drop(X)[m0 + r, k0 + c] at r * WG + c

fn main(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3u) {
  let outs = P.G * P.rank;
  let m0 = wid.x * ROWS;
  for (var o0 = 0u; o0 < outs; o0 += WG) {
    let o = o0 + t;
    let a0 = (P.slot * outs + o) * P.K;
    var acc: array<f32, ROWS>;
    for (var r = 0u; r < ROWS; r++) { acc[r] = 0.0; }  // explicitly: lavapipe kept the last chunk's sums (measured)
    for (var k0 = 0u; k0 < P.K; k0 += WG) {
      let k = k0 + t;
      for (var r = 0u; r < ROWS; r++) {
        let m = m0 + r;
        xd[r * WG + t] = select(0.0, x[m * P.ldx + k] * dropFactor(P.seed, P.p, m, k), m < P.M && k < P.K);
      }
      workgroupBarrier();
      if (o < outs) {
        let n = min(WG, P.K - k0);
        for (var c = 0u; c < n; c++) {
          let a = loraA[a0 + k0 + c];
          for (var r = 0u; r < ROWS; r++) { acc[r] += xd[r * WG + c] * a; }
        }
      }
      workgroupBarrier();
    }
    if (o < outs) {
      for (var r = 0u; r < ROWS; r++) { if (m0 + r < P.M) { u[(m0 + r) * outs + o] = acc[r]; } }
    }
  }
}`, (s) => [up(s.M, ROWS), 1, 1]);
}

export function loraWKernel(): Kernel {
  return loraKernel('lora_w', { dy: f32s('read', '(M, ldy)'), loraB: f32s('read', '(slots, bRows, r), scaled'), w: f32s('read_write', '(M, G, r)') }, false, /* wgsl */ `
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let outs = P.G * P.rank;
  let i = gid.x;
  if (i >= P.M * outs) { return; }
  let m = i / outs;
  let g = (i % outs) / P.rank;
  let j = i % P.rank;
  let b0 = P.slot * P.bRows;
  var t = 0.0;
  for (var o = segStart(g); o < segEnd(g); o++) { t += dy[m * P.ldy + o] * loraB[(b0 + o) * P.rank + j]; }
  w[i] = t;
}`, (s) => [up(s.M * s.G * s.rank, THREADS), 1, 1]);
}

export function loraGradBKernel(): Kernel {
  return loraKernel('lora_grad_b', { dy: f32s('read', '(M, ldy)'), u: f32s('read', '(M, G, r)'), gB: f32s('read_write', '(bRows, r): gradient of the true B') }, false, /* wgsl */ `
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x;
  if (i >= P.bRows * P.rank) { return; }
  let o = i / P.rank;
  let outs = P.G * P.rank;
  let uj = segOf(o) * P.rank + i % P.rank;
  var t = 0.0;
  for (var m = 0u; m < P.M; m++) { t += dy[m * P.ldy + o] * u[m * outs + uj]; }
  gB[i] += P.scaling * t;
}`, (s) => [up(s.bRows * s.rank, THREADS), 1, 1]);
}

export function loraGradAKernel(): Kernel {
  return loraKernel('lora_grad_a', { x: f32s('read', '(M, ldx)'), w: f32s('read', '(M, G, r)'), gA: f32s('read_write', '(G, r, K)') }, true, /* wgsl */ `
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let k = gid.x;
  let outs = P.G * P.rank;
  let o0 = wid.y * OUTS;
  if (k >= P.K) { return; }
  let last = outs - 1u;
  var acc: array<f32, OUTS>;
  for (var m = 0u; m < P.M; m++) {
    let xd = x[m * P.ldx + k] * dropFactor(P.seed, P.p, m, k);
    for (var c = 0u; c < OUTS; c++) { acc[c] += w[m * outs + min(o0 + c, last)] * xd; }
  }
  for (var c = 0u; c < OUTS; c++) { if (o0 + c < outs) { gA[(o0 + c) * P.K + k] += acc[c]; } }
}`, (s) => [up(s.K, THREADS), up(s.G * s.rank, OUTS), 1]);
}

export function loraGradXKernel(): Kernel {
  return loraKernel('lora_grad_x', { w: f32s('read', '(M, G, r)'), loraA: f32s('read', '(slots, G, r, K)'), dx: f32s('read_write', '(M, ldx), accumulated') }, true, /* wgsl */ `
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let k = gid.x;
  let m0 = wid.y * ROWS;
  if (k >= P.K) { return; }
  let outs = P.G * P.rank;
  let a0 = P.slot * outs * P.K + k;
  let rows = min(ROWS, P.M - m0);
  var acc: array<f32, ROWS>;
  for (var o = 0u; o < outs; o++) {
    let a = loraA[a0 + o * P.K];
    for (var r = 0u; r < ROWS; r++) { acc[r] += w[min(m0 + r, P.M - 1u) * outs + o] * a; }
  }
  for (var r = 0u; r < rows; r++) {
    let m = m0 + r;
    dx[m * P.ldx + k] += acc[r] * dropFactor(P.seed, P.p, m, k);
  }
}`, (s) => [up(s.K, THREADS), up(s.M, ROWS), 1]);
}
