// The whole GPU model against the float64 reference on tiny random configs.
// Tolerance 1e-5 x max|ref| on f32 weights (measured: at most 2.9e-7 x max|ref|, LORA_LAB_TOLERANCE_REPORT).

import { describe, expect, it } from 'vitest';
import { referenceForward } from '../reference/llama.js';
import { expectClose } from '../helpers/compare.js';
import { testGpu } from '../helpers/gpu.js';
import { TINY_CONFIGS, tinyRunner } from '../helpers/models.js';

const REL = 1e-5;

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

const prompt = [5, 17, 3, 88, 42, 9, 61, 23, 7, 77, 31, 2, 50, 12, 90, 33, 44, 18, 71, 26];

describe.each(Object.entries(TINY_CONFIGS))('%s', (_name, spec) => {
  it('prefill logits match the float64 reference within 1e-5 x max|ref|', async () => {
    const gpu = await testGpu();
    const { model, config, runner } = await tinyRunner(gpu, spec);
    const T = prompt.length;
    await runner.forward({ tokens: prompt, slots: prompt.map(() => 0), positions: prompt.map((_, i) => i), seqs: 1, lastStride: T, lastOffset: T - 1 });
    const gpuLogits = await runner.readLogits(1);
    const ref = referenceForward(config, model.tensors, prompt);
    const last = ref[T - 1];
    expectClose(gpuLogits, last, REL * maxAbs(last), 0, 'last-row logits');
  });

  it('token-by-token cached decode matches the reference at every position', async () => {
    const gpu = await testGpu();
    const { model, config, runner } = await tinyRunner(gpu, spec);
    const ref = referenceForward(config, model.tensors, prompt);
    for (let t = 0; t < prompt.length; t++) {
      const [c] = await runner.forward({ tokens: [prompt[t]], slots: [1], positions: [t], seqs: 1, lastStride: 1, lastOffset: 0 });
      const logits = await runner.readLogits(1);
      expectClose(logits, ref[t], REL * maxAbs(ref[t]), 0, `logits at position ${t}`);
      let best = 0;
      for (let v = 1; v < ref[t].length; v++) if (ref[t][v] > ref[t][best]) best = v;
      expect(c.ids[0]).toBe(best);
    }
  });
});
