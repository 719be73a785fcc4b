// config.json (Hugging Face transformers) normalized once into a frozen ModelConfig. Everything downstream reads
// this object only; an architecture or option the engine does not implement is refused here, by name.

import { UnsupportedModelError } from '../errors.js';
import { jsonKind } from '../model-files.js';

export const SUPPORTED_ARCHITECTURES = ['LlamaForCausalLM', 'MistralForCausalLM', 'Qwen2ForCausalLM', 'Qwen3ForCausalLM', 'SmolLM3ForCausalLM', 'Phi3ForCausalLM', 'Gemma2ForCausalLM', 'Gemma3ForCausalLM'] as const;
export type Architecture = (typeof SUPPORTED_ARCHITECTURES)[number];

export type RopeScaling =
  | { type: 'llama3'; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositionEmbeddings: number }
  | { type: 'linear'; factor: number }
  /** Per-pair divisors of the inverse frequencies (llama.cpp's rope_freqs tensor, as GGUF files of Llama 3.1+ carry it). */
  | { type: 'freq_factors'; factors: readonly number[] }
  /**
   * Phi-3's LongRoPE: the short factors divide the inverse frequencies within the original context, the long ones for
   * a context past it (chosen by the context the model runs with, as llama.cpp chooses them, so every key in a KV cache
   * is rotated alike); cos and sin are scaled by the attention factor.
   */
  | { type: 'longrope'; factors: readonly number[]; longFactors: readonly number[]; attentionFactor: number; originalMaxPositionEmbeddings: number };

export interface ModelConfig {
  readonly architecture: Architecture;
  readonly hiddenSize: number;        // D
  readonly intermediateSize: number;  // F
  readonly numLayers: number;         // L
  readonly numHeads: number;          // H
  readonly numKvHeads: number;        // Hkv (GQA: H % Hkv == 0)
  readonly headDim: number;           // Dh
  /** The dims of each head RoPE rotates, the first R (Dh but for a partial rotary: Phi-4-mini's 0.75 Dh). */
  readonly rotaryDim: number;         // R
  readonly vocabSize: number;         // V
  readonly rmsNormEps: number;
  readonly ropeTheta: number;
  readonly ropeScaling: RopeScaling | null;
  /** Longest context the engine will use: max_position_embeddings. */
  readonly maxContext: number;
  /** The sliding window W: a query at position p attends to keys p - W < j <= p; null: to all before it. */
  readonly slidingWindow: number | null;
  /** Per layer, whether the window slides there (Gemma's layer_types); null: on every layer (Mistral, Phi-3). */
  readonly slidingLayers: readonly boolean[] | null;
  /** Gemma 3: the RoPE base of the sliding layers (rope_local_base_freq, no scaling); the others use ropeTheta. */
  readonly localRopeTheta: number | null;
  /** Attention scores are q.k times this: 1 / sqrt(Dh), or Gemma's query_pre_attn_scalar^-1/2. */
  readonly attentionScale: number;
  /** The MLP's gate activation: SiLU (SwiGLU) or Gemma's gelu_pytorch_tanh (GeGLU). */
  readonly hiddenAct: 'silu' | 'gelu_tanh';
  /** Gemma: RMSNorm gains are stored as w and applied as (1 + w): 1 here (the engine adds it when loading), else 0. */
  readonly normOffset: 0 | 1;
  /** Embeddings are multiplied by this on lookup: Gemma's sqrt(hidden_size) rounded to f32, else 1 (never the lm_head). */
  readonly embedScale: number;
  /** Gemma: the attention and MLP outputs are RMS-normalized before their residual add (post_attention_layernorm, post_feedforward_layernorm). */
  readonly sandwichNorms: boolean;
  /** Gemma 2: attention scores become c tanh(s / c) (attn_logit_softcapping); null: as they are. */
  readonly attnSoftcap: number | null;
  /** Gemma 2: the logits become c tanh(z / c) (final_logit_softcapping); null: as they are. */
  readonly finalSoftcap: number | null;
  /**
   * The checkpoint is a Gemma 3 with a vision tower (Gemma3ForConditionalGeneration, the 4B and larger): its text
   * model's tensors sit under language_model.model. (or model.language_model.), the vision tower's are not read.
   */
  readonly visionTower: boolean;
  readonly tieWordEmbeddings: boolean;
  /** q/k/v projections carry biases (Qwen2; Qwen3 with attention_bias). */
  readonly qkvBias: boolean;
  /** Each head of q and of k is RMS-normalized (gains q_norm, k_norm of Dh) before RoPE (Qwen3). */
  readonly qkNorm: boolean;
  /** The checkpoint fuses q, k, v into qkv_proj and gate, up into gate_up_proj (Phi-3), as the engine keeps them. */
  readonly fusedProjections: boolean;
  /** Per layer: whether RoPE rotates q and k there (SmolLM3's no_rope_layers, 1 = RoPE, 0 = none); null: everywhere. */
  readonly ropeLayers: readonly boolean[] | null;
  readonly bosTokenId: number | null;
  readonly eosTokenIds: readonly number[];
}

