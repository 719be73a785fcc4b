// Generation on the GPU: greedy tokens equal the float64 reference's, chunked prefill, the f16 weight path, tensors
// split across bindings, seeded sampling, stop conditions, context overflow and cancellation.

import { describe, expect, it } from 'vitest';
import { ContextOverflowError, InvalidArgumentError } from '../../src/lib/errors.js';
import { f16ToF32, f32ToF16 } from '../../src/lib/formats/dtype.js';
import { generate, generateColumns, type GenerateOptions } from '../../src/lib/model/generate.js';
import { expectClose } from '../helpers/compare.js';
import { MemoryFiles } from '../../src/lib/model-files.js';
import { readSafetensors, writeSafetensors } from '../../src/lib/formats/safetensors.js';
import { syntheticModel } from '../../src/lib/model/synthetic.js';
import { loadWeights } from '../../src/lib/model/load.js';
import { ModelRunner } from '../../src/lib/model/runner.js';
import { LoadedModel } from '../../src/lib/model/loaded.js';
import { LoraBank } from '../../src/lib/lora/bank.js';
import { testGpu } from '../helpers/gpu.js';
import { TINY_CONFIGS, tinyRunner } from '../helpers/models.js';
import { referenceForward, referenceGreedy } from '../reference/llama.js';

const greedy: GenerateOptions = { temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1, seed: 0, maxNewTokens: 32, eosTokenIds: [] };
const prompt = [7, 3, 11, 2, 5];

async function run(runner: Awaited<ReturnType<typeof tinyRunner>>['runner'], opts: GenerateOptions, p = prompt) {
  const tokens: number[] = [];
  const t = await generate(runner, p, opts, ({ token }) => { tokens.push(token); });
  return { tokens, t };
}

describe.each(Object.entries(TINY_CONFIGS))('%s', (_name, spec) => {
  it('32 greedy tokens are identical to the float64 reference', async () => {
    const { model, config, runner } = await tinyRunner(await testGpu(), spec);
    const { tokens, t } = await run(runner, greedy);
    expect(tokens).toEqual(referenceGreedy(config, model.tensors, prompt, 32));
    expect(t.generatedTokens).toBe(32);
    expect(t.stopReason).toBe('length');
  });
});

describe("a sliding layer's KV cache is a ring of window + rows per call - 1", () => {
  // Mistral (window 4, both layers) and Gemma 3 (window 4 on layers 0 and 2, layer 1 global): 3 rows a call makes
  // rings of 6 rows, which 11 prompt tokens and 40 new ones wrap around many times.
  it.each([['mistral', [6, 6]], ['gemma3', [6, 96, 6]]] as const)('%s: rows %j, and the float64 reference tokens', async (key, rows) => {
    const spec = TINY_CONFIGS[key];
    const { model, config, runner } = await tinyRunner(await testGpu(), spec, { slots: 2, contextLength: 96, maxRows: 3 });
    expect(runner.kvRows).toEqual(rows);
    expect(runner.kvCacheBytes).toBe(rows.reduce((t, r) => t + 2 * 2 * config.numKvHeads * r * config.headDim * 4, 0));
    const long = [9, 8, 7, 6, 5, 4, 3, 2, 1, 10, 11];
    const { tokens } = await run(runner, { ...greedy, maxNewTokens: 40 }, long);
    expect(tokens).toEqual(referenceGreedy(config, model.tensors, long, 40));
    // A cache as long as the context (no ring) gives the same tokens.
    const full = (await tinyRunner(await testGpu(), spec, { slots: 2, contextLength: 96, maxRows: 96 })).runner;
    expect(full.kvRows.every((r) => r === 96)).toBe(true);
    expect((await run(full, { ...greedy, maxNewTokens: 40 }, long)).tokens).toEqual(tokens);
    // Two base columns share one prefill, the ring rows copied to the second slot: both decode the same tokens.
    const cols: number[][] = [[], []];
    await generateColumns(runner, long, [{ loraSlot: 0, strength: 1 }, { loraSlot: 0, strength: 1 }], { ...greedy, maxNewTokens: 40 }, (e) => { cols[e.column].push(e.token); });
    expect(cols).toEqual([tokens, tokens]);
  });
});

