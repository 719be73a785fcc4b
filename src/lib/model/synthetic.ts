// Seeded random LLaMA-family checkpoints in the Hugging Face layout: the built-in demo model, benchmark models with
// real models' shapes, and test models with odd sizes. Scales keep activations O(1) so logits are well separated.

import { encodeFromF32, type DType } from '../formats/dtype.js';
import { writeSafetensors, type TensorToWrite } from '../formats/safetensors.js';
import { Rng } from '../util/rng.js';

export interface SyntheticSpec {
  architecture?: 'LlamaForCausalLM' | 'MistralForCausalLM' | 'Qwen2ForCausalLM' | 'Qwen3ForCausalLM' | 'SmolLM3ForCausalLM' | 'Phi3ForCausalLM' | 'Gemma2ForCausalLM' | 'Gemma3ForCausalLM';
  /** Gemma 3: config.json's layer_types ("sliding_attention" | "full_attention" per layer). */
  layerTypes?: string[];
  /** Gemma 3: query_pre_attn_scalar (attention scores times its -1/2 power) and rope_local_base_freq. */
  queryPreAttnScalar?: number;
  ropeLocalBaseFreq?: number;
  /** Gemma 2: attn_logit_softcapping and final_logit_softcapping. */
  attnSoftcap?: number;
  finalSoftcap?: number;
  /** SmolLM3: per layer, 1 = RoPE, 0 = none (config.json's no_rope_layers); absent: its default, every 4th layer without. */
  noRopeLayers?: number[];
  /** Mistral: config.json's sliding_window (each query sees the last W positions). */
  slidingWindow?: number;
  /** Phi-3: config.json's partial_rotary_factor (RoPE on that share of each head). */
  partialRotaryFactor?: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim?: number;
  vocabSize: number;
  tied: boolean;
  ropeTheta?: number;
  ropeScaling?: Record<string, unknown>;
  maxPositionEmbeddings?: number;
  dtype?: DType;
  seed: number;
  bosTokenId?: number;
  eosTokenId?: number | number[];
}

export interface SyntheticModel {
  config: Record<string, unknown>;
  /** f32 values of every tensor, by checkpoint name (what the file holds, before dtype rounding). */
  tensors: Map<string, { shape: number[]; data: Float32Array }>;
  safetensors: Uint8Array;
}

/** One tensor of a synthetic checkpoint: its values are mean + std N(0, 1), drawn in plan order from one seeded stream. */
interface PlannedTensor { name: string; shape: number[]; std: number; mean: number }

/** Every tensor of the model in the order its values are drawn (transformers' names, q/k/v and gate/up apart). */
function tensorPlan(spec: SyntheticSpec): PlannedTensor[] {
  const arch = spec.architecture ?? 'LlamaForCausalLM';
  const { hiddenSize: D, intermediateSize: F, numHeads: H, numKvHeads: Hkv, vocabSize: V } = spec;
  const Dh = spec.headDim ?? D / H;
  const out: PlannedTensor[] = [];
  const add = (name: string, shape: number[], std: number, mean = 0) => out.push({ name, shape, std, mean });
  const gemma3 = arch === 'Gemma3ForCausalLM';
  const gemma = gemma3 || arch === 'Gemma2ForCausalLM';
  // A norm gain: Gemma stores w of (1 + w), spread around 0; the others store the gain, around 1.
  const gain = (name: string, n: number, std = 0.1) => add(name, [n], gemma ? 0.3 : std, gemma ? 0 : 1);
  // Gemma scales its embeddings up by sqrt(D) on lookup: stored at 1 / sqrt(D), as its checkpoints have them small.
  add('model.embed_tokens.weight', [V, D], gemma ? 1 / Math.sqrt(D) : 1);
  for (let l = 0; l < spec.numLayers; l++) {
    const p = `model.layers.${l}.`;
    gain(`${p}input_layernorm.weight`, D);
    add(`${p}self_attn.q_proj.weight`, [H * Dh, D], 1 / Math.sqrt(D));
    add(`${p}self_attn.k_proj.weight`, [Hkv * Dh, D], 1 / Math.sqrt(D));
    add(`${p}self_attn.v_proj.weight`, [Hkv * Dh, D], 1 / Math.sqrt(D));
    if (arch === 'Qwen2ForCausalLM') {
      add(`${p}self_attn.q_proj.bias`, [H * Dh], 0.1);
      add(`${p}self_attn.k_proj.bias`, [Hkv * Dh], 0.1);
      add(`${p}self_attn.v_proj.bias`, [Hkv * Dh], 0.1);
    }
    if (arch === 'Qwen3ForCausalLM' || gemma3) {
      // Gains of the per-head q/k RMSNorms, spread so a wrong head or a missing norm shows.
      gain(`${p}self_attn.q_norm.weight`, Dh, 0.3);
      gain(`${p}self_attn.k_norm.weight`, Dh, 0.3);
    }
    add(`${p}self_attn.o_proj.weight`, [D, H * Dh], 0.5 / Math.sqrt(H * Dh));
    gain(`${p}post_attention_layernorm.weight`, D);
    if (gemma) {
      gain(`${p}pre_feedforward_layernorm.weight`, D);
      gain(`${p}post_feedforward_layernorm.weight`, D);
    }
    add(`${p}mlp.gate_proj.weight`, [F, D], 1 / Math.sqrt(D));
    add(`${p}mlp.up_proj.weight`, [F, D], 1 / Math.sqrt(D));
    add(`${p}mlp.down_proj.weight`, [D, F], 0.5 / Math.sqrt(F));
  }
  gain('model.norm.weight', D);
  if (!spec.tied) add('lm_head.weight', [V, D], 2 / Math.sqrt(D));
  return out;
}

