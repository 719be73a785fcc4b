// A GGUF v3 writer for tests, written from the GGUF specification (ggml/docs/gguf.md), independent of the reader
// under test: header, metadata key/values, tensor infos, data aligned to 32 bytes. Plus what llama.cpp's converter
// does that the reader must undo (the q/k row permutation), a Q8_0 quantizer for real weights, and random valid
// blocks of every quantized type with a float64 dequantization written element by element.

import { f16ToF32, f32ToF16 } from '../../src/lib/formats/dtype.js';
import type { SyntheticModel } from '../../src/lib/model/synthetic.js';
import { normalizeConfig, ropeInvFreq } from '../../src/lib/model/config.js';

export type KV = [key: string, type: 'u32' | 'u64' | 'f32' | 'str' | 'bool' | 'str[]' | 'u64[]', value: unknown];
export interface GgufTensor { name: string; dims: number[]; type: number; data: Uint8Array }

export const T = { F32: 0, F16: 1, Q4_0: 2, Q5_0: 6, Q5_1: 7, Q8_0: 8, Q2_K: 10, Q3_K: 11, Q4_K: 12, Q5_K: 13, Q6_K: 14, IQ4_NL: 20, IQ4_XS: 23, BF16: 30 } as const;
const ALIGN = 32;

export function writeGguf(kvs: KV[], tensors: GgufTensor[]): Uint8Array {
  const parts: number[] = [];
  const u8 = (v: number) => parts.push(v & 255);
  const u32 = (v: number) => { for (let i = 0; i < 4; i++) u8(v >>> (8 * i)); };
  const u64 = (v: number) => { u32(v % 2 ** 32); u32(Math.floor(v / 2 ** 32)); };
  const str = (s: string) => { const b = new TextEncoder().encode(s); u64(b.length); b.forEach(u8); };
  const f32 = (v: number) => { const b = new Uint8Array(new Float32Array([v]).buffer); b.forEach(u8); };
  u32(0x46554747); // "GGUF"
  u32(3);
  u64(tensors.length);
  u64(kvs.length);
  for (const [key, type, value] of kvs) {
    str(key);
    if (type === 'u32') { u32(4); u32(value as number); }
    else if (type === 'f32') { u32(6); f32(value as number); }
    else if (type === 'bool') { u32(7); u8(value ? 1 : 0); }
    else if (type === 'str') { u32(8); str(value as string); }
    else if (type === 'u64') { u32(10); u64(value as number); }
    else if (type === 'u64[]') { u32(9); u32(10); u64((value as number[]).length); for (const v of value as number[]) u64(v); }
    else { u32(9); u32(8); u64((value as string[]).length); for (const s of value as string[]) str(s); }
  }
  let offset = 0;
  const offsets: number[] = [];
  for (const t of tensors) {
    offsets.push(offset);
    offset = Math.ceil((offset + t.data.byteLength) / ALIGN) * ALIGN;
  }
  tensors.forEach((t, i) => {
    str(t.name);
    u32(t.dims.length);
    t.dims.forEach(u64);
    u32(t.type);
    u64(offsets[i]);
  });
  while (parts.length % ALIGN) u8(0);
  const out = new Uint8Array(parts.length + offset);
  out.set(parts);
  tensors.forEach((t, i) => out.set(t.data, parts.length + offsets[i]));
  return out;
}

const f32Bytes = (a: Float32Array) => new Uint8Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));

/** Q8_0 blocks of `x` (llama.cpp's rule: d = amax / 127, round to nearest). */
export function quantizeQ8_0(x: Float32Array): Uint8Array {
  const out = new Uint8Array((x.length / 32) * 34);
  const v = new DataView(out.buffer);
  for (let b = 0; b < x.length / 32; b++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[32 * b + j]));
    const d = amax / 127;
    v.setUint16(34 * b, f32ToF16(d), true);
    for (let j = 0; j < 32; j++) v.setInt8(34 * b + 2 + j, d ? Math.round(x[32 * b + j] / d) : 0);
  }
  return out;
}

/** llama.cpp's permute() of q/k rows: HF row j dh/2 + i of a head goes to GGUF row 2 i + j. */
export function permuteRows(w: Float32Array, n: number, k: number, dh: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let h = 0; h < n; h += dh) for (let i = 0; i < dh / 2; i++) for (let j = 0; j < 2; j++) {
    out.set(w.subarray((h + j * (dh / 2) + i) * k, (h + j * (dh / 2) + i + 1) * k), (h + 2 * i + j) * k);
  }
  return out;
}

