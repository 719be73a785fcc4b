// Records become token sequences for training: the prompt (Alpaca template, or the model's chat template) and the
// response, EOS appended, truncated to the cutoff. `targets[t]` is the token position t must predict (ids[t + 1]),
// or -100 where the loss is off: on the prompt unless train_on_inputs, and at the last position.

import { alpacaPrompt, userMessage } from '../tokenizer/alpaca.js';
import type { TextTokenizer } from '../tokenizer/tokenizer.js';
import type { TrainRecord } from './records.js';

export const IGNORE = -100;

export interface Example {
  ids: number[];
  targets: number[];
  /** Tokens of the prompt part (before the response). */
  promptTokens: number;
}

export interface ExampleOptions {
  format: 'alpaca' | 'chat';
  cutoff: number;
  trainOnInputs: boolean;
  eosId: number;
}

/** The exact prompt text the model sees for a record, and the response text it learns. */
export function promptParts(tok: TextTokenizer, r: TrainRecord, format: 'alpaca' | 'chat'): { prompt: string; response: string; templated: boolean } {
  if (r.kind === 'alpaca') {
    if (format === 'chat' && tok.chatTemplate) {
      const user = userMessage(r.instruction, r.input);
      return chatParts(tok, [{ role: 'user', content: user }, { role: 'assistant', content: r.output }]);
    }
    return { prompt: alpacaPrompt(r.instruction, r.input), response: r.output, templated: false };
  }
  if (tok.chatTemplate) return chatParts(tok, r.messages);
  const last = r.messages[r.messages.length - 1];
  const context = r.messages.slice(0, -1).map((m) => `${m.role}: ${m.content}`).join('\n\n');
  return { prompt: alpacaPrompt(context || last.content), response: last.content, templated: false };
}

function chatParts(tok: TextTokenizer, messages: { role: 'system' | 'user' | 'assistant'; content: string }[]) {
  const prompt = tok.renderChat(messages.slice(0, -1), true);
  const full = tok.renderChat(messages, false);
  const response = full.startsWith(prompt) ? full.slice(prompt.length) : messages[messages.length - 1].content;
  return { prompt, response, templated: true };
}

/** Tokens past the ones needed that must also agree before a truncated encoding is trusted (BPE edge effects). */
const EDGE_TOKENS = 16;

/**
 * The first `need` tokens of `text` (at least; possibly more), without tokenizing all of it: a prefix is encoded,
 * doubling until it yields `need + EDGE_TOKENS` tokens, so the boundary cannot change the first `need`. Text short
 * enough is encoded whole, so records that fit the cutoff get exactly the tokens a full encoding gives. Work and
 * memory are bounded by the cutoff, not by the record (a 50 MB record no longer exhausts the heap).
 */
export function encodePrefix(tok: TextTokenizer, text: string, addSpecialTokens: boolean, need: number): number[] {
  if (need <= 0) return [];
  for (let chars = 4 * (need + EDGE_TOKENS) + 256; ; chars *= 2) {
    if (chars >= text.length) return tok.encode(text, addSpecialTokens);
    let cut = chars;
    if (/[\uD800-\uDBFF]/.test(text[cut - 1])) cut--; // never split a surrogate pair
    const ids = tok.encode(text.slice(0, cut), addSpecialTokens);
    if (ids.length >= need + EDGE_TOKENS) return ids.slice(0, need);
  }
}

export function toExample(tok: TextTokenizer, r: TrainRecord, o: ExampleOptions): Example {
  const parts = promptParts(tok, r, o.format);
  // Chat templates write their own special tokens; the Alpaca prompt gets the tokenizer's BOS.
  const promptIds = encodePrefix(tok, parts.prompt, !parts.templated, o.cutoff);
  const need = o.cutoff - promptIds.length;
  let responseIds = encodePrefix(tok, parts.response, false, need);
  // A truncated response fills the cutoff, so this EOS is cut off below exactly as it would be after a full encoding.
  if (responseIds[responseIds.length - 1] !== o.eosId) responseIds = [...responseIds, o.eosId];
  const ids = [...promptIds, ...responseIds].slice(0, o.cutoff);
  const targets = ids.map((_, t) => {
    if (t + 1 >= ids.length) return IGNORE;
    if (!o.trainOnInputs && t + 1 < promptIds.length) return IGNORE;
    return ids[t + 1];
  });
  return { ids, targets, promptTokens: Math.min(promptIds.length, ids.length) };
}

/** An example from token ids (tests, scripts): the first `promptTokens` are the prompt. */
export function exampleFromIds(prompt: number[], response: number[], trainOnInputs = false): Example {
  const ids = [...prompt, ...response];
  const targets = ids.map((_, t) => (t + 1 >= ids.length || (!trainOnInputs && t + 1 < prompt.length) ? IGNORE : ids[t + 1]));
  return { ids, targets, promptTokens: prompt.length };
}
