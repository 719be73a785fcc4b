// Reactive state of teacher jobs for the UI: the form (kept in this browser), the kept jobs, the one running.

import { DEFAULT_TEACHER_SYSTEM } from '../lib/assist/teacher.js';
import type { EngineClient } from '../lib/worker/client.js';
import type { AssistantBackend } from '../lib/assist/backend.js';
import { runTeacher } from '../lib/assist/teacher.js';
import type { TeachRequestMap, TeacherSummary } from '../lib/worker/teaching.js';
import { persisted } from './persisted.svelte.ts';

export interface TeachForm {
  name: string;
  /** 'builtin', 'kept:<name>' or 'typed'. */
  source: string;
  limit: number;
  typed: string;
  systemPrompt: string;
  maxNewTokens: number;
  temperature: number;
  adapter: string;
  /** Who answers: LoRA Lab's engine (the loaded model) or web-llm (its loaded model). */
  backend: 'engine' | 'web-llm';
}

export class TeachState {
  form = persisted<TeachForm>('teach-form', {
    name: 'taught.json', source: 'builtin', limit: 20, typed: '', systemPrompt: DEFAULT_TEACHER_SYSTEM, maxNewTokens: 256, temperature: 0.7, adapter: '', backend: 'engine',
  });
  jobs = $state.raw<TeacherSummary[]>([]);
  running = $state.raw<{ done: number; total: number; startedAt: number; startDone: number } | null>(null);
  #stop: (() => void) | null = null;

  constructor(private readonly client: EngineClient, private readonly fail: (e: unknown) => void) {}

  async refresh(): Promise<void> {
    try {
      this.jobs = await this.client.request('teachList', {});
    } catch (e) {
      this.fail(e);
    }
  }

  async start(req: TeachRequestMap['teachStart']['request']): Promise<void> {
    this.running = { done: 0, total: 0, startedAt: performance.now(), startDone: -1 };
    const job = this.client.teach(req, (p) => {
      const r = this.running!;
      this.running = { ...r, done: p.done, total: p.total, startDone: r.startDone < 0 ? p.done : r.startDone };
    });
    this.#stop = () => void job.stop();
    try {
      await job.done;
    } catch (e) {
      this.fail(e);
    } finally {
      await this.#ended();
    }
  }

  /**
   * A job answered on this page by `backend` (web-llm runs in its own worker, not in the engine's): the engine worker
   * creates and keeps the job and the dataset, which are written after every answer as for the engine's teacher.
   */
  async startOnPage(backend: AssistantBackend, req: { jobId?: string } & Omit<TeachRequestMap['teachPrepare']['request'], 'teacher'>): Promise<void> {
    const stop = new AbortController();
    this.#stop = () => stop.abort();
    this.running = { done: 0, total: 0, startedAt: performance.now(), startDone: -1 };
    try {
      const job = req.jobId ? await this.client.request('teachGet', { id: req.jobId }) : await this.client.request('teachPrepare', { ...req, teacher: { kind: backend.kind, model: backend.model } });
      const first = job.answers.filter(Boolean).length;
      this.running = { ...this.running, total: job.instructions.length, done: first, startDone: first };
      const done = await runTeacher(job, backend, {
        onAnswer: async (j, _i, p) => {
          await this.client.request('teachKeep', { job: j });
          this.running = { ...this.running!, done: p.done, total: p.total };
        },
      }, stop.signal);
      await this.client.request('teachKeep', { job: done });
    } catch (e) {
      this.fail(e);
    } finally {
      await this.#ended();
    }
  }

  /** A job ended (done, stopped or failed): the list shows it as kept. */
  async #ended(): Promise<void> {
    this.running = null;
    this.#stop = null;
    await this.refresh();
  }

  stop(): void {
    this.#stop?.();
  }

  async remove(id: string): Promise<void> {
    try {
      this.jobs = await this.client.request('teachDelete', { id });
    } catch (e) {
      this.fail(e);
    }
  }
}
