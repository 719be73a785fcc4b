// PipelineCache.prepare: a kernel being created is waited for, never created twice; a failure is left to get().

import { describe, expect, it } from 'vitest';
import { PipelineCache } from '../../src/lib/gpu/pipelines.js';
import { embedKernel } from '../../src/lib/kernels/embed.js';
import { ropeKvKernel } from '../../src/lib/kernels/rope.js';

/** A device whose async pipeline creation takes a few milliseconds and can be told to fail. */
function fakeDevice(fail = new Set<string>()) {
  const calls: string[] = [];
  const device = {
    createShaderModule: ({ label }: { label: string }) => ({ label }),
    createComputePipelineAsync: async ({ label }: { label: string }) => {
      calls.push(label);
      await new Promise((r) => setTimeout(r, 5));
      if (fail.has(label)) throw new Error(`${label} failed to compile`);
      return { label };
    },
  };
  return { device: device as unknown as GPUDevice, calls };
}

describe('PipelineCache.prepare', () => {
  it('creates a kernel once when two calls ask for it at the same time, and has() says when it is made', async () => {
    const { device, calls } = fakeDevice();
    const cache = new PipelineCache(device);
    const a = embedKernel('f32');
    const b = ropeKvKernel();
    expect(cache.has(a)).toBe(false);
    const first = cache.prepare([a]);
    const second = cache.prepare([a, b]); // a is under way: waited for, not created again
    expect(cache.has(a)).toBe(false);
    await second;
    expect(cache.has(a) && cache.has(b)).toBe(true); // the second call returns only when a is made too
    await first;
    expect(calls.sort()).toEqual([a.name, b.name].sort());
    expect(cache.compiles).toBe(2);
    await cache.prepare([a, b]); // made: nothing to do
    expect(calls).toHaveLength(2);
  });

  it('a kernel that fails is not cached and is tried again by the next call', async () => {
    const k = embedKernel('f32');
    const { device, calls } = fakeDevice(new Set([k.name]));
    const cache = new PipelineCache(device);
    await expect(cache.prepare([k])).resolves.toBeUndefined();
    expect(cache.has(k)).toBe(false);
    await cache.prepare([k]);
    expect(calls).toEqual([k.name, k.name]);
    expect(cache.compiles).toBe(0);
  });
});
