// Acquires a WebGPU device with the limits and features the engine needs, tracks every buffer it allocates
// (so benchmarks can report GPU memory against weight bytes) and turns device loss and OOM into typed errors.

import { DeviceLostError, GpuCommandError, GpuOutOfMemoryError, WebGPUUnavailableError } from '../errors.js';
import { PipelineCache } from './pipelines.js';

export interface GpuOptions {
  /** Keep float weights as f32 instead of f16 (exact weights at twice the memory; tests of the f32 path). */
  forceF32?: boolean;
  /** Cap on the storage binding size used for sharding (tests exercise the split path with tiny caps). */
  maxBinding?: number;
  /** Ask only for buffer sizes, leaving every other limit at WebGPU's defaults (the tests' portability check). */
  defaultLimits?: boolean;
  /** Leave out the subgroup kernels of CPU adapters (tests of the kernels every device runs). */
  noSubgroups?: boolean;
}

const CPU_ADAPTER = /llvmpipe|lavapipe|swiftshader|warp|microsoft basic render|software/i;

export class Gpu {
  readonly device: GPUDevice;
  /**
   * Float weights are stored as f16, unless f32 was forced. Kernels read them as u32 pairs and unpack2x16float
   * (kernels/weight-read.ts), so this needs no `shader-f16`: devices without it halve their weight memory too.
   */
  readonly f16: boolean;
  /** The adapter offers `shader-f16` (shown to people; no kernel needs it). */
  readonly hasF16Feature: boolean;
  readonly description: string;
  /**
   * The adapter is a CPU running Vulkan or D3D (llvmpipe/lavapipe, SwiftShader, WARP): kernels that pick a shape per
   * device take the one that suits CPUs (no cross-thread reductions), measured in the bench.
   */
  readonly cpu: boolean;
  /**
   * On a CPU adapter whose subgroups have one fixed size (lavapipe 8, SwiftShader 4): that size, and the device has
   * the `subgroups` feature; otherwise 0. The matmuls then read each input vector once per subgroup and broadcast it
   * lane to lane (kernels/matmul.ts), since every load on such a driver costs a loop over the lanes.
   */
  readonly subgroup: number;
  readonly maxBinding: number;
  readonly maxBufferSize: number;
  /** Bytes in live buffers created through `createBuffer` (of this scope). */
  allocatedBytes = 0;
  /**
   * The device's one pipeline cache: inference, every training length bucket, every model loaded on it and the tests
   * share it, so a shader text is compiled once per device (on software Vulkan a first compile costs seconds).
   */
  readonly pipelines: PipelineCache;
  /**
   * WebGPU errors no error scope caught (a refused copy, a bad bind group): such a command does nothing, silently, so
   * they are kept here, logged once, and the tests require none.
   */
  readonly uncapturedErrors: string[];
  /** The device's owner, for a scope (`scope()`); null for the owner itself. */
  readonly #root: Gpu | null;
  /** The live buffers of a scope, destroyed with it. */
  readonly #buffers = new Set<GPUBuffer>();
  #lost: DeviceLostError | null = null;
  #destroyed = false;

  private constructor(device: GPUDevice, f16: boolean, hasF16: boolean, description: string, subgroup: number, maxBinding?: number, root: Gpu | null = null) {
    this.device = device;
    this.subgroup = subgroup;
    this.f16 = f16;
    this.hasF16Feature = hasF16;
    this.description = description;
    this.cpu = CPU_ADAPTER.test(description);
    this.maxBinding = Math.min(device.limits.maxStorageBufferBindingSize, maxBinding ?? Infinity);
    this.maxBufferSize = device.limits.maxBufferSize;
    this.#root = root;
    this.pipelines = root ? root.pipelines : new PipelineCache(device);
    this.uncapturedErrors = root ? root.uncapturedErrors : [];
    if (root) return;
    device.addEventListener('uncapturederror', (e) => {
      const message = (e as GPUUncapturedErrorEvent).error.message;
      if (this.uncapturedErrors.length === 0) console.error(`WebGPU error outside an error scope: ${message}`);
      if (this.uncapturedErrors.length < 100) this.uncapturedErrors.push(message);
    });
    device.lost.then((info) => {
      if (this.#destroyed) return;
      this.#lost = new DeviceLostError(
        `The GPU device was lost (${info.reason}: ${info.message}). This happens after a driver reset or when GPU ` +
          `memory runs out: close other GPU-heavy tabs, pick a smaller model, then load the model again.`,
      );
    });
  }

  /** Set when the device is lost; every later call throws it. */
  get lost(): DeviceLostError | null {
    return this.#root ? this.#root.lost : this.#lost;
  }

  /**
   * A scope on the same device: its buffers are counted and destroyed together (`destroy()` frees them and leaves the
   * device), while pipelines are shared. A model loads into a scope of its own, so loading the next one beside it
   * compiles nothing already compiled, and a failed load frees only what it made.
   */
  scope(): Gpu {
    const root = this.#root ?? this;
    return new Gpu(this.device, this.f16, this.hasF16Feature, this.description, this.subgroup, this.maxBinding, root);
  }

