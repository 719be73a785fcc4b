// web-llm against LoRA Lab's engine in the same headless Chromium (SwiftShader WebGPU on machines without a GPU), on
// the same weights: the random weights make-test-model.ts writes for a web-llm model library, and the same tensors
// as a Hugging Face folder for our engine (MLC's fused c_attn and gate_up_proj split back into q/k/v and gate/up;
// q4f32_1's 4-bit groups dequantized to F32, which our engine quantizes again at load with --precision q4).
// Each engine runs in a page of its own, one after the other: load, then one greedy completion of a raw prompt with
// a fixed number of new tokens; prefill and decode speed come from each engine's own counters. Figures only.
//
//   WEBLLM_LIB=<Qwen2-0.5B-Instruct-q4f32_1-ctx4k_cs1k-webgpu.wasm> npm run webllm-compare [-- --tokens 8]
//     [-- --only web-llm|lora-lab] [-- --precision f32,q4]
//
// The libraries are the ones web-llm 0.2.79 downloads for its prebuilt Qwen2-0.5B-Instruct-q4f32_1-MLC and -q0f32-MLC,
// from mlc-ai/binary-mlc-llm-libs (web-llm-models/v0_2_48/). Our engine runs at each precision listed: by default f32
// (the same numbers web-llm computes: q4f32_1 dequantizes to F32 exactly) and q4 for q4f32_1, f32 for q0f32. Both
// decode greedily without a repetition penalty (web-llm's config says 1). Minutes on a software GPU.
// Status (2026-12-02, SwiftShader in Debian's Chromium 150): q4f32_1 runs both halves. With q0f32 (1.9 GB of F32
// weights, a 544 MB embedding) web-llm ends in its runtime's exit(1) right after the download, with no message, in its
// worker and on the page alike. VERBOSE=1 prints the page's console and the files served.

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { createServer as viteServer } from 'vite';
import { writeSafetensors, type TensorToWrite } from '../../src/lib/formats/safetensors.js';
import { chromium } from 'playwright-core';
import { chromiumArgs } from '../../vite.config.js';
import { libraryMetadata, writeTestModel } from './make-test-model.js';
import { inside, serveFiles } from './static-server.js';
import type { RunOptions, RunResult } from './compare-page.js';
import type { Precision } from '../../src/lib/quant/precision.js';

const args = process.argv.slice(2);
const opt = (name: string) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : undefined; };
const maxTokens = Number(opt('--tokens') ?? 8);
const engines = (opt('--only') ? [opt('--only')] : ['lora-lab', 'web-llm']) as RunOptions['engine'][];
const lib = process.env.WEBLLM_LIB;
if (!lib || !existsSync(lib)) {
  console.error('Set WEBLLM_LIB to a qwen2 q4f32_1 or q0f32 web-llm model library (.wasm), e.g. Qwen2-0.5B-Instruct-q4f32_1-ctx4k_cs1k-webgpu.wasm from mlc-ai/binary-mlc-llm-libs (web-llm-models/v0_2_48/).');
  process.exit(2);
}
const meta = libraryMetadata(new Uint8Array(readFileSync(lib)));
if (meta.model_type !== 'qwen2' || !['q0f32', 'q4f32_1'].includes(meta.quantization)) {
  console.error(`This comparison maps a qwen2 q0f32 or q4f32_1 library onto Hugging Face tensors; ${basename(lib)} is ${meta.model_type} ${meta.quantization}.`);
  process.exit(2);
}
// Our engine runs once per precision asked for (--precision f32,q4), web-llm once.
const precisions = (opt('--precision') ?? (meta.quantization === 'q0f32' ? 'f32' : 'f32,q4')).split(',') as Precision[];
if (!precisions.every((p) => ['f32', 'f16', 'q8', 'q4'].includes(p))) {
  console.error(`--precision is a list of f32, f16, q8 and q4, not ${opt('--precision')}.`);
  process.exit(2);
}
type Run = { engine: RunOptions['engine']; precision?: Precision };
const runs = engines.flatMap((engine): Run[] => (engine === 'web-llm' ? [{ engine }] : precisions.map((precision) => ({ engine, precision }))));
const root = join(tmpdir(), 'lora-lab-webllm-compare');
const mlcDir = join(root, `mlc-${meta.quantization}`);
const hfDir = join(root, `hf-${meta.quantization}`);
const tokenizer = new URL('../../public/models/demo/tokenizer.json', import.meta.url).pathname;
if (!existsSync(join(mlcDir, 'ndarray-cache.json'))) writeTestModel(lib, mlcDir, tokenizer);
if (!existsSync(join(hfDir, 'config.json'))) toHuggingFace(mlcDir, hfDir);

