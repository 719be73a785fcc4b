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

const PARAMS = { M: 'u32', N: 'u32', K: 'u32', ldy: 'u32', yOff: 'u32', ldw: 'u32', ldo: 'u32', outRow: 'u32', yRow: 'u32' } as const;

const buffers = (format: WeightFormat): Kernel['buffers'] => ({
  dy: { type: 'array<f32>', access: 'read', shape: '(rows, ldy)' },
  w: weightBuffer(format),
  dx: { type: 'array<f32>', access: 'read_write', shape: '(rows, ldo)' },
});

/** `subgroup`: a CPU adapter's fixed subgroup size (`Gpu.subgroup`), for the broadcast shape; 0 for the tiled one. */
export function matmulNNKernel(format: WeightFormat, accumulate: boolean, subgroup = 0): Kernel {
  if (subgroup > 0) return broadcastNN(format, accumulate, subgroup);
  return {
    name: `matmul_nn+${format}${accumulate ? '+acc' : ''}`, workgroupSize: WORKGROUP, constants: { T, TN },
    // Grid: T x T tiles of dX, (K columns, rows).
    grid: (s) => { const { K, rows } = need('matmul_nn', s); return [Math.ceil(K / T), Math.ceil(rows / T), 1]; },
    params: PARAMS, buffers: buffers(format),
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

/** Rows of dX per block of the broadcast shape. */
const RB = 4;

/**
 * The same product on CPU adapters with fixed-size subgroups (see kernels/matmul.ts, broadcastMatmul): one thread per
 * column k of dX, rows in blocks of RB, N in chunks of SG; each lane loads one element of the chunk of each dY row and
 * subgroupBroadcast hands it to the other lanes, so dY is read once per subgroup, W once per lane (lanes read
 * neighbouring columns of one W row).
 */
function broadcastNN(format: WeightFormat, accumulate: boolean, sg: number): Kernel {
  const R = [...Array(RB).keys()];
  const J = [...Array(sg).keys()];
  const each = (f: (i: number) => string, sep = '\n    ') => R.map(f).join(sep);
  return {
    name: `matmul_nn_bcast${sg}+${format}${accumulate ? '+acc' : ''}`, workgroupSize: 64, constants: { SG: sg }, subgroups: true,
    // Grid: 64 columns of dX per workgroup.
    grid: (s) => [Math.ceil(need('matmul_nn', s).K / 64), 1, 1],
    params: PARAMS, buffers: buffers(format),
    source: /* wgsl */ `${weightReaders(format, 'w')}
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) tid: u32, @builtin(subgroup_invocation_id) lane: u32) {
  let col = wid.x * WG + tid;
  let k = min(col, P.K - 1u); // every lane runs the loops (subgroup operations); one past K writes nothing
  for (var m0 = 0u; m0 < P.M; m0 += ${RB}u) {
    ${each((i) => `let r${i} = (P.yRow + min(m0 + ${i}u, P.M - 1u)) * P.ldy + P.yOff;`)}
    ${each((i) => `var a${i} = 0.0;`)}
    for (var n0 = 0u; n0 < P.N; n0 += SG) {
      let nl = n0 + lane;
      ${each((i) => `let y${i} = select(0.0, dy[r${i} + min(nl, P.N - 1u)], nl < P.N);`)}
      ${J.map((j) => `if (n0 + ${j}u < P.N) {
        let wv = wAt(n0 + ${j}u, k);
        ${each((i) => `a${i} += subgroupBroadcast(y${i}, ${j}u) * wv;`, '\n        ')}
      }`).join('\n      ')}
    }
    if (col < P.K) {
      ${each((i) => `if (m0 + ${i}u < P.M) { let at = (P.outRow + m0 + ${i}u) * P.ldo + col; ${accumulate ? `dx[at] += a${i};` : `dx[at] = a${i};`} }`, '\n      ')}
    }
  }
}`,
  };
}
