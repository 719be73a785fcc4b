// y = x W^T for W stored (N, K) with K contiguous (the Hugging Face layout), with the fusions the forward needs:
//   norm:     x is RMS-normalized with gain g first (the row's 1/rms is a scalar, so it is applied after the dot
//             product; the sum of squares is accumulated while x streams through, no extra pass)
//   bias:     + b[n]
//   swiglu:   two weights (gate, up): y = silu(x Wg^T) * (x Wu^T); with `gelu`, GeGLU: tanh GELU instead of SiLU
//   residual: out += y instead of out = y
//   last:     rows are the last token of each sequence (the lm_head only projects those)
//   lora:     + strength * (u B_slot^T) per row, u = x A_slot^T computed by the lora_shrink kernel, the slot and
//             strength read from the row's info (BGMV: each row its own adapter, the base weight read once)
// On a GPU two shapes: `gemv` for a few rows (decode; each weight element is read once for all rows, as vec4 loads)
// and `gemm` (prefill; 64x64 output tiles, 4x4 per thread, K staged through workgroup memory in slices of 16, K-major
// so a thread reads its 4 rows and 4 columns as two vec4s, conflict-free; weights read as vec4s, so a quantized block's
// scale once per 4 values). On a CPU adapter with fixed-size subgroups one: the broadcast matmul (one thread per
// column, or 4 for many rows; input rows shared lane to lane by subgroup broadcasts and shuffles; see broadcastMatmul).
// Weights are read through weight-read.ts, which dequantizes q8/q4 blocks in registers.

import { grid2d, need, type BufferDecl, type Grid, type Kernel, type Sizes } from '../gpu/program.js';
import { isQuantized, type WeightFormat } from '../quant/blocks.js';
import { ACTIVATIONS, actFn } from './activation.js';
import { ROW_INFO, SHARED, STEP, STEP_STRUCT } from './common.js';
import { weightBuffer, weightReaders } from './weight-read.js';

export interface MatmulOptions {
  /** How W (and W2) are stored: f32, f16, or blocks of 8- or 4-bit values with f16 scales (weight-read.ts). */
  format: WeightFormat;
  norm: boolean;
  bias: boolean;
  swiglu: boolean;
  /** The GLU's gate activation is Gemma's tanh GELU (kernels/activation.ts) instead of SiLU. */
  gelu?: boolean;
  residual: boolean;
  last: boolean;
  lora?: boolean;
}

/** Most rows the gemv variant takes; more rows use gemm. */
export const GEMV_MAX_ROWS = 8;
/** gemm's square output tile (16 x 16 threads, 4 x 4 outputs each; the kernel is written for exactly 64). */
export const GEMM_TILE = 64;
/** K elements staged through workgroup memory per gemm step. */
const GEMM_TK = 16;
const THREADS = 256;

/**
 * The uniforms of every matmul variant. LoRA fields: rank r, modules G, B rows per slot, the rows where the k and v
 * segments start in a fused qkv output (NONE when the group has no such segment), the up block's first B row.
 */
export const MATMUL_PARAMS = {
  N: 'u32', K: 'u32', ldw: 'u32', ldx: 'u32', ldo: 'u32', nOff: 'u32', eps: 'f32',
  rank: 'u32', G: 'u32', bRows: 'u32', seg1: 'u32', seg2: 'u32', upRow: 'u32',
} as const;

/**
 * Threads that share one output column's dot product in the gemv variant. On a GPU: enough to keep each thread's
 * share of K near 64 elements (16 vec4 loads; up to 32 lanes for K >= 2048), so a column's row is read by neighbouring
 * threads (coalesced). On a CPU adapter one thread per column up to K = 4096: its invocations run as SIMD lanes of a
 * few cores, where the cross-thread reduction's barriers cost more than they save (`npm run bench` shows the split).
 */
