// DPO teaches the built-in model a preference it can be seen to take: 8 pairs where the chosen answer opens with
// "Sure!" and the rejected one is the same answer without it. After a short run the implicit reward
// (beta (log pi - log pi_ref)) orders held-back pairs of other instructions right, and greedy answers to the held-back
// instructions open with "Sure" more often than the base's. Numbers printed for the closing note.

import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { Engine } from '../../src/lib/engine.js';
import { NodeDirFiles } from '../../src/lib/hub/node-files.js';
import type { PreferenceRecord } from '../../src/lib/data/preference-data.js';
import { testGpu } from '../helpers/gpu.js';
import { preferenceExamples } from '../../src/lib/training/preference-session.js';
import { referenceLogps } from '../../src/lib/training/preference-trainer.js';

const en = JSON.parse(readFileSync(new URL('../../public/data/alpaca-gpt4-sample-en.json', import.meta.url), 'utf8')) as { instruction: string; input: string; output: string }[];
const firstSentence = (s: string) => (/^[^.!?]*[.!?]/.exec(s)?.[0] ?? s.slice(0, 80)).trim();
// Instructions without an input, from the 64 the base learned: 8 to train on, 8 held back.
const records = en.slice(0, 64).filter((r) => !r.input.trim()).slice(0, 16);
const pair = (r: (typeof records)[number]): PreferenceRecord => ({ prompt: r.instruction, chosen: `Sure! ${firstSentence(r.output)}`, rejected: firstSentence(r.output) });

it('DPO on 8 pairs: held-back pairs ordered right by the implicit reward, greedy answers open with the preferred word more often', async () => {
  const engine = new Engine(await testGpu(), { contextLength: 256, slots: 4 });
  await engine.load(new NodeDirFiles('built-in model', new URL('../../public/models/demo/', import.meta.url).pathname, 'lora-lab/built-in-demo'));
  const train = records.slice(0, 8).map(pair);
  const heldBack = records.slice(8, 16);
  const opening = async (adapter: string | null) => {
    let n = 0;
    for (const r of heldBack) {
      const g = await engine.generate({ prompt: r.instruction, format: 'chat', maxNewTokens: 3, sampling: { temperature: 0, repetitionPenalty: 1 }, adapter });
      if (/^\s*Sure/.test(g.text)) n++;
    }
    return n;
  };
  const before = await opening(null);
  const info = await engine.trainPreference({
    name: 'sure', records: train, objective: 'dpo', preference: { beta: 0.1 }, format: 'chat',
    config: { rank: 8, alpha: 16, dropout: 0, learningRate: 5e-3, warmupSteps: 0, steps: 12, microBatch: 4, gradAccumulation: 1, cutoff: 96, validationFraction: 0, evalEvery: 0, checkpointEvery: 0, seed: 7 },
  });
  // The implicit reward beta (log pi - log pi_ref) of each held-back answer: the adapter against the base (adapter off).
  const { examples } = preferenceExamples(engine.tokenizer, heldBack.map(pair), { format: 'chat', cutoff: 96, eosId: engine.trainingEos });
  const policy = await referenceLogps(engine.runner, examples, engine.loraSlot('sure'));
  const base = await referenceLogps(engine.runner, examples, 0);
  const margins = examples.map((_, i) => 0.1 * ((policy[i].chosen - base[i].chosen) - (policy[i].rejected - base[i].rejected)));
  const accuracy = margins.filter((m) => m > 0).length / margins.length;
  const after = await opening('sure');
  console.log(`DPO on the built-in model (12 steps, 8 pairs): held-back pairs ordered right by the implicit reward ${accuracy * 100}% (mean margin ${(margins.reduce((a, b) => a + b, 0) / margins.length).toFixed(3)}); greedy answers to the held-back instructions opening with "Sure": ${before}/8 before, ${after}/8 after`);
  expect(info.pairs).toMatchObject({ train: 8, validation: 0 });
  expect(accuracy).toBeGreaterThan(0.9);
  expect(after).toBeGreaterThan(before);
  engine.unload();
}, 600_000);
