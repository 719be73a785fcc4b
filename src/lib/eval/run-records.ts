// Evaluation runs and blind reviews as they are kept (IndexedDB in the browser): a run's settings and the examples it
// covers; its results are kept one record per example and model; a review keeps the hidden side assignment of each
// pair and the votes, and is revealed only when finished.

import type { EvalModel, EvalOptions } from './run.js';
import type { EvalExample } from './sets.js';
import type { PairKey, ReviewPair, Vote } from './votes.js';

export interface EvalRunRecord {
  id: string;
  name: string;
  createdAt: number;
  /** The base model's id (repo, URL or folder name). */
  baseModel: string;
  /** The base model's content fingerprint (absent in runs from before it existed): a resume needs the same weights. */
  baseFingerprint?: string;
  setLabel: string;
  examples: EvalExample[];
  models: EvalModel[];
  options: EvalOptions;
  status: 'running' | 'stopped' | 'done';
}

export interface ReviewRecord {
  id: string;
  runId: string;
  createdAt: number;
  /** The two models compared: kept here, never sent to the page before the review is finished. */
  models: [string, string];
  pairs: ReviewPair[];
  keys: PairKey[];
  votes: Vote[];
  finished: boolean;
}
