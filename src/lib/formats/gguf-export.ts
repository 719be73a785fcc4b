// GGUF export, for llama.cpp, Ollama and LM Studio: a model folder in the transformers layout (a merged model, or any
// base the engine runs) as one GGUF file that runs with no side files, and a LoRA adapter as a GGUF LoRA file for
// llama.cpp's --lora. Names, metadata and the q/k row permutation follow llama.cpp's convert_hf_to_gguf.py and
// convert_lora_to_gguf.py; the per-tensor types of a Q4_K_M file follow llama-quantize (llama_tensor_get_type and
// its fallbacks for rows that are not whole 256-blocks). The reader (model/gguf.ts) reads every file written here.

import { InvalidArgumentError, UnsupportedModelError } from '../errors.js';
import { decodeToF32, isDType } from './dtype.js';
import { QUANT_BLOCKS, quantize } from './gguf-quantize.js';
import { GGML, type GgmlType } from './gguf-tensors.js';
import { ggufChunks, type GgufTensorData, type GgufValue } from './gguf-write.js';
import { readSafetensors } from './safetensors.js';
import { normalizeConfig, ropeInvFreq, type ModelConfig } from '../model/config.js';
import type { LoraAdapter } from '../lora/peft.js';
import { GGUF_GEMMA3, GGUF_GEMMA_27B_LAYERS, qkPermuted } from '../model/gguf.js';

export const GGUF_EXPORT_TYPES = ['f16', 'q8_0', 'q4_k_m'] as const;
export type GgufExportType = (typeof GGUF_EXPORT_TYPES)[number];

/** llama.cpp's llama_ftype of each export type (general.file_type). */
const FILE_TYPE: Record<GgufExportType, number> = { f16: 1, q8_0: 7, q4_k_m: 15 };

/** llama.cpp's architecture name: LLaMA and Mistral run as "llama", Qwen2 as "qwen2", Qwen3 as "qwen3", SmolLM3 as "smollm3". */
const ggufArch = (c: ModelConfig) => {
  // llama.cpp's smollm3 skips RoPE on every 4th layer, fixed (no GGUF key says otherwise): another pattern has no file.
  if (c.ropeLayers && c.ropeLayers.some((rotate, i) => rotate !== ((i + 1) % 4 !== 0))) {
    throw new UnsupportedModelError(`This SmolLM3 model skips RoPE on layers ${c.ropeLayers.flatMap((r, i) => (r ? [] : [i])).join(', ')}; llama.cpp's smollm3 skips it on every 4th layer (3, 7, ...) and nothing in a GGUF file can say otherwise, so it cannot be exported to GGUF.`);
  }
  if (c.sandwichNorms) checkGemma(c);
  return ({ Qwen2ForCausalLM: 'qwen2', Qwen3ForCausalLM: 'qwen3', SmolLM3ForCausalLM: 'smollm3', Phi3ForCausalLM: 'phi3', Gemma2ForCausalLM: 'gemma2', Gemma3ForCausalLM: 'gemma3' } as Record<string, string>)[c.architecture] ?? 'llama';
};

/** llama.cpp's gemma2 and gemma3 fix their layer pattern, local RoPE base and query scale (GGUF_GEMMA3): a model that differs has no file. */
function checkGemma(c: ModelConfig): void {
  const gemma3 = c.architecture === 'Gemma3ForCausalLM';
  const fail = (what: string) => { throw new UnsupportedModelError(`This Gemma ${gemma3 ? 3 : 2} model ${what}; llama.cpp's gemma${gemma3 ? 3 : 2} fixes it and nothing in a GGUF file can say otherwise, so it cannot be exported to GGUF.`); };
  const P = gemma3 ? GGUF_GEMMA3.slidingWindowPattern : 2;
  if (c.slidingLayers?.some((s, i) => s !== ((i + 1) % P !== 0))) fail(P === 2 ? 'does not alternate sliding and global layers' : `has global layers other than every ${P}th`);
  if (!gemma3 && !c.tieWordEmbeddings) fail('has an lm_head of its own; llama.cpp\'s gemma2 always reads the embedding as its output');
  if (gemma3 && c.localRopeTheta !== GGUF_GEMMA3.localRopeBase) fail(`rotates its sliding layers with base ${c.localRopeTheta}, not ${GGUF_GEMMA3.localRopeBase}`);
  const scale = 1 / Math.sqrt(c.numLayers === GGUF_GEMMA_27B_LAYERS[c.architecture] ? c.hiddenSize / c.numHeads : c.headDim);
  if (Math.abs(c.attentionScale - scale) > 1e-7 * scale) fail(`scales its queries by ${c.attentionScale}, not ${scale}`);
  if (c.ropeScaling && (!gemma3 || c.ropeScaling.type !== 'linear')) fail(`scales its RoPE by "${c.ropeScaling.type}", where llama.cpp's gemma3 reads linear scaling only (gemma2 none)`);
}
/** convert_hf_to_gguf permutes q and k rows of LLaMA-family models (its rotary pairs are interleaved); Qwen's not. */
const permutes = (c: ModelConfig) => qkPermuted(c.architecture);