export function gemvLanes(k: number, cpu = false): number {
  const share = cpu ? 4096 : 64;
  let lanes = 1;
  while (lanes < 32 && lanes * share < k) lanes *= 2;
  return lanes;
}

function buffers(o: MatmulOptions, vec: boolean): Record<string, BufferDecl> {
  const read = (type: string, shape: string): BufferDecl => ({ type, access: 'read', shape });
  return {
    S: STEP,
    x: vec ? read('array<vec4<f32>>', '(M, ldx / 4)') : read('array<f32>', '(M, ldx)'),
    w: weightBuffer(o.format),
    ...(o.swiglu ? { w2: weightBuffer(o.format) } : {}),
    ...(o.norm ? { gain: vec ? read('array<vec4<f32>>', '(K / 4)') : read('array<f32>', '(K)') } : {}),
    ...(o.bias ? { bias: read('array<f32>', '(nOff + N)') } : {}),
    out: { type: 'array<f32>', access: 'read_write', shape: '(M, ldo)' },
    ...(o.lora ? {
      rowInfo: ROW_INFO,
      loraU: read('array<f32>', '(M, G, r)'),
      loraB: read('array<f32>', '(slots, bRows, r)'),
    } : {}),
  };
}

/**
 * A matmul kernel of shape `source`. `vec`: K is a multiple of 4 (and so is ldx, which every caller sets to K), and x
 * and the gain are bound as vec4s: one load each instead of four. On CPU adapters, where every load with a per-lane
 * address is a loop over the lanes, that also shrinks the shader the driver compiles at first use.
 */
function matmulKernel(name: string, o: MatmulOptions, vec: boolean, constants: Record<string, number>, source: string, grid: Kernel['grid']): Kernel {
  const flags = (['norm', 'bias', 'swiglu', 'gelu', 'residual', 'last', 'lora'] as const).filter((f) => o[f]);
  return {
    name: [name, o.format, ...flags].join('+'), workgroupSize: THREADS, structs: STEP_STRUCT, grid,
    constants: { ...SHARED, ...constants }, params: MATMUL_PARAMS, buffers: buffers(o, vec),
    source: helpers(o, vec) + source,
  };
}

function helpers(o: MatmulOptions, vec: boolean): string {
  const rows = o.last ? 'S.seqs' : 'S.rows';
  const xRow = o.last ? 'm * S.lastStride + S.lastOffset' : 'm';
  return `
fn numRows() -> u32 { return ${rows}; }
${vec ? vecReads(xRow, o.norm) : scalarReads(xRow, o.norm)}
${weightReaders(o.format, 'w')}
${o.swiglu ? weightReaders(o.format, 'w2') : ''}
${o.lora ? LORA_TERM : ''}
${o.swiglu ? ACTIVATIONS : ''}
fn epilogue(m: u32, n: u32, acc: f32, acc2: f32, rstd: f32) {
  var y = acc * rstd;
  ${o.lora && !o.swiglu ? 'let ng = P.nOff + n;\n  y += loraTerm(m, select(select(0u, 1u, ng >= P.seg1), 2u, ng >= P.seg2), ng);' : ''}
  ${o.bias ? 'y += bias[P.nOff + n];' : ''}
  ${o.swiglu ? `var up = acc2 * rstd;
  ${o.lora ? 'y += loraTerm(m, 0u, P.nOff + n);\n  up += loraTerm(m, 1u, P.upRow + P.nOff + n);' : ''}
  y = ${actFn(o.gelu ? 'gelu_tanh' : 'silu')}(y) * up;` : ''}
  let at = m * P.ldo + P.nOff + n;
  ${o.residual ? 'out[at] = out[at] + y;' : 'out[at] = y;'}
}
`;
}

