// npm run bench [-- --json] [-- --driver lavapipe|swiftshader] [-- --quick] [-- --precision f32,f16,q8,q4] [-- --models demo,...]
// npm run bench -- --only cold [-- --no-shader-cache] [-- --start quick|steady]: a first answer on a new device
// npm run bench -- --only gemm: GFLOP/s of each many-row matmul (forward and input gradient) beside the FMA peak
// npm run bench -- --only prefill [-- --peer]: prefill of 32 and 256 tokens; --peer: llama.cpp on the same weights
// npm run bench -- --only padding: token positions an epoch of the GPT-4 Alpaca sample computes, by batching rule
// Prints decode and prefill speed, time to first token, dispatches and bytes read back per token, and GPU memory
// against weight bytes, for the built-in demo model and a random model with SmolLM2-135M's shapes at each weight
// precision (decode reads every layer's weight bytes once per token: the row's weight bytes); batched multi-adapter
// decoding, a training step (LoRA over f32/f16, QLoRA over q8/q4), and evaluation throughput for 1 and 4 models.
// Figures only: nothing is asserted. Software Vulkan drivers say nothing about real GPU speed. Every section but cold
// measures the steady state, its engines made without quick start (EngineOptions.quickStart), which cold measures.

import { Engine } from '../src/lib/engine.js';
import { createNodeGpu } from '../src/lib/gpu/node.js';
import { MemoryFiles } from '../src/lib/model-files.js';
import { NodeDirFiles } from '../src/lib/hub/node-files.js';
import { streamedSyntheticModel, syntheticModel } from '../src/lib/model/synthetic.js';
import { syntheticAdapter } from '../src/lib/lora/synthetic.js';
import { exampleFromIds } from '../src/lib/data/examples.js';
import { epochBatches } from '../src/lib/data/batches.js';
import { DEFAULT_TRAIN_CONFIG } from '../src/lib/training/train-config.js';
import { toGpuBatch, Trainer } from '../src/lib/training/trainer.js';
import { profileDispatches } from '../src/lib/gpu/kernel.js';
import type { LoraModule } from '../src/lib/lora/peft.js';
import { readFileSync } from 'node:fs';
import { DEFAULT_EVAL, runEvaluation, type EvalModel } from '../src/lib/eval/run.js';
import type { EvalExample } from '../src/lib/eval/sets.js';
import type { WeightFormat } from '../src/lib/quant/blocks.js';
import { rate } from '../src/ui/format.js';

const args = process.argv.slice(2);
const json = args.includes('--json');
const quick = args.includes('--quick');
const driverAt = args.indexOf('--driver');
const driver = driverAt >= 0 ? (args[driverAt + 1] as 'lavapipe' | 'swiftshader') : undefined;
const onlyAt = args.indexOf('--only');
/**
 * --only decode|compare|train|eval|download|gemm|prefill|padding runs one section; --only big runs the ~4B rows and --only cold
 * a first answer on a new device (neither in the default run).
 */
const only = onlyAt >= 0 ? args[onlyAt + 1] : null;
const run = (section: string) => only === null || only === section;
const precisionAt = args.indexOf('--precision');

interface BenchModel { name: string; files: () => MemoryFiles | NodeDirFiles; promptTokens: number; newTokens: number }

/** Random weights with SmolLM2-135M's shapes and its real tokenizer (tests/fixtures), as a model folder's files. */
function smolShapesFiles(): Map<string, Uint8Array> {
  const m = syntheticModel({
    hiddenSize: 576, intermediateSize: 1536, numLayers: 30, numHeads: 9, numKvHeads: 3, headDim: 64,
    vocabSize: 49152, tied: true, ropeTheta: 100000, maxPositionEmbeddings: 8192, dtype: 'BF16', seed: 1,
  });
  const tok = readFileSync(new URL('../tests/fixtures/SmolLM2-135M-Instruct/tokenizer.json', import.meta.url));
  return new Map([
    ['config.json', new TextEncoder().encode(JSON.stringify(m.config))],
    ['model.safetensors', m.safetensors],
    ['tokenizer.json', new Uint8Array(tok)],
  ]);
}
const smolShapes = () => new MemoryFiles('random SmolLM2-135M shapes', smolShapesFiles());