type Json = Record<string, unknown>;

function unsupported(what: string): never {
  throw new UnsupportedModelError(
    `${what}. Supported: ${SUPPORTED_ARCHITECTURES.join(', ')} with SiLU MLPs, RoPE (default, linear, llama3 or longrope scaling), ` +
      `GQA, tied or untied embeddings, Qwen2 q/k/v biases, Qwen3 q/k norms, SmolLM3's layers without RoPE, Phi-3's fused projections, partial rotary and LongRoPE, ` +
      `and Gemma 2 and 3 (GeGLU, sandwich norms, local and global layers, soft-capping; Gemma3ForConditionalGeneration's text model). Pick a model of one of these families.`,
    { what },
  );
}

/**
 * Upper bounds on sizes, beyond every model of the supported families (Llama 3.1 405B: hidden 16384, intermediate
 * 53248, 126 layers, 128 heads, vocabulary 128256; Qwen2.5: vocabulary 152064). A config past them is not a model a
 * browser tab can run, and refusing it here keeps a crafted config from asking the GPU for petabytes.
 */
export const MAX_SIZES: Record<string, number> = {
  hidden_size: 32768, intermediate_size: 131072, num_hidden_layers: 256, num_attention_heads: 512,
  num_key_value_heads: 512, head_dim: 256, vocab_size: 1 << 20, max_position_embeddings: 1 << 24,
  original_max_position_embeddings: 1 << 24,
};

function int(cfg: Json, key: string, fallback?: number): number {
  const v = cfg[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) unsupported(`config.json field "${key}" is ${JSON.stringify(v)}, expected a positive integer`);
  const max = MAX_SIZES[key];
  if (max !== undefined && v > max) unsupported(`config.json field "${key}" is ${v}, over the ${max} of any supported model`);
  return v;
}

function ids(v: unknown): number[] {
  if (typeof v === 'number') return [v];
  if (Array.isArray(v)) return v.filter((x): x is number => typeof x === 'number');
  return [];
}

/** A positive finite number (eps, theta, factors), or the fallback when the key is absent. */
function positive(obj: Json, key: string, fallback: number, where = 'config.json field'): number {
  const v = obj[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) unsupported(`${where} "${key}" is ${JSON.stringify(v)}, expected a positive finite number`);
  return v;
}

/** Normalizes config.json (and generation_config.json's EOS ids, when given) into a frozen ModelConfig. */
export function normalizeConfig(cfg: unknown, generationConfig: unknown = {}): ModelConfig {
  if (typeof cfg !== 'object' || cfg === null || Array.isArray(cfg)) {
    throw new UnsupportedModelError(`config.json holds ${jsonKind(cfg)}, not an object: it is not a transformers model config. Use the config.json of the model's Hugging Face repo.`, { what: 'config.json' });
  }
  return normalize(cfg as Json, typeof generationConfig === 'object' && generationConfig !== null && !Array.isArray(generationConfig) ? generationConfig as Json : {});
}

