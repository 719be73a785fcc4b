// Prefill then cached decode for one or more sequences that share a prompt length, streaming tokens.
// Each decode step is one GPU submit and one readback of the candidates; stop on EOS ids, stop strings,
// max tokens or cancellation.

import { ContextOverflowError, InvalidArgumentError } from '../errors.js';
import { Rng } from '../util/rng.js';
import type { ModelRunner } from './runner.js';
import { sampleToken, validateSampling, type SamplingOptions } from './sampling.js';

export interface GenerateOptions extends SamplingOptions {
  maxNewTokens: number;
  eosTokenIds: readonly number[];
}

export interface TokenEvent {
  token: number;
  /** Index of the token among the generated ones. */
  index: number;
}

export interface GenerateTimings {
  prefillMs: number;
  decodeMs: number;
  promptTokens: number;
  generatedTokens: number;
  /** Decode tokens/s over the steps after the first token. */
  decodeTokensPerSecond: number;
  timeToFirstTokenMs: number;
  stopReason: 'eos' | 'length' | 'stop' | 'aborted';
}

const now = () => performance.now();

/**
 * Generates from `prompt` in KV slot `slot`. `onToken` may return true to stop (a stop string was seen).
 * Prefill runs in chunks of the runner's row budget.
 */
export async function generate(
  runner: ModelRunner, prompt: number[], opts: GenerateOptions,
  onToken: (e: TokenEvent) => boolean | void, signal?: AbortSignal, slot = 0,
): Promise<GenerateTimings> {
  validateSampling(opts);
  if (!(Number.isInteger(opts.maxNewTokens) && opts.maxNewTokens >= 1)) {
    throw new InvalidArgumentError(`max_new_tokens ${opts.maxNewTokens} is invalid: make sure it is a positive integer`);
  }
  if (prompt.length === 0) throw new InvalidArgumentError('The prompt is empty: type something, or pass --prompt-ids.');
  const C = runner.opts.contextLength;
  if (prompt.length + opts.maxNewTokens > C) {
    throw new ContextOverflowError(
      `The prompt (${prompt.length} tokens) plus ${opts.maxNewTokens} new tokens exceed the context of ${C} tokens. ` +
        `Shorten the prompt or ask for at most ${Math.max(0, C - prompt.length)} new tokens.`,
      { promptTokens: prompt.length, maxNewTokens: opts.maxNewTokens, context: C },
    );
  }
  const rng = new Rng(opts.seed);
  const eos = new Set(opts.eosTokenIds);
  runner.setSampling(opts.repetitionPenalty, opts.temperature);
  runner.resetSeen(slot, opts.repetitionPenalty !== 1 ? prompt : []);

  const t0 = now();
  const R = runner.opts.maxRows;
  let cands;
  for (let start = 0; start < prompt.length; start += R) {
    signal?.throwIfAborted();
    const chunk = prompt.slice(start, start + R);
    cands = await runner.forward({
      tokens: chunk, slots: chunk.map(() => slot), positions: chunk.map((_, i) => start + i),
      seqs: 1, lastStride: chunk.length, lastOffset: chunk.length - 1,
    });
  }
  const prefillMs = now() - t0;
  let firstTokenAt = 0;
  let stopReason: GenerateTimings['stopReason'] = 'length';
  let n = 0;
  let pos = prompt.length;
  const tDecode = now();
  try {
    for (;;) {
      const token = sampleToken(cands![0], opts, rng, runner.cfg.vocabSize);
      if (n === 0) firstTokenAt = now();
      n++;
      const stop = onToken({ token, index: n - 1 });
      if (eos.has(token)) { stopReason = 'eos'; break; }
      if (stop) { stopReason = 'stop'; break; }
      if (n >= opts.maxNewTokens) break;
      if (signal?.aborted) { stopReason = 'aborted'; break; }
      if (opts.repetitionPenalty !== 1) runner.markSeen(slot, token);
      cands = await runner.forward({ tokens: [token], slots: [slot], positions: [pos], seqs: 1, lastStride: 1, lastOffset: 0 });
      pos++;
    }
  } catch (e) {
    if (signal?.aborted) stopReason = 'aborted';
    else throw e;
  }
  const end = now();
  const decodeMs = end - tDecode;
  return {
    prefillMs,
    decodeMs,
    promptTokens: prompt.length,
    generatedTokens: n,
    decodeTokensPerSecond: n > 1 ? (n - 1) / ((end - firstTokenAt) / 1000) : 0,
    timeToFirstTokenMs: firstTokenAt - t0,
    stopReason,
  };
}

