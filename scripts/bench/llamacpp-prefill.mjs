#!/usr/bin/env node
// The bench's peer (npm run bench -- --only prefill --peer): llama.cpp's prefill on a GGUF file through node-llama-cpp's
// prebuilt binaries (nothing built, nothing downloaded), on Vulkan when the driver has it. Prints one JSON line:
//   {backend, device, prefillMs: {"32": [ms, ...], "256": [...]}}
// Each figure: a prompt of that many token ids evaluated from an empty sequence until the first token is sampled.
//   node scripts/bench/llamacpp-prefill.mjs --model M.gguf --lengths 32,256 --runs 3 [--gpu vulkan|false]

import { getLlama, LlamaModel } from 'node-llama-cpp';

const arg = (name, fallback) => { const i = process.argv.indexOf(`--${name}`); return i >= 0 ? process.argv[i + 1] : fallback; };
const modelPath = arg('model');
const lengths = arg('lengths', '32,256').split(',').map(Number);
const runs = Number(arg('runs', '3'));
const gpu = arg('gpu', 'vulkan') === 'false' ? false : 'vulkan';
// ggml-vulkan skips devices of CPU type (lavapipe, SwiftShader) unless they are named.
if (gpu && process.env.GGML_VK_VISIBLE_DEVICES == null) process.env.GGML_VK_VISIBLE_DEVICES = '0';
// loadModel() tokenizes a test text as a sanity check; this peer never turns text into tokens.
LlamaModel.prototype.getWarnings = function () { return this._fileInsights.getWarnings(this._modelPath); };

const llama = await getLlama({ gpu, build: 'never', skipDownload: true, usePrebuiltBinaries: true, progressLogs: false, logLevel: 'error' });
const model = await llama.loadModel({ modelPath, gpuLayers: gpu ? 'max' : 0 });
const longest = Math.max(...lengths);
// The KV cache in f32, as our engine keeps it; one batch holds the longest prompt.
const context = await model.createContext({ contextSize: longest + 16, batchSize: longest, sequences: 1, experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32' });
const seq = context.getSequence();
const prompt = (n) => Array.from({ length: n }, (_, i) => 100 + ((i * 37) % 1000));
async function prefill(n) {
  await seq.clearHistory();
  const t0 = performance.now();
  for await (const _ of seq.evaluate(prompt(n), { temperature: 0, yieldEogToken: true })) break;
  return performance.now() - t0;
}
const out = {};
for (const n of lengths) await prefill(n); // warm-up: llama.cpp compiles its Vulkan pipelines on first use
for (let r = 0; r < runs; r++) for (const n of lengths) (out[n] ??= []).push(Math.round((await prefill(n)) * 100) / 100);
const backend = gpu ? 'llama.cpp-vulkan' : 'llama.cpp-cpu';
console.log(JSON.stringify({ backend, device: gpu ? (await llama.getGpuDeviceNames()).join(', ') : 'cpu', prefillMs: out }));
await context.dispose();
await model.dispose();
await llama.dispose();
