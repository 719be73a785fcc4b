// Teacher-forced loss of reference answers, for several columns (the base model and adapters at strengths) decoded as
// one batch: the prompt is prefilled per distinct adapter, then each answer token is fed as given and the GPU returns,
// per column, the log-sum-exp of the logits (top-k stage 2) and the logit of the next answer token (gather_target), so
// a step reads back a few floats. Loss is the mean negative log-likelihood over the answer tokens (the tokens training
// learns from, end-of-sequence included), accumulated in float64; perplexity is its exponential.

import { InvalidArgumentError, NonFiniteError } from '../errors.js';
import { prefillColumns, type Column } from '../model/generate.js';
import type { Candidates, ModelRunner } from '../model/runner.js';

export interface ColumnLoss {
  /** Sum of -log p(token) over the scored answer tokens. */
  nll: number;
  tokens: number;
}

function nll(c: Candidates, column: number, index: number): number {
  const v = c.lse - (c.target as number);
  if (!Number.isFinite(v)) throw new NonFiniteError(`The model produced non-finite logits in column ${column + 1} at answer token ${index + 1}.`, { column, index });
  return v;
}

/**
 * Scores `answer` after `prompt` in every column (column i uses KV slot i). An answer longer than the context leaves
 * room for is cut, and only the scored tokens count.
 */
export async function teacherForcedLoss(runner: ModelRunner, prompt: number[], answer: number[], columns: Column[], signal?: AbortSignal): Promise<ColumnLoss[] | null> {
  if (prompt.length === 0) throw new InvalidArgumentError('The prompt is empty: an example needs an instruction.');
  if (answer.length === 0) throw new InvalidArgumentError('The reference answer is empty: nothing to score.');
  const C = runner.opts.contextLength;
  if (prompt.length >= C) throw new InvalidArgumentError(`The prompt (${prompt.length} tokens) fills the context of ${C} tokens: nothing of the answer can be scored.`);
  const scored = answer.slice(0, C - prompt.length);
  runner.setSampling(1, 1);
  columns.forEach((_, i) => runner.resetSeen(i, []));
  const first = await prefillColumns(runner, prompt, columns, signal, scored[0]);
  if (!first) return null;
  const out = columns.map((_, i) => ({ nll: nll(first[i], i, 0), tokens: 1 }));
  for (let k = 1; k < scored.length; k++) {
    if (signal?.aborted) return null;
    const cands = await runner.forward({
      tokens: columns.map(() => scored[k - 1]),
      slots: columns.map((_, i) => i),
      positions: columns.map(() => prompt.length + k - 1),
      loraSlots: columns.map((c) => c.loraSlot),
      loraScales: columns.map((c) => c.strength),
      seqs: columns.length, lastStride: 1, lastOffset: 0,
      targets: columns.map(() => scored[k]),
    });
    cands.forEach((c, i) => { out[i].nll += nll(c, i, k); out[i].tokens++; });
  }
  return out;
}

export const meanLoss = (l: ColumnLoss) => (l.tokens ? l.nll / l.tokens : NaN);
export const perplexity = (l: ColumnLoss) => Math.exp(meanLoss(l));
