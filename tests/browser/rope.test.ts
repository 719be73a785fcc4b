// RoPE in Chromium (SwiftShader WebGPU): its own sin and cos are off by 2e-4 at small angles and 2e-3 at position
// 32000, so the kernel reads a table of transformers' rotations made on the CPU; this checks it on that device.

import { expect, it } from 'vitest';
import { Gpu } from '../../src/lib/gpu/device.js';
import { checkRopeAtLongPositions } from '../helpers/rope-check.js';

it('rotates q and k by transformers\' f32 angles at positions up to 32000 on this browser\'s GPU', async () => {
  const gpu = await Gpu.create(navigator.gpu);
  try {
    expect(gpu.description).toMatch(/swiftshader/i);
    await checkRopeAtLongPositions(gpu);
    expect(gpu.uncapturedErrors).toEqual([]);
  } finally {
    gpu.destroy();
  }
});