/** x4 and gain4 from vec4 bindings (K a multiple of 4): one load each, the index clamped, zero past K. */
function vecReads(xRow: string, norm: boolean): string {
  return `// x[m, 4 k4 .. 4 k4 + 3], zero past K.
fn x4(m: u32, k4: u32) -> vec4<f32> {
  let K4 = P.K / 4u;
  return select(vec4<f32>(0.0), x[(${xRow}) * (P.ldx / 4u) + min(k4, K4 - 1u)], k4 < K4);
}
${norm ? `fn gain4(k4: u32) -> vec4<f32> {
  let K4 = P.K / 4u;
  return select(vec4<f32>(0.0), gain[min(k4, K4 - 1u)], k4 < K4);
}` : ''}`;
}

/** x4 and gain4 from f32 bindings (any K): four loads each, indices clamped and the tail masked, without branches. */
function scalarReads(xRow: string, norm: boolean): string {
  return `// x[m, 4 k4 .. 4 k4 + 3], zero past K (x rows are not padded).
fn x4(m: u32, k4: u32) -> vec4<f32> {
  let base = (${xRow}) * P.ldx;
  let k = 4u * k4;
  let last = base + P.K - 1u;
  let v = vec4<f32>(x[min(base + k, last)], x[min(base + k + 1u, last)], x[min(base + k + 2u, last)], x[min(base + k + 3u, last)]);
  return select(vec4<f32>(0.0), v, vec4<u32>(k) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(P.K));
}
${norm ? `fn gain4(k4: u32) -> vec4<f32> {
  let k = 4u * k4;
  let last = P.K - 1u;
  let g = vec4<f32>(gain[min(k, last)], gain[min(k + 1u, last)], gain[min(k + 2u, last)], gain[min(k + 3u, last)]);
  return select(vec4<f32>(0.0), g, vec4<u32>(k) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(P.K));
}` : ''}`;
}

const LORA_TERM = /* wgsl */ `
// strength * sum_j u[m, seg, j] * B[slot, bRow, j]; nothing for rows without an adapter.
fn loraTerm(m: u32, seg: u32, bRow: u32) -> f32 {
  let slot = rowInfo[RI * m + RI_LORA_SLOT];
  if (slot == 0u) { return 0.0; }
  var t = 0.0;
  let u0 = (m * P.G + seg) * P.rank;
  let b0 = (slot * P.bRows + bRow) * P.rank;
  for (var j = 0u; j < P.rank; j++) { t += loraU[u0 + j] * loraB[b0 + j]; }
  return bitcast<f32>(rowInfo[RI * m + RI_LORA_SCALE]) * t;
}`;

/**
 * What the matmul shapes depend on: a CPU adapter, and its fixed subgroup size (0: none; only CPU adapters have one,
 * `Gpu.subgroup`).
 */
export interface MatmulDevice { cpu: boolean; subgroup: number }

/** A GPU: lane reductions, gemm tiles. */
const GPU_SHAPES: MatmulDevice = { cpu: false, subgroup: 0 };

/** Rows per block of the broadcast matmul when a call has more than one row (prefill, compare columns). */
export const BROADCAST_ROWS = 4;

/**
 * The broadcast matmul's block for many rows (prefill, scoring, training): 16 rows by 4 columns per lane. On these
 * drivers every load whose address differs across lanes is a loop of scalar loads (lavapipe scalarizes only addresses
 * that are compile-time uniform, never a loop's), so the kernel is bound by loads, not FMAs: a weight vec4 loaded once
 * serves 16 rows, an input vec4 broadcast once serves 4 columns. Measured on lavapipe at SmolLM2-135M shapes
 * (`npm run bench -- --only gemm`): about twice the GFLOP/s of 4 rows by 1 column; 32 rows by 4 columns or 16 by 8
 * were no faster in our runs (more accumulators than registers).
 */
export const BROADCAST_GEMM = { rows: 16, cols: 4 } as const;

