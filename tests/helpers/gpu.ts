// The Node WebGPU device the GPU tests share within one file (Dawn on lavapipe here; LORA_LAB_DRIVER picks another).

import { Gpu } from '../../src/lib/gpu/device.js';
import { createNodeGpu } from '../../src/lib/gpu/node.js';

const cache = new Map<string, Promise<Gpu>>();

/** A device storing float weights as f32 (`forceF32`) or f16. */
export function testGpu(opts: { f16: boolean; maxBinding?: number } = { f16: false }): Promise<Gpu> {
  const key = `${opts.f16 ? 'f16' : 'f32'}/${opts.maxBinding ?? ''}`;
  let g = cache.get(key);
  if (!g) {
    g = createNodeGpu({ forceF32: !opts.f16, maxBinding: opts.maxBinding });
    cache.set(key, g);
  }
  return g;
}

/** Every device testGpu made in this file, for the check that no WebGPU error went uncaught (gpu-setup.ts). */
export async function testGpus(): Promise<Gpu[]> {
  return Promise.all(cache.values());
}

/**
 * The device's fixed subgroup size, for the tests of the broadcast kernels of CPU adapters (`Gpu.subgroup`); a device
 * without one fails the test, saying where to run it.
 */
export function subgroupOf(gpu: Gpu): number {
  if (!gpu.subgroup) throw new Error('this device has no fixed-size subgroups: run the tests on lavapipe (scripts/setup-lavapipe.sh) or SwiftShader');
  return gpu.subgroup;
}
