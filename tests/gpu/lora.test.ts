// LoRA on the GPU, unmerged (y = xW + s (x A^T) B^T), against the float64 reference run on explicitly merged weights;
// batched decoding of the base and several adapters against decoding each column alone.

import { describe, expect, it } from 'vitest';
import { resolveSource, type ResolveEnv } from '../../src/lib/hub/source.js';
import { zipBlob } from '../../src/lib/store/archive.js';
import { generateColumns, type GenerateOptions } from '../../src/lib/model/generate.js';
import { syntheticAdapter } from '../../src/lib/lora/synthetic.js';
import { AdapterError } from '../../src/lib/errors.js';
import { expectClose } from '../helpers/compare.js';
import { testGpu } from '../helpers/gpu.js';
import { mergeForReference } from '../helpers/lora.js';
import { TINY_CONFIGS, tinyRunner } from '../helpers/models.js';
import { referenceForward } from '../reference/llama.js';

// Unmerged LoRA against merged float64 weights: 3e-5 x max|ref| (measured at most 5.7e-6, Mistral decode with an
// adapter at strength 1: the adapter's delta is summed in f32 at a different point than the merged reference).
const REL = 3e-5;
const prompt = [4, 8, 15, 16, 23, 42, 7, 3, 9, 12, 30, 1];
const maxAbs = (a: ArrayLike<number>) => Math.max(...Array.from(a, Math.abs));
const greedy: GenerateOptions = { temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1, seed: 0, maxNewTokens: 16, eosTokenIds: [] };

const ADAPTERS: [string, Record<string, unknown>][] = [
  ['every target module, rsLoRA, rank and alpha patterns', {
    r: 4, lora_alpha: 8, target_modules: 'all-linear', use_rslora: true,
    rank_pattern: { 'down_proj': 2, 'layers\\.1\\.self_attn\\.k_proj': 3 }, alpha_pattern: { 'o_proj': 5 },
  }],
  ['q and v only (the alpaca-lora default)', { r: 8, lora_alpha: 16, target_modules: ['q_proj', 'v_proj'] }],
  ['a regex target on some layers', { r: 3, lora_alpha: 6, target_modules: '.*\\.(k_proj|gate_proj|up_proj)', layers_to_transform: [1] }],
];

describe.each(Object.entries(TINY_CONFIGS))('%s', (_name, spec) => {
  it.each(ADAPTERS)('%s: prefill and cached decode match the merged-weight reference at strengths 1 and 0.5', async (_a, config) => {
    const gpu = await testGpu();
    const { model, config: cfg, runner } = await tinyRunner(gpu, spec);
    const adapter = syntheticAdapter(cfg, { name: 'a', seed: 5, config });
    const slot = runner.lora.add(adapter);
    for (const strength of [1, 0.5]) {
      const ref = referenceForward(cfg, mergeForReference(model.tensors, adapter, strength), prompt);
      const T = prompt.length;
      const base = { slots: prompt.map(() => 0), positions: prompt.map((_, i) => i), loraSlots: prompt.map(() => slot), loraScales: prompt.map(() => strength) };
      await runner.forward({ tokens: prompt, ...base, seqs: 1, lastStride: T, lastOffset: T - 1 });
      expectClose(await runner.readLogits(1), ref[T - 1], REL * maxAbs(ref[T - 1]), 0, `prefill logits, strength ${strength}`);
      for (let t = 0; t < 4; t++) {
        await runner.forward({ tokens: [prompt[t]], slots: [1], positions: [t], loraSlots: [slot], loraScales: [strength], seqs: 1, lastStride: 1, lastOffset: 0 });
        expectClose(await runner.readLogits(1), ref[t], REL * maxAbs(ref[t]), 0, `decode logits at ${t}, strength ${strength}`);
      }
    }
    // The adapter changes the output (the test would not notice a LoRA path that adds nothing otherwise).
    const plain = referenceForward(cfg, model.tensors, prompt)[prompt.length - 1];
    const merged = referenceForward(cfg, mergeForReference(model.tensors, adapter), prompt)[prompt.length - 1];
    expect(Math.max(...plain.map((v, i) => Math.abs(v - merged[i])))).toBeGreaterThan(1e-2 * maxAbs(plain));
  });
});

