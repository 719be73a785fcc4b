// The reward model on onnxruntime-web (wasm, in Node): a real transformer classifier written as ONNX by
// scripts/reward/make-test-model.py scores texts equal to a float64 reference of the same weights; bad models and
// folders give typed errors that say what to do.

import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-web';
import { beforeAll, describe, expect, it } from 'vitest';
import { FileFormatError, NonFiniteError, TimeLimitError, TokenizerError, UnsupportedModelError } from '../../src/lib/errors.js';
import { nodeOrt } from '../../src/cli/ort-node.js';
import { loopingRewardModel } from '../helpers/onnx-writer.js';
import { MemoryFiles } from '../../src/lib/model-files.js';
import { NodeDirFiles } from '../../src/lib/hub/node-files.js';
import { RewardModel } from '../../src/lib/reward/onnx-reward.js';
import { readF32Weights, rewardReference, erf, type RewardConfig } from '../reference/reward.js';

const dir = new URL('../fixtures/reward-tiny/', import.meta.url).pathname;
const file = (p: string) => new Uint8Array(readFileSync(dir + p));
const config = JSON.parse(readFileSync(dir + 'config.json', 'utf8')) as RewardConfig & { max_position_embeddings: number };
const weights = readF32Weights(file('reference-weights.safetensors'));
// ORT computes in float32: the largest difference from the float64 reference measured over these texts is 5.2e-7
// (scores of magnitude ~1). The issue asks for 1e-4; we hold it to 10x the measured error.
const ATOL = 5e-6;

ort.env.wasm.numThreads = 1;
let model: RewardModel;
beforeAll(async () => {
  model = await RewardModel.load(ort, new NodeDirFiles('reward-tiny', dir));
});

const TEXTS: [string, string][] = [
  ['Give three tips for staying healthy.', '1. Eat a balanced diet. 2. Exercise regularly. 3. Sleep well.'],
  ['What is the capital of France?', 'Paris.'],
  ['Translate to French: good morning', ''],
  ['Explain photosynthesis.', 'Plants turn light, water and carbon dioxide into sugar and oxygen. '.repeat(4)],
];

describe('a reward model whose graph misbehaves', () => {
  /** The real session of the tiny model with its run replaced: what a broken or mismatched model does at run time. */
  const withRun = (run: () => Promise<unknown>) => ({
    ...ort,
    InferenceSession: {
      create: async (...args: Parameters<typeof ort.InferenceSession.create>) => {
        const s = await ort.InferenceSession.create(...args);
        return { inputNames: s.inputNames, outputNames: s.outputNames, outputMetadata: s.outputMetadata, run, release: () => s.release() };
      },
    },
  }) as unknown as typeof ort;

  it('a NaN or infinite score is refused with NonFiniteError, never printed as a number', async () => {
    for (const bad of [NaN, Infinity]) {
      const m = await RewardModel.load(withRun(async () => ({ logits: { data: new Float32Array([bad]) } })), new NodeDirFiles('reward-tiny', dir));
      await expect(m.score('Name a colour.', 'Blue.')).rejects.toThrow(NonFiniteError);
    }
  });

  it("onnxruntime's refusal at run time becomes a typed error that says what the model should take", async () => {
    const m = await RewardModel.load(withRun(async () => { throw new Error('failed to call OrtRun(). ERROR_CODE: 2, ERROR_MESSAGE: Unexpected input data type'); }), new NodeDirFiles('reward-tiny', dir));
    const err = await m.score('Name a colour.', 'Blue.').catch((e) => e);
    expect(err).toBeInstanceOf(UnsupportedModelError);
    expect(err.message).toMatch(/could not score a text of \d+ tokens: onnxruntime refused its inputs .* int64 input_ids/);
  });
});

describe('the float64 reference', () => {
  it('computes erf to about 1e-13 (checked against tabulated values)', () => {
    for (const [x, e] of [[0.5, 0.5204998778130465], [1, 0.8427007929497149], [2, 0.9953222650189527], [-2.9, -0.9999589021219005], [3.5, 0.9999992569016276]]) {
      expect(Math.abs(erf(x) - e)).toBeLessThan(1e-13); // measured 2.1e-14 at -2.9 (the series cancels there); the scores differ at 1e-6
    }
  });
});

