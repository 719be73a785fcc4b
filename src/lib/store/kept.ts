// The browser's records of what is kept (IndexedDB, db.ts): snapshots of downloaded models and adapters, adapters on
// the shelf, datasets, saved comparisons, settings and training runs. Every write is one transaction: a record is
// the old one or the new one, never half of each.

import type { SnapshotCatalog, Snapshot } from './snapshot-catalog.js';
import { openLabDB, type KeptAdapter, type KeptComparison, type KeptDataset, type LabDatabase } from './db.js';
import type { CheckpointSummary, StoredCheckpoint } from './checkpoints.js';
import { learningRateAt } from '../training/train-config.js';
import type { ExampleResult } from '../eval/metrics.js';
import type { EvalRunRecord, ReviewRecord } from '../eval/run-records.js';
import type { Conversation } from '../chat/conversation.js';
import type { JudgeJob } from '../assist/judge-run.js';
import type { TeacherJob } from '../assist/teacher.js';

export type { KeptAdapter, KeptComparison, KeptDataset };

export class LabStore implements SnapshotCatalog {
  #db: Promise<LabDatabase> | null = null;
  constructor(private readonly name?: string) {}

  db(): Promise<LabDatabase> {
    this.#db ??= openLabDB(this.name);
    return this.#db;
  }

  // Snapshots (downloaded models and adapters)
  async getSnapshot(id: string) { return (await this.db()).get('snapshots', id); }
  async putSnapshot(s: Snapshot) { await (await this.db()).put('snapshots', s); }
  async listSnapshots() { return (await this.db()).getAll('snapshots'); }
  async deleteSnapshot(id: string) { await (await this.db()).delete('snapshots', id); }

  // Adapters kept on the shelf
  async putAdapter(a: KeptAdapter) { await (await this.db()).put('adapters', a); }
  async getAdapter(name: string) { return (await this.db()).get('adapters', name); }
  async deleteAdapter(name: string) { await (await this.db()).delete('adapters', name); }
  async listAdapters(): Promise<Omit<KeptAdapter, 'safetensors' | 'config'>[]> {
    return (await (await this.db()).getAll('adapters')).map(({ safetensors: _s, config: _c, ...rest }) => rest);
  }

  // Datasets
  async putDataset(d: KeptDataset) { await (await this.db()).put('datasets', d); }
  async getDataset(name: string) { return (await this.db()).get('datasets', name); }
  async deleteDataset(name: string) { await (await this.db()).delete('datasets', name); }
  async listDatasets(): Promise<Omit<KeptDataset, 'bytes'>[]> {
    return (await (await this.db()).getAll('datasets')).map(({ bytes: _b, ...rest }) => rest);
  }

  // Saved comparisons
  async putComparison(c: KeptComparison): Promise<number> { return (await this.db()).put('comparisons', c); }
  async listComparisons() { return (await (await this.db()).getAll('comparisons')).sort((a, b) => b.savedAt - a.savedAt); }
  async deleteComparison(id: number) { await (await this.db()).delete('comparisons', id); }

  // Settings (the Hugging Face token, kept in this browser only)
  async getSetting<T>(key: string): Promise<T | undefined> { return (await (await this.db()).get('settings', key)) as T | undefined; }
  async putSetting(key: string, value: unknown) { await (await this.db()).put('settings', value, key); }
  async deleteSetting(key: string) { await (await this.db()).delete('settings', key); }

  // Evaluation runs, their results (one record per example and model) and blind reviews
  async putRun(r: EvalRunRecord) { await (await this.db()).put('evalRuns', r); }
  async getRun(id: string) { return (await this.db()).get('evalRuns', id); }
  async listRuns() { return (await (await this.db()).getAll('evalRuns')).sort((a, b) => b.createdAt - a.createdAt); }
  async putResult(r: ExampleResult & { runId: string }) { await (await this.db()).put('evalResults', r); }
  async results(runId: string) { return (await this.db()).getAllFromIndex('evalResults', 'run', runId); }
  // A model's reviews of an evaluation's pairs, and teacher jobs (written after every reply)
  async putJudge(j: JudgeJob) { await (await this.db()).put('judgeJobs', j); }
  async getJudge(id: string) { return (await this.db()).get('judgeJobs', id); }
  async judges(runId: string) { return (await this.db()).getAllFromIndex('judgeJobs', 'run', runId); }
  async deleteJudge(id: string) { await (await this.db()).delete('judgeJobs', id); }
  async putTeacher(j: TeacherJob) { await (await this.db()).put('teacherJobs', j); }
  async getTeacher(id: string) { return (await this.db()).get('teacherJobs', id); }
  async listTeachers() { return (await (await this.db()).getAll('teacherJobs')).sort((a, b) => b.createdAt - a.createdAt); }
  async deleteTeacher(id: string) { await (await this.db()).delete('teacherJobs', id); }

