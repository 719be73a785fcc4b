// Runs one WGSL kernel on given inputs and reads back chosen buffers: the harness of the per-kernel tests.

import type { Gpu } from '../../src/lib/gpu/device.js';

export type Binding =
  | { uniform: (number | { f32: number })[] }
  | { data: Float32Array | Uint32Array | Uint16Array; read?: boolean };

export async function runKernel(gpu: Gpu, code: string, bindings: Binding[], grid: [number, number, number]): Promise<Float32Array[]> {
  const d = gpu.device;
  d.pushErrorScope('validation');
  const module = d.createShaderModule({ code });
  const pipeline = d.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  const buffers = bindings.map((b) => {
    let bytes: ArrayBuffer;
    let usage: number;
    if ('uniform' in b) {
      const buf = new ArrayBuffer(256); // larger than any Params struct; unset fields are 0
      const u = new Uint32Array(buf);
      const f = new Float32Array(buf);
      b.uniform.forEach((w, i) => { if (typeof w === 'number') u[i] = w; else f[i] = w.f32; });
      bytes = buf;
      usage = GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST;
    } else {
      const padded = new Uint8Array(Math.max(16, Math.ceil(b.data.byteLength / 16) * 16));
      padded.set(new Uint8Array(b.data.buffer, b.data.byteOffset, b.data.byteLength));
      bytes = padded.buffer;
      usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
    }
    const buf = d.createBuffer({ size: bytes.byteLength, usage });
    d.queue.writeBuffer(buf, 0, bytes);
    return buf;
  });
  const bg = d.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })) });
  const enc = d.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bg);
  pass.dispatchWorkgroups(...grid);
  pass.end();
  const outs: { i: number; staging: GPUBuffer }[] = [];
  bindings.forEach((b, i) => {
    if ('data' in b && b.read) {
      const staging = d.createBuffer({ size: buffers[i].size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
      enc.copyBufferToBuffer(buffers[i], 0, staging, 0, buffers[i].size);
      outs.push({ i, staging });
    }
  });
  d.queue.submit([enc.finish()]);
  const err = await d.popErrorScope();
  if (err) throw new Error(`kernel validation error: ${err.message}`);
  const result: Float32Array[] = [];
  for (const { i, staging } of outs) {
    await staging.mapAsync(GPUMapMode.READ);
    const n = (bindings[i] as { data: ArrayLike<number> }).data.length;
    result.push(new Float32Array(staging.getMappedRange().slice(0, n * 4)));
    staging.destroy();
  }
  buffers.forEach((b) => b.destroy());
  return result;
}

export function randn(rng: { normal(): number }, n: number, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => rng.normal() * scale);
}

/** Step uniform: rows, seqs, lastStride, lastOffset. */
export function step(rows: number, seqs = 1, lastStride = 1, lastOffset = 0) {
  return { uniform: [rows, seqs, lastStride, lastOffset] };
}
