// GGUF export: a model folder written as F16, Q8_0 and Q4_K_M GGUF files (llama-quantize's per-tensor types and
// fallbacks) and read back by the engine equals a float64 forward over the file's own dequantized weights; the
// exported tokenizer and chat template run in the engine with no side files; a LoRA adapter written as a GGUF LoRA
// file loads back as the same adapter.

import { TINY_CONFIGS } from '../helpers/models.js';
import { describe, expect, it } from 'vitest';
import { Engine } from '../../src/lib/engine.js';
import { adapterToGguf, modelToGguf, type GgufExportType } from '../../src/lib/formats/gguf-export.js';
import { dequantize, ggmlTypeName, type GgmlType } from '../../src/lib/formats/gguf-tensors.js';
import { loadPeftAdapter } from '../../src/lib/lora/adapter-files.js';
import { syntheticAdapter } from '../../src/lib/lora/synthetic.js';
import { MemoryFiles } from '../../src/lib/model-files.js';
import { NodeDirFiles } from '../../src/lib/hub/node-files.js';
import { normalizeConfig } from '../../src/lib/model/config.js';
import { readGgufHeader } from '../../src/lib/model/gguf.js';
import { LoraBank } from '../../src/lib/lora/bank.js';
import { loadWeights } from '../../src/lib/model/load.js';
import { LoadedModel } from '../../src/lib/model/loaded.js';
import { ModelRunner } from '../../src/lib/model/runner.js';
import { syntheticModel, type SyntheticSpec } from '../../src/lib/model/synthetic.js';
import { testGpu } from '../helpers/gpu.js';
import { tinyTokenizerJson } from '../helpers/tiny-tokenizer.js';
import { referenceForward, type Weights } from '../reference/llama.js';

const concat = (chunks: Uint8Array[]) => {
  const out = new Uint8Array(chunks.reduce((t, c) => t + c.length, 0));
  let o = 0;
  for (const c of chunks) { out.set(c, o); o += c.length; }
  return out;
};

