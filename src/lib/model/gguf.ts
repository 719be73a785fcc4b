// GGUF models (llama.cpp's format): the header is parsed by @huggingface/gguf, served from the file's own byte
// stream (the parser asks for ranges in order; the stream is read once, front to back, and its tensor data follows
// the header); the metadata becomes a transformers-style config; tensors are renamed to the transformers names,
// dequantized a slice of rows at a time (formats/gguf-tensors.ts) and uploaded at the precision asked for.
// llama.cpp's converter permutes the rows of q and k of LLaMA-family models (it interleaves the two rotary halves of
// each head); that permutation is undone here. Qwen2 and Qwen3 files are not permuted (Qwen3's q/k norms are
// attn_q_norm and attn_k_norm). SmolLM3 files carry no key for their layers without RoPE: llama.cpp fixes them at
// every 4th layer, which is the config's default here too. Gemma 2 and 3 files hold their norm gains with the 1 added
// (the loader does not add it again) and fix the layer pattern and the local RoPE base (GGUF_GEMMA3).

import { gguf, type GGUFParseOutput } from '@huggingface/gguf';
import { FileFormatError, UnsupportedModelError, WeightMismatchError } from '../errors.js';
import { dequantize, ggmlTypeName, isSupportedType, LOADABLE_FILE_TYPES, tensorBytes, type GgmlType } from '../formats/gguf-tensors.js';
import type { ModelFiles, OpenedFile } from '../model-files.js';
import type { ModelConfig } from './config.js';
import { hashBytes, type Fingerprint } from './fingerprint.js';
import { checkGgufLayout, ggufAlignment } from './gguf-layout.js';
import type { WeightLoader } from './weights.js';

/** Architectures read from GGUF: general.architecture -> transformers class. */
const ARCHITECTURES: Record<string, string> = { llama: 'LlamaForCausalLM', mistral: 'MistralForCausalLM', qwen2: 'Qwen2ForCausalLM', qwen3: 'Qwen3ForCausalLM', smollm3: 'SmolLM3ForCausalLM', phi3: 'Phi3ForCausalLM', gemma2: 'Gemma2ForCausalLM', gemma3: 'Gemma3ForCausalLM' };

/** llama.cpp's converter interleaves the rotary halves of q and k rows for the LLaMA family; not for Qwen's, Phi's or Gemma's. */
export const qkPermuted = (architecture: string): boolean => !['Qwen2ForCausalLM', 'Qwen3ForCausalLM', 'Phi3ForCausalLM', 'Gemma2ForCausalLM', 'Gemma3ForCausalLM'].includes(architecture);

/**
 * What llama.cpp's gemma2 and gemma3 fix rather than read (llama-model.cpp): Gemma 2's layers alternate, Gemma 3's
 * every 6th is global with its sliding layers' RoPE base 10000 unscaled; queries are scaled by 1 / sqrt(head_dim), by
 * sqrt(hidden / heads) for the 27B models (46 and 62 layers).
 */
export const GGUF_GEMMA3 = { slidingWindowPattern: 6, localRopeBase: 10000 } as const;
export const GGUF_GEMMA_27B_LAYERS: Record<string, number> = { Gemma2ForCausalLM: 46, Gemma3ForCausalLM: 62 };

function gemma2Config(m: Meta, hidden: number, heads: number, headDim: number): Record<string, unknown> {
  const cap = (key: string) => (m[`gemma2.${key}`] !== undefined ? num(m, `gemma2.${key}`) : null);
  return {
    query_pre_attn_scalar: num(m, 'gemma2.block_count') === GGUF_GEMMA_27B_LAYERS.Gemma2ForCausalLM ? hidden / heads : headDim,
    attn_logit_softcapping: cap('attn_logit_softcapping'),
    final_logit_softcapping: cap('final_logit_softcapping'),
  };
}

