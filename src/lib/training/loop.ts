// The one training loop, whatever is trained: optimizer steps of `gradAccumulation` micro-batches, the learning-rate
// schedule, clipping and AdamW (TrainStep.optimizerStep), the non-finite policy, step metrics, validation every
// `evalEvery` steps, pause and stop. What is learned comes from an Objective: the language model's next-token loss
// (trainer.ts), a reward model's pairwise loss (reward-trainer.ts), and later preference losses.

import { NonFiniteError } from '../errors.js';
import type { Gpu } from '../gpu/device.js';
import { pcgHash } from '../util/hash.js';
import { learningRateAt, type TrainConfig } from './train-config.js';
import type { TrainStep } from './step.js';

export interface StepMetrics {
  step: number;
  totalSteps: number;
  epoch: number;
  trainLoss: number;
  learningRate: number;
  gradNorm: number;
  tokensPerSecond: number;
  elapsedMs: number;
  etaMs: number;
  gpuBytes: number;
  /** The step's loss or gradient norm was not finite and `nonFinite` is 'skip': no update was made. */
  skipped: boolean;
  /** A reward model's share of the step's pairs ordered right (a tie counts half). */
  accuracy?: number;
  /** A preference objective's logged metrics (TRL's names), means over the step's pairs. */
  metrics?: Record<string, number>;
}

export interface History {
  train: [number, number][];
  validation: [number, number][];
}

export interface TrainControl {
  signal?: AbortSignal;
  /** Awaited between optimizer steps; resolves when the run may go on. */
  waitWhilePaused?: () => Promise<void>;
}

/** What one micro-batch gave: its summed loss over `count` loss terms (tokens, pairs), and what it scored right. */
export interface MicroResult {
  lossSum: number;
  count: number;
  /** Tokens that were not padding (for tokens per second). */
  realTokens: number;
  /** Pairs ordered right (reward models). */
  right?: number;
  /** Sums over the micro-batch's loss terms of metrics the step reports as means (preference objectives). */
  metrics?: Record<string, number>;
}

/** What a run learns: its micro-batches, their loss, and its validation. */
export interface Objective<B> {
  /** The next micro-batch of the epoch (a new epoch starts when one runs out). */
  next(): B;
  /** Loss terms of a micro-batch, known before running it (labelled tokens, pairs): the step's loss is their mean. */
  terms(b: B): number;
  /** Forward, loss and backward of one micro-batch, gradients scaled by `weight` (1 / the step's terms). */
  micro(b: B, weight: number, seed: number): Promise<MicroResult>;
  /** The loss (and a reward model's accuracy) on the held-out set. */
  validate(): Promise<{ loss: number; accuracy?: number }>;
  /** The error for a step that diverged under nonFinite 'stop'. */
  diverged(step: number, what: string): NonFiniteError;
  /** The epoch the data cursor is in. */
  readonly epoch: number;
}

export interface LoopHooks {
  onStep?: (m: StepMetrics) => void;
  onEval?: (step: number, loss: number, accuracy?: number) => void;
  /** After each optimizer step and its validation (checkpoints). */
  afterStep?: (step: number) => Promise<void> | void;
}

/** Where a run stands: its step, its time and its history (a checkpoint restores these). */
export interface LoopState {
  done: number;
  elapsedMs: number;
  history: History & { accuracy?: [number, number][] };
}

export async function runLoop<B>(
  gpu: Gpu, step: TrainStep, c: TrainConfig, objective: Objective<B>, state: LoopState, totalSteps: number,
  hooks: LoopHooks, control: TrainControl, untilStep = totalSteps, hasValidation = true,
): Promise<void> {
  while (state.done < Math.min(untilStep, totalSteps)) {
    if (control.signal?.aborted) break;
    await control.waitWhilePaused?.();
    if (control.signal?.aborted) break;
    const t0 = performance.now();
    const t = state.done + 1;
    const micro = Array.from({ length: c.gradAccumulation }, () => objective.next());
    const terms = micro.reduce((n, b) => n + objective.terms(b), 0);
    let lossSum = 0;
    let count = 0;
    let real = 0;
    let right = 0;
    const sums: Record<string, number> = {};
    for (let i = 0; i < micro.length; i++) {
      const r = await objective.micro(micro[i], terms ? 1 / terms : 0, pcgHash(c.seed, t, i));
      lossSum += r.lossSum;
      count += r.count;
      real += r.realTokens;
      right += r.right ?? 0;
      for (const [k, v] of Object.entries(r.metrics ?? {})) sums[k] = (sums[k] ?? 0) + v;
    }
    const metrics = Object.keys(sums).length ? Object.fromEntries(Object.entries(sums).map(([k, v]) => [k, count ? v / count : NaN])) : undefined;
    const lr = learningRateAt(c, t, totalSteps);
    const trainLoss = count ? lossSum / count : NaN;
    const lossBad = count > 0 && !Number.isFinite(trainLoss);
    // A non-finite loss or gradient norm never reaches the parameters: the GPU drops the step's gradients.
    const { gradNorm, applied } = await step.optimizerStep(t, lr, lossBad);
    const skipped = lossBad || !applied;
    if (skipped && c.nonFinite === 'stop') throw objective.diverged(t, lossBad ? `loss is ${trainLoss}` : `gradient norm is ${gradNorm}`);
    state.done = t;
    const ms = performance.now() - t0;
    state.elapsedMs += ms;
    state.history.train.push([t, trainLoss]);
    hooks.onStep?.({
      step: t, totalSteps, epoch: objective.epoch, trainLoss, learningRate: lr, gradNorm,
      tokensPerSecond: real / (ms / 1000), elapsedMs: state.elapsedMs, etaMs: (state.elapsedMs / t) * (totalSteps - t),
      gpuBytes: gpu.allocatedBytes, skipped, ...(state.history.accuracy ? { accuracy: count ? right / count : NaN } : {}), ...(metrics ? { metrics } : {}),
    });
    if (c.evalEvery > 0 && hasValidation && (t % c.evalEvery === 0 || t === totalSteps)) {
      const v = await objective.validate();
      state.history.validation.push([t, v.loss]);
      if (v.accuracy !== undefined) state.history.accuracy?.push([t, v.accuracy]);
      hooks.onEval?.(t, v.loss, v.accuracy);
    }
    await hooks.afterStep?.(t);
  }
}