/** MLC's q4f32_1 group quantization undone: eight 4-bit values per uint32 along the input dimension, lowest bits
 *  first, each (q - 7) x the float32 scale of its group of 32. */
function dequantizeQ4f32(words: Uint32Array, scales: Float32Array, rows: number, cols: number): Uint8Array {
  const out = new Float32Array(rows * cols);
  const groups = cols / 32;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const q = (words[r * (cols / 8) + (c >> 3)] >>> ((c & 7) * 4)) & 15;
      out[r * cols + c] = (q - 7) * scales[r * groups + (c >> 5)];
    }
  }
  return new Uint8Array(out.buffer);
}

/** The MLC folder's tensors as a Hugging Face Qwen2 folder (F32 shards of at most 512 MB, with the index). */
function toHuggingFace(from: string, to: string): void {
  const cache = JSON.parse(readFileSync(join(from, 'ndarray-cache.json'), 'utf8')) as { records: { dataPath: string; records: { name: string; shape: number[]; byteOffset: number; nbytes: number }[] }[] };
  const kv = meta.kv_cache as unknown as { num_hidden_layers: number; num_attention_heads: number; num_key_value_heads: number; head_dim: number };
  const D = kv.num_attention_heads * kv.head_dim, Dkv = kv.num_key_value_heads * kv.head_dim;
  const out: TensorToWrite[] = [];
  let inter = 0, vocab = 0;
  const rows = (data: Uint8Array, shape: number[], from0: number, to0: number, name: string) => {
    const width = shape.length > 1 ? shape[1] : 1;
    out.push({ name, dtype: 'F32', shape: shape.length > 1 ? [to0 - from0, width] : [to0 - from0], data: data.subarray(from0 * width * 4, to0 * width * 4) });
  };
  // Every tensor by name, q_weight and q_scale joined into one F32 weight.
  const tensors = new Map<string, { shape: number[]; data: Uint8Array }>();
  for (const shard of cache.records) {
    const bytes = new Uint8Array(readFileSync(join(from, shard.dataPath)));
    for (const r of shard.records) tensors.set(r.name, { shape: r.shape, data: bytes.subarray(r.byteOffset, r.byteOffset + r.nbytes) });
  }
  for (const [name, t] of tensors) {
    if (name.endsWith('.q_scale')) continue;
    let { shape, data } = t;
    let plain = name;
    if (name.endsWith('.q_weight')) {
      plain = name.replace(/\.q_weight$/, '.weight');
      const scale = tensors.get(name.replace(/\.q_weight$/, '.q_scale'))!;
      shape = [shape[0], shape[1] * 8];
      data = dequantizeQ4f32(new Uint32Array(data.slice().buffer), new Float32Array(scale.data.slice().buffer), shape[0], shape[1]);
    }
    const n = shape[0];
    if (plain.includes('c_attn')) {
      const kind = plain.endsWith('.bias') ? 'bias' : 'weight';
      const layer = plain.replace(/\.self_attn\.c_attn\.(weight|bias)$/, '.self_attn');
      rows(data, shape, 0, D, `${layer}.q_proj.${kind}`);
      rows(data, shape, D, D + Dkv, `${layer}.k_proj.${kind}`);
      rows(data, shape, D + Dkv, D + 2 * Dkv, `${layer}.v_proj.${kind}`);
    } else if (plain.includes('gate_up_proj')) {
      inter = n / 2;
      const layer = plain.replace(/\.gate_up_proj\.weight$/, '');
      rows(data, shape, 0, inter, `${layer}.gate_proj.weight`);
      rows(data, shape, inter, n, `${layer}.up_proj.weight`);
    } else {
      if (plain.includes('embed_tokens')) vocab = n;
      out.push({ name: plain, dtype: 'F32', shape, data });
    }
  }
  mkdirSync(to, { recursive: true });
  const shards: TensorToWrite[][] = [[]];
  let size = 0;
  for (const t of out) {
    if (size + t.data.byteLength > 512e6 && shards.at(-1)!.length) { shards.push([]); size = 0; }
    shards.at(-1)!.push(t);
    size += t.data.byteLength;
  }
  const weightMap: Record<string, string> = {};
  shards.forEach((list, i) => {
    const file = `model-${String(i + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`;
    writeFileSync(join(to, file), writeSafetensors(list, { format: 'pt' }));
    for (const t of list) weightMap[t.name] = file;
  });
  writeFileSync(join(to, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  // Qwen2-0.5B's configuration (the library was compiled from it: rope theta 1e6, RMSNorm epsilon 1e-6, tied embeddings).
  writeFileSync(join(to, 'config.json'), JSON.stringify({
    architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', hidden_size: D, intermediate_size: inter,
    num_hidden_layers: kv.num_hidden_layers, num_attention_heads: kv.num_attention_heads, num_key_value_heads: kv.num_key_value_heads,
    vocab_size: vocab, rms_norm_eps: 1e-6, rope_theta: 1000000, max_position_embeddings: 32768, tie_word_embeddings: true,
    hidden_act: 'silu', torch_dtype: 'float32', bos_token_id: 1, eos_token_id: 2,
  }, null, 2));
  writeFileSync(join(to, 'tokenizer.json'), readFileSync(tokenizer));
}

// Static files with CORS: /mlc/resolve/main/<file> (web-llm reads the hub's layout), /lib/<library>, /hf/<file>.
const files = await serveFiles((path) => {
  const file = path.startsWith('/mlc/resolve/main/') ? inside(mlcDir, path.slice('/mlc/resolve/main/'.length))
    : path.startsWith('/hf/') ? inside(hfDir, path.slice(4)) : path === `/lib/${basename(lib)}` ? lib : null;
  if (process.env.VERBOSE) console.log(`[files] ${path}${file && existsSync(file) ? '' : ' (404)'}`);
  return file;
});
const base = files.base;
// Vite's dev server, with the page's and the worker's dependencies found up front (a dependency discovered later makes
// Vite reload the page mid-run).
const vite = await viteServer({
  // No file watching: an edit to the tree mid-run would reload the page and lose the run.
  server: { host: '127.0.0.1', port: 0, hmr: false, watch: null }, logLevel: 'warn',
  optimizeDeps: { entries: ['scripts/webllm/compare.html', 'workers/engine.worker.ts', 'workers/webllm.worker.ts'], include: ['@mlc-ai/web-llm'] },
});
await vite.listen();
const page0 = `${vite.resolvedUrls!.local[0]}scripts/webllm/compare.html`;

// A raw prompt of about a dozen tokens.
const prompt = 'Give three tips for staying healthy and say why each one helps.';
// A persistent profile: both engines keep the 2 GB download in the browser's storage, whose quota an incognito
// context would refuse.
const browser = await chromium.launchPersistentContext(join(root, 'profile'), {
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: chromiumArgs, headless: true,
});
const results: RunResult[] = [];
try {
  for (const { engine, precision } of runs) {
    const page = await browser.newPage();
    page.on('console', (m) => { if (m.type() === 'error' || process.env.VERBOSE) console.log(`[page] ${m.text()}`); });
    if (process.env.VERBOSE) page.on('response', (r) => { if (r.status() >= 400) console.log(`[page] ${r.status()} ${r.url()}`); });
    await page.goto(page0);
    await page.waitForSelector('body[data-ready]', { state: 'attached', timeout: 300_000 });
    const o: RunOptions = engine === 'web-llm'
      ? { engine, modelUrl: `${base}/mlc/`, libUrl: `${base}/lib/${basename(lib)}`, prompt, maxTokens }
      : { engine, modelUrl: `${base}/hf/`, prompt, maxTokens, precision };
    const t0 = performance.now();
    const r = await page.evaluate((opts) => (window as unknown as { runEngine: (o: RunOptions) => Promise<RunResult> }).runEngine(opts), o);
    console.log(JSON.stringify({ ...r, wallS: Math.round((performance.now() - t0) / 100) / 10 }));
    results.push({ ...r, engine: precision ? `${r.engine} ${precision}` : `${r.engine} ${meta.quantization}` });
    await page.close();
  }
} finally {
  await browser.close();
  await vite.close();
  files.close();
}
const theirs = results.find((r) => r.engine.startsWith('web-llm'));
const f = (x: number) => x.toFixed(2);
for (const a of results.filter((r) => r !== theirs)) {
  if (!theirs) break;
  const b = theirs;
  console.log(`${a.engine} vs ${b.engine} on the same ${meta.model_type} weights, ${a.promptTokens}/${b.promptTokens}-token prompt, ${maxTokens} new tokens:`);
  console.log(`  load ${f(a.loadS)} s vs ${f(b.loadS)} s; prefill ${f(a.prefillS)} s vs ${f(b.prefillS)} s (${f(b.prefillS / a.prefillS)}x); decode ${f(1 / a.decodeTokensPerSecond)} s/token vs ${f(1 / b.decodeTokensPerSecond)} s/token (${f(a.decodeTokensPerSecond / b.decodeTokensPerSecond)}x); same text: ${a.text === b.text}`);
}
