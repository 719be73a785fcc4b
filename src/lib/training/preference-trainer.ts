// Preference tuning (DPO, ORPO, SimPO) of a LoRA adapter on chosen/rejected pairs, on the one training loop: seeded
// epochs of micro-batches of pairs, gradient accumulation, the learning-rate schedule, clipping and AdamW, validation,
// checkpoints, pause, resume and stop, as for LoRA runs. A micro-step runs the batch's forward once to read each
// answer's summed log-probability (per-row losses), computes the objective and its dLoss/dlogp per sequence in float64
// (training/preference.ts), then runs forward and backward again with each row's cross-entropy gradient weighted by
// -dLoss/dlogp of its sequence: the gradient of the objective, exactly. DPO's reference log-probabilities are computed
// once per pair before the run (the base with the adapter off, or a frozen reference adapter): `referenceLogps`.

import { lengthBucket, shuffled } from '../data/batches.js';
import type { PreferenceExample } from '../data/preference-data.js';
import { InvalidArgumentError, NonFiniteError } from '../errors.js';
import type { Gpu } from '../gpu/device.js';
import type { LoraBank } from '../lora/bank.js';
import { writePeftAdapter, type LoraAdapter } from '../lora/peft.js';
import type { LoadedModel } from '../model/loaded.js';
import type { ModelRunner } from '../model/runner.js';
import { teacherForcedLoss } from '../eval/loss.js';
import { initAdapter } from './init.js';
import { runLoop, type History, type MicroResult, type Objective, type StepMetrics, type TrainControl } from './loop.js';
import { pairLoss, validatePreferenceConfig, type PreferenceConfig } from './preference.js';
import { checkStateFits, MASKED, TrainStep } from './step.js';
import { validateTrainConfig, type TrainConfig } from './train-config.js';
import type { Checkpoint } from './trainer.js';

/** A pair's reference log-probabilities (summed over each answer's tokens). */
export interface ReferenceLogps { chosen: number; rejected: number }

/** A preference run's checkpoint: a LoRA run's, with its objective. */
export type PreferenceCheckpoint = Checkpoint & { preference: NonNullable<Checkpoint['preference']> };

export interface PreferenceHooks {
  onStep?: (m: StepMetrics) => void;
  onEval?: (step: number, loss: number, metrics: Record<string, number>) => void;
  onCheckpoint?: (c: PreferenceCheckpoint) => void | Promise<void>;
}

/**
 * Each pair's reference log-probabilities: the answers scored teacher-forced by the runner (the engine's own scoring),
 * with the adapter in `loraSlot` at strength 1 (0: the base, adapter off). Uses the runner's KV slots 0 and 1.
 */
export async function referenceLogps(runner: ModelRunner, pairs: PreferenceExample[], loraSlot = 0, signal?: AbortSignal): Promise<ReferenceLogps[]> {
  const out: ReferenceLogps[] = [];
  const split = (e: PreferenceExample['chosen']) => [e.ids.slice(0, e.promptTokens), e.ids.slice(e.promptTokens)] as const;
  for (const p of pairs) {
    const [pc, ac] = split(p.chosen);
    const [pr, ar] = split(p.rejected);
    const col = { loraSlot, strength: 1 };
    const r = await teacherForcedLoss(runner, [pc, pr], [ac, ar], [col, col], signal);
    if (!r) throw new InvalidArgumentError('Computing the reference log-probabilities was stopped.');
    out.push({ chosen: -r[0].nll, rejected: -r[1].nll });
  }
  return out;
}

export interface PreferenceRunOptions {
  baseModel?: string | null;
  baseFingerprint?: string;
  resume?: PreferenceCheckpoint;
  /** DPO's reference adapter's name, recorded in checkpoints (null: the base). */
  referenceAdapter?: string | null;
  /** Tune this adapter further (an SFT adapter, as DPO usually follows SFT) instead of a fresh one: its rank and alpha are the config's. */
  initial?: LoraAdapter;
}

