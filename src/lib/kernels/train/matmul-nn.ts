// Input gradient through a frozen weight: dX (+)= dY[:, yOff : yOff + N] W, W stored (N, K) as in the forward
// (same buffers, read "transposed" by tiling over K and reducing over N). 64x64 output tiles, 4x4 per thread,
// N staged through workgroup memory in slices of 16. Rows of dX may start at outRow (chunked lm_head).

import { need, type Kernel } from '../../gpu/program.js';
import type { WeightFormat } from '../../quant/blocks.js';
import { WORKGROUP } from '../common.js';
import { weightBuffer, weightReaders } from '../weight-read.js';

/** Output tile (T x T, 4 x 4 per thread) and the N slice staged per step. */
const T = 64;
const TN = 16;

export function matmulNNKernel(format: WeightFormat, accumulate: boolean): Kernel {
  return {
    name: `matmul_nn+${format}${accumulate ? '+acc' : ''}`, workgroupSize: WORKGROUP, constants: { T, TN },
    // Grid: T x T tiles of dX, (K columns, rows).
    grid: (s) => { const { K, rows } = need('matmul_nn', s); return [Math.ceil(K / T), Math.ceil(rows / T), 1]; },
    params: { M: 'u32', N: 'u32', K: 'u32', ldy: 'u32', yOff: 'u32', ldw: 'u32', ldo: 'u32', outRow: 'u32', yRow: 'u32' },
    buffers: {
      dy: { type: 'array<f32>', access: 'read', shape: '(rows, ldy)' },
      w: weightBuffer(format),
      dx: { type: 'array<f32>', access: 'read_write', shape: '(rows, ldo)' },
    },
    source: /* wgsl */ `${weightReaders(format, 'w')}
var<workgroup> ys: array<f32, T * TN>;  // (T rows, TN n)
var<workgroup> ws: array<f32, TN * T>;  // (TN n, T k)

fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) tid: u32) {
  let m0 = wid.y * T;
  let k0 = wid.x * T;
  let tx = tid % 16u;
  let ty = tid / 16u;
  var acc: array<f32, 16>;
  for (var n0 = 0u; n0 < P.N; n0 += TN) {
    for (var i = 0u; i < 4u; i++) {
      let e = tid + i * WG;
      let r = e / TN;
      let nn = e % TN;
      var yv = 0.0;
      if (m0 + r < P.M && n0 + nn < P.N) { yv = dy[(P.yRow + m0 + r) * P.ldy + P.yOff + n0 + nn]; }
      ys[e] = yv;
      let wn = e / T;
      let wk = e % T;
      var wv = 0.0;
      if (n0 + wn < P.N && k0 + wk < P.K) {
        wv = wAt(n0 + wn, k0 + wk);
      }
      ws[e] = wv;
    }
    workgroupBarrier();
    for (var nn = 0u; nn < TN; nn++) {
      for (var i = 0u; i < 4u; i++) {
        let yv = ys[(ty * 4u + i) * TN + nn];
        for (var j = 0u; j < 4u; j++) { acc[i * 4u + j] += yv * ws[nn * T + tx * 4u + j]; }
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
}`,
  };
}