/** config.json of the synthetic model. */
function syntheticConfig(spec: SyntheticSpec): Record<string, unknown> {
  const arch = spec.architecture ?? 'LlamaForCausalLM';
  const gemma3 = arch === 'Gemma3ForCausalLM';
  const gemma = gemma3 || arch === 'Gemma2ForCausalLM';
  const Dh = spec.headDim ?? spec.hiddenSize / spec.numHeads;
  const dtype = spec.dtype ?? 'F32';
  return {
    architectures: [arch],
    model_type: { Qwen2ForCausalLM: 'qwen2', Qwen3ForCausalLM: 'qwen3', SmolLM3ForCausalLM: 'smollm3', Phi3ForCausalLM: 'phi3', MistralForCausalLM: 'mistral', LlamaForCausalLM: 'llama', Gemma2ForCausalLM: 'gemma2', Gemma3ForCausalLM: 'gemma3_text' }[arch],
    ...(spec.layerTypes ? { layer_types: spec.layerTypes } : {}),
    ...(gemma ? { query_pre_attn_scalar: spec.queryPreAttnScalar ?? Dh, hidden_activation: 'gelu_pytorch_tanh', attn_logit_softcapping: spec.attnSoftcap ?? null, final_logit_softcapping: spec.finalSoftcap ?? null } : {}),
    ...(gemma3 ? { rope_local_base_freq: spec.ropeLocalBaseFreq ?? 10000 } : {}),
    ...(spec.noRopeLayers ? { no_rope_layers: spec.noRopeLayers } : {}),
    ...(spec.slidingWindow ? { sliding_window: spec.slidingWindow } : {}),
    ...(spec.partialRotaryFactor ? { partial_rotary_factor: spec.partialRotaryFactor } : {}),
    hidden_size: spec.hiddenSize,
    intermediate_size: spec.intermediateSize,
    num_hidden_layers: spec.numLayers,
    num_attention_heads: spec.numHeads,
    num_key_value_heads: spec.numKvHeads,
    head_dim: Dh,
    vocab_size: spec.vocabSize,
    rms_norm_eps: 1e-5,
    rope_theta: spec.ropeTheta ?? 10000,
    rope_scaling: spec.ropeScaling ?? null,
    max_position_embeddings: spec.maxPositionEmbeddings ?? 2048,
    tie_word_embeddings: spec.tied,
    hidden_act: gemma ? 'gelu_pytorch_tanh' : 'silu',
    bos_token_id: spec.bosTokenId ?? 1,
    eos_token_id: spec.eosTokenId ?? 2,
    torch_dtype: dtype === 'F32' ? 'float32' : dtype === 'F16' ? 'float16' : 'bfloat16',
  };
}