describe('RewardModel on onnxruntime-web (wasm)', () => {
  it('reads the transformers.js layout and says which execution provider ran', () => {
    expect(model.info).toMatchObject({ onnxPath: 'onnx/model.onnx', provider: 'wasm', maxTokens: 256, inputs: ['input_ids', 'attention_mask'] });
  });

  it('scores texts as the float64 reference does', async () => {
    let worst = 0;
    for (const [q, a] of TEXTS) {
      const { ids, truncated } = model.ids(q, a);
      expect(truncated).toBe(false);
      const got = await model.score(q, a);
      const want = rewardReference(weights, config, ids);
      worst = Math.max(worst, Math.abs(got.score - want));
      expect(Math.abs(got.score - want), `${q} | ${a}`).toBeLessThanOrEqual(ATOL + 1e-6 * Math.abs(want));
      expect(got.tokens).toBe(ids.length);
    }
    console.log(`reward model, largest |ORT - float64| over ${TEXTS.length} texts: ${worst.toExponential(2)}`);
    // Different texts score differently (a model that ignores its input would pass the comparison above only by luck).
    const scores = await Promise.all(TEXTS.map(([q, a]) => model.score(q, a)));
    expect(new Set(scores.map((s) => s.score.toFixed(6))).size).toBe(TEXTS.length);
  });

  it('renders the question and answer through the chat template', () => {
    const { ids } = model.ids('Hi?', 'Hello.');
    expect(model.tokenizer.decode(ids, false)).toBe('<|im_start|>user\nHi?<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n');
  });

  it('keeps the last max_position_embeddings tokens of a longer text, and says so', async () => {
    const long = 'word '.repeat(400);
    const r = await model.score('Write a lot.', long);
    expect(r).toMatchObject({ truncated: true, tokens: config.max_position_embeddings });
    const { ids } = model.ids('Write a lot.', long);
    expect(Math.abs(r.score - rewardReference(weights, config, ids))).toBeLessThanOrEqual(ATOL);
  });

  it('reads model.onnx at the folder root too, and falls back from WebGPU to wasm where WebGPU cannot run it', async () => {
    const files = new MemoryFiles('flat', new Map([['model.onnx', file('onnx/model.onnx')], ['tokenizer.json', file('tokenizer.json')], ['tokenizer_config.json', file('tokenizer_config.json')]]));
    const m = await RewardModel.load(ort, files, ['webgpu', 'wasm']);
    expect(m.info.onnxPath).toBe('model.onnx');
    expect(m.info.provider).toBe('wasm');
    expect(m.info.fallbackReason).toBeTruthy();
    expect(m.info.maxTokens).toBe(512); // no config.json: a common default
    expect((await m.score(...TEXTS[1])).score).toBeCloseTo((await model.score(...TEXTS[1])).score, 6);
  });

  it('refuses wrong inputs with typed errors', async () => {
    const twoLabels = new Uint8Array(readFileSync(new URL('../fixtures/reward-two-labels/model.onnx', import.meta.url)));
    const tok = (): [string, Uint8Array][] => [['tokenizer.json', file('tokenizer.json')]];
    await expect(RewardModel.load(ort, new MemoryFiles('two', new Map([['model.onnx', twoLabels], ...tok()])))).rejects.toThrow(UnsupportedModelError);
    await expect(RewardModel.load(ort, new MemoryFiles('two', new Map([['model.onnx', twoLabels], ...tok()])))).rejects.toThrow(/outputs 2 logits per text/);
    await expect(RewardModel.load(ort, new MemoryFiles('no-tok', new Map([['model.onnx', file('onnx/model.onnx')]])))).rejects.toThrow(TokenizerError);
    await expect(RewardModel.load(ort, new MemoryFiles('no-onnx', new Map(tok())))).rejects.toThrow(FileFormatError);
    await expect(RewardModel.load(ort, new MemoryFiles('junk', new Map([['model.onnx', new TextEncoder().encode('not onnx')], ...tok()])))).rejects.toThrow(/cannot run junk\/model.onnx/);
  });
});

describe('a reward model in a thread of its own, under a time limit (the CLI and the app run every session so)', () => {
  const tok = (): [string, Uint8Array][] => [['tokenizer.json', file('tokenizer.json')], ['tokenizer_config.json', file('tokenizer_config.json')]];

  it('scores what the same session scores in this thread', async () => {
    const threaded = await RewardModel.load(nodeOrt(60_000), new NodeDirFiles('reward-tiny', dir));
    try {
      for (const [q, a] of TEXTS) expect((await threaded.score(q, a)).score).toBe((await model.score(q, a)).score);
    } finally {
      await threaded.dispose();
    }
  });

  it('a graph that loops 10^12 times is stopped at the limit with TimeLimitError, and the model stays refused', async () => {
    // Five iterations finish: the model itself is sound (the sum of the ids, plus 5).
    const five = await RewardModel.load(nodeOrt(60_000), new MemoryFiles('loop-5', new Map([['model.onnx', loopingRewardModel(5n)], ...tok()])));
    const ids = five.ids('Hi?', 'Hello.').ids;
    expect((await five.score('Hi?', 'Hello.')).score).toBe(ids.reduce((a, b) => a + b, 0) + 5);
    await five.dispose();

    const forever = await RewardModel.load(nodeOrt(1_500), new MemoryFiles('loop-forever', new Map([['model.onnx', loopingRewardModel(10n ** 12n)], ...tok()])));
    const t0 = performance.now();
    const err = await forever.score('Hi?', 'Hello.').catch((e) => e);
    expect(err).toBeInstanceOf(TimeLimitError);
    expect(err.message).toMatch(/loop-forever took longer than 1\.5 s to score one text, and was stopped: its graph loops/);
    expect(performance.now() - t0).toBeLessThan(30_000); // stopped, not run to the end (which would take hours)
    await expect(forever.score('Hi?', 'Hello.')).rejects.toThrow(TimeLimitError);
  });
});
