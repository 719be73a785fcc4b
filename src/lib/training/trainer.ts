// The training loop: epochs of seeded micro-batches, gradient accumulation, the learning-rate schedule, validation,
// checkpoints (adapter + optimizer moments + step, epoch and cursor; every random choice derives from the seed and the
// step, so this is the whole RNG state), pause, resume and stop.

import { epochBatches, lengthBucket, narrowBatch, type MicroBatch } from '../data/batches.js';
import type { Example } from '../data/examples.js';
import type { Gpu } from '../gpu/device.js';
import { writePeftAdapter, type LoraAdapter } from '../lora/peft.js';
import type { LoadedModel } from '../model/loaded.js';
import type { LoraBank } from '../lora/bank.js';
import { validateTrainConfig, type TrainConfig } from './train-config.js';
import { runLoop, type History, type Objective, type StepMetrics, type TrainControl } from './loop.js';
import { initAdapter } from './init.js';
import { InvalidArgumentError, NonFiniteError } from '../errors.js';
import { checkStateFits, MASKED, TrainStep, type OptimizerState } from './step.js';
import type { PreferenceConfig } from './preference.js';

export interface Checkpoint {
  name: string;
  config: TrainConfig;
  baseModel: string | null;
  /** The base model's content fingerprint (absent in checkpoints from before it existed). */
  baseFingerprint?: string;
  step: number;
  epoch: number;
  cursor: number;
  elapsedMs: number;
  history: History;
  state: OptimizerState;
  /** The adapter at this step as PEFT files (loadable on its own, like any adapter). */
  peft: { config: string; safetensors: Uint8Array };
  totalSteps: number;
  /** A preference run's objective and settings, and DPO's reference adapter (null: the base). */
  preference?: PreferenceConfig & { referenceAdapter: string | null };
}

export type { History, StepMetrics, TrainControl };

export interface TrainHooks {
  onStep?: (m: StepMetrics) => void;
  onEval?: (step: number, validationLoss: number) => void;
  onCheckpoint?: (c: Checkpoint) => void | Promise<void>;
}

export function toGpuBatch(b: MicroBatch) {
  return { tokens: Uint32Array.from(b.tokens), labels: Uint32Array.from(b.targets, (t) => (t < 0 ? MASKED : t)) };
}

export class Trainer {
  readonly step: TrainStep;
  readonly history: History = { train: [], validation: [] };
  readonly totalSteps: number;
  #epoch = 0;
  #cursor = 0;
  #done = 0;
  #elapsedMs = 0;
  #batches: MicroBatch[];

  constructor(
    private readonly gpu: Gpu, model: LoadedModel<LoraBank>, readonly name: string, readonly config: TrainConfig,
    private readonly data: { train: Example[]; validation: Example[] }, private readonly baseModel: string | null,
    resume?: Checkpoint, private readonly baseFingerprint?: string,
  ) {
    validateTrainConfig(config);
    if (data.train.length === 0) throw new InvalidArgumentError('The training set is empty: give a dataset with at least one record, or lower the validation fraction.');
    const adapter = initAdapter(name, model.config, config, baseModel);
    // A checkpoint is checked against this run before anything is allocated for it.
    if (resume) checkStateFits(resume.state, adapter, model.config, config.rank);
    const T = Math.min(config.cutoff, Math.max(...data.train.map((e) => e.ids.length), ...data.validation.map((e) => e.ids.length)));
    this.step = new TrainStep(gpu, model, adapter, config, { batch: config.microBatch, seqLen: T });
    this.#batches = this.#epochBatches(0);
    const perEpoch = Math.ceil(this.#batches.length / config.gradAccumulation);
    this.totalSteps = config.steps > 0 ? config.steps : Math.max(1, Math.round(config.epochs * perEpoch));
    if (resume) {
      this.lastCheckpointStep = resume.step;
      // A checkpoint that does not fit this model frees the step again: the shelf and the memory are as before.
      try {
        this.step.loadState(resume.state);
      } catch (e) {
        this.step.destroy();
        throw e;
      }
      this.#done = resume.step;
      this.#epoch = resume.epoch;
      this.#cursor = resume.cursor;
      this.#elapsedMs = resume.elapsedMs;
      this.history.train.push(...resume.history.train);
      this.history.validation.push(...resume.history.validation);
      this.#batches = this.#epochBatches(this.#epoch);
    }
  }

  /** The longest sequence a micro-batch can have (the longest example, at most the cutoff). */
  get seqLen(): number {
    return this.step.shape.seqLen;
  }

  /** A batch padded only to its length bucket, so short batches run a smaller graph. */
  #fit(b: MicroBatch): MicroBatch {
    return narrowBatch(b, this.config.microBatch, this.seqLen, lengthBucket(Math.max(1, ...b.rowLengths), this.seqLen));
  }