/** A synthetic model as llama.cpp's converter would write it (names, permuted q/k, metadata), at F32 or Q8_0. */
/** `override` may give a tensor (by its GGUF name and dims) other data and type, in GGUF's layout (q/k rows permuted). */
export function ggufFromSynthetic(m: SyntheticModel, type: 'F32' | 'Q8_0' = 'F32', extra: KV[] = [], override?: (name: string, dims: number[]) => { type: number; data: Uint8Array } | null): Uint8Array {
  const c = m.config as Record<string, number | boolean | string[]>;
  // llama.cpp's names: Qwen2 and Qwen3 keep their q/k rows as they are; the LLaMA family's are permuted.
  const cls = (c.architectures as string[])[0];
  const arch = cls === 'Qwen2ForCausalLM' ? 'qwen2' : cls === 'Qwen3ForCausalLM' ? 'qwen3' : cls === 'SmolLM3ForCausalLM' ? 'smollm3' : cls === 'Phi3ForCausalLM' ? 'phi3' : cls === 'Gemma3ForCausalLM' ? 'gemma3' : cls === 'Gemma2ForCausalLM' ? 'gemma2' : 'llama';
  const gemma = arch === 'gemma2' || arch === 'gemma3';
  const qwen = arch === 'qwen2' || arch === 'qwen3' || arch === 'phi3' || gemma; // rows as they are: no q/k permutation
  const dh = (c.head_dim as number) ?? (c.hidden_size as number) / (c.num_attention_heads as number);
  const kvs: KV[] = [
    ['general.architecture', 'str', arch],
    [`${arch}.embedding_length`, 'u32', c.hidden_size], [`${arch}.feed_forward_length`, 'u32', c.intermediate_size],
    [`${arch}.block_count`, 'u32', c.num_hidden_layers], [`${arch}.attention.head_count`, 'u32', c.num_attention_heads],
    [`${arch}.attention.head_count_kv`, 'u32', c.num_key_value_heads], [`${arch}.attention.key_length`, 'u32', dh],
    [`${arch}.attention.layer_norm_rms_epsilon`, 'f32', c.rms_norm_eps], [`${arch}.rope.freq_base`, 'f32', c.rope_theta ?? 10000],
    [`${arch}.context_length`, 'u32', c.max_position_embeddings ?? 2048],
    ...extra,
  ];
  const names: [RegExp, string][] = [
    [/^model\.embed_tokens\.weight$/, 'token_embd.weight'], [/^model\.norm\.weight$/, 'output_norm.weight'], [/^lm_head\.weight$/, 'output.weight'],
    [/^model\.layers\.(\d+)\.input_layernorm\.weight$/, 'blk.$1.attn_norm.weight'],
    // convert_hf_to_gguf's Gemma3Model: post_attention_norm, ffn_norm (the pre-MLP norm), post_ffw_norm.
    ...(gemma ? [[/^model\.layers\.(\d+)\.post_attention_layernorm\.weight$/, 'blk.$1.post_attention_norm.weight'], [/^model\.layers\.(\d+)\.pre_feedforward_layernorm\.weight$/, 'blk.$1.ffn_norm.weight'],
      [/^model\.layers\.(\d+)\.post_feedforward_layernorm\.weight$/, 'blk.$1.post_ffw_norm.weight']] as [RegExp, string][] : []),
    [/^model\.layers\.(\d+)\.post_attention_layernorm\.weight$/, 'blk.$1.ffn_norm.weight'],
    [/^model\.layers\.(\d+)\.self_attn\.q_proj\.(weight|bias)$/, 'blk.$1.attn_q.$2'], [/^model\.layers\.(\d+)\.self_attn\.k_proj\.(weight|bias)$/, 'blk.$1.attn_k.$2'],
    [/^model\.layers\.(\d+)\.self_attn\.v_proj\.(weight|bias)$/, 'blk.$1.attn_v.$2'], [/^model\.layers\.(\d+)\.self_attn\.o_proj\.weight$/, 'blk.$1.attn_output.weight'],
    [/^model\.layers\.(\d+)\.mlp\.(gate|up|down)_proj\.weight$/, 'blk.$1.ffn_$2.weight'],
    [/^model\.layers\.(\d+)\.self_attn\.(q|k)_norm\.weight$/, 'blk.$1.attn_$2_norm.weight'],
  ];
  const tensors: GgufTensor[] = [];
  // llama.cpp's phi3 keeps Phi-3's fused projections: attn_qkv (rows q | k | v) and ffn_up (rows gate | up).
  const source = new Map(m.tensors);
  if (arch === 'phi3') {
    for (let l = 0; l < (c.num_hidden_layers as number); l++) {
      const p = `model.layers.${l}.`;
      for (const [parts, into] of [[['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj'], 'attn_qkv'], [['mlp.gate_proj', 'mlp.up_proj'], 'ffn_up']] as const) {
        const ts = parts.map((n) => source.get(`${p}${n}.weight`)!);
        parts.forEach((n) => source.delete(`${p}${n}.weight`));
        const data = new Float32Array(ts.reduce((a, t) => a + t.data.length, 0));
        ts.reduce((at, t) => { data.set(t.data, at); return at + t.data.length; }, 0);
        source.set(`phi3:blk.${l}.${into}.weight`, { shape: [ts.reduce((a, t) => a + t.shape[0], 0), ts[0].shape[1]], data });
      }
    }
    kvs.push(...(c.sliding_window ? [['phi3.attention.sliding_window', 'u32', c.sliding_window] as KV] : []));
  }
  if (gemma) {
    kvs.push(...(c.sliding_window ? [[`${arch}.attention.sliding_window`, 'u32', c.sliding_window] as KV] : []));
    const rs = c.rope_scaling as unknown as { rope_type?: string; factor?: number } | null;
    if (rs?.rope_type === 'linear') kvs.push(['gemma3.rope.scaling.type', 'str', 'linear'], ['gemma3.rope.scaling.factor', 'f32', rs.factor!]);
    // convert_hf_to_gguf's Gemma2Model: the two soft-caps as they are in config.json.
    for (const key of ['attn_logit_softcapping', 'final_logit_softcapping']) if (typeof c[key] === 'number') kvs.push([`gemma2.${key}`, 'f32', c[key] as number]);
  }
  names.push([/^phi3:(.*)$/, '$1']);
  for (const [name, t] of source) {
    const rule = names.find(([re]) => re.test(name));
    if (!rule) throw new Error(`no GGUF name for ${name}`);
    let data = t.data;
    if (!qwen && /(q_proj|k_proj)\.weight$/.test(name)) data = permuteRows(data, t.shape[0], t.shape[1], dh);
    if (gemma && /norm\.weight$/.test(name)) data = data.map((v) => v + 1); // the converter adds Gemma's 1 to every norm gain
    const quantize = type === 'Q8_0' && t.shape.length === 2 && t.shape[1] % 32 === 0;
    const ggufName = name.replace(rule[0], rule[1]);
    const dims = [...t.shape].reverse();
    const given = override?.(ggufName, dims);
    tensors.push(given ? { name: ggufName, dims, ...given } : { name: ggufName, dims, type: quantize ? T.Q8_0 : T.F32, data: quantize ? quantizeQ8_0(data) : f32Bytes(data) });
  }
  // Phi-3's LongRoPE: convert_hf_to_gguf's Phi3MiniModel writes both factor lists as tensors, the original context and
  // the attention factor sqrt(1 + ln(max / original) / ln(original)).
  const rs = c.rope_scaling as unknown as { type?: string; short_factor?: number[]; long_factor?: number[]; original_max_position_embeddings?: number } | null;
  if (arch === 'phi3' && rs?.type === 'longrope') {
    const original = rs.original_max_position_embeddings!;
    const scale = (c.max_position_embeddings as number) / original;
    kvs.push(['phi3.rope.scaling.original_context_length', 'u32', original], ['phi3.rope.scaling.attn_factor', 'f32', scale > 1 ? Math.sqrt(1 + Math.log(scale) / Math.log(original)) : 1]);
    tensors.unshift(
      { name: 'rope_factors_long.weight', dims: [rs.long_factor!.length], type: T.F32, data: f32Bytes(Float32Array.from(rs.long_factor!)) },
      { name: 'rope_factors_short.weight', dims: [rs.short_factor!.length], type: T.F32, data: f32Bytes(Float32Array.from(rs.short_factor!)) },
    );
  }
  // Llama 3.1+ RoPE scaling: llama.cpp's converter writes the per-pair divisors as rope_freqs, first.
  const cfg = normalizeConfig(m.config, {});
  if (cfg.ropeScaling?.type === 'llama3') {
    const scaled = ropeInvFreq(cfg);
    const base = ropeInvFreq({ ...cfg, ropeScaling: null });
    tensors.unshift({ name: 'rope_freqs.weight', dims: [dh / 2], type: T.F32, data: f32Bytes(Float32Array.from(base, (b, i) => b / scaled[i])) });
  }
  return writeGguf(kvs, tensors);
}

