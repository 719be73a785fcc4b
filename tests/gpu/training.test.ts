// The training loop end to end on tiny models: it learns (memorizes 4 pairs), it is deterministic, resume continues
// the same curve, masking keeps the prompt out of the loss, and the trained adapter exports and re-imports intact.

import { describe, expect, it } from 'vitest';
import { exampleFromIds, IGNORE } from '../../src/lib/data/examples.js';
import { readPeftAdapter, writePeftAdapter } from '../../src/lib/lora/peft.js';
import { generateColumns, type GenerateOptions } from '../../src/lib/model/generate.js';
import { DEFAULT_TRAIN_CONFIG, type TrainConfig } from '../../src/lib/training/train-config.js';
import { toGpuBatch, Trainer, type Checkpoint } from '../../src/lib/training/trainer.js';
import { epochBatches } from '../../src/lib/data/batches.js';
import { testGpu } from '../helpers/gpu.js';
import { tinyRunner } from '../helpers/models.js';
import type { SyntheticSpec } from '../../src/lib/model/synthetic.js';

const spec: SyntheticSpec = { hiddenSize: 24, intermediateSize: 40, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 6, vocabSize: 61, tied: false, seed: 31 };
const EOS = 2;
const pairs = [
  [[10, 11, 12], [40, 41, 42, 43, 44]],
  [[13, 14, 15], [45, 46, 47, 48, 49]],
  [[16, 17, 18], [50, 51, 52, 53, 54]],
  [[19, 20, 21], [55, 56, 57, 58, 59]],
].map(([p, r]) => ({ prompt: p, response: [...r, EOS] }));
const examples = pairs.map((p) => exampleFromIds(p.prompt, p.response));
const config: TrainConfig = {
  ...DEFAULT_TRAIN_CONFIG, rank: 8, alpha: 16, dropout: 0, targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
  learningRate: 2e-2, warmupSteps: 5, schedule: 'cosine', steps: 120, microBatch: 2, gradAccumulation: 2, cutoff: 16,
  maxGradNorm: 1, evalEvery: 0, checkpointEvery: 0, seed: 7,
};
const greedy: GenerateOptions = { temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1, seed: 0, maxNewTokens: 6, eosTokenIds: [EOS] };

async function greedyTokens(runner: Awaited<ReturnType<typeof tinyRunner>>['runner'], prompt: number[], loraSlot: number) {
  const out: number[] = [];
  await generateColumns(runner, prompt, [{ loraSlot, strength: 1 }], greedy, ({ token }) => { out.push(token); });
  return out;
}

