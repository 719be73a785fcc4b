// A model as judge, the way the paper scored its Vicuna-80 answers: the judge reads a question and two assistants'
// answers, scores each from 1 to 10 for helpfulness, relevance, accuracy and level of detail, and explains. Every pair
// is judged in both orders (the judge's position bias cancels in the mean); a reply whose scores cannot be read is
// marked, never guessed. Totals per model and the ratio to a reference model follow the paper's figure (the sum of a
// model's scores over the sum of the reference's on the same questions). Judge verdicts and people's votes are kept
// apart; `agreement` compares them.

import { InvalidArgumentError } from '../errors.js';
import type { ChatMessage } from '../tokenizer/tokenizer.js';
import type { ExampleResult } from './metrics.js';
import type { Vote } from './votes.js';

export const JUDGE_SYSTEM = 'You are a careful, impartial assistant who checks the quality of answers.';

/** The review prompt: the question, both answers between markers, then the instructions, scores first. */
export function judgeMessages(question: string, first: string, second: string): ChatMessage[] {
  const user = [
    `[Question]\n${question}`,
    `[The Start of Assistant 1's Answer]\n${first}\n[The End of Assistant 1's Answer]`,
    `[The Start of Assistant 2's Answer]\n${second}\n[The End of Assistant 2's Answer]`,
    '[System]\nPlease give feedback on how well the two AI assistants above answered the question. Rate the helpfulness, ' +
      'relevance, accuracy and level of detail of each answer. Give each assistant one overall score from 1 to 10; a ' +
      'higher score means a better answer.\nOn the first line, write only the two scores, Assistant 1 first, separated ' +
      'by a space. From the next line on, explain your scores. Avoid bias: the order in which the answers appear must ' +
      'not change your judgment.',
  ].join('\n\n');
  return [{ role: 'system', content: JUDGE_SYSTEM }, { role: 'user', content: user }];
}

export type ParsedReply =
  | { ok: true; scores: [number, number]; explanation: string }
  | { ok: false; reason: string };

const NUM = String.raw`(\d{1,2}(?:\.\d+)?)`;
const inRange = (x: number) => x >= 1 && x <= 10;

