// Training as the Train view runs it: a LoRA adapter (instruction or preference tuning) or a reward model, its live
// metrics (loss, validation, learning rate, a reward model's accuracy, a preference run's TRL metrics), pause,
// resume and stop, the saved runs to continue, and the dataset preview and memory estimate shown before a run starts.

import type { CheckpointSummary, DatasetSource } from '../lib/store/checkpoints.js';
import type { TrainConfig } from '../lib/training/train-config.js';
import type { TrainMemory } from '../lib/training/memory.js';
import type { DatasetPreview } from '../lib/training/session.js';
import type { StepMetrics } from '../lib/training/loop.js';
import type { TrainCallbacks } from '../lib/worker/client.js';
import type { TrainRequest } from '../lib/worker/protocol.js';
import type { RewardTrainRequest } from '../lib/worker/reward.js';
import type { RewardModelInfo } from '../lib/reward/onnx-reward.js';
import type { Host } from './host.ts';
import type { ShelfState } from './shelf.svelte.ts';

type Run<R> = { done: Promise<R>; pause: () => Promise<unknown>; resume: () => Promise<unknown>; stop: () => Promise<unknown> };

export class TrainingState {
  /** 'pausing': asked to pause, the step under way goes on; 'paused' once the worker says no step runs. */
  status = $state<'idle' | 'running' | 'pausing' | 'paused' | 'stopping'>('idle');
  /** How the last run ended (null while none has, or one is going). */
  outcome = $state<'done' | 'stopped' | 'failed' | null>(null);
  /** What the run in progress (or last) trains: a LoRA adapter, a reward model (steps carry pair accuracy), or an adapter by preference tuning (steps carry TRL's metrics). */
  kind = $state<'adapter' | 'reward' | 'preference'>('adapter');
  /** A preference run's metrics per step, by TRL's names (rewards/accuracies, rewards/margins, logps/chosen, ...). */
  prefMetrics = $state.raw<Record<string, [number, number][]>>({});
  metrics = $state.raw<StepMetrics | null>(null);
  /** A reward run's validation accuracy per evaluation. */
  valAccuracy = $state.raw<[number, number][]>([]);
  loss = $state.raw<[number, number][]>([]);
  valLoss = $state.raw<[number, number][]>([]);
  /** Learning rate per step of the run in progress (or last). */
  lr = $state.raw<[number, number][]>([]);
  /** The name of the run in progress (or last). */
  run = $state('');
  lastCheckpoint = $state<number | null>(null);
  checkpoints = $state.raw<CheckpointSummary[]>([]);
  preview = $state.raw<DatasetPreview | null>(null);
  /** When the run in progress started (ms): the time before its first step is shown as its preparation. */
  startedAt = $state(0);
  #run: Run<unknown> | null = null;

  constructor(private readonly host: Host, private readonly shelf: ShelfState, private readonly rewardTrained: (info: RewardModelInfo) => void) {}

  async previewDataset(dataset: DatasetSource, format: 'alpaca' | 'chat'): Promise<void> {
    try {
      this.preview = await this.host.client.previewDataset(dataset, format);
      this.host.clearErrorOf('dataset'); // the data at fault was replaced by data that reads
    } catch (e) {
      this.preview = null;
      this.host.fail(e, 'train', 'dataset');
    }
  }

  /** GPU memory a training run with `config` would take beside the loaded model (null: no model, or bad settings). */
  async memory(config: Partial<TrainConfig>): Promise<TrainMemory | null> {
    if (!this.host.info) return null;
    return this.host.client.request('trainMemory', { config }).catch(() => null);
  }

  /** How many preference pairs a reward run's data holds (null: unknown, e.g. no file picked or it cannot be read). */
  async pairsAvailable(data: RewardTrainRequest['data']): Promise<number | null> {
    return this.host.client.request('rewardPairs', { data }).then((r) => r.available, () => null);
  }

  async refreshCheckpoints(): Promise<void> {
    try {
      this.checkpoints = await this.host.client.listCheckpoints();
    } catch (e) {
      this.host.fail(e, 'train');
    }
  }