  static async create(gpu: GPU | undefined, opts: GpuOptions = {}): Promise<Gpu> {
    if (!gpu) {
      throw new WebGPUUnavailableError(
        'WebGPU is not available here. Use a recent Chrome or Edge (113+), Safari 26+, or Firefox 141+ on Windows; ' +
          'on Linux start Chrome with --enable-unsafe-webgpu --enable-features=Vulkan.',
      );
    }
    const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
    if (!adapter) {
      throw new WebGPUUnavailableError(
        'WebGPU found no GPU adapter. Update the GPU driver, or enable WebGPU (chrome://flags/#enable-unsafe-webgpu); ' +
          'in Node install a Vulkan driver (see README, "Running without a GPU").',
      );
    }
    const hasF16 = adapter.features.has('shader-f16');
    const useF16 = !opts.forceF32;
    // Every kernel fits WebGPU's defaults (8 storage buffers, 16 KiB workgroup memory, 256 invocations); only
    // buffer sizes are raised, so large models load where the adapter allows.
    const want: Record<string, number> = {
      maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
      maxBufferSize: adapter.limits.maxBufferSize,
    };
    if (!opts.defaultLimits) want.maxComputeWorkgroupStorageSize = adapter.limits.maxComputeWorkgroupStorageSize;
    const info = adapter.info;
    const description = [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' ') || 'unknown GPU';
    // subgroupMinSize/MaxSize come with the `subgroups` feature; where they are absent no fixed size is known.
    // The broadcast matmul unrolls one step per lane and needs whole subgroups in its 64-thread workgroups: sizes 2-16.
    const subgroup = !opts.noSubgroups && CPU_ADAPTER.test(description) && adapter.features.has('subgroups') &&
      info.subgroupMinSize === info.subgroupMaxSize && [2, 4, 8, 16].includes(info.subgroupMinSize ?? 0) ? info.subgroupMinSize! : 0;
    const device = await adapter.requestDevice({
      requiredFeatures: subgroup ? ['subgroups' as GPUFeatureName] : [],
      requiredLimits: want,
    });
    return new Gpu(device, useF16, hasF16, description, subgroup, opts.maxBinding);
  }

  /**
   * Throws when the device is lost, or when a WebGPU error arrived that no error scope caught: a command that did
   * nothing (a kernel that failed to compile on this driver, a refused copy), so every result since is void.
   */
  check(): void {
    if (this.lost) throw this.lost;
    if (this.uncapturedErrors.length) {
      const first = this.uncapturedErrors[0].split('\n')[0];
      throw new GpuCommandError(
        `A GPU command failed on ${this.description} (${first}), so results would be wrong and the work stopped. ` +
          'Load the model again (on a new GPU device) or reload the page; if it happens again, report it with your GPU and browser, and try another browser meanwhile.',
        { errors: this.uncapturedErrors.length },
      );
    }
  }

  createBuffer(label: string, size: number, usage: GPUBufferUsageFlags): GPUBuffer {
    this.check();
    const padded = Math.max(16, Math.ceil(size / 16) * 16);
    if (padded > this.maxBufferSize) {
      throw new GpuOutOfMemoryError(`${label} needs ${padded} bytes, over this GPU's ${this.maxBufferSize}-byte buffer limit. Pick a smaller model or context.`);
    }
    const buf = this.device.createBuffer({ label, size: padded, usage });
    this.allocatedBytes += padded;
    this.#buffers.add(buf);
    return buf;
  }

  destroyBuffer(buf: GPUBuffer): void {
    if (this.#buffers.delete(buf)) this.allocatedBytes -= buf.size;
    buf.destroy();
  }

  /**
   * Runs `fn` (allocations, uploads) and turns a GPU out-of-memory or validation error into a typed error. An error
   * scope can fire after `fn` has returned: what it returned is then handed to `dispose` (its owner's destroy), so
   * nothing it allocated is dropped unfreed.
   */
  async guard<T>(what: string, fn: () => Promise<T> | T, dispose: (made: T) => void): Promise<T> {
    this.device.pushErrorScope('out-of-memory');
    this.device.pushErrorScope('validation');
    let made: { value: T } | null = null;
    try {
      made = { value: await fn() };
    } finally {
      const validation = await this.device.popErrorScope();
      const oom = await this.device.popErrorScope();
      if ((oom || validation) && made) dispose(made.value);
      if (oom) throw new GpuOutOfMemoryError(`Out of GPU memory while ${what}: ${oom.message}. Pick a smaller model or a shorter context.`);
      if (validation) throw new Error(`WebGPU validation error while ${what}: ${validation.message}`);
    }
    return made.value;
  }

  /** The device's owner destroys the device (every buffer on it); a scope destroys its own buffers. */
  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    if (this.#root) for (const b of [...this.#buffers]) this.destroyBuffer(b);
    else this.device.destroy();
  }
}
