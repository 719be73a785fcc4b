// A GGUF model (written as llama.cpp's converter writes it: renamed tensors, q/k rows permuted) runs exactly like its
// safetensors twin at F32, closely at Q8_0, and through the engine with a tokenizer.json beside it.

import { describe, expect, it } from 'vitest';
import { Engine } from '../../src/lib/engine.js';
import { MemoryFiles } from '../../src/lib/model-files.js';
import { LoraBank } from '../../src/lib/lora/bank.js';
import { loadWeights } from '../../src/lib/model/load.js';
import { LoadedModel } from '../../src/lib/model/loaded.js';
import { ModelRunner, type Candidates } from '../../src/lib/model/runner.js';
import { syntheticModel, type SyntheticSpec } from '../../src/lib/model/synthetic.js';
import type { Precision } from '../../src/lib/quant/precision.js';
import { testGpu } from '../helpers/gpu.js';
import { ggufFromSynthetic, randomBlocks, T } from '../helpers/gguf-writer.js';
import { dequantize, type GgmlType } from '../../src/lib/formats/gguf-tensors.js';
import { Rng } from '../../src/lib/util/rng.js';
import { TINY_CONFIGS } from '../helpers/models.js';
import { tinyTokenizerJson } from '../helpers/tiny-tokenizer.js';

const prompt = [5, 17, 2, 40, 11, 63, 8];

/** The last position's candidates after prefilling `prompt`, for a model loaded from `files`. */
async function lastCandidates(files: MemoryFiles, precision: Precision = 'auto', start = 0): Promise<Candidates> {
  const gpu = await testGpu();
  const loaded = await loadWeights(gpu, files, undefined, undefined, undefined, precision);
  const model = new LoadedModel(gpu, loaded.config, loaded.weights, new LoraBank(gpu, loaded.config));
  const runner = new ModelRunner(model, { slots: 1, contextLength: 128, maxRows: 16 });
  const [c] = await runner.forward({ tokens: prompt, slots: prompt.map(() => 0), positions: prompt.map((_, i) => start + i), seqs: 1, lastStride: prompt.length, lastOffset: prompt.length - 1 });
  runner.destroy();
  model.destroy();
  return c;
}

const safetensorsOf = (m: ReturnType<typeof syntheticModel>) => new MemoryFiles('st', new Map([['config.json', new TextEncoder().encode(JSON.stringify(m.config))], ['model.safetensors', m.safetensors]]));

