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
  let done = 0;
  for (const ex of examples) {
    if (signal?.aborted) return { stopped: true };
    const todo = models.filter((m) => !kept.has(resultKey(ex.id, modelLabel(m))));
    hooks.onProgress?.({ done, total: examples.length, example: ex.id });
    if (todo.length) {
      // The prompt exactly as training builds it (template, BOS, EOS after the answer), cut to what can still answer.
      const full = toExample(tok, asRecord(ex), { format: opts.format, cutoff: context, trainOnInputs: false, eosId });
      const prompt = full.ids.slice(0, full.promptTokens);
      const maxNewTokens = Math.min(opts.maxNewTokens, context - prompt.length);
      if (maxNewTokens < 1) throw new InvalidArgumentError(`Example ${ex.id} has a prompt of ${prompt.length} tokens, which fills the context of ${context}: load the model with a longer context or drop the example.`);
      const gens = await engine.compare({ promptIds: prompt, maxNewTokens, sampling: opts.sampling }, todo.map((m) => ({ adapter: m.adapter, strength: m.strength })), undefined, signal);
      if (signal?.aborted) return { stopped: true };
      const answer = full.ids.slice(full.promptTokens);
      const losses = ex.reference !== undefined && !opts.skipLoss && answer.length
        ? await teacherForcedLoss(engine.runner, prompt, answer, todo.map((m) => ({ loraSlot: engine.loraSlot(m.adapter), strength: m.strength })), signal)
        : null;
      if (signal?.aborted) return { stopped: true };
      for (let i = 0; i < todo.length; i++) {
        const g = gens[i];
        await hooks.onResult?.({
          id: ex.id, model: modelLabel(todo[i]), prediction: g.text, reference: ex.reference,
          rougeL: ex.reference !== undefined ? rougeL(ex.reference, g.text, { stem: opts.stem }).fmeasure : undefined,
          nll: losses?.[i].nll, lossTokens: losses?.[i].tokens,
          predictionTokens: g.tokens.length, stopReason: g.stopReason,
        });
      }
    }
    done++;
    hooks.onProgress?.({ done, total: examples.length, example: ex.id });
  }
  return { stopped: false };
}
