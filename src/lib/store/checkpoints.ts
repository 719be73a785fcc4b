// Training runs as the browser keeps them (IndexedDB, store/kept.ts): one record per run name, written in a single
// put, so a checkpoint is either the old one or the new one, never half of each.

import type { TrainRecord } from '../data/records.js';
import type { Checkpoint } from '../training/trainer.js';

/** A run's dataset: the bundled sample, a file picked now (kept on first use), or one already kept by name. */
export type DatasetSource = { kind: 'builtin' } | { kind: 'file'; name: string; bytes: Uint8Array } | { kind: 'kept'; name: string };

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
  /** The base model's content fingerprint, when recorded. */
  baseFingerprint?: string;
  savedAt: number;
  lastLoss: number | null;
  /** The run's loss curves so far, so a continued run draws the same chart. */
  history: { train: [number, number][]; validation: [number, number][] };
  /** The learning rate of each step done, [step, rate]. */
  learningRates: [number, number][];
  /** Bytes the record takes (adapter and optimizer state). */
  bytes: number;
  /** A preference run's objective (DPO, ORPO, SimPO); absent: instruction tuning. */
  objective?: string;
}

export type { TrainRecord };
