// Reactive state of evaluations for the UI: kept runs and their summaries, the run in progress, the open run's
// results, and the blind review (which holds no model names until it is finished). Talks to the worker through the
// EngineClient it is given.

import type { UiError } from './host.ts';
import { persisted } from './persisted.svelte.ts';
import type { ExampleResult } from '../lib/eval/metrics.js';
import type { EvalModel, EvalOptions } from '../lib/eval/run.js';
import type { Criterion, PairKey, ReviewPair, TallyRow, Verdict } from '../lib/eval/votes.js';
import type { EngineClient } from '../lib/worker/client.js';
import type { EvalRequestMap, EvalRunSummary, EvalSetChoice } from '../lib/worker/evaluation.js';
import type { JudgeRequestMap, JudgeSummary } from '../lib/worker/judging.js';
import type { RewardModelInfo } from '../lib/reward/onnx-reward.js';
import type { AssistantBackend } from '../lib/assist/backend.js';
import { runJudge } from '../lib/assist/judge-run.js';
import type { ModelSource } from '../lib/hub/source.js';
import type { DownloadProgress } from '../lib/store/progress.js';

type Opened = EvalRequestMap['evalResults']['result'];

export interface OpenReview {
  reviewId: string;
  runId: string;
  pairs: ReviewPair[];
  prompts: Record<string, { instruction: string; input: string }>;
  /** `${pairId}|${criterion}` → verdict */
  votes: Map<string, Verdict>;
}

/** The Evaluate form: kept here, above the view, so it survives switching views and the review page. */
export interface EvalForm {
  setId: string;
  limit: number;
  maxNewTokens: number;
  stem: boolean;
  /** Score the references' loss and perplexity too (teacher-forced: a step per reference token, the slow part). */
  loss: boolean;
  includeBase: boolean;
  chosen: Record<string, boolean>;
  strengths: Record<string, number>;
}

export class EvalState {
  /** Kept in this browser too (a reload finds it as it was). */
  form = persisted<EvalForm>('eval-form', { setId: 'user-oriented', limit: 20, maxNewTokens: 128, stem: false, loss: true, includeBase: true, chosen: {}, strengths: {} });
  runs = $state.raw<EvalRunSummary[]>([]);
  open = $state.raw<Opened | null>(null);
  running = $state.raw<{ runId: string | null; done: number; total: number; startedAt: number; example: string } | null>(null);
  review = $state.raw<OpenReview | null>(null);
  revealed = $state.raw<{ tally: TallyRow[]; models: [string, string]; keys: PairKey[] } | null>(null);
  #stop: (() => void) | null = null;
  /** The open run's reviews by a model (the judge), newest first, and the one being written. */
  judges = $state.raw<JudgeSummary[]>([]);
  judging = $state.raw<{ done: number; total: number; startedAt: number } | null>(null);
  #stopJudge: (() => void) | null = null;
  /** The reward model loaded in the worker, its download, and the scoring in progress. */
  reward = $state.raw<RewardModelInfo | null>(null);
  rewardSource = persisted<{ text: string }>('reward-source', { text: '' });
  rewardLoading = $state.raw<{ progress: DownloadProgress | null } | null>(null);
  scoring = $state.raw<{ done: number; total: number } | null>(null);

  constructor(private readonly client: EngineClient, private readonly fail: (e: unknown) => void, private readonly download: (name: string, blob: Blob) => void) {}

