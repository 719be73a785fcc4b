// A run's settings in the names the cluster trainers use: PEFT's LoraConfig, transformers' TrainingArguments (as
// TRL's SFTConfig extends them) and Axolotl's config keys. One mapping, read by every file the recipe writes, so
// the TRL script, the Axolotl YAML and the accelerate configs cannot disagree with each other or with the run.

import type { TrainConfig } from '../training/train-config.js';

export interface RecipeRun {
  /** The run's name (its adapter's name on the shelf). */
  name: string;
  /** The base model it was trained on: a Hugging Face repo id, or the label of a local model. */
  baseModel: string;
  /** The content fingerprint of those weights (LoRA Lab's; says which snapshot was used). */
  baseFingerprint?: string;
  config: TrainConfig;
  format: 'alpaca' | 'chat';
  /** The optimizer steps the run takes (from its steps or epochs over its examples). */
  totalSteps: number;
  /** Where its data came from: the file's name, and how many records were used. */
  dataFile: string;
  maxRecords?: number;
  examples: { train: number; validation: number };
}

/** transformers' name of each schedule (ours always warm up linearly first). */
const SCHEDULERS: Record<TrainConfig['schedule'], string> = { cosine: 'cosine', linear: 'linear', constant: 'constant_with_warmup' };

/** PEFT's LoraConfig of the run. */
export function loraConfig(c: TrainConfig) {
  return { r: c.rank, lora_alpha: c.alpha, lora_dropout: c.dropout, target_modules: [...c.targetModules], use_rslora: c.useRslora, bias: 'none', task_type: 'CAUSAL_LM' };
}

/**
 * TrainingArguments of the run. max_steps is always given: the run took exactly totalSteps optimizer steps, and a
 * trainer counting epochs over a differently shuffled loader could round them otherwise.
 */
export function trainingArguments(run: RecipeRun) {
  const c = run.config;
  return {
    learning_rate: c.learningRate,
    lr_scheduler_type: SCHEDULERS[c.schedule],
    warmup_steps: c.warmupSteps,
    max_steps: run.totalSteps,
    num_train_epochs: c.steps > 0 ? undefined : c.epochs,
    per_device_train_batch_size: c.microBatch,
    per_device_eval_batch_size: c.microBatch,
    gradient_accumulation_steps: c.gradAccumulation,
    max_grad_norm: c.maxGradNorm,
    weight_decay: c.weightDecay,
    adam_beta1: c.beta1,
    adam_beta2: c.beta2,
    adam_epsilon: c.eps,
    optim: 'adamw_torch',
    seed: c.seed,
    data_seed: c.seed,
    eval_strategy: run.examples.validation > 0 && c.evalEvery > 0 ? 'steps' : 'no',
    eval_steps: c.evalEvery > 0 ? c.evalEvery : undefined,
    save_strategy: c.checkpointEvery > 0 ? 'steps' : 'no',
    save_steps: c.checkpointEvery > 0 ? c.checkpointEvery : undefined,
    logging_steps: 1,
  };
}

/** SFTConfig's own settings: the cutoff, packing, and loss on the learned tokens only (the mask in the data). */
export function sftArguments(run: RecipeRun) {
  return { max_length: run.config.cutoff, packing: run.config.batching === 'packed', completion_only_loss: true };
}

/** Everything the TRL script reads, as JSON. */
export function runSettings(run: RecipeRun) {
  return {
    run: run.name, base_model: run.baseModel, base_fingerprint: run.baseFingerprint ?? null, format: run.format,
    data: { file: run.dataFile, max_records: run.maxRecords ?? null, train_examples: run.examples.train, validation_examples: run.examples.validation },
    lora: loraConfig(run.config),
    training: trainingArguments(run),
    sft: sftArguments(run),
  };
}
