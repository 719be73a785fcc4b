import { describe, expect, it } from 'vitest';
import { agreement, judgeMessages, judgeTotals, pairsToJudge, parseJudgeReply, scorePair, type PairScore } from '../../src/lib/eval/judge.js';
import { newJudgeJob, runJudge, judgeScores } from '../../src/lib/assist/judge-run.js';
import type { AssistantBackend } from '../../src/lib/assist/backend.js';
import type { Vote } from '../../src/lib/eval/votes.js';

describe('judge prompt', () => {
  it('holds the question and both answers between markers, Assistant 1 first, and asks for the scores on the first line', () => {
    const [sys, user] = judgeMessages('Why is the sky blue?', 'Rayleigh scattering.', 'Because it is.');
    expect(sys.role).toBe('system');
    expect(user.role).toBe('user');
    const c = user.content;
    expect(c.indexOf('[Question]\nWhy is the sky blue?')).toBe(0);
    expect(c.indexOf("[The Start of Assistant 1's Answer]\nRayleigh scattering.\n[The End of Assistant 1's Answer]")).toBeGreaterThan(0);
    expect(c.indexOf("Assistant 2's Answer]\nBecause it is.")).toBeGreaterThan(c.indexOf("Assistant 1's Answer]\nRayleigh"));
    for (const w of ['helpfulness', 'relevance', 'accuracy', 'level of detail', '1 to 10', 'first line']) expect(c).toContain(w);
  });
});

describe('parseJudgeReply on realistic replies', () => {
  const ok = (reply: string, a: number, b: number) => {
    const r = parseJudgeReply(reply);
    expect(r, reply).toMatchObject({ ok: true, scores: [a, b] });
  };
  it('reads the asked-for format: two numbers on the first line, the explanation after', () => {
    const r = parseJudgeReply('8 6\nAssistant 1 explains Rayleigh scattering; Assistant 2 gives no reason.');
    expect(r).toEqual({ ok: true, scores: [8, 6], explanation: 'Assistant 1 explains Rayleigh scattering; Assistant 2 gives no reason.' });
    ok('\n\n  9 7  \n\nBoth are fine.', 9, 7);
    ok('8, 7\nreasons', 8, 7);
    ok('7.5 8\nclose', 7.5, 8);
    ok('**8** **6**\n', 8, 6);
    ok('Scores: 9 and 4\nAssistant 2 is off topic.', 9, 4);
    ok('8/10 5/10\n', 8, 5);
  });
  it('reads scores labelled by assistant, also when Assistant 2 comes first', () => {
    ok('Assistant 1: 8/10\nAssistant 2: 6/10\n\nAssistant 1 is more detailed.', 8, 6);
    ok('Assistant 2: 7\nAssistant 1: 9\nThe first answer is more accurate.', 9, 7);
    ok("Assistant 2's score: 4 out of 10\nAssistant 1's score: 10 out of 10", 10, 4);
  });
  it('reads a verbose reply that names the scores in prose, not a number the prose mentions first', () => {
    ok('Both assistants address the question. Assistant 1 lists 3 tips with examples, while Assistant 2 lists 2 vague ones.\n\n' +
      'Assistant 1 receives a score of 8, while Assistant 2 receives a score of 5.', 8, 5);
    ok('After careful review, Assistant 1 gets 9 and Assistant 2 gets 3 because the second answer is wrong.', 9, 3);
  });
  it('marks malformed replies instead of guessing', () => {
    for (const [reply, why] of [
      ['', 'nothing'],
      ['Both answers are good, but the first one is better.', 'No pair of scores'],
      ['Assistant 1 is better.\nI would give it a high score.', 'No pair of scores'],
      ['11 3\nThe first is excellent.', 'outside 1 to 10'],
      ['0 5\n', 'outside 1 to 10'],
      ['8\nonly one score', 'No pair of scores'],
      ['Assistant 1: 8\nThe second answer is missing.', 'No pair of scores'],
    ] as const) {
      const r = parseJudgeReply(reply);
      expect(r.ok, reply).toBe(false);
      if (!r.ok) expect(r.reason).toContain(why);
    }
  });
});

describe('both orders', () => {
  it('maps the reversed reply back to the models and averages, cancelling a judge that favours position 1', () => {
    // The judge always adds 2 to whoever is shown first: x is truly 7, y truly 5.
    const s = scorePair({ exampleId: 'q1', models: ['x', 'y'], replies: { xFirst: '9 5\n', yFirst: '7 7\n' } });
    expect(s).toEqual({ exampleId: 'q1', models: ['x', 'y'], scores: [8, 6], parsedOrders: 2, problems: [] });
  });
  it('uses the order that parsed and says which did not', () => {
    const s = scorePair({ exampleId: 'q1', models: ['x', 'y'], replies: { xFirst: 'no scores here', yFirst: 'Assistant 1: 4\nAssistant 2: 8' } });
    expect(s.scores).toEqual([8, 4]);
    expect(s.parsedOrders).toBe(1);
    expect(s.problems).toEqual(['x shown first: No pair of scores was found in the reply.']);
    expect(scorePair({ exampleId: 'q', models: ['x', 'y'], replies: { xFirst: '?', yFirst: '?' } }).scores).toBeNull();
  });
});

