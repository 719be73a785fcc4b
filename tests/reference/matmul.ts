// Float64 references of the matmul kernels, shared by the tests of every weight format (f32, f16, q8, q4): each takes
// the weights as the GPU sees them (`seen`: rounded to f16 or dequantized, row-major (N, K)), so one reference serves
// every format. Also the embedding lookup and the matmul uniforms without LoRA.

/** An unused LoRA segment bound (u32 max), as the kernels' uniforms take it. */
const NONE = 0xffffffff;

/** The fused matmul's options, as its reference reads them. */
export interface MatmulOptions { norm: boolean; bias: boolean; swiglu: boolean; gelu?: boolean; residual: boolean; last: boolean; lora?: boolean }
import { geluTanh, rmsnorm, silu } from './llama.js';

/** Uniforms of a matmul without LoRA. */
export const matmulParams = (N: number, K: number, ldw: number, ldo: number, nOff: number) =>
  ({ N, K, ldw, ldx: K, ldo, nOff, eps: 1e-5, rank: 0, G: 0, bRows: 0, seg1: NONE, seg2: NONE, upRow: 0 });

/** x W^T and x W2^T for one row of x (RMS-normalized with `gain` first when given): the dot products before any epilogue. */
export function rowDots(xr: ArrayLike<number>, N: number, K: number, W: ArrayLike<number>, W2?: ArrayLike<number>, gain?: ArrayLike<number>): { a: Float64Array; b: Float64Array } {
  const xin = gain ? rmsnorm(xr, gain, 1e-5) : Float64Array.from(xr);
  const a = new Float64Array(N);
  const b = new Float64Array(N);
  for (let n = 0; n < N; n++) {
    let s = 0, t = 0;
    for (let k = 0; k < K; k++) {
      s += xin[k] * W[n * K + k];
      if (W2) t += xin[k] * W2[n * K + k];
    }
    a[n] = s;
    b[n] = t;
  }
  return { a, b };
}

export interface MatmulCase {
  M: number; N: number; K: number;
  /** x (rows of K); `row(m)` is the row of x output row m reads (the `last` option picks rows). */
  x: Float32Array; row?: (m: number) => number;
  W: ArrayLike<number>; W2?: ArrayLike<number>; gain?: ArrayLike<number>; bias?: ArrayLike<number>;
  /** The output is (M, ldo); this matmul writes columns nOff .. nOff + N - 1 over `out0`. */
  nOff: number; ldo: number; out0: Float32Array;
}

/** The fused matmul's output (norm, bias, swiglu, residual as `o` asks), without LoRA. */
export function matmulReference(o: MatmulOptions, c: MatmulCase): Float64Array {
  const expected = Float64Array.from(c.out0);
  for (let m = 0; m < c.M; m++) {
    const r = c.row ? c.row(m) : m;
    const { a, b } = rowDots(c.x.subarray(r * c.K, r * c.K + c.K), c.N, c.K, c.W, o.swiglu ? c.W2 : undefined, o.norm ? c.gain : undefined);
    for (let n = 0; n < c.N; n++) {
      let y = a[n] + (o.bias ? c.bias![c.nOff + n] : 0);
      if (o.swiglu) y = (o.gelu ? geluTanh(y) : silu(y)) * b[n]; // SwiGLU, or Gemma's GeGLU
      const at = m * c.ldo + c.nOff + n;
      expected[at] = o.residual ? c.out0[at] + y : y;
    }
  }
  return expected;
}

/** dX += dY[:, yOff .. yOff + N - 1] W for W (N, K): the training kernel's input gradient, accumulated over `dx0`. */
export function dxReference(dy: ArrayLike<number>, ldy: number, yOff: number, W: ArrayLike<number>, M: number, N: number, K: number, dx0: ArrayLike<number>): Float64Array {
  const expected = Float64Array.from(dx0);
  for (let m = 0; m < M; m++) for (let k = 0; k < K; k++) {
    let s = 0;
    for (let n = 0; n < N; n++) s += dy[m * ldy + yOff + n] * W[n * K + k];
    expected[m * K + k] += s;
  }
  return expected;
}

/** The embedding lookup of one vocabulary shard (rows rowStart ..): its rows copied, other tokens' rows left as in x0. */
export function embedReference(tokens: Uint32Array, E: ArrayLike<number>, D: number, rowStart: number, x0: ArrayLike<number>, scale = 1): Float64Array {
  const expected = Float64Array.from(x0);
  const rows = E.length / D;
  tokens.forEach((t, m) => { if (t >= rowStart && t < rowStart + rows) for (let d = 0; d < D; d++) expected[m * D + d] = E[(t - rowStart) * D + d] * scale; });
  return expected;
}
