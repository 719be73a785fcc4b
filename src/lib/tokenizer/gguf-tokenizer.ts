// A tokenizer.json (and tokenizer_config.json) rebuilt from a GGUF file's tokenizer metadata, for GGUF models shared
// without the Hugging Face tokenizer files. Two vocabularies, as llama.cpp stores them:
//   gpt2   byte-level BPE: tokens and merges; the pre-tokenizer is named by tokenizer.ggml.pre (each known name maps
//          to the pre-tokenizer of the models llama.cpp gives it: smollm, gpt2, qwen2, llama-bpe)
//   llama  SentencePiece BPE with byte fallback: tokens and scores, no merges; the merges are derived from the scores
//          as transformers' SentencePieceExtractor derives them (every split of a token into two tokens, ordered by
//          the merged token's score)
// Token types: 3 (control) become special added tokens, 4 (user-defined) non-special added tokens.

import { TokenizerError } from '../errors.js';

type Meta = Record<string, unknown>;

/** Pieces of a split: llama.cpp's regexes for each pre-tokenizer name (as in the models' own tokenizer.json). */
const SPLIT_QWEN2 = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const SPLIT_LLAMA3 = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

const byteLevel = (useRegex: boolean) => ({ type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: useRegex });
const split = (regex: string) => ({ type: 'Split', pattern: { Regex: regex }, behavior: 'Isolated', invert: false });

const PRE_TOKENIZERS: Record<string, { pre: object; normalizer?: object; ignoreMerges?: boolean }> = {
  gpt2: { pre: byteLevel(true) },
  default: { pre: byteLevel(true) },
  smollm: { pre: { type: 'Sequence', pretokenizers: [{ type: 'Digits', individual_digits: true }, byteLevel(true)] } },
  qwen2: { pre: { type: 'Sequence', pretokenizers: [split(SPLIT_QWEN2), byteLevel(false)] }, normalizer: { type: 'NFC' } },
  'llama-bpe': { pre: { type: 'Sequence', pretokenizers: [split(SPLIT_LLAMA3), byteLevel(false)] }, ignoreMerges: true },
};

function list<T>(m: Meta, key: string): T[] {
  const v = m[key];
  if (!Array.isArray(v)) throw new TokenizerError(`The GGUF file has no ${key}, so its tokenizer cannot be rebuilt: put the model's tokenizer.json beside the .gguf file.`);
  return v as T[];
}

const id = (m: Meta, key: string): number | null => (typeof m[key] === 'number' ? (m[key] as number) : typeof m[key] === 'bigint' ? Number(m[key]) : null);

/**
 * The tokenizer arrays as llama.cpp's llama_vocab::load holds them: tokens unique strings, one per embedding row;
 * token types and scores numbers, one per token; merges "left right" pairs; special ids naming tokens.
 */