/** llama.cpp's permute(): rows of each head of `dh` rows reordered so pairs (i, i + dh/2) become (2i, 2i + 1). */
export function permuteRows(src: Float32Array, rows: number, K: number, dh: number): Float32Array {
  const out = new Float32Array(src.length);
  const half = dh / 2;
  for (let h0 = 0; h0 < rows; h0 += dh) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) out.set(src.subarray((h0 + j * half + i) * K, (h0 + j * half + i + 1) * K), (h0 + 2 * i + j) * K);
    }
  }
  return out;
}

/** The GGUF name of a transformers tensor (the inverse of model/gguf.ts hfTensorName; `sandwich`: Gemma's norms), or null. */
export function ggufTensorName(name: string, sandwich = false): string | null {
  const fixed: Record<string, string> = { 'model.embed_tokens.weight': 'token_embd.weight', 'model.norm.weight': 'output_norm.weight', 'lm_head.weight': 'output.weight' };
  if (name in fixed) return fixed[name];
  const m = /^model\.layers\.(\d+)\.(\w+)\.(\w+)\.(weight|bias)$/.exec(name) ?? /^model\.layers\.(\d+)\.()(\w+)\.(weight|bias)$/.exec(name);
  if (!m) return null;
  const part: Record<string, string> = {
    input_layernorm: 'attn_norm', post_attention_layernorm: 'ffn_norm',
    q_proj: 'attn_q', k_proj: 'attn_k', v_proj: 'attn_v', o_proj: 'attn_output', gate_proj: 'ffn_gate', up_proj: 'ffn_up', down_proj: 'ffn_down',
    q_norm: 'attn_q_norm', k_norm: 'attn_k_norm',
    qkv_proj: 'attn_qkv', gate_up_proj: 'ffn_up', // Phi-3's fused projections, fused in llama.cpp's phi3 too
    ...(sandwich ? { post_attention_layernorm: 'post_attention_norm', pre_feedforward_layernorm: 'ffn_norm', post_feedforward_layernorm: 'post_ffw_norm' } : {}),
  };
  const p = part[m[3]];
  return p ? `blk.${m[1]}.${p}.${m[4]}` : null;
}

const useMoreBits = (i: number, n: number) => i < Math.floor(n / 8) || i >= Math.floor((7 * n) / 8) || (i - Math.floor(n / 8)) % 3 === 2;

/** Rows of this length fit whole blocks of `type`. */
function fits(type: GgmlType, K: number): boolean {
  return K % (QUANT_BLOCKS[type]?.elements ?? 1) === 0;
}

/**
 * The type of a 2-D weight in a file of `ftype`, as llama-quantize chooses it: Q4_K_M keeps Q4_K but gives the
 * output (or the tied embedding) Q6_K, and Q6_K to attn_v and ffn_down on the layers use_more_bits picks; a K-quant
 * whose rows are not whole 256-blocks falls back (Q4_K to Q5_0, Q6_K to Q8_0; the output to Q8_0), then to F16.
 */
export function tensorType(ftype: GgufExportType, name: string, K: number, layers: number, tied: boolean): GgmlType {
  if (ftype === 'f16') return GGML.F16;
  if (ftype === 'q8_0') return fits(GGML.Q8_0, K) ? GGML.Q8_0 : GGML.F16;
  const layer = Number(/^blk\.(\d+)\./.exec(name)?.[1] ?? -1);
  let t: GgmlType = GGML.Q4_K;
  if (name === 'output.weight' || (tied && name === 'token_embd.weight')) t = K % 256 !== 0 ? GGML.Q8_0 : GGML.Q6_K;
  else if (name.endsWith('attn_v.weight') && useMoreBits(layer, layers)) t = GGML.Q6_K;
  else if (name.endsWith('ffn_down.weight') && useMoreBits(layer, layers)) t = GGML.Q6_K;
  if (!fits(t, K)) t = t === GGML.Q4_K ? GGML.Q5_0 : t === GGML.Q6_K ? GGML.Q8_0 : t;
  return fits(t, K) ? t : GGML.F16;
}