describe('batched multi-adapter decoding', () => {
  it('base + 3 adapters decoded as one batch give exactly the tokens of each column decoded alone', async () => {
    const gpu = await testGpu();
    const spec = TINY_CONFIGS.llamaGqaUntied;
    const { config: cfg, runner } = await tinyRunner(gpu, spec, { slots: 4, contextLength: 64, maxRows: 32 });
    const slots = ADAPTERS.map(([_n, c], i) => runner.lora.add(syntheticAdapter(cfg, { name: `a${i}`, seed: 10 + i, config: c })));
    const columns = [{ loraSlot: 0, strength: 1 }, { loraSlot: slots[0], strength: 1 }, { loraSlot: slots[1], strength: 0.5 }, { loraSlot: slots[2], strength: 1.5 }];
    const batched: number[][] = columns.map(() => []);
    const before = { ...runner.stats };
    await generateColumns(runner, prompt, columns, greedy, ({ column, token }) => { batched[column].push(token); });
    const batchedForwards = runner.stats.forwards - before.forwards;
    const batchedFills = runner.stats.fills - before.fills;
    for (let c = 0; c < columns.length; c++) {
      const alone: number[] = [];
      await generateColumns(runner, prompt, [columns[c]], greedy, ({ token }) => { alone.push(token); });
      expect(batched[c]).toEqual(alone);
    }
    // Prefill: the 4 distinct columns share each forward, 8 rows each (32 / 4), so 12 prompt tokens take 2: a KV-only
    // fill and the forward of the last chunk; then 15 decode steps for all columns together.
    expect(batchedFills).toBe(1);
    expect(batchedForwards).toBe(1 + 15);
    expect(new Set(batched.map((t) => t.join())).size).toBe(4);
  });

  it('batched logits equal single-column logits within tolerance', async () => {
    const gpu = await testGpu();
    const { config: cfg, runner } = await tinyRunner(gpu, TINY_CONFIGS.qwen2BiasTied, { slots: 4, contextLength: 64, maxRows: 40 });
    const a = runner.lora.add(syntheticAdapter(cfg, { name: 'a', seed: 1, config: ADAPTERS[0][1] }));
    const b = runner.lora.add(syntheticAdapter(cfg, { name: 'b', seed: 2, config: ADAPTERS[1][1] }));
    const rows = [{ lora: 0, s: 1 }, { lora: a, s: 1 }, { lora: b, s: 0.7 }];
    const T = prompt.length;
    // Prefill all three sequences in one forward (rows grouped by sequence), then compare each with a lone run.
    await runner.forward({
      tokens: rows.flatMap(() => prompt), slots: rows.flatMap((_, i) => prompt.map(() => i)), positions: rows.flatMap(() => prompt.map((_, i) => i)),
      loraSlots: rows.flatMap((r) => prompt.map(() => r.lora)), loraScales: rows.flatMap((r) => prompt.map(() => r.s)),
      seqs: 3, lastStride: T, lastOffset: T - 1,
    });
    const together = await runner.readLogits(3);
    const V = cfg.vocabSize;
    for (let i = 0; i < rows.length; i++) {
      await runner.forward({ tokens: prompt, slots: prompt.map(() => 3), positions: prompt.map((_, j) => j), loraSlots: prompt.map(() => rows[i].lora), loraScales: prompt.map(() => rows[i].s), seqs: 1, lastStride: T, lastOffset: T - 1 });
      const alone = await runner.readLogits(1);
      expectClose(together.subarray(i * V, (i + 1) * V), alone, 1e-5 * maxAbs(alone), 1e-5, `row ${i}`);
    }
  });

  it('refuses an adapter that does not fit the base, naming the tensor and both shapes', async () => {
    const gpu = await testGpu();
    const { runner } = await tinyRunner(gpu, TINY_CONFIGS.llamaGqaUntied);
    const other = (await tinyRunner(gpu, TINY_CONFIGS.qwen2BiasTied)).config;
    const wrong = syntheticAdapter(other, { name: 'wrong', seed: 1, config: { r: 2, target_modules: ['q_proj'] } });
    expect(() => runner.lora.add(wrong)).toThrow(AdapterError);
    expect(() => runner.lora.add(wrong)).toThrow(/layers\.0\.self_attn\.q_proj\.lora_A\.weight is \[2, 45\].*must be \[2, 37\]/);
    expect(runner.lora.slots).toBe(1);
  });
});

