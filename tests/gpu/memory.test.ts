// GPU memory has an owner: unloading a model frees its weights, KV cache, activations and adapters; a refused load
// frees what it had allocated; a training run takes its slot out of the inference bank when it ends, keeping only
// a finished result. Checked through the device's byte count of live buffers.

import { describe, expect, it } from 'vitest';
import { Engine } from '../../src/lib/engine.js';
import { NonFiniteError } from '../../src/lib/errors.js';
import { encodeFromF32 } from '../../src/lib/formats/dtype.js';
import { writeSafetensors } from '../../src/lib/formats/safetensors.js';
import { MemoryFiles } from '../../src/lib/model-files.js';
import { NodeDirFiles } from '../../src/lib/hub/node-files.js';
import { syntheticModel } from '../../src/lib/model/synthetic.js';
import { subgroupOf, testGpu } from '../helpers/gpu.js';
import { tinyTokenizerJson } from '../helpers/tiny-tokenizer.js';
import { initAdapter } from '../../src/lib/training/init.js';
import { DEFAULT_TRAIN_CONFIG } from '../../src/lib/training/train-config.js';
import { TrainStep } from '../../src/lib/training/step.js';
import { lengthBuckets } from '../../src/lib/data/batches.js';
import { createNodeGpu } from '../../src/lib/gpu/node.js';
import type { Gpu } from '../../src/lib/gpu/device.js';

const demo = new URL('../../public/models/demo/', import.meta.url).pathname;
const adapter = new URL('../../public/adapters/demo-short/', import.meta.url).pathname;

/** The built-in model on a device of its own (its pipeline cache starts empty); `setup` runs before the load. */
async function demoOnOwnDevice(setup?: (gpu: Gpu) => void): Promise<{ gpu: Gpu; engine: Engine }> {
  const gpu = await createNodeGpu({ forceF32: true });
  setup?.(gpu);
  // Without quick start: these tests count what the many-row steps compile (tests/gpu/quick-start.test.ts has the rest).
  const engine = new Engine(gpu, { contextLength: 64, slots: 2, quickStart: false });
  await engine.load(new NodeDirFiles('demo', demo));
  return { gpu, engine };
}

describe('GPU memory ownership', () => {
  it('loading and unloading a model 20 times in one process returns allocated bytes to the start', async () => {
    const gpu = await testGpu();
    const engine = new Engine(gpu, { contextLength: 64, slots: 2 });
    const start = gpu.allocatedBytes;
    let loadedBytes = 0;
    for (let i = 0; i < 20; i++) {
      await engine.load(new NodeDirFiles('demo', demo));
      await engine.loadAdapter(new NodeDirFiles('qv', adapter), 'qv');
      loadedBytes = gpu.allocatedBytes - start;
      await engine.generate({ promptIds: [1, 2, 3], maxNewTokens: 2, adapter: 'qv', sampling: { temperature: 0 } });
      engine.unload();
      expect(gpu.allocatedBytes).toBe(start);
    }
    expect(loadedBytes).toBeGreaterThan(6e6); // the demo model's weights were really there
  });

  it('a load refused halfway (a NaN in the last tensor) frees what it allocated', async () => {
    const gpu = await testGpu();
    const m = syntheticModel({ hiddenSize: 24, intermediateSize: 40, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 6, vocabSize: 61, tied: false, seed: 1 });
    const tensors = [...m.tensors].map(([name, t]) => ({ name, dtype: 'F32', shape: t.shape, data: encodeFromF32(name === 'lm_head.weight' ? t.data.map((v, i) => (i === 7 ? NaN : v)) : t.data, 'F32') }));
    const files = new MemoryFiles('nan', new Map([
      ['config.json', new TextEncoder().encode(JSON.stringify(m.config))],
      ['model.safetensors', writeSafetensors(tensors)],
      ['tokenizer.json', tinyTokenizerJson(61)],
    ]));
    const engine = new Engine(gpu, { contextLength: 32, slots: 1 });
    const start = gpu.allocatedBytes;
    await expect(engine.load(files)).rejects.toThrow(NonFiniteError);
    expect(gpu.allocatedBytes).toBe(start);
  });

  it('a training run that fails leaves no adapter behind; a finished one stays on the shelf', async () => {
    const gpu = await testGpu();
    const engine = new Engine(gpu, { contextLength: 64, slots: 1 });
    await engine.load(new NodeDirFiles('demo', demo));
    const afterLoad = gpu.allocatedBytes;
    const records = [{ kind: 'alpaca' as const, instruction: 'Say hi.', input: '', output: 'Hi!' }, { kind: 'alpaca' as const, instruction: 'Say bye.', input: '', output: 'Bye!' }];
    const config = { steps: 2, microBatch: 1, gradAccumulation: 1, cutoff: 64, warmupSteps: 0, evalEvery: 0, checkpointEvery: 0, validationFraction: 0 };
    const failing = engine.train({ name: 'doomed', records, format: 'alpaca', config }, { onStep: () => { throw new Error('hook failed'); } });
    await expect(failing).rejects.toThrow('hook failed');
    expect(engine.adapters.map((a) => a.name)).toEqual([]);
    expect(gpu.allocatedBytes).toBe(afterLoad);
    await engine.train({ name: 'kept', records, format: 'alpaca', config });
    expect(engine.adapters.map((a) => a.name)).toEqual(['kept']);
    engine.unload();
  });
});

