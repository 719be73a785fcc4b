// Tokenizers rebuilt from GGUF metadata encode and decode as the models' own tokenizer.json does. The metadata is what
// llama.cpp's converter writes for these models: SmolLM2's byte-level BPE (tokens, merges, pre "smollm") and
// TinyLlama's SentencePiece vocabulary (tokens, scores and types from its tokenizer.model, no merges).

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { TokenizerError } from '../../src/lib/errors.js';
import { tokenizerFromGguf } from '../../src/lib/tokenizer/gguf-tokenizer.js';
import { TextTokenizer } from '../../src/lib/tokenizer/tokenizer.js';

const fixture = (p: string) => JSON.parse(readFileSync(new URL(`../fixtures/${p}`, import.meta.url), 'utf8'));

const TEXTS = [
  'Give three tips for staying healthy.',
  'In 2023, 1,234 people paid $56.78 — naïve café déjà vu!',
  '  leading spaces,\ttabs\nand\n\nnew lines  ',
  '给我三个保持健康的建议。',
  'def f(x):\n    return x**2  # squares 🙂',
];

/** GGUF metadata for a tokenizer.json's vocabulary, as llama.cpp's converter writes it. */
function metadataOf(json: Record<string, any>, config: Record<string, any>, extra: Record<string, unknown>): Record<string, unknown> {
  const vocab = json.model.vocab as Record<string, number>;
  const tokens: string[] = [];
  for (const [t, i] of Object.entries(vocab)) tokens[i] = t;
  const special = new Set<number>();
  for (const a of json.added_tokens) { tokens[a.id] = a.content; if (a.special) special.add(a.id); }
  return {
    'tokenizer.ggml.tokens': tokens,
    'tokenizer.ggml.token_type': tokens.map((_, i) => (special.has(i) ? 3 : 1)),
    'tokenizer.ggml.bos_token_id': tokens.indexOf(config.bos_token),
    'tokenizer.ggml.eos_token_id': tokens.indexOf(config.eos_token),
    ...(config.chat_template ? { 'tokenizer.chat_template': config.chat_template } : {}),
    ...extra,
  };
}

function expectSame(ref: TextTokenizer, got: TextTokenizer) {
  for (const text of TEXTS) {
    const ids = ref.encode(text);
    expect(got.encode(text), text).toEqual(ids);
    expect(got.decode(ids), text).toBe(ref.decode(ids));
  }
  expect(got.vocabSize).toBe(ref.vocabSize);
}

