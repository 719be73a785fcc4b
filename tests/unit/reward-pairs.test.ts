// Preference pairs for reward training (the paper's comparison-data format) and a reward model's PEFT files
// (SEQ_CLS LoRA + score head): parsing, pairing, tokenizing, and every refusal with a typed error.

import { describe, expect, it } from 'vitest';
import { AdapterError, DatasetError } from '../../src/lib/errors.js';
import { parsePeftConfig, readPeftAdapter } from '../../src/lib/lora/peft.js';
import { pairExamples, parseComparisonData, preferencePairs, rewardIds, rewardPrompt } from '../../src/lib/reward/pairs.js';
import { HEAD_TENSOR, readRewardAdapter, writeRewardAdapter } from '../../src/lib/reward/reward-adapter.js';
import { writeSafetensors } from '../../src/lib/formats/safetensors.js';
import { encodeFromF32 } from '../../src/lib/formats/dtype.js';
import { TextTokenizer } from '../../src/lib/tokenizer/tokenizer.js';
import { toPaperFormat } from '../../src/lib/eval/votes.js';
import { initAdapter } from '../../src/lib/training/init.js';
import { DEFAULT_TRAIN_CONFIG } from '../../src/lib/training/train-config.js';
import type { ModelConfig } from '../../src/lib/model/config.js';
import { tinyTokenizerJson } from '../helpers/tiny-tokenizer.js';

const paper = [
  {
    user_input: 'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\nName a fruit.\n\n### Response:',
    responses_and_scores: [
      { response: 'An apple.', score: 9.0, source: 'gpt4' },
      { response: 'Car.', score: 2.0, source: 'icm-1.3b' },
      { response: 'A pear.', score: 9.0, source: 'text-davinci-003' },
    ],
  },
  { user_input: 'Say hi.', responses_and_scores: [['hi', 1], ['bye', 0]] },
];

describe('comparison data', () => {
  it('reads the paper\'s format (and JSON Lines, and [response, score] lists) into pairs, higher score chosen, ties left out', () => {
    const records = parseComparisonData(JSON.stringify(paper));
    expect(parseComparisonData(paper.map((r) => JSON.stringify(r)).join('\n'))).toEqual(records);
    const { pairs } = preferencePairs(records);
    expect(pairs).toEqual([
      { prompt: paper[0].user_input, chosen: 'An apple.', rejected: 'Car.' },
      { prompt: paper[0].user_input, chosen: 'A pear.', rejected: 'Car.' },
      { prompt: 'Say hi.', chosen: 'hi', rejected: 'bye' },
    ]);
  });

  it('takes votes exported in the paper\'s shape (a tie gives no pair)', () => {
    const results = [
      { id: 'e1', model: 'base', prediction: 'meh', instruction: 'q', input: '', reference: '', rougeL: 0, tokens: 1, ms: 1, stopReason: 'eos' },
      { id: 'e1', model: 'tuned', prediction: 'great', instruction: 'q', input: '', reference: '', rougeL: 0, tokens: 1, ms: 1, stopReason: 'eos' },
    ] as never;
    const votes = [
      { pairId: 'p1', exampleId: 'e1', sides: ['tuned', 'base'] as [string, string], criterion: 'helpfulness' as const, verdict: 'A' as const },
      { pairId: 'p1', exampleId: 'e1', sides: ['tuned', 'base'] as [string, string], criterion: 'honesty' as const, verdict: 'tie' as const },
    ];
    const records = parseComparisonData(JSON.stringify(toPaperFormat(votes, results, new Map([['e1', 'Give advice.']]))));
    expect(preferencePairs(records).pairs).toEqual([{ prompt: 'Give advice.', chosen: 'great', rejected: 'meh' }]);
    expect(rewardPrompt('Give advice.')).toContain('### Instruction:\nGive advice.\n\n### Response:\n');
  });

  it('refuses malformed files, naming the record', () => {
    expect(() => parseComparisonData('{not json')).toThrow(DatasetError);
    expect(() => parseComparisonData('{"user_input": "x"}')).toThrow(/record 1 has no "responses_and_scores"/);
    expect(() => parseComparisonData('[{"responses_and_scores": []}]')).toThrow(/record 1 has no "user_input"/);
    expect(() => parseComparisonData('[{"user_input": "x", "responses_and_scores": [{"response": "a", "score": "high"}]}]')).toThrow(/response 1 needs/);
    expect(() => parseComparisonData('"text"')).toThrow(/record 1 has no "user_input"/);
  });

  it('tokenizes prompt + answer with EOS last, cut to the cutoff keeping EOS', () => {
    const tok = new TextTokenizer(JSON.parse(new TextDecoder().decode(tinyTokenizerJson(40))), {}, null);
    const short = rewardIds(tok, 'ab', 'cd', 1000, 2);
    expect(short.truncated).toBe(false);
    expect(short.ids.at(-1)).toBe(2);
    const cut = rewardIds(tok, 'ab', 'c'.repeat(500), 64, 2);
    expect(cut).toMatchObject({ truncated: true });
    expect(cut.ids).toHaveLength(64);
    expect(cut.ids.at(-1)).toBe(2);
    expect(() => pairExamples(tok, [], 64, 2)).toThrow(/no preference pairs/);
  });
});

