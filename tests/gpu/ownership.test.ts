// Who owns which GPU buffer, and what happens when an owner changes what others borrow: a failed resume leaves the
// shelf (the bank's adapters) and the allocated bytes as they were; a reward scorer and a paused training run keep
// working, with the same scores and losses, when adapters are added and removed beside them (the bank rebuilds its
// buffers, which their graphs bind); Engine.load of a bad source keeps the model that was loaded.

import { describe, expect, it } from 'vitest';
import { exampleFromIds } from '../../src/lib/data/examples.js';
import { Engine } from '../../src/lib/engine.js';
import { MemoryFiles } from '../../src/lib/model-files.js';
import { syntheticAdapter } from '../../src/lib/lora/synthetic.js';
import { EngineRewardModel } from '../../src/lib/reward/reward-adapter.js';
import { initHead } from '../../src/lib/training/reward-trainer.js';
import { DEFAULT_TRAIN_CONFIG, type TrainConfig } from '../../src/lib/training/train-config.js';
import { Trainer, type Checkpoint } from '../../src/lib/training/trainer.js';
import type { SyntheticSpec } from '../../src/lib/model/synthetic.js';
import type { TextTokenizer } from '../../src/lib/tokenizer/tokenizer.js';
import { testGpu } from '../helpers/gpu.js';
import { tinyRunner } from '../helpers/models.js';
import { tinyTokenizerJson } from '../helpers/tiny-tokenizer.js';
import { syntheticModel } from '../../src/lib/model/synthetic.js';

const spec: SyntheticSpec = { hiddenSize: 24, intermediateSize: 40, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 6, vocabSize: 61, tied: false, seed: 31 };
const examples = [[10, 11, 12], [13, 14, 15], [16, 17, 18]].map((p, i) => exampleFromIds(p, [40 + i, 41 + i, 42 + i, 2]));
const config: TrainConfig = {
  ...DEFAULT_TRAIN_CONFIG, rank: 4, alpha: 8, dropout: 0.1, targetModules: ['q_proj', 'v_proj', 'o_proj', 'down_proj'],
  learningRate: 1e-2, warmupSteps: 1, steps: 6, microBatch: 2, gradAccumulation: 2, cutoff: 16, evalEvery: 0, checkpointEvery: 0, seed: 5,
};
const shelf = (runner: { lora: { adapters: ({ name: string } | null)[] } }) => runner.lora.adapters.map((a) => a?.name ?? null);

async function checkpointAt(step: number): Promise<Checkpoint> {
  const gpu = await testGpu();
  const { runner } = await tinyRunner(gpu, spec, { slots: 1, contextLength: 32, maxRows: 16 });
  const t = new Trainer(gpu, runner.model, 'run', config, { train: examples, validation: [] }, 'tiny');
  await t.run({}, {}, step);
  const cp = await t.checkpoint();
  t.destroy();
  runner.destroy();
  runner.model.destroy();
  return cp;
}

describe('a failed resume', () => {
  it('(a checkpoint of another rank; a NaN moment) is refused before anything is allocated: the shelf as it was, 0 B more', async () => {
    const cp = await checkpointAt(2);
    const gpu = await testGpu();
    const { runner, config: cfg } = await tinyRunner(gpu, spec, { slots: 1, contextLength: 32, maxRows: 16 });
    // The shelf holds a stopped run's result under the run's name (what "Continue" meets) and another adapter.
    runner.lora.add(syntheticAdapter(cfg, { name: 'run', seed: 1, config: { r: 2, lora_alpha: 4, target_modules: ['q_proj'] } }));
    runner.lora.add(syntheticAdapter(cfg, { name: 'other', seed: 2, config: { r: 3, lora_alpha: 3, target_modules: ['v_proj'] } }));
    const before = { names: shelf(runner), held: runner.lora.adapters[0], bytes: gpu.allocatedBytes, version: runner.lora.version };

    const otherRank: Checkpoint = { ...cp, config: { ...cp.config, rank: 8, alpha: 16 } };
    const nan = structuredClone(cp);
    nan.state.tensors[1].vB[3] = NaN;
    for (const bad of [otherRank, nan]) {
      expect(() => new Trainer(gpu, runner.model, 'run', bad.config, { train: examples, validation: [] }, 'tiny', bad)).toThrow(/checkpoint/);
      expect(shelf(runner)).toEqual(before.names);
      expect(runner.lora.adapters[0]).toBe(before.held);
      expect(gpu.allocatedBytes).toBe(before.bytes);
      // Checked before anything was made: the bank was never touched (an add and a remove would rebuild it twice).
      expect(runner.lora.version).toBe(before.version);
    }
  });
});