/**
 * `k` and the device pick the shape. On a CPU adapter with fixed-size subgroups every variant is the broadcast matmul
 * (one row, blocks of BROADCAST_ROWS for a few, BROADCAST_GEMM for many). Otherwise `gemv1` is gemv for exactly one row (a decode step; its
 * accumulators are single registers), `gemv` takes up to GEMV_MAX_ROWS rows with `gemvLanes` lanes per column, and
 * `gemm` tiles. Grid sizes: `{ N, rows }`.
 */
export function matmulProgram(variant: 'gemv1' | 'gemv' | 'gemm', o: MatmulOptions, k: number, device: MatmulDevice = GPU_SHAPES): Kernel {
  const vec = k % 4 === 0;
  if (device.subgroup > 0) {
    if (variant === 'gemm') return broadcastMatmul(o, vec, device.subgroup, BROADCAST_GEMM.rows, BROADCAST_GEMM.cols);
    return broadcastMatmul(o, vec, device.subgroup, variant === 'gemv1' ? 1 : BROADCAST_ROWS);
  }
  if (variant === 'gemm') return gemm(o, vec);
  if (variant === 'gemv1' && k <= GEMV_STAGED_K) return gemvStaged(o, vec, gemvLanes(k, device.cpu));
  return gemv(o, vec, gemvLanes(k, device.cpu), variant === 'gemv1' ? 1 : GEMV_MAX_ROWS);
}

/**
 * Largest K whose input row the one-row gemv stages in workgroup memory (12 KiB of f32, leaving room for the lane
 * reduction under WebGPU's 16 KiB minimum); longer rows use the plain gemv.
 */
export const GEMV_STAGED_K = 3072;

/** The matmul variant for a call of `rows` rows. */
export const matmulVariant = (rows: number): 'gemv1' | 'gemv' | 'gemm' => (rows === 1 ? 'gemv1' : rows <= GEMV_MAX_ROWS ? 'gemv' : 'gemm');

function gemv(o: MatmulOptions, vec: boolean, lanes: number, maxRows: number): Kernel {
  const g = o.norm ? ' * gk' : '';
  // Grid: output columns in blocks of COLS (rows loop inside), over x and y past 65535 blocks.
  const grid = (s: Sizes) => grid2d(Math.ceil(need('gemv', s).N / (THREADS / lanes)));
  return matmulKernel(`gemv${lanes}x${maxRows}`, o, vec, { R: maxRows, LANES: lanes, COLS: THREADS / lanes }, /* wgsl */ `
${lanes > 1 ? 'var<workgroup> red: array<f32, WG * R>;' : ''}

fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) tid: u32) {
  let M = numRows();
  let c = tid / LANES;
  let lane = tid % LANES;
  let n = (wid.x + wid.y * nwg.x) * COLS + c;
  var acc: array<f32, R>;
  var acc2: array<f32, R>;
  var sq: array<f32, R>;
  if (n < P.N) {
    let K4 = (P.K + 3u) / 4u;
    for (var k4 = lane; k4 < K4; k4 += LANES) {
      ${o.norm ? 'let gk = gain4(k4);' : ''}
      let wk = wVec(n, k4)${g};
      ${o.swiglu ? `let wk2 = w2Vec(n, k4)${g};` : ''}
      for (var m = 0u; m < R; m++) {
        if (m >= M) { break; } // a constant trip bound lets the compiler keep the accumulators in registers
        let xv = x4(m, k4);
        acc[m] += dot(xv, wk);
        ${o.swiglu ? 'acc2[m] += dot(xv, wk2);' : ''}
        ${o.norm ? 'sq[m] += dot(xv, xv);' : ''}
      }
    }
  }
${lanes === 1 ? gemvOwnColumn(o) : gemvReduce(o)}
}`, grid);
}

/**
 * gemv for one row (a decode step) with the input row staged once per workgroup: x is read from global memory once
 * (not once per column), and with `norm` it is RMS-normalized and scaled by the gain there, so the loop over K is one
 * weight load and one dot product per vec4 (two for swiglu) instead of also reloading x, the gain and the sum of
 * squares for every column. SmolLM2-135M shapes on lavapipe: see `npm run bench` (qkv, gate_up, lm_head).
 */
