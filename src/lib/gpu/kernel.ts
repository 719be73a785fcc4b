// Kernels: generated WGSL text -> compute pipeline, cached by the final text (so a stale shader can never be
// reused under a hand-made key). Each device has one cache (`Gpu.pipelines`).

import type { Gpu } from './device.js';

export class PipelineCache {
  readonly #cache = new Map<string, GPUComputePipeline>();
  /** Shader modules compiled so far (a cache hit compiles nothing). */
  compiles = 0;
  constructor(private readonly gpu: Gpu) {}

  get(label: string, code: string): GPUComputePipeline {
    let p = this.#cache.get(code);
    if (!p) {
      const module = this.gpu.device.createShaderModule({ label, code });
      p = this.gpu.device.createComputePipeline({ label, layout: 'auto', compute: { module, entryPoint: 'main' } });
      this.#cache.set(code, p);
      this.compiles++;
    }
    return p;
  }

  get size(): number {
    return this.#cache.size;
  }
}

/** A bind group whose binding i is `buffers[i]` (whole buffer, or {buffer, offset, size} for a slice). */
export function bindGroup(
  gpu: Gpu, label: string, pipeline: GPUComputePipeline,
  buffers: (GPUBuffer | GPUBufferBinding)[],
): GPUBindGroup {
  return gpu.device.createBindGroup({
    label,
    layout: pipeline.getBindGroupLayout(0),
    entries: buffers.map((b, i) => ({ binding: i, resource: 'buffer' in b ? b : { buffer: b } })),
  });
}

/** A uniform buffer of u32/f32 words written once (static shapes of a dispatch). */
export function uniforms(gpu: Gpu, label: string, words: (number | { f32: number })[]): GPUBuffer {
  const data = new ArrayBuffer(Math.max(16, Math.ceil((words.length * 4) / 16) * 16));
  const u = new Uint32Array(data);
  const f = new Float32Array(data);
  words.forEach((w, i) => {
    if (typeof w === 'number') u[i] = w;
    else f[i] = w.f32;
  });
  const buf = gpu.createBuffer(label, data.byteLength, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
  gpu.device.queue.writeBuffer(buf, 0, data);
  return buf;
}

/** Splits a workgroup count over x and y so neither passes the 65535 per-dimension limit. */
export function grid2d(count: number): [number, number, number] {
  if (count <= 65535) return [count, 1, 1];
  const y = Math.ceil(count / 65535);
  return [Math.ceil(count / y), y, 1];
}