/**
 * Gemma3TextConfig's defaults, which its configs rely on (the 4B's text_config names a few fields only): transformers
 * fills the rest from these.
 */
const GEMMA3_DEFAULTS: Json = {
  vocab_size: 262208, hidden_size: 2304, intermediate_size: 9216, num_hidden_layers: 26, num_attention_heads: 8, num_key_value_heads: 4,
  head_dim: 256, hidden_activation: 'gelu_pytorch_tanh', max_position_embeddings: 131072, rms_norm_eps: 1e-6, rope_theta: 1000000,
  query_pre_attn_scalar: 256, sliding_window: 4096, rope_local_base_freq: 10000, tie_word_embeddings: true, bos_token_id: 2, eos_token_id: 1,
};

function normalize(top: Json, generationConfig: Json): ModelConfig {
  const archs = top.architectures;
  const given = Array.isArray(archs) ? archs[0] : undefined;
  // Gemma 3 with a vision tower: its text model, from text_config over Gemma3TextConfig's defaults.
  const visionTower = given === 'Gemma3ForConditionalGeneration';
  if (visionTower && (typeof top.text_config !== 'object' || top.text_config === null)) unsupported('Gemma3ForConditionalGeneration without a text_config is not a Gemma 3 checkpoint');
  const arch = visionTower ? 'Gemma3ForCausalLM' : given;
  const cfg: Json = arch !== 'Gemma3ForCausalLM' ? top
    : visionTower ? { ...GEMMA3_DEFAULTS, eos_token_id: top.eos_token_id ?? 1, ...(top.text_config as Json), architectures: [arch] }
    : { ...GEMMA3_DEFAULTS, ...top };
  if (!SUPPORTED_ARCHITECTURES.includes(arch)) unsupported(`architecture ${JSON.stringify(arch ?? top.model_type)} is not supported`);
  const gemma3 = arch === 'Gemma3ForCausalLM';
  const gemma = gemma3 || arch === 'Gemma2ForCausalLM';
  // Gemma names it hidden_activation (gelu_pytorch_tanh); transformers' "gelu_pytorch_tanh" is GELU's tanh form.
  const act = gemma ? (cfg.hidden_activation ?? cfg.hidden_act ?? 'gelu_pytorch_tanh') : (cfg.hidden_act ?? 'silu');
  if (act !== (gemma ? 'gelu_pytorch_tanh' : 'silu')) unsupported(`hidden_act "${act}" is not supported for ${arch}`);
  if (cfg.mlp_bias === true) unsupported('mlp_bias=true is not supported');
  if (arch !== 'Qwen2ForCausalLM' && arch !== 'Qwen3ForCausalLM' && cfg.attention_bias === true) unsupported('attention_bias=true is not supported');
  if (cfg.use_sliding_window === true) unsupported('use_sliding_window=true is not supported');

  const hiddenSize = int(cfg, 'hidden_size');
  const numHeads = int(cfg, 'num_attention_heads');
  const numKvHeads = int(cfg, 'num_key_value_heads', numHeads);
  if (numHeads % numKvHeads !== 0) unsupported(`num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`);
  const headDim = cfg.head_dim == null ? hiddenSize / numHeads : int(cfg, 'head_dim');
  if (!Number.isInteger(headDim) || headDim % 2 !== 0) unsupported(`head dimension ${headDim} must be an even integer`);
  if (headDim > 256) unsupported(`head dimension ${headDim} is over the engine's limit of 256`);

  const maxPos = int(cfg, 'max_position_embeddings', 2048);
  const scaling = parseRopeScaling(cfg.rope_scaling, cfg, maxPos);
  // Mistral and Phi-3 slide a window over every layer, Gemma over its "sliding_attention" layers (transformers'
  // sliding-window mask: keys p - W < j <= p).
  const window = (arch === 'MistralForCausalLM' || arch === 'Phi3ForCausalLM' || gemma) && cfg.sliding_window != null ? int(cfg, 'sliding_window') : null;
  const layers = int(cfg, 'num_hidden_layers');
  // Phi-3's partial rotary (transformers: rotary_ndims = int(head_dim * partial_rotary_factor)), an even count.
  const prf = arch === 'Phi3ForCausalLM' && cfg.partial_rotary_factor != null ? positive(cfg, 'partial_rotary_factor', 1) : 1;
  const rotaryDim = Math.floor(headDim * prf);
  if (prf > 1 || rotaryDim % 2 !== 0 || rotaryDim === 0) unsupported(`partial_rotary_factor ${prf} gives ${rotaryDim} rotary dims of ${headDim}; it must give an even count from 2 to head_dim`);
  const eos = [...new Set([...ids(generationConfig.eos_token_id), ...ids(cfg.eos_token_id)])];
  const bos = typeof cfg.bos_token_id === 'number' ? cfg.bos_token_id : null;

  return Object.freeze({
    architecture: arch as Architecture,
    hiddenSize,
    intermediateSize: int(cfg, 'intermediate_size'),
    numLayers: layers,
    numHeads,
    numKvHeads,
    headDim,
    rotaryDim,
    vocabSize: int(cfg, 'vocab_size'),
    rmsNormEps: positive(cfg, 'rms_norm_eps', 1e-6),
    ropeTheta: positive(cfg, 'rope_theta', 10000),
    ropeScaling: checkFactors(scaling, rotaryDim),
    maxContext: maxPos,
    slidingWindow: window !== null && window < maxPos ? window : null,
    slidingLayers: gemma ? gemmaLayerTypes(cfg, layers, gemma3 ? 6 : 2) : null,
    localRopeTheta: gemma3 ? positive(cfg, 'rope_local_base_freq', 10000) : null,
    attentionScale: 1 / Math.sqrt(gemma ? positive(cfg, 'query_pre_attn_scalar', headDim) : headDim),
    hiddenAct: gemma ? 'gelu_tanh' : 'silu',
    normOffset: gemma ? 1 : 0,
    embedScale: gemma ? Math.fround(Math.sqrt(hiddenSize)) : 1,
    sandwichNorms: gemma,
    attnSoftcap: gemma && cfg.attn_logit_softcapping != null ? positive(cfg, 'attn_logit_softcapping', 50) : null,
    finalSoftcap: gemma && cfg.final_logit_softcapping != null ? positive(cfg, 'final_logit_softcapping', 30) : null,
    visionTower,
    // Gemma's configs default to tied embeddings (its checkpoints have no lm_head); the others to untied.
    tieWordEmbeddings: gemma ? cfg.tie_word_embeddings !== false : cfg.tie_word_embeddings === true,
    qkvBias: arch === 'Qwen2ForCausalLM' || (arch === 'Qwen3ForCausalLM' && cfg.attention_bias === true),
    qkNorm: arch === 'Qwen3ForCausalLM' || gemma3,
    fusedProjections: arch === 'Phi3ForCausalLM',
    ropeLayers: arch === 'SmolLM3ForCausalLM' ? ropeLayers(cfg, layers) : null,
    bosTokenId: bos,
    eosTokenIds: Object.freeze(eos),
  });
}

