// SwiGLU on a (M, 2F) buffer holding gate | up: h = silu(g) * u, and its backward
// dg = dh * u * silu'(g), du = dh * silu(g), with silu'(g) = sigmoid(g) * (1 + g * (1 - sigmoid(g))).

const HEAD = /* wgsl */ `
struct Params { M: u32, F: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> gu: array<f32>;        // (M, 2F): gate | up
// Element i = m F + f of the (M, F) output reads gate (m, f) and up (m, f).
fn gateAt(i: u32) -> u32 { return (i / P.F) * 2u * P.F + i % P.F; }
fn gate(i: u32) -> f32 { return gu[gateAt(i)]; }
fn up(i: u32) -> f32 { return gu[gateAt(i) + P.F]; }`;

export function swigluShader(): string {
  return /* wgsl */ `${HEAD}
@group(0) @binding(2) var<storage, read_write> h: array<f32>;   // (M, F)
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= P.M * P.F) { return; }
  let g = gate(i);
  h[i] = g / (1.0 + exp(-g)) * up(i);
}`;
}

export function swigluBackwardShader(): string {
  return /* wgsl */ `${HEAD}
@group(0) @binding(2) var<storage, read> dh: array<f32>;          // (M, F)
@group(0) @binding(3) var<storage, read_write> dgu: array<f32>;   // (M, 2F)
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= P.M * P.F) { return; }
  let g = gate(i);
  let u = up(i);
  let sg = 1.0 / (1.0 + exp(-g));
  dgu[gateAt(i)] = dh[i] * u * sg * (1.0 + g * (1.0 - sg));
  dgu[gateAt(i) + P.F] = dh[i] * g * sg;
}`;
}
