// Training checkpoints in IndexedDB (through `idb`), so a run survives closing the tab. One record per run name,
// written in a single put: a checkpoint is either the old one or the new one, never half of each.

import { openDB, type IDBPDatabase } from 'idb';
import type { TrainRecord } from '../data/records.js';
import type { Checkpoint } from '../training/trainer.js';

export type DatasetSource = { kind: 'builtin' } | { kind: 'file'; name: string; bytes: Uint8Array };

export interface StoredCheckpoint {
  name: string;
  checkpoint: Checkpoint;
  dataset: DatasetSource;
  format: 'alpaca' | 'chat';
  maxRecords?: number;
  totalSteps: number;
  savedAt: number;
}

export interface CheckpointSummary {
  name: string;
  step: number;
  totalSteps: number;
  baseModel: string | null;
  savedAt: number;
  lastLoss: number | null;
  /** The run's loss curves so far, so a continued run draws the same chart. */
  history: { train: [number, number][]; validation: [number, number][] };
}

const DB = 'lora-lab';
const STORE = 'checkpoints';

export class CheckpointStore {
  #db: Promise<IDBPDatabase> | null = null;

  #open(): Promise<IDBPDatabase> {
    this.#db ??= openDB(DB, 1, {
      upgrade(db) {
        if (!db.objectStoreNames.contains(STORE)) db.createObjectStore(STORE, { keyPath: 'name' });
      },
    });
    return this.#db;
  }

  async put(c: StoredCheckpoint): Promise<void> {
    await (await this.#open()).put(STORE, c);
  }

  async get(name: string): Promise<StoredCheckpoint | undefined> {
    return (await this.#open()).get(STORE, name);
  }

  async delete(name: string): Promise<void> {
    await (await this.#open()).delete(STORE, name);
  }

  async list(): Promise<CheckpointSummary[]> {
    const all: StoredCheckpoint[] = await (await this.#open()).getAll(STORE);
    return all.map((c) => ({
      name: c.name, step: c.checkpoint.step, totalSteps: c.totalSteps, baseModel: c.checkpoint.baseModel, savedAt: c.savedAt,
      lastLoss: c.checkpoint.history.train.at(-1)?.[1] ?? null,
      history: c.checkpoint.history,
    }));
  }
}

export type { TrainRecord };