describe('GGUF models on the GPU', () => {
  const llama: SyntheticSpec = { hiddenSize: 64, intermediateSize: 96, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 16, vocabSize: 128, tied: false, seed: 9 };
  it.each([
    ['llama, untied, GQA', llama], ['qwen2, biases, tied', { ...TINY_CONFIGS.qwen2BiasTied, hiddenSize: 40, numHeads: 4, headDim: 10, intermediateSize: 64 }],
    ['qwen3, q/k norms, head_dim apart from the hidden size', TINY_CONFIGS.qwen3QkNorm],
    // llama.cpp's smollm3: no key for the layers without RoPE, every 4th by default (here layer 3 of 4).
    ['smollm3, layer 3 without RoPE', { ...TINY_CONFIGS.smollm3NoRope, numLayers: 4, noRopeLayers: undefined }],
    ['phi3, fused attn_qkv and ffn_up, a sliding window', TINY_CONFIGS.phi3Fused],
    // llama.cpp's gemma3: every 6th layer global, the local base 10^4, queries over sqrt(head_dim): what it fixes.
    ['gemma3, sandwich norms with the 1 added, 5 sliding layers and a global one with linear RoPE scaling',
      { ...TINY_CONFIGS.gemma3, numLayers: 6, layerTypes: undefined, queryPreAttnScalar: undefined }],
    ['gemma2, soft-capped scores and logits, alternating layers', { ...TINY_CONFIGS.gemma2, queryPreAttnScalar: undefined }],
    // LongRoPE: rope_factors_short and rope_factors_long, the original context and the attention factor (values exact
    // in f32, as the file keeps them).
    ['phi3, LongRoPE factors and attention factor', { ...TINY_CONFIGS.phi3LongRope, ropeScaling: {
      type: 'longrope', short_factor: [1, 1.125, 1.25, 1.75, 2.25, 3.125], long_factor: [2, 3, 4, 6, 9, 12], original_max_position_embeddings: 128,
      attention_factor: Math.fround(Math.sqrt(1 + Math.log(4) / Math.log(128))),
    } }],
  ] as const)('%s at F32: the same logits as the safetensors twin', async (_, spec) => {
    const m = syntheticModel(spec);
    const ref = await lastCandidates(safetensorsOf(m));
    const got = await lastCandidates(new MemoryFiles('m.gguf', new Map([['m.gguf', ggufFromSynthetic(m)]])));
    expect([...got.ids]).toEqual([...ref.ids]);
    expect([...got.logits]).toEqual([...ref.logits]);
    expect(got.lse).toBe(ref.lse);
  });

  // What llama.cpp's usual files hold: a Q4_K_M or Q5_K_M of a model whose rows are not a multiple of 256 (SmolLM2's
  // 576) is mostly Q5_0 / Q5_1; Q3_K_M and Q2_K mix in the K types; IQ4_XS falls back to IQ4_NL.
  it.each([
    ['Q5_0, Q5_1 and IQ4_NL (rows of 32s)', 96, 160, 32, [T.Q5_0, T.Q5_1, T.IQ4_NL]],
    ['Q2_K, Q3_K, Q5_K and IQ4_XS (rows of 256s)', 256, 512, 256, [T.Q2_K, T.Q3_K, T.Q5_K, T.IQ4_XS]],
  ] as const)('%s: loaded at f32, exactly the logits of the same weights written as F32', async (_, D, F, per, types) => {
    const m = syntheticModel({ hiddenSize: D, intermediateSize: F, numLayers: 1, numHeads: 4, numKvHeads: 2, headDim: D / 4, vocabSize: 96, tied: false, seed: 5 });
    const rng = new Rng(77);
    const made = new Map<string, { type: number; data: Uint8Array }>();
    let next = 0;
    const quantized = ggufFromSynthetic(m, 'F32', [], (name, dims) => {
      if (!name.startsWith('blk.') || dims.length !== 2) return null;
      const type = types[next++ % types.length];
      const q = { type, data: randomBlocks(type, (dims[0] * dims[1]) / per, () => rng.next()) };
      made.set(name, q);
      return q;
    });
    expect(new Set([...made.values()].map((q) => q.type))).toEqual(new Set(types));
    const twin = ggufFromSynthetic(m, 'F32', [], (name, dims) => {
      const q = made.get(name);
      return q ? { type: T.F32, data: new Uint8Array(dequantize(q.type as GgmlType, q.data, dims[0] * dims[1]).buffer) } : null;
    });
    const ref = await lastCandidates(new MemoryFiles('twin.gguf', new Map([['twin.gguf', twin]])), 'f32');
    const got = await lastCandidates(new MemoryFiles('q.gguf', new Map([['q.gguf', quantized]])), 'f32');
    expect([...got.ids]).toEqual([...ref.ids]);
    expect([...got.logits]).toEqual([...ref.logits]);
    expect(got.lse).toBe(ref.lse);
    // Requantized to q8 while it streams in: it loads and answers.
    const q8 = await lastCandidates(new MemoryFiles('q.gguf', new Map([['q.gguf', quantized]])), 'q8');
    expect(Number.isFinite(q8.lse)).toBe(true);
  });

  it('block_count under the layers the weights hold, or an extra blk.99 tensor, is refused instead of running another model', async () => {
    const m = syntheticModel(llama);
    const fewer = ggufFromSynthetic({ ...m, config: { ...m.config, num_hidden_layers: 1 } });
    await expect(lastCandidates(new MemoryFiles('m.gguf', new Map([['m.gguf', fewer]])))).rejects.toThrow(/tensor "blk\.1\.[a-z_]+\.weight" is on layer 1, but llama.block_count says 1 layers, so it would be ignored/);
    const tensors = new Map(m.tensors);
    tensors.set('model.layers.99.self_attn.v_proj.weight', m.tensors.get('model.layers.0.self_attn.v_proj.weight')!);
    const extra = ggufFromSynthetic({ ...m, tensors });
    await expect(lastCandidates(new MemoryFiles('m.gguf', new Map([['m.gguf', extra]])))).rejects.toThrow(/tensor "blk\.99\.attn_v\.weight" is on layer 99, but llama.block_count says 2 layers/);
  });

  it('q rows that are not whole heads (metadata key_length against the weights) are refused in words', async () => {
    const m = syntheticModel(llama);
    // key_length 24 over q weights of 4 heads of 16 rows: 64 rows are not whole heads of 24.
    const file = ggufFromSynthetic(m);
    const key = new TextEncoder().encode('llama.attention.key_length');
    const at = file.findIndex((_, i) => key.every((b, j) => file[i + j] === b)) + key.length + 4; // past the key and its type id
    new DataView(file.buffer).setUint32(at, 24, true);
    await expect(lastCandidates(new MemoryFiles('m.gguf', new Map([['m.gguf', file]])))).rejects.toThrow(/tensor blk\.0\.attn_[qk]\.weight has \d+ rows, not a whole number of heads of 24 rows/);
  });

  it('a type it does not read is named, with the file types that load', async () => {
    const m = syntheticModel(llama);
    const file = ggufFromSynthetic(m, 'F32', [], (name) => (name === 'blk.0.attn_k.weight' ? { type: 16, data: new Uint8Array(66 * 8) } : null));
    await expect(lastCandidates(new MemoryFiles('m.gguf', new Map([['m.gguf', file]])))).rejects.toThrow(/tensor blk\.0\.attn_k\.weight is IQ2_XXS, a type the engine does not read .* Files of these types load: .*Q5_K_M\/S, Q5_0, Q5_1, Q4_K_M\/S, Q4_0, Q3_K_S\/M\/L, Q2_K, IQ4_NL and IQ4_XS/);
  });

  it('Llama 3.1-style RoPE scaling (rope_freqs): the logits of the safetensors twin, to f32 rounding of the factors', async () => {
    const m = syntheticModel(TINY_CONFIGS.llama3Scaling);
    // Positions past the original context of 64, where the scaled low frequencies matter.
    const ref = await lastCandidates(safetensorsOf(m), 'auto', 90);
    const got = await lastCandidates(new MemoryFiles('m.gguf', new Map([['m.gguf', ggufFromSynthetic(m)]])), 'auto', 90);
    expect([...got.ids.slice(0, 5)]).toEqual([...ref.ids.slice(0, 5)]);
    expect(Math.max(...[...got.logits].map((v, i) => Math.abs(v - ref.logits[i])))).toBeLessThan(1e-4);
  });

  it('at Q8_0: close logits (and the q/k permutation is undone: a model with it left in would not be)', async () => {
    const m = syntheticModel(llama);
    const ref = await lastCandidates(safetensorsOf(m));
    const got = await lastCandidates(new MemoryFiles('m.gguf', new Map([['m.gguf', ggufFromSynthetic(m, 'Q8_0')]])));
    const err = Math.max(...[...got.logits].map((v, i) => Math.abs(v - ref.logits[i])));
    console.log(`GGUF Q8_0 vs F32 safetensors: top-1 ${got.ids[0] === ref.ids[0] ? 'same' : 'differs'}, max |logit error| over the top 64 ${err.toExponential(2)}, lse ${Math.abs(got.lse - ref.lse).toExponential(2)}`);
    expect(got.ids[0]).toBe(ref.ids[0]);
    expect(Math.abs(got.lse - ref.lse)).toBeLessThan(0.02);
    // Kept as q4 on the GPU (a Q8_0 file requantized while it streams in).
    const q4 = await lastCandidates(new MemoryFiles('m.gguf', new Map([['m.gguf', ggufFromSynthetic(m, 'Q8_0')]])), 'q4');
    expect(Math.abs(q4.lse - ref.lse)).toBeLessThan(0.2);
  });

  it('loads in the engine without a tokenizer.json: the tokenizer and chat template come from the GGUF metadata', async () => {
    const json = JSON.parse(new TextDecoder().decode(tinyTokenizerJson(160)));
    const tokens: string[] = [];
    for (const [t, i] of Object.entries(json.model.vocab as Record<string, number>)) tokens[i] = t;
    for (const a of json.added_tokens) tokens[a.id] = a.content;
    const m = syntheticModel({ ...llama, vocabSize: 160 });
    const template = "{% for m in messages %}<s>{{ m['role'] }}: {{ m['content'] }}</s>{% endfor %}{% if add_generation_prompt %}<s>assistant:{% endif %}";
    const file = ggufFromSynthetic(m, 'F32', [
      ['tokenizer.ggml.model', 'str', 'gpt2'], ['tokenizer.ggml.pre', 'str', 'gpt2'], ['tokenizer.ggml.tokens', 'str[]', tokens],
      ['tokenizer.ggml.merges', 'str[]', json.model.merges], ['tokenizer.ggml.eos_token_id', 'u32', tokens.indexOf('</s>')], ['tokenizer.chat_template', 'str', template],
    ]);
    const engine = new Engine(await testGpu(), { contextLength: 64, slots: 1 });
    const info = await engine.load(new MemoryFiles('m.gguf', new Map([['m.gguf', file]])));
    expect(info.hasChatTemplate).toBe(true);
    expect(engine.runner.model.tokenizer!.renderChat([{ role: 'user', content: 'hi' }])).toBe('<s>user: hi</s><s>assistant:');
    const r = await engine.generate({ prompt: 'hello', format: 'chat', maxNewTokens: 3, sampling: { temperature: 0 } });
    expect(r.tokens.length).toBeGreaterThan(0);
    engine.unload();
  });

  it('loads in the engine with the tokenizer.json beside it and generates', async () => {
    const m = syntheticModel({ ...llama, vocabSize: 160 });
    const tokenizer = tinyTokenizerJson(160);
    const engine = new Engine(await testGpu(), { contextLength: 64, slots: 1 });
    const info = await engine.load(new MemoryFiles('m.gguf', new Map([['m.gguf', ggufFromSynthetic(m, 'Q8_0')], ['tokenizer.json', tokenizer]])));
    expect(info.architecture).toBe('LlamaForCausalLM');
    const r = await engine.generate({ promptIds: [1, 2, 3], maxNewTokens: 4, sampling: { temperature: 0 } });
    expect(r.tokens).toHaveLength(4);
    engine.unload();
  });
});
