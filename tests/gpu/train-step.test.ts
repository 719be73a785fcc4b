// One LoRA training step on the GPU against the float64 reference (scalar autodiff through the whole model),
// and the reference against central finite differences.

import { describe, expect, it } from 'vitest';
import { syntheticAdapter } from '../../src/lib/lora/synthetic.js';
import { DEFAULT_TRAIN_CONFIG, type TrainConfig } from '../../src/lib/training/train-config.js';
import { MASKED, TrainStep } from '../../src/lib/training/step.js';
import { expectClose } from '../helpers/compare.js';
import { testGpu } from '../helpers/gpu.js';
import { tinyRunner } from '../helpers/models.js';
import { referenceAdamW, referenceTrainStep } from '../reference/train.js';
import type { SyntheticSpec } from '../../src/lib/model/synthetic.js';

const llama: SyntheticSpec = { hiddenSize: 12, intermediateSize: 20, numLayers: 2, numHeads: 2, numKvHeads: 1, headDim: 6, vocabSize: 29, tied: false, seed: 21 };
/** Qwen3: q/k norms before RoPE (their backward runs in the step), head_dim 8 with H Dh (16) unlike the hidden size. */
const qwen3: SyntheticSpec = { architecture: 'Qwen3ForCausalLM', hiddenSize: 12, intermediateSize: 20, numLayers: 2, numHeads: 2, numKvHeads: 1, headDim: 8, vocabSize: 29, tied: true, seed: 22 };
/** SmolLM3: the second layer attends without RoPE (the backward passes its q and k gradients unrotated). */
const smollm3: SyntheticSpec = { architecture: 'SmolLM3ForCausalLM', hiddenSize: 12, intermediateSize: 20, numLayers: 2, numHeads: 2, numKvHeads: 1, headDim: 6, vocabSize: 29, tied: false, noRopeLayers: [1, 0], seed: 23 };
/** Mistral with a sliding window of 3 over 5 positions: the attention backward stays inside the window. */
const mistral: SyntheticSpec = { architecture: 'MistralForCausalLM', hiddenSize: 12, intermediateSize: 20, numLayers: 2, numHeads: 2, numKvHeads: 1, headDim: 6, vocabSize: 29, tied: false, slidingWindow: 3, seed: 24 };
/** Phi-3: its fused checkpoint tensors load into the same matrices; a window of 4 over 5 positions. */
const phi3: SyntheticSpec = {
  architecture: 'Phi3ForCausalLM', hiddenSize: 12, intermediateSize: 20, numLayers: 2, numHeads: 2, numKvHeads: 2, headDim: 6, vocabSize: 29, tied: false, slidingWindow: 4, seed: 25,
  // LongRoPE: its short factors and attention factor (sqrt(1 + ln 8 / ln 64)) reach the rotation's backward too.
  maxPositionEmbeddings: 512, ropeScaling: { type: 'longrope', short_factor: [1, 1.4, 2.5], long_factor: [2, 4, 8], original_max_position_embeddings: 64 },
};
/** Phi-4-mini-style partial rotary: RoPE on the first 4 of each head's 8 dims (partial_rotary_factor 0.5). */
const phi3Partial: SyntheticSpec = { architecture: 'Phi3ForCausalLM', hiddenSize: 12, intermediateSize: 20, numLayers: 2, numHeads: 2, numKvHeads: 1, headDim: 8, vocabSize: 29, tied: true, partialRotaryFactor: 0.5, seed: 26 };
/** Gemma 3: sandwich norms, GeGLU, (1 + w) gains, scaled embeddings, q/k norms; a sliding layer (window 3, local base) then a global one. */
const gemma3: SyntheticSpec = {
  architecture: 'Gemma3ForCausalLM', hiddenSize: 12, intermediateSize: 20, numLayers: 2, numHeads: 2, numKvHeads: 1, headDim: 6, vocabSize: 29, tied: true, seed: 27,
  slidingWindow: 3, layerTypes: ['sliding_attention', 'full_attention'], queryPreAttnScalar: 8, ropeTheta: 1e6, ropeLocalBaseFreq: 100,
};
/** Gemma 2: attention scores and logits soft-capped (their tanh backward), a sliding layer then a global one. */
const gemma2: SyntheticSpec = {
  architecture: 'Gemma2ForCausalLM', hiddenSize: 12, intermediateSize: 20, numLayers: 2, numHeads: 2, numKvHeads: 1, headDim: 6, vocabSize: 29, tied: true, seed: 28,
  slidingWindow: 3, queryPreAttnScalar: 8, attnSoftcap: 1.5, finalSoftcap: 4,
};
const SPECS: [string, SyntheticSpec][] = [['llama', llama], ['qwen3', qwen3], ['smollm3', smollm3], ['mistral, sliding window 3', mistral], ['phi3', phi3], ['phi3, partial rotary', phi3Partial], ['gemma3', gemma3], ['gemma2', gemma2]];
const T = 5;
const tokens = [3, 7, 1, 22, 9, 4, 4, 15, 2, 28];
const labels = [7, 1, 22, -100, -100, -100, 15, 2, 28, 11];
const adapterConfig = { r: 3, lora_alpha: 6, target_modules: 'all-linear' };
const tc: TrainConfig = { ...DEFAULT_TRAIN_CONFIG, rank: 3, alpha: 6, targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'], weightDecay: 0.01, maxGradNorm: 0 };
const count = labels.filter((l) => l >= 0).length;
const maxAbs = (a: ArrayLike<number>) => Math.max(...Array.from(a, Math.abs));

describe.each(SPECS)('reference gradients (%s)', (_name, spec) => {
  it('match central finite differences', async () => {
    const { model, config } = await tinyRunner(await testGpu(), spec);
    const adapter = syntheticAdapter(config, { name: 'x', seed: 3, config: adapterConfig, bScale: 0.3 });
    const ref = referenceTrainStep(config, model.tensors, adapter, tokens, labels, T, 1 / count);
    const loss = () => referenceTrainStep(config, model.tensors, adapter, tokens, labels, T, 1 / count).lossSum / count;
    const h = 1e-5;
    let checked = 0;
    for (const key of ['0.q_proj', '1.down_proj', '0.up_proj', '1.v_proj']) {
      const p = adapter.modules.get(key)!;
      for (const [which, arr] of [['a', p.a], ['b', p.b]] as const) {
        for (const i of [0, Math.floor(arr.length / 2), arr.length - 1]) {
          // Perturb a float64 copy: swap in Float64Array so the step is not rounded to f32.
          const orig = arr;
          const wide = Float64Array.from(orig);
          (p as unknown as Record<string, Float64Array>)[which] = wide;
          wide[i] += h; const up = loss();
          wide[i] -= 2 * h; const down = loss();
          (p as unknown as Record<string, ArrayLike<number>>)[which] = orig;
          const fd = (up - down) / (2 * h);
          const g = ref.grads.get(key)![which][i];
          expect(Math.abs(fd - g)).toBeLessThanOrEqual(1e-6 + 1e-4 * Math.abs(g));
          checked++;
        }
      }
    }
    expect(checked).toBe(24);
  });
});

describe.each(SPECS)('GPU training step (%s)', (_name, spec) => {
  for (const dropout of [0, 0.3]) {
    it(`loss, every LoRA gradient and the AdamW update match the reference (dropout ${dropout})`, async () => {
      const gpu = await testGpu();
      const { model, config, runner } = await tinyRunner(gpu, spec);
      const adapter = syntheticAdapter(config, { name: 'trained', seed: 3, config: { ...adapterConfig, lora_dropout: dropout }, bScale: 0.3 });
      const ref = referenceTrainStep(config, model.tensors, adapter, tokens, labels, T, 1 / count, dropout, 77);
      const before = new Map([...adapter.modules].map(([k, p]) => [k, { a: Float64Array.from(p.a), b: Float64Array.from(p.b) }]));
      const step = new TrainStep(gpu, runner.model, adapter, { ...tc, dropout }, { batch: 2, seqLen: T, logitChunk: 3 });
      const batch = { tokens: Uint32Array.from(tokens), labels: Uint32Array.from(labels, (l) => (l < 0 ? MASKED : l)) };
      const r = await step.micro(batch, 1 / count, 77);
      expect(r.tokens).toBe(count);
      expect(r.lossSum).toBeCloseTo(ref.lossSum, 3);
      const grads = await step.gradients();
      expect(grads.size).toBe(adapter.modules.size);
      let scale = 0;
      for (const g of ref.grads.values()) scale = Math.max(scale, maxAbs(g.a), maxAbs(g.b));
      for (const [key, g] of ref.grads) {
        // measured at most 2.9e-6 x scale
        expectClose(grads.get(key)!.a, g.a, 2e-5 * scale, 1e-5, `dA ${key}`);
        expectClose(grads.get(key)!.b, g.b, 2e-5 * scale, 1e-5, `dB ${key}`);
      }
      // AdamW at step 1, lr 1e-2, weight decay 0.01, no clipping.
      const opt = { lr: 1e-2, beta1: tc.beta1, beta2: tc.beta2, eps: tc.eps, weightDecay: tc.weightDecay };
      await step.optimizerStep(1, opt.lr);
      const after = await step.syncAdapter();
      for (const [key, g] of ref.grads) {
        for (const which of ['a', 'b'] as const) {
          const p = Float64Array.from(before.get(key)![which]);
          referenceAdamW(p, g[which], new Float64Array(p.length), new Float64Array(p.length), 1, opt);
          expectClose(after.modules.get(key)![which], p, 1e-6, 1e-5, `${which} of ${key} after AdamW`); // measured 1.1e-7
        }
      }
      step.destroy();
    });
  }
});
