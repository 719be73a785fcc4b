// A chat keeps its KV cache across turns: a follow-up prefills only what is new, and its answer (tokens and logits)
// is the one a generation from scratch on the whole rendered conversation gives. Checked for two chat templates
// (ChatML from SmolLM2, Zephyr from TinyLlama) on random models with those tokenizers' vocabularies.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Engine } from '../../src/lib/engine.js';
import { ContextOverflowError } from '../../src/lib/errors.js';
import { MemoryFiles } from '../../src/lib/model-files.js';
import { syntheticModel } from '../../src/lib/model/synthetic.js';
import { syntheticAdapter } from '../../src/lib/lora/synthetic.js';
import { normalizeConfig } from '../../src/lib/model/config.js';
import type { ChatMessage } from '../../src/lib/tokenizer/tokenizer.js';
import { expectClose } from '../helpers/compare.js';
import { testGpu } from '../helpers/gpu.js';
import { tinyTokenizerJson } from '../helpers/tiny-tokenizer.js';
import { alpacaPrompt } from '../../src/lib/tokenizer/alpaca.js';

const fixture = (repo: string, file: string) => new Uint8Array(readFileSync(new URL(`../fixtures/${repo}/${file}`, import.meta.url)));

function chatModel(repo: string, vocabSize: number, seed: number) {
  const m = syntheticModel({ hiddenSize: 40, intermediateSize: 67, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 10, vocabSize, tied: true, seed });
  const enc = new TextEncoder();
  return new MemoryFiles(repo, new Map([
    ['config.json', enc.encode(JSON.stringify(m.config))],
    ['model.safetensors', m.safetensors],
    ['tokenizer.json', fixture(repo, 'tokenizer.json')],
    ['tokenizer_config.json', fixture(repo, 'tokenizer_config.json')],
  ]));
}

const TEMPLATES = [
  { repo: 'SmolLM2-135M-Instruct', vocab: 49152, seed: 31 },
  { repo: 'TinyLlama-1.1B-Chat-v1.0', vocab: 32000, seed: 32 },
];
// Measured on lavapipe: the largest difference between a reused and a from-scratch turn is 0 (ChatML model) and
// 7.6e-6 (Zephyr model; its prefill is cut into other chunks, so some rows take the other matmul variant). 4x that:
const ATOL = 3e-5;
const RTOL = 1e-5;

describe.each(TEMPLATES)('chat with the $repo template', ({ repo, vocab, seed }) => {
  it('a follow-up reuses the KV cache and answers as a from-scratch generation does', async () => {
    const gpu = await testGpu();
    const engine = new Engine(gpu, { contextLength: 256, slots: 2 });
    await engine.load(chatModel(repo, vocab, seed));
    const sampling = { temperature: 0, repetitionPenalty: 1 };
    const messages: ChatMessage[] = [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: 'Name a colour.' }];
    const first = await engine.chat({ messages, sampling, maxNewTokens: 12 });
    expect(first.reusedTokens).toBe(0);
    expect(first.prefilledTokens).toBe(first.promptIds.length);

    const follow: ChatMessage[] = [...messages, { role: 'assistant', content: first.text }, { role: 'user', content: 'And another one?' }];
    const second = await engine.chat({ messages: follow, sampling, maxNewTokens: 12 });
    const kept = [...first.promptIds, ...first.tokens.slice(0, -1)];
    let lcp = 0;
    while (lcp < kept.length && kept[lcp] === second.promptIds[lcp]) lcp++;
    // The first prompt is kept (its last token, a newline, may merge with the start of a random answer when the
    // conversation is encoded again); of the answer, as much as re-encodes to the same tokens.
    expect(second.reusedTokens).toBeGreaterThanOrEqual(first.promptIds.length - 1);
    expect(second.reusedTokens).toBe(Math.min(lcp, second.promptIds.length - 1));
    expect(second.prefilledTokens).toBe(second.promptIds.length - second.reusedTokens);

    const scratch = new Engine(gpu, { contextLength: 256, slots: 1 });
    await scratch.load(chatModel(repo, vocab, seed));
    const fresh = await scratch.generate({ promptIds: second.promptIds, sampling, maxNewTokens: 12 });
    expect(second.tokens).toEqual(fresh.tokens);
    expectClose(second.logits, fresh.logits, ATOL, RTOL, 'chosen-token logits');
    expectClose(second.lses, fresh.lses, ATOL, RTOL, 'log-sum-exp per step');
    scratch.unload();
    engine.unload();
  });
});