/** The bench's prompt of `n` tokens. */
const benchPrompt = (n: number) => Array.from({ length: n }, (_, i) => 100 + ((i * 37) % 1000));
/** A decode step's input: one row at `position` of slot 0, the base model. */
const decodeInput = (position: number) => ({ tokens: [100], slots: [0], positions: [position], loraSlots: [0], loraScales: [1], seqs: 1, lastStride: 1, lastOffset: 0 });

const models: BenchModel[] = [
  { name: 'demo', files: () => new NodeDirFiles('built-in demo model', new URL('../public/models/demo/', import.meta.url).pathname), promptTokens: 64, newTokens: quick ? 8 : 32 },
  { name: 'smollm2-135m-shapes', files: smolShapes, promptTokens: 32, newTokens: quick ? 4 : 12 },
];

const modelsAt = args.indexOf('--models');
/** --models demo,smollm2-135m-shapes picks the models of every section. */
if (modelsAt >= 0) { const keep = args[modelsAt + 1].split(','); models.splice(0, models.length, ...models.filter((m) => keep.includes(m.name))); }
// Mesa keeps compiled shaders on disk between runs; a person's first visit has none (read when the driver loads).
if (args.includes('--no-shader-cache')) process.env.MESA_SHADER_CACHE_DISABLE = 'true';
// --no-subgroups: the matmuls every device runs, for comparing with the broadcast matmul of CPU adapters (Gpu.subgroup).
const gpu = await createNodeGpu({ driver, noSubgroups: args.includes('--no-subgroups') });
/** --precision picks the weight formats of the decode and train rows (default: every one this device runs). */
const precisions = (precisionAt >= 0 ? args[precisionAt + 1].split(',') : ['f32', ...(gpu.f16 ? ['f16'] : []), 'q8', 'q4']) as WeightFormat[];
for (const [bm, precision] of run('decode') ? models.flatMap((m) => precisions.map((p) => [m, p] as const)) : []) {
  const engine = new Engine(gpu, { contextLength: 512, slots: 1, quickStart: false });
  const before = gpu.allocatedBytes;
  const info = await engine.load(bm.files(), undefined, undefined, { precision });
  const promptIds = benchPrompt(bm.promptTokens);
  // Warm-up: compiles pipelines for both matmul shapes.
  await engine.generate({ promptIds, maxNewTokens: 2, sampling: { temperature: 0 } });
  const s0 = { ...engine.runner.stats };
  const r = await engine.generate({ promptIds, maxNewTokens: bm.newTokens, sampling: { temperature: 0 } });
  const s1 = engine.runner.stats;
  const forwards = s1.forwards - s0.forwards;
  const decodeSteps = r.tokens.length - 1;
  const prefillForwards = forwards - decodeSteps;
  const line = {
    model: bm.name,
    layers: info.layers,
    decodeTokensPerSecond: round(r.decodeTokensPerSecond),
    prefillTokensPerSecond: round(r.promptTokens / (r.prefillMs / 1000)),
    timeToFirstTokenMs: round(r.timeToFirstTokenMs),
    dispatchesPerToken: engine.runner.dispatchesPerForward,
    dispatchesPerLayerPerToken: round((engine.runner.dispatchesPerForward - 4) / info.layers),
    readbackBytesPerToken: (s1.readbackBytes - s0.readbackBytes) / forwards,
    submitsPerToken: (s1.submits - s0.submits) / forwards,
    prefillForwards,
    gpuBytesAllocated: gpu.allocatedBytes - before,
    weightBytes: info.weightBytes,
    kvCacheBytes: info.kvCacheBytes,
    memoryRatio: round((gpu.allocatedBytes - before) / (info.weightBytes + info.kvCacheBytes)),
    weights: info.precision,
    contextLength: info.contextLength,
    gpu: info.gpu,
    // Bytes a decode step reads at least once (bound buffers; the KV cache up to the position): against the weights.
    decodeReadBytes: engine.runner.readBytes(decodeInput(bm.promptTokens)),
    // Where a decode step's time goes: each dispatch timed alone (dispatch isolation), summed by kind.
    decodeMsByKernel: Object.fromEntries([...(await engine.runner.profile(decodeInput(bm.promptTokens), quick ? 1 : 3))]
      .sort((x, y) => y[1] - x[1]).map(([k, ms]) => [k, round(ms)])),
  };
  engine.unload();
  if (json) console.log(JSON.stringify(line));
  else {
    console.log(`\n${bm.name} (${info.layers} layers, weights ${line.weights}) on ${info.gpu}`);
    console.log(`  decode ${line.decodeTokensPerSecond} tokens/s, prefill ${line.prefillTokensPerSecond} tokens/s, first token ${line.timeToFirstTokenMs} ms`);
    console.log(`  ${line.dispatchesPerToken} dispatches per token (${line.dispatchesPerLayerPerToken} per layer), ${line.submitsPerToken} submit, ${line.readbackBytesPerToken} bytes read back per token`);
    console.log(`  decode step by kernel (each dispatch alone): ${byKernelText(Object.entries(line.decodeMsByKernel))}`);
    const rb = line.decodeReadBytes;
    console.log(`  bytes read per decoded token (at position ${bm.promptTokens}): ${mb(rb.weights + rb.kv + rb.other)} = ${round((rb.weights + rb.kv + rb.other) / line.weightBytes)} x the weights' ${mb(line.weightBytes)} (weights read ${mb(rb.weights)}, KV cache ${mb(rb.kv)}, activations and the rest ${mb(rb.other)})`);
    console.log(`  GPU memory ${mb(line.gpuBytesAllocated)} = ${line.memoryRatio} x (weights ${mb(line.weightBytes)} + KV cache ${mb(line.kvCacheBytes)} at ${line.contextLength} tokens)`);
  }
}
// Batched multi-adapter decode: the same model, 1 to 4 columns, each column a different adapter (rank 8, q/k/v/o).
for (const bm of run('compare') ? models : []) {
  const engine = new Engine(gpu, { contextLength: 256, slots: 4, quickStart: false });
  await engine.load(bm.files());
  const cfg = engine.runner.cfg;
  const names = ['a', 'b', 'c', 'd'];
  names.forEach((name, i) => engine.addAdapter(syntheticAdapter(cfg, { name, seed: i, config: { r: 8, lora_alpha: 16, target_modules: ['q_proj', 'k_proj', 'v_proj', 'o_proj'] } })));
  const promptIds = Array.from({ length: 16 }, (_, i) => 100 + i);
  const steps = quick ? 4 : 8;
  const times: number[] = [];
  for (let n = 1; n <= 4; n++) {
    const columns = names.slice(0, n).map((adapter) => ({ adapter, strength: 1 }));
    await engine.compare({ promptIds, maxNewTokens: 2, sampling: { temperature: 0 } }, columns); // warm-up
    const [r] = await engine.compare({ promptIds, maxNewTokens: steps + 1, sampling: { temperature: 0 } }, columns);
    const stepMs = r.decodeMs / steps;
    times.push(stepMs);
    const line = { model: bm.name, columns: n, decodeStepMs: round(stepMs), ratioToOneColumn: round(stepMs / times[0]), aggregateTokensPerSecond: round((n * 1000) / stepMs), dispatchesPerToken: engine.runner.dispatchesPerForward, adapter: gpu.description };
    if (json) console.log(JSON.stringify(line));
    else console.log(`${bm.name}: ${n} column(s), each with its own adapter: ${line.decodeStepMs} ms per decode step (${line.ratioToOneColumn} x one column), ${line.aggregateTokensPerSecond} tokens/s in all, ${line.dispatchesPerToken} dispatches`);
  }
}
// Training: one micro-step (forward, loss, backward) against a forward pass of the same batch, tokens/s, GPU memory.
for (const [bm, precision] of run('train') ? models.flatMap((m) => precisions.map((p) => [m, p] as const)) : []) {
  const engine = new Engine(gpu, { contextLength: 64, slots: 1, quickStart: false });
  const before = gpu.allocatedBytes;
  const info = await engine.load(bm.files(), undefined, undefined, { precision });
  const weights = gpu.allocatedBytes - before;
  const B = bm.name === 'demo' ? 4 : 2;
  const T = bm.name === 'demo' ? 64 : 32;
  const cfg = { ...DEFAULT_TRAIN_CONFIG, rank: 8, alpha: 16, targetModules: ['q_proj', 'v_proj'] as LoraModule[], microBatch: B, gradAccumulation: 1, cutoff: T, steps: 1 };
  const examples = Array.from({ length: B }, (_, b) => exampleFromIds(Array.from({ length: 8 }, (_, i) => 100 + b + i), Array.from({ length: T - 8 }, (_, i) => 200 + i)));
  const memBefore = gpu.allocatedBytes;
  const trainer = new Trainer(gpu, engine.runner.model, 'bench', cfg, { train: examples, validation: [] }, null);
  const trainBytes = gpu.allocatedBytes - memBefore;
  const batch = toGpuBatch(epochBatches(examples, B, T, 1, 0, 'packed')[0]);
  await trainer.step.evaluate(batch); // warm-up: pipelines
  await trainer.step.micro(batch, 1 / (B * T), 1);
  const reps = quick ? 1 : 2;
  let t0 = performance.now();
  for (let i = 0; i < reps; i++) await trainer.step.evaluate(batch);
  const forwardMs = (performance.now() - t0) / reps;
  t0 = performance.now();
  for (let i = 0; i < reps; i++) await trainer.step.micro(batch, 1 / (B * T), i);
  const stepMs = (performance.now() - t0) / reps;
  // Where a micro-step's time goes: each dispatch alone, summed by kernel (the last micro-step wrote the inputs).
  const byKernel = [...(await profileDispatches(gpu, trainer.step.graph.micro, quick ? 1 : 2))].sort((x, y) => y[1] - x[1]);
  const line = {
    model: bm.name, training: true, weights: info.precision, layers: info.layers, batch: B, seqLen: T, trainTokensPerSecond: round((B * T) / (stepMs / 1000)),
    stepMs: round(stepMs), forwardMs: round(forwardMs), stepOverForward: round(stepMs / forwardMs),
    dispatchesPerStep: trainer.step.graph.micro.length, trainingGpuBytes: trainBytes, weightBytes: info.weightBytes, gpuBytesAllocated: gpu.allocatedBytes,
    adapter: gpu.description, stepMsByKernel: Object.fromEntries(byKernel.map(([k, ms]) => [k, round(ms)])),
  };
  trainer.destroy();
  engine.unload();
  if (json) console.log(JSON.stringify(line));
  else {
    console.log(`${bm.name} ${info.precision} ${info.precision.startsWith('q') ? 'QLoRA ' : ''}training (B=${B}, T=${T}, r=8 on q,v): ${line.trainTokensPerSecond} tokens/s, step ${line.stepMs} ms = ${line.stepOverForward} x a forward of the batch (${line.forwardMs} ms), ${line.dispatchesPerStep} dispatches, training buffers ${mb(trainBytes)} beyond weights ${mb(info.weightBytes)}`);
    console.log(`  step by kernel (each dispatch alone): ${byKernelText(byKernel, 14)}`);
  }
}
// Evaluation: examples/s and tokens/s on a fixed synthetic set for one model (one example at a time, then four in
// flight) and four models (base + 3 adapters, one example's four answers as one batch); each batch's references are
// then scored teacher-forced in one batch. The ratio compares with one model, one example at a time.
for (const bm of run('eval') ? models : []) {
  const engine = new Engine(gpu, { contextLength: 256, slots: 4, quickStart: false });
  await engine.load(bm.files());
  const cfg = engine.runner.cfg;
  ['a', 'b', 'c'].forEach((name, i) => engine.addAdapter(syntheticAdapter(cfg, { name, seed: 20 + i, config: { r: 8, lora_alpha: 16, target_modules: ['q_proj', 'v_proj'] } })));
  const n = quick ? 2 : 4;
  const examples: EvalExample[] = Array.from({ length: n }, (_, i) => ({ id: `e${i}`, instruction: `Give ${i + 3} tips for staying healthy.`, input: '', reference: 'Eat well, sleep enough, move every day, and see friends.' }));
  const opts = { ...DEFAULT_EVAL, maxNewTokens: quick ? 4 : 12 };
  await runEvaluation(engine, examples.slice(0, 1), [{ adapter: null, strength: 1 }], { ...opts, maxNewTokens: 2 }, {}); // warm-up
  let oneMs = 0;
  for (const [count, inFlight] of [[1, 1], [1, 4], [4, 1]]) {
    const sets: EvalModel[] = [{ adapter: null, strength: 1 }, { adapter: 'a', strength: 1 }, { adapter: 'b', strength: 1 }, { adapter: 'c', strength: 1 }].slice(0, count);
    let tokens = 0;
    const t0 = performance.now();
    await runEvaluation(engine, examples, sets, { ...opts, examplesInFlight: inFlight }, { onResult: (r) => { tokens += r.predictionTokens + (r.lossTokens ?? 0); } });
    const ms = performance.now() - t0;
    if (count === 1 && inFlight === 1) oneMs = ms;
    const line = { model: bm.name, evaluation: true, models: count, examplesInFlight: inFlight, examples: n, examplesPerSecond: round((n * 1000) / ms), tokensPerSecond: round((tokens * 1000) / ms), ratioToOneModelOneExample: round(ms / oneMs), adapter: gpu.description };
    if (json) console.log(JSON.stringify(line));
    else console.log(`${bm.name} evaluation, ${count} model(s), ${inFlight} example(s) in flight: ${line.examplesPerSecond} examples/s, ${line.tokensPerSecond} tokens/s (generated + scored), ${line.ratioToOneModelOneExample} x the time of one model one example at a time`);
  }
}
// Padding (--only padding): token positions an epoch computes on the bundled GPT-4 Alpaca sample, by batching rule.
if (run('padding')) {
  const { paddingFigures } = await import('./bench/padding.js');
  const f = await paddingFigures();
  const pad = (n: number) => `${n} positions (${Math.round((100 * (n - f.realTokens)) / n)}% padding)`;
  if (json) console.log(JSON.stringify({ padding: true, ...f }));
  else console.log(`padding: an epoch of ${f.records} GPT-4 Alpaca records (B=${f.batch}, cutoff ${f.cutoff}, ${f.realTokens} real tokens): length buckets ${pad(f.buckets)} = ${round(f.buckets / f.powerOfTwo)} x powers of two's ${pad(f.powerOfTwo)}; packed rows ${f.packed}`);
}
// Each many-row matmul alone (--only gemm): forward (prefill, scoring, training) and input gradient (training), at
// SmolLM2-135M's shapes for 32 and 256 rows, in GFLOP/s beside the device's FMA peak.
if (only === 'gemm') {
  const { fmaPeak, SMOL_GEMMS, timeForwardGemm, timeInputGradient } = await import('./bench/gemm.js');
  const peak = await fmaPeak(gpu);
  const device = { cpu: gpu.cpu, subgroup: gpu.subgroup };
  if (!json) console.log(`FMA peak ${round(peak)} GFLOP/s (independent vec4 FMAs, nothing loaded) on ${gpu.description}`);
  for (const M of [32, 256]) for (const format of precisions) {
    const figures = [];
    for (const g of SMOL_GEMMS) figures.push(await timeForwardGemm(gpu, device, g, format, M, quick ? 3 : 7));
    for (const [N, K] of [[576, 576], [1536, 576]]) figures.push(await timeInputGradient(gpu, gpu.subgroup, N, K, format, M, quick ? 3 : 7));
    for (const f of figures) {
      const line = { gemm: true, ...f, ms: round(f.ms), gflops: round(f.gflops), ofPeak: round(f.gflops / peak), peakGflops: round(peak), adapter: gpu.description };
      if (json) console.log(JSON.stringify(line));
      else console.log(`  ${format} M=${M} ${f.shape} (N=${f.N}, K=${f.K}) ${f.kernel}: ${line.ms} ms, ${line.gflops} GFLOP/s = ${Math.round(100 * line.ofPeak)}% of peak`);
    }
  }
}
// Prefill (--only prefill [--peer]): 32 and 256 tokens at SmolLM2-135M's shapes, each precision; with --peer,
// llama.cpp (F16 GGUF of the same weights, same driver) between two rounds of ours.
if (only === 'prefill') {
  const { ourPrefill, peerPrefill, median, PREFILL_LENGTHS } = await import('./bench/prefill.js');
  const files = smolShapesFiles();
  const runs = quick ? 2 : 3;
  const ours = async (precision: WeightFormat) => {
    const engine = new Engine(gpu, { contextLength: 512, slots: 1, quickStart: false });
    await engine.load(new MemoryFiles('random SmolLM2-135M shapes', files), undefined, undefined, { precision });
    const r = await ourPrefill(engine, runs);
    engine.unload();
    return r;
  };
  const show = (who: string, weights: string, r: Record<number, number[]>) => {
    const line = { prefill: true, who, weights, model: 'smollm2-135m-shapes', ...Object.fromEntries(PREFILL_LENGTHS.map((n) => [`prefill${n}Ms`, round(median(r[n]))])), runs: r, adapter: gpu.description };
    if (json) console.log(JSON.stringify(line));
    else console.log(`${who} ${weights}: ${PREFILL_LENGTHS.map((n) => `prefill of ${n} tokens ${round(median(r[n]))} ms (${r[n].map(round).join(', ')})`).join('; ')}`);
    return r;
  };
  const peer = args.includes('--peer');
  for (const precision of precisions) {
    const first = show('LoRA Lab', precision, await ours(precision));
    if (!peer || precision !== 'f16') continue;
    const p = peerPrefill(files, runs, driver === 'lavapipe' || !driver ? new URL('../.cache/lavapipe/lvp_icd.json', import.meta.url).pathname : undefined);
    show(`${p.backend} (${p.device})`, 'F16 GGUF', p.prefillMs);
    const second = show('LoRA Lab (again)', precision, await ours(precision));
    for (const n of PREFILL_LENGTHS) {
      const mine = median([...first[n], ...second[n]]);
      const line = { prefillRatio: true, tokens: n, oursMs: round(mine), peerMs: round(median(p.prefillMs[n])), speedup: round(median(p.prefillMs[n]) / mine) };
      if (json) console.log(JSON.stringify(line));
      else console.log(`  prefill of ${n} tokens: LoRA Lab ${line.oursMs} ms, llama.cpp ${line.peerMs} ms: ${line.speedup} x llama.cpp's speed`);
    }
  }
}
// The ~4B models a tab can hold at q4 (--only big; minutes each on a CPU adapter): random weights with each catalog
// model's shapes and family, streamed as BF16 safetensors (a tensor at a time: the model is never whole in memory) and
// quantized while they stream in. Bytes on the GPU (weights, and all it allocated), load time, decode speed.
if (only === 'big') {
  const { CATALOG } = await import('../src/lib/hub/model-catalog.js');
  const BIG = ['Qwen/Qwen3-4B', 'microsoft/Phi-3.5-mini-instruct', 'google/gemma-3-4b-it', 'HuggingFaceTB/SmolLM3-3B', 'meta-llama/Llama-3.2-3B-Instruct'];
  const wanted = modelsAt >= 0 ? args[modelsAt + 1].split(',') : BIG;
  for (const entry of CATALOG.filter((m) => wanted.includes(m.repo))) {
    const s = entry.shape;
    const spec = {
      hiddenSize: s.hiddenSize, intermediateSize: s.intermediateSize, numLayers: s.numLayers, numHeads: s.numHeads, numKvHeads: s.numKvHeads,
      headDim: s.headDim, vocabSize: s.vocabSize, tied: s.tieWordEmbeddings, architecture: s.architecture ?? (s.qkvBias ? 'Qwen2ForCausalLM' : 'LlamaForCausalLM'),
      slidingWindow: s.sliding?.window, dtype: 'BF16', seed: 3,
    } as const;
    const m = streamedSyntheticModel(spec);
    const tok = new Uint8Array(readFileSync(new URL('../public/models/demo/tokenizer.json', import.meta.url)));
    const side = new Map([['config.json', new TextEncoder().encode(JSON.stringify(m.config))], ['tokenizer.json', tok]]);
    const files = {
      label: `random ${entry.name} shapes`,
      bytes: async (name: string, optional = false) => side.get(name) ?? (optional ? null : Promise.reject(new Error(`no ${name}`))),
      open: async (name: string) => { if (name !== 'model.safetensors') throw new Error(`no ${name}`); return { size: m.size, stream: m.open() }; },
    };
    for (const precision of precisionAt >= 0 ? precisions : ['q4' as WeightFormat]) {
      const engine = new Engine(gpu, { contextLength: 256, slots: 1, quickStart: false });
      const before = gpu.allocatedBytes;
      const t1 = performance.now();
      const info = await engine.load(files, undefined, undefined, { precision });
      const loadMs = performance.now() - t1;
      const promptIds = [1, 504, 3458];
      await engine.generate({ promptIds, maxNewTokens: 2, sampling: { temperature: 0 } });
      const r = await engine.generate({ promptIds, maxNewTokens: quick ? 3 : 6, sampling: { temperature: 0 } });
      const line = {
        model: entry.repo, shapes: true, architecture: spec.architecture, weights: info.precision, parameters: info.parameters, weightBytes: info.weightBytes,
        gpuBytesAllocated: gpu.allocatedBytes - before, loadMs: round(loadMs), decodeTokensPerSecond: round(r.decodeTokensPerSecond), prefillMs: round(r.prefillMs), adapter: gpu.description,
      };
      engine.unload();
      if (json) console.log(JSON.stringify(line));
      else console.log(`${entry.name} shapes (${spec.architecture}, ${(info.parameters / 1e9).toFixed(2)} B parameters): weights ${info.precision} ${mb(info.weightBytes)} on the GPU (${mb(line.gpuBytesAllocated)} allocated in all), streamed and loaded in ${round(loadMs / 1000)} s, decode ${rate(r.decodeTokensPerSecond)}, prefill of 3 tokens ${round(r.prefillMs)} ms`);
    }
  }
}
// Cold start (--only cold): a new device, nothing compiled: load, then the first answer (its first token and 8 tokens)
// as after opening the app, and a second prompt of as many new tokens. Pipelines are compiled at load (the forward's)
// and on first use (the rest). Each model twice: with quick start (the first prompt on the one-row kernels, the
// many-row ones compiled after the answer: EngineOptions.quickStart) and without (--start quick|steady for one).
if (only === 'cold') {
  const startArg = args.find((a, i) => args[i - 1] === '--start');
  const starts = startArg ? [startArg === 'quick'] : [true, false];
  for (const [bm, precision, quickStart] of models.flatMap((m) => precisions.flatMap((p) => starts.map((q) => [m, p, q] as const)))) {
    const fresh = await createNodeGpu({ driver });
    const engine = new Engine(fresh, { contextLength: 512, slots: 1, quickStart });
    const files = bm.files();
    const t0 = performance.now();
    const info = await engine.load(files, undefined, undefined, { precision });
    const loadMs = performance.now() - t0;
    const atLoad = { compiles: fresh.pipelines.compiles, ms: fresh.pipelines.compileMs };
    const promptTokens = Number(args.find((a, i) => args[i - 1] === '--prompt-tokens') ?? bm.promptTokens);
    const prompt = benchPrompt(promptTokens);
    const t1 = performance.now();
    const r = await engine.generate({ promptIds: prompt, maxNewTokens: 8, sampling: { temperature: 0 } });
    const answerMs = performance.now() - t1;
    const atAnswer = { compiles: fresh.pipelines.compiles, ms: fresh.pipelines.compileMs };
    const tc = performance.now();
    await engine.idle(); // the compiles the engine began after a quick answer, as while a person reads
    const t2 = performance.now();
    const r2 = await engine.generate({ promptIds: prompt.map((t) => t + 1), maxNewTokens: 8, sampling: { temperature: 0 } });
    const secondMs = performance.now() - t2;
    const line = {
      model: bm.name, weights: info.precision, coldStart: true, quickStart, shaderDiskCache: !args.includes('--no-shader-cache'),
      loadMs: round(loadMs), pipelinesAtLoad: atLoad.compiles, compileMsAtLoad: round(atLoad.ms),
      promptTokens, firstTokenMs: round(r.timeToFirstTokenMs), answerTokens: r.generatedTokens, answerMs: round(answerMs),
      pipelinesAtFirstAnswer: atAnswer.compiles - atLoad.compiles, compileMsAtFirstAnswer: round(atAnswer.ms - atLoad.ms),
      loadToFirstTokenMs: round(loadMs + r.timeToFirstTokenMs), deferredCompileMs: round(t2 - tc), secondAnswerTokens: r2.generatedTokens, secondAnswerMs: round(secondMs),
      adapter: fresh.description,
    };
    engine.unload();
    fresh.destroy();
    if (json) console.log(JSON.stringify(line));
    else console.log(`${bm.name} ${line.weights}, cold${line.shaderDiskCache ? '' : ' (no shader disk cache)'}, ${quickStart ? 'quick' : 'steady'} start: load ${line.loadMs} ms (${line.pipelinesAtLoad} pipelines), first answer to a ${line.promptTokens}-token prompt: first token ${line.firstTokenMs} ms, ${line.answerTokens} tokens ${line.answerMs} ms (${line.pipelinesAtFirstAnswer} pipelines compiled); load to first token ${line.loadToFirstTokenMs} ms; ${quickStart ? `deferred compiles ${line.deferredCompileMs} ms, then ` : ''}second answer (${line.secondAnswerTokens} tokens) ${line.secondAnswerMs} ms`);
  }
}
// Downloads: a 128 MiB repo from a local server with the hub's layout into the disk cache (three files in parallel,
// each hashed while it streams), and SHA-256 alone, to see what verification costs.
if (run('download')) {
  const { startHfServer } = await import('../tests/helpers/hf-server.js');
  const { diskCache } = await import('../src/lib/store/disk-catalog.js');
  const { ModelCache } = await import('../src/lib/store/model-cache.js');
  const { sha256 } = await import('@noble/hashes/sha2.js');
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const mib = quick ? 32 : 128;
  const shard = (seed: number) => { const b = new Uint8Array((mib / 2) << 20); let x = seed; for (let i = 0; i < b.length; i += 4) { x = (x * 1664525 + 1013904223) >>> 0; b[i] = x; } return b; };
  const files = new Map<string, Uint8Array>([['config.json', new TextEncoder().encode('{}')], ['tokenizer.json', new TextEncoder().encode('{}')],
    ['model.safetensors.index.json', new TextEncoder().encode(JSON.stringify({ weight_map: { a: 'model-1.safetensors', b: 'model-2.safetensors' } }))],
    ['model-1.safetensors', shard(1)], ['model-2.safetensors', shard(2)]]);
  const server = await startHfServer({ 'bench/model': { files, piece: 1 << 20 } });
  const dir = mkdtempSync(join(tmpdir(), 'lora-lab-bench-'));
  const { store, catalog } = diskCache(dir);
  let t0 = performance.now();
  await new ModelCache(store, catalog, { endpoint: server.endpoint }).hf('bench/model', 'main', 'model');
  const downloadMs = performance.now() - t0;
  t0 = performance.now();
  sha256(files.get('model-1.safetensors')!);
  const hashMs = performance.now() - t0;
  await server.close();
  rmSync(dir, { recursive: true, force: true });
  const line = { download: true, mib, downloadMiBPerSecond: round(mib / (downloadMs / 1000)), sha256MiBPerSecond: round(mib / 2 / (hashMs / 1000)) };
  if (json) console.log(JSON.stringify(line));
  else console.log(`download into the cache (local server, ${mib} MiB in two shards, SHA-256 while streaming): ${line.downloadMiBPerSecond} MiB/s; SHA-256 alone ${line.sha256MiBPerSecond} MiB/s`);
}
// A kernel that failed to compile makes its dispatches do nothing, silently: such figures are void.
if (gpu.uncapturedErrors.length) {
  console.error(`The figures above are void: ${gpu.uncapturedErrors.length} WebGPU error(s) outside an error scope, the first: ${gpu.uncapturedErrors[0]}`);
  process.exit(1);
}
process.exit(0);

function round(x: number) { return Math.round(x * 100) / 100; }
/** A profile's kernels, largest first (at most `most`), each with its share of the sum of them all. */
function byKernelText(kernels: [string, number][], most = kernels.length) {
  const total = kernels.reduce((t, [, ms]) => t + ms, 0);
  return `${kernels.slice(0, most).map(([k, ms]) => `${k} ${round(ms)} ms (${Math.round((100 * ms) / total)}%)`).join(', ')}; sum ${round(total)} ms`;
}
function mb(b: number) { return `${(b / 2 ** 20).toFixed(1)} MiB`; }
