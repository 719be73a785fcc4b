// Training settings, validated once. Defaults follow alpaca-lora (r 8, alpha 16, dropout 0.05, q_proj + v_proj,
// lr 3e-4, cutoff 256, warmup 100 steps), scaled down where a browser run needs it (micro-batch 4, batch 16).

import { InvalidArgumentError } from '../errors.js';
import { LORA_MODULES, type LoraModule } from '../lora/peft.js';

export interface TrainConfig {
  rank: number;
  alpha: number;
  dropout: number;
  useRslora: boolean;
  targetModules: LoraModule[];
  learningRate: number;
  /** Optimizer steps of linear warmup, then `schedule` decay to 0 at the last step. */
  warmupSteps: number;
  schedule: 'cosine' | 'linear' | 'constant';
  /** Total optimizer steps; when 0, `epochs` passes over the training set decide. */
  steps: number;
  epochs: number;
  /** Sequences per micro-step, and micro-steps per optimizer step. */
  microBatch: number;
  gradAccumulation: number;
  cutoff: number;
  maxGradNorm: number;
  weightDecay: number;
  beta1: number;
  beta2: number;
  eps: number;
  seed: number;
  trainOnInputs: boolean;
  validationFraction: number;
  /** Evaluate the validation loss every N optimizer steps (0: never). */
  evalEvery: number;
  /** Checkpoint every N optimizer steps (0: never). */
  checkpointEvery: number;
  /** 'length' groups examples of similar length into micro-batches; 'packed' concatenates them into full rows. */
  batching: 'length' | 'packed';
  /** A step whose loss or gradient norm is NaN/Inf: 'stop' ends the run with an error, 'skip' drops the step. */
  nonFinite: 'stop' | 'skip';
}

export const DEFAULT_TRAIN_CONFIG: TrainConfig = {
  rank: 8, alpha: 16, dropout: 0.05, useRslora: false, targetModules: ['q_proj', 'v_proj'],
  learningRate: 3e-4, warmupSteps: 100, schedule: 'cosine', steps: 0, epochs: 3,
  microBatch: 4, gradAccumulation: 4, cutoff: 256, maxGradNorm: 1, weightDecay: 0, beta1: 0.9, beta2: 0.999, eps: 1e-8,
  seed: 42, trainOnInputs: false, validationFraction: 0.05, evalEvery: 20, checkpointEvery: 50, batching: 'length', nonFinite: 'stop',
};

export function validateTrainConfig(c: TrainConfig): void {
  const bad = (m: string) => { throw new InvalidArgumentError(m); };
  const int = (v: number, lo: number, name: string) => { if (!(Number.isInteger(v) && v >= lo)) bad(`${name} ${v} is invalid: make sure it is an integer >= ${lo}`); };
  int(c.rank, 1, 'rank');
  if (c.rank > 64) bad(`rank ${c.rank} is invalid: make sure 1 <= rank <= 64`);
  if (!(c.alpha > 0)) bad(`alpha ${c.alpha} is invalid: make sure alpha > 0`);
  if (!(c.dropout >= 0 && c.dropout < 1)) bad(`dropout ${c.dropout} is invalid: make sure 0 <= dropout < 1`);
  if (!Array.isArray(c.targetModules) || c.targetModules.length === 0) bad('target modules are empty: pick at least one of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj');
  const unknown = c.targetModules.find((m) => !(LORA_MODULES as readonly string[]).includes(m));
  if (unknown !== undefined) bad(`target module ${JSON.stringify(unknown)} is not one of ${LORA_MODULES.join(', ')}`);
  if (!(c.learningRate > 0 && c.learningRate < 1)) bad(`learning rate ${c.learningRate} is invalid: make sure 0 < lr < 1`);
  int(c.warmupSteps, 0, 'warmup steps');
  int(c.steps, 0, 'steps');
  if (c.steps === 0 && !(c.epochs > 0)) bad('give steps or epochs: make sure one of them is > 0');
  int(c.microBatch, 1, 'micro-batch');
  int(c.gradAccumulation, 1, 'gradient accumulation');
  int(c.cutoff, 2, 'cutoff');
  int(c.evalEvery, 0, 'eval every');
  int(c.checkpointEvery, 0, 'checkpoint every');
  int(c.seed, 0, 'seed');
  if (c.seed > 0xffffffff) bad(`seed ${c.seed} is invalid: make sure 0 <= seed <= 4294967295`);
  if (!(c.epochs >= 0 && Number.isFinite(c.epochs))) bad(`epochs ${c.epochs} is invalid: make sure it is a number >= 0`);
  if (!['cosine', 'linear', 'constant'].includes(c.schedule)) bad(`schedule "${c.schedule}" is invalid: use cosine, linear or constant`);
  if (!['length', 'packed'].includes(c.batching)) bad(`batching "${c.batching}" is invalid: use length or packed`);
  if (!['stop', 'skip'].includes(c.nonFinite)) bad(`non-finite policy "${c.nonFinite}" is invalid: use stop or skip`);
  if (!(c.maxGradNorm >= 0 && Number.isFinite(c.maxGradNorm))) bad(`max grad norm ${c.maxGradNorm} is invalid: make sure it is >= 0 (0 turns clipping off)`);
  if (!(c.validationFraction >= 0 && c.validationFraction < 1)) bad(`validation fraction ${c.validationFraction} is invalid: make sure 0 <= it < 1`);
}

/**
 * Learning rate of optimizer step `t` (1-based) of `total`, as transformers' get_{cosine,linear}_schedule_with_warmup
 * computes it for step s = t - 1: s / warmup during warmup, then the decay over (s - warmup) / (total - warmup).
 */
export function learningRateAt(c: TrainConfig, t: number, total: number): number {
  const s = t - 1;
  if (s < c.warmupSteps) return (c.learningRate * s) / c.warmupSteps;
  if (c.schedule === 'constant') return c.learningRate;
  const progress = Math.min(1, (s - c.warmupSteps) / Math.max(1, total - c.warmupSteps));
  return c.schedule === 'cosine' ? c.learningRate * 0.5 * (1 + Math.cos(Math.PI * progress)) : c.learningRate * (1 - progress);
}
