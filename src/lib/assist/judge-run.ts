// A judge job: a backend reviews every question two models of an evaluation both answered, once with each model's
// answer shown first. Replies are kept as written (parsing happens when scores are read, so a better parser re-reads
// old replies); the job is written after every reply and resumes where it stopped.

import { InvalidArgumentError } from '../errors.js';
import { judgeMessages, scorePair, type JudgedPair, type PairScore } from '../eval/judge.js';
import type { AssistantBackend, CompletionSettings } from './backend.js';

export interface JudgeItem {
  exampleId: string;
  question: string;
  /** The answers of models[0] and models[1]. */
  answers: [string, string];
}

export interface JudgeJob {
  id: string;
  /** The evaluation run whose answers are judged. */
  runId: string;
  createdAt: number;
  judge: { kind: string; model: string };
  models: [string, string];
  settings: CompletionSettings;
  items: JudgeItem[];
  /** One per item, replies filled in as they come. */
  judged: JudgedPair[];
  status: 'running' | 'stopped' | 'done';
}

/** Judge replies are short: two scores and an explanation. Greedy decoding makes a judge repeatable. */
export const JUDGE_SETTINGS: CompletionSettings = { maxNewTokens: 256, sampling: { temperature: 0 } };

export function newJudgeJob(init: { runId: string; judge: { kind: string; model: string }; models: [string, string]; items: JudgeItem[]; settings?: CompletionSettings; createdAt?: number }): JudgeJob {
  if (init.items.length === 0) throw new InvalidArgumentError(`${init.models[0]} and ${init.models[1]} have no answered question in common: run the evaluation for both first.`);
  const createdAt = init.createdAt ?? Date.now();
  return {
    id: `judge-${createdAt.toString(36)}`, runId: init.runId, createdAt, judge: init.judge, models: init.models, settings: init.settings ?? JUDGE_SETTINGS,
    items: init.items, judged: init.items.map((it) => ({ exampleId: it.exampleId, models: init.models, replies: {} })), status: 'running',
  };
}

export interface JudgeHooks {
  /** After each reply, with the job as it now stands (write it to storage here). */
  onReply?: (job: JudgeJob, progress: { done: number; total: number }) => void | Promise<void>;
  onText?: (exampleId: string, delta: string) => void;
}

const ORDERS = ['xFirst', 'yFirst'] as const;

export async function runJudge(job: JudgeJob, backend: AssistantBackend, hooks: JudgeHooks = {}, signal?: AbortSignal): Promise<JudgeJob> {
  if (backend.model !== job.judge.model || backend.kind !== job.judge.kind) {
    throw new InvalidArgumentError(`This review was started with the judge ${job.judge.model} (${job.judge.kind}); load it to resume, or start a new review.`);
  }
  let current: JudgeJob = { ...job, judged: job.judged.map((j) => ({ ...j, replies: { ...j.replies } })), status: 'running' };
  const total = current.items.length * 2;
  const count = () => current.judged.reduce((n, j) => n + (j.replies.xFirst !== undefined ? 1 : 0) + (j.replies.yFirst !== undefined ? 1 : 0), 0);
  outer: for (let i = 0; i < current.items.length; i++) {
    for (const order of ORDERS) {
      if (current.judged[i].replies[order] !== undefined) continue;
      if (signal?.aborted) break outer;
      const it = current.items[i];
      const [first, second] = order === 'xFirst' ? it.answers : [it.answers[1], it.answers[0]];
      const c = await backend.complete(judgeMessages(it.question, first, second), current.settings, (d) => hooks.onText?.(it.exampleId, d), signal);
      if (c.stopReason === 'aborted') break outer;
      current = { ...current, judged: current.judged.map((j, k) => (k === i ? { ...j, replies: { ...j.replies, [order]: c.text } } : j)) };
      const done = count();
      if (done === total) current.status = 'done';
      await hooks.onReply?.(current, { done, total });
    }
  }
  if (current.status !== 'done') current = { ...current, status: 'stopped' };
  return current;
}

/** The job's scores, read from its replies now. */
export function judgeScores(job: JudgeJob): PairScore[] {
  return job.judged.filter((j) => j.replies.xFirst !== undefined || j.replies.yFirst !== undefined).map(scorePair);
}