/** A copy of `a` under the run's name, checked against the run's rank and scaling (the trainer scales by the config's). */
function startingAdapter(name: string, a: LoraAdapter, c: TrainConfig): LoraAdapter {
  const scaling = c.useRslora ? c.alpha / Math.sqrt(c.rank) : c.alpha / c.rank;
  for (const p of a.modules.values()) {
    if (p.rank !== c.rank || Math.abs(p.scaling - scaling) > 1e-9 * scaling) {
      throw new InvalidArgumentError(`The adapter "${a.name}" has rank ${p.rank} and scaling ${p.scaling} on ${p.module} of layer ${p.layer}; this run trains rank ${c.rank} with alpha ${c.alpha}: set them to the adapter's.`, { field: 'rank' });
    }
  }
  const modules = new Map([...a.modules].map(([k, p]) => [k, { ...p, a: Float32Array.from(p.a), b: Float32Array.from(p.b) }]));
  return { ...a, name, modules };
}

interface Indexed { pair: PreferenceExample; ref: ReferenceLogps | null }

/** A micro-batch of pairs on the GPU: 2B sequences of T tokens. */
interface PairBatch { tokens: Uint32Array; labels: Uint32Array; T: number; realTokens: number }

export class PreferenceTrainer {
  readonly step: TrainStep;
  readonly history: History & { metrics: Record<string, [number, number][]> } = { train: [], validation: [], metrics: {} };
  readonly totalSteps: number;
  readonly seqLen: number;
  lastCheckpointStep = 0;
  #done = 0;
  #epoch = 0;
  #cursor = 0;
  #elapsedMs = 0;
  #order: number[];
  readonly #train: Indexed[];
  readonly #validation: Indexed[];

  readonly baseModel: string | null;
  readonly baseFingerprint?: string;
  readonly referenceAdapter: string | null;

  constructor(
    private readonly gpu: Gpu, model: LoadedModel<LoraBank>, readonly name: string, readonly config: TrainConfig, readonly preference: PreferenceConfig,
    data: { train: PreferenceExample[]; validation: PreferenceExample[] }, reference: { train: ReferenceLogps[]; validation: ReferenceLogps[] } | null,
    opts: PreferenceRunOptions = {},
  ) {
    validateTrainConfig(config);
    validatePreferenceConfig(preference);
    const { resume } = opts;
    this.baseModel = opts.baseModel ?? null;
    this.baseFingerprint = opts.baseFingerprint;
    this.referenceAdapter = opts.referenceAdapter ?? null;
    if (data.train.length === 0) throw new InvalidArgumentError('There are no training pairs: give preference data with at least one pair, or lower the validation fraction.');
    if (preference.objective === 'dpo' && (!reference || reference.train.length !== data.train.length || reference.validation.length !== data.validation.length)) {
      throw new InvalidArgumentError('DPO needs the reference log-probabilities of every pair (referenceLogps).');
    }
    const adapter = opts.initial ? startingAdapter(name, opts.initial, config) : initAdapter(name, model.config, config, this.baseModel);
    if (resume) checkStateFits(resume.state, adapter, model.config, config.rank);
    this.#train = data.train.map((pair, i) => ({ pair, ref: reference?.train[i] ?? null }));
    this.#validation = data.validation.map((pair, i) => ({ pair, ref: reference?.validation[i] ?? null }));
    const all = [...data.train, ...data.validation];
    this.seqLen = Math.min(config.cutoff, Math.max(...all.map((p) => Math.max(p.chosen.ids.length, p.rejected.ids.length))));
    this.step = new TrainStep(gpu, model, adapter, config, { batch: 2 * config.microBatch, seqLen: this.seqLen }, undefined, true);
    this.#order = this.#shuffle(0);
    const perEpoch = Math.ceil(Math.ceil(data.train.length / config.microBatch) / config.gradAccumulation);
    this.totalSteps = config.steps > 0 ? config.steps : Math.max(1, Math.round(config.epochs * perEpoch));
    if (resume) {
      try {
        this.step.loadState(resume.state);
      } catch (e) {
        this.step.destroy();
        throw e;
      }
      this.lastCheckpointStep = this.#done = resume.step;
      this.#epoch = resume.epoch;
      this.#cursor = resume.cursor;
      this.#elapsedMs = resume.elapsedMs;
      this.history.train.push(...resume.history.train);
      this.history.validation.push(...resume.history.validation);
      this.#order = this.#shuffle(this.#epoch);
    }
  }

  get stepsDone(): number {
    return this.#done;
  }

