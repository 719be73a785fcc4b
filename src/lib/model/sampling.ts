// Sampling settings and the CPU half of sampling. The GPU has already applied the repetition penalty and picked
// each sequence's TOPK best tokens with the log-sum-exp over the whole vocabulary; here temperature, top-k and
// top-p are applied (in transformers' order) and a token is drawn with a seeded RNG.
// Limit: sampling draws from the TOPK (64) best tokens; their total probability is almost always ~1.

import { InvalidArgumentError } from '../errors.js';
import { TOPK } from '../kernels/topk.js';
import type { Rng } from '../util/rng.js';
import type { Candidates } from './runner.js';

export interface SamplingOptions {
  /** 0 = greedy. */
  temperature: number;
  /** 0 = off; at most 64. */
  topK: number;
  /** 1 = off. */
  topP: number;
  /** 1 = off; > 1 discourages tokens already in the prompt or output (CTRL paper, transformers' rule). */
  repetitionPenalty: number;
  seed: number;
}

export const DEFAULT_SAMPLING: SamplingOptions = { temperature: 0.7, topK: 40, topP: 0.9, repetitionPenalty: 1.1, seed: 0 };

/**
 * The allowed range of each setting: the validator below and the inputs of the app read the same numbers, so an
 * input never offers a value the engine refuses, nor a message names a range the input does not allow.
 */
export const SAMPLING_LIMITS = {
  temperature: { min: 0, max: 2, step: 0.05 },
  topK: { min: 0, max: TOPK, step: 1 },
  topP: { min: 0.01, max: 1, step: 0.01 },
  repetitionPenalty: { min: 0.5, max: 2, step: 0.05 },
} as const;

export function validateSampling(s: SamplingOptions): void {
  const bad = (msg: string) => { throw new InvalidArgumentError(msg); };
  const L = SAMPLING_LIMITS;
  const within = (v: number, k: keyof typeof L) => v >= L[k].min && v <= L[k].max;
  if (!within(s.temperature, 'temperature')) bad(`temperature ${s.temperature} is invalid: make sure ${L.temperature.min} <= temperature <= ${L.temperature.max} (0 is greedy)`);
  if (!(Number.isInteger(s.topK) && within(s.topK, 'topK'))) bad(`top_k ${s.topK} is invalid: make sure top_k is an integer in ${L.topK.min}..${L.topK.max} (0 turns it off)`);
  if (!within(s.topP, 'topP')) bad(`top_p ${s.topP} is invalid: make sure ${L.topP.min} <= top_p <= ${L.topP.max} (1 turns it off)`);
  if (!within(s.repetitionPenalty, 'repetitionPenalty')) bad(`repetition_penalty ${s.repetitionPenalty} is invalid: make sure ${L.repetitionPenalty.min} <= repetition_penalty <= ${L.repetitionPenalty.max} (1 turns it off)`);
  if (!Number.isInteger(s.seed)) bad(`seed ${s.seed} is invalid: make sure it is an integer`);
}

/** Picks the next token from one sequence's candidates. */
export function sampleToken(c: Candidates, s: SamplingOptions, rng: Rng, vocabSize: number): number {
  if (s.temperature === 0) return c.ids[0];
  let n = 0;
  while (n < c.ids.length && c.ids[n] >= 0 && c.ids[n] < vocabSize) n++;
  if (s.topK > 0) n = Math.min(n, s.topK);
  // Probabilities under the full-vocabulary softmax of logits / T.
  const p = new Float64Array(n);
  for (let i = 0; i < n; i++) p[i] = Math.exp(c.logits[i] / s.temperature - c.lse);
  // transformers applies top-p after top-k, over the distribution renormalized to the top-k survivors.
  const mass = s.topK > 0 ? p.reduce((a, b) => a + b, 0) : 1;
  let keep = n;
  if (s.topP < 1) {
    let cum = 0;
    keep = 0;
    while (keep < n && cum < s.topP * mass) cum += p[keep++];
  }
  let total = 0;
  for (let i = 0; i < keep; i++) total += p[i];
  let u = rng.next() * total;
  for (let i = 0; i < keep; i++) {
    u -= p[i];
    if (u < 0) return c.ids[i];
  }
  return c.ids[Math.max(0, keep - 1)];
}
