// The one table of limits for every number a person types in the app, by field: its label on screen, its range and
// whether it is whole. Inputs are checked against it as they are typed (NumberField marks them and says why in
// words, with the label), and the action they belong to stays disabled while any is wrong. The engine checks the same
// ranges again (SAMPLING_LIMITS, validateTrainConfig): these are the same numbers, written for people.

import { SAMPLING_LIMITS as L } from '../lib/model/sampling.js';

export interface FieldRule {
  label: string;
  min: number;
  max: number;
  step?: number;
  integer?: boolean;
  /** The bound itself is not allowed (learning rate > 0). */
  minExclusive?: boolean;
  maxExclusive?: boolean;
  /** What a special value means, shown beside the range. */
  hint?: string;
}

export const FIELDS = {
  temperature: { label: 'Temperature', ...L.temperature, hint: '0 is greedy' },
  topK: { label: 'Top-k', ...L.topK, integer: true, hint: '0 turns it off' },
  topP: { label: 'Top-p', ...L.topP, hint: '1 turns it off' },
  repetitionPenalty: { label: 'Repetition penalty', ...L.repetitionPenalty, hint: '1 turns it off' },
  seed: { label: 'Seed', min: 0, max: 0xffffffff, step: 1, integer: true },
  maxNewTokens: { label: 'Max new tokens', min: 1, max: 4096, step: 1, integer: true },
  strength: { label: 'Strength', min: 0, max: 2, step: 0.1 },
  rank: { label: 'Rank', min: 1, max: 64, step: 1, integer: true },
  alpha: { label: 'Alpha', min: 0, max: 4096, minExclusive: true },
  dropout: { label: 'Dropout', min: 0, max: 0.9, step: 0.01 },
  learningRate: { label: 'Learning rate', min: 0, max: 0.1, step: 0.0001, minExclusive: true },
  steps: { label: 'Steps', min: 1, max: 1_000_000, step: 1, integer: true },
  warmupSteps: { label: 'Warmup steps', min: 0, max: 1_000_000, step: 1, integer: true },
  microBatch: { label: 'Micro-batch', min: 1, max: 256, step: 1, integer: true },
  gradAccumulation: { label: 'Grad. accumulation', min: 1, max: 1024, step: 1, integer: true },
  cutoff: { label: 'Cutoff (tokens)', min: 64, max: 32768, step: 1, integer: true, hint: 'shorter cuts most answers off' },
  evalEvery: { label: 'Validate every', min: 0, max: 1_000_000, step: 1, integer: true, hint: '0: never' },
  checkpointEvery: { label: 'Checkpoint every', min: 0, max: 1_000_000, step: 1, integer: true, hint: '0: at the end only' },
  recordsUsed: { label: 'Records used', min: 0, max: 10_000_000, step: 1, integer: true, hint: '0: all' },
  bestOf: { label: 'Samples per column', min: 1, max: 16, step: 1, integer: true },
} satisfies Record<string, FieldRule>;

const fmt = (v: number) => (Math.abs(v) >= 1e6 ? v.toLocaleString('en') : String(v));

/** Why `value` does not fit `rule`, in words with the field's label; null when it does. */
export function fieldError(rule: FieldRule, value: unknown): string | null {
  if (typeof value !== 'number' || !Number.isFinite(value)) return `${rule.label} needs a number.`;
  if (rule.integer && !Number.isInteger(value)) return `${rule.label} must be a whole number.`;
  const low = rule.minExclusive ? value <= rule.min : value < rule.min;
  const high = rule.maxExclusive ? value >= rule.max : value > rule.max;
  if (low || high) {
    const range = `${rule.minExclusive ? 'above' : 'from'} ${fmt(rule.min)} ${rule.minExclusive ? 'and up to' : 'to'} ${fmt(rule.max)}`;
    return `${rule.label} must be ${range}${rule.hint ? ` (${rule.hint})` : ''}; ${fmt(value)} is not.`;
  }
  return null;
}

/** The first problem among `checks` ([rule, value] pairs), or '' when every value fits. */
export function firstFieldError(checks: [FieldRule, unknown][]): string {
  for (const [rule, v] of checks) {
    const e = fieldError(rule, v);
    if (e) return e;
  }
  return '';
}