function checkTokenizerMeta(m: Meta, tokens: unknown[], file: string, vocabSize?: number): asserts tokens is string[] {
  const fail = (what: string) => {
    throw new TokenizerError(`${file}: ${what}. The tokenizer metadata is damaged: download the file again, or put the model's tokenizer.json beside it.`);
  };
  // Metadata values may be bigints (u64/i64 in the file): shown with String, never JSON.stringify.
  const show = (v: unknown) => (typeof v === 'string' ? JSON.stringify(v) : String(v)).slice(0, 40);
  const bad = tokens.findIndex((t) => typeof t !== 'string');
  if (bad >= 0) fail(`tokenizer.ggml.tokens[${bad}] is ${typeof tokens[bad]}, not a string`);
  if (vocabSize !== undefined && tokens.length !== vocabSize) fail(`tokenizer.ggml.tokens has ${tokens.length} tokens for a model of ${vocabSize} embedding rows`);
  const seen = new Map<string, number>();
  tokens.forEach((t, i) => {
    const first = seen.get(t as string);
    if (first !== undefined) fail(`token ${i} is ${show(t)}, already token ${first}`);
    seen.set(t as string, i);
  });
  for (const key of ['tokenizer.ggml.token_type', 'tokenizer.ggml.scores']) {
    const v = m[key];
    if (v === undefined) continue;
    if (!Array.isArray(v) || v.length !== tokens.length) fail(`${key} has ${Array.isArray(v) ? v.length : 'no'} entries for ${tokens.length} tokens`);
    const i = (v as unknown[]).findIndex((x) => typeof x !== 'number' || !Number.isFinite(x));
    if (i >= 0) fail(`${key}[${i}] is ${show((v as unknown[])[i])}, not a number`);
  }
  const merges = m['tokenizer.ggml.merges'];
  if (merges !== undefined) {
    if (!Array.isArray(merges)) fail('tokenizer.ggml.merges is not a list');
    const i = (merges as unknown[]).findIndex((x) => typeof x !== 'string' || !/^[^ ]+ [^ ]+$/.test(x) || !x.split(' ').every((part) => seen.has(part)));
    if (i >= 0) fail(`merge ${i} (${show((merges as unknown[])[i])}) is not two tokens of the vocabulary joined by a space`);
  }
  for (const key of ['bos', 'eos', 'unknown', 'padding', 'eot'].map((k) => `tokenizer.ggml.${k}_token_id`)) {
    if (m[key] === undefined) continue;
    const v = id(m, key);
    if (v === null || !Number.isInteger(v) || v < 0 || v >= tokens.length) fail(`${key} is ${String(m[key])}, not one of the ${tokens.length} token ids`);
  }
}

/**
 * tokenizer.json and tokenizer_config.json equivalents of a GGUF file's tokenizer metadata; `vocabSize` (the model's
 * embedding rows) is the number of tokens it must have.
 */
