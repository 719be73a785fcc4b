// Best-of-n: n answers sampled per column (the base or an adapter at a strength), each with its own seed, as many in
// flight as the engine has KV slots; then every answer scored by a reward model and ranked within its column.

import type { Engine, GenerateRequest, GenerateResult } from '../engine.js';
import { InvalidArgumentError } from '../errors.js';
import { rankByScore, type Ranked } from './rank.js';

export interface BestOfColumn {
  adapter: string | null;
  strength: number;
}

export interface Sample {
  text: string;
  tokens: number;
  seed: number;
  stopReason: string;
}

export const MAX_BEST_OF = 16;

/** n samples per column, seeds seed, seed + 1, ... (the same request samples the same answers again). */
export async function sampleColumns(
  engine: Pick<Engine, 'generateMany' | 'runner'>, promptIds: number[], columns: BestOfColumn[], n: number,
  req: Omit<GenerateRequest, 'prompt' | 'promptIds' | 'adapter' | 'adapterScale' | 'input'>, signal?: AbortSignal,
  onSample?: (done: number, total: number) => void,
): Promise<Sample[][]> {
  if (!Number.isInteger(n) || n < 1 || n > MAX_BEST_OF) throw new InvalidArgumentError(`Best-of takes 1 to ${MAX_BEST_OF} samples per column (${n} was asked for).`);
  const seed = req.sampling?.seed ?? 0;
  const jobs = columns.flatMap((c, col) => Array.from({ length: n }, (_, k) => ({ col, promptIds, adapter: c.adapter, strength: c.strength, seed: seed + k })));
  const out: Sample[][] = columns.map(() => []);
  const slots = engine.runner.opts.slots;
  for (let i = 0; i < jobs.length && !signal?.aborted; i += slots) {
    const batch = jobs.slice(i, i + slots);
    const r: GenerateResult[] = await engine.generateMany(batch, req, signal);
    r.forEach((x, j) => out[batch[j].col].push({ text: x.text, tokens: x.tokens.length, seed: batch[j].seed, stopReason: x.stopReason }));
    onSample?.(Math.min(i + slots, jobs.length), jobs.length);
  }
  return out;
}

/** Each column's samples scored and ranked, best first. */
export async function rankSamples(samples: Sample[][], score: (text: string) => Promise<number>): Promise<Ranked<Sample>[][]> {
  const out: Ranked<Sample>[][] = [];
  for (const col of samples) {
    const scores: number[] = [];
    for (const s of col) scores.push(await score(s.text));
    out.push(rankByScore(col, scores));
  }
  return out;
}
