// An evaluation run: every example of a set through every selected model (the base and adapters at strengths),
// the models of one example generated as one batch (batched multi-adapter decoding), then the reference answer
// scored teacher-forced in one batch too. Each result is handed to `onResult` as it is made, so a caller that keeps
// them can reopen a finished run and resume a stopped one: examples whose results are all kept are skipped, and a fixed
// seed makes a resumed run give the results of an uninterrupted one.

import type { TrainRecord } from '../data/records.js';
import { toExample } from '../data/examples.js';
import type { Engine } from '../engine.js';
import { InvalidArgumentError } from '../errors.js';
import type { SamplingOptions } from '../model/sampling.js';
import { teacherForcedLoss } from './loss.js';
import type { ExampleResult } from './metrics.js';
import { rougeL } from './rouge.js';
import type { EvalExample } from './sets.js';

export interface EvalModel {
  /** null: the base model. */
  adapter: string | null;
  strength: number;
}

export const modelLabel = (m: EvalModel) => (m.adapter === null ? 'base' : `${m.adapter}@${m.strength}`);
export const resultKey = (id: string, model: string) => `${id}\u0000${model}`;

export interface EvalOptions {
  format: 'alpaca' | 'chat';
  maxNewTokens: number;
  sampling: Partial<SamplingOptions>;
  /** Skip the teacher-forced loss (faster; ROUGE-L and answers only). */
  skipLoss?: boolean;
  /** ROUGE-L with Porter stemming (off by default, as in rouge-score). */
  stem?: boolean;
  /** Examples decoded at once (default: as many as the KV slots hold beside the models). */
  examplesInFlight?: number;
}

export const DEFAULT_EVAL: EvalOptions = { format: 'chat', maxNewTokens: 256, sampling: { temperature: 0, seed: 0, repetitionPenalty: 1 } };

export interface EvalProgress { done: number; total: number; example: string }

function asRecord(e: EvalExample): TrainRecord {
  if (e.history?.length) return { kind: 'chat', messages: [...e.history, { role: 'user', content: e.instruction }, { role: 'assistant', content: e.reference ?? '' }] };
  return { kind: 'alpaca', instruction: e.instruction, input: e.input, output: e.reference ?? '' };
}

export async function runEvaluation(
  engine: Engine, examples: EvalExample[], models: EvalModel[], opts: EvalOptions,
  hooks: { kept?: Set<string>; onResult?: (r: ExampleResult) => void | Promise<void>; onProgress?: (p: EvalProgress) => void },
  signal?: AbortSignal,
): Promise<{ stopped: boolean }> {
  if (models.length < 1 || models.length > engine.runner.opts.slots) {
    throw new InvalidArgumentError(`Evaluate 1 to ${engine.runner.opts.slots} models at once (got ${models.length}).`);
  }
  const labels = models.map(modelLabel);
  if (new Set(labels).size !== labels.length) throw new InvalidArgumentError(`Each model is evaluated once: ${labels.join(', ')} repeats one.`);
  const kept = hooks.kept ?? new Set<string>();
  const tok = engine.tokenizer;
  const eosId = engine.eosIds[0] ?? 0;
  const context = engine.runner.opts.contextLength;
  // Several examples in flight when fewer models than KV slots are compared: each batch fills the slots.
  const perBatch = Math.max(1, Math.min(opts.examplesInFlight ?? Infinity, Math.floor(engine.runner.opts.slots / models.length)));
  let done = 0;
  for (let b = 0; b < examples.length; b += perBatch) {
    if (signal?.aborted) return { stopped: true };
    const batch = examples.slice(b, b + perBatch);
    hooks.onProgress?.({ done, total: examples.length, example: batch[0].id });
    const items = batch.flatMap((ex) => {
      const todo = models.filter((m) => !kept.has(resultKey(ex.id, modelLabel(m))));
      if (!todo.length) return [];
      // The prompt exactly as training builds it (template, BOS, EOS after the answer).
      const full = toExample(tok, asRecord(ex), { format: opts.format, cutoff: context, trainOnInputs: false, eosId });
      const prompt = full.ids.slice(0, full.promptTokens);
      if (context - prompt.length < 1) throw new InvalidArgumentError(`Example ${ex.id} has a prompt of ${prompt.length} tokens, which fills the context of ${context}: load the model with a longer context or drop the example.`);
      return todo.map((m) => ({ ex, m, prompt, answer: full.ids.slice(full.promptTokens), maxNewTokens: Math.min(opts.maxNewTokens, context - prompt.length) }));
    });
    // Items decode together when they share a token budget (one a long prompt cut short runs with its own).
    for (const group of groupBy(items, (i) => i.maxNewTokens)) {
      const gens = await engine.generateMany(group.map((i) => ({ promptIds: i.prompt, adapter: i.m.adapter, strength: i.m.strength })), { maxNewTokens: group[0].maxNewTokens, sampling: opts.sampling }, signal);
      if (signal?.aborted) return { stopped: true };
      const scoredItems = group.filter((i) => i.ex.reference !== undefined && !opts.skipLoss && i.answer.length);
      const losses = scoredItems.length
        ? await teacherForcedLoss(engine.runner, scoredItems.map((i) => i.prompt), scoredItems.map((i) => i.answer), scoredItems.map((i) => ({ loraSlot: engine.loraSlot(i.m.adapter), strength: i.m.strength })), signal)
        : [];
      if (signal?.aborted || losses === null) return { stopped: true };
      for (let k = 0; k < group.length; k++) {
        const { ex, m } = group[k];
        const g = gens[k];
        const loss = losses[scoredItems.indexOf(group[k])];
        await hooks.onResult?.({
          id: ex.id, model: modelLabel(m), prediction: g.text, reference: ex.reference,
          rougeL: ex.reference !== undefined ? rougeL(ex.reference, g.text, { stem: opts.stem }).fmeasure : undefined,
          nll: loss?.nll, lossTokens: loss?.tokens,
          predictionTokens: g.tokens.length, stopReason: g.stopReason,
        });
      }
    }
    done += batch.length;
    hooks.onProgress?.({ done, total: examples.length, example: batch[batch.length - 1].id });
  }
  return { stopped: false };
}

function groupBy<T, K>(xs: T[], key: (x: T) => K): T[][] {
  const m = new Map<K, T[]>();
  for (const x of xs) m.set(key(x), [...(m.get(key(x)) ?? []), x]);
  return [...m.values()];
}
