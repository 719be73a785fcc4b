import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { UnsupportedModelError } from '../../src/lib/errors.js';
import { normalizeConfig, ropeInvFreq } from '../../src/lib/model/config.js';

const local = (model: string, file = 'config.json') =>
  JSON.parse(readFileSync(new URL(`../fixtures/${model}/${file}`, import.meta.url), 'utf8'));

// The configs of the four target models, as published (copied into tests/fixtures where the tests need them offline).
const configs: Record<string, Record<string, unknown>> = {
  smollm2: local('SmolLM2-135M-Instruct'),
  tinyllama: local('TinyLlama-1.1B-Chat-v1.0'),
  llama32: {
    architectures: ['LlamaForCausalLM'], hidden_size: 2048, intermediate_size: 8192, num_hidden_layers: 16, num_attention_heads: 32,
    num_key_value_heads: 8, head_dim: 64, vocab_size: 128256, rms_norm_eps: 1e-5, rope_theta: 500000, tie_word_embeddings: true,
    max_position_embeddings: 131072, bos_token_id: 128000, eos_token_id: [128001, 128008, 128009],
    rope_scaling: { factor: 32, high_freq_factor: 4, low_freq_factor: 1, original_max_position_embeddings: 8192, rope_type: 'llama3' },
  },
  qwen25: {
    architectures: ['Qwen2ForCausalLM'], hidden_size: 896, intermediate_size: 4864, num_hidden_layers: 24, num_attention_heads: 14,
    num_key_value_heads: 2, vocab_size: 151936, rms_norm_eps: 1e-6, rope_theta: 1000000, tie_word_embeddings: true,
    max_position_embeddings: 32768, sliding_window: 32768, use_sliding_window: false, bos_token_id: 151643, eos_token_id: 151645,
  },
};

