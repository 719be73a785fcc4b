// lora-lab train --reward and lora-lab score with the result, as a user runs them: comparison data in the paper's
// format -> a PEFT SEQ_CLS folder (LoRA + score head) -> scores over the built-in model equal to the library's; bad
// input ends with one typed line and exit status 2.

import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, cliHere, jsonLines } from '../helpers/cli.js';
import { Engine } from '../../src/lib/engine.js';
import { NodeDirFiles } from '../../src/lib/hub/node-files.js';
import { loadRewardAdapter } from '../../src/lib/reward/reward-adapter.js';
import { testGpu } from '../helpers/gpu.js';

const dir = mkdtempSync(join(tmpdir(), 'lora-lab-reward-'));
const sample = JSON.parse(readFileSync(new URL('../../public/data/alpaca-gpt4-sample-en.json', import.meta.url), 'utf8')) as { instruction: string; input: string; output: string }[];
// The GPT-4 answer to an instruction is preferred to the answer to another one (as the paper's data prefers GPT-4's).
const comparison = sample.slice(0, 12).map((r, i) => ({
  user_input: r.instruction,
  responses_and_scores: [{ response: r.output, score: 9, source: 'gpt4' }, { response: sample[i + 20].output, score: 2, source: 'off-topic' }],
}));
const data = join(dir, 'comparison.json');
writeFileSync(data, JSON.stringify(comparison));
const out = join(dir, 'rm');
const q = 'Give three tips for staying healthy.';
const answers = ['Eat a balanced diet, exercise regularly and get enough sleep.', 'The capital of France is Paris.'];

describe('lora-lab train --reward', { timeout: 240_000 }, () => {
  it('trains on comparison data and writes a PEFT SEQ_CLS folder that lora-lab score uses, with the library\'s scores', async () => {
    const r = await cli('train', '--reward', '--model', 'builtin', '--data', data, '--out', out, '--steps', '2', '--batch', '2', '--grad-accum', '1',
      '--cutoff', '48', '--warmup', '0', '--val-fraction', '0.25', '--eval-every', '2', '--json');
    expect(r.code, r.stderr).toBe(0);
    const lines = jsonLines(r.stdout);
    expect(lines.filter((l) => l.type === 'step').map((l) => l.step)).toEqual([1, 2]);
    for (const l of lines.filter((x) => x.type === 'step')) expect(l.accuracy).toBeGreaterThanOrEqual(0);
    expect(lines.find((l) => l.type === 'eval')).toMatchObject({ step: 2 });
    expect(lines.at(-1)).toMatchObject({ type: 'done', pairs: { train: 9, validation: 3 } });
    expect(JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8'))).toMatchObject({ task_type: 'SEQ_CLS', modules_to_save: ['score'] });
    expect(readFileSync(join(out, 'README.md'), 'utf8')).toContain('lora-lab score --reward');

    const s = await cli('score', '--reward', out, '--model', 'builtin', '--question', q, ...answers.flatMap((a) => ['--answer', a]), '--json');
    expect(s.code, s.stderr).toBe(0);
    const scored = jsonLines(s.stdout);
    expect(scored.map((o) => o.rank)).toEqual([1, 2]);
    // The same model through the library in this process.
    const engine = new Engine(await testGpu(), { contextLength: 2048, slots: 1 });
    await engine.load(new NodeDirFiles('built-in model', new URL('../../public/models/demo', import.meta.url).pathname, 'lora-lab/built-in-demo'));
    const scorer = engine.rewardScorer(await loadRewardAdapter(new NodeDirFiles('rm', out), engine.runner.cfg.hiddenSize), 'rm');
    for (const o of scored) expect(Math.abs(o.score - (await scorer.score(q, o.text)).score)).toBeLessThan(1e-5);
    await scorer.dispose();
    engine.unload();
  });

  it('refuses bad input with a typed line and exit status 2', async () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify([{ user_input: 'x', responses_and_scores: [{ response: 'a' }] }]));
    const r1 = await cli('train', '--reward', '--model', 'builtin', '--data', bad, '--out', join(dir, 'x'), '--steps', '1');
    expect(r1.code).toBe(2);
    expect(r1.stderr).toMatch(/DatasetError: .*record 1, response 1 needs a "response" text and a finite "score"/);
    const r2 = await cliHere('train', '--reward', '--resume', out);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toMatch(/no checkpoints to resume/);
    const r3 = await cliHere('score', '--reward', out, '--question', q, '--answer', 'a');
    expect(r3.code).toBe(2);
    expect(r3.stderr).toMatch(/scores over its base model: give --model too/);
  });
});