export function tokenizerFromGguf(m: Meta, file: string, vocabSize?: number): { json: Record<string, unknown>; config: Record<string, unknown> } {
  const model = m['tokenizer.ggml.model'];
  const tokens = list<unknown>(m, 'tokenizer.ggml.tokens');
  checkTokenizerMeta(m, tokens, file, vocabSize);
  const types = Array.isArray(m['tokenizer.ggml.token_type']) ? (m['tokenizer.ggml.token_type'] as number[]) : [];
  const vocab: Record<string, number> = {};
  tokens.forEach((t, i) => { vocab[t] = i; });
  const added = tokens.flatMap((content, i) => (types[i] === 3 || types[i] === 4
    ? [{ id: i, content, single_word: false, lstrip: false, rstrip: false, normalized: types[i] === 4, special: types[i] === 3 }]
    : []));
  const bos = id(m, 'tokenizer.ggml.bos_token_id');
  const config = ggufTokenizerConfig(m);
  const addBos = config.add_bos_token === true;
  const bosProcessor = addBos && bos !== null ? {
    type: 'TemplateProcessing',
    single: [{ SpecialToken: { id: tokens[bos], type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
    pair: [{ SpecialToken: { id: tokens[bos], type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: tokens[bos], type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
    special_tokens: { [tokens[bos]]: { id: tokens[bos], ids: [bos], tokens: [tokens[bos]] } },
  } : null;

  if (model === 'gpt2') {
    const pre = String(m['tokenizer.ggml.pre'] ?? 'default');
    const p = PRE_TOKENIZERS[pre];
    if (!p) throw new TokenizerError(`${file} uses the "${pre}" pre-tokenizer, which LoRA Lab cannot rebuild from GGUF metadata (it knows ${Object.keys(PRE_TOKENIZERS).join(', ')}): put the model's tokenizer.json beside the .gguf file.`);
    const json = {
      version: '1.0', truncation: null, padding: null, added_tokens: added,
      normalizer: p.normalizer ?? null, pre_tokenizer: p.pre, post_processor: bosProcessor,
      decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
      model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: p.ignoreMerges ?? false, vocab, merges: list<string>(m, 'tokenizer.ggml.merges') },
    };
    return { json, config };
  }
  if (model === 'llama') {
    const scores = list<number>(m, 'tokenizer.ggml.scores');
    const unk = id(m, 'tokenizer.ggml.unknown_token_id') ?? tokens.indexOf('<unk>');
    const spacePrefix = m['tokenizer.ggml.add_space_prefix'] !== false;
    const json = {
      version: '1.0', truncation: null, padding: null, added_tokens: added,
      // A space before the text (and its removal when decoding), unless tokenizer.ggml.add_space_prefix says not.
      normalizer: { type: 'Sequence', normalizers: [...(spacePrefix ? [{ type: 'Prepend', prepend: '▁' }] : []), { type: 'Replace', pattern: { String: ' ' }, content: '▁' }] },
      pre_tokenizer: null, post_processor: bosProcessor,
      decoder: { type: 'Sequence', decoders: [{ type: 'Replace', pattern: { String: '▁' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' }, ...(spacePrefix ? [{ type: 'Strip', content: ' ', start: 1, stop: 0 }] : [])] },
      model: { type: 'BPE', dropout: null, unk_token: unk >= 0 ? tokens[unk] : null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: true, byte_fallback: true, ignore_merges: false, vocab, merges: mergesFromScores(tokens, scores, types) },
    };
    return { json, config: { ...config, ...(unk >= 0 ? { unk_token: tokens[unk] } : {}) } };
  }
  throw new TokenizerError(`${file} has a "${String(model)}" tokenizer, which LoRA Lab cannot rebuild from GGUF metadata (it rebuilds gpt2 and llama ones): put the model's tokenizer.json beside the .gguf file.`);
}

/** tokenizer_config.json's part of the metadata (special tokens, chat template); never throws. */
export function ggufTokenizerConfig(m: Meta): Record<string, unknown> {
  const tokens = Array.isArray(m['tokenizer.ggml.tokens']) ? (m['tokenizer.ggml.tokens'] as string[]) : [];
  const bos = id(m, 'tokenizer.ggml.bos_token_id');
  const eos = id(m, 'tokenizer.ggml.eos_token_id');
  return {
    ...(bos !== null && tokens[bos] !== undefined ? { bos_token: tokens[bos] } : {}),
    ...(eos !== null && tokens[eos] !== undefined ? { eos_token: tokens[eos] } : {}),
    ...(typeof m['tokenizer.chat_template'] === 'string' ? { chat_template: m['tokenizer.chat_template'] } : {}),
    add_bos_token: m['tokenizer.ggml.add_bos_token'] === true || (m['tokenizer.ggml.add_bos_token'] === undefined && m['tokenizer.ggml.model'] === 'llama'),
  };
}

/**
 * BPE merges of a SentencePiece vocabulary: for each token, every split into two tokens of the vocabulary, ordered by
 * the ids of the two halves; then all of them by the merged token's score, highest first (a stable sort).
 */
function mergesFromScores(tokens: string[], scores: number[], types: number[]): string[] {
  const ids = new Map<string, number>();
  tokens.forEach((t, i) => { if (types[i] !== 3 && types[i] !== 6 && types[i] !== 2) ids.set(t, i); });
  const merges: [string, string, number][] = [];
  tokens.forEach((t, i) => {
    if (!ids.has(t)) return;
    const local: [string, string, number][] = [];
    const chars = [...t];
    for (let k = 1; k < chars.length; k++) {
      const l = chars.slice(0, k).join(''), r = chars.slice(k).join('');
      if (ids.has(l) && ids.has(r)) local.push([l, r, scores[i]]);
    }
    local.sort((a, b) => ids.get(a[0])! - ids.get(b[0])! || ids.get(a[1])! - ids.get(b[1])!);
    merges.push(...local);
  });
  merges.sort((a, b) => b[2] - a[2]);
  return merges.map(([l, r]) => `${l} ${r}`);
}