/** Random valid blocks of a quantized type (small f16 scales, random quants), for dequantization tests. */
export function randomBlocks(type: number, blocks: number, rand: () => number): Uint8Array {
  const size = { [T.Q8_0]: 34, [T.Q4_0]: 18, [T.Q4_K]: 144, [T.Q6_K]: 210, [T.Q5_0]: 22, [T.Q5_1]: 24, [T.Q2_K]: 84, [T.Q3_K]: 110, [T.Q5_K]: 176, [T.IQ4_NL]: 18, [T.IQ4_XS]: 136 }[type]!;
  const out = Uint8Array.from({ length: blocks * size }, () => Math.floor(rand() * 256));
  const v = new DataView(out.buffer);
  const scale = () => f32ToF16((rand() - 0.3) * 0.02);
  for (let b = 0; b < blocks; b++) {
    const o = b * size;
    if (type === T.Q8_0 || type === T.Q4_0) v.setUint16(o, scale(), true);
    if (type === T.Q4_K) { v.setUint16(o, scale(), true); v.setUint16(o + 2, scale(), true); }
    if (type === T.Q6_K) v.setUint16(o + 208, scale(), true);
    // The f16 fields of the other types: their scales (and mins), where ggml's block structs put them.
    const halves: Record<number, number[]> = { [T.Q5_0]: [0], [T.Q5_1]: [0, 2], [T.Q2_K]: [80, 82], [T.Q3_K]: [108], [T.Q5_K]: [0, 2], [T.IQ4_NL]: [0], [T.IQ4_XS]: [0] };
    for (const at of halves[type] ?? []) v.setUint16(o + at, scale(), true);
  }
  return out;
}

