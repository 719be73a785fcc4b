// llama.cpp runs what LoRA Lab writes: the built-in model and its demo-zh adapter exported as GGUF, loaded by
// llama.cpp (node-llama-cpp's prebuilt CPU build: nothing compiled, nothing downloaded) and decoded greedily from
// token ids beside our engine reading the same file. F16 merged model, and F16 base + GGUF LoRA adapter: the same
// tokens. Q8_0 and Q4_K_M: how many agree is printed (llama.cpp quantizes activations to q8 for those weights, so a
// step with a small margin may flip), and the first tokens must.

import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getLlama, LlamaModel, type Llama, type Token } from 'node-llama-cpp';
import { Engine } from '../../src/lib/engine.js';
import { adapterToGguf, modelToGguf, type GgufExportType } from '../../src/lib/formats/gguf-export.js';
import { NodeDirFiles } from '../../src/lib/hub/node-files.js';
import { loadPeftAdapter } from '../../src/lib/lora/adapter-files.js';
import { MemoryFiles } from '../../src/lib/model-files.js';
import { normalizeConfig } from '../../src/lib/model/config.js';
import { syntheticModel, type SyntheticSpec } from '../../src/lib/model/synthetic.js';
import { testGpu } from '../helpers/gpu.js';

const demo = new URL('../../public/models/demo/', import.meta.url).pathname;
const demoZh = new URL('../../public/adapters/demo-zh/', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'lora-lab-llamacpp-'));
const N = 24;

const concat = (chunks: Uint8Array[]) => Buffer.concat(chunks.map((c) => Buffer.from(c.buffer, c.byteOffset, c.byteLength)));
const folder = async (path: string) => {
  const f = new NodeDirFiles('demo', path);
  return new Map(await Promise.all(['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'].map(async (n) => [n, (await f.bytes(n))!] as [string, Uint8Array])));
};

let llama: Llama;
beforeAll(async () => {
  // node-llama-cpp's loadModel() tokenizes a test text as a sanity check; these tests never turn text into tokens.
  (LlamaModel.prototype as unknown as { getWarnings: () => string[] }).getWarnings = function (this: { _fileInsights: { getWarnings(p: string): string[] }; _modelPath: string }) { return this._fileInsights.getWarnings(this._modelPath); };
  llama = await getLlama({ gpu: false, build: 'never', skipDownload: true, usePrebuiltBinaries: true, progressLogs: false, logLevel: 'error' as never, maxThreads: 1 });
});
afterAll(async () => { await llama?.dispose(); });

