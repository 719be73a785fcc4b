// The Train and Compare views' inputs, held above the views and kept in this browser (persisted.svelte.ts): a view
// switched away from and back, or a reload, finds them as they were.

import type { DatasetSource } from '../lib/store/checkpoints.js';
import type { Criterion } from '../lib/eval/votes.js';
import type { PreferenceObjective } from '../lib/training/preference.js';
import { DEFAULT_TRAIN_CONFIG, type TrainConfig } from '../lib/training/train-config.js';
import { persisted } from './persisted.svelte.ts';
import type { SamplingOptions } from '../lib/model/sampling.js';
import type { PromptFormat } from '../lib/tokenizer/tokenizer.js';

export interface TrainForm {
  dataset: DatasetSource;
  format: 'alpaca' | 'chat';
  name: string;
  /** Records used, 0 for all. */
  maxRecords: number;
  config: TrainConfig;
  /**
   * What to train: a LoRA adapter on instruction data, a reward model (LoRA + score head) on preference pairs, or a
   * LoRA adapter by preference tuning (DPO, ORPO, SimPO) on preference pairs.
   */
  objective: 'adapter' | 'reward' | 'preference';
  /** The pairs of a reward or preference run: the votes kept here on one criterion, or a file (`dataset`). */
  pairs: 'votes' | 'dataset';
  criterion: Criterion;
  /** A preference run: its objective and settings (TRL's names), DPO's reference and an adapter to start from ('' none). */
  preference: { objective: PreferenceObjective; beta: number; labelSmoothing: number; gamma: number; reference: string; startFrom: string };
}

/** Small and quick on a laptop GPU: a first run shows its curves in a minute. "alpaca-lora defaults" is a click away. */
export const TRAIN_FORM_DEFAULTS: TrainForm = {
  dataset: { kind: 'builtin' },
  format: 'alpaca',
  name: 'my-adapter',
  maxRecords: 64,
  config: { ...DEFAULT_TRAIN_CONFIG, steps: 20, epochs: 0, warmupSteps: 2, microBatch: 2, gradAccumulation: 2, cutoff: 128, evalEvery: 5, checkpointEvery: 5 },
  objective: 'adapter',
  pairs: 'votes',
  criterion: 'helpfulness',
  preference: { objective: 'dpo', beta: 0.1, labelSmoothing: 0, gamma: 0.5, reference: '', startFrom: '' },
};

export function trainForm(): TrainForm {
  // A picked file that could not be kept in the browser is held in memory only: its bytes are not written out.
  return persisted('train-form', TRAIN_FORM_DEFAULTS, (v) => ({
    ...v, dataset: v.dataset.kind === 'file' ? TRAIN_FORM_DEFAULTS.dataset : v.dataset,
    // Forms kept before preference runs existed have none.
    preference: { ...TRAIN_FORM_DEFAULTS.preference, ...(v.preference ?? {}) },
  }));
}

/** `base`, or `base-2`, `base-3`, … : the first that no saved run is named. */
export function freeName(base: string, taken: readonly string[]): string {
  const stem = base.replace(/-\d+$/, '');
  if (!taken.includes(base)) return base;
  for (let i = 2; ; i++) if (!taken.includes(`${stem}-${i}`)) return `${stem}-${i}`;
}

/** The first prompt offered (chat and Compare): one of the built-in model's training instructions, answered on topic. */
export const DEMO_PROMPT = 'What are the benefits of exercising?';

/** Sampling, length, prompt format and a stop string, as the Compare form holds them. */
export interface Settings extends SamplingOptions {
  maxNewTokens: number;
  format: PromptFormat;
  stop: string;
}

export interface CompareColumnSpec { adapter: string | null; strength: number }

export interface CompareForm {
  prompt: string;
  settings: Settings;
  specs: CompareColumnSpec[];
  /** Samples per column ranked by the loaded reward model (1: a plain comparison). */
  bestOf: number;
  /** Finished columns as rendered Markdown, or as the tokens (where they diverge is marked). */
  show: 'markdown' | 'tokens';
}

export const COMPARE_FORM_DEFAULTS: CompareForm = {
  bestOf: 1,
  show: 'markdown',
  prompt: DEMO_PROMPT,
  settings: { temperature: 0, topK: 40, topP: 0.9, repetitionPenalty: 1.1, seed: 0, maxNewTokens: 64, format: 'chat', stop: '' },
  specs: [{ adapter: null, strength: 1 }, { adapter: null, strength: 1 }],
};

export function compareForm(): CompareForm {
  const f = persisted('compare-form', COMPARE_FORM_DEFAULTS);
  // Columns are checked one by one (an array is taken as saved): 2 to 4 of { adapter, strength in [0, 2] }.
  const ok = (s: CompareColumnSpec) => (s?.adapter === null || typeof s?.adapter === 'string') && typeof s?.strength === 'number' && s.strength >= 0 && s.strength <= 2;
  if (f.show !== 'markdown' && f.show !== 'tokens') f.show = 'markdown';
  if (f.specs.length < 2 || f.specs.length > 4 || !f.specs.every(ok)) f.specs = structuredClone(COMPARE_FORM_DEFAULTS.specs);
  return f;
}
