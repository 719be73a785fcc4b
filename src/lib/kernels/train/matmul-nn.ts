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

/**
 * Which of dY and dX the broadcast shape reads and writes as vec4s: dY where its row stride and column offset are
 * multiples of 4 (dY's rows then start on vec4s), dX where K (its row stride) is. One load or store of four instead of
 * four: on CPU adapters every per-lane access is a loop over the lanes.
 */
export interface NNVec { dy: boolean; dx: boolean }
export const nnVec = (ldy: number, yOff: number, K: number, ldo = K): NNVec => ({ dy: ldy % 4 === 0 && yOff % 4 === 0, dx: K % 4 === 0 && ldo % 4 === 0 });
const SCALAR: NNVec = { dy: false, dx: false };

const buffers = (format: WeightFormat, vec = SCALAR): Kernel['buffers'] => ({
  dy: vec.dy ? { type: 'array<vec4<f32>>', access: 'read', shape: '(rows, ldy / 4)' } : { type: 'array<f32>', access: 'read', shape: '(rows, ldy)' },
  w: weightBuffer(format),
  dx: vec.dx ? { type: 'array<vec4<f32>>', access: 'read_write', shape: '(rows, ldo / 4)' } : { type: 'array<f32>', access: 'read_write', shape: '(rows, ldo)' },
});

/**
 * `subgroup`: a CPU adapter's fixed subgroup size (`Gpu.subgroup`), for the broadcast shape; 0 for the tiled one.
 * `rows`: the rows of dX the dispatch computes (the broadcast shape's block). `vec` (the broadcast shape): `nnVec` of
 * the dispatch's strides.
 */
export function matmulNNKernel(format: WeightFormat, accumulate: boolean, subgroup = 0, rows = 16, vec = SCALAR): Kernel {
  if (subgroup > 0) return broadcastNN(format, accumulate, subgroup, nnBlockRows(rows), vec);
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
 * rows in blocks of `rb`, N in chunks of SG; each lane loads one element (with `vec.dy` one vec4) of the chunk of each
 * dY row and subgroupBroadcast hands it to the other lanes, so dY is read once per subgroup.
 */
function broadcastNN(format: WeightFormat, accumulate: boolean, sg: number, rb: number, vec: NNVec): Kernel {
  const R = [...Array(rb).keys()];
  const rows = (f: (i: number) => string, sep = '\n    ') => R.map(f).join(sep);
  // Blocks of 16 rows: the chunk's SG steps as a loop (the lane read by subgroupShuffle), so the shader compiles fast.
  const loop = rb > 4;
  const steps = loop ? ['j'] : [...Array(sg).keys()];
  const lit = (j: number | string) => (typeof j === 'number' ? `${j}u` : j);
  const take = (v: string, j: number | string) => (j === 'j' ? `subgroupShuffle(${v}, j)` : `subgroupBroadcast(${v}, ${j}u)`);
  // dY as vec4s: a chunk is 4 SG values of n (lane l holds n0 + 4 l .. + 3), and a step takes four weight rows; rows
  // past N get a zero from dY (their weight row is clamped to a real one).
  const chunk = vec.dy ? '4u * SG' : 'SG';
  const loadY = vec.dy
    ? (i: number) => `let y${i} = select(vec4<f32>(0.0), dy[r${i} / 4u + min(nq, (P.N - 1u) / 4u)], vec4<u32>(4u * nq) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(P.N));`
    : (i: number) => `let y${i} = select(0.0, dy[r${i} + min(nl, P.N - 1u)], nl < P.N);`;
  const step = (j: number | string) => vec.dy
    ? `${j === 'j' ? 'for (var j = 0u; j < SG; j++) {' : '{'} let nj = n0 + 4u * ${lit(j)};
      if (nj < P.N) {
        let w0 = wVec(nj, k4); let w1 = wVec(min(nj + 1u, P.N - 1u), k4); let w2 = wVec(min(nj + 2u, P.N - 1u), k4); let w3 = wVec(min(nj + 3u, P.N - 1u), k4);
        ${rows((i) => `{ let v = ${take(`y${i}`, j)}; a${i} += v.x * w0 + v.y * w1 + v.z * w2 + v.w * w3; }`, '\n        ')}
      } }`
    : `${j === 'j' ? 'for (var j = 0u; j < SG; j++) { ' : ''}if (n0 + ${lit(j)} < P.N) {
        let w = wVec(n0 + ${lit(j)}, k4);
        ${rows((i) => `a${i} += ${take(`y${i}`, j)} * w;`, '\n        ')}
      }${j === 'j' ? ' }' : ''}`;
  const store = vec.dx
    ? `// dX[row at o, 4 g .. 4 g + 3] (+)= v (K a multiple of 4: the vec4 is whole).
fn store4(o: u32, g: u32, v: vec4<f32>) { ${accumulate ? 'dx[o / 4u + g] += v;' : 'dx[o / 4u + g] = v;'} }`
    : `// dX[row at o, 4 g .. 4 g + 3] (+)= v, columns past K left alone.
fn store4(o: u32, g: u32, v: vec4<f32>) {
  for (var j = 0u; j < 4u; j++) { if (4u * g + j < P.K) { ${accumulate ? 'dx[o + 4u * g + j] += v[j];' : 'dx[o + 4u * g + j] = v[j];'} } }
}`;
  return {
    name: `matmul_nn_bcast${sg}x${rb}+${format}${accumulate ? '+acc' : ''}`, workgroupSize: 64, constants: { SG: sg }, subgroups: true,
    // Grid: 64 groups of 4 columns of dX per workgroup.
    grid: (s) => [Math.ceil(need('matmul_nn', s).K / 256), 1, 1],
    params: PARAMS, buffers: buffers(format, vec),
    source: /* wgsl */ `${weightReaders(format, 'w')}
${store}

fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) tid: u32, @builtin(subgroup_invocation_id) lane: u32) {
  let K4 = (P.K + 3u) / 4u;
  let g = wid.x * WG + tid;    // this lane's columns 4 g .. 4 g + 3
  let k4 = min(g, K4 - 1u);    // every lane runs the loops (subgroup operations); past K it writes nothing
  for (var m0 = 0u; m0 < P.M; m0 += ${rb}u) {
    ${rows((i) => `let r${i} = (P.yRow + min(m0 + ${i}u, P.M - 1u)) * P.ldy + P.yOff;`)}
    ${rows((i) => `var a${i} = vec4<f32>(0.0);`, ' ')}
    for (var n0 = 0u; n0 < P.N; n0 += ${chunk}) {
      ${vec.dy ? 'let nq = n0 / 4u + lane; // this lane\'s vec4 of the chunk' : 'let nl = n0 + lane;'}
      ${rows(loadY)}
      ${steps.map(step).join('\n      ')}
    }
    if (g < K4) {
      ${rows((i) => `if (m0 + ${i}u < P.M) { store4((P.outRow + m0 + ${i}u) * P.ldo, g, a${i}); }`, '\n      ')}
    }
  }
}`,
  };
}