describe('chat on a model with a sliding window (its KV cache a ring)', () => {
  it('a follow-up keeps the cache while the ring holds the keys its first new token needs, starts over when not, and answers as from scratch', async () => {
    const gpu = await testGpu();
    const m = syntheticModel({ architecture: 'MistralForCausalLM', hiddenSize: 40, intermediateSize: 67, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 10, vocabSize: 49152, tied: true, seed: 33, slidingWindow: 6 });
    const files = () => new MemoryFiles('SmolLM2-135M-Instruct', new Map([
      ['config.json', new TextEncoder().encode(JSON.stringify(m.config))], ['model.safetensors', m.safetensors],
      ['tokenizer.json', fixture('SmolLM2-135M-Instruct', 'tokenizer.json')], ['tokenizer_config.json', fixture('SmolLM2-135M-Instruct', 'tokenizer_config.json')],
    ]));
    // 4 rows a call: rings of 6 + 4 - 1 = 9 rows.
    const engine = new Engine(gpu, { contextLength: 256, slots: 2, maxRows: 4 });
    await engine.load(files());
    expect(engine.runner.kvRows).toEqual([9, 9]);
    const scratch = new Engine(gpu, { contextLength: 256, slots: 1, maxRows: 4 });
    await scratch.load(files());
    const sampling = { temperature: 0, repetitionPenalty: 1 };
    const asFromScratch = async (r: { promptIds: number[]; tokens: number[] }) => {
      expect(r.tokens).toEqual((await scratch.generate({ promptIds: r.promptIds, sampling, maxNewTokens: 12 })).tokens);
    };
    const messages: ChatMessage[] = [{ role: 'user', content: 'Name a colour.' }];
    // One token answered: the slot holds the prompt alone.
    const first = await engine.chat({ messages, sampling, maxNewTokens: 1 });
    const n = first.promptIds.length;
    // The same conversation again: all but its last token shared, and the ring still holds the 5 keys before it.
    const again = await engine.chat({ messages, sampling, maxNewTokens: 12 });
    expect(again.reusedTokens).toBe(n - 1);
    await asFromScratch(again);
    // Once more: the 11 answer tokens since wrote over the ring rows those keys were in, so it starts over.
    const third = await engine.chat({ messages, sampling, maxNewTokens: 12 });
    expect(third.reusedTokens).toBe(0);
    expect(third.tokens).toEqual(again.tokens);
    // A follow-up: kept where its first new token's window is still in the ring (within 4 of what the slot holds).
    const held = [...third.promptIds, ...third.tokens.slice(0, -1)];
    const follow = await engine.chat({ messages: [...messages, { role: 'assistant', content: third.text }, { role: 'user', content: 'Another?' }], sampling, maxNewTokens: 12 });
    let lcp = 0;
    while (lcp < held.length && held[lcp] === follow.promptIds[lcp]) lcp++;
    const shared = Math.min(lcp, follow.promptIds.length - 1);
    expect(follow.reusedTokens).toBe(Math.max(0, shared - 5) >= held.length - 9 ? shared : 0);
    await asFromScratch(follow);
    scratch.unload();
    engine.unload();
  });
});

