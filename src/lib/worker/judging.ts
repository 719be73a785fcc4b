// The worker's judge requests: the loaded model (through an adapter, if one is picked) reviews the answer pairs of a
// kept evaluation, reply by reply, each pair in both orders; the job is kept after every reply and resumes. Summaries
// read the scores from the replies: totals, the ratio to the second model, unreadable replies, and agreement with
// the people's helpfulness votes of the same run's finished blind reviews.

import { userMessage } from '../tokenizer/alpaca.js';
import { engineBackend } from '../assist/backend.js';
import { JUDGE_SETTINGS, newJudgeJob, runJudge, judgeScores, type JudgeItem, type JudgeJob } from '../assist/judge-run.js';
import type { Engine } from '../engine.js';
import { InvalidArgumentError } from '../errors.js';
import { agreement, judgeTotals, pairsToJudge, type Agreement, type JudgeTotal, type JudgedPair, type PairScore } from '../eval/judge.js';
import type { EvalProgress } from '../eval/run.js';
import type { LabStore } from '../store/kept.js';

export interface JudgeSummary {
  id: string;
  judge: string;
  models: [string, string];
  status: JudgeJob['status'];
  /** Replies written, of two per pair. */
  done: number;
  total: number;
  /** models[0] against models[1] (the reference), and the reverse. */
  totals: JudgeTotal[];
  agreement: Agreement;
  /** Pairs with a score, and why the others (or one of their orders) could not be read; the judge's replies as written. */
  pairs: (PairScore & { replies: JudgedPair['replies'] })[];
  createdAt: number;
}

export interface JudgeRequestMap {
  judgeStart: { request: { runId: string; models?: [string, string]; adapter?: string | null; strength?: number; jobId?: string; /** Per reply (default 256). */ maxNewTokens?: number; /** Only the first N questions (a quick look). */ limit?: number }; result: JudgeSummary };
  /** A new job for a judge that runs on the page (web-llm): created and kept here; replies come back by judgeKeep. */
  judgePrepare: { request: { runId: string; models: [string, string]; judge: { kind: string; model: string }; maxNewTokens?: number; limit?: number }; result: JudgeJob; immediate: true };
  judgeGet: { request: { id: string }; result: JudgeJob; immediate: true };
  judgeKeep: { request: { job: JudgeJob }; result: JudgeSummary; immediate: true };
  judgeList: { request: { runId: string }; result: JudgeSummary[]; immediate: true };
  judgeDelete: { request: { id: string; runId: string }; result: JudgeSummary[]; immediate: true };
}

export interface JudgeEnv {
  lab: LabStore;
  engine: () => Engine;
}

export function judgingHandlers(env: JudgeEnv, onProgress: (id: number, p: EvalProgress) => void) {
  const { lab } = env;
  const summary = async (j: JudgeJob): Promise<JudgeSummary> => {
    const scores = judgeScores(j);
    const votes = (await lab.reviews(j.runId)).filter((r) => r.finished).flatMap((r) => r.votes);
    const replies = j.judged.reduce((n, p) => n + (p.replies.xFirst !== undefined ? 1 : 0) + (p.replies.yFirst !== undefined ? 1 : 0), 0);
    return {
      id: j.id, judge: j.judge.model, models: j.models, status: j.status, done: replies, total: j.items.length * 2,
      totals: [...judgeTotals(scores, j.models[1]), ...judgeTotals(scores, j.models[0])], agreement: agreement(scores, votes),
      pairs: scores.map((x) => ({ ...x, replies: j.judged.find((p) => p.exampleId === x.exampleId)?.replies ?? {} })), createdAt: j.createdAt,
    };
  };
  const list = async (runId: string) => Promise.all((await lab.judges(runId)).sort((a, b) => b.createdAt - a.createdAt).map(summary));

  const kept = async (id: string): Promise<JudgeJob> =>
    (await lab.getJudge(id)) ?? (() => { throw new InvalidArgumentError(`No judge review "${id}" is kept: it may have been deleted in another tab.`); })();

  /** A new review of a run's pairs of `models`, kept before any reply. */
  async function prepare(p: { runId: string; models?: [string, string]; judge: { kind: string; model: string }; maxNewTokens?: number; limit?: number }): Promise<JudgeJob> {
    const run = await lab.getRun(p.runId);
    if (!run) throw new InvalidArgumentError(`No evaluation "${p.runId}" is kept: it may have been deleted in another tab.`);
    if (!p.models) throw new InvalidArgumentError('Pick the two models whose answers are judged.');
    const questions = new Map(run.examples.map((e) => [e.id, userMessage(e.instruction, e.input)]));
    const pairs = pairsToJudge(await lab.results(run.id), p.models[0], p.models[1]);
    const items: JudgeItem[] = pairs.slice(0, p.limit && p.limit > 0 ? p.limit : undefined).map((x) => ({ ...x, question: questions.get(x.exampleId) ?? x.exampleId }));
    const settings = { ...JUDGE_SETTINGS, maxNewTokens: p.maxNewTokens ?? JUDGE_SETTINGS.maxNewTokens };
    const job = newJudgeJob({ runId: run.id, judge: p.judge, models: p.models, items, settings });
    await lab.putJudge(job);
    return job;
  }

  return {
    judgePrepare: (p: JudgeRequestMap['judgePrepare']['request']) => prepare(p),
    judgeGet: (p: { id: string }) => kept(p.id),
    async judgeKeep(p: { job: JudgeJob }): Promise<JudgeSummary> {
      await lab.putJudge(p.job);
      return summary(p.job);
    },
    async judgeStart(id: number, p: JudgeRequestMap['judgeStart']['request'], signal: AbortSignal): Promise<JudgeSummary> {
      const engine = env.engine();
      if (!engine.info) throw new InvalidArgumentError('Load the model that will judge first.');
      const backend = engineBackend((req, onText, s) => engine.chat(req, onText, s), engine.info.label, p.adapter ?? null, p.strength ?? 1);
      let job = p.jobId ? await kept(p.jobId) : await prepare({ runId: p.runId, models: p.models, judge: { kind: backend.kind, model: backend.model }, maxNewTokens: p.maxNewTokens, limit: p.limit });
      const total = job.items.length * 2;
      onProgress(id, { done: 0, total, example: '' });
      try {
        job = await runJudge(job, backend, {
          onReply: async (j, pr) => {
            job = j;
            await lab.putJudge(j);
            onProgress(id, { done: pr.done, total: pr.total, example: '' });
          },
        }, signal);
      } finally {
        // Whatever ended it (Stop, an error), the job is kept as stopped, with every reply written so far.
        if (job.status !== 'done') await lab.putJudge({ ...job, status: 'stopped' });
      }
      await lab.putJudge(job);
      return summary(job);
    },
    judgeList: (p: { runId: string }) => list(p.runId),
    async judgeDelete(p: { id: string; runId: string }) {
      await lab.deleteJudge(p.id);
      return list(p.runId);
    },
  };
}