  async #try<T>(f: () => Promise<T>): Promise<T | null> {
    try {
      return await f();
    } catch (e) {
      this.fail(e);
      return null;
    }
  }

  async refresh(): Promise<void> {
    const runs = await this.#try(() => this.client.request('evalRuns', {}));
    if (runs) this.runs = runs;
  }

  async start(req: { runId?: string; name?: string; set?: EvalSetChoice; models?: EvalModel[]; options?: Partial<EvalOptions>; limit?: number }): Promise<void> {
    this.running = { runId: req.runId ?? null, done: 0, total: 0, startedAt: performance.now(), example: '' };
    const job = this.client.evaluate(req, (p, result) => {
      if (p.done >= 0) this.running = { ...this.running!, done: p.done, total: p.total, example: p.example };
      if (result && this.open && this.open.summary.run.id === this.running?.runId) this.open = { ...this.open, results: [...this.open.results, result] };
    });
    this.#stop = () => void job.stop();
    const r = await this.#try(() => job.done);
    this.running = null;
    this.#stop = null;
    await this.refresh();
    if (r) await this.openRun(r.runId);
  }

  stop(): void {
    this.#stop?.();
  }

  async openRun(runId: string): Promise<void> {
    const r = await this.#try(() => this.client.request('evalResults', { runId }));
    if (r) this.open = r;
    const j = await this.#try(() => this.client.request('judgeList', { runId }));
    this.judges = j ?? [];
  }

  /** The loaded model judges the open run's pairs of `models` (or resumes the job `jobId`). */
  async startJudge(req: JudgeRequestMap['judgeStart']['request']): Promise<void> {
    this.judging = { done: 0, total: 0, startedAt: performance.now() };
    const job = this.client.judge(req, (p) => { this.judging = { ...this.judging!, done: p.done, total: p.total }; });
    this.#stopJudge = () => void job.stop();
    await this.#try(() => job.done);
    this.judging = null;
    this.#stopJudge = null;
    const j = await this.#try(() => this.client.request('judgeList', { runId: req.runId }));
    if (j) this.judges = j;
  }

  /** A review by `backend` run on this page (web-llm); the engine worker keeps the job reply by reply. */
  async startJudgeOnPage(backend: AssistantBackend, req: { runId: string; jobId?: string; models?: [string, string]; maxNewTokens?: number; limit?: number }): Promise<void> {
    const stop = new AbortController();
    this.#stopJudge = () => stop.abort();
    this.judging = { done: 0, total: 0, startedAt: performance.now() };
    try {
      const job = req.jobId ? await this.client.request('judgeGet', { id: req.jobId })
        : await this.client.request('judgePrepare', { runId: req.runId, models: req.models!, judge: { kind: backend.kind, model: backend.model }, maxNewTokens: req.maxNewTokens, limit: req.limit });
      const done = await runJudge(job, backend, {
        onReply: async (j, p) => {
          await this.client.request('judgeKeep', { job: j });
          this.judging = { ...this.judging!, done: p.done, total: p.total };
        },
      }, stop.signal);
      await this.client.request('judgeKeep', { job: done });
    } catch (e) {
      this.fail(e);
    } finally {
      this.judging = null;
      this.#stopJudge = null;
      const j = await this.#try(() => this.client.request('judgeList', { runId: req.runId }));
      if (j) this.judges = j;
    }
  }

  stopJudge(): void {
    this.#stopJudge?.();
  }

  /** Why the last reward-model load failed, shown beside its Load button (cleared by the next load or an edit). */
  rewardError = $state.raw<UiError | null>(null);

  async loadReward(source: ModelSource): Promise<void> {
    this.rewardLoading = { progress: null };
    this.rewardError = null;
    try {
      this.reward = await this.client.loadReward({ source }, (p) => { this.rewardLoading = { progress: p }; });
    } catch (e) {
      const err = e as Error & { details?: { status?: number; url?: string } };
      this.rewardError = { name: err.name, message: err.message, where: 'evaluate', status: err.details?.status, url: err.details?.url };
    } finally {
      this.rewardLoading = null;
    }
  }

  /** Scores the open run's answers with the loaded reward model; the scores are kept with the results. */
  async scoreRun(runId: string): Promise<void> {
    this.scoring = { done: 0, total: 0 };
    const job = this.client.scoreRun(runId, (p) => { this.scoring = { done: p.done, total: p.total }; });
    await this.#try(() => job.done);
    this.scoring = null;
    await this.openRun(runId);
  }

  async deleteJudge(id: string, runId: string): Promise<void> {
    const j = await this.#try(() => this.client.request('judgeDelete', { id, runId }));
    if (j) this.judges = j;
  }

  async remove(runId: string): Promise<void> {
    const runs = await this.#try(() => this.client.request('evalDelete', { runId }));
    if (runs) this.runs = runs;
    if (this.open?.summary.run.id === runId) this.open = null;
  }

  async exportRun(runId: string, as: 'json' | 'csv'): Promise<void> {
    const f = await this.#try(() => this.client.request('evalExport', { runId, as }));
    if (f) this.download(f.name, f.blob);
  }

  async importRun(file: File): Promise<void> {
    const r = await this.#try(() => this.client.request('evalImport', { file }));
    await this.refresh();
    if (r) await this.openRun(r.runId);
  }

  async startReview(runId: string, models: [string, string]): Promise<void> {
    const r = await this.#try(() => this.client.request('reviewStart', { runId, models }));
    if (r) { this.revealed = null; this.review = { reviewId: r.reviewId, runId, pairs: r.pairs, prompts: r.prompts, votes: new Map() }; }
  }

  async resumeReview(reviewId: string, runId: string): Promise<void> {
    const r = await this.#try(() => this.client.request('reviewOpen', { reviewId }));
    if (r) { this.revealed = null; this.review = { reviewId, runId, pairs: r.pairs, prompts: r.prompts, votes: new Map(r.voted.map((v) => [`${v.pairId}|${v.criterion}`, v.verdict])) }; }
  }

  async vote(pairId: string, criterion: Criterion, verdict: Verdict): Promise<void> {
    const rv = this.review;
    if (!rv) return;
    this.review = { ...rv, votes: new Map(rv.votes).set(`${pairId}|${criterion}`, verdict) };
    await this.#try(() => this.client.request('reviewVote', { reviewId: rv.reviewId, pairId, criterion, verdict }));
  }

  async finishReview(): Promise<void> {
    const rv = this.review;
    if (!rv) return;
    const r = await this.#try(() => this.client.request('reviewFinish', { reviewId: rv.reviewId }));
    if (r) this.revealed = r;
  }

  async closeReview(): Promise<void> {
    const runId = this.review?.runId;
    this.review = null;
    if (runId) await this.openRun(runId);
  }

  async exportReview(reviewId: string, as: 'json' | 'csv' | 'paper' | 'tally'): Promise<void> {
    const f = await this.#try(() => this.client.request('reviewExport', { reviewId, as }));
    if (f) this.download(f.name, f.blob);
  }

  async importReview(runId: string, file: File): Promise<void> {
    await this.#try(() => this.client.request('reviewImport', { runId, file }));
    await this.openRun(runId);
  }
}

export type { ExampleResult };