describe('Gemma 3 with a vision tower (Gemma3ForConditionalGeneration, the 4B and larger)', () => {
  it("runs its text model: text_config over Gemma3TextConfig's defaults, language_model.model.* tensors, the vision tower skipped", async () => {
    const spec = TINY_CONFIGS.gemma3;
    const m = syntheticModel(spec);
    const { architectures: _a, ...text } = m.config;
    // The 4B's text_config leaves rope_theta, rms_norm_eps and the local base to the defaults (1e6, 1e-6, 1e4).
    const textConfig = { ...text, model_type: 'gemma3_text', rope_theta: undefined, rms_norm_eps: undefined, rope_local_base_freq: undefined };
    const config = { architectures: ['Gemma3ForConditionalGeneration'], model_type: 'gemma3', text_config: textConfig, vision_config: { hidden_size: 8 }, eos_token_id: 2 };
    const parsed = readSafetensors(m.safetensors);
    const tensors = parsed.header.tensors.map((t, i) => ({
      name: (i % 2 ? 'language_model.' : 'model.language_model.') + t.name.replace(/^model\./, i % 2 ? 'model.' : ''),
      dtype: t.dtype, shape: t.shape, data: parsed.data.get(t.name)!,
    }));
    tensors.push({ name: 'vision_tower.vision_model.embeddings.patch_embedding.weight', dtype: 'F32', shape: [2, 3], data: new Uint8Array(24) });
    tensors.push({ name: 'multi_modal_projector.mm_input_projection_weight', dtype: 'F32', shape: [3, 2], data: new Uint8Array(24) });
    const files = new MemoryFiles('gemma-3-4b-like', new Map([['config.json', new TextEncoder().encode(JSON.stringify(config))], ['model.safetensors', writeSafetensors(tensors)]]));
    const gpu = await testGpu();
    const loaded = await loadWeights(gpu, files, undefined, undefined, undefined, 'f32');
    expect(loaded.config).toMatchObject({ architecture: 'Gemma3ForCausalLM', visionTower: true, ropeTheta: 1e6, rmsNormEps: 1e-6, localRopeTheta: 10000 });
    const runner = new ModelRunner(new LoadedModel(gpu, loaded.config, loaded.weights, new LoraBank(gpu, loaded.config)), { slots: 1, contextLength: 64, maxRows: 8 });
    const { tokens } = await run(runner, greedy);
    const cfg = { ...loaded.config }; // the reference reads the same normalized facts (rope_theta 1e6 etc.)
    const ref = referenceGreedy(cfg, m.tensors, prompt, 32);
    expect(tokens).toEqual(ref);
  });
});

describe("Phi-3.5's LongRoPE past its original context", () => {
  it('a context of 160 positions over an original 128 rotates by the long factors: the float64 reference tokens', async () => {
    const spec = TINY_CONFIGS.phi3LongRope;
    const { model, config, runner } = await tinyRunner(await testGpu(), spec, { slots: 1, contextLength: 160, maxRows: 8 });
    const { tokens } = await run(runner, greedy);
    const long = referenceGreedy(config, model.tensors, prompt, 32, 160);
    expect(tokens).toEqual(long);
    // The factors chosen matter here: the short ones decode otherwise.
    expect(referenceGreedy(config, model.tensors, prompt, 32)).not.toEqual(long);
  });
});

