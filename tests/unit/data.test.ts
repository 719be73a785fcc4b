import { readFileSync } from 'node:fs';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { describe, expect, it } from 'vitest';
import { epochBatches, splitTrainValidation } from '../../src/lib/data/batches.js';
import { IGNORE, promptParts, toExample } from '../../src/lib/data/examples.js';
import { parseDataset } from '../../src/lib/data/records.js';
import { DatasetError } from '../../src/lib/errors.js';
import { alpacaPrompt } from '../../src/lib/tokenizer/alpaca.js';
import { TextTokenizer } from '../../src/lib/tokenizer/tokenizer.js';

const enc = new TextEncoder();
const sample = new Uint8Array(readFileSync(new URL('../../public/data/alpaca-gpt4-sample-en.json', import.meta.url)));
const tok = new TextTokenizer(
  JSON.parse(readFileSync(new URL('../fixtures/SmolLM2-135M-Instruct/tokenizer.json', import.meta.url), 'utf8')),
  JSON.parse(readFileSync(new URL('../fixtures/SmolLM2-135M-Instruct/tokenizer_config.json', import.meta.url), 'utf8')),
  null,
);

describe('dataset files', () => {
  it('reads the bundled GPT-4 Alpaca sample', async () => {
    const records = await parseDataset(sample, 'alpaca-gpt4-sample-en.json');
    expect(records.length).toBe(999);
    expect(records.filter((r) => r.kind === 'alpaca' && r.input !== '').length).toBe(412);
  });

  it('reads JSON Lines with Alpaca and chat records', async () => {
    const lines = [
      JSON.stringify({ instruction: 'Say hi', output: 'Hi!' }),
      '',
      JSON.stringify({ messages: [{ role: 'user', content: 'Hello' }, { role: 'assistant', content: 'Hello to you.' }] }),
    ].join('\n');
    const r = await parseDataset(enc.encode(lines), 'data.jsonl');
    expect(r.map((x) => x.kind)).toEqual(['alpaca', 'chat']);
  });

  it('reads parquet with the columns of vicgalle/alpaca-gpt4', async () => {
    const buf = parquetWriteBuffer({ columnData: [
      { name: 'instruction', data: ['Add 2 and 3.', 'Name a color.'], type: 'STRING' },
      { name: 'input', data: ['', ''], type: 'STRING' },
      { name: 'output', data: ['5', 'Blue.'], type: 'STRING' },
      { name: 'text', data: ['...', '...'], type: 'STRING' },
    ] });
    const r = await parseDataset(new Uint8Array(buf), 'train-00000-of-00001.parquet');
    expect(r).toEqual([
      { kind: 'alpaca', instruction: 'Add 2 and 3.', input: '', output: '5' },
      { kind: 'alpaca', instruction: 'Name a color.', input: '', output: 'Blue.' },
    ]);
  });

  it.each([
    ['[{"instruction": "a", "output": "b"}, {"instruction": "c"}]', 'd.json', /record 2: "output" is missing/, 1, 'output'],
    ['[{"instruction": "a", "output": 3}]', 'd.json', /record 1: "output" is a number/, 0, 'output'],
    ['{"instruction": "a"}', 'd.json', /not an array/, undefined, undefined],
    ['{"instruction": "a", "output": "b"}\n{oops', 'd.jsonl', /line 2 is not valid JSON/, 1, undefined],
    ['[{"messages": [{"role": "user", "content": "x"}]}]', 'd.json', /last message must be the assistant/, 0, 'messages'],
    ['[{"messages": [{"role": "bot", "content": "x"}]}]', 'd.json', /messages\[0\] must be/, 0, 'messages[0]'],
    ['[]', 'd.json', /no records/, undefined, undefined],
  ])('names the record and field of a malformed file: %s', async (text, name, msg, record, field) => {
    const err = await parseDataset(enc.encode(text), name).catch((e) => e);
    expect(err).toBeInstanceOf(DatasetError);
    expect(err.message).toMatch(msg);
    expect(err.details.record).toBe(record);
    expect(err.details.field).toBe(field);
  });

  it('says so for a file that is not parquet', async () => {
    await expect(parseDataset(enc.encode('nope'), 'x.parquet')).rejects.toThrow(/not a readable parquet/);
  });
});