function gemvStaged(o: MatmulOptions, vec: boolean, lanes: number): Kernel {
  // One lane per column (a CPU adapter): 64 columns per workgroup, so a 576-wide output is 9 workgroups for the
  // cores to share rather than 3.
  const wg = lanes === 1 ? 64 : THREADS;
  const grid = (s: Sizes) => grid2d(Math.ceil(need('gemv', s).N / (wg / lanes)));
  const k = matmulKernel(`gemv${lanes}x1s`, o, vec, { R: 1, LANES: lanes, COLS: wg / lanes, XS4: GEMV_STAGED_K / 4 }, /* wgsl */ `
var<workgroup> xs: array<vec4<f32>, XS4>; // the row, normalized and scaled by the gain (norm), zero past K
${lanes > 1 || o.norm ? 'var<workgroup> red: array<f32, WG>;' : ''}
${o.norm ? 'var<workgroup> rstd: f32; // 1 / rms of the row, summed by one thread' : ''}

fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) tid: u32) {
  if (numRows() == 0u) { return; }
  let K4 = (P.K + 3u) / 4u;
  var sq = 0.0;
  for (var k4 = tid; k4 < K4; k4 += WG) {
    let v = x4(0u, k4);
    xs[k4] = v;
    ${o.norm ? 'sq += dot(v, v);' : ''}
  }
  ${o.norm ? `red[tid] = sq;
  workgroupBarrier();
  if (tid == 0u) {
    var ss = 0.0;
    for (var t = 0u; t < WG; t++) { ss += red[t]; }
    rstd = inverseSqrt(ss / f32(P.K) + P.eps);
  }
  workgroupBarrier();
  for (var k4 = tid; k4 < K4; k4 += WG) { xs[k4] = xs[k4] * gain4(k4) * rstd; }` : ''}
  workgroupBarrier();
  let c = tid / LANES;
  let lane = tid % LANES;
  let n = (wid.x + wid.y * nwg.x) * COLS + c;
  var acc = 0.0;
  var acc2 = 0.0;
  if (n < P.N) {
    for (var k4 = lane; k4 < K4; k4 += LANES) {
      let xv = xs[k4];
      acc += dot(xv, wVec(n, k4));
      ${o.swiglu ? 'acc2 += dot(xv, w2Vec(n, k4));' : ''}
    }
  }
${lanes === 1 ? `  if (n < P.N) { epilogue(0u, n, acc, acc2, 1.0); }` : `${stagedReduce('acc')}${o.swiglu ? stagedReduce('acc2') : ''}
  if (n < P.N && lane == 0u) { epilogue(0u, n, acc, acc2, 1.0); }`}
}`, grid);
  return { ...k, workgroupSize: wg };
}

/**
 * The matmul of CPU adapters with fixed-size subgroups (`Gpu.subgroup`): one thread per output column, the rows in
 * blocks of RB, K in chunks of SG vec4s. Each lane loads one vec4 of the chunk of each row of the block (scaled by the
 * gain with `norm`) and subgroupBroadcast hands the chunk to every lane, so an input row is read once per subgroup
 * rather than once per lane: on these drivers every load with a per-lane address is a loop over the lanes, while a
 * broadcast is a register shuffle. The weights stay one load per lane (each lane its own column). With `norm` each
 * lane sums the squares of the vec4s it loaded and subgroupAdd totals the row. All lanes run the loops (a lane past N
 * reads column N - 1 and writes nothing), as subgroup operations need. SmolLM2-135M shapes on lavapipe: `npm run bench`.
 */