export function syntheticModel(spec: SyntheticSpec): SyntheticModel {
  const rng = new Rng(spec.seed);
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const t of tensorPlan(spec)) {
    const data = new Float32Array(t.shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = t.mean + t.std * rng.normal();
    tensors.set(t.name, { shape: t.shape, data });
  }
  const dtype = spec.dtype ?? 'F32';
  const list: TensorToWrite[] = [...(spec.architecture === 'Phi3ForCausalLM' ? fused(tensors, spec.numLayers) : tensors)].map(([name, t]) => ({ name, dtype, shape: t.shape, data: encodeFromF32(t.data, dtype) }));
  return { config: syntheticConfig(spec), tensors, safetensors: writeSafetensors(list, { format: 'pt' }) };
}

/**
 * The same model as a stream of model.safetensors bytes, each tensor's values drawn as its turn comes (the same values
 * as syntheticModel's): a 4B-parameter benchmark model never sits whole in memory, only one tensor at a time. Phi-3's
 * q|k|v and gate|up are written fused, as its checkpoints are (each drawn one after the other in the plan).
 */
export function streamedSyntheticModel(spec: SyntheticSpec): { config: Record<string, unknown>; size: number; open: () => AsyncIterable<Uint8Array> } {
  const dtype = spec.dtype ?? 'F32';
  const plan = tensorPlan(spec);
  const fuse = spec.architecture === 'Phi3ForCausalLM';
  // File tensors: runs of consecutive planned tensors (q, k, v or gate, up under Phi-3), in plan order.
  const file: { name: string; shape: number[]; parts: PlannedTensor[] }[] = [];
  for (const t of plan) {
    const into = fuse ? t.name.replace(/self_attn\.[qkv]_proj\.weight$/, 'self_attn.qkv_proj.weight').replace(/mlp\.(gate|up)_proj\.weight$/, 'mlp.gate_up_proj.weight') : t.name;
    const last = file.at(-1);
    if (last && last.name === into) { last.parts.push(t); last.shape = [last.shape[0] + t.shape[0], t.shape[1]]; } else file.push({ name: into, shape: [...t.shape], parts: [t] });
  }
  const bytesPer = dtype === 'F32' ? 4 : 2;
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const t of file) {
    const n = t.shape.reduce((a, b) => a * b, 1) * bytesPer;
    header[t.name] = { dtype, shape: t.shape, data_offsets: [offset, offset + n] };
    offset += n;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.byteLength / 8) * 8;
  const head = new Uint8Array(8 + padded).fill(0x20, 8); // a u64 length, then the JSON padded with spaces
  new DataView(head.buffer).setUint32(0, padded, true);
  head.set(json, 8);
  const CHUNK = 1 << 20; // values drawn and encoded a slice at a time
  return {
    config: syntheticConfig(spec),
    size: head.byteLength + offset,
    open: async function* () {
      yield head;
      const rng = new Rng(spec.seed);
      for (const t of file) {
        for (const part of t.parts) {
          const count = part.shape.reduce((a, b) => a * b, 1);
          for (let at = 0; at < count; at += CHUNK) {
            const values = new Float32Array(Math.min(CHUNK, count - at));
            for (let i = 0; i < values.length; i++) values[i] = part.mean + part.std * rng.normal();
            yield encodeFromF32(values, dtype);
          }
        }
      }
    },
  };
}

/**
 * The tensors as a Phi-3 checkpoint holds them: q, k, v rows stacked in self_attn.qkv_proj, gate then up in
 * mlp.gate_up_proj (transformers' Phi3Attention and Phi3MLP split them back in that order). `tensors` keeps them apart.
 */
function fused(tensors: Map<string, { shape: number[]; data: Float32Array }>, layers: number): Map<string, { shape: number[]; data: Float32Array }> {
  const out = new Map(tensors);
  const stack = (names: string[], into: string) => {
    const parts = names.map((n) => tensors.get(n)!);
    const data = new Float32Array(parts.reduce((t, p) => t + p.data.length, 0));
    parts.reduce((at, p) => { data.set(p.data, at); return at + p.data.length; }, 0);
    for (const n of names) out.delete(n);
    out.set(into, { shape: [parts.reduce((t, p) => t + p.shape[0], 0), parts[0].shape[1]], data });
  };
  for (let l = 0; l < layers; l++) {
    const p = `model.layers.${l}.`;
    stack(['q', 'k', 'v'].map((m) => `${p}self_attn.${m}_proj.weight`), `${p}self_attn.qkv_proj.weight`);
    stack(['gate', 'up'].map((m) => `${p}mlp.${m}_proj.weight`), `${p}mlp.gate_up_proj.weight`);
  }
  return out;
}