describe('tokenizers rebuilt from GGUF metadata', () => {
  it('SmolLM2 (gpt2 BPE, pre "smollm"): the same ids, text and chat prompt as its tokenizer.json', () => {
    const json = fixture('SmolLM2-135M-Instruct/tokenizer.json');
    const config = fixture('SmolLM2-135M-Instruct/tokenizer_config.json');
    const meta = metadataOf(json, config, { 'tokenizer.ggml.model': 'gpt2', 'tokenizer.ggml.pre': 'smollm', 'tokenizer.ggml.merges': json.model.merges, 'tokenizer.ggml.add_bos_token': false });
    const rebuilt = tokenizerFromGguf(meta, 'smollm2.gguf');
    const ref = new TextTokenizer(json, config, null);
    const got = new TextTokenizer(rebuilt.json, rebuilt.config, null);
    expectSame(ref, got);
    const chat = [{ role: 'user' as const, content: 'Hi there' }];
    expect(got.promptIds(ref.renderChat(chat), 'raw', '')).toEqual(ref.promptIds(ref.renderChat(chat), 'raw', ''));
    expect(got.renderChat(chat)).toBe(ref.renderChat(chat));
    expect(got.eosTokenIds).toEqual(ref.eosTokenIds);
  });

  it('TinyLlama (SentencePiece: merges derived from the scores, byte fallback, BOS added)', () => {
    const json = fixture('TinyLlama-1.1B-Chat-v1.0/tokenizer.json');
    const config = fixture('TinyLlama-1.1B-Chat-v1.0/tokenizer_config.json');
    const spm = fixture('TinyLlama-1.1B-Chat-v1.0/sentencepiece-scores.json');
    const meta = { ...metadataOf(json, config, { 'tokenizer.ggml.model': 'llama', 'tokenizer.ggml.scores': spm.scores }), 'tokenizer.ggml.token_type': spm.types, 'tokenizer.ggml.unknown_token_id': 0, 'tokenizer.ggml.add_bos_token': true };
    const rebuilt = tokenizerFromGguf(meta, 'tinyllama.gguf');
    expect((rebuilt.json.model as { merges: string[] }).merges.slice(0, 5)).toEqual(json.model.merges.slice(0, 5));
    expectSame(new TextTokenizer(json, config, null), new TextTokenizer(rebuilt.json, rebuilt.config, null));
  });

  it('an unknown pre-tokenizer or vocabulary asks for the tokenizer.json', () => {
    const base = { 'tokenizer.ggml.tokens': ['a', 'b'], 'tokenizer.ggml.merges': [] };
    expect(() => tokenizerFromGguf({ ...base, 'tokenizer.ggml.model': 'gpt2', 'tokenizer.ggml.pre': 'deepseek-coder' }, 'x.gguf')).toThrow(/"deepseek-coder" pre-tokenizer.*put the model's tokenizer.json beside/);
    expect(() => tokenizerFromGguf({ ...base, 'tokenizer.ggml.model': 'bert' }, 'x.gguf')).toThrow(TokenizerError);
    expect(() => tokenizerFromGguf({ 'tokenizer.ggml.model': 'gpt2' }, 'x.gguf')).toThrow(/no tokenizer.ggml.tokens/);
  });

  it('damaged tokenizer metadata is refused, naming what is wrong, as llama.cpp refuses it', () => {
    const good = { 'tokenizer.ggml.model': 'gpt2', 'tokenizer.ggml.tokens': ['a', 'b', 'ab'], 'tokenizer.ggml.merges': ['a b'], 'tokenizer.ggml.token_type': [1, 1, 1], 'tokenizer.ggml.bos_token_id': 0 };
    expect(() => tokenizerFromGguf(good, 'x.gguf', 3)).not.toThrow();
    const cases: [Record<string, unknown>, number, RegExp][] = [
      [good, 8192, /tokenizer.ggml.tokens has 3 tokens for a model of 8192 embedding rows/],
      [{ ...good, 'tokenizer.ggml.tokens': ['a', 'a', 'a'] }, 3, /token 1 is "a", already token 0/],
      [{ ...good, 'tokenizer.ggml.tokens': [1, 2, 3] }, 3, /tokenizer.ggml.tokens\[0\] is number, not a string/],
      [{ ...good, 'tokenizer.ggml.scores': ['1', '2', '3'] }, 3, /tokenizer.ggml.scores\[0\] is "1", not a number/],
      [{ ...good, 'tokenizer.ggml.token_type': [1] }, 3, /tokenizer.ggml.token_type has 1 entries for 3 tokens/],
      [{ ...good, 'tokenizer.ggml.bos_token_id': 1e9 }, 3, /tokenizer.ggml.bos_token_id is 1000000000, not one of the 3 token ids/],
      [{ ...good, 'tokenizer.ggml.merges': ['a b', 'zz qq'] }, 3, /merge 1 \("zz qq"\) is not two tokens of the vocabulary/],
      [{ ...good, 'tokenizer.ggml.merges': ['ab'] }, 3, /merge 0 \("ab"\) is not two tokens/],
    ];
    for (const [meta, vocab, message] of cases) {
      expect(() => tokenizerFromGguf(meta, 'x.gguf', vocab), String(message)).toThrow(TokenizerError);
      expect(() => tokenizerFromGguf(meta, 'x.gguf', vocab)).toThrow(message);
    }
  });
});
