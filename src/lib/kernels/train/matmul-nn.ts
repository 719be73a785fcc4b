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

/**
 * `subgroup`: a CPU adapter's fixed subgroup size (`Gpu.subgroup`), for the broadcast shape; 0 for the tiled one.
 * `rows`: the rows of dX the dispatch computes (the broadcast shape's block).
 */
export function matmulNNKernel(format: WeightFormat, accumulate: boolean, subgroup = 0, rows = 16): Kernel {
  if (subgroup > 0) return broadcastNN(format, accumulate, subgroup, nnBlockRows(rows));
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

/**
 * Rows of dX per block of the broadcast shape: 16 for many rows (a weight vec4 loaded once serves 16 rows: on CPU
 * drivers loads, not FMAs, bound these kernels; see kernels/matmul.ts, BROADCAST_GEMM), 4 for a few.
 */
export const nnBlockRows = (rows: number): number => (rows > 8 ? 16 : 4);

/**
 * The same product on CPU adapters with fixed-size subgroups (see kernels/matmul.ts, broadcastMatmul): each lane 4
 * neighbouring columns of dX (a weight row read as vec4s: four values per load, f16 pairs and quantized words whole),
 * rows in blocks of `rb`, N in chunks of SG; each lane loads one element of the chunk of each dY row and
 * subgroupBroadcast hands it to the other lanes, so dY is read once per subgroup.
 */
function broadcastNN(format: WeightFormat, accumulate: boolean, sg: number, rb: number): Kernel {
  const R = [...Array(rb).keys()];
  const J = [...Array(sg).keys()];
  const rows = (f: (i: number) => string, sep = '\n    ') => R.map(f).join(sep);
  // Blocks of 16 rows: the chunk's SG steps as a loop (the lane read by subgroupShuffle), so the shader compiles fast.
  const lit = (j: number | string) => (typeof j === 'number' ? `${j}u` : j);
  return {
    name: `matmul_nn_bcast${sg}x${rb}+${format}${accumulate ? '+acc' : ''}`, workgroupSize: 64, constants: { SG: sg }, subgroups: true,
    // Grid: 64 groups of 4 columns of dX per workgroup.
    grid: (s) => [Math.ceil(need('matmul_nn', s).K / 256), 1, 1],
    params: PARAMS, buffers: buffers(format),
    source: /* wgsl */ `${weightReaders(format, 'w')}
// dX[row at o, k .. k + 3] (+)= v, columns past K left alone.
fn store4(o: u32, k: u32, v: vec4<f32>) {
  for (var j = 0u; j < 4u; j++) { if (k + j < P.K) { ${accumulate ? 'dx[o + k + j] += v[j];' : 'dx[o + k + j] = v[j];'} } }
}

fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) tid: u32, @builtin(subgroup_invocation_id) lane: u32) {
  let K4 = (P.K + 3u) / 4u;
  let g = wid.x * WG + tid;    // this lane's columns 4 g .. 4 g + 3
  let k4 = min(g, K4 - 1u);    // every lane runs the loops (subgroup operations); past K it writes nothing
  for (var m0 = 0u; m0 < P.M; m0 += ${rb}u) {
    ${rows((i) => `let r${i} = (P.yRow + min(m0 + ${i}u, P.M - 1u)) * P.ldy + P.yOff;`)}
    ${rows((i) => `var a${i} = vec4<f32>(0.0);`, ' ')}
    for (var n0 = 0u; n0 < P.N; n0 += SG) {
      let nl = n0 + lane;
      ${rows((i) => `let y${i} = select(0.0, dy[r${i} + min(nl, P.N - 1u)], nl < P.N);`)}
      ${(rb > 4 ? ['j'] : J).map((j) => `${j === 'j' ? 'for (var j = 0u; j < SG; j++) { ' : ''}if (n0 + ${lit(j)} < P.N) {
        let w = wVec(n0 + ${lit(j)}, k4);
        ${rows((i) => `a${i} += ${j === 'j' ? `subgroupShuffle(y${i}, j)` : `subgroupBroadcast(y${i}, ${j}u)`} * w;`, '\n        ')}
      }${j === 'j' ? ' }' : ''}`).join('\n      ')}
    }
    if (g < K4) {
      ${rows((i) => `if (m0 + ${i}u < P.M) { store4((P.outRow + m0 + ${i}u) * P.ldo, 4u * g, a${i}); }`, '\n      ')}
    }
  }
}`,
  };
}
