// Training a reward model on our engine: LoRA on the loaded base plus a scalar head on the last token, on preference
// pairs, with the pairwise loss (kernels/train/reward-head.ts). The loop is the language-model trainer's: seeded epochs
// of micro-batches (here `microBatch` pairs, i.e. 2 x microBatch sequences), gradient accumulation, the same learning
// rate schedule, clipping and AdamW, validation every `evalEvery` steps, stop and pause; it reports the same step
// metrics, plus the fraction of pairs the model orders right (accuracy), so the Train view's live view serves both.
// There are no checkpoints: a reward run is short, and stopping keeps what was trained so far.

import { lengthBucket, shuffled } from '../data/batches.js';
import { InvalidArgumentError, NonFiniteError } from '../errors.js';
import type { Gpu } from '../gpu/device.js';
import type { LoraBank } from '../lora/bank.js';
import type { LoraAdapter } from '../lora/peft.js';
import type { LoadedModel } from '../model/loaded.js';
import { MAX_REWARD_BATCH } from '../kernels/train/reward-head.js';
import type { PairExample } from '../reward/pairs.js';
import { Rng } from '../util/rng.js';
import { validateTrainConfig, type TrainConfig } from './train-config.js';
import { runLoop, type History, type Objective, type StepMetrics, type TrainControl } from './loop.js';
import { initAdapter } from './init.js';
import { MASKED, TrainStep, type RewardBatch } from './step.js';

/** A reward model as trained here: the LoRA adapter (task SEQ_CLS) and the head (hidden size floats). */
export interface RewardAdapter {
  adapter: LoraAdapter;
  head: Float32Array;
}

export interface RewardStepMetrics extends StepMetrics {
  /** Fraction of the step's pairs whose chosen answer got the higher reward (a tie counts half). */
  accuracy: number;
}

export interface RewardHooks {
  onStep?: (m: RewardStepMetrics) => void;
  onEval?: (step: number, loss: number, accuracy: number) => void;
}

export interface PairScores {
  loss: number;
  accuracy: number;
  pairs: number;
}

/** 1 when the chosen answer's reward is higher, 0 when lower, 1/2 for a tie (a coin flip: chance is 50%). */
const ordered = (chosen: number, rejected: number) => (chosen > rejected ? 1 : chosen === rejected ? 0.5 : 0);

/** The head as transformers initializes a classifier's score layer: normal(0, 0.02), seeded. */
export function initHead(D: number, seed: number): Float32Array {
  const rng = new Rng(seed ^ 0x4ead);
  return Float32Array.from({ length: D }, () => 0.02 * rng.normal());
}

/** Pairs -> a reward batch of 2 x B sequences of `T` tokens (padding pairs get MASKED ends). */
export function rewardBatch(pairs: PairExample[], B: number, T: number): RewardBatch & { realTokens: number } {
  const tokens = new Uint32Array(2 * B * T);
  const ends = new Uint32Array(2 * B).fill(MASKED);
  let realTokens = 0;
  pairs.forEach((p, i) => {
    for (const [k, ids] of [p.chosen, p.rejected].entries()) {
      const b = 2 * i + k;
      const n = Math.min(ids.length, T);
      tokens.set(ids.slice(0, n), b * T);
      ends[b] = b * T + n - 1;
      realTokens += n;
    }
  });
  return { tokens, ends, realTokens };
}

export class RewardTrainer {
  readonly step: TrainStep;
  readonly history: History & { accuracy: [number, number][] } = { train: [], validation: [], accuracy: [] };
  readonly totalSteps: number;
  readonly seqLen: number;
  #done = 0;
  #epoch = 0;
  #cursor = 0;
  #elapsedMs = 0;
  #order: PairExample[];

