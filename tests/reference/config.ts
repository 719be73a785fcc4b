// What the float64 references need of a model's config and of an adapter, declared here so that no reference imports
// from src (a bug in the engine's config code must not be shared by its reference). RoPE's inverse frequencies are
// written from transformers' modeling_rope_utils: the default 1 / theta^(2i / d), linear scaling (divide by the
// factor), llama3 (wavelengths above original_max / low_freq_factor divided by the factor, below original_max /
// high_freq_factor kept, smoothed between), the per-pair factors GGUF files carry (rope_freqs.weight) and LongRoPE's
// short factors (inv_freq = 1 / (factor_i base^(2i/d)); cos and sin times the attention factor).

export interface RefRopeScaling {
  type: 'linear' | 'llama3' | 'freq_factors' | 'longrope';
  /** LongRoPE: cos and sin are multiplied by it (transformers' attention_factor; `factors` are its short factors). */
  attentionFactor?: number;
  /** LongRoPE's long factors, for a context past originalMaxPositionEmbeddings. */
  longFactors?: ArrayLike<number>;
  factor?: number;
  lowFreqFactor?: number;
  highFreqFactor?: number;
  originalMaxPositionEmbeddings?: number;
  factors?: ArrayLike<number>;
}

/** The config fields the references read (the engine's ModelConfig has them under these names). */
export interface RefConfig {
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  /** The dims of each head RoPE rotates (Phi's partial_rotary_factor x head_dim); absent: all of them. */
  rotaryDim?: number;
  vocabSize: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling?: RefRopeScaling | null;
  tieWordEmbeddings: boolean;
  qkvBias: boolean;
  /** Qwen3: each q and k head RMS-normalized over head_dim (q_norm, k_norm gains) after the projection, before RoPE. */
  qkNorm?: boolean;
  /** SmolLM3: per layer, whether RoPE rotates q and k (its attention's use_rope = no_rope_layers[layer]). */
  ropeLayers?: readonly boolean[] | null;
  /** Mistral's sliding window W: a query at position t attends to keys t - W < j <= t. */
  slidingWindow?: number | null;
  /** Gemma: per layer, whether the window applies there (layer_types "sliding_attention"); absent: every layer. */
  slidingLayers?: readonly boolean[] | null;
  /** Gemma 3: the RoPE base of the sliding layers (rope_local_base_freq), without the global scaling. */
  localRopeTheta?: number | null;
  /** Gemma: query_pre_attn_scalar ** -0.5; absent: 1 / sqrt(head_dim). */
  attentionScale?: number;
  /**
   * Gemma (transformers' modeling_gemma3): norms multiply by (1 + weight); embeddings times sqrt(hidden_size) in the
   * weights' dtype, the tied lm_head unscaled; post_attention_layernorm on the attention output and
   * post_feedforward_layernorm on the MLP output before each residual add, pre_feedforward_layernorm before the MLP;
   * the MLP's gate through gelu_pytorch_tanh.
   */
  sandwichNorms?: boolean;
  /** Gemma 2 (modeling_gemma2): attention scores become c tanh(s / c) before the mask (attn_logit_softcapping). */
  attnSoftcap?: number | null;
  /** Gemma 2: the logits become c tanh(z / c) (final_logit_softcapping). */
  finalSoftcap?: number | null;
}

/**
 * RoPE's inverse frequency of each pair i < headDim / 2, in float64, for a model run with a context of `context`
 * positions: LongRoPE divides by its long factors when that is past the original context (llama.cpp's rope_long).
 */
export function ropeInvFreq(c: RefConfig, context = 0): Float64Array {
  const d = c.rotaryDim ?? c.headDim; // transformers: the rotary embedding's dim is the rotated part of the head
  const inv = Float64Array.from({ length: d / 2 }, (_, i) => 1 / c.ropeTheta ** ((2 * i) / d));
  const s = c.ropeScaling;
  if (!s) return inv;
  if (s.type === 'linear') return inv.map((f) => f / s.factor!);
  if (s.type === 'freq_factors') return inv.map((f, i) => f / s.factors![i]);
  if (s.type === 'longrope') return inv.map((f, i) => f / (context > s.originalMaxPositionEmbeddings! ? s.longFactors! : s.factors!)[i]);
  const low = s.originalMaxPositionEmbeddings! / s.lowFreqFactor!;
  const high = s.originalMaxPositionEmbeddings! / s.highFreqFactor!;
  return inv.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen > low) return f / s.factor!;
    if (wavelen < high) return f;
    const smooth = (s.originalMaxPositionEmbeddings! / wavelen - s.lowFreqFactor!) / (s.highFreqFactor! - s.lowFreqFactor!);
    return (1 - smooth) * (f / s.factor!) + smooth * f;
  });
}

/** The LoRA targets of a LLaMA-family layer, by their transformers names. */
export type RefModule = 'q_proj' | 'k_proj' | 'v_proj' | 'o_proj' | 'gate_proj' | 'up_proj' | 'down_proj';

/** An adapter as the references read it: per `${layer}.${module}`, A (r, in), B (out, r) and alpha / r. */
export interface RefAdapter {
  modules: Map<string, { rank: number; scaling: number; a: ArrayLike<number>; b: ArrayLike<number> }>;
}

export const moduleKey = (layer: number, module: RefModule): string => `${layer}.${module}`;

/** transformers' module path: model.layers.{l}.self_attn.{q,k,v,o}_proj or model.layers.{l}.mlp.{gate,up,down}_proj. */
export function fullModuleName(layer: number, module: RefModule): string {
  return `model.layers.${layer}.${['gate_proj', 'up_proj', 'down_proj'].includes(module) ? 'mlp' : 'self_attn'}.${module}`;
}

/** The tensors of a safetensors file as float64, for F32 files (8-byte little-endian header length, JSON header). */
export function readF32Safetensors(bytes: Uint8Array): Map<string, Float64Array> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(view.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, { dtype: string; data_offsets: [number, number] }>;
  const out = new Map<string, Float64Array>();
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    if (t.dtype !== 'F32') throw new Error(`reference reader: ${name} is ${t.dtype}, not F32`);
    const [a, b] = t.data_offsets;
    const raw = bytes.slice(8 + n + a, 8 + n + b);
    out.set(name, Float64Array.from(new Float32Array(raw.buffer, raw.byteOffset, (b - a) / 4)));
  }
  return out;
}
