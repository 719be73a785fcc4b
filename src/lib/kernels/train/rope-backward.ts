// RoPE backward: the rotation is orthogonal, so the gradient rotates back by -angle. Gathers dq (rows) and dk, dv
// (cache layout) into dqkv (M, (H + 2 Hkv) Dh), the gradient of the qkv projection's output.

export function ropeBackwardShader(): string {
  return /* wgsl */ `
struct Params { H: u32, Hkv: u32, Dh: u32, T: u32, M: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> dq: array<f32>;       // (M, H, Dh)
@group(0) @binding(2) var<storage, read> dk: array<f32>;       // (B, Hkv, T, Dh)
@group(0) @binding(3) var<storage, read> dv: array<f32>;       // (B, Hkv, T, Dh)
@group(0) @binding(4) var<storage, read> invFreq: array<f32>;  // (Dh / 2)
@group(0) @binding(5) var<storage, read_write> dqkv: array<f32>; // (M, (H + 2 Hkv) Dh)

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let half = P.Dh / 2u;
  let perRow = (P.H + 2u * P.Hkv) * half;
  let idx = gid.x + gid.y * nwg.x * 256u;
  let m = idx / perRow;
  if (m >= P.M) { return; }
  let j = idx % perRow;
  let head = j / half;
  let i = j % half;
  let b = m / P.T;
  let t = m % P.T;
  let dst = m * (P.H + 2u * P.Hkv) * P.Dh + head * P.Dh;
  var a = 0.0;
  var c2 = 0.0;
  if (head < P.H) {
    let src = (m * P.H + head) * P.Dh;
    a = dq[src + i];
    c2 = dq[src + i + half];
  } else if (head < P.H + P.Hkv) {
    let src = ((b * P.Hkv + head - P.H) * P.T + t) * P.Dh;
    a = dk[src + i];
    c2 = dk[src + i + half];
  } else {
    let src = ((b * P.Hkv + head - P.H - P.Hkv) * P.T + t) * P.Dh;
    dqkv[dst + i] = dv[src + i];
    dqkv[dst + i + half] = dv[src + i + half];
    return;
  }
  let angle = f32(t) * invFreq[i];
  let c = cos(angle);
  let s = sin(angle);
  dqkv[dst + i] = a * c + c2 * s;
  dqkv[dst + i + half] = c2 * c - a * s;
}`;
}
