import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { alpacaPrompt } from '../../src/lib/tokenizer/alpaca.js';
import { StreamDecoder } from '../../src/lib/tokenizer/stream-decoder.js';
import { TextTokenizer } from '../../src/lib/tokenizer/tokenizer.js';

const load = (dir: string) => new TextTokenizer(
  JSON.parse(readFileSync(new URL(`../fixtures/${dir}/tokenizer.json`, import.meta.url), 'utf8')),
  JSON.parse(readFileSync(new URL(`../fixtures/${dir}/tokenizer_config.json`, import.meta.url), 'utf8')),
  null,
);

const texts = ['Hello, world!', 'Instruction tuning with GPT-4 🚀 — naïve café', '  spaces\tand\nnewlines  ', '数学是科学的语言', 'def f(x):\n    return x**2'];

describe('SmolLM2 tokenizer (byte-level BPE)', () => {
  const tok = load('SmolLM2-135M-Instruct');
  it('round-trips text', () => {
    for (const t of texts) expect(tok.decode(tok.encode(t, false))).toBe(t);
  });
  it('encodes known ids', () => {
    expect(tok.tokenToId('<|im_start|>')).toBe(1);
    expect(tok.tokenToId('<|im_end|>')).toBe(2);
    expect(tok.encode('<|im_start|>user', false)[0]).toBe(1);
  });
  it('renders the two-turn ChatML template', () => {
    const text = tok.renderChat([
      { role: 'user', content: 'What is LoRA?' },
      { role: 'assistant', content: 'A low-rank adapter.' },
      { role: 'user', content: 'Why use it?' },
    ]);
    expect(text).toBe(
      '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' +
      '<|im_start|>user\nWhat is LoRA?<|im_end|>\n<|im_start|>assistant\nA low-rank adapter.<|im_end|>\n' +
      '<|im_start|>user\nWhy use it?<|im_end|>\n<|im_start|>assistant\n',
    );
    expect(tok.eosTokenIds).toContain(2);
  });
});

describe('TinyLlama tokenizer (SentencePiece-style BPE with byte fallback)', () => {
  const tok = load('TinyLlama-1.1B-Chat-v1.0');
  it('round-trips text and adds BOS', () => {
    for (const t of texts.slice(0, 2)) expect(tok.decode(tok.encode(t, true))).toBe(t);
    expect(tok.encode('Hi', true)[0]).toBe(1);
  });
  it('renders the Zephyr template', () => {
    const text = tok.renderChat([{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello' }, { role: 'user', content: 'Bye' }]);
    expect(text).toBe('<|user|>\nHi</s>\n<|assistant|>\nHello</s>\n<|user|>\nBye</s>\n<|assistant|>\n');
  });
});

describe('Alpaca template', () => {
  it('matches the published text with and without input', () => {
    expect(alpacaPrompt('Add the numbers.', '2 and 3')).toBe(
      'Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\nAdd the numbers.\n\n### Input:\n2 and 3\n\n### Response:\n');
    expect(alpacaPrompt('Say hi.')).toBe(
      'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\nSay hi.\n\n### Response:\n');
  });
  it('is used when a model has no chat template', () => {
    const tok = new TextTokenizer(JSON.parse(readFileSync(new URL('../fixtures/SmolLM2-135M-Instruct/tokenizer.json', import.meta.url), 'utf8')), {}, null);
    expect(tok.decode(tok.promptIds('Say hi.', 'chat'))).toBe(alpacaPrompt('Say hi.'));
  });
});

describe('StreamDecoder', () => {
  it('never emits half a multi-byte character', () => {
    const tok = load('SmolLM2-135M-Instruct');
    const text = '🚀 naïve 数学 ok';
    const ids = tok.encode(text, false);
    const d = new StreamDecoder((x) => tok.decode(x));
    const parts = ids.map((id) => d.push(id));
    parts.push(d.flush());
    expect(parts.join('')).toBe(text);
    for (const p of parts) expect(p).not.toContain('\uFFFD');
    // The rocket is several byte tokens: some pushes return '' while it is incomplete.
    expect(parts.filter((p) => p === '').length).toBeGreaterThan(0);
  });
});
