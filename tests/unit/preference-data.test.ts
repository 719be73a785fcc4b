// Preference data: TRL's preference format (texts, a message prompt, or conversations sharing their first turns), the
// paper's comparison data, errors that name the record, and pairs cut to the cutoff as TRL cuts them (the prompt's
// last tokens kept, the answers cut), counted.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parsePreferenceData, preferenceExample } from '../../src/lib/data/preference-data.js';
import { DatasetError } from '../../src/lib/errors.js';
import { TextTokenizer } from '../../src/lib/tokenizer/tokenizer.js';
import { pairLoss, PREFERENCE_DEFAULTS, logSigmoid } from '../../src/lib/training/preference.js';

const fixture = (p: string) => readFileSync(new URL(`../fixtures/${p}`, import.meta.url), 'utf8');
const tokConfig = JSON.parse(fixture('SmolLM2-135M-Instruct/tokenizer_config.json'));
const tok = new TextTokenizer(JSON.parse(fixture('SmolLM2-135M-Instruct/tokenizer.json')), tokConfig, tokConfig.chat_template);

describe('preference data', () => {
  it("reads TRL's formats: texts, a message prompt, and conversations sharing their first turns (JSON Lines or a JSON list)", () => {
    const lines = [
      { prompt: 'Name a colour.', chosen: 'Blue.', rejected: 'Dog.' },
      { prompt: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }], chosen: 'Hello!', rejected: 'Go away.' },
      { chosen: [{ role: 'user', content: '2+2?' }, { role: 'assistant', content: '4' }], rejected: [{ role: 'user', content: '2+2?' }, { role: 'assistant', content: '5' }] },
      { prompt: [{ role: 'user', content: 'Sky?' }], chosen: [{ role: 'assistant', content: 'Blue' }], rejected: [{ role: 'assistant', content: 'Green' }] },
    ];
    const a = parsePreferenceData(lines.map((l) => JSON.stringify(l)).join('\n'), 'p.jsonl');
    expect(a.format).toBe('trl');
    expect(a.records).toEqual([
      { prompt: 'Name a colour.', chosen: 'Blue.', rejected: 'Dog.' },
      { prompt: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }], chosen: 'Hello!', rejected: 'Go away.' },
      { prompt: [{ role: 'user', content: '2+2?' }], chosen: '4', rejected: '5' },
      { prompt: [{ role: 'user', content: 'Sky?' }], chosen: 'Blue', rejected: 'Green' },
    ]);
    expect(parsePreferenceData(JSON.stringify(lines), 'p.json').records).toEqual(a.records);
  });

  it("reads the paper's comparison data: every two differently scored answers, the higher chosen", () => {
    const cmp = [{ user_input: 'Q', responses_and_scores: [{ response: 'a', score: 9 }, { response: 'b', score: 3 }, { response: 'c', score: 3 }] }];
    const r = parsePreferenceData(JSON.stringify(cmp), 'comparison_data_v2.json');
    expect(r.format).toBe('comparison');
    expect(r.records).toEqual([{ prompt: 'Q', chosen: 'a', rejected: 'b' }, { prompt: 'Q', chosen: 'a', rejected: 'c' }]);
  });

  it.each([
    ['an answer missing', '{"prompt": "x", "chosen": "y"}', /record 1 needs "chosen" and "rejected"/],
    ['conversations that do not share their prompt', JSON.stringify({ chosen: [{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b' }], rejected: [{ role: 'user', content: 'c' }, { role: 'assistant', content: 'd' }] }), /must share every turn but their last/],
    ['a conversation not ending with the answer', JSON.stringify({ prompt: 'x', chosen: [{ role: 'user', content: 'b' }], rejected: [{ role: 'assistant', content: 'd' }] }), /must end with an assistant message/],
    ['not JSON', '{"prompt": ', /not JSON or JSON Lines/],
    ['nothing', '  ', /is empty/],
  ])('refuses %s, naming the record', (_what, text, message) => {
    expect(() => parsePreferenceData(text, 'p.jsonl')).toThrow(DatasetError);
    expect(() => parsePreferenceData(text, 'p.jsonl')).toThrow(message);
  });

  it('one prompt, two answers through the chat template; a long pair keeps its prompt and has its answers cut (said so)', () => {
    const eosId = tok.eosTokenIds[0];
    const e = preferenceExample(tok, { prompt: 'Name a colour.', chosen: 'Blue.', rejected: 'A dog.' }, { format: 'chat', cutoff: 256, eosId });
    expect(e.truncated).toBe(false);
    expect(e.chosen.ids.slice(0, e.chosen.promptTokens)).toEqual(e.rejected.ids.slice(0, e.rejected.promptTokens));
    expect(tok.decode(e.chosen.ids.slice(0, e.chosen.promptTokens), false)).toBe(tok.renderChat([{ role: 'user', content: 'Name a colour.' }], true));
    // The answer as the template writes it, its end of turn included; labels on the answer only.
    expect(tok.decode(e.chosen.ids.slice(e.chosen.promptTokens), false)).toMatch(/^Blue\.<\|im_end\|>/);
    expect(e.chosen.targets.filter((t) => t >= 0)).toEqual(e.chosen.ids.slice(e.chosen.promptTokens));
    const long = preferenceExample(tok, { prompt: 'Name a colour.', chosen: 'Blue '.repeat(200), rejected: 'Red.' }, { format: 'chat', cutoff: 40, eosId });
    expect(long.truncated).toBe(true);
    expect(long.chosen.ids).toHaveLength(40);
    expect(long.chosen.promptTokens).toBe(e.chosen.promptTokens);
    expect(long.rejected.ids.length).toBeLessThan(40);
    // A prompt longer than the cutoff keeps its last tokens and one answer token (TRL's keep_end).
    const longPrompt = preferenceExample(tok, { prompt: 'word '.repeat(100), chosen: 'Yes.', rejected: 'No.' }, { format: 'alpaca', cutoff: 16, eosId });
    expect(longPrompt.chosen.ids).toHaveLength(16);
    expect(longPrompt.chosen.promptTokens).toBe(15);
  });
});

describe('the objectives per pair', () => {
  it("DPO at the reference: loss log 2, TRL's metrics zero; gradients are -+beta sigma(-u) and sum to zero", () => {
    const l = pairLoss(PREFERENCE_DEFAULTS.dpo, { chosen: -10, rejected: -12, chosenTokens: 4, rejectedTokens: 5, refChosen: -10, refRejected: -12 });
    expect(l.loss).toBeCloseTo(Math.log(2), 14);
    expect(l.metrics).toMatchObject({ 'rewards/chosen': 0, 'rewards/rejected': 0, 'rewards/margins': 0, 'rewards/accuracies': 0, 'logps/chosen': -10, 'logps/rejected': -12 });
    expect(l.dChosen).toBeCloseTo(-0.05, 14);
    expect(l.dRejected).toBeCloseTo(0.05, 14);
  });

  it('log sigmoid is finite and exact at the ends', () => {
    expect(logSigmoid(-800)).toBe(-800);
    expect(logSigmoid(800)).toBe(-0);
    expect(logSigmoid(0)).toBeCloseTo(-Math.log(2), 15);
  });
});
