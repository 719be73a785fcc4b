// Preference pairs for training a reward model: from comparison data in the paper's format
// ([{user_input, responses_and_scores: [{response, score, source}]}], as comparison_data_v2.json and LoRA Lab's vote
// export write it) every two responses to one input with different scores make a pair (the higher score chosen; ties
// say nothing and are left out). A pair becomes two token sequences, prompt + answer + EOS, whose last token is
// where the reward is read.

import { encodePrefix } from '../data/examples.js';
import { DatasetError } from '../errors.js';
import { alpacaPrompt } from '../tokenizer/alpaca.js';
import type { TextTokenizer } from '../tokenizer/tokenizer.js';

export interface ComparisonRecord {
  user_input: string;
  responses_and_scores: { response: string; score: number; source?: string }[];
}

export interface PreferencePair {
  prompt: string;
  chosen: string;
  rejected: string;
}

/** Token ids of a pair: chosen and rejected, each ending with EOS (the reward's position). */
export interface PairExample {
  chosen: number[];
  rejected: number[];
}

/** Reads comparison data (a JSON array, or JSON Lines), checking every record's shape; says which record is wrong. */
export function parseComparisonData(text: string, file = 'comparison data'): ComparisonRecord[] {
  let raw: unknown;
  const trimmed = text.trim();
  try {
    raw = trimmed.startsWith('[') ? JSON.parse(trimmed) : trimmed.split(/\r?\n/).filter((l) => l.trim()).map((l) => JSON.parse(l));
  } catch (e) {
    throw new DatasetError(`${file} is not JSON or JSON Lines (${(e as Error).message}). Comparison data is [{"user_input": ..., "responses_and_scores": [{"response": ..., "score": ...}, ...]}].`);
  }
  return (raw as unknown[]).map((r, i) => {
    const rec = r as Partial<ComparisonRecord> | null;
    const where = `${file}, record ${i + 1}`;
    if (!rec || typeof rec.user_input !== 'string') throw new DatasetError(`${where} has no "user_input" text.`, { record: i });
    if (!Array.isArray(rec.responses_and_scores)) throw new DatasetError(`${where} has no "responses_and_scores" list.`, { record: i });
    const responses = rec.responses_and_scores.map((x, j) => {
      // The paper's file lists objects; lists of [response, score] are accepted too.
      const [response, score, source] = Array.isArray(x) ? x : [x?.response, x?.score, x?.source];
      if (typeof response !== 'string' || typeof score !== 'number' || !Number.isFinite(score)) {
        throw new DatasetError(`${where}, response ${j + 1} needs a "response" text and a finite "score" number.`, { record: i });
      }
      return { response, score, ...(typeof source === 'string' ? { source } : {}) };
    });
    return { user_input: rec.user_input, responses_and_scores: responses };
  });
}

/** Most preference pairs a run takes (a record of n differently scored answers makes n (n - 1) / 2 of them). */
export const MAX_PREFERENCE_PAIRS = 100_000;

/** How many pairs of differently scored responses a record makes (without making them). */
function pairCount(r: ComparisonRecord): number {
  const n = r.responses_and_scores.length;
  const same = new Map<number, number>();
  for (const x of r.responses_and_scores) same.set(x.score, (same.get(x.score) ?? 0) + 1);
  return (n * (n - 1)) / 2 - [...same.values()].reduce((t, k) => t + (k * (k - 1)) / 2, 0);
}

/**
 * Every two responses of a record with different scores, the higher one chosen, in order, up to `limit` (made only
 * as far as the limit: 3,000 scored answers to one question would be 4.5 M pairs). `available` is how many there are.
 */
export function preferencePairs(records: ComparisonRecord[], limit = MAX_PREFERENCE_PAIRS): { pairs: PreferencePair[]; available: number } {
  const pairs: PreferencePair[] = [];
  const available = records.reduce((t, r) => t + pairCount(r), 0);
  for (const r of records) {
    const rs = r.responses_and_scores;
    for (let i = 0; i < rs.length && pairs.length < limit; i++) {
      for (let j = i + 1; j < rs.length && pairs.length < limit; j++) {
        if (rs[i].score === rs[j].score) continue;
        const [hi, lo] = rs[i].score > rs[j].score ? [rs[i], rs[j]] : [rs[j], rs[i]];
        pairs.push({ prompt: r.user_input, chosen: hi.response, rejected: lo.response });
      }
    }
  }
  return { pairs, available };
}

/** The prompt a reward model sees: the paper's user_input is already Alpaca-templated; a bare instruction is templated. */
export function rewardPrompt(userInput: string): string {
  return userInput.includes('### Response:') ? userInput : alpacaPrompt(userInput);
}

/**
 * Prompt + answer as token ids with EOS last, at most `cutoff` tokens: a longer text keeps its first cutoff - 1
 * tokens and EOS (so the reward is always read at an EOS, as in training).
 */
export function rewardIds(tok: TextTokenizer, prompt: string, answer: string, cutoff: number, eosId: number): { ids: number[]; truncated: boolean } {
  const ids = encodePrefix(tok, rewardPrompt(prompt) + answer, true, cutoff);
  const truncated = ids.length + 1 > cutoff;
  return { ids: [...(truncated ? ids.slice(0, cutoff - 1) : ids), eosId], truncated };
}

export function pairExamples(tok: TextTokenizer, pairs: PreferencePair[], cutoff: number, eosId: number): PairExample[] {
  if (pairs.length === 0) throw new DatasetError('There are no preference pairs: every record needs two responses with different scores.');
  return pairs.map((p) => ({ chosen: rewardIds(tok, p.prompt, p.chosen, cutoff, eosId).ids, rejected: rewardIds(tok, p.prompt, p.rejected, cutoff, eosId).ids }));
}