  #shuffle(epoch: number): number[] {
    return shuffled(this.#train.map((_, i) => i), this.config.seed * 1000 + epoch);
  }

  #next(): Indexed[] {
    if (this.#cursor >= this.#order.length) {
      this.#epoch++;
      this.#cursor = 0;
      this.#order = this.#shuffle(this.#epoch);
    }
    const out = this.#order.slice(this.#cursor, this.#cursor + this.config.microBatch).map((i) => this.#train[i]);
    this.#cursor += out.length;
    return out;
  }

  /** 2B sequences (2p chosen, 2p + 1 rejected) at the smallest length bucket they fit; padding rows masked. */
  #batch(pairs: Indexed[]): PairBatch {
    const B = 2 * this.config.microBatch;
    const longest = Math.max(1, ...pairs.map(({ pair }) => Math.max(pair.chosen.ids.length, pair.rejected.ids.length)));
    const T = lengthBucket(Math.min(longest, this.seqLen), this.seqLen);
    const tokens = new Uint32Array(B * T);
    const labels = new Uint32Array(B * T).fill(MASKED);
    let realTokens = 0;
    pairs.forEach(({ pair }, i) => [pair.chosen, pair.rejected].forEach((e, k) => {
      const row = (2 * i + k) * T;
      const n = Math.min(e.ids.length, T);
      tokens.set(e.ids.slice(0, n), row);
      for (let t = 0; t < n; t++) if (e.targets[t] >= 0) labels[row + t] = e.targets[t];
      realTokens += n;
    }));
    return { tokens, labels, T, realTokens };
  }

  /**
   * The objective over a micro-batch at the parameters as they are; with `weight`, the per-row gradient weights of
   * weight x the objective (its sum over the pairs). Returns the summed loss, its pairs, summed metrics and weights.
   */
  #objective(pairs: Indexed[], losses: Float32Array, batch: PairBatch, weight: number) {
    const T = batch.T;
    const seq = (s: number) => {
      let logp = 0;
      let n = 0;
      for (let t = 0; t < T; t++) if (batch.labels[s * T + t] !== MASKED) { logp -= losses[s * T + t]; n++; }
      return { logp, n };
    };
    const rowWeights = new Float32Array(batch.tokens.length);
    const setWeight = (s: number, w: number) => { for (let t = 0; t < T; t++) if (batch.labels[s * T + t] !== MASKED) rowWeights[s * T + t] += w; };
    let lossSum = 0;
    const metrics: Record<string, number> = {};
    let nllSum = 0;
    let chosenTokens = 0;
    pairs.forEach(({ ref }, i) => {
      const c = seq(2 * i);
      const r = seq(2 * i + 1);
      const l = pairLoss(this.preference, { chosen: c.logp, rejected: r.logp, chosenTokens: c.n, rejectedTokens: r.n, refChosen: ref?.chosen, refRejected: ref?.rejected });
      lossSum += l.loss;
      for (const [k, v] of Object.entries(l.metrics)) metrics[k] = (metrics[k] ?? 0) + v;
      // The row gradient is d(-log p)/dz times its weight; the objective's is dLoss/dlogp times d(log p)/dz.
      setWeight(2 * i, -weight * l.dChosen);
      setWeight(2 * i + 1, -weight * l.dRejected);
      nllSum -= c.logp;
      chosenTokens += c.n;
    });
    if (this.preference.objective === 'orpo' && chosenTokens > 0) {
      // ORPO's SFT term: the chosen answers' NLL, a mean over this micro-batch's chosen tokens (TRL's cross-entropy),
      // counted once per pair so that a step's loss is its micro-batches' mean.
      const nll = nllSum / chosenTokens;
      lossSum += pairs.length * nll;
      metrics.nll_loss = pairs.length * nll;
      pairs.forEach((_, i) => setWeight(2 * i, (weight * pairs.length) / chosenTokens));
    }
    return { lossSum, metrics, rowWeights };
  }

  async #micro(pairs: Indexed[], weight: number, seed: number): Promise<MicroResult> {
    const batch = this.#batch(pairs);
    const gpuBatch = { tokens: batch.tokens, labels: batch.labels };
    const losses = await this.step.rowLosses(gpuBatch, seed);
    const o = this.#objective(pairs, losses, batch, weight);
    await this.step.weightedMicro(gpuBatch, o.rowWeights, seed);
    return { lossSum: o.lossSum, count: pairs.length, realTokens: batch.realTokens, right: o.metrics['rewards/accuracies'], metrics: o.metrics };
  }

  /**
   * One micro-step on the training pairs `indices` (weight 1 / their count) without an optimizer step: the gradients
   * it leaves in the step (TrainStep.gradients) are the objective's. Tests and debugging.
   */
  async accumulate(indices: number[], seed = 0): Promise<MicroResult> {
    if (indices.length > this.config.microBatch) throw new InvalidArgumentError(`a micro-step takes at most ${this.config.microBatch} pairs`);
    return this.#micro(indices.map((i) => this.#train[i]), 1 / indices.length, seed);
  }

  /** The objective's mean loss and metrics over `which` pairs (the held-out ones by default): forward only. */
  async score(which: 'train' | 'validation' = 'validation'): Promise<{ loss: number; metrics: Record<string, number>; pairs: number }> {
    const set = which === 'train' ? this.#train : this.#validation;
    let loss = 0;
    const sums: Record<string, number> = {};
    for (let i = 0; i < set.length; i += this.config.microBatch) {
      const pairs = set.slice(i, i + this.config.microBatch);
      const batch = this.#batch(pairs);
      const o = this.#objective(pairs, await this.step.rowLosses({ tokens: batch.tokens, labels: batch.labels }), batch, 0);
      loss += o.lossSum;
      for (const [k, v] of Object.entries(o.metrics)) sums[k] = (sums[k] ?? 0) + v;
    }
    const n = set.length;
    return { loss: n ? loss / n : NaN, metrics: Object.fromEntries(Object.entries(sums).map(([k, v]) => [k, v / n])), pairs: n };
  }

  async checkpoint(): Promise<PreferenceCheckpoint> {
    this.lastCheckpointStep = this.#done;
    const adapter = await this.step.syncAdapter();
    return {
      peft: writePeftAdapter(adapter), totalSteps: this.totalSteps, preference: { ...this.preference, referenceAdapter: this.referenceAdapter },
      name: this.name, config: this.config, baseModel: this.baseModel, baseFingerprint: this.baseFingerprint, step: this.#done, epoch: this.#epoch, cursor: this.#cursor,
      elapsedMs: this.#elapsedMs, history: { train: [...this.history.train], validation: [...this.history.validation] },
      state: await this.step.saveState(),
    };
  }

  /** Runs until `totalSteps` (or `untilStep`), a stop, or an error; returns the adapter as trained so far. */
  async run(hooks: PreferenceHooks = {}, control: TrainControl = {}, untilStep = this.totalSteps): Promise<LoraAdapter> {
    const epochOf = () => this.#epoch;
    let lastEval: Record<string, number> = {};
    const objective: Objective<Indexed[]> = {
      next: () => this.#next(),
      terms: (pairs) => pairs.length,
      micro: (pairs, weight, seed) => this.#micro(pairs, weight, seed),
      validate: async () => {
        const s = await this.score();
        lastEval = s.metrics;
        return { loss: s.loss, accuracy: s.metrics['rewards/accuracies'] };
      },
      diverged: (t, what) => new NonFiniteError(`Preference training diverged at step ${t}: the ${what}. The step was not applied. Lower the learning rate or beta, or check the pairs.`, { step: t }),
      get epoch() { return epochOf(); },
    };
    const state = { done: this.#done, elapsedMs: this.#elapsedMs, history: this.history };
    try {
      await runLoop(this.gpu, this.step, this.config, objective, state, this.totalSteps, {
        onStep: (m) => {
          for (const [k, v] of Object.entries(m.metrics ?? {})) (this.history.metrics[k] ??= []).push([m.step, v]);
          hooks.onStep?.(m);
        },
        onEval: (t, loss) => hooks.onEval?.(t, loss, lastEval),
        afterStep: async (t) => {
          this.#done = state.done;
          this.#elapsedMs = state.elapsedMs;
          if (hooks.onCheckpoint && this.config.checkpointEvery > 0 && t % this.config.checkpointEvery === 0) await hooks.onCheckpoint(await this.checkpoint());
        },
      }, control, untilStep, this.#validation.length > 0);
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