/** Float64 dequantization of element `e` of a quantized tensor, straight from the block layout in the specification. */
export function referenceElement(type: number, data: Uint8Array, e: number): number {
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const half = (o: number) => f16ToF32(v.getUint16(o, true));
  if (type === T.Q8_0) { const b = Math.floor(e / 32), j = e % 32; return half(34 * b) * v.getInt8(34 * b + 2 + j); }
  if (type === T.Q4_0) {
    const b = Math.floor(e / 32), j = e % 32;
    const byte = data[18 * b + 2 + (j % 16)];
    return half(18 * b) * ((j < 16 ? byte & 15 : byte >> 4) - 8);
  }
  if (type === T.Q4_K) {
    const b = Math.floor(e / 256), j = e % 256, o = 144 * b;
    const sub = Math.floor(j / 32);                      // sub-block 0..7
    const s = data.subarray(o + 4, o + 16);
    // 6-bit scale and min of sub-block `sub`: the low 6 bits of bytes 0..7 for sub-blocks 0..3; for 4..7, a nibble of
    // bytes 8..11 with the top 2 bits of bytes 0..7 above it.
    const sc = sub < 4 ? s[sub] & 63 : (s[sub + 4] & 15) | ((s[sub - 4] >> 6) << 4);
    const mn = sub < 4 ? s[sub + 4] & 63 : (s[sub + 4] >> 4) | ((s[sub] >> 6) << 4);
    const group = Math.floor(sub / 2), l = j % 32;
    const byte = data[o + 16 + 32 * group + l];
    const q = sub % 2 === 0 ? byte & 15 : byte >> 4;
    return half(o) * sc * q - half(o + 2) * mn;
  }
  if (type === T.Q6_K) {
    const b = Math.floor(e / 256), j = e % 256, o = 210 * b;
    const h = Math.floor(j / 128), r = j % 128, quarter = Math.floor(r / 32), l = r % 32;
    const lowByte = data[o + 64 * h + l + (quarter % 2) * 32];
    const low = quarter < 2 ? lowByte & 15 : lowByte >> 4;
    const high = (data[o + 128 + 32 * h + l] >> (2 * quarter)) & 3;
    const scale = v.getInt8(o + 192 + 8 * h + Math.floor(l / 16) + 2 * quarter);
    return half(o + 208) * scale * ((low | (high << 4)) - 32);
  }
  throw new Error(`no reference for type ${type}`);
}
