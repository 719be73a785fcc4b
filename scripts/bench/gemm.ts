// The gemm section of `npm run bench` (--only gemm): GFLOP/s of each matmul the engine runs for many rows at once
// (prefill, scoring, training's forward and input gradient) at SmolLM2-135M's shapes, beside the device's measured
// peak: a kernel of nothing but independent vec4 FMAs, so the gap to the limit shows on any GPU or software driver.
// Each figure: the median of timed submits of one dispatch, less an empty submit's time.

import type { Gpu } from '../../src/lib/gpu/device.js';
import { kernelCode, type Grid, type Kernel, type ParamValues, type Sizes } from '../../src/lib/gpu/program.js';
import { bindingIndex, packParams } from '../../src/lib/gpu/program.js';

/** Times one dispatch of `k` on buffers of the given byte sizes (filled with small values): median ms of `reps`. */
export async function timeKernel(gpu: Gpu, k: Kernel, params: ParamValues, bytes: Record<string, number>, grid: Grid | Sizes, reps = 5, fill?: (name: string, n: number) => ArrayBuffer): Promise<number> {
  const d = gpu.device;
  const pipeline = gpu.pipelines.get(k.name, kernelCode(k));
  const bufs: GPUBuffer[] = [];
  const make = (data: ArrayBuffer, usage: number) => {
    const size = Math.max(16, Math.ceil(data.byteLength / 16) * 16);
    const b = d.createBuffer({ size, usage });
    d.queue.writeBuffer(b, 0, data);
    bufs.push(b);
    return b;
  };
  const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: make(packParams(k, params), GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST) } }];
  for (const [name, decl] of Object.entries(k.buffers)) {
    const n = bytes[name];
    if (n === undefined) throw new Error(`bench of ${k.name}: no size for buffer ${name}`);
    const data = fill?.(name, n) ?? smallValues(n);
    const usage = decl.access === 'uniform' ? GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST : GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST;
    entries.push({ binding: bindingIndex(k, name), resource: { buffer: make(data, usage) } });
  }
  const bg = d.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
  const g = Array.isArray(grid) ? grid : k.grid(grid);
  const submit = async (work: boolean) => {
    const enc = d.createCommandEncoder();
    const pass = enc.beginComputePass();
    if (work) { pass.setPipeline(pipeline); pass.setBindGroup(0, bg); pass.dispatchWorkgroups(...g); }
    pass.end();
    const t0 = performance.now();
    d.queue.submit([enc.finish()]);
    await d.queue.onSubmittedWorkDone();
    return performance.now() - t0;
  };
  await submit(true); // compile and warm caches
  const empty = median(await Promise.all([0, 1, 2].map(() => submit(false))));
  const times: number[] = [];
  for (let i = 0; i < reps; i++) times.push(await submit(true));
  for (const b of bufs) b.destroy();
  gpu.check();
  return Math.max(1e-3, median(times) - empty);
}

const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s[s.length >> 1]; };

/** Bytes of 0x3c00-ish halves / small floats: finite under every format's reading (f32, f16 pairs, q8/q4 words). */
function smallValues(n: number): ArrayBuffer {
  const u = new Uint32Array(Math.ceil(n / 4));
  for (let i = 0; i < u.length; i++) u[i] = 0x3c003c00 ^ ((i * 2654435761) & 0x00ff00ff);
  return u.buffer;
}

/** The peak: WG threads, each ITER rounds of 8 independent vec4 FMAs (64 flops a round). */
export function fmaPeakKernel(): Kernel {
  return {
    name: 'fma_peak', workgroupSize: 64, params: { iters: 'u32' }, grid: (s) => [s.groups, 1, 1],
    buffers: { out: { type: 'array<f32>', access: 'read_write', shape: '(threads)' } },
    source: /* wgsl */ `
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let s = f32(gid.x) * 1e-9;
  var a0 = vec4<f32>(s); var a1 = a0 + 1.0; var a2 = a0 + 2.0; var a3 = a0 + 3.0;
  var a4 = a0 + 4.0; var a5 = a0 + 5.0; var a6 = a0 + 6.0; var a7 = a0 + 7.0;
  let m = vec4<f32>(0.999999, 0.999998, 0.999997, 0.999996);
  let c = vec4<f32>(1e-7);
  for (var i = 0u; i < P.iters; i++) {
    a0 = fma(a0, m, c); a1 = fma(a1, m, c); a2 = fma(a2, m, c); a3 = fma(a3, m, c);
    a4 = fma(a4, m, c); a5 = fma(a5, m, c); a6 = fma(a6, m, c); a7 = fma(a7, m, c);
  }
  out[gid.x] = dot(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7, vec4<f32>(1.0));
}`,
  };
}

