// Runs one kernel program on given inputs and reads back the buffers marked `read`: the harness of the per-kernel
// tests. Uniforms are packed by name (gpu/program.ts), buffers bound by name and the grid taken from the kernel's own
// rule (given its sizes), exactly as the engine does.

import type { Gpu } from '../../src/lib/gpu/device.js';
import { bindingIndex, kernelCode, packParams, type Grid, type Kernel, type ParamValues, type Sizes } from '../../src/lib/gpu/program.js';

type Data = Float32Array | Uint32Array | Uint16Array;
export type BufferInput = Data | { data: Data; read: true } | { uniform: Uint32Array | Float32Array };

export async function runProgram(
  gpu: Gpu, k: Kernel, params: ParamValues, inputs: Record<string, BufferInput>, grid: Grid | Sizes,
): Promise<Record<string, Float32Array>> {
  const d = gpu.device;
  d.pushErrorScope('validation');
  const pipeline = gpu.pipelines.get(k.name, kernelCode(k));
  const make = (bytes: ArrayBuffer, usage: number) => {
    const padded = new Uint8Array(Math.max(16, Math.ceil(bytes.byteLength / 16) * 16));
    padded.set(new Uint8Array(bytes));
    const buf = d.createBuffer({ size: padded.byteLength, usage });
    d.queue.writeBuffer(buf, 0, padded);
    return buf;
  };
  const copy = (x: Data) => x.buffer.slice(x.byteOffset, x.byteOffset + x.byteLength) as ArrayBuffer;
  const STORAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
  const UNIFORM = GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST;
  const buffers = new Map<string, { buf: GPUBuffer; read: number | null }>();
  for (const [name, input] of Object.entries(inputs)) {
    if ('uniform' in input) buffers.set(name, { buf: make(copy(input.uniform), UNIFORM), read: null });
    else if ('read' in input) buffers.set(name, { buf: make(copy(input.data), STORAGE), read: input.data.length });
    else buffers.set(name, { buf: make(copy(input), STORAGE), read: null });
  }
  const paramsBuf = make(packParams(k, params), UNIFORM);
  const entries = [{ binding: 0, resource: { buffer: paramsBuf } }];
  for (const name of Object.keys(k.buffers)) {
    const b = buffers.get(name);
    if (!b) throw new Error(`test of ${k.name} gives no buffer "${name}"`);
    entries.push({ binding: bindingIndex(k, name), resource: { buffer: b.buf } });
  }
  const bg = d.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
  const enc = d.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bg);
  pass.dispatchWorkgroups(...(Array.isArray(grid) ? grid : k.grid(grid)));
  pass.end();
  const outs: { name: string; n: number; staging: GPUBuffer }[] = [];
  for (const [name, b] of buffers) {
    if (b.read === null) continue;
    const staging = d.createBuffer({ size: b.buf.size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    enc.copyBufferToBuffer(b.buf, 0, staging, 0, b.buf.size);
    outs.push({ name, n: b.read, staging });
  }
  d.queue.submit([enc.finish()]);
  const err = await d.popErrorScope();
  if (err) throw new Error(`kernel validation error: ${err.message}`);
  const result: Record<string, Float32Array> = {};
  for (const { name, n, staging } of outs) {
    await staging.mapAsync(GPUMapMode.READ);
    result[name] = new Float32Array(staging.getMappedRange().slice(0, n * 4));
    staging.destroy();
  }
  for (const b of buffers.values()) b.buf.destroy();
  paramsBuf.destroy();
  return result;
}

/** A buffer the test reads back after the dispatch. */
export const out = (data: Data): BufferInput => ({ data, read: true });

export function randn(rng: { normal(): number }, n: number, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => rng.normal() * scale);
}

/** Step uniform: rows, seqs, lastStride, lastOffset. */
export function step(rows: number, seqs = 1, lastStride = 1, lastOffset = 0): BufferInput {
  return { uniform: Uint32Array.of(rows, seqs, lastStride, lastOffset) };
}