function gemma3Config(m: Meta, hidden: number, heads: number, headDim: number): Record<string, unknown> {
  const type = m['gemma3.rope.scaling.type'];
  return {
    sliding_window_pattern: GGUF_GEMMA3.slidingWindowPattern,
    rope_local_base_freq: GGUF_GEMMA3.localRopeBase,
    query_pre_attn_scalar: num(m, 'gemma3.block_count') === GGUF_GEMMA_27B_LAYERS.Gemma3ForCausalLM ? hidden / heads : headDim,
    ...(type === 'linear' ? { rope_scaling: { rope_type: 'linear', factor: num(m, 'gemma3.rope.scaling.factor') } } : {}),
    ...(type !== undefined && type !== 'linear' && type !== 'none' ? { rope_scaling: { rope_type: String(type) } } : {}),
  };
}

export interface GgufHeader {
  parsed: GGUFParseOutput;
  /** Absolute offset of the tensor data. */
  dataOffset: number;
  /** The open file, read up to the end of the header; `reader` continues from there. */
  file: OpenedFile;
  reader: ByteReader;
}

/** Reads a stream front to back, keeping what is not yet consumed; `take(a, b)` returns bytes [a, b) (a >= consumed). */
export class ByteReader {
  #buf = new Uint8Array(0);
  #start = 0; // absolute offset of #buf[0]
  #len = 0;
  readonly #it: AsyncIterator<Uint8Array>;
  constructor(stream: AsyncIterable<Uint8Array>, readonly size: number) {
    this.#it = stream[Symbol.asyncIterator]();
  }