describe('reward model files', () => {
  const cfg = { hiddenSize: 12, intermediateSize: 20, numLayers: 2, numHeads: 2, numKvHeads: 1, headDim: 6, vocabSize: 29 } as ModelConfig;
  const adapter = initAdapter('rm', cfg, { ...DEFAULT_TRAIN_CONFIG, rank: 2, alpha: 4 }, 'tiny');
  adapter.config.taskType = 'SEQ_CLS';
  const head = Float32Array.from({ length: 12 }, (_, i) => i / 10 - 0.5);

  it('write PEFT\'s SEQ_CLS layout (modules_to_save score, head as base_model.model.score.weight) and read back', () => {
    const files = writeRewardAdapter({ adapter, head });
    const config = JSON.parse(files.config);
    expect(config).toMatchObject({ task_type: 'SEQ_CLS', modules_to_save: ['score'], r: 2, lora_alpha: 4, peft_type: 'LORA' });
    const back = readRewardAdapter('rm', config, files.safetensors, 12);
    expect(Array.from(back.head)).toEqual(Array.from(head));
    expect([...back.adapter.modules.keys()]).toEqual([...adapter.modules.keys()]);
  });

  it('refuse what is not a reward model, or not one for this base, with typed errors', () => {
    const files = writeRewardAdapter({ adapter, head });
    const config = JSON.parse(files.config);
    // As a generation adapter: a clear word that it is a reward model.
    expect(() => readPeftAdapter('rm', config, files.safetensors)).toThrow(/is a reward model/);
    expect(() => readRewardAdapter('rm', { ...config, task_type: 'CAUSAL_LM' }, files.safetensors)).toThrow(/not a reward model/);
    expect(() => readRewardAdapter('rm', config, files.safetensors, 16)).toThrow(/hidden size is 16/);
    const noHead = writeSafetensors([{ name: 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight', dtype: 'F32', shape: [2, 12], data: encodeFromF32(new Float32Array(24), 'F32') },
      { name: 'base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight', dtype: 'F32', shape: [12, 2], data: encodeFromF32(new Float32Array(24), 'F32') }]);
    expect(() => readRewardAdapter('rm', { ...config, target_modules: ['q_proj'] }, noHead)).toThrow(AdapterError);
    expect(() => readRewardAdapter('rm', { ...config, target_modules: ['q_proj'] }, noHead)).toThrow(/no score head/);
    const twoLabels = writeSafetensors([{ name: HEAD_TENSOR, dtype: 'F32', shape: [2, 12], data: encodeFromF32(new Float32Array(24), 'F32') },
      { name: 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight', dtype: 'F32', shape: [2, 12], data: encodeFromF32(new Float32Array(24), 'F32') },
      { name: 'base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight', dtype: 'F32', shape: [12, 2], data: encodeFromF32(new Float32Array(24), 'F32') }]);
    expect(() => readRewardAdapter('rm', { ...config, target_modules: ['q_proj'] }, twoLabels)).toThrow(/one label/);
    // Full modules other than the head stay refused.
    expect(() => parsePeftConfig({ ...config, modules_to_save: ['score', 'lm_head'] })).toThrow(/saves full modules/);
  });
});

describe('preference pairs at scale', () => {
  it('one record of 3,000 differently scored answers: the first 100,000 of its 4,498,500 pairs are made, no more', () => {
    const record = { user_input: 'Rank these.', responses_and_scores: Array.from({ length: 3000 }, (_, i) => ({ response: `answer ${i}`, score: i })) };
    const { pairs, available } = preferencePairs([record]);
    expect(available).toBe((3000 * 2999) / 2);
    expect(pairs).toHaveLength(100_000);
    expect(pairs[0]).toEqual({ prompt: 'Rank these.', chosen: 'answer 1', rejected: 'answer 0' });
    expect(preferencePairs([record], 4).pairs).toHaveLength(4);
    // Equal scores make no pair, and are not counted as available.
    expect(preferencePairs([{ user_input: 'q', responses_and_scores: [{ response: 'a', score: 1 }, { response: 'b', score: 1 }, { response: 'c', score: 2 }] }]).available).toBe(2);
  });
});