/**
 * Gemma's sliding and global layers, as transformers' Gemma2Config and Gemma3TextConfig have them: `layer_types`
 * ("sliding_attention" or "full_attention" per layer), else every `sliding_window_pattern`-th layer global (Gemma 3's
 * default 6: layers 5, 11, ...; Gemma 2 alternates: layers 1, 3, ...).
 */
function gemmaLayerTypes(cfg: Json, layers: number, pattern0: number): readonly boolean[] {
  const list = cfg.layer_types;
  if (list == null) {
    const pattern = pattern0 === 2 ? 2 : int(cfg, 'sliding_window_pattern', pattern0);
    return Object.freeze(Array.from({ length: layers }, (_, i) => (i + 1) % pattern !== 0));
  }
  if (!Array.isArray(list) || list.length !== layers || !list.every((v) => v === 'sliding_attention' || v === 'full_attention')) {
    unsupported(`config.json field "layer_types" must name "sliding_attention" or "full_attention" for each of the ${layers} layers`);
  }
  return Object.freeze(list.map((v) => v === 'sliding_attention'));
}

/**
 * SmolLM3's layers with and without RoPE, as transformers' SmolLM3Config has them: `no_rope_layers` (per layer, 1 =
 * RoPE, 0 = none: the attention reads `use_rope = no_rope_layers[layer_idx]`), else every `no_rope_layer_interval`-th
 * layer without (default 4: layers 3, 7, 11, ...).
 */