function json(files: Map<string, Uint8Array>, name: string, required: boolean): Record<string, unknown> | null {
  const b = files.get(name);
  if (!b) {
    if (required) throw new InvalidArgumentError(`A GGUF export needs ${name} in the model folder.`);
    return null;
  }
  try {
    return JSON.parse(new TextDecoder().decode(b)) as Record<string, unknown>;
  } catch {
    throw new InvalidArgumentError(`${name} is not valid JSON, so the model cannot be exported.`);
  }
}

/** Known pre-tokenizers, by what the tokenizer.json's pre_tokenizer holds (the names model/gguf-tokenizer reads). */
function preTokenizerName(pre: unknown): string | null {
  const text = JSON.stringify(pre ?? null);
  if (text.includes('"Digits"') && text.includes('"individual_digits":true') && text.includes('"ByteLevel"')) return 'smollm';
  if (text.includes('\\\\p{N}{1,3}')) return 'llama-bpe';
  if (text.includes('"Split"') && text.includes('\\\\p{N}|')) return 'qwen2';
  if ((pre as { type?: string } | null)?.type === 'ByteLevel') return 'gpt2';
  return null;
}

interface TokenizerMeta { kv: [string, GgufValue][] }

/**
 * tokenizer.json (and tokenizer_config.json) as llama.cpp's tokenizer metadata: byte-level BPE as "gpt2" (tokens,
 * types, merges and the pre-tokenizer's name), SentencePiece-style BPE with byte fallback as "llama" (tokens, types,
 * and scores ranking each token by the merge that makes it, so a reader derives the same merges).
 */
