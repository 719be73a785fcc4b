// LoRA in training, for one projection group (G modules sharing an input X, e.g. q|k|v on the normalized x).
// The adapter being trained sits in bank slot `slot`; the bank holds A and B' = scaling * B. Dropout on the LoRA
// input is a hash of (seed, row, column), so the backward recomputes exactly the forward's mask.
//   shrink: u[m, g, :] = drop(X)[m] A_g^T                          (forward; saved for dB)
//   w:      w[m, g, :] = dY_g[m] B'_g                               (dY_g: the group's output-gradient columns)
//   dB:     gB[rows of g, :] += scaling * dY_g^T u[:, g, :]         (gradient of the true B)
//   dA:     gA[g] += w[:, g, :]^T drop(X)
//   dX:     dX += (sum_g w[:, g, :] A_g) * dropmask

const DROPOUT = /* wgsl */ `
fn pcg(v: u32) -> u32 {
  let s = v * 747796405u + 2891336453u;
  let w = ((s >> ((s >> 28u) + 4u)) ^ s) * 277803737u;
  return (w >> 22u) ^ w;
}
// Inverted dropout factor of element (m, k): 0, or 1 / (1 - p).
@group(0) @binding(9) var<uniform> stepSeed: vec4<u32>;  // x: this micro-step's seed
fn dropFactor(seed: u32, p: f32, m: u32, k: u32) -> f32 {
  if (p <= 0.0) { return 1.0; }
  let h = pcg(seed ^ pcg(stepSeed.x) ^ pcg((m * 0x9E3779B9u) ^ pcg(k)));
  let r = f32(h >> 8u) / 16777216.0;
  return select(0.0, 1.0 / (1.0 - p), r >= p);
}`;

const PARAMS = /* wgsl */ `
struct Params { M: u32, K: u32, G: u32, rank: u32, ldx: u32, slot: u32, seed: u32, p: f32,
                ldy: u32, yOff: u32, outF: u32, bRows: u32, bRow0: u32, seg: u32, scaling: f32, pad: u32 }
@group(0) @binding(0) var<uniform> P: Params;`;

export function loraShrinkTrainShader(): string {
  return /* wgsl */ `${PARAMS}${DROPOUT}
@group(0) @binding(1) var<storage, read> x: array<f32>;        // (M, ldx)
@group(0) @binding(2) var<storage, read> loraA: array<f32>;    // (slots, G, r, K)
@group(0) @binding(3) var<storage, read_write> u: array<f32>;  // (M, G, r)
@compute @workgroup_size(64)
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
}`;
}

export function loraWShader(): string {
  return /* wgsl */ `${PARAMS}
@group(0) @binding(1) var<storage, read> dy: array<f32>;       // (M, ldy)
@group(0) @binding(2) var<storage, read> loraB: array<f32>;    // (slots, bRows, r), scaled
@group(0) @binding(3) var<storage, read_write> w: array<f32>;  // (M, G, r)
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x;
  if (i >= P.M * P.rank) { return; }
  let m = i / P.rank;
  let j = i % P.rank;
  var t = 0.0;
  for (var o = 0u; o < P.outF; o++) { t += dy[m * P.ldy + P.yOff + o] * loraB[(P.slot * P.bRows + P.bRow0 + o) * P.rank + j]; }
  w[(m * P.G + P.seg) * P.rank + j] = t;
}`;
}

export function loraGradBShader(): string {
  return /* wgsl */ `${PARAMS}
@group(0) @binding(1) var<storage, read> dy: array<f32>;        // (M, ldy)
@group(0) @binding(2) var<storage, read> u: array<f32>;         // (M, G, r)
@group(0) @binding(3) var<storage, read_write> gB: array<f32>;  // (bRows, r): gradient of the true B
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x;
  if (i >= P.outF * P.rank) { return; }
  let o = i / P.rank;
  let j = i % P.rank;
  var t = 0.0;
  for (var m = 0u; m < P.M; m++) { t += dy[m * P.ldy + P.yOff + o] * u[(m * P.G + P.seg) * P.rank + j]; }
  gB[(P.bRow0 + o) * P.rank + j] += P.scaling * t;
}`;
}

export function loraGradAShader(): string {
  return /* wgsl */ `${PARAMS}${DROPOUT}
@group(0) @binding(1) var<storage, read> x: array<f32>;         // (M, ldx)
@group(0) @binding(2) var<storage, read> w: array<f32>;         // (M, G, r)
@group(0) @binding(3) var<storage, read_write> gA: array<f32>;  // (G, r, K)
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x;
  if (i >= P.G * P.rank * P.K) { return; }
  let gj = i / P.K;
  let k = i % P.K;
  var t = 0.0;
  for (var m = 0u; m < P.M; m++) { t += w[m * P.G * P.rank + gj] * x[m * P.ldx + k] * dropFactor(P.seed, P.p, m, k); }
  gA[i] += t;
}`;
}

export function loraGradXShader(): string {
  return /* wgsl */ `${PARAMS}${DROPOUT}
@group(0) @binding(1) var<storage, read> w: array<f32>;         // (M, G, r)
@group(0) @binding(2) var<storage, read> loraA: array<f32>;     // (slots, G, r, K)
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;  // (M, ldx), accumulated
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x;
  if (i >= P.M * P.K) { return; }
  let m = i / P.K;
  let k = i % P.K;
  let outs = P.G * P.rank;
  var t = 0.0;
  for (var o = 0u; o < outs; o++) { t += w[m * outs + o] * loraA[(P.slot * outs + o) * P.K + k]; }
  dx[m * P.ldx + k] += t * dropFactor(P.seed, P.p, m, k);
}`;
}
