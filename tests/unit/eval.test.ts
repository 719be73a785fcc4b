// Evaluation arithmetic: length buckets, summaries, blind pairs, tallies, and votes exported then imported.

import { describe, expect, it } from 'vitest';
import { bucketOf, summarize, wordCount, type ExampleResult } from '../../src/lib/eval/metrics.js';
import { makePairs, tally, tallyToCsv, toPaperFormat, votesFromJson, votesToCsv, votesToJson, type Vote } from '../../src/lib/eval/votes.js';
import { evalSetFromFile, userOrientedSet, validationExamples, vicunaSet } from '../../src/lib/eval/sets.js';
import { parseAdapterArg } from '../../src/cli/eval.js';
import { readFileSync } from 'node:fs';

const r = (id: string, model: string, prediction: string, extra: Partial<ExampleResult> = {}): ExampleResult => ({ id, model, prediction, predictionTokens: wordCount(prediction), stopReason: 'eos', ...extra });

describe('metrics', () => {
  it('buckets reference lengths at the paper\'s boundaries', () => {
    expect([0, 2, 3, 5, 6, 10, 11, 500].map(bucketOf)).toEqual(['0-2', '0-2', '3-5', '3-5', '6-10', '6-10', '>10', '>10']);
    expect(wordCount('  a  b\nc\t')).toBe(3);
    expect(wordCount('')).toBe(0);
  });

  it('summarizes ROUGE-L overall and by bucket, token-weighted loss, and answer lengths', () => {
    const results = [
      r('1', 'base', 'a b', { reference: 'yes', rougeL: 0.5, nll: 6, lossTokens: 3 }),
      r('2', 'base', 'a b c d', { reference: 'one two three four', rougeL: 0.25, nll: 2, lossTokens: 1 }),
      r('3', 'base', 'x', { reference: 'w '.repeat(12), rougeL: 1 }),
      r('1', 'other', 'zzz', { reference: 'yes', rougeL: 0 }),
    ];
    const s = summarize(results, 'base');
    expect(s.examples).toBe(3);
    expect(s.rougeL).toBeCloseTo((0.5 + 0.25 + 1) / 3, 12);
    expect(s.byBucket).toEqual([{ label: '0-2', examples: 1, rougeL: 0.5 }, { label: '3-5', examples: 1, rougeL: 0.25 }, { label: '6-10', examples: 0, rougeL: null }, { label: '>10', examples: 1, rougeL: 1 }]);
    expect(s.loss).toBeCloseTo(8 / 4, 12); // (6 + 2) / (3 + 1): by token, not by example
    expect(s.perplexity).toBeCloseTo(Math.exp(2), 10);
    expect(s.answerWords).toEqual({ mean: 7 / 3, median: 2, p90: 3.6 });
  });
});

describe('evaluation sets', () => {
  it('reads the bundled sets with their provenance shapes', () => {
    const uo = userOrientedSet(new Uint8Array(readFileSync('public/data/eval/user_oriented_instructions.jsonl')));
    expect(uo.length).toBe(252);
    expect(uo.every((e) => e.reference !== undefined && e.id.startsWith('user_oriented_task_'))).toBe(true);
    const v = vicunaSet(new Uint8Array(readFileSync('public/data/eval/vicuna_question_80.jsonl')));
    expect(v.length).toBe(80);
    expect(v.every((e) => e.reference === undefined)).toBe(true);
  });

  it('takes Alpaca and chat files, and the validation split training holds out', async () => {
    const alpaca = new TextEncoder().encode(JSON.stringify([{ instruction: 'a', input: 'i', output: 'o' }, { instruction: 'b', output: 'p' }]));
    expect(await evalSetFromFile(alpaca, 'mine.json')).toEqual([
      { id: 'mine#0', instruction: 'a', input: 'i', reference: 'o' }, { id: 'mine#1', instruction: 'b', input: '', reference: 'p' }]);
    const chat = new TextEncoder().encode(JSON.stringify({ messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'yo' }, { role: 'user', content: 'q' }, { role: 'assistant', content: 'a' }] }) + '\n');
    const [c] = await evalSetFromFile(chat, 'c.jsonl');
    expect(c.instruction).toBe('q');
    expect(c.reference).toBe('a');
    expect(c.history?.length).toBe(2);
    const records = Array.from({ length: 40 }, (_, i) => ({ kind: 'alpaca' as const, instruction: `q${i}`, input: '', output: `a${i}` }));
    const val = validationExamples(records, 0.1, 42, 'd#');
    expect(val.length).toBe(4);
    expect(validationExamples(records, 0.1, 42, 'd#')).toEqual(val);
    expect(validationExamples(records, 0.1, 7, 'd#')).not.toEqual(val);
  });

  it('reads --adapter <source>[@strength] without taking a revision for a strength', () => {
    expect(parseAdapterArg('org/lora@0.5')).toEqual({ source: 'org/lora', strength: 0.5 });
    expect(parseAdapterArg('org/lora@main')).toEqual({ source: 'org/lora@main', strength: 1 });
    expect(parseAdapterArg('org/lora@1234567')).toEqual({ source: 'org/lora@1234567', strength: 1 });
    expect(parseAdapterArg('builtin:demo-short@2')).toEqual({ source: 'builtin:demo-short', strength: 2 });
  });
});