function broadcastMatmul(o: MatmulOptions, vec: boolean, sg: number, rb: number, cl = 1): Kernel {
  const wg = 64;
  const grid = (s: Sizes) => grid2d(Math.ceil(need('gemv', s).N / (wg * cl)));
  const R = [...Array(rb).keys()];
  const C = [...Array(cl).keys()];
  const J = [...Array(sg).keys()];
  const rows = (f: (i: number) => string, sep = '\n    ') => R.map(f).join(sep);
  const cols = (f: (c: number) => string, sep = ' ') => C.map(f).join(sep);
  const both = (f: (i: number, c: number) => string, sep = ' ') => R.flatMap((i) => C.map((c) => f(i, c))).join(sep);
  // Quantized weights: a chunk of SG vec4s lies in one block of 32 when SG divides 8, so each column's block scale is
  // read once per chunk and the chunk's values are dequantized with it in registers.
  const hoist = isQuantized(o.format) && 8 % sg === 0;
  // Many rows: the chunk's SG steps as a loop (the lane read by subgroupShuffle), not unrolled: as fast, and the
  // shader compiles in a third of the time (lavapipe: ~4 s instead of ~11 s for gate_up).
  const loop = rb > BROADCAST_ROWS;
  const lit = (j: number | string) => (typeof j === 'number' ? `${j}u` : j);
  const read = (w: string, c: number, j: number | string) => (hoist ? `${w}Raw(n${c}, k0 + ${lit(j)}) * ${w === 'w' ? 's' : 't'}c${c}` : `${w}Vec(n${c}, k0 + ${lit(j)})`);
  const k = matmulKernel(`bcast${sg}x${rb}${cl > 1 ? `x${cl}` : ''}`, o, vec, { SG: sg }, /* wgsl */ `
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) tid: u32,
        @builtin(subgroup_invocation_id) lane: u32) {
  let M = numRows();
  // This lane's CL columns, WG apart; past N the last column again (computed, not written).
  let col = (wid.x + wid.y * nwg.x) * WG * ${cl}u + tid;
  ${cols((c) => `let n${c} = min(col + ${c * wg}u, P.N - 1u);`)}
  let K4 = (P.K + 3u) / 4u;
  for (var m0 = 0u; m0 < M; m0 += ${rb}u) {
    // The block's rows; past M the last row again (computed, not written).
    ${rows((i) => `let r${i} = min(m0 + ${i}u, M - 1u);`)}
    ${both((i, c) => `var a${i}_${c} = 0.0;${o.swiglu ? ` var b${i}_${c} = 0.0;` : ''}`)}
    ${o.norm ? rows((i) => `var q${i} = 0.0;`, ' ') : ''}
    for (var k0 = 0u; k0 < K4; k0 += SG) {
      let kl = k0 + lane; // this lane's vec4 of the chunk (zero past K)
      ${o.norm ? 'let g = gain4(kl);' : ''}
      ${rows((i) => `let v${i} = x4(r${i}, kl);${o.norm ? ` q${i} += dot(v${i}, v${i}); let s${i} = v${i} * g;` : ` let s${i} = v${i};`}`)}
      ${hoist ? cols((c) => `let sc${c} = wScale(n${c}, k0 / 8u);${o.swiglu ? ` let tc${c} = w2Scale(n${c}, k0 / 8u);` : ''}`) : ''}
      ${(loop ? ['j'] : J).map((j) => `${j === 'j' ? 'for (var j = 0u; j < SG; j++) { ' : ''}if (k0 + ${lit(j)} < K4) {
        ${cols((c) => `let w${c} = ${read('w', c, j)};${o.swiglu ? ` let u${c} = ${read('w2', c, j)};` : ''}`)}
        ${rows((i) => `{ let v = ${j === 'j' ? `subgroupShuffle(s${i}, j)` : `subgroupBroadcast(s${i}, ${j}u)`}; ${cols((c) => `a${i}_${c} += dot(v, w${c});${o.swiglu ? ` b${i}_${c} += dot(v, u${c});` : ''}`)} }`, '\n        ')}
      }${j === 'j' ? ' }' : ''}`).join('\n      ')}
    }
    // The block's sums into arrays, so the epilogue (LoRA terms, activation) is compiled once, not once per output.
    var sumA: array<f32, ${rb * cl}>;
    ${o.swiglu ? `var sumB: array<f32, ${rb * cl}>;` : ''}
    var rs: array<f32, ${rb}>;
    ${both((i, c) => `sumA[${i * cl + c}] = a${i}_${c};${o.swiglu ? ` sumB[${i * cl + c}] = b${i}_${c};` : ''}`)}
    ${rows((i) => `rs[${i}] = ${o.norm ? `inverseSqrt(subgroupAdd(q${i}) / f32(P.K) + P.eps)` : '1.0'};`, ' ')}
    for (var e = 0u; e < ${rb * cl}u; e++) {
      let m = m0 + e / ${cl}u;
      let n = col + (e % ${cl}u) * WG;
      if (m < M && n < P.N) { epilogue(m, n, sumA[e], ${o.swiglu ? 'sumB[e]' : '0.0'}, rs[e / ${cl}u]); }
    }
  }
}`, grid);
  return { ...k, workgroupSize: wg, subgroups: true };
}

