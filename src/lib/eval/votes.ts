// Blind pairwise review, as the paper's human evaluation: two answers to the same instruction, sides drawn at random
// (and recorded with each vote), model names hidden until the review ends; a vote per criterion (helpfulness,
// honesty, harmlessness: A better, tie, B better). Tallies give win / tie / lose percentages per criterion and model
// pair; votes export as JSON and CSV, and in the shape of the paper's comparison data.

import { InvalidArgumentError } from '../errors.js';
import { Rng } from '../util/rng.js';
import type { ExampleResult } from './metrics.js';

export const CRITERIA = ['helpfulness', 'honesty', 'harmlessness'] as const;
export type Criterion = (typeof CRITERIA)[number];
export type Verdict = 'A' | 'tie' | 'B';

/** What the reviewer sees: no model names (they stay in `sides`, which the review page never renders). */
export interface ReviewPair {
  pairId: string;
  exampleId: string;
  a: string;
  b: string;
}

export interface PairKey {
  pairId: string;
  exampleId: string;
  /** [model shown as A, model shown as B]. */
  sides: [string, string];
}

export interface Vote {
  pairId: string;
  exampleId: string;
  /** Model shown as A and as B (the random side assignment, recorded). */
  sides: [string, string];
  criterion: Criterion;
  verdict: Verdict;
}

/**
 * The pairs of a review of `x` against `y`: one per example both answered, in a seeded random order, each with its
 * sides drawn at random. Pair ids are opaque (a counter), never derived from the models.
 */
export function makePairs(results: ExampleResult[], x: string, y: string, seed: number): { pairs: ReviewPair[]; keys: PairKey[] } {
  if (x === y) throw new InvalidArgumentError('A pairwise review needs two different models.');
  const byId = new Map<string, { x?: ExampleResult; y?: ExampleResult }>();
  for (const r of results) {
    if (r.model !== x && r.model !== y) continue;
    const e = byId.get(r.id) ?? {};
    e[r.model === x ? 'x' : 'y'] = r;
    byId.set(r.id, e);
  }
  const both = [...byId.entries()].filter(([, e]) => e.x && e.y);
  const rng = new Rng(seed);
  for (let i = both.length - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [both[i], both[j]] = [both[j], both[i]];
  }
  const pairs: ReviewPair[] = [];
  const keys: PairKey[] = [];
  both.forEach(([id, e], n) => {
    const xFirst = rng.next() < 0.5;
    const [first, second] = xFirst ? [e.x!, e.y!] : [e.y!, e.x!];
    const pairId = `p${n + 1}`;
    pairs.push({ pairId, exampleId: id, a: first.prediction, b: second.prediction });
    keys.push({ pairId, exampleId: id, sides: [first.model, second.model] });
  });
  return { pairs, keys };
}

export interface TallyRow {
  /** The pair of models, in a fixed order; percentages are from the first model's side. */
  models: [string, string];
  criterion: Criterion;
  win: number;
  tie: number;
  lose: number;
  votes: number;
  winPct: number;
  tiePct: number;
  losePct: number;
}

/** Win / tie / lose of the first model of each (sorted) pair, per criterion. */
export function tally(votes: Vote[]): TallyRow[] {
  const rows = new Map<string, TallyRow>();
  for (const v of votes) {
    const models = [...v.sides].sort() as [string, string];
    const key = `${models[0]}\u0000${models[1]}\u0000${v.criterion}`;
    const row = rows.get(key) ?? { models, criterion: v.criterion, win: 0, tie: 0, lose: 0, votes: 0, winPct: 0, tiePct: 0, losePct: 0 };
    const winner = v.verdict === 'tie' ? null : v.verdict === 'A' ? v.sides[0] : v.sides[1];
    if (winner === null) row.tie++;
    else if (winner === models[0]) row.win++;
    else row.lose++;
    row.votes++;
    rows.set(key, row);
  }
  return [...rows.values()].map((r) => ({ ...r, winPct: (100 * r.win) / r.votes, tiePct: (100 * r.tie) / r.votes, losePct: (100 * r.lose) / r.votes }))
    .sort((a, b) => a.models.join().localeCompare(b.models.join()) || CRITERIA.indexOf(a.criterion) - CRITERIA.indexOf(b.criterion));
}