describe.each([['qwen3 (its q/k norms kept)', 'qwen3QkNorm'], ['phi3 (qkv_proj and gate_up_proj written fused)', 'phi3Fused'], ['smollm3', 'smollm3NoRope'], ['gemma3 (its four norms written as w of 1 + w)', 'gemma3']])('merged export of %s', (_what, key) => {
  it('loads back as a base and gives the tokens of the unmerged adapter', async () => {
    const { Engine } = await import('../../src/lib/engine.js');
    const { MemoryFiles } = await import('../../src/lib/model-files.js');
    const { modelFiles } = await import('../helpers/models.js');
    const { tinyTokenizerJson } = await import('../helpers/tiny-tokenizer.js');
    const { readSafetensors } = await import('../../src/lib/formats/safetensors.js');
    const gpu = await testGpu();
    const spec = TINY_CONFIGS[key];
    const { files } = modelFiles(spec);
    const withTok = new MemoryFiles('tiny', new Map([
      ['config.json', (await files.bytes('config.json'))!], ['model.safetensors', (await files.bytes('model.safetensors'))!], ['tokenizer.json', tinyTokenizerJson(spec.vocabSize)],
    ]));
    const engine = new Engine(gpu, { contextLength: 64, slots: 2 });
    await engine.load(withTok);
    engine.addAdapter(syntheticAdapter(engine.runner.cfg, { name: 'a', seed: 9, config: ADAPTERS[0][1] }));
    const req = { promptIds: prompt, maxNewTokens: 10, sampling: { temperature: 0 } };
    const viaAdapter = await engine.generate({ ...req, adapter: 'a', adapterScale: 0.8 });
    const merged = await engine.exportMerged('a', 0.8, 'F32');
    // The checkpoint names the family's own tensors: the base's names, no more, no fewer.
    const names = (b: Uint8Array) => readSafetensors(b).header.tensors.map((t) => t.name).sort();
    expect(names(merged.get('model.safetensors')!)).toEqual(names((await files.bytes('model.safetensors'))!));
    const other = new Engine(gpu, { contextLength: 64, slots: 1 });
    await other.load(new MemoryFiles('merged', merged));
    expect((await other.generate(req)).tokens).toEqual(viaAdapter.tokens);
    other.unload();
    engine.unload();
  });
});

describe('merge and export', () => {
  it('a merged full model loaded as a base reproduces the unmerged adapter; the adapter round-trips through PEFT files', async () => {
    const { Engine } = await import('../../src/lib/engine.js');
    const { MemoryFiles } = await import('../../src/lib/model-files.js');
    const { readPeftAdapter } = await import('../../src/lib/lora/peft.js');
    const { modelFiles } = await import('../helpers/models.js');
    const gpu = await testGpu();
    const { files } = modelFiles(TINY_CONFIGS.qwen2BiasTied);
    const { tinyTokenizerJson } = await import('../helpers/tiny-tokenizer.js');
    // The tokenizer must fit the tiny model's vocabulary (the engine refuses one with ids past vocab_size).
    const tokenizer = tinyTokenizerJson(TINY_CONFIGS.qwen2BiasTied.vocabSize);
    const withTok = new MemoryFiles('tiny', new Map([
      ['config.json', (await files.bytes('config.json'))!], ['model.safetensors', (await files.bytes('model.safetensors'))!], ['tokenizer.json', tokenizer],
    ]));
    const engine = new Engine(gpu, { contextLength: 64, slots: 2 });
    await engine.load(withTok);
    const cfg = engine.runner.cfg;
    engine.addAdapter(syntheticAdapter(cfg, { name: 'a', seed: 9, config: ADAPTERS[0][1] }));
    const req = { promptIds: prompt, maxNewTokens: 10, sampling: { temperature: 0 } };
    const viaAdapter = await engine.generate({ ...req, adapter: 'a', adapterScale: 0.8 });

    const merged = await engine.exportMerged('a', 0.8);
    expect([...merged.keys()].sort()).toEqual(['config.json', 'model.safetensors', 'tokenizer.json']);
    const other = new Engine(gpu, { contextLength: 64, slots: 1 });
    await other.load(new MemoryFiles('merged', merged));
    const viaMerged = await other.generate(req);
    expect(viaMerged.tokens).toEqual(viaAdapter.tokens);
    // The same files as the .zip the app downloads (one folder inside): dropped on the model panel, read in place.
    const zip = await zipBlob(new Map([...merged].map(([n, b]) => [`a-merged/${n}`, b])));
    const fromZip = new Engine(gpu, { contextLength: 64, slots: 1 });
    await fromZip.load(resolveSource({ kind: 'files', files: [new File([zip], 'a-merged.zip')] }, {} as ResolveEnv));
    expect((await fromZip.generate(req)).tokens).toEqual(viaAdapter.tokens);
    fromZip.unload();
    // A .zip with a file missing says which, like a folder would.
    const partial = await zipBlob(new Map([...merged].filter(([n]) => n !== 'tokenizer.json').map(([n, b]) => [`a-merged/${n}`, b])));
    await expect(new Engine(gpu, { contextLength: 64, slots: 1 }).load(resolveSource({ kind: 'files', files: [new File([partial], 'p.zip')] }, {} as ResolveEnv)))
      .rejects.toThrow(/p\.zip has no tokenizer\.json/);
    const T = prompt.length;
    const step = { tokens: prompt, slots: prompt.map(() => 0), positions: prompt.map((_, i) => i), seqs: 1, lastStride: T, lastOffset: T - 1 };
    await other.runner.forward(step);
    const mergedLogits = await other.runner.readLogits(1);
    await engine.runner.forward({ ...step, loraSlots: prompt.map(() => 1), loraScales: prompt.map(() => 0.8) });
    const unmerged = await engine.runner.readLogits(1);
    expectClose(mergedLogits, unmerged, 1e-5 * maxAbs(unmerged), 0, 'merged vs unmerged logits'); // measured 1.1e-6 x max

    // PEFT export -> import -> same outputs.
    const { config, safetensors } = engine.exportAdapter('a');
    engine.removeAdapter('a');
    engine.addAdapter(readPeftAdapter('a', JSON.parse(config), safetensors));
    expect((await engine.generate({ ...req, adapter: 'a', adapterScale: 0.8 })).tokens).toEqual(viaAdapter.tokens);
  });
});