/** Markdown emphasis, headings and "/10" or "out of 10" suffixes removed, so a bold 8 out of 10 reads as 8. */
function plain(line: string): string {
  return line.replace(/[*_#`>]/g, ' ').replace(/\s*(?:\/|out of)\s*10(?!\d)/gi, ' ');
}

/** Exactly two numbers on the line (and nothing but separators, "score(s)" and "and" beside them). */
function twoNumberLine(line: string): [number, number] | null {
  const m = new RegExp(String.raw`^\s*(?:scores?\s*[:=-]?\s*)?${NUM}\s*(?:,|;|\s|and|vs\.?|-)\s*${NUM}\s*\.?\s*$`, 'i').exec(plain(line));
  return m ? [Number(m[1]), Number(m[2])] : null;
}

/** "Assistant 1: 8", "Assistant 2 receives a score of 6", "Assistant 2's score: 7/10", in either order. */
function labelledScores(text: string): [number, number] | null {
  const re = new RegExp(String.raw`assistant\s*([12])(?:'s)?(?:\s*(?:overall\s*)?score)?\s*(?:[:=-]|receives|gets|scores|earns|deserves|is given|is rated)\s*(?:an?\s*(?:overall\s*)?(?:score|rating)\s*(?:of)?\s*)?${NUM}`, 'gi');
  const found: (number | undefined)[] = [undefined, undefined];
  for (const m of plain(text).matchAll(re)) {
    const i = Number(m[1]) - 1;
    found[i] ??= Number(m[2]);
  }
  return found[0] !== undefined && found[1] !== undefined ? [found[0], found[1]] : null;
}

/**
 * The two scores of a judge reply: the first non-empty line holding just two numbers (the format asked for), else
 * scores labelled by assistant anywhere in the reply, else any line holding just two numbers. Scores outside 1..10,
 * or none found, leave the reply unparsed with the reason.
 */
export function parseJudgeReply(reply: string): ParsedReply {
  const lines = reply.split(/\r?\n/);
  const firstIdx = lines.findIndex((l) => l.trim() !== '');
  if (firstIdx < 0) return { ok: false, reason: 'The judge wrote nothing.' };
  let scores = twoNumberLine(lines[firstIdx]);
  let rest = lines.slice(firstIdx + 1).join('\n').trim();
  if (!scores) {
    scores = labelledScores(reply);
    rest = reply.trim();
  }
  if (!scores) {
    for (const l of lines) if ((scores = twoNumberLine(l))) break;
  }
  if (!scores) return { ok: false, reason: 'No pair of scores was found in the reply.' };
  if (!scores.every(inRange)) return { ok: false, reason: `Scores ${scores[0]} and ${scores[1]} are outside 1 to 10.` };
  return { ok: true, scores, explanation: rest };
}

/** One question judged: the two models, and the judge's reply with each model's answer shown first. */
export interface JudgedPair {
  exampleId: string;
  /** [x, y]: `replies.xFirst` showed x as Assistant 1, `replies.yFirst` showed y as Assistant 1. */
  models: [string, string];
  replies: { xFirst?: string; yFirst?: string };
}

export interface PairScore {
  exampleId: string;
  models: [string, string];
  /** Each model's score averaged over the orders that parsed; null when neither did. */
  scores: [number, number] | null;
  /** Orders whose reply parsed (0, 1 or 2). */
  parsedOrders: number;
  /** Why an order did not parse. */
  problems: string[];
}

/** Both orders of a pair combined: each model's score is the mean of its score in the replies that parsed. */
export function scorePair(p: JudgedPair): PairScore {
  const sum = [0, 0];
  let parsedOrders = 0;
  const problems: string[] = [];
  for (const order of ['xFirst', 'yFirst'] as const) {
    const reply = p.replies[order];
    if (reply === undefined) continue;
    const r = parseJudgeReply(reply);
    if (!r.ok) {
      problems.push(`${order === 'xFirst' ? p.models[0] : p.models[1]} shown first: ${r.reason}`);
      continue;
    }
    const [sx, sy] = order === 'xFirst' ? r.scores : [r.scores[1], r.scores[0]];
    sum[0] += sx;
    sum[1] += sy;
    parsedOrders++;
  }
  return { exampleId: p.exampleId, models: p.models, scores: parsedOrders ? [sum[0] / parsedOrders, sum[1] / parsedOrders] : null, parsedOrders, problems };
}

export interface JudgeTotal {
  model: string;
  reference: string;
  /** Questions where both the model and the reference have a score. */
  questions: number;
  total: number;
  referenceTotal: number;
  /** total / referenceTotal: the paper's "relative score". */
  ratio: number;
  /** Questions whose replies could not be parsed in either order (left out of the totals). */
  unparsed: number;
}

/** Per model judged against `reference`: summed scores and their ratio, as in the paper's Vicuna-80 figure. */
export function judgeTotals(scores: PairScore[], reference: string): JudgeTotal[] {
  const rows = new Map<string, JudgeTotal>();
  for (const s of scores) {
    const ri = s.models.indexOf(reference);
    if (ri < 0) continue;
    const model = s.models[1 - ri];
    const row = rows.get(model) ?? { model, reference, questions: 0, total: 0, referenceTotal: 0, ratio: 0, unparsed: 0 };
    if (!s.scores) row.unparsed++;
    else {
      row.questions++;
      row.total += s.scores[1 - ri];
      row.referenceTotal += s.scores[ri];
    }
    rows.set(model, row);
  }
  return [...rows.values()].map((r) => ({ ...r, ratio: r.referenceTotal > 0 ? r.total / r.referenceTotal : 0 })).sort((a, b) => b.ratio - a.ratio);
}

/** The judge's verdict on a pair, from the scores: the higher one wins; equal scores are a tie. */
export function judgeWinner(s: PairScore): string | 'tie' | null {
  if (!s.scores) return null;
  return s.scores[0] === s.scores[1] ? 'tie' : s.scores[0] > s.scores[1] ? s.models[0] : s.models[1];
}

export interface Agreement {
  /** Pairs that both a person (on helpfulness) and the judge decided. */
  compared: number;
  agreed: number;
  /** agreed / compared, or null when nothing could be compared. */
  rate: number | null;
}

/** How often the judge's winner matches people's helpfulness votes on the same example and pair of models. */
export function agreement(scores: PairScore[], votes: Vote[]): Agreement {
  const judged = new Map<string, string | 'tie'>();
  const key = (id: string, a: string, b: string) => `${id}\u0000${[a, b].sort().join('\u0000')}`;
  for (const s of scores) {
    const w = judgeWinner(s);
    if (w !== null) judged.set(key(s.exampleId, ...s.models), w);
  }
  let compared = 0;
  let agreed = 0;
  for (const v of votes) {
    if (v.criterion !== 'helpfulness') continue;
    const w = judged.get(key(v.exampleId, ...v.sides));
    if (w === undefined) continue;
    const human = v.verdict === 'tie' ? 'tie' : v.verdict === 'A' ? v.sides[0] : v.sides[1];
    compared++;
    if (human === w) agreed++;
  }
  return { compared, agreed, rate: compared ? agreed / compared : null };
}

/** The questions of an evaluation that both models answered, as pairs still to judge. */
export function pairsToJudge(results: ExampleResult[], x: string, y: string): { exampleId: string; answers: [string, string] }[] {
  if (x === y) throw new InvalidArgumentError('The judge compares two different models: pick another one.');
  const answer = new Map<string, [string?, string?]>();
  for (const r of results) {
    if (r.model !== x && r.model !== y) continue;
    const e = answer.get(r.id) ?? [];
    e[r.model === x ? 0 : 1] = r.prediction;
    answer.set(r.id, e);
  }
  return [...answer.entries()].filter(([, e]) => e[0] !== undefined && e[1] !== undefined).map(([exampleId, e]) => ({ exampleId, answers: [e[0]!, e[1]!] }));
}