describe('normalizeConfig', () => {
  it('normalizes SmolLM2-135M as published', () => {
    const c = normalizeConfig(configs.smollm2);
    expect(c).toMatchObject({ architecture: 'LlamaForCausalLM', hiddenSize: 576, numLayers: 30, numHeads: 9, numKvHeads: 3, headDim: 64, vocabSize: 49152, tieWordEmbeddings: true, qkvBias: false });
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('normalizes TinyLlama (untied, GQA 32/4)', () => {
    const c = normalizeConfig(configs.tinyllama);
    expect(c).toMatchObject({ tieWordEmbeddings: false, numHeads: 32, numKvHeads: 4, headDim: 64, vocabSize: 32000 });
  });

  it('reads the real Llama-3.2 and Qwen2.5 fixture configs', () => {
    expect(normalizeConfig(local('Llama-3.2-1B-Instruct'), local('Llama-3.2-1B-Instruct', 'generation_config.json')).ropeScaling?.type).toBe('llama3');
    expect(normalizeConfig(local('Qwen2.5-0.5B-Instruct')).qkvBias).toBe(true);
  });

  it('collects EOS ids from config and generation_config', () => {
    expect(normalizeConfig(configs.llama32, { eos_token_id: [128001, 128009] }).eosTokenIds).toEqual([128001, 128009, 128008]);
  });

  it('computes llama3 RoPE frequencies as transformers does', () => {
    const c = normalizeConfig(configs.llama32);
    const inv = ropeInvFreq(c);
    expect(inv.length).toBe(32);
    // High frequencies (short wavelengths) are unchanged, low ones divided by the factor, the middle band smoothed.
    expect(inv[0]).toBeCloseTo(1, 12);
    const base = (i: number) => 1 / 500000 ** ((2 * i) / 64);
    expect(inv[31]).toBeCloseTo(base(31) / 32, 15);
    const mid = inv.findIndex((_, i) => { const w = 2 * Math.PI / base(i); return w >= 2048 && w <= 8192; });
    const w = 2 * Math.PI / base(mid);
    const smooth = (8192 / w - 1) / (4 - 1);
    expect(inv[mid]).toBeCloseTo((1 - smooth) * base(mid) / 32 + smooth * base(mid), 15);
  });

  it.each([
    ['an unknown architecture', { ...configs.smollm2, architectures: ['GPT2LMHeadModel'] }, 'GPT2LMHeadModel'],
    ['a non-SiLU activation', { ...configs.smollm2, hidden_act: 'gelu' }, 'gelu'],
    ['an unknown rope scaling', { ...configs.smollm2, rope_scaling: { rope_type: 'yarn', factor: 4 } }, 'yarn'],
    ['heads not divisible by kv heads', { ...configs.smollm2, num_key_value_heads: 4 }, 'num_key_value_heads'],
    ['mlp biases', { ...configs.smollm2, mlp_bias: true }, 'mlp_bias'],
    ['a missing size', { ...configs.smollm2, hidden_size: undefined }, 'hidden_size'],
  ])('refuses %s, naming it and what is supported', (_n, cfg, word) => {
    expect(() => normalizeConfig(cfg)).toThrow(UnsupportedModelError);
    expect(() => normalizeConfig(cfg)).toThrow(new RegExp(`${word}[\\s\\S]*Supported: LlamaForCausalLM`));
  });
});

describe('the families after LLaMA, Mistral and Qwen2', () => {
  // Qwen/Qwen3-0.6B and HuggingFaceTB/SmolLM3-3B as their config.json files give them.
  const qwen3 = {
    architectures: ['Qwen3ForCausalLM'], attention_bias: false, head_dim: 128, hidden_act: 'silu', hidden_size: 1024, intermediate_size: 3072,
    max_position_embeddings: 40960, model_type: 'qwen3', num_attention_heads: 16, num_hidden_layers: 28, num_key_value_heads: 8,
    rms_norm_eps: 1e-6, rope_scaling: null, rope_theta: 1000000, sliding_window: null, use_sliding_window: false, tie_word_embeddings: true, vocab_size: 151936,
    bos_token_id: 151643, eos_token_id: 151645,
  };
  const smollm3 = {
    architectures: ['SmolLM3ForCausalLM'], hidden_size: 2048, intermediate_size: 11008, num_hidden_layers: 36, num_attention_heads: 16,
    num_key_value_heads: 4, vocab_size: 128256, rope_theta: 5000000, max_position_embeddings: 65536, tie_word_embeddings: true,
    use_sliding_window: false, attention_bias: false, mlp_bias: false,
  };

  it('Qwen3: head_dim 128 of 16 heads over a hidden size of 1024, q/k norms, no biases, all layers rotated', () => {
    const c = normalizeConfig(qwen3);
    expect(c).toMatchObject({ architecture: 'Qwen3ForCausalLM', headDim: 128, numHeads: 16, hiddenSize: 1024, qkNorm: true, qkvBias: false, ropeLayers: null });
    expect(normalizeConfig({ ...qwen3, attention_bias: true }).qkvBias).toBe(true);
  });

  it("SmolLM3: no_rope_layers as transformers reads it (use_rope = no_rope_layers[layer]), or every 4th layer without", () => {
    const dflt = normalizeConfig(smollm3).ropeLayers!;
    expect(dflt).toHaveLength(36);
    expect(dflt.flatMap((r, i) => (r ? [] : [i]))).toEqual([3, 7, 11, 15, 19, 23, 27, 31, 35]);
    expect(normalizeConfig({ ...smollm3, no_rope_layer_interval: 3, num_hidden_layers: 6 }).ropeLayers).toEqual([true, true, false, true, true, false]);
    expect(normalizeConfig({ ...smollm3, num_hidden_layers: 3, no_rope_layers: [1, 0, 1] }).ropeLayers).toEqual([true, false, true]);
    expect(() => normalizeConfig({ ...smollm3, num_hidden_layers: 3, no_rope_layers: [1, 0] })).toThrow(/no_rope_layers" must list 0 or 1 for each of the 3 layers/);
    expect(normalizeConfig(smollm3)).toMatchObject({ qkNorm: false, qkvBias: false, headDim: 128 });
  });

  it('the error for a family still unsupported names the supported ones', () => {
    expect(() => normalizeConfig({ ...qwen3, architectures: ['GPTNeoXForCausalLM'] })).toThrow(/GPTNeoXForCausalLM[\s\S]*Supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, SmolLM3ForCausalLM, Phi3ForCausalLM, Gemma2ForCausalLM, Gemma3ForCausalLM/);
  });

  // google/gemma-3-1b-it's config.json (its layer pattern as sliding_window_pattern), and gemma-3-270m-it's layer_types.
  const gemma3 = {
    architectures: ['Gemma3ForCausalLM'], attention_bias: false, attn_logit_softcapping: null, bos_token_id: 2, eos_token_id: [1, 106],
    final_logit_softcapping: null, head_dim: 256, hidden_activation: 'gelu_pytorch_tanh', hidden_size: 1152, intermediate_size: 6912,
    max_position_embeddings: 32768, model_type: 'gemma3_text', num_attention_heads: 4, num_hidden_layers: 26, num_key_value_heads: 1,
    query_pre_attn_scalar: 256, rms_norm_eps: 1e-6, rope_local_base_freq: 10000, rope_scaling: null, rope_theta: 1000000,
    sliding_window: 512, sliding_window_pattern: 6, vocab_size: 262144,
  };

  it("Gemma 3 and 2: transformers' Gemma3TextConfig and Gemma2Config facts (every 6th layer global, the local base, the query scale, sqrt(D) embeddings, tied)", () => {
    const c = normalizeConfig(gemma3);
    expect(c).toMatchObject({
      architecture: 'Gemma3ForCausalLM', headDim: 256, slidingWindow: 512, localRopeTheta: 10000, ropeTheta: 1e6, attentionScale: 1 / 16,
      hiddenAct: 'gelu_tanh', normOffset: 1, sandwichNorms: true, qkNorm: true, qkvBias: false, tieWordEmbeddings: true, eosTokenIds: [1, 106],
    });
    expect(c.embedScale).toBe(Math.fround(Math.sqrt(1152)));
    expect(c.slidingLayers!.flatMap((s, i) => (s ? [] : [i]))).toEqual([5, 11, 17, 23]);
    const types = ['sliding_attention', 'full_attention', 'sliding_attention'];
    expect(normalizeConfig({ ...gemma3, num_hidden_layers: 3, layer_types: types }).slidingLayers).toEqual([true, false, true]);
    expect(() => normalizeConfig({ ...gemma3, num_hidden_layers: 3, layer_types: ['sliding_attention'] })).toThrow(/layer_types" must name "sliding_attention" or "full_attention" for each of the 3 layers/);
    expect(normalizeConfig({ ...gemma3, query_pre_attn_scalar: 168 }).attentionScale).toBeCloseTo(1 / Math.sqrt(168), 12);
    expect(() => normalizeConfig({ ...gemma3, hidden_activation: 'silu' })).toThrow(/hidden_act "silu" is not supported for Gemma3ForCausalLM/);
    // google/gemma-2-2b-it: soft-caps 50 and 30, even layers sliding (Gemma2Config: (i + 1) % 2), no q/k norms, one RoPE base.
    const gemma2 = { ...gemma3, architectures: ['Gemma2ForCausalLM'], model_type: 'gemma2', hidden_size: 2304, intermediate_size: 9216, num_hidden_layers: 26,
      num_attention_heads: 8, num_key_value_heads: 4, attn_logit_softcapping: 50, final_logit_softcapping: 30, sliding_window: 4096, max_position_embeddings: 8192,
      rope_theta: 10000, vocab_size: 256000, sliding_window_pattern: undefined, rope_local_base_freq: undefined, hidden_act: 'gelu_pytorch_tanh' };
    const g2 = normalizeConfig(gemma2);
    expect(g2).toMatchObject({ attnSoftcap: 50, finalSoftcap: 30, qkNorm: false, localRopeTheta: null, slidingWindow: 4096, sandwichNorms: true, attentionScale: 1 / 16 });
    expect(g2.slidingLayers!.slice(0, 4)).toEqual([true, false, true, false]);
    expect(normalizeConfig({ ...gemma2, attn_logit_softcapping: null }).attnSoftcap).toBeNull();
    expect(c).toMatchObject({ attnSoftcap: null, finalSoftcap: null });
    // The others keep the LLaMA layer: 1 / sqrt(Dh), SiLU, gains as stored, embeddings unscaled.
    expect(normalizeConfig(qwen3)).toMatchObject({ attentionScale: 1 / Math.sqrt(128), hiddenAct: 'silu', normOffset: 0, embedScale: 1, sandwichNorms: false, slidingLayers: null, localRopeTheta: null });
  });
});

describe("Mistral's sliding window", () => {
  const mistral = {
    architectures: ['MistralForCausalLM'], hidden_size: 4096, intermediate_size: 14336, num_hidden_layers: 32, num_attention_heads: 32,
    num_key_value_heads: 8, vocab_size: 32000, max_position_embeddings: 32768, rope_theta: 10000, sliding_window: 4096, tie_word_embeddings: false,
  };
  it('is kept as a window over the whole context (no longer a cap on the context)', () => {
    expect(normalizeConfig(mistral)).toMatchObject({ maxContext: 32768, slidingWindow: 4096 });
    expect(normalizeConfig({ ...mistral, sliding_window: null })).toMatchObject({ maxContext: 32768, slidingWindow: null });
    // A window as long as the context changes nothing.
    expect(normalizeConfig({ ...mistral, sliding_window: 32768 }).slidingWindow).toBeNull();
  });
});

describe("Phi-3's LongRoPE", () => {
  // microsoft/Phi-3.5-mini-instruct's shape: 131072 positions over an original 4096, 48 short factors.
  const phi35 = {
    architectures: ['Phi3ForCausalLM'], hidden_size: 3072, intermediate_size: 8192, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 32,
    vocab_size: 32064, max_position_embeddings: 131072, original_max_position_embeddings: 4096, rope_theta: 10000, sliding_window: 262144,
    rope_scaling: { type: 'longrope', short_factor: Array.from({ length: 48 }, (_, i) => 1 + i / 100), long_factor: Array.from({ length: 48 }, (_, i) => 1 + i) },
  };
  it("takes the short factors within the original context, the long ones past it, and transformers' attention factor", () => {
    const c = normalizeConfig(phi35);
    expect(c.maxContext).toBe(131072);
    expect(c.ropeScaling).toMatchObject({ type: 'longrope', originalMaxPositionEmbeddings: 4096 });
    expect((c.ropeScaling as { attentionFactor: number }).attentionFactor).toBeCloseTo(Math.sqrt(1 + Math.log(32) / Math.log(4096)), 15);
    const inv = ropeInvFreq(c);
    expect(inv[10]).toBeCloseTo(1 / (1.1 * 10000 ** (20 / 96)), 15);
    // A table for 4096 positions keeps the short factors; one for 4097 or more takes the long ones (llama.cpp's choice by the context).
    expect(ropeInvFreq(c, 4096)[10]).toBe(inv[10]);
    expect(ropeInvFreq(c, 8192)[10]).toBeCloseTo(1 / (11 * 10000 ** (20 / 96)), 15);
    expect(() => normalizeConfig({ ...phi35, rope_scaling: { ...phi35.rope_scaling, long_factor: [1, 2] } })).toThrow(/2 frequency factors but the 96 rotary dims need 48/);
    expect(normalizeConfig({ ...phi35, rope_scaling: { ...phi35.rope_scaling, attention_factor: 1.5 } }).ropeScaling).toMatchObject({ attentionFactor: 1.5 });
    // Phi-4-mini's partial rotary: 0.75 of head_dim 128 rotates 96 dims (48 factors); one that gives an odd count is refused.
    const phi4 = { ...phi35, num_attention_heads: 24, num_key_value_heads: 8, partial_rotary_factor: 0.75, rope_scaling: { type: 'longrope', short_factor: Array(48).fill(1), long_factor: Array(48).fill(2) } };
    expect(normalizeConfig(phi4)).toMatchObject({ headDim: 128, rotaryDim: 96 });
    expect(() => normalizeConfig({ ...phi4, partial_rotary_factor: 0.7 })).toThrow(/partial_rotary_factor 0\.7 gives/);
  });
});