  constructor(
    private readonly gpu: Gpu, model: LoadedModel<LoraBank>, readonly name: string, readonly config: TrainConfig,
    private readonly data: { train: PairExample[]; validation: PairExample[] }, baseModel: string | null,
  ) {
    validateTrainConfig(config);
    if (data.train.length === 0) throw new InvalidArgumentError('There are no training pairs: give comparison data with at least one pair, or lower the validation fraction.');
    if (2 * config.microBatch > MAX_REWARD_BATCH) throw new InvalidArgumentError(`A reward model trains on at most ${MAX_REWARD_BATCH / 2} pairs a micro-step: lower the micro-batch (now ${config.microBatch}).`, { field: 'microBatch' });
    const adapter = initAdapter(name, model.config, config, baseModel);
    adapter.config.taskType = 'SEQ_CLS';
    const all = [...data.train, ...data.validation];
    this.seqLen = Math.min(config.cutoff, Math.max(...all.map((p) => Math.max(p.chosen.length, p.rejected.length))));
    this.step = new TrainStep(gpu, model, adapter, config, { batch: 2 * config.microBatch, seqLen: this.seqLen }, initHead(model.config.hiddenSize, config.seed));
    this.#order = shuffled(data.train, config.seed * 1000);
    const perEpoch = Math.ceil(Math.ceil(data.train.length / config.microBatch) / config.gradAccumulation);
    this.totalSteps = config.steps > 0 ? config.steps : Math.max(1, Math.round(config.epochs * perEpoch));
  }

  get stepsDone(): number {
    return this.#done;
  }

  #nextPairs(): PairExample[] {
    if (this.#cursor >= this.#order.length) {
      this.#epoch++;
      this.#cursor = 0;
      this.#order = shuffled(this.data.train, this.config.seed * 1000 + this.#epoch);
    }
    const out = this.#order.slice(this.#cursor, this.#cursor + this.config.microBatch);
    this.#cursor += out.length;
    return out;
  }

  /** A micro-batch at the smallest length bucket its sequences fit. */
  #batch(pairs: PairExample[]) {
    const longest = Math.max(1, ...pairs.map((p) => Math.max(p.chosen.length, p.rejected.length)));
    return rewardBatch(pairs, this.config.microBatch, lengthBucket(Math.min(longest, this.seqLen), this.seqLen));
  }

  /** Mean pair loss and accuracy of the model as it is over `pairs` (forward only). */
  async scorePairs(pairs: PairExample[]): Promise<PairScores> {
    let loss = 0;
    let right = 0;
    for (let i = 0; i < pairs.length; i += this.config.microBatch) {
      const chunk = pairs.slice(i, i + this.config.microBatch);
      const r = await this.step.rewardMicro(this.#batch(chunk), 0, 0, false);
      chunk.forEach((_, p) => {
        loss += r.pairLosses[p];
        right += ordered(r.rewards[2 * p], r.rewards[2 * p + 1]);
      });
    }
    return { loss: pairs.length ? loss / pairs.length : NaN, accuracy: pairs.length ? right / pairs.length : NaN, pairs: pairs.length };
  }

  /** Runs until `totalSteps`, a stop, or an error; returns the reward model as trained so far. */
  async run(hooks: RewardHooks = {}, control: TrainControl = {}): Promise<RewardAdapter> {
    const epochOf = () => this.#epoch;
    const objective: Objective<PairExample[]> = {
      next: () => this.#nextPairs(),
      terms: (pairs) => pairs.length,
      micro: async (pairs, weight, seed) => {
        const batch = this.#batch(pairs);
        const r = await this.step.rewardMicro(batch, weight, seed);
        let lossSum = 0;
        let right = 0;
        pairs.forEach((_, p) => {
          lossSum += r.pairLosses[p];
          right += ordered(r.rewards[2 * p], r.rewards[2 * p + 1]);
        });
        return { lossSum, count: pairs.length, realTokens: batch.realTokens, right };
      },
      validate: () => this.scorePairs(this.data.validation),
      diverged: (t, what) => new NonFiniteError(`Reward training diverged at step ${t}: the ${what}. The step was not applied. Lower the learning rate, or check the pairs.`, { step: t }),
      get epoch() { return epochOf(); },
    };
    const state = { done: this.#done, elapsedMs: this.#elapsedMs, history: this.history };
    try {
      await runLoop(this.gpu, this.step, this.config, objective, state, this.totalSteps, {
        onStep: (m) => hooks.onStep?.(m as RewardStepMetrics),
        onEval: (t, loss, accuracy) => hooks.onEval?.(t, loss, accuracy ?? NaN),
      }, control, this.totalSteps, this.data.validation.length > 0);
    } finally {
      this.#done = state.done;
      this.#elapsedMs = state.elapsedMs;
    }
    return { adapter: await this.step.syncAdapter(), head: await this.step.readHead() };
  }

  destroy(): void {
    this.step.destroy();
  }
}
