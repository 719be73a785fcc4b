// RoPE at the positions of long chats, on whatever device runs the tests: the rope kernel's q and k against the
// float64 reference with transformers' f32 angles. Shared by the Node GPU tests (lavapipe) and the browser tests
// (SwiftShader, whose own sin and cos are off by 2e-4 to 2e-3: the kernel must not use them).

import type { Gpu } from '../../src/lib/gpu/device.js';
import { ropeKvKernel } from '../../src/lib/kernels/rope.js';
import { ropeTable } from '../../src/lib/model/config.js';
import { rope } from '../reference/llama.js';
import { assertClose } from './close.js';
import { Rng } from '../../src/lib/util/rng.js';
import { out, randn, runProgram, step } from './kernel.js';

/** Positions from the first to 32000, two heads of Qwen2's 64 (theta 1e6), one query head and one KV head per row. */
export async function checkRopeAtLongPositions(gpu: Gpu): Promise<void> {
  const positions = [0, 5, 100, 2047, 4000, 8191, 16000, 32000];
  const H = 2, Hkv = 1, Dh = 64, M = positions.length, C = 32001;
  const inv = Float32Array.from({ length: Dh / 2 }, (_, i) => 1 / 1e6 ** ((2 * i) / Dh));
  const qkv = randn(new Rng(11), M * (H + 2 * Hkv) * Dh);
  const info = new Uint32Array(4 * M);
  positions.forEach((p, m) => { info[4 * m + 1] = p; });
  const qExp = new Float64Array(M * H * Dh);
  const kExp = new Float64Array(Hkv * C * Dh);
  for (let m = 0; m < M; m++) {
    const r = Float64Array.from(qkv.subarray(m * (H + 2 * Hkv) * Dh, (m + 1) * (H + 2 * Hkv) * Dh));
    for (let h = 0; h < H + Hkv; h++) rope(r, h * Dh, Dh, positions[m], inv);
    qExp.set(r.subarray(0, H * Dh), m * H * Dh);
    kExp.set(r.subarray(H * Dh, (H + 1) * Dh), positions[m] * Dh);
  }
  const { q, kc } = await runProgram(gpu, ropeKvKernel(), { H, Hkv, Dh, C, R: Dh }, {
    S: step(M), qkv, rowInfo: info, rope: ropeTable(inv, C), q: out(new Float32Array(M * H * Dh)),
    kc: out(new Float32Array(kExp.length)), vc: out(new Float32Array(kExp.length)),
  }, { rows: M, H, Hkv, Dh });
  // Two f32 products and a difference per element: a few ulp of values near 1-3.
  assertClose(q, qExp, 1e-6, 1e-6, 'q at long positions');
  assertClose(kc, kExp, 1e-6, 1e-6, 'k at long positions');
}
