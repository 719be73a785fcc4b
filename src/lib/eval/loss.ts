// Teacher-forced loss of reference answers, for several columns (the base model and adapters at strengths) decoded as
// one batch: the prompt is prefilled per distinct adapter, then the answer tokens are fed as given, many positions per
// forward, and the GPU returns, per row, the log-sum-exp of the logits (top-k stage 2) and the logit of the next answer
// token (gather_target), so a step reads back a few floats per row. Loss is the mean negative log-likelihood over the answer tokens (the tokens training
// learns from, end-of-sequence included), accumulated in float64; perplexity is its exponential.

import { InvalidArgumentError, NonFiniteError } from '../errors.js';
import { prefillColumns, prefillEach, type Column } from '../model/generate.js';
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
 * Scores `answer` after `prompt` in every column (column i uses KV slot i); with arrays of prompts and answers, each
 * column scores its own (several examples in flight). An answer longer than the context leaves room for is cut, and
 * only the scored tokens count.
 */
export async function teacherForcedLoss(
  runner: ModelRunner, prompt: number[] | number[][], answer: number[] | number[][], columns: Column[], signal?: AbortSignal,
): Promise<ColumnLoss[] | null> {
  const perColumn = Array.isArray(prompt[0]);
  const prompts = perColumn ? (prompt as number[][]) : columns.map(() => prompt as number[]);
  const answers = Array.isArray(answer[0]) ? (answer as number[][]) : columns.map(() => answer as number[]);
  const C = runner.opts.contextLength;
  const scored = columns.map((_, i) => {
    if (prompts[i].length === 0) throw new InvalidArgumentError('The prompt is empty: an example needs an instruction.');
    if (answers[i].length === 0) throw new InvalidArgumentError('The reference answer is empty: nothing to score.');
    if (prompts[i].length >= C) throw new InvalidArgumentError(`The prompt (${prompts[i].length} tokens) fills the context of ${C} tokens: nothing of the answer can be scored.`);
    return answers[i].slice(0, C - prompts[i].length);
  });
  runner.setSampling(1, 1, 1); // the log-sum-exp and the target's logit: no candidates needed beyond the best
  columns.forEach((_, i) => runner.resetSeen(i, []));
  const first = perColumn
    ? await prefillEach(runner, prompts, columns, { signal, targets: scored.map((s) => s[0]) })
    : await prefillColumns(runner, prompts[0], columns, { signal, target: scored[0][0] });
  if (!first) return null;
  const out = columns.map((_, i) => ({ nll: nll(first[i], i, 0), tokens: 1 }));
  // Then the answers fed as given, many positions per forward: each row is projected to logits with its next answer
  // token as target, up to the runner's maxSeqs rows shared among the columns still scoring (a column's rows are
  // consecutive positions of its slot, attended causally as in a prefill).
  const done = columns.map(() => 1);
  for (;;) {
    if (signal?.aborted) return null;
    const live = columns.map((_, i) => i).filter((i) => done[i] < scored[i].length);
    if (live.length === 0) break;
    const share = Math.max(1, Math.floor(Math.min(runner.maxSeqs, runner.opts.maxRows) / live.length));
    const rows: { col: number; k: number }[] = [];
    for (const i of live) for (let k = done[i]; k < Math.min(scored[i].length, done[i] + share); k++) rows.push({ col: i, k });
    const cands = await runner.forward({
      tokens: rows.map((r) => scored[r.col][r.k - 1]),
      slots: rows.map((r) => r.col),
      positions: rows.map((r) => prompts[r.col].length + r.k - 1),
      loraSlots: rows.map((r) => columns[r.col].loraSlot),
      loraScales: rows.map((r) => columns[r.col].strength),
      seqs: rows.length, lastStride: 1, lastOffset: 0,
      targets: rows.map((r) => scored[r.col][r.k]),
    });
    cands.forEach((c, j) => { const { col, k } = rows[j]; out[col].nll += nll(c, col, k); out[col].tokens++; done[col] = k + 1; });
  }
  return out;
}

export const meanLoss = (l: ColumnLoss) => (l.tokens ? l.nll / l.tokens : NaN);
export const perplexity = (l: ColumnLoss) => Math.exp(meanLoss(l));
