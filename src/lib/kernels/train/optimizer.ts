// AdamW (decoupled weight decay, as torch.optim.AdamW) with clipping by the global gradient norm, all on the GPU so
// a step needs no readback: `sumsq` writes each gradient buffer's sum of squares into one slot of `partials`,
// `clip` turns them into the norm and the factor min(1, maxNorm / (norm + 1e-6)) (torch's clip_grad_norm_), and
// `adamw` updates parameters and moments, zeroes the gradient, and writes the bank copy (A as is, B x scaling).
// A non-finite gradient norm, or a skip flag set by the CPU, leaves parameters and moments untouched.

export function sumSquaresShader(): string {
  return /* wgsl */ `
struct Params { n: u32, slot: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read_write> partials: array<f32>;
var<workgroup> red: array<f32, 256>;
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) tid: u32) {
  var s = 0.0;
  for (var i = tid; i < P.n; i += 256u) { s += g[i] * g[i]; }
  red[tid] = s;
  workgroupBarrier();
  for (var k = 128u; k > 0u; k >>= 1u) {
    if (tid < k) { red[tid] += red[tid + k]; }
    workgroupBarrier();
  }
  if (tid == 0u) { partials[P.slot] = red[0]; }
}`;
}

export function clipShader(): string {
  return /* wgsl */ `
struct Params { count: u32, maxNorm: f32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> partials: array<f32>;
@group(0) @binding(2) var<storage, read_write> norm: array<f32>;   // [norm, clip factor]
@compute @workgroup_size(1)
fn main() {
  var s = 0.0;
  for (var i = 0u; i < P.count; i++) { s += partials[i]; }
  let n = sqrt(s);
  norm[0] = n;
  norm[1] = select(1.0, min(1.0, P.maxNorm / (n + 1e-6)), P.maxNorm > 0.0);
  // A NaN or infinite norm (checked on the bits: compilers may fold NaN comparisons away) marks the step as skipped.
  if ((bitcast<u32>(n) & 0x7f800000u) == 0x7f800000u) { norm[1] = -1.0; }
}`;
}

export function adamwShader(): string {
  return /* wgsl */ `
// lr, bias corrections and weight decay change per step: they sit in the shared step uniform.
// skip != 0 (a non-finite loss seen on the CPU) or a negative clip factor (non-finite gradient norm): the
// gradient is dropped and parameters and moments stay as they were.
struct Step { lr: f32, beta1: f32, beta2: f32, eps: f32, weightDecay: f32, bc1: f32, bc2: f32, skip: f32 }
struct Params { n: u32, bankOff: u32, bankScale: f32, pad: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<uniform> S: Step;
@group(0) @binding(2) var<storage, read_write> param: array<f32>;
@group(0) @binding(3) var<storage, read_write> grad: array<f32>;
@group(0) @binding(4) var<storage, read_write> m1: array<f32>;
@group(0) @binding(5) var<storage, read_write> m2: array<f32>;
@group(0) @binding(6) var<storage, read> norm: array<f32>;
@group(0) @binding(7) var<storage, read_write> bank: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
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
}`;
}