function tokenizerMeta(files: Map<string, Uint8Array>, c: ModelConfig): TokenizerMeta {
  const tok = json(files, 'tokenizer.json', true)!;
  const tcfg = json(files, 'tokenizer_config.json', false) ?? {};
  const model = tok.model as { type?: string; vocab?: Record<string, number>; merges?: (string | [string, string])[]; byte_fallback?: boolean };
  if (model?.type !== 'BPE' || !model.vocab) throw new UnsupportedModelError(`Only BPE tokenizers are exported to GGUF; this one is ${String(model?.type)}.`);
  const added = (tok.added_tokens as { id: number; content: string; special: boolean }[] | undefined) ?? [];
  const tokens: string[] = new Array(c.vocabSize);
  for (const [t, i] of Object.entries(model.vocab)) if (i < c.vocabSize) tokens[i] = t;
  for (const a of added) if (a.id < c.vocabSize) tokens[a.id] = a.content;
  // Embedding rows past the vocabulary (padding) get placeholder tokens, as convert_hf_to_gguf writes them.
  for (let i = 0; i < tokens.length; i++) tokens[i] ??= `[PAD${i}]`;
  const special = new Map(added.map((a) => [a.id, a.special]));
  const merges = (model.merges ?? []).map((m) => (Array.isArray(m) ? m.join(' ') : m));
  const byteLevel = preTokenizerName(tok.pre_tokenizer) !== null || JSON.stringify(tok.decoder ?? null).includes('"ByteLevel"');
  const kv: [string, GgufValue][] = [];
  if (byteLevel && !model.byte_fallback) {
    const pre = preTokenizerName(tok.pre_tokenizer);
    if (!pre) throw new UnsupportedModelError('The tokenizer\'s pre-tokenizer is not one llama.cpp knows by name (gpt2, smollm, qwen2, llama-bpe), so a GGUF file could not tokenize text as the model does.');
    kv.push(['tokenizer.ggml.model', { type: 'str', value: 'gpt2' }], ['tokenizer.ggml.pre', { type: 'str', value: pre }]);
    kv.push(['tokenizer.ggml.tokens', { type: 'str[]', value: tokens }]);
    kv.push(['tokenizer.ggml.token_type', { type: 'i32[]', value: tokens.map((_, i) => (special.has(i) ? (special.get(i) ? 3 : 4) : 1)) }]);
    kv.push(['tokenizer.ggml.merges', { type: 'str[]', value: merges }]);
  } else {
    // SentencePiece BPE: llama.cpp merges by score; a token made by merge k scores -k (earlier merges first).
    const rank = new Map<string, number>();
    merges.forEach((m, k) => { const t = m.replace(' ', ''); if (!rank.has(t)) rank.set(t, k); });
    kv.push(['tokenizer.ggml.model', { type: 'str', value: 'llama' }], ['tokenizer.ggml.pre', { type: 'str', value: 'default' }]);
    // SentencePiece's dummy prefix: a space before the text, when the tokenizer adds one (Prepend or Metaspace).
    const prefix = /"Prepend"|"prepend_scheme":"(first|always)"|"add_prefix_space":true/.test(JSON.stringify([tok.normalizer, tok.pre_tokenizer]));
    kv.push(['tokenizer.ggml.add_space_prefix', { type: 'bool', value: prefix }]);
    kv.push(['tokenizer.ggml.tokens', { type: 'str[]', value: tokens }]);
    kv.push(['tokenizer.ggml.scores', { type: 'f32[]', value: tokens.map((t, i) => (special.has(i) ? 0 : -(rank.get(t) ?? -1) - 1)) }]);
    kv.push(['tokenizer.ggml.token_type', { type: 'i32[]', value: tokens.map((t, i) => (special.has(i) ? (t === '<unk>' ? 2 : special.get(i) ? 3 : 4) : /^<0x[0-9A-F]{2}>$/.test(t) ? 6 : 1)) }]);
  }
  const idOf = (v: unknown): number | null => {
    const s = typeof v === 'string' ? v : (v as { content?: string } | null)?.content;
    if (typeof s !== 'string') return null;
    const i = tokens.indexOf(s);
    return i >= 0 ? i : null;
  };
  const bos = idOf(tcfg.bos_token) ?? c.bosTokenId;
  const eos = idOf(tcfg.eos_token) ?? c.eosTokenIds[0] ?? null;
  const unk = idOf(tcfg.unk_token);
  const pad = idOf(tcfg.pad_token);
  if (bos !== null) kv.push(['tokenizer.ggml.bos_token_id', { type: 'u32', value: bos }]);
  if (eos !== null) kv.push(['tokenizer.ggml.eos_token_id', { type: 'u32', value: eos }]);
  if (unk !== null) kv.push(['tokenizer.ggml.unknown_token_id', { type: 'u32', value: unk }]);
  if (pad !== null) kv.push(['tokenizer.ggml.padding_token_id', { type: 'u32', value: pad }]);
  const addBos = typeof tcfg.add_bos_token === 'boolean' ? tcfg.add_bos_token : JSON.stringify(tok.post_processor ?? null).includes('SpecialToken');
  kv.push(['tokenizer.ggml.add_bos_token', { type: 'bool', value: addBos }], ['tokenizer.ggml.add_eos_token', { type: 'bool', value: tcfg.add_eos_token === true }]);
  const jinja = files.get('chat_template.jinja');
  const template = jinja ? new TextDecoder().decode(jinja) : typeof tcfg.chat_template === 'string' ? tcfg.chat_template : null;
  if (template) kv.push(['tokenizer.chat_template', { type: 'str', value: template }]);
  return { kv };
}

/**
 * A transformers model folder (config.json, model.safetensors, tokenizer.json, tokenizer_config.json) as a GGUF file
 * of `ftype`, as chunks. `name` is general.name.
 */