function ropeLayers(cfg: Json, layers: number): readonly boolean[] {
  const list = cfg.no_rope_layers;
  if (list == null) {
    const interval = int(cfg, 'no_rope_layer_interval', 4);
    return Object.freeze(Array.from({ length: layers }, (_, i) => (i + 1) % interval !== 0));
  }
  if (!Array.isArray(list) || list.length !== layers || !list.every((v) => v === 0 || v === 1 || v === true || v === false)) {
    unsupported(`config.json field "no_rope_layers" must list 0 or 1 for each of the ${layers} layers`);
  }
  return Object.freeze(list.map((v) => v === 1 || v === true));
}

function checkFactors(s: RopeScaling | null, headDim: number): RopeScaling | null {
  const lists = s?.type === 'freq_factors' ? [s.factors] : s?.type === 'longrope' ? [s.factors, s.longFactors] : [];
  for (const f of lists) if (f.length !== headDim / 2) unsupported(`rope_scaling has ${f.length} frequency factors but the ${headDim} rotary dims need ${headDim / 2}`);
  return s;
}

function parseRopeScaling(rs: unknown, cfg: Json = {}, maxPos = 2048): RopeScaling | null {
  if (rs == null) return null;
  if (typeof rs !== 'object' || Array.isArray(rs)) unsupported(`rope_scaling ${JSON.stringify(rs)} is not an object`);
  const r = rs as Json;
  const type = r.rope_type ?? r.type;
  if (type === 'default') return null;
  const where = 'config.json rope_scaling';
  if (type === 'freq_factors') {
    const f = r.factors;
    if (!Array.isArray(f) || f.length === 0 || !f.every((x) => typeof x === 'number' && Number.isFinite(x) && x > 0)) unsupported(`${where} "factors" must be a list of positive numbers`);
    return { type: 'freq_factors', factors: Object.freeze([...(f as number[])]) };
  }
  if (type === 'longrope' || type === 'su') {
    // transformers' _compute_longrope_parameters: the original context from the config (or rope_scaling), the
    // attention factor given or sqrt(1 + ln(s) / ln(original)) with s = max_position_embeddings / original.
    const original = int(typeof cfg.original_max_position_embeddings === 'number' ? cfg : r, 'original_max_position_embeddings', maxPos);
    const list = (key: string): number[] => {
      const f = r[key];
      if (!Array.isArray(f) || f.length === 0 || !f.every((x) => typeof x === 'number' && Number.isFinite(x) && x > 0)) unsupported(`${where} "${key}" must be a list of positive numbers`);
      return f as number[];
    };
    const short = list('short_factor');
    const long = list('long_factor');
    const scale = maxPos / original;
    const attentionFactor = r.attention_factor == null ? (scale <= 1 ? 1 : Math.sqrt(1 + Math.log(scale) / Math.log(original))) : positive(r, 'attention_factor', 1, where);
    return { type: 'longrope', factors: Object.freeze([...short]), longFactors: Object.freeze([...long]), attentionFactor, originalMaxPositionEmbeddings: original };
  }
  // transformers' _validate_*_rope_parameters: the factor stretches the context, so it is at least 1.
  const factor = positive(r, 'factor', 1, where);
  if (factor < 1) unsupported(`${where} "factor" is ${factor}; a RoPE scaling factor is at least 1`);
  if (type === 'linear') return { type: 'linear', factor };
  if (type === 'llama3') {
    const lowFreqFactor = positive(r, 'low_freq_factor', 1, where);
    const highFreqFactor = positive(r, 'high_freq_factor', 4, where);
    if (highFreqFactor <= lowFreqFactor) unsupported(`${where} high_freq_factor ${highFreqFactor} must be greater than low_freq_factor ${lowFreqFactor}`);
    return { type: 'llama3', factor, lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings: int(r, 'original_max_position_embeddings', 8192) };
  }
  return unsupported(`rope_scaling type ${JSON.stringify(type)} is not supported`);
}

