// Tiny synthetic models for the GPU tests: odd sizes (not multiples of 4/16/64), GQA, tied and untied
// embeddings, Qwen2 biases, Qwen3 q/k norms, SmolLM3 layers without RoPE, Phi-3, Gemma 3, llama3 RoPE scaling, and a vocabulary that spans several top-k chunks.

import type { Gpu } from '../../src/lib/gpu/device.js';
import { MemoryFiles } from '../../src/lib/model-files.js';
import { loadWeights } from '../../src/lib/model/load.js';
import { ModelRunner } from '../../src/lib/model/runner.js';
import { LoraBank } from '../../src/lib/lora/bank.js';
import { LoadedModel } from '../../src/lib/model/loaded.js';
import { syntheticModel, type SyntheticSpec } from '../../src/lib/model/synthetic.js';
import type { Precision } from '../../src/lib/quant/precision.js';

export const TINY_CONFIGS: Record<string, SyntheticSpec> = {
  llamaGqaUntied: { hiddenSize: 37, intermediateSize: 53, numLayers: 2, numHeads: 6, numKvHeads: 2, headDim: 6, vocabSize: 1500, tied: false, seed: 11 },
  qwen2BiasTied: { architecture: 'Qwen2ForCausalLM', hiddenSize: 45, intermediateSize: 70, numLayers: 2, numHeads: 5, numKvHeads: 1, headDim: 10, vocabSize: 131, tied: true, ropeTheta: 1e6, seed: 12 },
  // Qwen3: per-head q/k norms, no biases, an explicit head_dim with H Dh (48) unlike the hidden size (30).
  qwen3QkNorm: { architecture: 'Qwen3ForCausalLM', hiddenSize: 30, intermediateSize: 47, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 12, vocabSize: 113, tied: true, ropeTheta: 1e6, seed: 15 },
  // SmolLM3: its second and third layers attend without RoPE (no_rope_layers 1, 0, 0).
  smollm3NoRope: { architecture: 'SmolLM3ForCausalLM', hiddenSize: 32, intermediateSize: 45, numLayers: 3, numHeads: 4, numKvHeads: 2, headDim: 8, vocabSize: 127, tied: true, ropeTheta: 5e6, noRopeLayers: [1, 0, 0], seed: 16 },
  // Mistral with a sliding window of 4 positions: past the 5-token prompt, every query sees only its last 4.
  // Phi-3: q/k/v and gate/up fused in the checkpoint, a sliding window of 5.
  phi3Fused: { architecture: 'Phi3ForCausalLM', hiddenSize: 28, intermediateSize: 43, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 8, vocabSize: 117, tied: false, slidingWindow: 5, seed: 17 },
  // Phi-3.5-style LongRoPE within its original context (the runs here take 96 positions): short factors, cos and sin
  // times sqrt(1 + ln(4) / ln(128)).
  phi3LongRope: {
    architecture: 'Phi3ForCausalLM', hiddenSize: 24, intermediateSize: 37, numLayers: 2, numHeads: 2, numKvHeads: 1, headDim: 12, vocabSize: 109, tied: false, seed: 18,
    maxPositionEmbeddings: 512, ropeScaling: { type: 'longrope', short_factor: [1, 1.1, 1.3, 1.7, 2.2, 3.1], long_factor: [2, 3, 4, 6, 9, 12], original_max_position_embeddings: 128 },
  },
  // Phi-4-mini-style partial rotary: RoPE on the first 6 of each head's 8 dims (partial_rotary_factor 0.75).
  phi3PartialRotary: { architecture: 'Phi3ForCausalLM', hiddenSize: 24, intermediateSize: 41, numLayers: 2, numHeads: 3, numKvHeads: 1, headDim: 8, vocabSize: 103, tied: true, partialRotaryFactor: 0.75, seed: 19 },
  // Gemma 3: (1 + w) norms, sqrt(D) embeddings with a tied unscaled head, sandwich norms, GeGLU, q/k norms, attention
  // scaled by query_pre_attn_scalar (16, not head_dim 10), two sliding layers (window 4, local RoPE base 10^4) and a
  // global one (base 10^6 with Gemma-3-4B's linear scaling, which the local layers do not take).
  gemma3: {
    architecture: 'Gemma3ForCausalLM', hiddenSize: 30, intermediateSize: 43, numLayers: 3, numHeads: 4, numKvHeads: 2, headDim: 10, vocabSize: 119, tied: true, seed: 20,
    slidingWindow: 4, layerTypes: ['sliding_attention', 'full_attention', 'sliding_attention'], queryPreAttnScalar: 16, ropeTheta: 1e6, ropeLocalBaseFreq: 10000,
    ropeScaling: { rope_type: 'linear', factor: 8 },
  },
  // Gemma 2: as Gemma 3 without q/k norms, one RoPE base, its layers alternating sliding (0, 2) and global (1), the
  // attention scores and the logits soft-capped (at 2 and 9: low enough to bend these tiny models' values).
  gemma2: {
    architecture: 'Gemma2ForCausalLM', hiddenSize: 28, intermediateSize: 39, numLayers: 3, numHeads: 2, numKvHeads: 1, headDim: 12, vocabSize: 107, tied: true, seed: 21,
    slidingWindow: 4, queryPreAttnScalar: 20, attnSoftcap: 2, finalSoftcap: 9,
  },
  mistral: { architecture: 'MistralForCausalLM', hiddenSize: 26, intermediateSize: 41, numLayers: 2, numHeads: 2, numKvHeads: 1, headDim: 14, vocabSize: 101, tied: false, slidingWindow: 4, seed: 14 },
  llama3Scaling: {
    hiddenSize: 40, intermediateSize: 67, numLayers: 3, numHeads: 4, numKvHeads: 4, headDim: 10, vocabSize: 97, tied: true, seed: 13,
    ropeTheta: 500000, ropeScaling: { rope_type: 'llama3', factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 },
  },
};

export function modelFiles(spec: SyntheticSpec) {
  const m = syntheticModel(spec);
  const enc = new TextEncoder();
  const files = new MemoryFiles('synthetic', new Map([
    ['config.json', enc.encode(JSON.stringify(m.config))],
    ['model.safetensors', m.safetensors],
  ]));
  return { model: m, files };
}

export async function tinyRunner(gpu: Gpu, spec: SyntheticSpec, opts = { slots: 4, contextLength: 96, maxRows: 32 }, precision: Precision = 'auto') {
  const { model, files } = modelFiles(spec);
  const loaded = await loadWeights(gpu, files, undefined, undefined, undefined, precision);
  const runner = new ModelRunner(new LoadedModel(gpu, loaded.config, loaded.weights, new LoraBank(gpu, loaded.config)), opts);
  return { model, config: loaded.config, runner };
}