describe('generation', () => {
  // Every architecture: the chunks before the last only fill the KV cache, up to the last layer's KV write (sliding
  // windows, Gemma's local and global layers, SmolLM3's layers without RoPE, Phi-3's fused projections).
  it.each(Object.keys(TINY_CONFIGS) as (keyof typeof TINY_CONFIGS)[])('chunked prefill (3 rows per forward) gives the same tokens as one-shot prefill: %s', async (name) => {
    const gpu = await testGpu();
    const long = [9, 8, 7, 6, 5, 4, 3, 2, 1, 10, 11];
    const a = await run((await tinyRunner(gpu, TINY_CONFIGS[name], { slots: 1, contextLength: 64, maxRows: 3 })).runner, { ...greedy, maxNewTokens: 12 }, long);
    const b = await run((await tinyRunner(gpu, TINY_CONFIGS[name], { slots: 1, contextLength: 64, maxRows: 32 })).runner, { ...greedy, maxNewTokens: 12 }, long);
    expect(a.tokens).toEqual(b.tokens);
  });

  it('a prompt longer than a forward fills the KV cache chunk by chunk without reading anything back until its last chunk', async () => {
    const gpu = await testGpu();
    const long = [9, 8, 7, 6, 5, 4, 3, 2, 1, 10, 11];
    const { runner, config, model } = await tinyRunner(gpu, TINY_CONFIGS.llamaGqaUntied, { slots: 1, contextLength: 64, maxRows: 3 });
    const before = { ...runner.stats };
    const { tokens } = await run(runner, { ...greedy, maxNewTokens: 1 }, long);
    // 11 rows in chunks of 3: three KV-only fills, then one forward for the last chunk's logits.
    expect(runner.stats.fills - before.fills).toBe(3);
    expect(runner.stats.forwards - before.forwards).toBe(1);
    expect(tokens).toEqual(referenceGreedy(config, model.tensors, long, 1));
  });

  it('f16 weights match the reference run on f16-rounded weights', async () => {
    const gpu = await testGpu({ f16: true });
    expect(gpu.f16).toBe(true);
    const { model, config, runner } = await tinyRunner(gpu, TINY_CONFIGS.llamaGqaUntied);
    // Matrices are stored as f16; norms and biases stay f32.
    const rounded = new Map([...model.tensors].map(([n, t]) => [n, {
      shape: t.shape, data: t.shape.length === 2 ? Float32Array.from(t.data, (v) => f16ToF32(f32ToF16(v))) : t.data,
    }]));
    await runner.forward({ tokens: prompt, slots: prompt.map(() => 0), positions: prompt.map((_, i) => i), seqs: 1, lastStride: 5, lastOffset: 4 });
    const ref = referenceForward(config, rounded, prompt)[4];
    expectClose(await runner.readLogits(1), ref, 1e-5 * Math.max(...Array.from(ref, Math.abs)), 0, 'f16 logits');
    const { tokens } = await run(runner, greedy);
    expect(tokens).toEqual(referenceGreedy(config, rounded, prompt, 32));
  });

  it('matrices larger than the storage-binding limit are split into shards and still compute the same logits', async () => {
    // A 2 KiB cap splits the 1500 x 37 embedding and lm_head into ~30 row shards each (and every other matrix too).
    const gpu = await testGpu({ f16: false, maxBinding: 2048 });
    const { model, config, runner } = await tinyRunner(gpu, TINY_CONFIGS.llamaGqaUntied);
    expect(runner.weights.embed.shards.length).toBeGreaterThan(20);
    expect(runner.weights.lmHead.shards.length).toBeGreaterThan(20);
    await runner.forward({ tokens: prompt, slots: prompt.map(() => 0), positions: prompt.map((_, i) => i), seqs: 1, lastStride: 5, lastOffset: 4 });
    const ref = referenceForward(config, model.tensors, prompt)[4];
    expectClose(await runner.readLogits(1), ref, 1e-5 * Math.max(...Array.from(ref, Math.abs)), 0, 'sharded logits');
  });

  it('greedy decoding takes the best token by a reduction: the same token, logit and log-sum-exp as the sort, with a repetition penalty', async () => {
    const { runner } = await tinyRunner(await testGpu(), TINY_CONFIGS.llamaGqaUntied);
    const step = { tokens: prompt, slots: prompt.map(() => 0), positions: prompt.map((_, i) => i), seqs: 1, lastStride: 5, lastOffset: 4 };
    runner.resetSeen(0, prompt);
    const candidates = async (temperature: number, n?: 1 | 64) => {
      runner.setSampling(1.3, temperature, n);
      const [c] = await runner.forward(step);
      return { c, dispatches: runner.dispatchesPerForward };
    };
    const sorted = await candidates(1, 64);
    const best = await candidates(0); // temperature 0: one candidate
    expect(best.c.ids[0]).toBe(sorted.c.ids[0]);
    expect(best.c.logits[0]).toBe(sorted.c.logits[0]);
    expectClose([best.c.lse], [sorted.c.lse], 1e-6, 1e-6, 'log-sum-exp');
    expect([...best.c.ids.slice(1)].every((id) => id === -1)).toBe(true);
    expect(best.dispatches).toBe(sorted.dispatches);
    // A sampled generation after a greedy one gets its candidates again.
    const again = await candidates(0.7);
    expect(again.c.ids[1]).toBe(sorted.c.ids[1]);
    // Greedy generation through it still equals the reference (above) and decodes as many tokens.
    const g = await run(runner, { ...greedy, repetitionPenalty: 1.3, maxNewTokens: 8 });
    expect(g.tokens).toHaveLength(8);
  });

  it('the same seed and settings give the same tokens; another seed gives others', async () => {
    const { runner } = await tinyRunner(await testGpu(), TINY_CONFIGS.llamaGqaUntied);
    const s: GenerateOptions = { temperature: 1.5, topK: 50, topP: 0.95, repetitionPenalty: 1.2, seed: 42, maxNewTokens: 24, eosTokenIds: [] };
    const a = await run(runner, s);
    const b = await run(runner, s);
    const c = await run(runner, { ...s, seed: 43 });
    expect(a.tokens).toEqual(b.tokens);
    expect(c.tokens).not.toEqual(a.tokens);
    expect(new Set(a.tokens).size).toBeGreaterThan(3);
  });

  it('stops on an EOS id and reports it', async () => {
    const { model, config, runner } = await tinyRunner(await testGpu(), TINY_CONFIGS.llama3Scaling);
    const ref = referenceGreedy(config, model.tensors, prompt, 6);
    const { tokens, t } = await run(runner, { ...greedy, eosTokenIds: [ref[3]] });
    expect(tokens).toEqual(ref.slice(0, ref.indexOf(ref[3]) + 1));
    expect(t.stopReason).toBe('eos');
  });

  it('refuses a prompt plus max tokens beyond the context with a typed error that says what to do', async () => {
    const { runner } = await tinyRunner(await testGpu(), TINY_CONFIGS.llama3Scaling, { slots: 1, contextLength: 16, maxRows: 8 });
    const err = await generate(runner, prompt, { ...greedy, maxNewTokens: 12 }, () => {}).catch((e) => e);
    expect(err).toBeInstanceOf(ContextOverflowError);
    expect(err.message).toMatch(/at most 11 new tokens/);
    // A prompt longer than the whole context is told how much to cut, not to ask for 0 new tokens.
    const long = Array.from({ length: 20 }, (_, i) => 3 + (i % 40));
    const over = await generate(runner, long, { ...greedy, maxNewTokens: 4 }, () => {}).catch((e) => e);
    expect(over.message).toMatch(/The prompt alone does not fit: shorten it by at least 5 tokens\./);
    expect(over.message).not.toMatch(/at most 0/);
    await expect(generate(runner, prompt, { ...greedy, topP: 0 }, () => {})).rejects.toThrow(InvalidArgumentError);
  });

  it('cancels mid-generation', async () => {
    const { runner } = await tinyRunner(await testGpu(), TINY_CONFIGS.llama3Scaling);
    const ac = new AbortController();
    const tokens: number[] = [];
    const t = await generate(runner, prompt, { ...greedy, maxNewTokens: 50 }, ({ index, token }) => {
      tokens.push(token);
      if (index === 4) ac.abort();
    }, ac.signal);
    expect(t.stopReason).toBe('aborted');
    expect(tokens.length).toBe(5);
  });
});