/** The device's FMA peak in GFLOP/s (the best of a few grid sizes). */
export async function fmaPeak(gpu: Gpu): Promise<number> {
  const k = fmaPeakKernel();
  let best = 0;
  for (const groups of [64, 256]) {
    const iters = 4096;
    const ms = await timeKernel(gpu, k, { iters }, { out: groups * 64 * 4 }, { groups }, 3);
    best = Math.max(best, (groups * 64 * iters * 64) / (ms * 1e6));
  }
  return best;
}

import { matmulProgram, matmulVariant, MATMUL_PARAMS, type MatmulDevice, type MatmulOptions } from '../../src/lib/kernels/matmul.js';
import { matmulNNKernel, nnVec } from '../../src/lib/kernels/train/matmul-nn.js';
import { rowLayout, isQuantized, type WeightFormat } from '../../src/lib/quant/blocks.js';
import { NONE } from '../../src/lib/kernels/common.js';

/** The layer matmuls of SmolLM2-135M (hidden 576, intermediate 1536, 9 + 2 x 3 heads of 64). */
export const SMOL_GEMMS: { name: string; N: number; K: number; o: Partial<MatmulOptions> }[] = [
  { name: 'qkv (norm)', N: 960, K: 576, o: { norm: true } },
  { name: 'o (residual)', N: 576, K: 576, o: { residual: true } },
  { name: 'gate_up (norm, swiglu)', N: 1536, K: 576, o: { norm: true, swiglu: true } },
  { name: 'down (residual)', N: 576, K: 1536, o: { residual: true } },
];

/** Row stride of a weight matrix of K columns in `format` (f32/f16: elements, padded to 4; q: u32 words). */
export const weightStride = (format: WeightFormat, K: number) => (isQuantized(format) ? rowLayout(format, K).words : Math.ceil(K / 4) * 4);
const weightBytes = (format: WeightFormat, N: number, K: number) => N * weightStride(format, K) * (format === 'f32' ? 4 : format === 'f16' ? 2 : 4);

export interface GemmFigure { kernel: string; shape: string; format: WeightFormat; M: number; N: number; K: number; ms: number; gflops: number }

/** One forward matmul of M rows, as the engine would pick it on `device`. */
export async function timeForwardGemm(gpu: Gpu, device: MatmulDevice, g: (typeof SMOL_GEMMS)[number], format: WeightFormat, M: number, reps = 5): Promise<GemmFigure> {
  const o: MatmulOptions = { format, norm: false, bias: false, swiglu: false, residual: false, last: false, ...g.o };
  const k = matmulProgram(matmulVariant(M), o, g.K, device);
  const ldw = weightStride(format, g.K);
  const params = { N: g.N, K: g.K, ldw, ldx: g.K, ldo: g.N, nOff: 0, eps: 1e-5, rank: 0, G: 0, bRows: 0, seg1: NONE, seg2: NONE, upRow: 0 } satisfies Record<keyof typeof MATMUL_PARAMS, number>;
  const wb = weightBytes(format, g.N, g.K);
  const bytes: Record<string, number> = { S: 16, x: M * g.K * 4, w: wb, w2: wb, gain: g.K * 4, out: M * g.N * 4 };
  const fill = (name: string, n: number) => (name === 'S' ? Uint32Array.of(M, M, 1, 0, 0, 0, 0, 0).buffer.slice(0, Math.max(16, n)) : undefined) as ArrayBuffer;
  const ms = await timeKernel(gpu, k, params, bytes, { N: g.N, rows: M }, reps, (name, n) => fill(name, n));
  const flops = 2 * M * g.N * g.K * (o.swiglu ? 2 : 1);
  return { kernel: k.name, shape: g.name, format, M, N: g.N, K: g.K, ms, gflops: flops / (ms * 1e6) };
}

/** Training's input gradient dX = dY W (M rows of dY, W (N, K)). */
export async function timeInputGradient(gpu: Gpu, subgroup: number, N: number, K: number, format: WeightFormat, M: number, reps = 5): Promise<GemmFigure> {
  const k = matmulNNKernel(format, false, subgroup, M, nnVec(N, 0, K));
  const ldw = weightStride(format, K);
  const ms = await timeKernel(gpu, k, { M, N, K, ldy: N, yOff: 0, ldw, ldo: K, outRow: 0, yRow: 0 }, { dy: M * N * 4, w: weightBytes(format, N, K), dx: M * K * 4 }, { K, rows: M }, reps);
  return { kernel: k.name, shape: `dX (${N} -> ${K})`, format, M, N, K, ms, gflops: (2 * M * N * K) / (ms * 1e6) };
}
