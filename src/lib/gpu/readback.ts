// One-off reads of a GPU buffer (checkpoints, exports, tests). Not for the token path, which reuses its own staging
// buffer: this creates and destroys a staging buffer per call.

import type { Gpu } from './device.js';

export async function readBuffer(gpu: Gpu, buffer: GPUBuffer, bytes: number): Promise<ArrayBuffer> {
  const size = Math.max(4, Math.ceil(bytes / 4) * 4);
  const staging = gpu.device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const enc = gpu.device.createCommandEncoder();
  enc.copyBufferToBuffer(buffer, 0, staging, 0, size);
  gpu.device.queue.submit([enc.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const out = staging.getMappedRange().slice(0);
  staging.destroy();
  return out;
}

export async function readFloats(gpu: Gpu, buffer: GPUBuffer, count: number): Promise<Float32Array> {
  return new Float32Array(await readBuffer(gpu, buffer, count * 4), 0, count);
}
