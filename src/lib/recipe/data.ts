// A run's data as a cluster trainer reads it: each example the run trained (or validated) on, as the prompt and
// completion text and as the exact tokens and loss mask our trainer used, in Hugging Face's convention (label j is
// the token at j, predicted from position j - 1; -100: no loss). TRL takes the tokens as they are (a dataset with
// input_ids is not tokenized again) with completion_mask; Axolotl's pre-tokenized format takes input_ids,
// attention_mask and labels. The text reproduces the tokens: encode(prompt) (with the tokenizer's special tokens for
// the Alpaca template, without them for a chat template, which writes its own) + encode(completion) + EOS, cut at
// the cutoff.

import type { TrainRecord } from '../data/records.js';
import { IGNORE, promptParts, type Example } from '../data/examples.js';
import type { TextTokenizer } from '../tokenizer/tokenizer.js';
import type { TrainConfig } from '../training/train-config.js';
import { runExamples } from '../training/session.js';

export interface RecipeRow {
  prompt: string;
  completion: string;
  /** Whether the prompt is a chat template's output (its special tokens are in the text). */
  templated: boolean;
  input_ids: number[];
  /** 1 where the token is learned (its label is kept), 0 where it is not. */
  completion_mask: number[];
}

export interface RecipeData {
  train: RecipeRow[];
  validation: RecipeRow[];
}

/** The example's tokens and mask in the Hugging Face convention: token j is learned when target j - 1 is kept. */
export function learnedMask(e: Example): number[] {
  return e.ids.map((_, j) => (j >= 1 && e.targets[j - 1] !== IGNORE ? 1 : 0));
}

export function recipeData(tok: TextTokenizer, eosId: number, o: { records: TrainRecord[]; format: 'alpaca' | 'chat'; maxRecords?: number }, c: TrainConfig): RecipeData {
  const split = runExamples(tok, eosId, o, c);
  const row = ({ record, example }: { record: TrainRecord; example: Example }): RecipeRow => {
    const parts = promptParts(tok, record, o.format);
    return { prompt: parts.prompt, completion: parts.response, templated: parts.templated, input_ids: example.ids, completion_mask: learnedMask(example) };
  };
  return { train: split.train.map(row), validation: split.validation.map(row) };
}

/** TRL's rows: the text for reading, and the tokens and mask it trains on. */
export function trlJsonl(rows: RecipeRow[]): string {
  return rows.map((r) => JSON.stringify({ prompt: r.prompt, completion: r.completion, input_ids: r.input_ids, completion_mask: r.completion_mask })).join('\n') + '\n';
}

/** Axolotl's pre-tokenized rows: exactly input_ids, attention_mask and labels. */
export function axolotlJsonl(rows: RecipeRow[]): string {
  return rows.map((r) => JSON.stringify({
    input_ids: r.input_ids,
    attention_mask: r.input_ids.map(() => 1),
    labels: r.input_ids.map((id, j) => (r.completion_mask[j] ? id : IGNORE)),
  })).join('\n') + '\n';
}
