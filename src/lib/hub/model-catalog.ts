// The small Hugging Face models LoRA Lab is built for, with what a person wants to know before a download: its size,
// the GPU memory it needs at the precision this device runs, its licence and whether the repo is gated. The shapes
// are those of each repo's config.json (checked against the real configs in tests/fixtures where we have them).

import { parameterCount, type Architecture, type ModelConfig } from '../model/config.js';
import type { WeightFormat } from '../quant/blocks.js';
import { choosePrecision, weightBytes, type Precision } from '../quant/precision.js';

export interface CatalogModel {
  repo: string;
  /** Shown in lists. */
  name: string;
  licence: string;
  /** The repo asks to accept a licence first: downloads need an access token. */
  gated: boolean;
  /** What it is good for, in a few words. */
  note: string;
  /** Parameters the download holds beyond the text model (a vision tower the engine does not read). */
  visionParameters?: number;
  shape: Pick<ModelConfig, 'hiddenSize' | 'intermediateSize' | 'numLayers' | 'numHeads' | 'numKvHeads' | 'headDim' | 'vocabSize' | 'tieWordEmbeddings' | 'qkvBias'> & {
    /** The family (transformers' class of its text model), when not LLaMA's. */
    architecture?: Architecture;
    qkNorm?: boolean; sandwichNorms?: boolean;
    /** Layers attending within a sliding window (their KV cache a ring of window + a call's rows). */
    sliding?: { layers: number; window: number };
  };
}

const llama = (d: number, f: number, l: number, h: number, kv: number, v: number, tied: boolean) => ({
  hiddenSize: d, intermediateSize: f, numLayers: l, numHeads: h, numKvHeads: kv, headDim: d / h, vocabSize: v, tieWordEmbeddings: tied, qkvBias: false,
});

