// A training run against a loaded model: dataset records -> examples (with the model's tokenizer), split, the Trainer,
// and the finished adapter made resident. Shared by the worker and the CLI.

import { splitTrainValidation } from '../data/batches.js';
import { promptParts, toExample, type Example } from '../data/examples.js';
import type { TrainRecord } from '../data/records.js';
import { InvalidArgumentError } from '../errors.js';
import type { Gpu } from '../gpu/device.js';
import type { LoadedModel } from '../model/loaded.js';
import type { LoraBank } from '../lora/bank.js';
import type { TextTokenizer } from '../tokenizer/tokenizer.js';
import { DEFAULT_TRAIN_CONFIG, validateTrainConfig, type TrainConfig } from './train-config.js';
import { Trainer, type Checkpoint, type TrainControl, type TrainHooks } from './trainer.js';
import type { LoraAdapter } from '../lora/peft.js';

export interface DatasetPreview {
  records: number;
  withInput: number;
  chat: number;
  /** The first records with the exact prompt the model will see. */
  samples: { prompt: string; response: string }[];
}

export function previewRecords(tok: TextTokenizer, records: TrainRecord[], format: 'alpaca' | 'chat', n = 3): DatasetPreview {
  return {
    records: records.length,
    withInput: records.filter((r) => r.kind === 'alpaca' && r.input.trim() !== '').length,
    chat: records.filter((r) => r.kind === 'chat').length,
    samples: records.slice(0, n).map((r) => {
      const p = promptParts(tok, r, format);
      return { prompt: p.prompt, response: p.response };
    }),
  };
}

export interface TrainRunOptions {
  name: string;
  records: TrainRecord[];
  format: 'alpaca' | 'chat';
  config: Partial<TrainConfig>;
  /** Use only the first N records (quick runs). */
  maxRecords?: number;
  baseModel: string | null;
  baseFingerprint?: string;
  resume?: Checkpoint;
}

/**
 * The examples a run trains and validates on, each with the record it came from: the first `maxRecords` records,
 * tokenized, those with a response token within the cutoff, split by the seed. What the trainer and the cluster
 * recipe (recipe/data.ts) both read, so they cannot differ.
 */
export function runExamples(tok: TextTokenizer, eosId: number, o: Pick<TrainRunOptions, 'records' | 'format' | 'maxRecords'>, c: TrainConfig): Record<'train' | 'validation', { record: TrainRecord; example: Example }[]> {
  const records = o.maxRecords ? o.records.slice(0, o.maxRecords) : o.records;
  const pairs = records.map((record) => ({ record, example: toExample(tok, record, { format: o.format, cutoff: c.cutoff, trainOnInputs: c.trainOnInputs, eosId }) }));
  const usable = pairs.filter((p) => p.example.targets.some((t) => t >= 0));
  if (usable.length === 0) throw new InvalidArgumentError(`No example has a response token within the cutoff of ${c.cutoff}: raise the cutoff.`);
  return splitTrainValidation(usable, c.validationFraction, c.seed);
}

export function buildExamples(tok: TextTokenizer, eosId: number, o: TrainRunOptions, c: TrainConfig): { train: Example[]; validation: Example[] } {
  const { train, validation } = runExamples(tok, eosId, o, c);
  return { train: train.map((p) => p.example), validation: validation.map((p) => p.example) };
}

/** The end-of-sequence id training appends to each answer: the tokenizer's first, else config.json's, else 0. */
export function trainingEos(tok: TextTokenizer, config: { eosTokenIds: readonly number[] }): number {
  return tok.eosTokenIds[0] ?? config.eosTokenIds[0] ?? 0;
}

export async function runTraining(
  gpu: Gpu, model: LoadedModel<LoraBank>, tok: TextTokenizer, eosId: number, o: TrainRunOptions,
  hooks: TrainHooks, control: TrainControl,
): Promise<{ adapter: LoraAdapter; trainer: Trainer }> {
  const c: TrainConfig = { ...DEFAULT_TRAIN_CONFIG, ...(o.resume?.config ?? {}), ...o.config };
  validateTrainConfig(c);
  const data = buildExamples(tok, eosId, o, c);
  // The trainer takes its slot in the bank when made and frees it (and what it allocated) if making it fails.
  const trainer = new Trainer(gpu, model, o.name, c, data, o.baseModel, o.resume, o.baseFingerprint);
  const adapter = await runAndKeep(trainer, model.lora, o.resume?.step ?? 0, hooks, control);
  return { adapter, trainer };
}

/** What runAndKeep needs of a run: the LoRA trainer's and the preference trainer's shape. */
interface AdapterRun<C, H> {
  run(hooks: H, control: TrainControl): Promise<LoraAdapter>;
  checkpoint(): Promise<C>;
  destroy(): void;
  readonly stepsDone: number;
  readonly lastCheckpointStep: number;
}

/**
 * Runs a made trainer to its end or a stop, takes a last checkpoint (so a stopped run can be continued), frees the
 * graph and the training slot whatever happened, and keeps the result: rebuilt in the bank from the CPU copy, so it
 * serves inference with its trained values.
 */
export async function runAndKeep<C, H extends { onCheckpoint?: (c: C) => void | Promise<void> }>(
  trainer: AdapterRun<C, H>, bank: LoraBank, resumedAt: number, hooks: H, control: TrainControl,
): Promise<LoraAdapter> {
  let adapter: LoraAdapter;
  try {
    adapter = await trainer.run(hooks, control);
    if (hooks.onCheckpoint && trainer.stepsDone > resumedAt && trainer.lastCheckpointStep !== trainer.stepsDone) await hooks.onCheckpoint(await trainer.checkpoint());
  } finally {
    trainer.destroy();
  }
  bank.add(adapter);
  return adapter;
}