describe("Phi-3's fused LoRA targets", () => {
  it('an adapter on qkv_proj and gate_up_proj (as PEFT saves one for Phi-3) gives the logits of its float64 merge; trained-style adapters export fused and load back', async () => {
    const { Engine } = await import('../../src/lib/engine.js');
    const { MemoryFiles } = await import('../../src/lib/model-files.js');
    const { readPeftAdapter } = await import('../../src/lib/lora/peft.js');
    const { writeSafetensors, readSafetensors } = await import('../../src/lib/formats/safetensors.js');
    const { Rng } = await import('../../src/lib/util/rng.js');
    const { modelFiles } = await import('../helpers/models.js');
    const { tinyTokenizerJson } = await import('../helpers/tiny-tokenizer.js');
    const gpu = await testGpu();
    const spec = TINY_CONFIGS.phi3Fused;
    const { model, files } = modelFiles(spec);
    const engine = new Engine(gpu, { contextLength: 64, slots: 2 });
    await engine.load(new MemoryFiles('phi3', new Map([
      ['config.json', (await files.bytes('config.json'))!], ['model.safetensors', (await files.bytes('model.safetensors'))!], ['tokenizer.json', tinyTokenizerJson(spec.vocabSize)],
    ])));
    const cfg = engine.runner.cfg;
    const D = cfg.hiddenSize, F = cfg.intermediateSize, qkvRows = (cfg.numHeads + 2 * cfg.numKvHeads) * cfg.headDim, r = 3, alpha = 5;
    // A PEFT adapter of Phi-3: qkv_proj, gate_up_proj and down_proj on both layers; rank 3, alpha 5.
    const rng = new Rng(77);
    const rand = (n: number, s: number) => Float32Array.from({ length: n }, () => s * rng.normal());
    const halves: [string, number, number][] = [0, 1].flatMap((l) => [[`${l}.self_attn.qkv_proj`, qkvRows, D], [`${l}.mlp.gate_up_proj`, 2 * F, D], [`${l}.mlp.down_proj`, D, F]] as [string, number, number][]);
    const weights = new Map(halves.map(([n, out, inF]) => [n, { a: rand(r * inF, 0.3), b: rand(out * r, 0.3), out, inF }]));
    const st = writeSafetensors([...weights].flatMap(([n, w]) => [
      { name: `base_model.model.model.layers.${n}.lora_A.weight`, dtype: 'F32' as const, shape: [r, w.inF], data: new Uint8Array(w.a.buffer) },
      { name: `base_model.model.model.layers.${n}.lora_B.weight`, dtype: 'F32' as const, shape: [w.out, r], data: new Uint8Array(w.b.buffer) },
    ]), { format: 'pt' });
    const config = { peft_type: 'LORA', r, lora_alpha: alpha, target_modules: ['qkv_proj', 'gate_up_proj', 'down_proj'], bias: 'none', task_type: 'CAUSAL_LM' };
    expect(() => readPeftAdapter('phi', config, st)).toThrow(/adapts Phi-3's fused qkv_proj: load its base model first/);
    engine.addAdapter(readPeftAdapter('phi', config, st, undefined, cfg));

    // The float64 merge, written from Phi-3's layout: W += (alpha / r) B A on the fused matrices, then split as
    // Phi3Attention (q | k | v rows) and Phi3MLP (gate | up rows) split them.
    const merged = new Map(model.tensors);
    const addTo = (name: string, rowsFrom: number, rows: number, w: { a: Float32Array; b: Float32Array; inF: number }) => {
      const t = merged.get(name)!;
      const data = Float64Array.from(t.data);
      for (let o = 0; o < rows; o++) for (let i = 0; i < w.inF; i++) {
        let acc = 0;
        for (let j = 0; j < r; j++) acc += w.b[(rowsFrom + o) * r + j] * w.a[j * w.inF + i];
        data[o * w.inF + i] += (alpha / r) * acc;
      }
      merged.set(name, { shape: t.shape, data: data as unknown as Float32Array });
    };
    const H = cfg.numHeads * cfg.headDim, KV = cfg.numKvHeads * cfg.headDim;
    for (const l of [0, 1]) {
      const p = `model.layers.${l}.`;
      addTo(`${p}self_attn.q_proj.weight`, 0, H, weights.get(`${l}.self_attn.qkv_proj`)!);
      addTo(`${p}self_attn.k_proj.weight`, H, KV, weights.get(`${l}.self_attn.qkv_proj`)!);
      addTo(`${p}self_attn.v_proj.weight`, H + KV, KV, weights.get(`${l}.self_attn.qkv_proj`)!);
      addTo(`${p}mlp.gate_proj.weight`, 0, F, weights.get(`${l}.mlp.gate_up_proj`)!);
      addTo(`${p}mlp.up_proj.weight`, F, F, weights.get(`${l}.mlp.gate_up_proj`)!);
      addTo(`${p}mlp.down_proj.weight`, 0, D, weights.get(`${l}.mlp.down_proj`)!);
    }
    const T = prompt.length;
    const step = { tokens: prompt, slots: prompt.map(() => 0), positions: prompt.map((_, i) => i), seqs: 1, lastStride: T, lastOffset: T - 1, loraSlots: prompt.map(() => 1), loraScales: prompt.map(() => 1) };
    await engine.runner.forward(step);
    const got = await engine.runner.readLogits(1);
    const ref = referenceForward(cfg, merged, prompt)[T - 1];
    expectClose(got, ref, REL * maxAbs(ref), 0, 'Phi-3 fused LoRA vs float64 merge');

    // Exported from the shelf: the fused names again (PEFT on Phi-3 reads them), and the same answers when read back.
    const req = { promptIds: prompt, maxNewTokens: 10, sampling: { temperature: 0 } };
    const before = await engine.generate({ ...req, adapter: 'phi' });
    const out = engine.exportAdapter('phi');
    const names = readSafetensors(out.safetensors).header.tensors.map((t) => t.name);
    expect(names.some((n) => /qkv_proj\.lora_A/.test(n)) && names.some((n) => /gate_up_proj\.lora_B/.test(n))).toBe(true);
    expect(names.filter((n) => /\.(q_proj|k_proj|v_proj|gate_proj|up_proj)\./.test(n))).toEqual([]);
    expect(JSON.parse(out.config).target_modules.sort()).toEqual(['down_proj', 'gate_up_proj', 'qkv_proj']);
    engine.removeAdapter('phi');
    engine.addAdapter(readPeftAdapter('phi', JSON.parse(out.config), out.safetensors, undefined, cfg));
    expect((await engine.generate({ ...req, adapter: 'phi' })).tokens).toEqual(before.tokens);
    // An adapter trained here (one module per part, each its own A) exports fused too, rank summed, the same answers.
    engine.addAdapter(syntheticAdapter(cfg, { name: 'parts', seed: 5, config: { r: 2, lora_alpha: 3, target_modules: 'all-linear' } }));
    const parts = await engine.generate({ ...req, adapter: 'parts' });
    const fusedOut = engine.exportAdapter('parts');
    engine.removeAdapter('parts');
    engine.addAdapter(readPeftAdapter('parts', JSON.parse(fusedOut.config), fusedOut.safetensors, undefined, cfg));
    expect((await engine.generate({ ...req, adapter: 'parts' })).tokens).toEqual(parts.tokens);
    engine.unload();
  });
});