describe('engine text generation', () => {
  it('stops at a stop string, cutting it from the text', async () => {
    const { Engine } = await import('../../src/lib/engine.js');
    const { NodeDirFiles } = await import('../../src/lib/hub/node-files.js');
    const engine = new Engine(await testGpu(), { contextLength: 128, slots: 1 });
    await engine.load(new NodeDirFiles('demo', new URL('../../public/models/demo/', import.meta.url).pathname));
    const req = { prompt: 'Tell me a story.', maxNewTokens: 24, sampling: { temperature: 0 } };
    const full = await engine.generate(req);
    const stop = full.text.slice(Math.floor(full.text.length / 2), Math.floor(full.text.length / 2) + 3);
    const pieces: string[] = [];
    const cut = await engine.generate({ ...req, stopStrings: [stop] }, (t) => pieces.push(t));
    expect(cut.stopReason).toBe('stop');
    expect(cut.text).toBe(full.text.slice(0, full.text.indexOf(stop)));
    expect(pieces.join('')).toBe(cut.text);
    expect(cut.tokens.length).toBeLessThan(full.tokens.length);
  });
});

describe('device loss', () => {
  it('a lost device surfaces as a typed DeviceLostError that says what to do', async () => {
    const { DeviceLostError } = await import('../../src/lib/errors.js');
    const { createNodeGpu } = await import('../../src/lib/gpu/node.js');
    const gpu = await createNodeGpu({ forceF32: true });
    const { runner } = await tinyRunner(gpu, TINY_CONFIGS.llama3Scaling);
    gpu.device.destroy(); // as a driver reset would, without going through Gpu.destroy()
    await new Promise((r) => setTimeout(r, 50));
    const err = await runner.forward({ tokens: [1], slots: [0], positions: [0], seqs: 1, lastStride: 1, lastOffset: 0 }).catch((e) => e);
    expect(err).toBeInstanceOf(DeviceLostError);
    expect(err.message).toMatch(/load the model again/);
  });
});

describe('cancel before the first token', () => {
  it('an abort during the prefill ends with no tokens and stopReason aborted, not an error', async () => {
    const { runner } = await tinyRunner(await testGpu(), TINY_CONFIGS.llama3Scaling, { slots: 1, contextLength: 64, maxRows: 2 });
    const ac = new AbortController();
    ac.abort();
    const tokens: number[] = [];
    const t = await generate(runner, [1, 2, 3, 4, 5, 6], greedy, ({ token }) => { tokens.push(token); }, ac.signal);
    expect(t.stopReason).toBe('aborted');
    expect(tokens).toEqual([]);
  });
});
