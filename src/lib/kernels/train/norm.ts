// RMSNorm as its own pass (training keeps the normalized input for the LoRA gradients) and its backward.
// Forward: y = x * rstd * g, rstd = 1 / sqrt(mean(x^2) + eps).
// Backward (accumulating): dx += rstd * (dy * g) - x * rstd^3 / K * sum_j(dy_j g_j x_j).

const HEAD = /* wgsl */ `
struct Params { M: u32, K: u32, eps: f32, pad: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;     // (M, K)
@group(0) @binding(2) var<storage, read> gain: array<f32>;  // (K)
var<workgroup> red: array<f32, 256>;
fn reduce(tid: u32, v: f32) -> f32 {
  red[tid] = v;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) {
    if (tid < s) { red[tid] += red[tid + s]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}`;

export function rmsnormShader(): string {
  return /* wgsl */ `${HEAD}
@group(0) @binding(3) var<storage, read_write> y: array<f32>; // (M, K)
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) tid: u32) {
  let m = wid.x;
  if (m >= P.M) { return; }
  var ss = 0.0;
  for (var k = tid; k < P.K; k += 256u) { ss += x[m * P.K + k] * x[m * P.K + k]; }
  let rstd = inverseSqrt(reduce(tid, ss) / f32(P.K) + P.eps);
  for (var k = tid; k < P.K; k += 256u) { y[m * P.K + k] = x[m * P.K + k] * rstd * gain[k]; }
}`;
}

export function rmsnormBackwardShader(): string {
  return /* wgsl */ `${HEAD}
@group(0) @binding(3) var<storage, read> dy: array<f32>;        // (M, K)
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;  // (M, K), accumulated
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) tid: u32) {
  let m = wid.x;
  if (m >= P.M) { return; }
  let b = m * P.K;
  var ss = 0.0;
  var dot = 0.0;
  for (var k = tid; k < P.K; k += 256u) {
    ss += x[b + k] * x[b + k];
    dot += dy[b + k] * gain[k] * x[b + k];
  }
  let rstd = inverseSqrt(reduce(tid, ss) / f32(P.K) + P.eps);
  let d = reduce(tid, dot);
  let c = rstd * rstd * rstd / f32(P.K) * d;
  for (var k = tid; k < P.K; k += 256u) { dx[b + k] += rstd * dy[b + k] * gain[k] - x[b + k] * c; }
}`;
}
