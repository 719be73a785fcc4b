// lora-lab score as a user runs it: a reward model from the hub's layout (served locally) scores answers as the
// library does; an evaluation's answers get a mean per model; --best-of samples distinct answers from a model and
// ranks them; bad input ends with one typed line and exit status 2.

import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-web';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, cliHere, jsonLines } from '../helpers/cli.js';
import { NodeDirFiles } from '../../src/lib/hub/node-files.js';
import { RewardModel } from '../../src/lib/reward/onnx-reward.js';
import { startHfServer, type HfServer } from '../helpers/hf-server.js';
import { loopingRewardModel } from '../helpers/onnx-writer.js';

process.env.LORA_LAB_CACHE = mkdtempSync(join(tmpdir(), 'lora-lab-score-cache-'));
const fixture = new URL('../fixtures/reward-tiny/', import.meta.url).pathname;

let server: HfServer;
let reward: RewardModel;
beforeAll(async () => {
  const files = new Map(['onnx/model.onnx', 'tokenizer.json', 'tokenizer_config.json', 'config.json'].map((f) => [f, new Uint8Array(readFileSync(fixture + f))]));
  server = await startHfServer({ 'lab/tiny-reward': { files } });
  ort.env.wasm.numThreads = 1;
  reward = await RewardModel.load(ort, new NodeDirFiles('reward-tiny', fixture));
});
afterAll(() => server.close());