/** LANES threads per column (staged one-row gemv): lane 0 gathers its column's partial sums of `v`. */
function stagedReduce(v: string): string {
  return `
  workgroupBarrier();
  red[tid] = ${v};
  workgroupBarrier();
  if (lane == 0u) { for (var l = 1u; l < LANES; l++) { ${v} += red[tid + l]; } }`;
}

/** One thread per column: the thread already holds every row's full sums. */
function gemvOwnColumn(o: MatmulOptions): string {
  return `  if (n >= P.N) { return; }
  for (var m = 0u; m < R; m++) {
    if (m >= M) { break; }
    ${o.norm ? 'let rstd = inverseSqrt(sq[m] / f32(P.K) + P.eps);' : 'let rstd = 1.0;'}
    epilogue(m, n, acc[m], acc2[m], rstd);
  }`;
}

/**
 * LANES threads per column: reduce each accumulator through workgroup memory, one array at a time (16 KiB).
 * Lane l finishes rows l, l + LANES, ... of its column.
 */
function gemvReduce(o: MatmulOptions): string {
  const pass = (src: string, dst: string) => `
  workgroupBarrier();
  for (var m = 0u; m < R; m++) { if (m >= M) { break; } red[m * WG + tid] = ${src}[m]; }
  workgroupBarrier();
  for (var m = lane; m < M; m += LANES) {
    var t = 0.0;
    for (var l = 0u; l < LANES; l++) { t += red[m * WG + c * LANES + l]; }
    ${dst}[m] = t;
  }`;
  return `  var s: array<f32, R>;
  var s2: array<f32, R>;
  var ss: array<f32, R>;${pass('acc', 's')}${o.swiglu ? pass('acc2', 's2') : ''}${o.norm ? pass('sq', 'ss') : ''}
  if (n >= P.N) { return; }
  for (var m = lane; m < M; m += LANES) {
    ${o.norm ? 'let rstd = inverseSqrt(ss[m] / f32(P.K) + P.eps);' : 'let rstd = 1.0;'}
    epilogue(m, n, s[m], s2[m], rstd);
  }`;
}