export const CATALOG: readonly CatalogModel[] = [
  { repo: 'HuggingFaceTB/SmolLM2-135M-Instruct', name: 'SmolLM2 135M Instruct', licence: 'Apache-2.0', gated: false, note: 'the quickest to download and train', shape: llama(576, 1536, 30, 9, 3, 49152, true) },
  { repo: 'HuggingFaceTB/SmolLM2-360M-Instruct', name: 'SmolLM2 360M Instruct', licence: 'Apache-2.0', gated: false, note: 'small, and answers sensibly', shape: llama(960, 2560, 32, 15, 5, 49152, true) },
  { repo: 'HuggingFaceTB/SmolLM2-1.7B-Instruct', name: 'SmolLM2 1.7B Instruct', licence: 'Apache-2.0', gated: false, note: 'the strongest SmolLM2; needs a real GPU', shape: llama(2048, 8192, 24, 32, 32, 49152, true) },
  { repo: 'Qwen/Qwen2.5-0.5B-Instruct', name: 'Qwen2.5 0.5B Instruct', licence: 'Apache-2.0', gated: false, note: 'multilingual, Chinese included', shape: { ...llama(896, 4864, 24, 14, 2, 151936, true), qkvBias: true } },
  { repo: 'Qwen/Qwen2.5-1.5B-Instruct', name: 'Qwen2.5 1.5B Instruct', licence: 'Apache-2.0', gated: false, note: 'multilingual, a good LoRA base', shape: { ...llama(1536, 8960, 28, 12, 2, 151936, true), qkvBias: true } },
  // Qwen3: head_dim 128 whatever the hidden size, per-head q/k norms; one model thinks (<think>…</think>) or answers.
  { repo: 'Qwen/Qwen3-0.6B', name: 'Qwen3 0.6B', licence: 'Apache-2.0', gated: false, note: 'thinks before it answers; multilingual', shape: { ...llama(1024, 3072, 28, 16, 8, 151936, true), headDim: 128, qkNorm: true, architecture: 'Qwen3ForCausalLM' } },
  { repo: 'Qwen/Qwen3-1.7B', name: 'Qwen3 1.7B', licence: 'Apache-2.0', gated: false, note: 'a stronger Qwen3; needs a real GPU', shape: { ...llama(2048, 6144, 28, 16, 8, 151936, true), headDim: 128, qkNorm: true, architecture: 'Qwen3ForCausalLM' } },
  { repo: 'Qwen/Qwen3-4B', name: 'Qwen3 4B', licence: 'Apache-2.0', gated: false, note: 'the strongest Qwen3 for a tab; needs a real GPU (4-bit: about 2.3 GB)', shape: { ...llama(2560, 9728, 36, 32, 8, 151936, true), headDim: 128, qkNorm: true, architecture: 'Qwen3ForCausalLM' } },
  // SmolLM3: LLaMA's layout, every 4th layer without RoPE; thinks or answers at once (/think, /no_think).
  { repo: 'HuggingFaceTB/SmolLM3-3B', name: 'SmolLM3 3B', licence: 'Apache-2.0', gated: false, note: 'fully open 3B reasoner; needs a real GPU (4-bit: about 2 GB)', shape: { ...llama(2048, 11008, 36, 16, 4, 128256, true), headDim: 128, architecture: 'SmolLM3ForCausalLM' } },
  // Phi-3: q|k|v and gate|up fused in its checkpoint, a sliding window of 2047 on every layer.
  { repo: 'microsoft/Phi-3-mini-4k-instruct', name: 'Phi-3 mini 4k Instruct', licence: 'MIT', gated: false, note: '3.8B, 4k context; needs a real GPU (4-bit: about 2.2 GB)', shape: { ...llama(3072, 8192, 32, 32, 32, 32064, false), sliding: { layers: 32, window: 2047 }, architecture: 'Phi3ForCausalLM' } },
  { repo: 'microsoft/Phi-3.5-mini-instruct', name: 'Phi-3.5 mini Instruct', licence: 'MIT', gated: false, note: 'multilingual 3.8B, 128k context (LongRoPE); needs a real GPU', shape: { ...llama(3072, 8192, 32, 32, 32, 32064, false), architecture: 'Phi3ForCausalLM' } },
  { repo: 'microsoft/Phi-4-mini-instruct', name: 'Phi-4 mini Instruct', licence: 'MIT', gated: false, note: '3.8B, RoPE on 3/4 of each head, 128k context; needs a real GPU', shape: { ...llama(3072, 8192, 32, 24, 8, 200064, true), headDim: 128, architecture: 'Phi3ForCausalLM' } },
  // Gemma 3 (text): GeGLU, four norms a layer, q/k norms, 5 sliding layers to each global one, a 262k vocabulary.
  { repo: 'google/gemma-3-270m-it', name: 'Gemma 3 270M Instruct', licence: 'Gemma', gated: true, note: 'tiny and quick to tune; accept the licence on huggingface.co first', shape: { ...llama(640, 2048, 18, 4, 1, 262144, true), headDim: 256, qkNorm: true, sandwichNorms: true, sliding: { layers: 15, window: 512 }, architecture: 'Gemma3ForCausalLM' } },
  { repo: 'google/gemma-3-1b-it', name: 'Gemma 3 1B Instruct', licence: 'Gemma', gated: true, note: 'multilingual, 32k context; accept the licence on huggingface.co first', shape: { ...llama(1152, 6912, 26, 4, 1, 262144, true), headDim: 256, qkNorm: true, sandwichNorms: true, sliding: { layers: 22, window: 512 }, architecture: 'Gemma3ForCausalLM' } },
  // Gemma 3 4B: the text model of a checkpoint with a vision tower (SigLIP, 27 layers of 1152, and its projector: 419,816,304 parameters by its vision_config), which is downloaded but not read.
  { repo: 'google/gemma-3-4b-it', name: 'Gemma 3 4B Instruct', licence: 'Gemma', gated: true, note: 'text only here; needs a real GPU (4-bit: about 2.6 GB); accept the licence first', visionParameters: 419_816_304, shape: { ...llama(2560, 10240, 34, 8, 4, 262208, true), headDim: 256, qkNorm: true, sandwichNorms: true, sliding: { layers: 29, window: 1024 }, architecture: 'Gemma3ForCausalLM' } },
  { repo: 'google/gemma-2-2b-it', name: 'Gemma 2 2B Instruct', licence: 'Gemma', gated: true, note: 'soft-capped logits, 8k context; needs a real GPU; accept the licence first', shape: { ...llama(2304, 9216, 26, 8, 4, 256000, true), headDim: 256, sandwichNorms: true, sliding: { layers: 13, window: 4096 }, architecture: 'Gemma2ForCausalLM' } },
  { repo: 'TinyLlama/TinyLlama-1.1B-Chat-v1.0', name: 'TinyLlama 1.1B Chat', licence: 'Apache-2.0', gated: false, note: 'the Llama-2 layout, 2k context', shape: llama(2048, 5632, 22, 32, 4, 32000, false) },
  { repo: 'meta-llama/Llama-3.2-3B-Instruct', name: 'Llama 3.2 3B Instruct', licence: 'Llama 3.2 Community', gated: true, note: 'needs a real GPU (4-bit: about 1.9 GB); accept the licence first', shape: llama(3072, 8192, 28, 24, 8, 128256, true) },
  { repo: 'meta-llama/Llama-3.2-1B-Instruct', name: 'Llama 3.2 1B Instruct', licence: 'Llama 3.2 Community', gated: true, note: 'accept the licence on huggingface.co first', shape: llama(2048, 8192, 16, 32, 8, 128256, true) },
];

export function catalogParameters(m: CatalogModel): number {
  return parameterCount(m.shape as ModelConfig);
}

/** The repos publish bf16 safetensors: two bytes a parameter (a vision tower's included). */
export function downloadBytes(m: CatalogModel): number {
  return (catalogParameters(m) + (m.visionParameters ?? 0)) * 2;
}

/**
 * GPU memory to run it here, about: the weights at `precision` (quant/precision.ts's rules: `auto` resolves as the
 * loader resolves it), the f32 KV cache for `slots` sequences of `context` tokens, and the logits. Training needs
 * more (activations).
 */
export function gpuBytes(m: CatalogModel, f16: boolean, precision: Precision = 'auto', context = 2048, slots = 4, rowsPerCall = 64): number {
  const s = m.shape;
  // A sliding layer's cache holds window + rowsPerCall - 1 positions (model/runner.ts kvRows), the others the context.
  const sliding = s.sliding ? s.sliding.layers * Math.min(context, s.sliding.window + rowsPerCall - 1) : 0;
  const rows = (s.numLayers - (s.sliding?.layers ?? 0)) * context + sliding;
  const kv = 2 * rows * slots * s.numKvHeads * s.headDim * 4;
  return weightBytes(s, resolvePrecision(m, f16, precision), f16) + kv + slots * s.vocabSize * 4;
}

/** The format `precision` means for this model on this device (f16 asked of a device without it: f32). */
export function resolvePrecision(m: CatalogModel, f16: boolean, precision: Precision): WeightFormat {
  return choosePrecision(precision === 'f16' && !f16 ? 'f32' : precision, m.shape, f16);
}