  /** Makes sure bytes up to `end` (absolute) are buffered, or the stream has ended. */
  async fill(end: number): Promise<void> {
    while (this.#start + this.#len < end) {
      const { done, value } = await this.#it.next();
      if (done) return;
      if (this.#len + value.byteLength > this.#buf.byteLength) {
        const next = new Uint8Array(Math.max(this.#len + value.byteLength, 2 * this.#buf.byteLength));
        next.set(this.#buf.subarray(0, this.#len));
        this.#buf = next;
      }
      this.#buf.set(value, this.#len);
      this.#len += value.byteLength;
    }
  }

  /** Bytes [a, b) as a copy, and forgets everything before b when `consume` is set. */
  async take(a: number, b: number, consume = false): Promise<Uint8Array> {
    await this.fill(b);
    if (a < this.#start || b > this.#start + this.#len) {
      throw new FileFormatError(`The GGUF file ends at byte ${this.#start + this.#len}, before byte ${b} that its header points to. It is truncated: download it again.`);
    }
    const out = this.#buf.slice(a - this.#start, b - this.#start);
    if (consume) {
      this.#buf.copyWithin(0, b - this.#start, this.#len);
      this.#len -= b - this.#start;
      this.#start = b;
    }
    return out;
  }
}

/** Opens `name` and parses its header; the returned reader continues into the tensor data. */
export async function readGgufHeader(files: ModelFiles, name: string): Promise<GgufHeader> {
  const file = await files.open(name);
  const reader = new ByteReader(file.stream, file.size);
  // The parser fetches ranges from a URL; this fetch serves them from the stream instead.
  const rangeFetch = (async (_url: string, init?: RequestInit) => {
    const range = /bytes=(\d+)-(\d+)/.exec(String((init?.headers as Record<string, string> | undefined)?.Range ?? ''));
    const a = range ? Number(range[1]) : 0;
    // The parser reads ahead at most HTTP_DATA_LEEWAY (0.5 MB) past where it is: a range from 1 MB past the end means
    // a count in the header points past the file (it would otherwise read zeros up to its 50 MB limit).
    if (a > file.size + (1 << 20)) {
      throw new FileFormatError(`${name} from ${files.label}: its header runs past the end of the file (${file.size.toLocaleString('en-US')} bytes). The file is truncated or damaged: download it again.`, { file: name });
    }
    const b = Math.min(file.size, range ? Number(range[2]) + 1 : file.size);
    const body = a < b ? await reader.take(a, b) : new Uint8Array(0);
    return new Response(body as Uint8Array<ArrayBuffer>, { status: 206, headers: { 'content-range': `bytes ${a}-${Math.max(a, b - 1)}/${file.size}` } });
  }) as typeof fetch;
  let parsed: GGUFParseOutput;
  try {
    // An https URL that is never requested (the fetch above answers), so the parser reads ranges rather than a local file.
    parsed = await gguf(`https://gguf.invalid/${encodeURIComponent(name)}`, { fetch: rangeFetch });
  } catch (e) {
    if (e instanceof FileFormatError) throw e;
    throw new FileFormatError(`${name} from ${files.label} is not a readable GGUF file (${(e as Error).message}). Check that it is a GGUF model and download it again.`, { file: name });
  }
  // The parser keeps the last of a repeated key; llama.cpp refuses the file (which value would the writer have meant?).
  const keys = Object.keys(parsed.metadata).filter((k) => !['version', 'tensor_count', 'kv_count'].includes(k));
  if (keys.length !== Number(parsed.metadata.kv_count)) {
    throw new FileFormatError(`${name}: its header lists ${Number(parsed.metadata.kv_count)} metadata keys but only ${keys.length} distinct ones: a key is repeated. The file is damaged or was not written by llama.cpp; download it again.`, { file: name });
  }
  const dataOffset = Number(parsed.tensorDataOffset);
  const alignment = ggufAlignment((parsed.metadata as Record<string, unknown>)['general.alignment'], name);
  checkGgufLayout(parsed.tensorInfos, alignment, dataOffset, file.size, name);
  return { parsed, dataOffset, file, reader };
}

type Meta = Record<string, unknown>;

function num(m: Meta, key: string, fallback?: number): number {
  const v = m[key];
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (fallback !== undefined) return fallback;
  throw new FileFormatError(`The GGUF metadata lacks ${key}, which the model needs. The file is not a complete model.`, { key });
}

/** Bytes of data before a RoPE tensor beyond which it is not read ahead for (llama.cpp writes them first). */
const ROPE_FREQS_WITHIN = 64 << 20;

/** The RoPE tensors llama.cpp writes ahead of the weights: Llama 3.1+'s per-pair divisors, Phi-3's LongRoPE factors. */
const ROPE_TENSORS = ['rope_freqs', 'rope_factors_short', 'rope_factors_long'] as const;
export type RopeTensors = Partial<Record<(typeof ROPE_TENSORS)[number], number[]>>;

/** The file's RoPE tensors (ROPE_TENSORS), read from the stream ahead of the weights (kept buffered). */
export async function ggufRopeTensors(h: GgufHeader, file: string): Promise<RopeTensors> {
  const out: RopeTensors = {};
  for (const name of ROPE_TENSORS) {
    const t = h.parsed.tensorInfos.find((x) => x.name === `${name}.weight`);
    if (!t) continue;
    if (t.dtype !== 0 || t.shape.length !== 1) throw new FileFormatError(`${file}: ${name} is ${ggmlTypeName(t.dtype)} [${t.shape}], not an F32 vector. The file is not one llama.cpp wrote.`, { file });
    if (Number(t.offset) > ROPE_FREQS_WITHIN) throw new FileFormatError(`${file} keeps ${name} ${Number(t.offset) >> 20} MiB into its data; the reader needs it near the start, as llama.cpp writes it.`, { file });
    const start = h.dataOffset + Number(t.offset);
    const bytes = await h.reader.take(start, start + 4 * Number(t.shape[0]));
    out[name] = Array.from(dequantize(0 as GgmlType, bytes, Number(t.shape[0])));
  }
  return out;
}

/** Phi-3's LongRoPE as convert_hf_to_gguf writes it: both factor tensors, the original context and the attention factor. */
function longRope(m: Meta, rope: RopeTensors, file: string): Record<string, unknown> {
  if (!rope.rope_factors_short && !rope.rope_factors_long) return {};
  if (!rope.rope_factors_short || !rope.rope_factors_long) throw new FileFormatError(`${file} has one of rope_factors_short and rope_factors_long but not the other. The file is damaged: download it again.`, { file });
  return {
    rope_scaling: {
      type: 'longrope', short_factor: rope.rope_factors_short, long_factor: rope.rope_factors_long,
      ...(m['phi3.rope.scaling.attn_factor'] !== undefined ? { attention_factor: num(m, 'phi3.rope.scaling.attn_factor') } : {}),
    },
    original_max_position_embeddings: num(m, 'phi3.rope.scaling.original_context_length', num(m, 'phi3.context_length', 2048)),
  };
}

/** A transformers config.json (and generation config) equivalent of a GGUF model's metadata. */
export function ggufConfig(h: GgufHeader, file: string, rope: RopeTensors = {}): { raw: Record<string, unknown>; generation: Record<string, unknown> } {
  const m = h.parsed.metadata as unknown as Meta;
  const arch = String(m['general.architecture']);
  const cls = ARCHITECTURES[arch];
  if (!cls) {
    throw new FileFormatError(`${file} is a GGUF "${arch}" model; the engine runs ${Object.keys(ARCHITECTURES).join(', ')}. Pick a model of one of these families.`, { file });
  }
  const tensors = new Map(h.parsed.tensorInfos.map((t) => [t.name, t]));
  const embd = tensors.get('token_embd.weight');
  const heads = num(m, `${arch}.attention.head_count`);
  const hidden = num(m, `${arch}.embedding_length`);
  const eos = m['tokenizer.ggml.eos_token_id'];
  const raw: Record<string, unknown> = {
    architectures: [cls],
    hidden_size: hidden,
    intermediate_size: num(m, `${arch}.feed_forward_length`),
    num_hidden_layers: num(m, `${arch}.block_count`),
    num_attention_heads: heads,
    num_key_value_heads: num(m, `${arch}.attention.head_count_kv`, heads),
    head_dim: num(m, `${arch}.attention.key_length`, hidden / heads),
    rms_norm_eps: num(m, `${arch}.attention.layer_norm_rms_epsilon`, 1e-6),
    rope_theta: num(m, `${arch}.rope.freq_base`, 10000),
    max_position_embeddings: num(m, `${arch}.context_length`, 2048),
    vocab_size: num(m, `${arch}.vocab_size`, embd ? Number(embd.shape[1]) : 0),
    tie_word_embeddings: !tensors.has('output.weight'),
    // Phi-3: its sliding window, and a RoPE on part of each head (which the engine refuses) when the dimension count says so.
    ...(m[`${arch}.attention.sliding_window`] !== undefined ? { sliding_window: num(m, `${arch}.attention.sliding_window`) } : {}),
    ...(arch === 'phi3' && m['phi3.rope.dimension_count'] !== undefined ? { partial_rotary_factor: num(m, 'phi3.rope.dimension_count') / num(m, `${arch}.attention.key_length`, hidden / heads) } : {}),
    ...(arch === 'gemma3' ? gemma3Config(m, hidden, heads, num(m, `${arch}.attention.key_length`, hidden / heads)) : {}),
    ...(arch === 'gemma2' ? gemma2Config(m, hidden, heads, num(m, `${arch}.attention.key_length`, hidden / heads)) : {}),
    ...(rope.rope_freqs ? { rope_scaling: { rope_type: 'freq_factors', factors: rope.rope_freqs } } : {}),
    ...(arch === 'phi3' ? longRope(m, rope, file) : {}),
    ...(m['tokenizer.ggml.bos_token_id'] !== undefined ? { bos_token_id: num(m, 'tokenizer.ggml.bos_token_id') } : {}),
    ...(eos !== undefined ? { eos_token_id: num(m, 'tokenizer.ggml.eos_token_id') } : {}),
    gguf_file: file,
  };
  // Every layer's tensors are on a layer the metadata has: weights past block_count would be ignored silently.
  const layers = raw.num_hidden_layers as number;
  for (const t of h.parsed.tensorInfos) {
    const layer = /^blk\.(\d+)\./.exec(t.name);
    if (layer && Number(layer[1]) >= layers) {
      throw new WeightMismatchError(`${file}: tensor "${t.name}" is on layer ${layer[1]}, but ${arch}.block_count says ${layers} layers, so it would be ignored and a different model would run. The file is damaged: download it again.`, { tensor: t.name, file });
    }
  }
  return { raw, generation: {} };
}

/** The GGUF metadata key each transformers config field comes from (ggufConfig above), for errors in GGUF terms. */
const GGUF_KEYS: Record<string, string> = {
  hidden_size: 'embedding_length', intermediate_size: 'feed_forward_length', num_hidden_layers: 'block_count',
  num_attention_heads: 'attention.head_count', num_key_value_heads: 'attention.head_count_kv', head_dim: 'attention.key_length',
  rms_norm_eps: 'attention.layer_norm_rms_epsilon', rope_theta: 'rope.freq_base', max_position_embeddings: 'context_length', vocab_size: 'vocab_size',
};

/** An error about the config made from a GGUF file's metadata, reworded to name the file and its metadata keys. */
export function inGgufTerms(e: unknown, h: GgufHeader, file: string): unknown {
  if (!(e instanceof UnsupportedModelError)) return e;
  const arch = String((h.parsed.metadata as Record<string, unknown>)['general.architecture']);
  const message = e.message.replace(/config\.json field "(\w+)"/g, (all, key: string) => (GGUF_KEYS[key] ? `${file}: the GGUF metadata's ${arch}.${GGUF_KEYS[key]}` : `${file}: the GGUF metadata's ${key}`));
  return new UnsupportedModelError(message, e.details);
}

/**
 * The transformers name of a GGUF tensor, or null for one the engine does not use. Phi-3 files keep q|k|v in attn_qkv
 * and gate|up in ffn_up (twice the rows), as its checkpoints do; Gemma's (`sandwich`) have post_attention_norm and
 * post_ffw_norm, and their ffn_norm is the pre-MLP norm.
 */
export function hfTensorName(name: string, fused = false, sandwich = false): string | null {
  const fixed: Record<string, string> = { 'token_embd.weight': 'model.embed_tokens.weight', 'output_norm.weight': 'model.norm.weight', 'output.weight': 'lm_head.weight' };
  if (name in fixed) return fixed[name];
  const b = /^blk\.(\d+)\.(\w+)\.(weight|bias)$/.exec(name);
  if (!b) return null;
  const part: Record<string, string> = {
    attn_norm: 'input_layernorm', ffn_norm: 'post_attention_layernorm',
    attn_q: 'self_attn.q_proj', attn_k: 'self_attn.k_proj', attn_v: 'self_attn.v_proj', attn_output: 'self_attn.o_proj',
    attn_q_norm: 'self_attn.q_norm', attn_k_norm: 'self_attn.k_norm',
    ffn_gate: 'mlp.gate_proj', ffn_up: 'mlp.up_proj', ffn_down: 'mlp.down_proj',
    ...(fused ? { attn_qkv: 'self_attn.qkv_proj', ffn_up: 'mlp.gate_up_proj' } : {}),
    ...(sandwich ? { post_attention_norm: 'post_attention_layernorm', ffn_norm: 'pre_feedforward_layernorm', post_ffw_norm: 'post_feedforward_layernorm' } : {}),
  };
  const p = part[b[2]];
  return p ? `model.layers.${b[1]}.${p}.${b[3]}` : null;
}

/** Slices of about this many f32 bytes are dequantized at a time. */
const SLICE_BYTES = 8 << 20;

/**
 * Streams the tensor data into the loader (file order; padding skipped), undoing llama.cpp's q/k row permutation for
 * LLaMA-family models. Progress is reported in bytes of the file.
 */
export async function streamGgufInto(
  h: GgufHeader, loader: WeightLoader, config: ModelConfig, file: string,
  onBytes: (loaded: number) => void, signal?: AbortSignal, fingerprint?: Fingerprint,
): Promise<void> {
  const permuted = qkPermuted(config.architecture);
  const infos = [...h.parsed.tensorInfos].sort((a, b) => Number(a.offset - b.offset));
  // Every tensor is placed (or known to be unused) before any data is read.
  const used = infos.filter((t) => {
    const name = hfTensorName(t.name, config.fusedProjections, config.sandwichNorms);
    if (name === null && (ROPE_TENSORS.some((r) => t.name === `${r}.weight`) || /^blk\.\d+\.attn_rot_embd/.test(t.name))) return false;
    // (Tensors on layers past block_count were refused with the header, by ggufConfig.)
    if (name === null || !loader.wants(name)) {
      throw new WeightMismatchError(`${file}: tensor "${t.name}" is not part of this ${config.architecture}, so it would be ignored and a different model would run.`, { tensor: t.name, file });
    }
    if (!isSupportedType(t.dtype)) {
      throw new FileFormatError(`${file}: tensor ${t.name} is ${ggmlTypeName(t.dtype)}, a type the engine does not read (IQ1/IQ2/IQ3 and the ternary types). Files of these types load: ${LOADABLE_FILE_TYPES}. Pick one of those quantizations.`, { tensor: t.name, file });
    }
    return true;
  });
  for (const t of used) {
    const name = hfTensorName(t.name, config.fusedProjections, config.sandwichNorms)!;
    const type = t.dtype as GgmlType;
    const dims = t.shape.map(Number); // ne[0] (the row length) first
    const shape = dims.length === 1 ? dims : [dims[1], dims[0]];
    const K = dims[0];
    const rows = dims.length === 1 ? 1 : dims[1];
    const rowBytes = tensorBytes(type, K, K, t.name);
    const start = h.dataOffset + Number(t.offset);
    const head = permuted && /\.(q_proj|k_proj)\.weight$/.test(name) ? config.headDim : 1;
    if (rows % head !== 0 || (head > 1 && dims.length !== 2)) {
      throw new WeightMismatchError(`${file}: tensor ${t.name} has ${rows} rows, not a whole number of heads of ${head} rows, as ${config.architecture} with head_dim ${head} needs. The file's metadata does not match its weights.`, { tensor: t.name, file });
    }
    const slice = Math.max(head, Math.floor(SLICE_BYTES / (4 * K) / head) * head);
    const hashes: string[] = []; // per slice: the raw tensor bytes are never held whole
    for (let r = 0; r < rows; r += slice) {
      signal?.throwIfAborted();
      const n = Math.min(slice, rows - r);
      const bytes = await h.reader.take(start + r * rowBytes, start + (r + n) * rowBytes, true);
      onBytes(start + (r + n) * rowBytes);
      if (fingerprint) hashes.push(hashBytes(bytes));
      let f32 = dequantize(type, bytes, n * K);
      if (head > 1) f32 = unpermuteRows(f32, n, K, head);
      if (dims.length === 1) loader.upload(name, 'F32', shape, new Uint8Array(f32.buffer), file);
      else loader.uploadRows(name, shape, r, f32, file);
    }
    fingerprint?.add(name, ggmlTypeName(type), shape, new TextEncoder().encode(hashes.join(',')));
  }
}

/** Undoes llama.cpp's permute() on `rows` rows (whole heads of `dh` rows): GGUF row 2i + j of a head is row j dh/2 + i. */
export function unpermuteRows(src: Float32Array, rows: number, K: number, dh: number): Float32Array {
  const out = new Float32Array(src.length);
  const half = dh / 2;
  for (let h0 = 0; h0 < rows; h0 += dh) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) out.set(src.subarray((h0 + 2 * i + j) * K, (h0 + 2 * i + j + 1) * K), (h0 + j * half + i) * K);
    }
  }
  return out;
}