function gemm(o: MatmulOptions, vec: boolean): Kernel {
  // Grid: 64 x 64 output tiles, (columns, rows).
  const grid = (s: Sizes) => { const { N, rows } = need('gemm', s); return [Math.ceil(N / GEMM_TILE), Math.ceil(rows / GEMM_TILE), 1] as Grid; };
  const sw = o.swiglu;
  return matmulKernel('gemm', o, vec, { T: GEMM_TILE, TK: GEMM_TK }, /* wgsl */ `
// K-major tiles: element (k, i) at k * T + i, read as vec4s of 4 neighbouring rows (columns): a thread's 4 x 4 block
// is two vec4 loads per k, and the threads of a row of the block read neighbouring vec4s, so no two lanes of a warp
// hit one bank with different addresses (the row-major layout read them 16 floats apart).
var<workgroup> xs: array<vec4<f32>, TK * T / 4>;
var<workgroup> ws: array<vec4<f32>, TK * T / 4>;
${sw ? 'var<workgroup> ws2: array<vec4<f32>, TK * T / 4>;' : ''}
${o.norm ? 'var<workgroup> sqs: array<f32, 4u * T>;' : ''}

// Stores vec4 v (elements k .. k + 3 of row or column r) transposed into a K-major tile.
fn put(tile: ptr<workgroup, array<vec4<f32>, TK * T / 4>>, kq: u32, r: u32, v: vec4<f32>) {
  for (var j = 0u; j < 4u; j++) { (*tile)[((4u * kq + j) * T + r) / 4u][r % 4u] = v[j]; }
}

fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) tid: u32) {
  let M = numRows();
  let m0 = wid.y * T;
  let n0 = wid.x * T;
  let tx = tid % 16u;   // this thread's 4 output columns: n0 + tx * 4 + j
  let ty = tid / 16u;   // this thread's 4 output rows: m0 + ty * 4 + i
  // Staging: thread tid loads the vec4 (row or column lr, k quad lq) of each tile; neighbouring threads, neighbouring rows.
  let lr = tid % T;
  let lq = tid / T;
  let full = m0 + T <= M && n0 + T <= P.N;   // an inner tile: no row or column checks
  var acc: array<vec4<f32>, 4>;
  ${sw ? 'var acc2: array<vec4<f32>, 4>;' : ''}
  var sq = 0.0;
  let K4 = (P.K + 3u) / 4u;
  for (var k0 = 0u; k0 < K4; k0 += TK / 4u) {
    let k4 = k0 + lq;
    var xv = vec4<f32>(0.0);
    var wv = vec4<f32>(0.0);
    ${sw ? 'var wv2 = vec4<f32>(0.0);' : ''}
    if (k4 < K4) {
      if (full || m0 + lr < M) { xv = x4(m0 + lr, k4); ${o.norm ? 'sq += dot(xv, xv); xv = xv * gain4(k4);' : ''} }
      if (full || n0 + lr < P.N) { wv = wVec(n0 + lr, k4); ${sw ? 'wv2 = w2Vec(n0 + lr, k4);' : ''} }
    }
    put(&xs, lq, lr, xv);
    put(&ws, lq, lr, wv);
    ${sw ? 'put(&ws2, lq, lr, wv2);' : ''}
    workgroupBarrier();
    for (var kk = 0u; kk < TK; kk++) {
      let a = xs[kk * (T / 4u) + ty];
      let b = ws[kk * (T / 4u) + tx];
      ${sw ? 'let b2 = ws2[kk * (T / 4u) + tx];' : ''}
      for (var i = 0u; i < 4u; i++) {
        acc[i] += a[i] * b;
        ${sw ? 'acc2[i] += a[i] * b2;' : ''}
      }
    }
    workgroupBarrier();
  }
  ${o.norm ? `sqs[lq * T + lr] = sq;
  workgroupBarrier();` : ''}
  for (var i = 0u; i < 4u; i++) {
    let r = ty * 4u + i;
    let m = m0 + r;
    ${o.norm ? `let rstd = inverseSqrt((sqs[r] + sqs[T + r] + sqs[2u * T + r] + sqs[3u * T + r]) / f32(P.K) + P.eps);` : 'let rstd = 1.0;'}
    for (var j = 0u; j < 4u; j++) {
      let n = n0 + tx * 4u + j;
      if (m < M && n < P.N) { epilogue(m, n, acc[i][j], ${sw ? 'acc2[i][j]' : '0.0'}, rstd); }
    }
  }
}`, grid);
}