describe('borrowers of the bank survive an adapter being added and removed', () => {
  it('a paused training run gives the same losses as one left alone', async () => {
    const gpu = await testGpu();
    const run = async (meddle: boolean) => {
      const { runner, config: cfg } = await tinyRunner(gpu, spec, { slots: 1, contextLength: 32, maxRows: 16 });
      const t = new Trainer(gpu, runner.model, 'run', config, { train: examples, validation: [] }, 'tiny');
      const losses: number[] = [];
      const onStep = (m: { trainLoss: number }) => losses.push(m.trainLoss);
      await t.run({ onStep }, {}, 3);
      if (meddle) {
        // While it is paused, a person loads an adapter of a larger rank (the bank's layout changes) and removes it.
        runner.lora.add(syntheticAdapter(cfg, { name: 'big', seed: 9, config: { r: 7, lora_alpha: 7, target_modules: 'all-linear' } }));
        await t.run({ onStep }, {}, 4);
        runner.lora.remove('big');
      }
      await t.run({ onStep }, {});
      const adapter = await t.step.syncAdapter();
      t.destroy();
      runner.destroy();
      runner.model.destroy();
      return { losses, a: [...adapter.modules.values()].map((m) => Array.from(m.a)) };
    };
    const alone = await run(false);
    const meddled = await run(true);
    expect(meddled.losses).toEqual(alone.losses);
    expect(meddled.a).toEqual(alone.a);
  });

  it('a reward scorer scores the same after adapters are added and removed', async () => {
    const gpu = await testGpu();
    const { runner, config: cfg } = await tinyRunner(gpu, spec, { slots: 1, contextLength: 32, maxRows: 16 });
    const reward = { adapter: syntheticAdapter(cfg, { name: 'rm', seed: 4, config: { r: 2, lora_alpha: 4, target_modules: ['q_proj', 'down_proj'] }, bScale: 0.5 }), head: initHead(cfg.hiddenSize, 3) };
    const scorer = new EngineRewardModel(gpu, runner.model, null as unknown as TextTokenizer, 2, reward, 'rm', 16);
    const ids = [5, 9, 11, 30, 2];
    const first = await scorer.scoreIds(ids);
    runner.lora.add(syntheticAdapter(cfg, { name: 'a', seed: 6, config: { r: 8, lora_alpha: 8, target_modules: 'all-linear' } }));
    expect(await scorer.scoreIds(ids)).toBe(first);
    runner.lora.remove('a');
    expect(await scorer.scoreIds(ids)).toBe(first);
    gpu.check();
    await scorer.dispose();
  });
});

describe('Gpu.guard', () => {
  it('frees what its function made when an error scope fires after it returned', async () => {
    const gpu = await testGpu();
    const before = gpu.allocatedBytes;
    const made = () => [
      gpu.createBuffer('kept', 4096, GPUBufferUsage.STORAGE),
      gpu.createBuffer('invalid', 64, GPUBufferUsage.MAP_READ | GPUBufferUsage.STORAGE), // a validation error, reported late
    ];
    const freed: GPUBuffer[] = [];
    const dispose = (bufs: GPUBuffer[]) => bufs.forEach((b) => { freed.push(b); gpu.destroyBuffer(b); });
    await expect(gpu.guard('making buffers', made, dispose)).rejects.toThrow(/validation error while making buffers/);
    expect(freed.map((b) => b.label)).toEqual(['kept', 'invalid']);
    expect(gpu.allocatedBytes).toBe(before);
  });
});

describe('Engine.load', () => {
  it('of a bad source keeps the loaded model, its answers and its memory', async () => {
    const gpu = await testGpu();
    const engine = new Engine(gpu, { contextLength: 32, slots: 1 });
    const m = syntheticModel(spec);
    const enc = new TextEncoder();
    const entries: [string, Uint8Array][] = [['config.json', enc.encode(JSON.stringify(m.config))], ['model.safetensors', m.safetensors], ['tokenizer.json', tinyTokenizerJson(spec.vocabSize)]];
    await engine.load(new MemoryFiles('good', new Map(entries)));
    const req = { promptIds: [3, 4, 5], maxNewTokens: 5, temperature: 0 };
    const before = await engine.generate(req);
    const bytes = gpu.allocatedBytes;
    const broken = new MemoryFiles('broken', new Map(entries.map(([k, v]) => [k, k === 'model.safetensors' ? v.subarray(0, v.length - 100) : v])));
    const badConfig = new MemoryFiles('bad-config', new Map([...entries, ['config.json', enc.encode('{"architectures": ["GPT2LMHeadModel"]}')]]));
    for (const bad of [broken, badConfig]) {
      await expect(engine.load(bad)).rejects.toThrow();
      expect(engine.info?.label).toBe('good');
      expect(gpu.allocatedBytes).toBe(bytes);
      expect((await engine.generate(req)).tokens).toEqual(before.tokens);
    }
    engine.unload();
  });
});