export function modelToGguf(files: Map<string, Uint8Array>, ftype: GgufExportType, name: string): Uint8Array[] {
  if (!GGUF_EXPORT_TYPES.includes(ftype)) throw new InvalidArgumentError(`GGUF type "${String(ftype)}" is not one of ${GGUF_EXPORT_TYPES.join(', ')}.`);
  const raw = json(files, 'config.json', true)!;
  const c = normalizeConfig(raw);
  const arch = ggufArch(c);
  // model.safetensors, or the shards of a larger model (model-00001-of-00002.safetensors, ...).
  const shards = [...files.keys()].filter((n) => n.endsWith('.safetensors')).sort();
  if (!shards.length) throw new InvalidArgumentError('A GGUF export needs the model\'s safetensors weights; this model has none (a GGUF model is GGUF already).');
  const data = new Map<string, Uint8Array>();
  const all = shards.flatMap((f) => {
    const r = readSafetensors(files.get(f)!, f);
    for (const [k, v] of r.data) data.set(k, v);
    return r.header.tensors;
  });
  const tensors: GgufTensorData[] = [];
  const order = (n: string) => (n === 'token_embd.weight' ? -1 : n === 'output_norm.weight' ? 1e9 : n === 'output.weight' ? 1e9 + 1 : Number(/^blk\.(\d+)/.exec(n)?.[1] ?? 1e9));
  const infos = all.map((t) => ({ t, gguf: ggufTensorName(t.name, c.sandwichNorms) }));
  const unknown = infos.find((x) => x.gguf === null);
  if (unknown) throw new UnsupportedModelError(`The weights hold ${unknown.t.name}, which has no place in a GGUF ${arch} model.`);
  infos.sort((a, b) => order(a.gguf!) - order(b.gguf!));
  for (const { t, gguf } of infos) {
    if (!isDType(t.dtype)) throw new UnsupportedModelError(`${t.name} is ${t.dtype}; a GGUF export reads F32, F16 or BF16 weights.`);
    let values = decodeToF32(data.get(t.name)!, t.dtype);
    const dims = [...t.shape].reverse(); // ne[0] first
    if (t.shape.length === 2 && permutes(c) && /attn_[qk]\.weight$/.test(gguf!)) values = permuteRows(values, t.shape[0], t.shape[1], c.headDim);
    if (t.shape.length === 2 && permutes(c) && /attn_[qk]\.bias$/.test(gguf!)) values = permuteRows(values, t.shape[0], 1, c.headDim);
    // Gemma's gains are stored as w of (1 + w); llama.cpp's converter writes 1 + w.
    if (c.normOffset && /norm\.weight$/.test(gguf!)) values = values.map((v) => v + c.normOffset);
    const type = t.shape.length === 2 ? tensorType(ftype, gguf!, t.shape[1], c.numLayers, c.tieWordEmbeddings) : GGML.F32;
    tensors.push({ name: gguf!, dims, type, data: type === GGML.F32 ? new Uint8Array(values.buffer, values.byteOffset, values.byteLength) : quantize(type, values) });
  }
  const meta: [string, GgufValue][] = [
    ['general.architecture', { type: 'str', value: arch }],
    ['general.type', { type: 'str', value: 'model' }],
    ['general.name', { type: 'str', value: name }],
    ['general.file_type', { type: 'u32', value: FILE_TYPE[ftype] }],
    ['general.quantization_version', { type: 'u32', value: 2 }],
    [`${arch}.context_length`, { type: 'u32', value: (raw.max_position_embeddings as number) ?? c.maxContext }],
    [`${arch}.embedding_length`, { type: 'u32', value: c.hiddenSize }],
    [`${arch}.feed_forward_length`, { type: 'u32', value: c.intermediateSize }],
    [`${arch}.block_count`, { type: 'u32', value: c.numLayers }],
    [`${arch}.attention.head_count`, { type: 'u32', value: c.numHeads }],
    [`${arch}.attention.head_count_kv`, { type: 'u32', value: c.numKvHeads }],
    [`${arch}.attention.key_length`, { type: 'u32', value: c.headDim }],
    [`${arch}.attention.value_length`, { type: 'u32', value: c.headDim }],
    [`${arch}.rope.dimension_count`, { type: 'u32', value: c.rotaryDim }],
    [`${arch}.rope.freq_base`, { type: 'f32', value: c.ropeTheta }],
    [`${arch}.attention.layer_norm_rms_epsilon`, { type: 'f32', value: c.rmsNormEps }],
    [`${arch}.vocab_size`, { type: 'u32', value: c.vocabSize }],
    // llama.cpp's phi3 slides this window over every layer (its llama architecture has no window: Mistral's is dropped).
    ...((arch === 'phi3' || arch === 'gemma2' || arch === 'gemma3') && c.slidingWindow !== null ? [[`${arch}.attention.sliding_window`, { type: 'u32', value: c.slidingWindow }] as [string, GgufValue]] : []),
    ...(c.attnSoftcap !== null ? [[`${arch}.attn_logit_softcapping`, { type: 'f32', value: c.attnSoftcap }] as [string, GgufValue]] : []),
    ...(c.finalSoftcap !== null ? [[`${arch}.final_logit_softcapping`, { type: 'f32', value: c.finalSoftcap }] as [string, GgufValue]] : []),
    ...(arch === 'gemma3' && c.ropeScaling?.type === 'linear' ? [
      ['gemma3.rope.scaling.type', { type: 'str', value: 'linear' }], ['gemma3.rope.scaling.factor', { type: 'f32', value: c.ropeScaling.factor }],
    ] as [string, GgufValue][] : []),
    ...tokenizerMeta(files, c).kv,
  ];
  const f32 = (name: string, values: readonly number[]): GgufTensorData => {
    const v = Float32Array.from(values);
    return { name, dims: [v.length], type: GGML.F32, data: new Uint8Array(v.buffer) };
  };
  const s = c.ropeScaling;
  if (s?.type === 'longrope') {
    // Phi-3's LongRoPE as convert_hf_to_gguf writes it: both factor lists first, the original context, the attention factor.
    if (arch !== 'phi3') throw new UnsupportedModelError(`A ${c.architecture} with LongRoPE cannot be exported to GGUF: llama.cpp reads LongRoPE factors for phi3 models only.`);
    meta.push(['phi3.rope.scaling.attn_factor', { type: 'f32', value: s.attentionFactor }], ['phi3.rope.scaling.original_context_length', { type: 'u32', value: s.originalMaxPositionEmbeddings }]);
    tensors.unshift(f32('rope_factors_long.weight', s.longFactors), f32('rope_factors_short.weight', s.factors));
  } else if (s && !c.sandwichNorms) {
    // RoPE scaling as llama.cpp's rope_freqs tensor, written first: per pair, the base inverse frequency over the scaled one.
    if (arch !== 'llama') throw new UnsupportedModelError(`A ${c.architecture} with RoPE scaling cannot be exported to GGUF: llama.cpp reads frequency factors for LLaMA models only.`);
    const base = ropeInvFreq({ ...c, ropeScaling: null });
    const scaled = ropeInvFreq(c);
    tensors.unshift(f32('rope_freqs.weight', Array.from(base, (b, i) => b / scaled[i])));
  }
  return ggufChunks(meta, tensors);
}