  get stepsDone(): number {
    return this.#done;
  }

  #epochBatches(epoch: number): MicroBatch[] {
    return epochBatches(this.data.train, this.config.microBatch, this.seqLen, this.config.seed, epoch, this.config.batching);
  }

  #nextBatch(): MicroBatch {
    if (this.#cursor >= this.#batches.length) {
      this.#epoch++;
      this.#cursor = 0;
      this.#batches = this.#epochBatches(this.#epoch);
    }
    return this.#fit(this.#batches[this.#cursor++]);
  }

  /** Mean loss over the validation set (all of it, in micro-batches). */
  async validate(): Promise<number> {
    const batches = epochBatches(this.data.validation, this.config.microBatch, this.seqLen, this.config.seed, -1, 'length');
    let sum = 0;
    let n = 0;
    for (const b of batches) {
      const r = await this.step.evaluate(toGpuBatch(this.#fit(b)));
      sum += r.lossSum;
      n += r.tokens;
    }
    return n ? sum / n : NaN;
  }

  /** The step of the last checkpoint taken (0: none yet). */
  lastCheckpointStep = 0;

  async checkpoint(): Promise<Checkpoint> {
    this.lastCheckpointStep = this.#done;
    const adapter = await this.step.syncAdapter();
    return {
      peft: writePeftAdapter(adapter), totalSteps: this.totalSteps,
      name: this.name, config: this.config, baseModel: this.baseModel, baseFingerprint: this.baseFingerprint, step: this.#done, epoch: this.#epoch, cursor: this.#cursor,
      elapsedMs: this.#elapsedMs, history: { train: [...this.history.train], validation: [...this.history.validation] },
      state: await this.step.saveState(),
    };
  }

  /** Runs until `totalSteps` (or `untilStep`), a stop, or an error. Returns the adapter as trained so far. */
  async run(hooks: TrainHooks = {}, control: TrainControl = {}, untilStep = this.totalSteps): Promise<LoraAdapter> {
    const c = this.config;
    const state = { done: this.#done, elapsedMs: this.#elapsedMs, history: this.history };
    const epochOf = () => this.#epoch;
    const objective: Objective<MicroBatch> = {
      next: () => this.#nextBatch(),
      terms: (b) => b.targets.reduce((k, x) => k + (x >= 0 ? 1 : 0), 0),
      micro: async (b, weight, seed) => {
        const r = await this.step.micro(toGpuBatch(b), weight, seed);
        return { lossSum: r.lossSum, count: r.tokens, realTokens: b.realTokens };
      },
      validate: async () => ({ loss: await this.validate() }),
      diverged: (t, what) => new NonFiniteError(
        `Training diverged at step ${t}: the ${what}. The step was not applied` +
          `${this.lastCheckpointStep > 0 ? `; the last good checkpoint (step ${this.lastCheckpointStep}) is kept` : ''}. Lower the learning rate, or check the data and the base model.`,
        { step: t, what, lastCheckpointStep: this.lastCheckpointStep },
      ),
      get epoch() { return epochOf(); },
    };
    try {
      await runLoop(this.gpu, this.step, c, objective, state, this.totalSteps, {
        onStep: hooks.onStep,
        onEval: hooks.onEval,
        afterStep: async (t) => {
          this.#done = state.done;
          this.#elapsedMs = state.elapsedMs;
          if (hooks.onCheckpoint && c.checkpointEvery > 0 && t % c.checkpointEvery === 0) await hooks.onCheckpoint(await this.checkpoint());
        },
      }, control, untilStep, this.data.validation.length > 0);
    } finally {
      this.#done = state.done;
      this.#elapsedMs = state.elapsedMs;
    }
    return this.step.syncAdapter();
  }

  destroy(): void {
    this.step.destroy();
  }
}