export const VOTES_FORMAT = 'lora-lab-votes';

export function votesToJson(votes: Vote[]): string {
  return JSON.stringify({ format: VOTES_FORMAT, version: 1, votes }, null, 1);
}

export function votesFromJson(text: string): Vote[] {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new InvalidArgumentError('The votes file is not valid JSON: export it again.');
  }
  const r = raw as { format?: unknown; votes?: unknown };
  if (r?.format !== VOTES_FORMAT || !Array.isArray(r.votes)) throw new InvalidArgumentError(`The file is not a LoRA Lab votes export (no "format": "${VOTES_FORMAT}").`);
  return r.votes.map((v, i) => {
    const x = v as Partial<Vote>;
    const ok = typeof x.pairId === 'string' && typeof x.exampleId === 'string' && Array.isArray(x.sides) && x.sides.length === 2 &&
      x.sides.every((s) => typeof s === 'string') && CRITERIA.includes(x.criterion as Criterion) && ['A', 'tie', 'B'].includes(x.verdict as string);
    if (!ok) throw new InvalidArgumentError(`Vote ${i + 1} of the file is malformed: each needs pairId, exampleId, sides [A, B], criterion and verdict.`);
    return { pairId: x.pairId!, exampleId: x.exampleId!, sides: [x.sides![0], x.sides![1]] as [string, string], criterion: x.criterion!, verdict: x.verdict! };
  });
}

const csvCell = (s: string | number) => (typeof s === 'number' ? String(s) : /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);

export function votesToCsv(votes: Vote[]): string {
  const rows = [['pair', 'example', 'model_a', 'model_b', 'criterion', 'verdict'], ...votes.map((v) => [v.pairId, v.exampleId, v.sides[0], v.sides[1], v.criterion, v.verdict])];
  return rows.map((r) => r.map(csvCell).join(',')).join('\n') + '\n';
}

export function tallyToCsv(rows: TallyRow[]): string {
  const out = [['model_1', 'model_2', 'criterion', 'win', 'tie', 'lose', 'votes', 'win_pct', 'tie_pct', 'lose_pct'],
    ...rows.map((r) => [r.models[0], r.models[1], r.criterion, r.win, r.tie, r.lose, r.votes, +r.winPct.toFixed(2), +r.tiePct.toFixed(2), +r.losePct.toFixed(2)])];
  return out.map((r) => r.map(csvCell).join(',')).join('\n') + '\n';
}

/**
 * The votes in the shape of the paper's comparison data: per instruction and criterion,
 * {user_input, criterion, responses_and_scores: [{response, score, source}]} with 1 for the preferred answer, 0 for
 * the other, 0.5 each for a tie.
 */
export function toPaperFormat(votes: Vote[], results: ExampleResult[], instructions: Map<string, string>): { user_input: string; criterion: Criterion; responses_and_scores: { response: string; score: number; source: string }[] }[] {
  const answer = (id: string, model: string) => results.find((r) => r.id === id && r.model === model)?.prediction ?? '';
  return votes.map((v) => {
    const [sa, sb] = v.verdict === 'tie' ? [0.5, 0.5] : v.verdict === 'A' ? [1, 0] : [0, 1];
    return {
      user_input: instructions.get(v.exampleId) ?? v.exampleId,
      criterion: v.criterion,
      responses_and_scores: [
        { response: answer(v.exampleId, v.sides[0]), score: sa, source: v.sides[0] },
        { response: answer(v.exampleId, v.sides[1]), score: sb, source: v.sides[1] },
      ],
    };
  });
}