  async putReview(r: ReviewRecord) { await (await this.db()).put('reviews', r); }
  /**
   * Changes a review in one transaction (read and write together): votes cast at once never overwrite each other.
   * `change` runs synchronously inside it; what it throws leaves the review as it was.
   */
  async updateReview<T>(id: string, change: (r: ReviewRecord) => { next: ReviewRecord; result: T }): Promise<T | undefined> {
    const tx = (await this.db()).transaction('reviews', 'readwrite');
    const r = await tx.store.get(id);
    if (!r) { await tx.done; return undefined; }
    let out: { next: ReviewRecord; result: T };
    try {
      out = change(r);
    } catch (e) {
      tx.abort();
      await tx.done.catch(() => {});
      throw e;
    }
    await tx.store.put(out.next);
    await tx.done;
    return out.result;
  }
  async getReview(id: string) { return (await this.db()).get('reviews', id); }
  async reviews(runId: string) { return (await this.db()).getAllFromIndex('reviews', 'run', runId); }
  /** A run with its results and reviews, in one transaction. */
  async deleteRun(id: string) {
    const db = await this.db();
    const tx = db.transaction(['evalRuns', 'evalResults', 'reviews', 'judgeJobs'], 'readwrite');
    for (const k of await tx.objectStore('evalResults').index('run').getAllKeys(id)) await tx.objectStore('evalResults').delete(k);
    for (const k of await tx.objectStore('reviews').index('run').getAllKeys(id)) await tx.objectStore('reviews').delete(k);
    for (const k of await tx.objectStore('judgeJobs').index('run').getAllKeys(id)) await tx.objectStore('judgeJobs').delete(k);
    await tx.objectStore('evalRuns').delete(id);
    await tx.done;
  }

  // Training runs
  async putConversation(c: Conversation) { await (await this.db()).put('conversations', c); }
  async getConversation(id: string) { return (await this.db()).get('conversations', id); }
  async deleteConversation(id: string) { await (await this.db()).delete('conversations', id); }
  async listConversations() { return (await (await this.db()).getAll('conversations')).sort((a, b) => b.updatedAt - a.updatedAt); }

  async putCheckpoint(c: StoredCheckpoint) { await (await this.db()).put('checkpoints', c); }
  async getCheckpoint(name: string) { return (await this.db()).get('checkpoints', name); }
  async deleteCheckpoint(name: string) { await (await this.db()).delete('checkpoints', name); }
  async listCheckpoints(): Promise<CheckpointSummary[]> {
    return (await (await this.db()).getAll('checkpoints')).map((c) => ({
      name: c.name, step: c.checkpoint.step, totalSteps: c.totalSteps, baseModel: c.checkpoint.baseModel, baseFingerprint: c.checkpoint.baseFingerprint, savedAt: c.savedAt,
      lastLoss: c.checkpoint.history.train.at(-1)?.[1] ?? null,
      history: c.checkpoint.history,
      // The schedule gives each step's rate again: a continued run draws its learning-rate line from step 1 (records
      // kept before runs had a config have none).
      learningRates: c.checkpoint.config ? c.checkpoint.history.train.map(([t]) => [t, learningRateAt(c.checkpoint.config, t, c.totalSteps)] as [number, number]) : [],
      ...(c.checkpoint.preference ? { objective: c.checkpoint.preference.objective } : {}),
      bytes: c.checkpoint.peft.safetensors.byteLength + c.checkpoint.state.tensors.reduce((n, t) => n + 4 * (t.a.length + t.b.length) * 3, 0),
    }));
  }
}
