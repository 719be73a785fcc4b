// Preference data for DPO, ORPO and SimPO: TRL's preference format ({prompt, chosen, rejected} as texts, or as
// messages: a prompt list, or chosen/rejected conversations sharing their first turns), or the paper's comparison
// data (comparison_data_v2.json, and LoRA Lab's vote export, which writes that shape). Each pair becomes two examples
// that share the prompt: prompt + chosen and prompt + rejected, the loss on the answers only. A pair longer than the
// cutoff keeps its prompt (its last tokens, as TRL's keep_end) and has its answer cut; the count is reported.

import { DatasetError } from '../errors.js';
import { parseComparisonData, preferencePairs, rewardPrompt } from '../reward/pairs.js';
import type { ChatMessage, TextTokenizer } from '../tokenizer/tokenizer.js';
import { encodePrefix, exampleFromIds, type Example } from './examples.js';

/** A pair: the prompt (a text, or the conversation so far) and the two answers. */
export interface PreferenceRecord {
  prompt: string | ChatMessage[];
  chosen: string;
  rejected: string;
}

export interface PreferenceExample {
  chosen: Example;
  rejected: Example;
}

const isMessages = (v: unknown): v is ChatMessage[] => Array.isArray(v) && v.every((m) => m && typeof m === 'object' && typeof (m as ChatMessage).role === 'string' && typeof (m as ChatMessage).content === 'string');

/** A conversation's last message, which must be the assistant's answer. */
function answerOf(v: ChatMessage[], where: string, key: string): string {
  const last = v[v.length - 1];
  if (!last || last.role !== 'assistant') throw new DatasetError(`${where}: "${key}" must end with an assistant message (the answer).`);
  return last.content;
}

/** One record of TRL's preference format, checked; says which record is wrong and what it needs. */
function trlRecord(r: unknown, where: string): PreferenceRecord {
  const rec = r as Record<string, unknown> | null;
  if (!rec || typeof rec !== 'object') throw new DatasetError(`${where} is not an object with "prompt", "chosen" and "rejected".`);
  const { prompt, chosen, rejected } = rec;
  if (typeof chosen === 'string' && typeof rejected === 'string') {
    if (typeof prompt === 'string' || isMessages(prompt)) return { prompt, chosen, rejected };
    throw new DatasetError(`${where} needs a "prompt": a text, or a list of {role, content} messages.`);
  }
  if (isMessages(chosen) && isMessages(rejected)) {
    // Conversational: chosen and rejected answer one prompt, given apart or as the turns both conversations share.
    const shared = isMessages(prompt) ? prompt : typeof prompt === 'string' ? [{ role: 'user' as const, content: prompt }] : chosen.slice(0, -1);
    const own = (v: ChatMessage[]) => (isMessages(prompt) || typeof prompt === 'string' ? v : v.slice(shared.length));
    if (!isMessages(prompt) && typeof prompt !== 'string' && JSON.stringify(rejected.slice(0, -1)) !== JSON.stringify(shared)) {
      throw new DatasetError(`${where}: "chosen" and "rejected" must share every turn but their last (the answers), or give the "prompt" apart.`);
    }
    if (own(chosen).length !== 1 || own(rejected).length !== 1) throw new DatasetError(`${where}: "chosen" and "rejected" must each add one assistant answer to the prompt.`);
    return { prompt: shared, chosen: answerOf(chosen, where, 'chosen'), rejected: answerOf(rejected, where, 'rejected') };
  }
  throw new DatasetError(`${where} needs "chosen" and "rejected": two texts, or two conversations ending with the assistant's answer.`);
}

/**
 * Pairs from a file's text: the paper's comparison data (records with "user_input"), or TRL's preference format
 * (JSON array or JSON Lines). `format` says which it was.
 */
export function parsePreferenceData(text: string, file = 'preference data'): { records: PreferenceRecord[]; format: 'comparison' | 'trl'; available: number } {
  const trimmed = text.trim();
  if (!trimmed) throw new DatasetError(`${file} is empty: give pairs as {"prompt", "chosen", "rejected"} records (JSON or JSON Lines), or comparison data.`);
  let raw: unknown[];
  try {
    const parsed: unknown = trimmed.startsWith('[') ? JSON.parse(trimmed) : trimmed.split(/\r?\n/).filter((l) => l.trim()).map((l) => JSON.parse(l));
    if (!Array.isArray(parsed)) throw new Error('not a list of records');
    raw = parsed;
  } catch (e) {
    throw new DatasetError(`${file} is not JSON or JSON Lines (${(e as Error).message}). Give {"prompt", "chosen", "rejected"} records, or comparison data.`);
  }
  if (raw.length > 0 && raw[0] && typeof raw[0] === 'object' && 'user_input' in (raw[0] as object)) {
    const { pairs, available } = preferencePairs(parseComparisonData(trimmed, file));
    return { records: pairs, format: 'comparison', available };
  }
  const records = raw.map((r, i) => trlRecord(r, `${file}, record ${i + 1}`));
  return { records, format: 'trl', available: records.length };
}

/**
 * A pair as two examples sharing the prompt's tokens: the prompt through the model's chat template (format 'chat',
 * when the model has one) or the Alpaca template, each answer with EOS. `truncated` when the cutoff cut anything.
 */
export function preferenceExample(tok: TextTokenizer, r: PreferenceRecord, o: { format: 'alpaca' | 'chat'; cutoff: number; eosId: number }): PreferenceExample & { truncated: boolean } {
  const messages: ChatMessage[] = typeof r.prompt === 'string' ? [{ role: 'user', content: r.prompt }] : r.prompt;
  const chat = o.format === 'chat' && !!tok.chatTemplate;
  const promptText = chat ? tok.renderChat(messages, true) : rewardPrompt(typeof r.prompt === 'string' ? r.prompt : messages.map((m) => m.content).join('\n\n'));
  // The answer as the template writes it after the prompt (its end-of-turn included), else as given.
  const answerText = (a: string) => {
    if (!chat) return a;
    const full = tok.renderChat([...messages, { role: 'assistant', content: a }], false);
    return full.startsWith(promptText) ? full.slice(promptText.length) : a;
  };
  const whole = tok.encode(promptText, !chat);
  // TRL's keep_end: a prompt longer than the cutoff allows keeps its last tokens, leaving room for an answer token.
  const room = Math.max(1, o.cutoff - 1);
  const promptIds = whole.length > room ? whole.slice(whole.length - room) : whole;
  let truncated = whole.length > room;
  const side = (a: string): Example => {
    const need = o.cutoff - promptIds.length;
    let ids = encodePrefix(tok, answerText(a), false, need);
    if (ids[ids.length - 1] !== o.eosId) ids = [...ids, o.eosId];
    if (ids.length > need) { ids = ids.slice(0, need); truncated = true; }
    return exampleFromIds(promptIds, ids);
  };
  return { chosen: side(r.chosen), rejected: side(r.rejected), truncated };
}