function folder(spec: SyntheticSpec) {
  const m = syntheticModel(spec);
  const template = "{% for m in messages %}<s>{{ m['role'] }}: {{ m['content'] }}</s>{% endfor %}{% if add_generation_prompt %}<s>assistant:{% endif %}";
  return {
    m,
    files: new Map<string, Uint8Array>([
      ['config.json', new TextEncoder().encode(JSON.stringify(m.config))], ['model.safetensors', m.safetensors],
      ['tokenizer.json', tinyTokenizerJson(spec.vocabSize)],
      ['tokenizer_config.json', new TextEncoder().encode(JSON.stringify({ bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', add_bos_token: false, chat_template: template }))],
    ]),
  };
}

/** The file's weights as ggml dequantizes them, under transformers names, q/k rows put back in transformers' order. */
async function dequantizedWeights(file: Uint8Array, headDim: number, permuted: boolean): Promise<{ w: Weights; types: Map<string, string> }> {
  const h = await readGgufHeader(new MemoryFiles('x.gguf', new Map([['x.gguf', file]])), 'x.gguf');
  const w: Weights = new Map();
  const types = new Map<string, string>();
  const part: Record<string, string> = { attn_norm: 'input_layernorm', ffn_norm: 'post_attention_layernorm', attn_q: 'self_attn.q_proj', attn_k: 'self_attn.k_proj', attn_v: 'self_attn.v_proj', attn_output: 'self_attn.o_proj', ffn_gate: 'mlp.gate_proj', ffn_up: 'mlp.up_proj', ffn_down: 'mlp.down_proj', attn_q_norm: 'self_attn.q_norm', attn_k_norm: 'self_attn.k_norm' };
  for (const t of h.parsed.tensorInfos) {
    const dims = t.shape.map(Number);
    const n = dims.reduce((a, b) => a * b, 1);
    const start = h.dataOffset + Number(t.offset);
    const bytes = file.subarray(start);
    let v = dequantize(t.dtype as GgmlType, bytes, n);
    const b = /^blk\.(\d+)\.(\w+)\.(weight|bias)$/.exec(t.name);
    const name = t.name === 'token_embd.weight' ? 'model.embed_tokens.weight' : t.name === 'output_norm.weight' ? 'model.norm.weight' : t.name === 'output.weight' ? 'lm_head.weight' : `model.layers.${b![1]}.${part[b![2]]}.${b![3]}`;
    if (permuted && /attn_[qk]\.weight$/.test(t.name)) {
      // llama.cpp row 2i + j of each head is transformers row j Dh/2 + i.
      const K = dims[0], out = new Float32Array(v.length);
      for (let h0 = 0; h0 < dims[1]; h0 += headDim) for (let i = 0; i < headDim / 2; i++) for (let j = 0; j < 2; j++) out.set(v.subarray((h0 + 2 * i + j) * K, (h0 + 2 * i + j + 1) * K), (h0 + j * (headDim / 2) + i) * K);
      v = out;
    }
    w.set(name, { shape: dims.length === 2 ? [dims[1], dims[0]] : dims, data: v });
    types.set(t.name, ggmlTypeName(t.dtype));
  }
  return { w, types };
}

const prompt = [5, 17, 2, 40, 11, 63, 8];

async function engineLogits(file: Uint8Array): Promise<Float32Array> {
  const gpu = await testGpu();
  const loaded = await loadWeights(gpu, new MemoryFiles('x.gguf', new Map([['x.gguf', file]])), undefined, undefined, undefined, 'f32');
  const model = new LoadedModel(gpu, loaded.config, loaded.weights, new LoraBank(gpu, loaded.config));
  const runner = new ModelRunner(model, { slots: 1, contextLength: 64, maxRows: 16 });
  await runner.forward({ tokens: prompt, slots: prompt.map(() => 0), positions: prompt.map((_, i) => i), seqs: 1, lastStride: prompt.length, lastOffset: prompt.length - 1 });
  const logits = await runner.readLogits(1);
  runner.destroy();
  model.destroy();
  return logits;
}

/** Our engine's greedy tokens after `prompt` from a model's files (weights at f32: the file's values). */
async function greedyTokens(f: MemoryFiles, contextLength = 64): Promise<number[]> {
  const engine = new Engine(await testGpu(), { contextLength, slots: 1 });
  await engine.load(f, undefined, undefined, { precision: 'f32' });
  const r = await engine.generate({ promptIds: prompt, maxNewTokens: 16, sampling: { temperature: 0, repetitionPenalty: 1 } });
  engine.unload();
  return r.tokens;
}

const llama256: SyntheticSpec = { hiddenSize: 256, intermediateSize: 512, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 64, vocabSize: 96, tied: false, seed: 31 };
const qwenTied: SyntheticSpec = { hiddenSize: 64, intermediateSize: 96, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 16, vocabSize: 96, tied: true, seed: 8, architecture: 'Qwen2ForCausalLM' };
const qwen3: SyntheticSpec = { hiddenSize: 64, intermediateSize: 96, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 32, vocabSize: 96, tied: true, seed: 10, architecture: 'Qwen3ForCausalLM' };

describe('GGUF export of a model', () => {
  it.each([
    ['llama, 256-wide rows', 'f16', llama256], ['llama, 256-wide rows', 'q8_0', llama256], ['llama, 256-wide rows', 'q4_k_m', llama256],
    ['qwen2, tied, 64-wide rows', 'q8_0', qwenTied], ['qwen2, tied, 64-wide rows', 'q4_k_m', qwenTied],
    ['qwen3, q/k norms, head_dim 32 of 4 heads over 64', 'q8_0', qwen3],
  ] as const)('%s as %s: the engine reads it back as a float64 forward over its dequantized weights', async (_, type, spec) => {
    const { files } = folder(spec);
    const file = concat(modelToGguf(files, type as GgufExportType, 'test-model'));
    const cfg = normalizeConfig(JSON.parse(new TextDecoder().decode(files.get('config.json'))));
    const { w, types } = await dequantizedWeights(file, cfg.headDim, spec.architecture !== 'Qwen2ForCausalLM' && spec.architecture !== 'Qwen3ForCausalLM');
    const ref = referenceForward(cfg, w, prompt).at(-1)!;
    const got = await engineLogits(file);
    const scale = Math.max(...ref.map(Math.abs));
    let worst = 0;
    for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(got[i] - ref[i]));
    console.log(`${spec.architecture ?? 'llama'} ${type}: max |engine - float64| ${worst.toExponential(2)} (max |logit| ${scale.toFixed(2)}); types ${[...new Set(types.values())].join(', ')}`);
    expect(worst).toBeLessThanOrEqual(1e-5 * scale + 1e-6);
    let argmax = 0;
    for (let i = 1; i < ref.length; i++) if (ref[i] > ref[argmax]) argmax = i;
    expect(got.indexOf(Math.max(...got))).toBe(argmax);
    // llama-quantize's choices for Q4_K_M: Q4_K, with Q6_K on the output (the tied embedding) and on attn_v and
    // ffn_down of the layers use_more_bits picks (of 2 layers: layer 1); rows not whole 256-blocks fall back.
    if (type === 'q4_k_m' && spec === llama256) {
      expect(Object.fromEntries(types)).toMatchObject({
        'token_embd.weight': 'Q4_K', 'output.weight': 'Q6_K', 'blk.0.attn_v.weight': 'Q4_K', 'blk.1.attn_v.weight': 'Q6_K',
        'blk.0.ffn_down.weight': 'Q4_K', 'blk.1.ffn_down.weight': 'Q6_K', 'blk.0.attn_q.weight': 'Q4_K', 'blk.0.attn_norm.weight': 'F32',
      });
    }
    if (spec === qwen3) expect(Object.fromEntries(types)).toMatchObject({ 'blk.0.attn_q_norm.weight': 'F32', 'blk.1.attn_k_norm.weight': 'F32' });
    if (type === 'q4_k_m' && spec === qwenTied) {
      expect(Object.fromEntries(types)).toMatchObject({ 'token_embd.weight': 'Q8_0', 'blk.0.attn_q.weight': 'Q5_0', 'blk.1.attn_v.weight': 'Q8_0', 'blk.0.attn_q.bias': 'F32' });
    }
  });

  it('a Phi-3 model (q|k|v in attn_qkv, gate|up in ffn_up, its sliding window kept) reads back to the greedy tokens of its safetensors folder', async () => {
    const spec = { ...TINY_CONFIGS.phi3Fused, vocabSize: 160 };
    const { files } = folder(spec);
    const file = concat(modelToGguf(files, 'f16', 'phi3 test'));
    const h = await readGgufHeader(new MemoryFiles('p.gguf', new Map([['p.gguf', file]])), 'p.gguf');
    const names = h.parsed.tensorInfos.map((t) => t.name);
    expect(names).toContain('blk.0.attn_qkv.weight');
    expect(names).toContain('blk.1.ffn_up.weight');
    expect(names.filter((n) => /attn_q\.|ffn_gate/.test(n))).toEqual([]);
    expect((h.parsed.metadata as Record<string, unknown>)['phi3.attention.sliding_window']).toBe(5);
    const tokens = (f: MemoryFiles) => greedyTokens(f);
    // The GGUF holds f16 weights: its tokens against the folder written at f16 too.
    const f16Folder = folder({ ...spec, dtype: 'F16' }).files;
    expect(await tokens(new MemoryFiles('p.gguf', new Map([['p.gguf', file]])))).toEqual(await tokens(new MemoryFiles('phi3', f16Folder)));
  });

  it("a Gemma 3 model (its norms as 1 + w, post_attention_norm, ffn_norm before the MLP, post_ffw_norm, linear RoPE scaling) reads back to the greedy tokens of its safetensors folder", async () => {
    const spec: SyntheticSpec = { ...TINY_CONFIGS.gemma3, numLayers: 6, layerTypes: undefined, queryPreAttnScalar: undefined, vocabSize: 160 };
    const { files, m } = folder(spec);
    const file = concat(modelToGguf(files, 'f16', 'gemma3 test'));
    const h = await readGgufHeader(new MemoryFiles('g.gguf', new Map([['g.gguf', file]])), 'g.gguf');
    const meta = h.parsed.metadata as Record<string, unknown>;
    expect(meta['general.architecture']).toBe('gemma3');
    expect(meta['gemma3.attention.sliding_window']).toBe(4);
    expect(meta['gemma3.rope.scaling.type']).toBe('linear');
    const names = h.parsed.tensorInfos.map((t) => t.name);
    for (const n of ['blk.0.post_attention_norm.weight', 'blk.0.ffn_norm.weight', 'blk.5.post_ffw_norm.weight', 'blk.2.attn_q_norm.weight']) expect(names).toContain(n);
    expect(names).not.toContain('output.weight');
    // convert_hf_to_gguf's Gemma3Model writes every norm gain as 1 + w.
    const t = h.parsed.tensorInfos.find((x) => x.name === 'blk.0.ffn_norm.weight')!;
    const stored = new Float32Array(file.slice(h.dataOffset + Number(t.offset), h.dataOffset + Number(t.offset) + 4 * spec.hiddenSize).buffer);
    expect([...stored]).toEqual([...m.tensors.get('model.layers.0.pre_feedforward_layernorm.weight')!.data].map((v) => Math.fround(v + 1)));
    const tokens = (f: MemoryFiles) => greedyTokens(f);
    const f16Folder = folder({ ...spec, dtype: 'F16' }).files;
    expect(await tokens(new MemoryFiles('g.gguf', new Map([['g.gguf', file]])))).toEqual(await tokens(new MemoryFiles('gemma3', f16Folder)));
  });

  it('a Gemma 2 model (its soft-caps and window in the metadata) reads back to the greedy tokens of its safetensors folder', async () => {
    const spec: SyntheticSpec = { ...TINY_CONFIGS.gemma2, queryPreAttnScalar: undefined, vocabSize: 160 };
    const file = concat(modelToGguf(folder(spec).files, 'f16', 'gemma2 test'));
    const h = await readGgufHeader(new MemoryFiles('g.gguf', new Map([['g.gguf', file]])), 'g.gguf');
    expect(h.parsed.metadata).toMatchObject({ 'general.architecture': 'gemma2', 'gemma2.attn_logit_softcapping': 2, 'gemma2.final_logit_softcapping': 9, 'gemma2.attention.sliding_window': 4 });
    const tokens = (f: MemoryFiles) => greedyTokens(f);
    expect(await tokens(new MemoryFiles('g.gguf', new Map([['g.gguf', file]])))).toEqual(await tokens(new MemoryFiles('gemma2', folder({ ...spec, dtype: 'F16' }).files)));
    expect(() => modelToGguf(folder({ ...spec, numLayers: 2, queryPreAttnScalar: 50 }).files, 'f16', 'x')).toThrow(/This Gemma 2 model scales its queries by 0\.141/);
  });

  it("a Phi-3.5 with LongRoPE (its factor tensors, original context and attention factor) reads back to its folder's tokens, within the original context and past it", async () => {
    const spec: SyntheticSpec = { ...TINY_CONFIGS.phi3LongRope, vocabSize: 160 };
    const file = concat(modelToGguf(folder(spec).files, 'f16', 'phi3.5 test'));
    const h = await readGgufHeader(new MemoryFiles('p.gguf', new Map([['p.gguf', file]])), 'p.gguf');
    expect(h.parsed.tensorInfos.slice(0, 2).map((t) => t.name)).toEqual(['rope_factors_long.weight', 'rope_factors_short.weight']);
    expect(h.parsed.metadata).toMatchObject({ 'phi3.rope.scaling.original_context_length': 128, 'phi3.context_length': 512 });
    expect((h.parsed.metadata as Record<string, number>)['phi3.rope.scaling.attn_factor']).toBeCloseTo(Math.sqrt(1 + Math.log(4) / Math.log(128)), 6);
    for (const contextLength of [96, 256]) {
      const tokens = (f: MemoryFiles) => greedyTokens(f, contextLength);
      expect(await tokens(new MemoryFiles('p.gguf', new Map([['p.gguf', file]])))).toEqual(await tokens(new MemoryFiles('phi3', folder({ ...spec, dtype: 'F16' }).files)));
    }
  });

  it("refuses a Gemma 3 whose layer pattern, local RoPE base or query scale are not what llama.cpp's gemma3 fixes", () => {
    expect(() => modelToGguf(folder(TINY_CONFIGS.gemma3).files, 'f16', 'x')).toThrow(/has global layers other than every 6th; llama\.cpp's gemma3 fixes it/);
    const six = { ...TINY_CONFIGS.gemma3, numLayers: 6, layerTypes: undefined };
    expect(() => modelToGguf(folder({ ...six, queryPreAttnScalar: undefined, ropeLocalBaseFreq: 500 }).files, 'f16', 'x')).toThrow(/rotates its sliding layers with base 500, not 10000/);
    expect(() => modelToGguf(folder(six).files, 'f16', 'x')).toThrow(/scales its queries by 0\.25, not 0\.316/);
  });

  it("refuses a SmolLM3 whose layers without RoPE are not llama.cpp's every 4th (no GGUF key could say so)", () => {
    const { files } = folder({ ...TINY_CONFIGS.smollm3NoRope });
    expect(() => modelToGguf(files, 'f16', 'x')).toThrow(/skips RoPE on layers 1, 2; llama\.cpp's smollm3 skips it on every 4th layer/);
  });

  it('runs in the engine with no side files: the tokenizer and chat template come from its metadata', async () => {
    const { files } = folder({ ...llama256, vocabSize: 160 });
    const file = concat(modelToGguf(files, 'q8_0', 'test-model'));
    const engine = new Engine(await testGpu(), { contextLength: 64, slots: 1 });
    const info = await engine.load(new MemoryFiles('m.gguf', new Map([['m.gguf', file]])));
    expect(info.hasChatTemplate).toBe(true);
    expect(engine.runner.model.tokenizer!.renderChat([{ role: 'user', content: 'hi' }])).toBe('<s>user: hi</s><s>assistant:');
    expect(engine.runner.model.tokenizer!.decode([3, 4, 5], false)).toBe('abc');
    const r = await engine.generate({ prompt: 'hello', format: 'chat', maxNewTokens: 3, sampling: { temperature: 0 } });
    expect(r.tokens.length).toBeGreaterThan(0);
    engine.unload();
  });
});

describe('the tokenizer in an exported file', () => {
  it("is the built-in model's: the same ids for the same text, the same text for the same ids", async () => {
    const demo = new URL('../../public/models/demo/', import.meta.url).pathname;
    const src = new NodeDirFiles('demo', demo);
    const files = new Map(await Promise.all(['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'].map(async (n) => [n, (await src.bytes(n))!] as [string, Uint8Array])));
    const engine = new Engine(await testGpu(), { contextLength: 64, slots: 1 });
    await engine.load(src);
    const original = engine.runner.model.tokenizer!;
    const texts = ['Give three tips for staying healthy.', '  two leading spaces, tabs\tand\nnew lines', '中文回答：保持健康的三个建议。', 'emoji 🙂 and ünïcödé'];
    const want = texts.map((t) => original.encode(t, false));
    const chat = original.renderChat([{ role: 'user', content: 'Hi' }]);
    engine.unload();
    await engine.load(new MemoryFiles('m.gguf', new Map([['m.gguf', concat(modelToGguf(files, 'q8_0', 'built-in'))]])));
    const exported = engine.runner.model.tokenizer!;
    expect(texts.map((t) => exported.encode(t, false))).toEqual(want);
    expect(want.map((ids) => exported.decode(ids, false))).toEqual(want.map((ids) => original.decode(ids, false)));
    expect(exported.renderChat([{ role: 'user', content: 'Hi' }])).toBe(chat);
    engine.unload();
  });
});

describe('GGUF export of an adapter', () => {
  it.each([['llama (q/k rows permuted)', llama256], ['qwen2', qwenTied]] as const)('%s: loads back as the same adapter', async (_, spec) => {
    const { files } = folder(spec);
    const cfg = normalizeConfig(JSON.parse(new TextDecoder().decode(files.get('config.json'))));
    const adapter = syntheticAdapter(cfg, { name: 'a', seed: 3, config: { r: 4, lora_alpha: 8, target_modules: 'all-linear' } });
    const gguf = concat(adapterToGguf(adapter, cfg));
    const back = await loadPeftAdapter(new MemoryFiles('a.gguf', new Map([['a.gguf', gguf]])), 'a', cfg);
    expect([...back.modules.keys()].sort()).toEqual([...adapter.modules.keys()].sort());
    for (const [k, p] of adapter.modules) {
      const q = back.modules.get(k)!;
      expect(q.scaling).toBe(p.scaling);
      expect([...q.a]).toEqual([...p.a]);
      expect([...q.b]).toEqual([...p.b]);
    }
  });
});