describe('chat bookkeeping', () => {
  it('another generation or another adapter in between means a full prefill, never a stale cache', async () => {
    const engine = new Engine(await testGpu(), { contextLength: 256, slots: 2 });
    await engine.load(chatModel('SmolLM2-135M-Instruct', 49152, 33));
    const sampling = { temperature: 0 };
    const messages: ChatMessage[] = [{ role: 'user', content: 'Hello there.' }];
    const a = await engine.chat({ messages, sampling, maxNewTokens: 4 });
    const again = await engine.chat({ messages, sampling, maxNewTokens: 4 });
    expect(again.reusedTokens).toBe(a.promptIds.length - 1); // same prompt: all but the last token kept
    expect(again.tokens).toEqual(a.tokens);
    await engine.generate({ prompt: 'Something else entirely.', sampling, maxNewTokens: 3 });
    const after = await engine.chat({ messages, sampling, maxNewTokens: 4 });
    expect(after.reusedTokens).toBe(0);
    expect(after.tokens).toEqual(a.tokens);
    // Through an adapter the cached entries are the base model's: nothing is kept, and the answer is the adapter's.
    const cfg = normalizeConfig(JSON.parse(new TextDecoder().decode((await chatModel('SmolLM2-135M-Instruct', 49152, 33).bytes('config.json'))!)));
    engine.addAdapter(syntheticAdapter(cfg, { name: 'loud', seed: 3, config: { r: 4, lora_alpha: 64, target_modules: 'all-linear' }, bScale: 0.5 }));
    const viaAdapter = await engine.chat({ messages, sampling, maxNewTokens: 4, adapter: 'loud' });
    expect(viaAdapter.reusedTokens).toBe(0);
    const scratch = await engine.generate({ promptIds: viaAdapter.promptIds, sampling, maxNewTokens: 4, adapter: 'loud' });
    expect(viaAdapter.tokens).toEqual(scratch.tokens);
    const back = await engine.chat({ messages, sampling, maxNewTokens: 4 });
    expect(back.reusedTokens).toBe(0);
    expect(back.tokens).toEqual(a.tokens);
    engine.unload();
  });

  it('an overlong conversation is refused with a typed error, or fits by dropping the oldest turns', async () => {
    const engine = new Engine(await testGpu(), { contextLength: 96, slots: 1 });
    await engine.load(chatModel('SmolLM2-135M-Instruct', 49152, 34));
    const long = 'word '.repeat(20);
    const messages: ChatMessage[] = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: long }, { role: 'assistant', content: long },
      { role: 'user', content: long }, { role: 'assistant', content: long },
      { role: 'user', content: 'Last question?' },
    ];
    const err = await engine.chat({ messages, maxNewTokens: 8 }).catch((e) => e);
    expect(err).toBeInstanceOf(ContextOverflowError);
    expect(err.details.canDrop).toBe(true);
    expect(err.message).toMatch(/Drop the oldest turns/);
    const r = await engine.chat({ messages, maxNewTokens: 8, overflow: 'drop-oldest', sampling: { temperature: 0 } });
    expect(r.droppedMessages).toBeGreaterThanOrEqual(2);
    expect(r.droppedMessages % 2).toBe(0);
    expect(r.contextUsed).toBeLessThanOrEqual(96);
    expect(engine.tokenizer.decode(r.promptIds)).toContain('Be brief.'); // the system prompt stays
    const bad = await engine.chat({ messages: [{ role: 'assistant', content: 'hi' }] }).catch((e) => e);
    expect(bad.name).toBe('InvalidArgumentError');
    engine.unload();
  });

  it('a model without a chat template answers each message alone, in the Alpaca template, and says so', async () => {
    const engine = new Engine(await testGpu(), { contextLength: 256, slots: 1 });
    const m = syntheticModel({ hiddenSize: 24, intermediateSize: 40, numLayers: 1, numHeads: 2, numKvHeads: 1, headDim: 12, vocabSize: 40, tied: true, seed: 35 });
    const enc = new TextEncoder();
    await engine.load(new MemoryFiles('no-template', new Map([
      ['config.json', enc.encode(JSON.stringify(m.config))], ['model.safetensors', m.safetensors], ['tokenizer.json', tinyTokenizerJson(40)],
    ])));
    const r = await engine.chat({ messages: [{ role: 'user', content: 'abc' }, { role: 'assistant', content: 'def' }, { role: 'user', content: 'ghi' }], maxNewTokens: 3 });
    expect(r.singleTurn).toBe(true);
    expect(r.droppedMessages).toBe(2);
    expect(r.promptIds).toEqual(engine.tokenizer.encode(alpacaPrompt('ghi'), true));
    engine.unload();
  });
});