/**
 * RoPE inverse frequencies, Dh/2 of them, as transformers computes them
 * (`_compute_default_rope_parameters`, `_compute_llama3_parameters`, linear scaling divides positions by factor).
 * `context`: the positions the table will serve; LongRoPE takes its long factors past the original context.
 */
export function ropeInvFreq(c: Pick<ModelConfig, 'rotaryDim' | 'ropeTheta' | 'ropeScaling'>, context = 0): Float64Array {
  const half = c.rotaryDim / 2;
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / c.ropeTheta ** ((2 * i) / c.rotaryDim);
  const s = c.ropeScaling;
  if (s?.type === 'linear') for (let i = 0; i < half; i++) inv[i] /= s.factor;
  if (s?.type === 'freq_factors') for (let i = 0; i < half; i++) inv[i] /= s.factors[i];
  if (s?.type === 'longrope') {
    const f = context > s.originalMaxPositionEmbeddings ? s.longFactors : s.factors;
    for (let i = 0; i < half; i++) inv[i] /= f[i];
  }
  if (s?.type === 'llama3') {
    const lowWavelen = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
    const highWavelen = s.originalMaxPositionEmbeddings / s.highFreqFactor;
    for (let i = 0; i < half; i++) {
      const wavelen = (2 * Math.PI) / inv[i];
      if (wavelen > lowWavelen) inv[i] = inv[i] / s.factor;
      else if (wavelen >= highWavelen) {
        const smooth = (s.originalMaxPositionEmbeddings / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
        inv[i] = (1 - smooth) * (inv[i] / s.factor) + smooth * inv[i];
      }
    }
  }
  return inv;
}

/**
 * RoPE's rotation for positions 0 .. positions - 1 (`invFreq`: ropeInvFreq): (cos, sin) of each pair i, row p at
 * p Dh/2 + i. The angle is what transformers computes (the f32 inverse frequency times the position, rounded to f32);
 * its cos and sin are taken here in float64 (times `scale`: LongRoPE's attention factor) and rounded once. The kernels read this table instead of calling WGSL's
 * sin and cos, whose precision the device chooses (SwiftShader's are off by 2e-4 at position 5 and 2e-3 at 32000),
 * so every GPU rotates alike.
 */
export function ropeTable(invFreq: ArrayLike<number>, positions: number, scale = 1): Float32Array {
  const half = invFreq.length;
  const inv = Float32Array.from(invFreq);
  const out = new Float32Array(positions * half * 2);
  for (let p = 0; p < positions; p++) {
    for (let i = 0; i < half; i++) {
      const angle = Math.fround(p * inv[i]);
      out[2 * (p * half + i)] = scale * Math.cos(angle);
      out[2 * (p * half + i) + 1] = scale * Math.sin(angle);
    }
  }
  return out;
}

/** What cos and sin are multiplied by: LongRoPE's attention factor, else 1. */
export function ropeScale(c: ModelConfig): number {
  return c.ropeScaling?.type === 'longrope' ? c.ropeScaling.attentionFactor : 1;
}

/** Parameter count, for display and benchmarks. */
export function parameterCount(c: ModelConfig): number {
  const { hiddenSize: d, intermediateSize: f, numHeads: h, numKvHeads: kv, headDim: dh, vocabSize: v, numLayers: l } = c;
  const attn = d * h * dh * 2 + d * kv * dh * 2 + (c.qkvBias ? h * dh + 2 * kv * dh : 0);
  const layer = attn + 3 * d * f + (c.sandwichNorms ? 4 : 2) * d + (c.qkNorm ? 2 * dh : 0);
  return l * layer + v * d * (c.tieWordEmbeddings ? 1 : 2) + d;
}