describe('blind pairwise review', () => {
  const results = Array.from({ length: 30 }, (_, i) => [r(`e${i}`, 'base', `base answer ${i}`), r(`e${i}`, 'lora@1', `lora answer ${i}`)]).flat();

  it('draws sides at random (about half each way), with opaque pair ids and no model name in what is shown', () => {
    const { pairs, keys } = makePairs(results, 'base', 'lora@1', 9);
    expect(pairs.length).toBe(30);
    const baseFirst = keys.filter((k) => k.sides[0] === 'base').length;
    expect(baseFirst).toBeGreaterThan(8);
    expect(baseFirst).toBeLessThan(22);
    const shown = JSON.stringify(pairs);
    expect(shown).not.toMatch(/lora@1|"base"/);
    expect(pairs.map((p) => p.pairId)).toEqual(Array.from({ length: 30 }, (_, i) => `p${i + 1}`));
    expect(makePairs(results, 'base', 'lora@1', 9)).toEqual({ pairs, keys }); // seeded
  });

  it('tallies win / tie / lose from the recorded sides, and export then import gives identical tallies', () => {
    const { keys } = makePairs(results, 'base', 'lora@1', 9);
    // The reviewer prefers the LoRA answer for helpfulness whichever side it is on, ties on honesty for 10 pairs.
    const votes: Vote[] = keys.flatMap((k, i) => [
      { pairId: k.pairId, exampleId: k.exampleId, sides: k.sides, criterion: 'helpfulness' as const, verdict: k.sides[0] === 'lora@1' ? 'A' as const : 'B' as const },
      { pairId: k.pairId, exampleId: k.exampleId, sides: k.sides, criterion: 'honesty' as const, verdict: i < 10 ? 'tie' as const : k.sides[0] === 'base' ? 'A' as const : 'B' as const },
    ]);
    const t = tally(votes);
    expect(t.map((x) => [x.models, x.criterion, x.win, x.tie, x.lose])).toEqual([
      [['base', 'lora@1'], 'helpfulness', 0, 0, 30],
      [['base', 'lora@1'], 'honesty', 20, 10, 0],
    ]);
    expect(t[1].tiePct).toBeCloseTo(100 / 3, 12);
    expect(tally(votesFromJson(votesToJson(votes)))).toEqual(t);
    expect(votesToCsv(votes).split('\n')[0]).toBe('pair,example,model_a,model_b,criterion,verdict');
    expect(tallyToCsv(t)).toMatch(/^model_1,model_2,criterion,win,tie,lose,votes,win_pct,tie_pct,lose_pct\nbase,lora@1,helpfulness,0,0,30,30,0,0,100\n/);
    const paper = toPaperFormat(votes.slice(0, 1), results, new Map([[votes[0].exampleId, 'the instruction']]));
    expect(paper[0].user_input).toBe('the instruction');
    expect(paper[0].responses_and_scores.map((x) => x.score).sort()).toEqual([0, 1]);
    expect(paper[0].responses_and_scores.find((x) => x.score === 1)!.source).toBe('lora@1');
    expect(() => votesFromJson('{"format":"lora-lab-votes","votes":[{"pairId":"p1"}]}')).toThrow(/Vote 1 .* malformed/);
  });
});
