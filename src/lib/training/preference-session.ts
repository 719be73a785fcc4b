// A preference run on a loaded model, as the engine, the worker and the CLI start one: pairs -> examples (the prompt
// through the chat template or Alpaca, answers cut to the cutoff), a seeded held-out split, DPO's reference
// log-probabilities (the base with the adapter off, or a frozen adapter from the shelf), the run, a last checkpoint,
// and the trained adapter put in the bank for inference.

import { splitTrainValidation } from '../data/batches.js';
import { preferenceExample, type PreferenceExample, type PreferenceRecord } from '../data/preference-data.js';
import { DatasetError, InvalidArgumentError } from '../errors.js';
import type { Gpu } from '../gpu/device.js';
import type { LoraBank } from '../lora/bank.js';
import type { LoraAdapter } from '../lora/peft.js';
import type { ModelRunner } from '../model/runner.js';
import type { TextTokenizer } from '../tokenizer/tokenizer.js';
import { PREFERENCE_DEFAULTS, validatePreferenceConfig, type PreferenceConfig, type PreferenceObjective } from './preference.js';
import { PreferenceTrainer, referenceLogps, type PreferenceCheckpoint, type PreferenceHooks } from './preference-trainer.js';
import type { TrainControl } from './loop.js';
import { DEFAULT_TRAIN_CONFIG, validateTrainConfig, type TrainConfig } from './train-config.js';
import { runAndKeep } from './session.js';

export interface PreferenceRunOptions {
  name: string;
  records: PreferenceRecord[];
  config: Partial<TrainConfig>;
  objective: PreferenceObjective;
  /** Beta, label smoothing, gamma: TRL's defaults for the objective where absent. */
  preference?: Partial<Omit<PreferenceConfig, 'objective'>>;
  format: 'alpaca' | 'chat';
  /** DPO's reference: an adapter on the shelf, frozen (null: the base, adapter off). */
  referenceAdapter?: string | null;
  /** Continue tuning this adapter on the shelf (its rank and alpha the run's), instead of a fresh one. */
  startFrom?: string | null;
  resume?: PreferenceCheckpoint;
  baseModel: string | null;
  baseFingerprint?: string;
}

export interface PreferenceRunResult {
  adapter: LoraAdapter;
  pairs: { train: number; validation: number; truncated: number };
}

/** The pairs as examples; pairs whose prompt leaves no room for an answer are refused in words. */
export function preferenceExamples(tok: TextTokenizer, records: PreferenceRecord[], o: { format: 'alpaca' | 'chat'; cutoff: number; eosId: number }): { examples: PreferenceExample[]; truncated: number } {
  if (records.length === 0) throw new DatasetError('There are no preference pairs: give {"prompt", "chosen", "rejected"} records, or comparison data with differently scored answers.');
  let truncated = 0;
  const examples = records.map((r) => {
    const e = preferenceExample(tok, r, o);
    if (e.truncated) truncated++;
    return { chosen: e.chosen, rejected: e.rejected };
  });
  return { examples, truncated };
}

export async function runPreferenceTraining(
  gpu: Gpu, runner: ModelRunner<LoraBank>, tok: TextTokenizer, eosId: number, o: PreferenceRunOptions,
  hooks: PreferenceHooks, control: TrainControl,
): Promise<PreferenceRunResult> {
  const c: TrainConfig = { ...DEFAULT_TRAIN_CONFIG, ...(o.resume?.config ?? {}), ...o.config };
  validateTrainConfig(c);
  const { referenceAdapter: _r, ...resumed } = o.resume?.preference ?? {};
  const pc: PreferenceConfig = { ...PREFERENCE_DEFAULTS[o.objective], ...resumed, ...o.preference, objective: o.objective };
  validatePreferenceConfig(pc);
  const bank = runner.lora;
  const slotOf = (name: string, what: string) => {
    const slot = bank.slotOf(name);
    if (!slot) throw new InvalidArgumentError(`There is no adapter "${name}" on the shelf to ${what}: load it first, or leave it out.`);
    return slot;
  };
  const refSlot = o.objective === 'dpo' && o.referenceAdapter ? slotOf(o.referenceAdapter, 'use as the reference') : 0;
  const initial = o.startFrom ? bank.adapters[slotOf(o.startFrom, 'start from') - 1] ?? undefined : undefined;
  const { examples, truncated } = preferenceExamples(tok, o.records, { format: o.format, cutoff: c.cutoff, eosId });
  const data = splitTrainValidation(examples, c.validationFraction, c.seed);
  const reference = pc.objective === 'dpo'
    ? { train: await referenceLogps(runner, data.train, refSlot, control.signal), validation: await referenceLogps(runner, data.validation, refSlot, control.signal) }
    : null;
  const trainer = new PreferenceTrainer(gpu, runner.model, o.name, c, pc, data, reference, { baseModel: o.baseModel, baseFingerprint: o.baseFingerprint, resume: o.resume, initial: o.resume ? undefined : initial, referenceAdapter: refSlot ? o.referenceAdapter : null });
  const adapter = await runAndKeep(trainer, bank, o.resume?.step ?? 0, hooks, control);
  return { adapter, pairs: { train: data.train.length, validation: data.validation.length, truncated } };
}