/** llama.cpp's greedy tokens after `prompt` (EOS included, fed back like any token). */
async function llamaCpp(modelPath: string, prompt: number[], lora?: string): Promise<number[]> {
  const model = await llama.loadModel({ modelPath, gpuLayers: 0 });
  // The KV cache in f32, as our engine keeps it (llama.cpp's default f16 cache rounds keys and values).
  const context = await model.createContext({ contextSize: 256, sequences: 1, threads: 1, experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32', ...(lora ? { lora: { adapters: [{ filePath: lora, scale: 1 }] } } : {}) });
  const seq = context.getSequence();
  const out: number[] = [];
  for await (const t of seq.evaluate(prompt as Token[], { temperature: 0, yieldEogToken: true })) {
    out.push(t as number);
    if (out.length >= N) break;
  }
  await context.dispose();
  await model.dispose();
  return out;
}

/** Each exported file in a folder of its own (a folder with one .gguf is a model for the engine). */
function put(name: string, chunks: Uint8Array[]): void {
  mkdirSync(join(dir, name));
  writeFileSync(join(dir, name, `${name}.gguf`), concat(chunks));
}
const path = (name: string) => join(dir, name, `${name}.gguf`);

/** Our engine's greedy tokens, reading `name` (at f32: the file's weights, dequantized), through demo-zh if asked. */
async function ours(name: string, prompt: number[], adapter?: string): Promise<number[]> {
  const engine = new Engine(await testGpu(), { contextLength: 256, slots: 1 });
  await engine.load(new NodeDirFiles(name, join(dir, name)), undefined, undefined, { precision: 'f32' });
  if (adapter) await engine.loadAdapter(new NodeDirFiles('zh', demoZh), 'demo-zh');
  // Plain greedy decoding, as llama.cpp's (no repetition penalty).
  const r = await engine.generate({ promptIds: prompt, maxNewTokens: N, sampling: { temperature: 0, repetitionPenalty: 1 }, adapter: adapter ? 'demo-zh' : null });
  engine.unload();
  // Generation stops at EOS; llama.cpp's run goes on: compare what both produced.
  return r.tokens;
}

/** Our engine's greedy tokens from a model folder in memory (at f32). */
async function oursFromFiles(files: Map<string, Uint8Array>, prompt: number[]): Promise<number[]> {
  const engine = new Engine(await testGpu(), { contextLength: 256, slots: 1 });
  await engine.load(new MemoryFiles('folder', files), undefined, undefined, { precision: 'f32' });
  const r = await engine.generate({ promptIds: prompt, maxNewTokens: N, sampling: { temperature: 0, repetitionPenalty: 1 } });
  engine.unload();
  return r.tokens;
}

describe('llama.cpp runs the GGUF files LoRA Lab exports', () => {
  let prompt: number[];
  beforeAll(async () => {
    const engine = new Engine(await testGpu(), { contextLength: 256, slots: 1 });
    await engine.load(new NodeDirFiles('demo', demo));
    prompt = engine.promptIds({ prompt: 'Give three tips for staying healthy.', format: 'chat' });
    // The merged model: the built-in model with demo-zh folded in, exported as LoRA Lab's Export merged does.
    await engine.loadAdapter(new NodeDirFiles('zh', demoZh), 'demo-zh');
    const merged = await engine.exportMerged('demo-zh');
    put('merged-f16', modelToGguf(merged, 'f16', 'demo-zh merged'));
    engine.unload();
    const base = await folder(demo);
    for (const t of ['f16', 'q8_0', 'q4_k_m'] as GgufExportType[]) put(`base-${t}`, modelToGguf(base, t, 'built-in'));
    const cfg = normalizeConfig(JSON.parse(new TextDecoder().decode(base.get('config.json'))));
    put('demo-zh', (adapterToGguf(await loadPeftAdapter(new NodeDirFiles('zh', demoZh), 'demo-zh', cfg), cfg)));
  });

  it('an F16 merged model: the same greedy tokens as our engine', async () => {
    const [theirs, mine] = [await llamaCpp(path('merged-f16'), prompt), await ours('merged-f16', prompt)];
    console.log(`F16 merged: llama.cpp ${theirs.join(',')}\n            ours      ${mine.join(',')}`);
    expect(theirs.slice(0, mine.length)).toEqual(mine);
    expect(mine.length).toBeGreaterThan(8);
  });

  it('an F16 base with the exported GGUF LoRA adapter (--lora): the same greedy tokens as our engine with the adapter', async () => {
    const theirs = await llamaCpp(path('base-f16'), prompt, path('demo-zh'));
    const mine = await ours('base-f16', prompt, 'demo-zh');
    console.log(`F16 + LoRA: llama.cpp ${theirs.join(',')}\n            ours      ${mine.join(',')}`);
    expect(theirs.slice(0, mine.length)).toEqual(mine);
    // And the adapter matters: without it llama.cpp says something else.
    expect(await llamaCpp(path('base-f16'), prompt)).not.toEqual(theirs);
  });

  it.each([
    ['Qwen3 (q/k norms, head_dim 32 of 4 heads over a hidden size of 64)', { architecture: 'Qwen3ForCausalLM', hiddenSize: 64, intermediateSize: 160, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 32, seed: 41 }],
    ['SmolLM3 (layer 3 of 4 without RoPE)', { architecture: 'SmolLM3ForCausalLM', hiddenSize: 64, intermediateSize: 160, numLayers: 4, numHeads: 4, numKvHeads: 2, headDim: 16, seed: 42 }],
    // Gemma: windows of 5 positions; Gemma 3 with an lm_head of its own, Gemma 2 tied (llama.cpp's gemma2 always is).
    ['Gemma 3 (5 sliding layers, then a global one)', { architecture: 'Gemma3ForCausalLM', hiddenSize: 64, intermediateSize: 160, numLayers: 6, numHeads: 4, numKvHeads: 2, headDim: 16, seed: 43, slidingWindow: 5 }],
    ['Gemma 2 (soft-capped scores and logits, alternating layers)', { architecture: 'Gemma2ForCausalLM', hiddenSize: 64, intermediateSize: 160, numLayers: 4, numHeads: 4, numKvHeads: 2, headDim: 16, seed: 45, slidingWindow: 5, attnSoftcap: 3, finalSoftcap: 8, tied: true }],
  ] as [string, Omit<SyntheticSpec, 'vocabSize' | 'tied'> & { tied?: boolean }][])('%s at F16: the same greedy tokens as llama.cpp', async (what, shape) => {
    // Random weights over the built-in model's tokenizer (8192 pieces), exported under llama.cpp's architecture name.
    const demoFiles = await folder(demo);
    const demoCfg = JSON.parse(new TextDecoder().decode(demoFiles.get('config.json')));
    const m = syntheticModel({ tied: false, ...shape, vocabSize: 8192, dtype: 'F16' });
    const files = new Map([...demoFiles].filter(([n]) => n.startsWith('tokenizer')));
    files.set('config.json', new TextEncoder().encode(JSON.stringify({ ...m.config, bos_token_id: demoCfg.bos_token_id, eos_token_id: demoCfg.eos_token_id })));
    files.set('model.safetensors', m.safetensors);
    const name = shape.architecture!.toLowerCase();
    put(name, modelToGguf(files, 'f16', what));
    // A random model with tied embeddings falls into repeating one token after a few steps (its input and output rows
    // are one): it is checked from 6 prompts, each answer varied at its start.
    const base = [5, 17, 2, 40, 11, 63, 8];
    const prompts = shape.tied ? Array.from({ length: 6 }, (_, i) => base.map((t) => (t * (i + 3) + 101 * i) % 8192)) : [base];
    const seen: number[] = [];
    for (const ids of prompts) {
      // Our engine reads its own export as it reads the safetensors folder.
      const fromFolder = await oursFromFiles(files, ids);
      const [theirs, mine] = [await llamaCpp(path(name), ids), await ours(name, ids)];
      console.log(`${shape.architecture} F16: llama.cpp ${theirs.join(',')}\n${' '.repeat(shape.architecture!.length)}      ours      ${mine.join(',')}`);
      expect(mine).toEqual(fromFolder);
      expect(theirs.slice(0, mine.length)).toEqual(mine);
      seen.push(...mine);
    }
    expect(new Set(seen).size).toBeGreaterThan(8); // varied answers, not one token repeated
  });

  it.each(['q8_0', 'q4_k_m'])('%s: llama.cpp and our engine agree on the tokens (count printed)', async (t) => {
    const theirs = await llamaCpp(path(`base-${t}`), prompt);
    const mine = await ours(`base-${t}`, prompt);
    let same = 0;
    while (same < mine.length && theirs[same] === mine[same]) same++;
    console.log(`${t}: llama.cpp and LoRA Lab agree on the first ${same} of ${mine.length} greedy tokens`);
    expect(same).toBeGreaterThanOrEqual(Math.min(8, mine.length));
  });
});
