// A web-llm model folder with random weights, for running web-llm for real where the hub cannot be reached: MLC's
// parameter format (ndarray-cache.json + raw shards) holding exactly the parameters a prebuilt model library asks for.
// The library (a .wasm from mlc-ai/binary-mlc-llm-libs) embeds its metadata as JSON: every parameter's name, shape and
// dtype; this script reads it from the .wasm and writes seeded values of those shapes, so any library's model can be
// served. Quantized weights (q4f32_1: 4-bit values packed 8 to a uint32, a float32 scale per group of 32) get random
// nibbles and small scales; norms get 1, biases 0. Embedding rows past the tokenizer's vocabulary get scale 0, so the
// (tied) output layer gives them logit 0 against large ones elsewhere: the model writes tokens the tokenizer can show.
//
//   npx tsx scripts/webllm/make-test-model.ts <library.wasm> <out folder> [tokenizer.json]
//
// The tokenizer defaults to the built-in model's; the chat template is ChatML (Qwen2's). Nothing here is a real model:
// it exercises web-llm's download, cache, GPU upload, shader compilation, prefill and decode on this machine.

import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

interface Param { name: string; shape: number[]; dtype: 'uint32' | 'float32' | 'float16' }
interface Metadata { model_type: string; quantization: string; context_window_size: number; params: Param[]; kv_cache?: Record<string, number> }

/** The metadata JSON a model library embeds (what web-llm reads through its `_metadata` function). */
export function libraryMetadata(wasm: Uint8Array): Metadata {
  const text = new TextDecoder('latin1').decode(wasm);
  const start = text.indexOf('{"model_type"');
  if (start < 0) throw new Error('no model metadata in this library: is it a web-llm model library (.wasm)?');
  let depth = 0;
  for (let i = start; i < text.length; i++) {
    if (text[i] === '{') depth++;
    else if (text[i] === '}' && --depth === 0) return JSON.parse(text.slice(start, i + 1)) as Metadata;
  }
  throw new Error('the model metadata in this library is cut short');
}

/** xorshift32: fast, seeded, enough for test weights. */
function rng(seed: number) {
  let s = seed >>> 0 || 1;
  return () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; return (s >>>= 0); };
}

const SHARD_BYTES = 32 << 20;

export function writeTestModel(wasmPath: string, out: string, tokenizerPath: string): { params: number; bytes: number; meta: Metadata } {
  const meta = libraryMetadata(new Uint8Array(readFileSync(wasmPath)));
  const tokenizer = JSON.parse(readFileSync(tokenizerPath, 'utf8')) as { model: { vocab: Record<string, number> | [string, number][] }; added_tokens?: { id: number; content: string }[] };
  const imEnd = tokenizer.added_tokens?.find((t) => t.content === '<|im_end|>')?.id ?? 2;
  const vocab = Math.max(...(Array.isArray(tokenizer.model.vocab) ? tokenizer.model.vocab.map((_, i) => i) : Object.values(tokenizer.model.vocab)), ...(tokenizer.added_tokens ?? []).map((t) => t.id)) + 1;
  mkdirSync(out, { recursive: true });
  const next = rng(0x5eed);
  const shards: { dataPath: string; format: 'raw-shard'; nbytes: number; records: object[] }[] = [];
  let shard: Uint8Array[] = [];
  let records: object[] = [];
  let offset = 0;
  let bytes = 0;
  const flush = () => {
    if (!records.length) return;
    const dataPath = `params_shard_${shards.length}.bin`;
    writeFileSync(join(out, dataPath), Buffer.concat(shard));
    shards.push({ dataPath, format: 'raw-shard', nbytes: offset, records });
    shard = []; records = []; offset = 0;
  };
  for (const p of meta.params) {
    const n = p.shape.reduce((a, b) => a * b, 1);
    if (p.dtype === 'float16') throw new Error(`${p.name} is float16: use a q*f32 library (this script writes float32 and uint32)`);
    const data = new Uint8Array(n * 4);
    const view = p.dtype === 'uint32' ? new Uint32Array(data.buffer) : new Float32Array(data.buffer);
    const embeddingRows = p.name.includes('embed_tokens') && p.shape.length === 2 ? p.shape[0] : 0;
    if (p.dtype === 'uint32') for (let i = 0; i < n; i++) view[i] = next();
    else if (p.name.endsWith('.q_scale')) {
      // (q - 7) x scale with q uniform in 0..15 has a standard deviation of about 4.6 x scale: 1 / sqrt(fan-in).
      const inFeatures = p.shape[1] * 32;
      const scale = (p.name.includes('embed_tokens') ? 0.05 : 1 / Math.sqrt(inFeatures)) / 4.6;
      const perRow = p.shape[1];
      for (let i = 0; i < n; i++) view[i] = embeddingRows && Math.floor(i / perRow) >= vocab ? 0 : scale;
    } else if (p.name.includes('norm')) view.fill(1);
    else if (!p.name.endsWith('.bias')) for (let i = 0; i < n; i++) view[i] = ((next() / 2 ** 32) * 2 - 1) * 0.02;
    if (offset + data.byteLength > SHARD_BYTES) flush();
    records.push({ name: p.name, shape: p.shape, dtype: p.dtype, format: 'raw', nbytes: data.byteLength, byteOffset: offset });
    shard.push(data);
    offset += data.byteLength;
    bytes += data.byteLength;
  }
  flush();
  writeFileSync(join(out, 'ndarray-cache.json'), JSON.stringify({ metadata: { ParamSize: meta.params.length, ParamBytes: bytes, BitsPerParam: 0 }, records: shards }));
  copyFileSync(tokenizerPath, join(out, 'tokenizer.json'));
  const chatml = {
    system_template: '<|im_start|>system\n{system_message}<|im_end|>\n', system_message: 'You are a helpful assistant.',
    roles: { user: '<|im_start|>user', assistant: '<|im_start|>assistant' }, seps: ['<|im_end|>\n'],
    role_content_sep: '\n', role_empty_sep: '\n', stop_str: ['<|im_end|>'], stop_token_ids: [imEnd], system_prefix_token_ids: [],
    add_role_after_system_message: true,
  };
  writeFileSync(join(out, 'mlc-chat-config.json'), JSON.stringify({
    model_type: meta.model_type, quantization: meta.quantization, vocab_size: meta.params.find((p) => p.name.includes('embed_tokens'))?.shape[0],
    context_window_size: 1024, sliding_window_size: -1, attention_sink_size: -1, prefill_chunk_size: 1024,
    temperature: 0.7, repetition_penalty: 1, frequency_penalty: 0, presence_penalty: 0, top_p: 0.95,
    tokenizer_files: ['tokenizer.json'], conv_template: chatml, bos_token_id: 1, eos_token_id: [imEnd],
  }, null, 2));
  return { params: meta.params.length, bytes, meta };
}

if (process.argv[1]?.endsWith('make-test-model.ts')) {
  const [wasm, out, tok] = process.argv.slice(2);
  if (!wasm || !out) {
    console.error('usage: tsx scripts/webllm/make-test-model.ts <library.wasm> <out folder> [tokenizer.json]');
    process.exit(2);
  }
  const r = writeTestModel(wasm, out, tok ?? new URL('../../public/models/demo/tokenizer.json', import.meta.url).pathname);
  console.log(`${r.meta.model_type} ${r.meta.quantization}: ${r.params} parameters, ${(r.bytes / 1e6).toFixed(1)} MB written to ${out}`);
}