describe('examples', () => {
  const record = { kind: 'alpaca' as const, instruction: 'Add the numbers.', input: '2 and 3', output: 'The sum is 5.' };

  it('builds the Alpaca prompt, appends EOS, and masks the prompt unless train_on_inputs', () => {
    expect(promptParts(tok, record, 'alpaca').prompt).toBe(alpacaPrompt('Add the numbers.', '2 and 3'));
    const e = toExample(tok, record, { format: 'alpaca', cutoff: 256, trainOnInputs: false, eosId: 2 });
    expect(e.ids.at(-1)).toBe(2);
    expect(tok.decode(e.ids.slice(0, e.promptTokens))).toBe(alpacaPrompt('Add the numbers.', '2 and 3'));
    expect(tok.decode(e.ids.slice(e.promptTokens), false)).toBe('The sum is 5.<|im_end|>');
    // Position t predicts ids[t+1]; the loss starts at the last prompt position (it predicts the first answer token).
    expect(e.targets.slice(0, e.promptTokens - 1).every((t) => t === IGNORE)).toBe(true);
    expect(e.targets[e.promptTokens - 1]).toBe(e.ids[e.promptTokens]);
    expect(e.targets.at(-1)).toBe(IGNORE);
    const all = toExample(tok, record, { format: 'alpaca', cutoff: 256, trainOnInputs: true, eosId: 2 });
    expect(all.targets.filter((t) => t !== IGNORE).length).toBe(all.ids.length - 1);
  });

  it('uses the chat template when asked, training on the assistant turn only', () => {
    const chat = { kind: 'chat' as const, messages: [{ role: 'user' as const, content: 'Hi' }, { role: 'assistant' as const, content: 'Hello!' }] };
    const tpl = new TextTokenizer(JSON.parse(readFileSync(new URL('../fixtures/SmolLM2-135M-Instruct/tokenizer.json', import.meta.url), 'utf8')),
      JSON.parse(readFileSync(new URL('../fixtures/SmolLM2-135M-Instruct/tokenizer_config.json', import.meta.url), 'utf8')), '{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}');
    const parts = promptParts(tpl, chat, 'chat');
    expect(parts.prompt).toBe('<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n');
    expect(parts.response).toBe('Hello!<|im_end|>\n');
    const e = toExample(tpl, chat, { format: 'chat', cutoff: 64, trainOnInputs: false, eosId: 2 });
    expect(tpl.decode(e.ids.slice(e.promptTokens), false)).toBe('Hello!<|im_end|>\n<|im_end|>');
  });

  it('truncates to the cutoff', () => {
    const e = toExample(tok, { ...record, output: 'word '.repeat(500) }, { format: 'alpaca', cutoff: 64, trainOnInputs: false, eosId: 2 });
    expect(e.ids.length).toBe(64);
    expect(e.targets.length).toBe(64);
  });
});

describe('split and batches', () => {
  const items = Array.from({ length: 50 }, (_, i) => i);
  it('splits deterministically by seed', () => {
    const a = splitTrainValidation(items, 0.1, 3);
    expect(a).toEqual(splitTrainValidation(items, 0.1, 3));
    expect(a.validation.length).toBe(5);
    expect(new Set([...a.train, ...a.validation]).size).toBe(50);
    expect(splitTrainValidation(items, 0.1, 4).validation).not.toEqual(a.validation);
  });

  const ex = Array.from({ length: 9 }, (_, i) => ({ ids: Array.from({ length: 3 + i }, (_, k) => k + 1), targets: Array.from({ length: 3 + i }, (_, k) => k + 2), promptTokens: 1 }));
  it('groups by length: every example once per epoch, padded with -100, seeded order', () => {
    const b = epochBatches(ex, 2, 12, 1, 0, 'length');
    expect(b.length).toBe(5);
    expect(b.reduce((n, x) => n + x.realTokens, 0)).toBe(ex.reduce((n, e) => n + e.ids.length, 0));
    expect(epochBatches(ex, 2, 12, 1, 0, 'length')).toEqual(b);
    expect(epochBatches(ex, 2, 12, 1, 1, 'length')).not.toEqual(b);
    for (const x of b) for (let i = 0; i < x.tokens.length; i++) if (x.tokens[i] === 0) expect(x.targets[i]).toBe(IGNORE);
  });

  it('packs examples into full rows', () => {
    const b = epochBatches(ex, 2, 10, 1, 0, 'packed');
    const total = ex.reduce((n, e) => n + e.ids.length, 0);
    expect(b.reduce((n, x) => n + x.realTokens, 0)).toBe(total);
    expect(b.slice(0, -1).every((x) => x.realTokens === 20)).toBe(true);
  });
});