  async train(req: TrainRequest): Promise<void> {
    const resumed = req.resumeFrom ? this.checkpoints.find((c) => c.name === req.resumeFrom) : undefined;
    const history = resumed && { ...resumed.history, lr: resumed.learningRates };
    const kind = req.preference || resumed?.objective ? 'preference' : 'adapter';
    await this.#training(req.resumeFrom ?? req.name, kind, history, (cb) => this.host.client.train(req, cb), (info, outcome) => {
      const pairs = info.pairs ? ` (${info.pairs.train} pairs${info.pairs.truncated ? `, ${info.pairs.truncated} cut to the cutoff: their prompts kept, their answers cut` : ''})` : '';
      this.host.announce(`Training ${outcome}: adapter ${info.name} is on the shelf${pairs}.`);
      this.shelf.put(info, { kind: 'kept', name: info.name });
    });
  }

  /** Trains a reward model (LoRA + score head) with the same live view; it becomes the loaded reward model. */
  async trainReward(req: RewardTrainRequest): Promise<void> {
    await this.#training(req.name, 'reward', undefined, (cb) => this.host.client.trainReward(req, cb), (r, outcome) => {
      this.rewardTrained(r.info);
      this.host.announce(`Reward training ${outcome}: ${r.info.label} (${r.pairs.train} pairs) is the loaded reward model and is kept in this browser.`);
    });
  }

  /** One training run (LoRA adapter or reward model): live metrics, pause, stop, and its outcome. */
  async #training<R>(
    name: string, kind: 'adapter' | 'reward' | 'preference', history: { train: [number, number][]; validation: [number, number][]; lr?: [number, number][] } | undefined,
    start: (cb: TrainCallbacks) => Run<R>, finished: (result: R, outcome: 'done' | 'stopped') => void,
  ): Promise<void> {
    if (!this.host.begin('train')) return;
    this.host.clearError();
    this.status = 'running';
    this.kind = kind;
    this.loss = history ? [...history.train] : [];
    this.valLoss = history ? [...history.validation] : [];
    this.valAccuracy = [];
    this.prefMetrics = {};
    this.metrics = null;
    this.outcome = null;
    this.lastCheckpoint = null;
    this.lr = history?.lr ? [...history.lr] : [];
    this.run = name;
    this.startedAt = Date.now();
    const run = start({
      onStep: (m) => {
        this.metrics = m;
        this.loss = [...this.loss, [m.step, m.trainLoss]];
        this.lr = [...this.lr, [m.step, m.learningRate]];
        if (m.metrics) {
          const next = { ...this.prefMetrics };
          for (const [k, v] of Object.entries(m.metrics)) next[k] = [...(next[k] ?? []), [m.step, v]];
          this.prefMetrics = next;
        }
      },
      onEval: (step, loss, accuracy) => {
        this.valLoss = [...this.valLoss, [step, loss]];
        if (accuracy !== undefined) this.valAccuracy = [...this.valAccuracy, [step, accuracy]];
      },
      onCheckpoint: (step) => { this.lastCheckpoint = step; void this.refreshCheckpoints(); },
      onPaused: () => {
        if (this.status !== 'pausing') return;
        this.status = 'paused';
        this.host.end('train'); // lent out: chats and comparisons run meanwhile (the worker lends the GPU too)
      },
    });
    this.#run = run;
    try {
      const result = await run.done;
      // status is changed by stop() while this awaits; a stop that came during the last step ends a whole run.
      const last = this.metrics as StepMetrics | null; // set by onStep while awaiting
      const whole = !!last && last.step >= last.totalSteps;
      this.outcome = (this.status as string) === 'stopping' && !whole ? 'stopped' : 'done';
      finished(result, this.outcome);
      this.host.end('train');
      this.host.keptChanged();
    } catch (e) {
      this.outcome = 'failed';
      this.host.fail(e, 'train');
    } finally {
      this.#run = null;
      this.status = 'idle';
      this.host.end('train');
      void this.refreshCheckpoints();
    }
  }

  /** Pauses a running run (it pauses once its step under way is done), or resumes a pausing or paused one. */
  async pause(): Promise<void> {
    if (!this.#run || this.status === 'stopping') return;
    const pause = this.status === 'running';
    // A paused run takes the GPU back to go on; while an answer it lent it to runs, Resume waits (Train.svelte).
    if (this.status === 'paused' && !this.host.begin('train')) return;
    this.status = pause ? 'pausing' : 'running';
    await (pause ? this.#run.pause() : this.#run.resume());
  }

  stop(): void {
    if (!this.#run) return;
    this.status = 'stopping';
    void this.#run.stop();
  }

  async deleteCheckpoint(name: string): Promise<void> {
    try {
      this.checkpoints = await this.host.client.deleteCheckpoint(name);
    } catch (e) {
      this.host.fail(e, 'train');
    }
  }
}
