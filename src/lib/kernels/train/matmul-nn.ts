// Input gradient through a frozen weight: dX (+)= dY[:, yOff : yOff + N] W, W stored (N, K) as in the forward
// (same buffers, read "transposed" by tiling over K and reducing over N). 64x64 output tiles, 4x4 per thread,
// N staged through workgroup memory in slices of 16. Rows of dX may start at outRow (chunked lm_head).

import { enableF16, weightType } from '../common.js';

export function matmulNNShader(f16: boolean, accumulate: boolean): string {
  const wt = weightType(f16);
  return /* wgsl */ `${enableF16(f16)}
struct Params { M: u32, N: u32, K: u32, ldy: u32, yOff: u32, ldw: u32, ldo: u32, outRow: u32, yRow: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;               // (rows, ldy)
@group(0) @binding(2) var<storage, read> w: array<vec4<${wt}>>;        // (N, ldw / 4)
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;         // (rows, ldo)
var<workgroup> ys: array<f32, 1024>;  // (64 rows, 16 n)
var<workgroup> ws: array<f32, 1024>;  // (16 n, 64 k)

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) tid: u32) {
  let m0 = wid.y * 64u;
  let k0 = wid.x * 64u;
  let tx = tid % 16u;
  let ty = tid / 16u;
  var acc: array<f32, 16>;
  for (var n0 = 0u; n0 < P.N; n0 += 16u) {
    for (var i = 0u; i < 4u; i++) {
      let e = tid + i * 256u;
      let r = e / 16u;
      let nn = e % 16u;
      var yv = 0.0;
      if (m0 + r < P.M && n0 + nn < P.N) { yv = dy[(P.yRow + m0 + r) * P.ldy + P.yOff + n0 + nn]; }
      ys[e] = yv;
      let wn = e / 64u;
      let wk = e % 64u;
      var wv = 0.0;
      if (n0 + wn < P.N && k0 + wk < P.K) {
        let k = k0 + wk;
        wv = f32(w[(n0 + wn) * (P.ldw / 4u) + k / 4u][k % 4u]);
      }
      ws[e] = wv;
    }
    workgroupBarrier();
    for (var nn = 0u; nn < 16u; nn++) {
      for (var i = 0u; i < 4u; i++) {
        let yv = ys[(ty * 4u + i) * 16u + nn];
        for (var j = 0u; j < 4u; j++) { acc[i * 4u + j] += yv * ws[nn * 64u + tx * 4u + j]; }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    let m = m0 + ty * 4u + i;
    for (var j = 0u; j < 4u; j++) {
      let k = k0 + tx * 4u + j;
      if (m < P.M && k < P.K) {
        let at = (P.outRow + m) * P.ldo + k;
        ${accumulate ? 'dx[at] += acc[i * 4u + j];' : 'dx[at] = acc[i * 4u + j];'}
      }
    }
  }
}`;
}
