// Teacher-forced loss and perplexity on the GPU (prefill, then one forward per answer token for all columns, with the
// target's logit gathered on the GPU) against the float64 reference forward, for the base and adapters at strengths.

import { describe, expect, it } from 'vitest';
import { meanLoss, perplexity, teacherForcedLoss } from '../../src/lib/eval/loss.js';
import { generateColumns } from '../../src/lib/model/generate.js';
import { syntheticAdapter } from '../../src/lib/lora/synthetic.js';
import { testGpu } from '../helpers/gpu.js';
import { mergeForReference } from '../helpers/lora.js';
import { TINY_CONFIGS, tinyRunner } from '../helpers/models.js';
import { referenceForward } from '../reference/llama.js';

function referenceNll(logits: Float64Array[], prompt: number[], answer: number[]): number {
  let sum = 0;
  answer.forEach((t, k) => {
    const row = logits[prompt.length - 1 + k];
    const max = Math.max(...row);
    const lse = max + Math.log(row.reduce((a, v) => a + Math.exp(v - max), 0));
    sum += lse - row[t];
  });
  return sum;
}

// Measured: at most 8.0e-8 relative against float64 (f32 logits; the NLL summed in float64 on the CPU).
const REL = 1e-6;

describe('teacher-forced loss', () => {
  it('equals the float64 reference per column, base and adapters at strengths, one batch; prompts longer than a chunk', async () => {
    const gpu = await testGpu();
    const spec = TINY_CONFIGS.llamaGqaUntied;
    const { model, config: cfg, runner } = await tinyRunner(gpu, spec, { slots: 4, contextLength: 96, maxRows: 16 });
    const a = syntheticAdapter(cfg, { name: 'a', seed: 3, config: { r: 4, lora_alpha: 8, target_modules: 'all-linear' } });
    const b = syntheticAdapter(cfg, { name: 'b', seed: 4, config: { r: 2, lora_alpha: 4, target_modules: ['q_proj', 'v_proj'] } });
    const [sa, sb] = [runner.lora.add(a), runner.lora.add(b)];
    const prompt = Array.from({ length: 23 }, (_, i) => (i * 7 + 3) % cfg.vocabSize);
    const answer = Array.from({ length: 9 }, (_, i) => (i * 11 + 5) % cfg.vocabSize);
    const columns = [{ loraSlot: 0, strength: 1 }, { loraSlot: sa, strength: 1 }, { loraSlot: sa, strength: 0.5 }, { loraSlot: sb, strength: 1.5 }];
    const got = (await teacherForcedLoss(runner, prompt, answer, columns))!;
    const weights = [model.tensors, mergeForReference(model.tensors, a, 1), mergeForReference(model.tensors, a, 0.5), mergeForReference(model.tensors, b, 1.5)];
    const seq = [...prompt, ...answer];
    const expected = weights.map((w) => referenceNll(referenceForward(cfg, w, seq), prompt, answer));
    let worst = 0;
    got.forEach((g, i) => {
      expect(g.tokens).toBe(answer.length);
      expect(Math.abs(g.nll - expected[i])).toBeLessThanOrEqual(REL * Math.abs(expected[i]));
      const ppl = Math.exp(expected[i] / answer.length);
      expect(Math.abs(perplexity(g) - ppl)).toBeLessThanOrEqual(REL * ppl);
      worst = Math.max(worst, Math.abs(g.nll - expected[i]) / Math.abs(expected[i]));
    });
    expect(worst).toBeLessThan(REL);
    // Columns differ (an adapter that added nothing would pass the equalities trivially only if they were equal).
    expect(new Set(got.map((g) => meanLoss(g).toFixed(6))).size).toBe(4);
  });

  it('several examples in flight: per-column prompts and answers give what each gives alone, tokens and losses', async () => {
    const gpu = await testGpu();
    const spec = TINY_CONFIGS.llamaGqaUntied;
    const { config: cfg, runner } = await tinyRunner(gpu, spec, { slots: 4, contextLength: 96, maxRows: 16 });
    const slot = runner.lora.add(syntheticAdapter(cfg, { name: 'a', seed: 3, config: { r: 4, lora_alpha: 8, target_modules: 'all-linear' } }));
    const prompts = [5, 19, 11, 23].map((n, j) => Array.from({ length: n }, (_, i) => (i * 7 + 3 + j) % cfg.vocabSize));
    const answers = [3, 8, 1, 6].map((n, j) => Array.from({ length: n }, (_, i) => (i * 11 + 5 + j) % cfg.vocabSize));
    const columns = [{ loraSlot: 0, strength: 1 }, { loraSlot: slot, strength: 1 }, { loraSlot: slot, strength: 0.5 }, { loraSlot: 0, strength: 1 }];
    const greedy = { temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1, seed: 0, maxNewTokens: 7, eosTokenIds: [] };
    const together: number[][] = columns.map(() => []);
    await generateColumns(runner, prompts, columns, greedy, ({ column, token }) => { together[column].push(token); });
    const together2 = (await teacherForcedLoss(runner, prompts, answers, columns))!;
    for (let i = 0; i < 4; i++) {
      const alone: number[] = [];
      await generateColumns(runner, prompts[i], [columns[i]], greedy, ({ token }) => { alone.push(token); });
      expect(together[i]).toEqual(alone);
      const [l] = (await teacherForcedLoss(runner, prompts[i], answers[i], [columns[i]]))!;
      expect(together2[i].tokens).toBe(answers[i].length);
      expect(Math.abs(together2[i].nll - l.nll)).toBeLessThanOrEqual(1e-6 * Math.abs(l.nll));
    }
  });

  it('scores only what fits the context', async () => {
    const gpu = await testGpu();
    const { runner } = await tinyRunner(gpu, TINY_CONFIGS.llamaGqaUntied, { slots: 2, contextLength: 32, maxRows: 16 });
    const got = (await teacherForcedLoss(runner, Array.from({ length: 20 }, (_, i) => i + 1), Array.from({ length: 40 }, (_, i) => i + 2), [{ loraSlot: 0, strength: 1 }]))!;
    expect(got[0].tokens).toBe(12);
  });
});
