// Dispatches. Pipelines come from the device's cache (gpu/pipelines.ts, one per kernel text, `Gpu.pipelines`). A DispatchBuilder
// resolves dispatches for one owner (a model runner, a training graph): the pipeline from the device's cache, the
// bind group by buffer name, the uniforms packed by name into a buffer it owns; all of it once per graph, never per
// step. `encode` replays a list of dispatches into a compute pass.

import type { Gpu } from './device.js';
import { GpuOutOfMemoryError } from '../errors.js';
import { bindingIndex, packParams, type Grid, type Kernel, type ParamValues, type Sizes } from './program.js';

export type { Grid };

export interface Dispatch {
  label: string;
  pipeline: GPUComputePipeline;
  bindGroup: GPUBindGroup;
  grid: Grid;
  /** The storage buffers the kernel may read (declared read or read_write): what the bench counts as bytes read. */
  reads: readonly GPUBuffer[];
}

export class DispatchBuilder {
  readonly #owned: GPUBuffer[] = [];
  constructor(private readonly gpu: Gpu) {}

  /** A uniform buffer with `values` packed by name for kernel `k`, owned by this builder. */
  params(k: Kernel, values: ParamValues, label = `${k.name}.params`): GPUBuffer {
    const data = packParams(k, values);
    const buf = this.gpu.createBuffer(label, data.byteLength, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
    this.gpu.device.queue.writeBuffer(buf, 0, data);
    this.#owned.push(buf);
    return buf;
  }

  /** A buffer this builder owns and frees (small per-graph state). */
  buffer(label: string, bytes: number, usage: number): GPUBuffer {
    const buf = this.gpu.createBuffer(label, bytes, usage);
    this.#owned.push(buf);
    return buf;
  }

  /**
   * Resolves one dispatch of `k`: `params` are packed into a new uniform buffer (or given as one, to share it), and
   * every declared buffer is bound by name; a missing or unknown name throws.
   */
  dispatch(k: Kernel, params: ParamValues | GPUBuffer, buffers: Record<string, GPUBuffer>, grid: Grid | Sizes, label = k.name): Dispatch {
    const pipeline = this.gpu.pipelines.program(k);
    const p = isBuffer(params) ? params : this.params(k, params, `${label}.params`);
    for (const name of Object.keys(buffers)) bindingIndex(k, name);
    // A buffer over the device's binding limit would fail in the driver, which says so on stdout and leaves the
    // dispatch void. (gpu.maxBinding, which may be set lower, is where weights are split into shards.)
    const limit = this.gpu.device.limits.maxStorageBufferBindingSize;
    for (const [name, b] of Object.entries(buffers)) {
      if (b.size > limit && k.buffers[name]?.access !== 'uniform') {
        throw new GpuOutOfMemoryError(`${label}: buffer ${name} (${b.label}) is ${b.size} bytes, over the ${limit} this GPU binds at once. Use a smaller batch, context or model.`, { buffer: b.label });
      }
    }
    const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: p } }];
    for (const name of Object.keys(k.buffers)) {
      const buffer = buffers[name];
      if (!buffer) throw new Error(`${label}: kernel ${k.name} needs buffer "${name}"`);
      entries.push({ binding: bindingIndex(k, name), resource: { buffer } });
    }
    const bindGroup = this.gpu.device.createBindGroup({ label, layout: pipeline.getBindGroupLayout(0), entries });
    const reads = Object.keys(k.buffers).filter((n) => k.buffers[n].access !== 'uniform').map((n) => buffers[n]);
    return { label, pipeline, bindGroup, grid: Array.isArray(grid) ? grid : k.grid(grid), reads };
  }

  /** Frees every buffer created here. */
  destroy(): void {
    for (const b of this.#owned) this.gpu.destroyBuffer(b);
    this.#owned.length = 0;
  }
}

const isBuffer = (x: unknown): x is GPUBuffer => typeof (x as GPUBuffer).mapAsync === 'function';

/**
 * Where work spends its time: each item encoded alone into a pass and submitted `reps` times, less an empty submit's
 * time, summed by `key`. Dispatch isolation, for adapters without timestamp queries; the items' inputs must already
 * be written (one warm-up submit each compiles and fills caches). Figures for the bench, never for tests.
 */
export async function profileEach<T>(gpu: Gpu, items: readonly T[], encodeOne: (pass: GPUComputePassEncoder, item: T) => void, key: (item: T) => string, reps = 3): Promise<Map<string, number>> {
  const q = gpu.device.queue;
  const submit = async (item: T | null): Promise<number> => {
    const enc = gpu.device.createCommandEncoder({ label: 'profile' });
    const pass = enc.beginComputePass();
    if (item !== null) encodeOne(pass, item);
    pass.end();
    const t0 = performance.now();
    q.submit([enc.finish()]);
    await q.onSubmittedWorkDone();
    return performance.now() - t0;
  };
  for (const item of items) await submit(item);
  let empty = 0;
  for (let i = 0; i < reps; i++) empty += (await submit(null)) / reps;
  const out = new Map<string, number>();
  for (const item of items) {
    let ms = 0;
    for (let i = 0; i < reps; i++) ms += Math.max(0, (await submit(item)) - empty) / reps;
    out.set(key(item), (out.get(key(item)) ?? 0) + ms);
  }
  gpu.check();
  return out;
}

/** A list of dispatches (a training step) profiled by kernel. */
export function profileDispatches(gpu: Gpu, list: readonly Dispatch[], reps = 3): Promise<Map<string, number>> {
  return profileEach(gpu, list, (pass, d) => encode(pass, [d]), (d) => d.pipeline.label, reps);
}

export function encode(pass: GPUComputePassEncoder, list: readonly Dispatch[]): void {
  for (const d of list) {
    pass.setPipeline(d.pipeline);
    pass.setBindGroup(0, d.bindGroup);
    pass.dispatchWorkgroups(d.grid[0], d.grid[1], d.grid[2]);
  }
}

