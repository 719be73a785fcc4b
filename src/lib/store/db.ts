// The app's IndexedDB database (through `idb`), versioned. Each version's upgrade step runs in order, so a browser
// that last ran any earlier version arrives at the current schema with its data:
//   1  checkpoints (training runs, with their dataset's bytes inline)
//   2  snapshots (downloaded models and adapters), adapters (kept on the shelf), datasets, comparisons, settings,
//      blobs + chunks (large files where OPFS is missing); checkpoints' inline datasets move to `datasets`.
//   3  evalRuns, evalResults (one record per example and model, written as each is made), reviews (blind votes).
//   4  conversations (chats with their settings).
//   5  judgeJobs (a model judging an evaluation's answer pairs, reply by reply), teacherJobs (a model writing a dataset).

import { openDB, type DBSchema, type IDBPDatabase } from 'idb';
import type { Snapshot } from './snapshot-catalog.js';
import type { ExampleResult } from '../eval/metrics.js';
import type { EvalRunRecord, ReviewRecord } from '../eval/run-records.js';
import type { StoredCheckpoint } from './checkpoints.js';
import type { Conversation } from '../chat/conversation.js';
import type { JudgeJob } from '../assist/judge-run.js';
import type { TeacherJob, teacherProvenance } from '../assist/teacher.js';

/** An adapter kept on the shelf: its PEFT files, as trained, imported or downloaded. */
export interface KeptAdapter {
  name: string;
  config: string;
  safetensors: Uint8Array;
  baseModel: string | null;
  /** The content fingerprint of the model it was trained on (adapters trained here). */
  baseFingerprint?: string;
  /** Where it came from: a repo id, URL, file name or `trained`. */
  origin: string;
  size: number;
  savedAt: number;
  /** A reward model (LoRA + score head, PEFT SEQ_CLS), scored with rather than generated through. */
  kind?: 'reward';
}

export interface KeptDataset {
  name: string;
  bytes: Uint8Array;
  size: number;
  savedAt: number;
  /** How a dataset written by a teacher model was made (absent for files people brought). */
  provenance?: ReturnType<typeof teacherProvenance>;
}

export interface KeptComparison {
  id?: number;
  savedAt: number;
  model: string;
  prompt: string;
  settings: Record<string, unknown>;
  columns: { adapter: string | null; strength: number; text: string; tokens: number }[];
}

export const DB_NAME = 'lora-lab';
export const DB_VERSION = 5;

export interface LabDB extends DBSchema {
  checkpoints: { key: string; value: StoredCheckpoint };
  snapshots: { key: string; value: Snapshot };
  adapters: { key: string; value: KeptAdapter };
  datasets: { key: string; value: KeptDataset };
  comparisons: { key: number; value: KeptComparison };
  settings: { key: string; value: unknown };
  blobs: { key: string; value: { key: string; size: number; complete: boolean; chunks: number } };
  chunks: { key: [string, number]; value: Uint8Array };
  evalRuns: { key: string; value: EvalRunRecord };
  evalResults: { key: [string, string, string]; value: ExampleResult & { runId: string }; indexes: { run: string } };
  reviews: { key: string; value: ReviewRecord; indexes: { run: string } };
  conversations: { key: string; value: Conversation };
  judgeJobs: { key: string; value: JudgeJob; indexes: { run: string } };
  teacherJobs: { key: string; value: TeacherJob };
}

export type LabDatabase = IDBPDatabase<LabDB>;

export function openLabDB(name = DB_NAME): Promise<LabDatabase> {
  return openDB<LabDB>(name, DB_VERSION, {
    async upgrade(db, oldVersion, _newVersion, tx) {
      if (oldVersion < 1) db.createObjectStore('checkpoints', { keyPath: 'name' });
      if (oldVersion < 2) {
        db.createObjectStore('snapshots', { keyPath: 'id' });
        db.createObjectStore('adapters', { keyPath: 'name' });
        db.createObjectStore('datasets', { keyPath: 'name' });
        db.createObjectStore('comparisons', { keyPath: 'id', autoIncrement: true });
        db.createObjectStore('settings');
        db.createObjectStore('blobs', { keyPath: 'key' });
        db.createObjectStore('chunks');
        // Version 1 kept a run's dataset file inside each checkpoint record: it moves to `datasets` once, and the
        // checkpoint names it.
        const runs = tx.objectStore('checkpoints');
        for (let c = await runs.openCursor(); c; c = await c.continue()) {
          const d = c.value.dataset as { kind: string; name?: string; bytes?: Uint8Array };
          if (d.kind !== 'file' || !d.bytes || !d.name) continue;
          await tx.objectStore('datasets').put({ name: d.name, bytes: d.bytes, size: d.bytes.byteLength, savedAt: c.value.savedAt });
          await c.update({ ...c.value, dataset: { kind: 'kept', name: d.name } });
        }
      }
      if (oldVersion < 3) {
        db.createObjectStore('evalRuns', { keyPath: 'id' });
        db.createObjectStore('evalResults', { keyPath: ['runId', 'id', 'model'] }).createIndex('run', 'runId');
        db.createObjectStore('reviews', { keyPath: 'id' }).createIndex('run', 'runId');
      }
      if (oldVersion < 4) db.createObjectStore('conversations', { keyPath: 'id' });
      if (oldVersion < 5) {
        db.createObjectStore('judgeJobs', { keyPath: 'id' }).createIndex('run', 'runId');
        db.createObjectStore('teacherJobs', { keyPath: 'id' });
      }
    },
    blocked() {
      // Another tab holds an older version open; it is asked to close it (see `versionchange` below).
    },
  }).then((db) => {
    // A newer version opened in another tab: close ours so its upgrade can run; this tab reloads into the new app.
    db.addEventListener('versionchange', () => db.close());
    return db;
  });
}