describe('lora-lab score', { timeout: 120_000 }, () => {
  it('downloads a reward model by repo id and ranks the answers given, with the scores the library computes', async () => {
    const q = 'Give three tips for staying healthy.';
    const answers = ['Eat vegetables, walk every day and sleep eight hours.', 'No.', 'Tips are good.'];
    const r = await cli('score', '--reward', 'lab/tiny-reward', '--hf-endpoint', server.endpoint, '--question', q, ...answers.flatMap((a) => ['--answer', a]), '--json');
    expect(r.code, r.stderr).toBe(0);
    const out = jsonLines(r.stdout);
    expect(out.map((o) => o.rank)).toEqual([1, 2, 3]);
    for (const o of out) {
      expect(o.text).toBe(answers[o.answer - 1]);
      expect(Math.abs(o.score - (await reward.score(q, o.text)).score)).toBeLessThan(1e-6);
    }
    expect(out[0].score).toBeGreaterThanOrEqual(out[1].score);
    expect(out[1].score).toBeGreaterThanOrEqual(out[2].score);
  });

  it('--best-of samples distinct answers from the built-in model and ranks them by reward (the reward model from the cache now)', async () => {
    const r = await cli('score', '--reward', 'lab/tiny-reward', '--offline', '--model', 'builtin', '--prompt', 'Name a colour.', '--best-of', '3', '--max-new-tokens', '12', '--json');
    expect(r.code, r.stderr).toBe(0);
    const out = jsonLines(r.stdout);
    expect(out.map((o) => o.rank)).toEqual([1, 2, 3]);
    expect(new Set(out.map((o) => o.text)).size).toBe(3); // each sample has its own seed
    expect(out.map((o) => o.answer).sort()).toEqual([1, 2, 3]);
    expect(out[0].score).toBeGreaterThanOrEqual(out[2].score);
    expect(Math.abs(out[0].score - (await reward.score('Name a colour.', out[0].text)).score)).toBeLessThan(1e-6);
  });

  it('--best-of over a set gives the best answer per question and the rank groups of the paper\'s figure', async () => {
    const r = await cli('score', '--reward', fixture, '--model', 'builtin', '--set', 'vicuna80', '--limit', '2', '--best-of', '3', '--max-new-tokens', '8', '--json');
    expect(r.code, r.stderr).toBe(0);
    const out = jsonLines(r.stdout);
    const questions = out.filter((o) => o.type === undefined);
    expect(questions.map((q) => q.id)).toEqual(['vicuna_1', 'vicuna_2']);
    for (const q of questions) expect(q.score).toBe(Math.max(...q.scores));
    const groups = out.filter((o) => o.type === 'rankGroup');
    expect(groups.map((g) => [g.rank, g.answers])).toEqual([[1, 2], [2, 2], [3, 2]]);
    // Group k's mean is the mean of every question's k-th best score.
    const kth = (k: number) => questions.map((q) => [...q.scores].sort((a: number, b: number) => b - a)[k]);
    groups.forEach((g, k) => expect(g.meanReward).toBeCloseTo((kth(k)[0] + kth(k)[1]) / 2, 10));
    expect(groups[0].meanReward).toBeGreaterThanOrEqual(groups[2].meanReward);
  });

  it("scores an evaluation's answers and gives each model's mean reward", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lora-lab-score-'));
    const results = join(dir, 'results.jsonl');
    const rec = (id: string, model: string, prediction: string) => JSON.stringify({ id, model, prediction, predictionTokens: 3, stopReason: 'eos' });
    // vicuna80 ids are the set's; a torn last line (a stopped run) is skipped.
    writeFileSync(results, [rec('vicuna_1', 'base', 'Sure.'), rec('vicuna_1', 'demo-short@1', 'Here is a long and careful answer.'), rec('vicuna_2', 'base', 'Yes.'), rec('vicuna_2', 'demo-short@1', 'No.')].join('\n') + '\n{"id":"vicuna_3","mod');
    const r = await cli('score', '--reward', fixture, '--results', results, '--set', 'vicuna80', '--json');
    expect(r.code, r.stderr).toBe(0);
    const out = jsonLines(r.stdout);
    const each = out.filter((o) => o.type !== 'summary');
    expect(each).toHaveLength(4);
    const summary = out.filter((o) => o.type === 'summary');
    for (const m of ['base', 'demo-short@1']) {
      const mine = each.filter((o) => o.model === m).map((o) => o.score);
      expect(summary.find((s) => s.model === m).mean).toBeCloseTo((mine[0] + mine[1]) / 2, 10);
    }
    expect(summary.reduce((a, s) => a + s.bestShare, 0)).toBeCloseTo(1, 10); // no ties here: one best model per question
  });

  it('bad input: one typed line, exit status 2', async () => {
    const noReward = await cli('score', '--question', 'q', '--answer', 'a');
    expect(noReward.code).toBe(2);
    expect(noReward.stderr).toMatch(/InvalidArgumentError: Give --reward/);
    const noTokenizer = await cliHere('score', '--reward', new URL('../fixtures/reward-two-labels/', import.meta.url).pathname, '--question', 'q', '--answer', 'a');
    expect(noTokenizer.code).toBe(2);
    expect(noTokenizer.stderr).toMatch(/TokenizerError: .* has no tokenizer\.json/);
    const twoModes = await cliHere('score', '--reward', fixture, '--question', 'q', '--answer', 'a', '--best-of', '2');
    expect(twoModes.stderr).toMatch(/Give exactly one of --question/);
  });

  it('a reward model whose graph loops 10^12 times is stopped at --time-limit: TimeLimitError, exit status 2', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lora-lab-loop-reward-'));
    writeFileSync(join(dir, 'model.onnx'), loopingRewardModel(10n ** 12n));
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) writeFileSync(join(dir, f), readFileSync(fixture + f));
    const t0 = performance.now();
    const r = await cli('score', '--reward', dir, '--question', 'q', '--answer', 'a', '--time-limit', '2', '--json');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/TimeLimitError: .* took longer than 2 s to score one text, and was stopped/);
    expect(r.stdout).toBe('');
    expect(performance.now() - t0).toBeLessThan(60_000);
    expect((await cliHere('score', '--reward', dir, '--question', 'q', '--answer', 'a', '--time-limit', '0')).stderr).toMatch(/--time-limit/);
  });
});
