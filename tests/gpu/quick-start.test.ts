// Quick start on CPU adapters: a prompt's rows run on the one-row kernels decoding compiles anyway while the many-row
// ones are not compiled, bit for bit what decoding the rows one at a time gives; the skipped kernels compile afterwards
// and later steps run them. Each test on a device of its own, so nothing is compiled before it starts.

import { afterEach, describe, expect, it } from 'vitest';
import type { Gpu } from '../../src/lib/gpu/device.js';
import { createNodeGpu } from '../../src/lib/gpu/node.js';
import { Engine } from '../../src/lib/engine.js';
import { generateColumns, QUICK_START_ROWS, type GenerateOptions } from '../../src/lib/model/generate.js';
import type { StepInput } from '../../src/lib/model/runner.js';
import { MemoryFiles } from '../../src/lib/model-files.js';
import { subgroupOf } from '../helpers/gpu.js';
import { tinyTokenizerJson } from '../helpers/tiny-tokenizer.js';
import { TINY_CONFIGS, tinyRunner } from '../helpers/models.js';
import { syntheticModel } from '../../src/lib/model/synthetic.js';

// Qwen3's shapes: Dh 12 (the many-row attention exists for it), q/k norms, a hidden size (30) not a multiple of 4.
const SPEC = TINY_CONFIGS.qwen3QkNorm;
const OPTS = { slots: 2, contextLength: 96, maxRows: 32 };
const prompt = [9, 8, 7, 6, 5, 4, 3, 2, 1, 10, 11]; // 11 rows: the many-row variants' (more than 8)
const rows = (tokens: number[], slot = 0, from = 0): StepInput => ({
  tokens, slots: tokens.map(() => slot), positions: tokens.map((_, i) => from + i), seqs: 1, lastStride: tokens.length, lastOffset: tokens.length - 1,
});
const greedy: GenerateOptions = { temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1, seed: 0, maxNewTokens: 4, eosTokenIds: [] };

const made: Gpu[] = [];
async function freshGpu(): Promise<Gpu> {
  const gpu = await createNodeGpu({ forceF32: true });
  made.push(gpu);
  subgroupOf(gpu); // a CPU adapter: its one-row matmul takes any number of rows
  return gpu;
}
afterEach(async () => {
  for (const g of made.splice(0)) {
    await g.pipelines.idle(); // the engine's compiles after a quick answer
    g.check();
    g.destroy();
  }
});