/**
 * A LoRA adapter as llama.cpp's convert_lora_to_gguf.py writes it (general.type "adapter", adapter.type "lora",
 * adapter.lora.alpha; blk.N.<tensor>.weight.lora_a with ne [in, r], lora_b with ne [r, out], q/k rows of B permuted
 * for LLaMA-family bases), F32 or F16. llama.cpp scales each pair by alpha / its rank: other scalings (rsLoRA,
 * alpha patterns) are folded into B so every module keeps its own.
 */
export function adapterToGguf(adapter: LoraAdapter, base: ModelConfig, type: 'f32' | 'f16' = 'f32'): Uint8Array[] {
  const arch = ggufArch(base);
  const alpha = adapter.config.loraAlpha;
  const tensors: GgufTensorData[] = [];
  const pairs = [...adapter.modules.values()].sort((x, y) => x.layer - y.layer || x.module.localeCompare(y.module));
  const ggType = type === 'f16' ? GGML.F16 : GGML.F32;
  const encode = (v: Float32Array) => (ggType === GGML.F16 ? quantize(GGML.F16, v) : new Uint8Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength)));
  for (const p of pairs) {
    const stem = ggufTensorName(`model.layers.${p.layer}.${p.module === 'gate_proj' || p.module === 'up_proj' || p.module === 'down_proj' ? 'mlp' : 'self_attn'}.${p.module}.weight`);
    if (!stem) throw new UnsupportedModelError(`The adapter's ${p.module} has no GGUF name.`);
    const fold = (p.scaling * p.rank) / alpha; // 1 for plain LoRA (scaling alpha / r)
    let b = fold === 1 ? p.b : p.b.map((x) => x * fold);
    if (permutes(base) && (p.module === 'q_proj' || p.module === 'k_proj')) b = permuteRows(b, p.outFeatures, p.rank, base.headDim);
    tensors.push({ name: `${stem}.lora_a`, dims: [p.inFeatures, p.rank], type: ggType, data: encode(p.a) });
    tensors.push({ name: `${stem}.lora_b`, dims: [p.rank, p.outFeatures], type: ggType, data: encode(b) });
  }
  return ggufChunks([
    ['general.architecture', { type: 'str', value: arch }],
    ['general.type', { type: 'str', value: 'adapter' }],
    ['general.name', { type: 'str', value: adapter.name }],
    ['adapter.type', { type: 'str', value: 'lora' }],
    ['adapter.lora.alpha', { type: 'f32', value: alpha }],
  ], tensors);
}