describe('one pipeline cache per device', () => {
  it("a training run's GPU memory is known before it starts: the estimate matches what the run allocates", async () => {
    const gpu = await testGpu();
    const engine = new Engine(gpu, { contextLength: 128, slots: 2 });
    await engine.load(new NodeDirFiles('demo', demo));
    const config = { ...DEFAULT_TRAIN_CONFIG, rank: 8, microBatch: 2, cutoff: 80, targetModules: ['q_proj' as const, 'v_proj' as const, 'down_proj' as const] };
    const est = engine.trainMemory(config);
    const before = gpu.allocatedBytes;
    const step = new TrainStep(gpu, engine.runner.model, initAdapter('m', engine.runner.cfg, config, null), config, { batch: 2, seqLen: 80 });
    step.graphFor(80);
    const one = gpu.allocatedBytes - before;
    // Every bucket's graph (16, 32, 48, 64) over the one set of activations: only their own rows' inputs are added.
    for (const T of lengthBuckets(80)) step.graphFor(T);
    const all = gpu.allocatedBytes - before;
    console.log(`training memory: estimate ${est.totalBytes} B, allocated ${one} B; all buckets: estimate ${est.allBucketsBytes + est.adapterBytes} B, allocated ${all} B`);
    // The rest is each graph's uniforms and the staging buffer (about 20 KB a graph here): within 1%.
    expect(Math.abs(one - est.totalBytes) / one).toBeLessThan(0.01);
    // The four shorter graphs share the first one's activations: together they add under 1% (measured 0.84%; each
    // had its own before: 126% more), and the estimate of every bucket is within 1.5% (measured 1.04%).
    expect((all - one) / one).toBeLessThan(0.01);
    expect(Math.abs(all - (est.allBucketsBytes + est.adapterBytes)) / all).toBeLessThan(0.015);
    step.destroy();
    engine.unload();
  });

  it('a decode step reads each weight once and little else: within 1.2x of the weight bytes at f32 and q4', async () => {
    const gpu = await testGpu();
    for (const precision of ['f32', 'q4'] as const) {
      const engine = new Engine(gpu, { contextLength: 256, slots: 1 });
      const info = await engine.load(new NodeDirFiles('demo', demo), undefined, undefined, { precision });
      const cfg = engine.runner.cfg;
      const position = 31;
      const r = engine.runner.readBytes({ tokens: [100], slots: [0], positions: [position], seqs: 1, lastStride: 1, lastOffset: 0 });
      // Tied embedding: the lm_head reads it whole, so every weight buffer is read, each once.
      expect(r.weights).toBe(info.weightBytes);
      expect(r.kv).toBe(2 * cfg.numLayers * (position + 1) * cfg.numKvHeads * cfg.headDim * 4);
      const total = r.weights + r.kv + r.other;
      console.log(`built-in model ${precision}: a decode step at position ${position} reads ${total} bytes = ${(total / info.weightBytes).toFixed(4)} x its weights (${info.weightBytes}; KV ${r.kv}, the rest ${r.other})`);
      expect(total / info.weightBytes).toBeLessThan(1.2);
      engine.unload();
    }
  });

  // GPU shapes: prefill by gemm, decode by the one-row gemv, 2-8 rows by gemv. The broadcast matmul of CPU adapters
  // with fixed-size subgroups likewise: one row, blocks of 4 rows for 2-8, blocks of 16 rows by 4 columns for more
  // (and the many-row attention).
  it.each([['GPU shapes', true], ['CPU broadcast', false]])('a kernel variant is compiled when first used (%s): a greedy chat needs neither the gemv for 2-8 rows, the lm_head gemm nor the top-k sort', async (_, noSubgroups) => {
    const gpu = await createNodeGpu({ forceF32: true, noSubgroups });
    if (!noSubgroups) subgroupOf(gpu);
    const engine = new Engine(gpu, { contextLength: 64, slots: 2, quickStart: false });
    await engine.load(new NodeDirFiles('demo', demo));
    const atLoad = gpu.pipelines.compiles;
    const chat = { promptIds: Array.from({ length: 12 }, (_, i) => i + 1), maxNewTokens: 3, sampling: { temperature: 0 } };
    const first = await engine.generate(chat); // prefill (gemm), then decode (one-row gemv)
    const afterChat = gpu.pipelines.compiles;
    expect(afterChat).toBeGreaterThan(atLoad);
    expect((await engine.generate(chat)).tokens).toEqual(first.tokens);
    expect(gpu.pipelines.compiles).toBe(afterChat);
    await engine.generate({ ...chat, promptIds: [1, 2, 3] }); // 3 rows: the gemv variant, made now
    const afterRows = gpu.pipelines.compiles;
    expect(afterRows).toBeGreaterThan(afterChat);
    // Greedy so far: the best token by a reduction; the first sampled answer makes the top-k sort (two kernels).
    await engine.generate({ ...chat, sampling: { temperature: 0.7 } });
    expect(gpu.pipelines.compiles).toBe(afterRows + 2);
    engine.unload();
    gpu.destroy();
  });

  it("the variants a forward needs for the first time are created side by side (createComputePipelineAsync), none in the forward's own encoding", async () => {
    const { gpu, engine } = await demoOnOwnDevice();
    const d = gpu.device;
    const calls = { sync: 0, async: 0 };
    const [sync, parallel] = [d.createComputePipeline.bind(d), d.createComputePipelineAsync.bind(d)];
    d.createComputePipeline = (desc) => { calls.sync++; return sync(desc); };
    d.createComputePipelineAsync = (desc) => { calls.async++; return parallel(desc); };
    const atLoad = gpu.pipelines.compiles;
    const chat = { promptIds: Array.from({ length: 12 }, (_, i) => i + 1), maxNewTokens: 3, sampling: { temperature: 0 } };
    const first = await engine.generate(chat); // prefill: the gemm variants, many-row attention, the best-token reduction; decode: the one-row gemv
    expect(calls.async).toBe(gpu.pipelines.compiles - atLoad);
    expect(calls.async).toBeGreaterThan(3);
    expect(calls.sync).toBe(0);
    // The same answer as a device that makes each pipeline where it is first encoded.
    const { gpu: plain, engine: other } = await demoOnOwnDevice((g) => { g.pipelines.prepare = async () => {}; });
    expect((await other.generate(chat)).tokens).toEqual(first.tokens);
    other.unload();
    plain.destroy();
    engine.unload();
    gpu.destroy();
  });

  it('an adapter removed while a forward waits for its pipelines fails that forward with a typed error, and the next one runs', async () => {
    const { gpu, engine } = await demoOnOwnDevice();
    const info = await engine.loadAdapter(new NodeDirFiles('demo-short', adapter));
    const rows = 12;
    const input = (slot: number) => ({
      tokens: Array.from({ length: rows }, (_, i) => i + 1), slots: Array(rows).fill(0), positions: Array.from({ length: rows }, (_, i) => i),
      loraSlots: Array(rows).fill(slot), loraScales: Array(rows).fill(1), seqs: 1, lastStride: rows, lastOffset: rows - 1,
    });
    const slot = engine.runner.lora.slotOf(info.name);
    const waiting = engine.runner.forward(input(slot)); // many rows, first time: it waits for the gemm variants' pipelines
    engine.removeAdapter(info.name);
    await expect(waiting).rejects.toThrow(/LoRA slot \d+ holds no adapter/);
    const [best] = await engine.runner.forward(input(0));
    expect(Number.isInteger(best.ids[0])).toBe(true);
    engine.unload();
    gpu.destroy();
  });

  it('a shader text compiles once per device across inference and two training buckets', async () => {
    const { gpu, engine } = await demoOnOwnDevice();
    const short = { promptIds: [1, 2, 3], maxNewTokens: 2, sampling: { temperature: 0 } };
    await engine.generate(short); // no adapter resident: the matmuls without the LoRA epilogue (made on first use)
    await engine.loadAdapter(new NodeDirFiles('qv', adapter), 'qv');
    await engine.generate({ promptIds: Array.from({ length: 12 }, (_, i) => i + 1), maxNewTokens: 2, adapter: 'qv', sampling: { temperature: 0 } });
    const afterInference = gpu.pipelines.compiles;
    const runner = engine.runner;
    const config = { ...DEFAULT_TRAIN_CONFIG, rank: 8, targetModules: ['q_proj' as const, 'v_proj' as const] };
    const step = new TrainStep(gpu, runner.model, initAdapter('t', runner.cfg, config, null), config, { batch: 2, seqLen: 32 });
    const g = step.graphFor(16);
    const afterFirstBucket = gpu.pipelines.compiles;
    const used = new Set([...g.micro, ...g.forwardOnly, ...g.optimizer].map((d) => d.pipeline)).size;
    step.graphFor(32);
    expect(gpu.pipelines.compiles).toBe(afterFirstBucket); // the second bucket compiles nothing
    expect(afterFirstBucket).toBeGreaterThan(afterInference); // backward kernels are new...
    // ...but the forward kernels training shares with inference (embed, rope, attention, LoRA matmuls) are not.
    expect(afterFirstBucket - afterInference).toBeLessThan(used);
    const again = gpu.pipelines.compiles;
    engine.unload();
    await engine.load(new NodeDirFiles('demo', demo));
    await engine.generate(short);
    expect(gpu.pipelines.compiles).toBe(again); // reloading a model compiles nothing either
    step.destroy();
    engine.unload();
    gpu.destroy();
  });
});