describe('totals and agreement', () => {
  const ps = (id: string, a: string, b: string, sa: number, sb: number): PairScore => ({ exampleId: id, models: [a, b], scores: [sa, sb], parsedOrders: 2, problems: [] });
  it('sums each model against the reference and gives the ratio, as the paper reports relative scores', () => {
    const rows = judgeTotals([
      ps('1', 'lora', 'gpt4', 6, 8), ps('2', 'gpt4', 'lora', 9, 9), ps('3', 'lora', 'gpt4', 7, 10),
      ps('1', 'base', 'gpt4', 3, 8), { exampleId: '2', models: ['base', 'gpt4'], scores: null, parsedOrders: 0, problems: ['x'] },
      ps('1', 'lora', 'base', 9, 1), // not against the reference: left out
    ], 'gpt4');
    expect(rows).toEqual([
      { model: 'lora', reference: 'gpt4', questions: 3, total: 22, referenceTotal: 27, ratio: 22 / 27, unparsed: 0 },
      { model: 'base', reference: 'gpt4', questions: 1, total: 3, referenceTotal: 8, ratio: 3 / 8, unparsed: 1 },
    ]);
  });
  it('counts how often the judge and people pick the same winner on helpfulness', () => {
    const votes: Vote[] = [
      { pairId: 'p1', exampleId: '1', sides: ['y', 'x'], criterion: 'helpfulness', verdict: 'B' }, // x: agrees
      { pairId: 'p2', exampleId: '2', sides: ['x', 'y'], criterion: 'helpfulness', verdict: 'A' }, // x: judge says tie
      { pairId: 'p3', exampleId: '3', sides: ['x', 'y'], criterion: 'helpfulness', verdict: 'B' }, // y: agrees
      { pairId: 'p3', exampleId: '3', sides: ['x', 'y'], criterion: 'honesty', verdict: 'A' }, // other criterion: ignored
      { pairId: 'p4', exampleId: '9', sides: ['x', 'y'], criterion: 'helpfulness', verdict: 'A' }, // not judged
    ];
    const a = agreement([ps('1', 'x', 'y', 8, 6), ps('2', 'x', 'y', 5, 5), ps('3', 'y', 'x', 9, 2)], votes);
    expect(a).toEqual({ compared: 3, agreed: 2, rate: 2 / 3 });
    expect(agreement([], votes).rate).toBeNull();
  });
  it('pairs the questions both models answered', () => {
    const r = (id: string, model: string) => ({ id, model, prediction: `${model}:${id}`, predictionTokens: 1, stopReason: 'eos' });
    expect(pairsToJudge([r('1', 'a'), r('1', 'b'), r('2', 'a'), r('3', 'b'), r('3', 'a'), r('3', 'c')], 'a', 'b'))
      .toEqual([{ exampleId: '1', answers: ['a:1', 'b:1'] }, { exampleId: '3', answers: ['a:3', 'b:3'] }]);
    expect(() => pairsToJudge([], 'a', 'a')).toThrow(/two different models/);
  });
});

describe('a judge job', () => {
  /** A judge that prefers the longer answer and says so in the asked-for format; Stop lands mid-reply. */
  function lengthJudge(stopAfter = Infinity): AssistantBackend & { calls: number } {
    const b = {
      kind: 'scripted', model: 'length-judge', calls: 0,
      async complete(messages: { content: string }[], _s: unknown, _t?: unknown, signal?: AbortSignal) {
        if (++b.calls > stopAfter || signal?.aborted) return { text: '', tokens: 0, stopReason: 'aborted' };
        const m = /Assistant 1's Answer\]\n([\s\S]*?)\n\[The End[\s\S]*Assistant 2's Answer\]\n([\s\S]*?)\n\[The End/.exec(messages[1].content)!;
        const [l1, l2] = [m[1].length, m[2].length];
        return { text: `${l1 >= l2 ? 8 : 4} ${l2 >= l1 ? 8 : 4}\nThe longer answer has more detail.`, tokens: 9, stopReason: 'eos' };
      },
    };
    return b;
  }
  const items = [
    { exampleId: 'a', question: 'Q1', answers: ['long answer here', 'short'] as [string, string] },
    { exampleId: 'b', question: 'Q2', answers: ['tiny', 'a much longer answer'] as [string, string] },
  ];
  it('judges each question in both orders, stops, resumes where it stopped, and totals the scores', async () => {
    const judge = lengthJudge(3);
    const saved: number[] = [];
    let job = newJudgeJob({ runId: 'run1', judge: { kind: 'scripted', model: 'length-judge' }, models: ['x', 'y'], items, createdAt: 1 });
    job = await runJudge(job, judge, { onReply: (_j, p) => void saved.push(p.done) });
    expect(job.status).toBe('stopped');
    expect(saved).toEqual([1, 2, 3]);
    expect(job.judged[1].replies).toEqual({ xFirst: '4 8\nThe longer answer has more detail.' });
    const again = lengthJudge();
    job = await runJudge(job, again);
    expect(again.calls).toBe(1); // only the missing order
    expect(job.status).toBe('done');
    expect(judgeScores(job).map((s) => s.scores)).toEqual([[8, 4], [4, 8]]);
    expect(judgeTotals(judgeScores(job), 'y')).toEqual([{ model: 'x', reference: 'y', questions: 2, total: 12, referenceTotal: 12, ratio: 1, unparsed: 0 }]);
  });
  it('refuses to resume with another judge, and to start with nothing to judge', async () => {
    const job = newJudgeJob({ runId: 'r', judge: { kind: 'scripted', model: 'other' }, models: ['x', 'y'], items });
    await expect(runJudge(job, lengthJudge())).rejects.toThrow(/started with the judge other/);
    expect(() => newJudgeJob({ runId: 'r', judge: { kind: 'k', model: 'm' }, models: ['x', 'y'], items: [] })).toThrow(/no answered question in common/);
  });
});