describe('quick start', () => {
  it('runs a prompt on the one-row kernels, bit for bit as decoding it row by row, then the many-row kernels once compiled', async () => {
    const gpu = await freshGpu();
    const quick = (await tinyRunner(gpu, SPEC, OPTS)).runner;
    await quick.forward({ ...rows(prompt), quick: true });
    expect(quick.stats.quickSteps).toBe(1);
    expect(quick.deferredKernels).toBeGreaterThan(0);
    const quickLogits = await quick.readLogits(1);

    // The same rows decoded one at a time (one-row forwards, which compile nothing new now).
    const compiled = gpu.pipelines.compiles;
    const oneByOne = (await tinyRunner(gpu, SPEC, OPTS)).runner;
    for (let i = 0; i < prompt.length; i++) await oneByOne.forward(rows([prompt[i]], 0, i));
    expect(gpu.pipelines.compiles).toBe(compiled);
    expect(Array.from(quickLogits)).toEqual(Array.from(await oneByOne.readLogits(1)));

    // Once the skipped kernels are compiled, a quick step runs them: the logits of a forward that is not quick.
    await quick.compileDeferred();
    expect(quick.deferredKernels).toBe(0);
    await quick.forward({ ...rows(prompt), quick: true });
    expect(quick.stats.quickSteps).toBe(1);
    const steady = (await tinyRunner(gpu, SPEC, OPTS)).runner;
    await steady.forward(rows(prompt));
    expect(steady.stats.quickSteps).toBe(0);
    expect(Array.from(await quick.readLogits(1))).toEqual(Array.from(await steady.readLogits(1)));
  });

  it("a quick first answer compiles only the kernels decoding needs; one that is not quick compiles the many-row ones too", async () => {
    const compilesOf = async (p: number[], quickStart: boolean) => {
      const gpu = await freshGpu();
      const { runner } = await tinyRunner(gpu, SPEC, OPTS);
      const atLoad = gpu.pipelines.compiles;
      let atLastToken = 0;
      const tokens: number[] = [];
      await generateColumns(runner, p, [{ loraSlot: 0, strength: 1 }], { ...greedy, quickStart }, ({ token, index }) => {
        tokens.push(token);
        if (index === greedy.maxNewTokens - 1) atLastToken = gpu.pipelines.compiles; // before the deferred compiles
      });
      return { compiles: atLastToken - atLoad, tokens, runner };
    };
    const decodeOnly = await compilesOf([prompt[0]], false); // a one-token prompt: one-row forwards only
    const quick = await compilesOf(prompt, true);
    const steady = await compilesOf(prompt, false);
    expect(quick.compiles).toBe(decodeOnly.compiles);
    expect(steady.compiles).toBeGreaterThan(decodeOnly.compiles);
    expect(quick.runner.stats.quickSteps).toBe(1); // the prefill; decoding is one row a step
    expect(steady.runner.stats.quickSteps).toBe(0);
    // The answer is the same either way here (the two prefills differ only in float rounding).
    expect(quick.tokens).toEqual(steady.tokens);
  });

  it(`a prompt of more than QUICK_START_ROWS (${QUICK_START_ROWS}) new rows starts on the many-row kernels`, async () => {
    const gpu = await freshGpu();
    const { runner } = await tinyRunner(gpu, SPEC, { slots: 1, contextLength: 160, maxRows: 64 });
    const long = Array.from({ length: QUICK_START_ROWS + 1 }, (_, i) => (i * 7) % 100);
    await generateColumns(runner, long, [{ loraSlot: 0, strength: 1 }], { ...greedy, quickStart: true }, () => {});
    expect(runner.stats.quickSteps).toBe(0);
    expect(runner.deferredKernels).toBe(0);
  });

  it('counts the rows of every prefill a call makes: two prompts of 40 rows are 80', async () => {
    const gpu = await freshGpu();
    const { runner } = await tinyRunner(gpu, SPEC, { slots: 2, contextLength: 96, maxRows: 64 });
    const two = [0, 1].map((s) => Array.from({ length: 40 }, (_, i) => (i * 7 + s) % 100));
    const columns = [{ loraSlot: 0, strength: 1 }, { loraSlot: 0, strength: 1 }];
    // One of them alone is quick...
    await generateColumns(runner, [two[0]], [columns[0]], { ...greedy, quickStart: true }, () => {});
    expect(runner.stats.quickSteps).toBe(1);
    // ...both are not, though the many-row kernels are still not compiled.
    await generateColumns(runner, two, columns, { ...greedy, quickStart: true }, () => {});
    expect(runner.stats.quickSteps).toBe(1);
    expect(runner.deferredKernels).toBeGreaterThan(0);
  });

  it('the engine starts chat and comparisons quickly, never an evaluation, and not at all when made without it', async () => {
    const run = async (quickStart: boolean | undefined, call: (e: Engine) => Promise<unknown>) => {
      const engine = new Engine(await freshGpu(), { contextLength: 96, slots: 2, ...(quickStart === undefined ? {} : { quickStart }) });
      const m = syntheticModel(SPEC);
      await engine.load(new MemoryFiles('synthetic', new Map([
        ['config.json', new TextEncoder().encode(JSON.stringify(m.config))], ['model.safetensors', m.safetensors], ['tokenizer.json', tinyTokenizerJson(SPEC.vocabSize)],
      ])));
      await call(engine);
      return engine.runner.stats.quickSteps;
    };
    const req = { promptIds: prompt, maxNewTokens: 2, sampling: { temperature: 0 } };
    let said = -1;
    expect(await run(undefined, async (e) => { said = (await e.generate(req)).quickSteps; })).toBe(1);
    expect(said).toBe(1); // the answer says it started quickly
    expect(await run(undefined, (e) => e.compare(req, [{ adapter: null, strength: 1 }, { adapter: null, strength: 1 }]))).toBeGreaterThan(0);
    expect(await run(undefined, (e) => e.generateMany([{ promptIds: prompt, adapter: null, strength: 1 }], { maxNewTokens: 2, sampling: { temperature: 0 } }))).toBe(0);
    expect(await run(false, (e) => e.generate(req))).toBe(0);
  });
});