describe('training', () => {
  it('memorizes 4 prompt/response pairs; greedy decoding through the adapter reproduces them, the base does not', async () => {
    const gpu = await testGpu();
    const { runner } = await tinyRunner(gpu, spec, { slots: 2, contextLength: 32, maxRows: 16 });
    const trainer = new Trainer(gpu, runner.model, 'memorize', config, { train: examples, validation: [] }, 'tiny');
    const losses: number[] = [];
    const adapter = await trainer.run({ onStep: (m) => losses.push(m.trainLoss) });
    expect(losses.length).toBe(120);
    expect(losses.at(-1)!).toBeLessThan(0.05);
    expect(losses[0]).toBeGreaterThan(1);
    const slot = runner.lora.add(adapter);
    for (const p of pairs) {
      expect(await greedyTokens(runner, p.prompt, slot)).toEqual(p.response);
      expect(await greedyTokens(runner, p.prompt, 0)).not.toEqual(p.response);
    }
    // Export -> import -> the same outputs.
    const files = writePeftAdapter(adapter);
    const back = readPeftAdapter('reimported', JSON.parse(files.config), files.safetensors);
    const slot2 = runner.lora.add(back);
    for (const p of pairs) expect(await greedyTokens(runner, p.prompt, slot2)).toEqual(p.response);
    trainer.destroy();
  });

  it('same seed, same data: the same loss curve bit for bit; stopping at step k and resuming continues it exactly', async () => {
    const gpu = await testGpu();
    const cfg = { ...config, steps: 8, dropout: 0.1 };
    const run = async (until?: number, resume?: Checkpoint) => {
      const { runner } = await tinyRunner(gpu, spec, { slots: 1, contextLength: 32, maxRows: 16 });
      const t = new Trainer(gpu, runner.model, 'det', cfg, { train: examples, validation: [] }, 'tiny', resume);
      const losses: number[] = [];
      await t.run({ onStep: (m) => losses.push(m.trainLoss) }, {}, until);
      const cp = await t.checkpoint();
      t.destroy();
      return { losses, cp };
    };
    const a = await run();
    const b = await run();
    expect(b.losses).toEqual(a.losses);
    const first = await run(3);
    expect(first.losses).toEqual(a.losses.slice(0, 3));
    const rest = await run(undefined, first.cp);
    expect(rest.losses).toEqual(a.losses.slice(3));
    expect(rest.cp.history.train.map(([, l]) => l)).toEqual(a.losses);
  });

  it('with train_on_inputs off the prompt is masked: changing prompt labels changes nothing, with it on it does', async () => {
    const masked = exampleFromIds([10, 11, 12, 13], [40, 41, EOS], false);
    expect(masked.targets).toEqual([IGNORE, IGNORE, IGNORE, 40, 41, EOS, IGNORE]);
    const unmasked = exampleFromIds([10, 11, 12, 13], [40, 41, EOS], true);
    expect(unmasked.targets.slice(0, 3)).toEqual([11, 12, 13]);

    const gpu = await testGpu();
    const { runner } = await tinyRunner(gpu, spec, { slots: 1, contextLength: 32, maxRows: 16 });
    const t = new Trainer(gpu, runner.model, 'mask', { ...config, microBatch: 1, gradAccumulation: 1 }, { train: [masked], validation: [] }, 'tiny');
    const lossOf = async (targets: number[]) => {
      const [b] = epochBatches([{ ...masked, targets }], 1, t.seqLen, 1, 0, 'length');
      return (await t.step.evaluate(toGpuBatch(b))).lossSum;
    };
    const base = await lossOf(masked.targets);
    // The same example with other prompt-position labels, still masked: identical loss.
    expect(await lossOf(masked.targets.map((x, i) => (i < 3 ? IGNORE : x)))).toBe(base);
    // Unmasking the prompt positions (train_on_inputs) adds their terms.
    expect(await lossOf(unmasked.targets)).toBeGreaterThan(base);
    t.destroy();
  });
});

describe('length buckets', () => {
  it('a short batch runs the graph of its length bucket and gets the loss it would get padded to the full length', async () => {
    const { lengthBucket, lengthBuckets, narrowBatch } = await import('../../src/lib/data/batches.js');
    // Multiples of 16, then of an eighth of the power of two below: a batch's longest row pads by <= 15 tokens or 1/8.
    expect([5, 16, 17, 33, 130, 256, 257, 300, 513, 1000].map((n) => lengthBucket(n, 4096))).toEqual([16, 16, 32, 48, 144, 256, 288, 320, 576, 1024]);
    expect([lengthBucket(5, 40), lengthBucket(33, 40), lengthBucket(3, 9)]).toEqual([16, 40, 9]);
    expect(lengthBuckets(80)).toEqual([16, 32, 48, 64, 80]);
    for (let n = 1; n <= 3000; n++) {
      const b = lengthBucket(n, 4096);
      expect(b >= n && (b - n < 16 || (b - n) / n <= 1 / 8)).toBe(true);
    }
    const gpu = await testGpu();
    const { runner } = await tinyRunner(gpu, spec, { slots: 1, contextLength: 64, maxRows: 16 });
    const long = exampleFromIds(Array.from({ length: 10 }, (_, i) => 3 + i), Array.from({ length: 30 }, (_, i) => 20 + i));
    const t = new Trainer(gpu, runner.model, 'buckets', { ...config, microBatch: 2, gradAccumulation: 1, cutoff: 64 }, { train: [...examples, long], validation: [] }, 'tiny');
    expect(t.seqLen).toBe(40);
    const [full] = epochBatches(examples.slice(0, 2), 2, 40, 1, 0, 'length');
    const short = narrowBatch(full, 2, 40, 16);
    const a = await t.step.evaluate(toGpuBatch(full));
    const b = await t.step.evaluate(toGpuBatch(short));
    expect(b.tokens).toBe(a.tokens);
    expect(Math.abs(b.lossSum - a.lossSum)).toBeLessThan(1e-4 * a.lossSum);
    t.destroy();
  });
});
