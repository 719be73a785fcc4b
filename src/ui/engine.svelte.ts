// Reactive state of the engine worker for the UI: owns the EngineClient, exposes status, load progress, model info,
// the streamed answer and its timings. Components read these fields and call the methods; only this file talks to
// the worker.

import type { AdapterInfo, ChatRequest, ChatResult, CompareColumn, GenerateRequest, GenerateResult, ModelInfo } from '../lib/engine.js';
import type { ModelSource } from '../lib/hub/source.js';
import type { LoadProgress } from '../lib/model/load.js';
import { EngineClient, type TrainCallbacks } from '../lib/worker/client.js';
import { pickFolder, writeFolder } from './save-folder.js';
import type { TrainRequest } from '../lib/worker/protocol.js';
import type { RewardTrainRequest } from '../lib/worker/reward.js';
import type { CheckpointSummary, DatasetSource } from '../lib/store/checkpoints.js';
import type { DatasetPreview } from '../lib/training/session.js';
import type { StepMetrics } from '../lib/training/trainer.js';
import type { DownloadProgress } from '../lib/store/progress.js';
import type { KeptKind, StorageListing } from '../lib/worker/storage.js';
import type { KeptComparison } from '../lib/store/kept.js';
import { EvalState } from './eval.svelte.ts';
import { TeachState } from './teach.svelte.ts';
import type { TrainMemory } from '../lib/training/memory.js';
import type { TrainConfig } from '../lib/training/config.js';
import { WebllmState } from './webllm.svelte.ts';
import type { Ranked } from '../lib/reward/rank.js';
import type { Sample } from '../lib/reward/best-of.js';
import { persisted } from './persisted.svelte.ts';
import type { Precision } from '../lib/quant/precision.js';

export type Status = 'idle' | 'starting' | 'loading' | 'ready' | 'generating' | 'error';
/** What automation and assistive technology read off the root element (data-engine-state). */
export type EngineStateName = 'idle' | 'loading' | 'ready' | 'generating' | 'training' | 'error';

/** Where an error is shown: beside the panel or view whose action caused it ('general': at the top). */
export type ErrorPlace = 'general' | 'model' | 'adapter' | 'compare' | 'train' | 'evaluate' | 'storage';

export interface UiError {
  name: string;
  message: string;
  where: ErrorPlace;
  /** HTTP status of a failed download (401/403 ask for a token). */
  status?: number;
  /** The URL of a failed download; none for a file missing from a local folder. */
  url?: string;
  /** The input at fault, when the error names one ('token', 'name', …). */
  field?: string;
}

export class EngineState {
  status = $state<Status>('idle');
  adapter = $state<{ adapter: string; f16: boolean; hasF16Feature: boolean } | null>(null);
  info = $state.raw<ModelInfo | null>(null);
  progress = $state.raw<((LoadProgress | DownloadProgress) & { startedAt: number; at: number }) | null>(null);
  /** How the next model's weights are kept (the model panel's choice, kept in this browser). */
  readonly loadSettings = persisted<{ precision: Precision }>('load', { precision: 'auto' });
  /** The Playground's prompt: shared so a link can fill it and it survives switching views. */
  draft = $state('Give three tips for staying healthy.');
  /** The loaded model's source and each loaded adapter's, for "Copy link". */
  modelSource = $state.raw<ModelSource | null>(null);
  adapterSources = $state.raw<Map<string, ModelSource>>(new Map());
  storage = $state.raw<StorageListing | null>(null);
  /** navigator.storage.persist()'s answer: true when the browser will not evict what is kept. */
  persisted = $state<boolean | null>(null);
  /** The last thing worth announcing to screen readers (the ARIA live region). */
  announcement = $state('');
  output = $state('');
  result = $state.raw<GenerateResult | null>(null);
  firstTokenMs = $state<number | null>(null);
  tokensSoFar = $state(0);
  error = $state.raw<UiError | null>(null);
  adapters = $state.raw<AdapterInfo[]>([]);
  adapterBusy = $state(false);
  /** Comparison: one entry per column; pieces[i] is the text of token i. */
  columns = $state<{
    spec: CompareColumn; tokens: number[]; pieces: string[]; result: GenerateResult | null; savedTokens?: number;
    /** Live timing: when the comparison was sent, when this column's first token and its latest came. */
    sentAt?: number; firstAt?: number; at?: number;
  }[]>([]);
  #stopColumn: ((column: number) => void) | null = null;
  /** Best-of-n: each column's samples ranked by the reward model (replaces `columns` while shown). */
  ranked = $state.raw<{ specs: CompareColumn[]; columns: Ranked<Sample>[][]; rewardModel: string } | null>(null);
  bestOfProgress = $state.raw<{ done: number; total: number } | null>(null);
  // Training
  /** 'pausing': asked to pause, the step under way goes on; 'paused' once the worker says no step runs. */
  trainStatus = $state<'idle' | 'running' | 'pausing' | 'paused' | 'stopping'>('idle');
  /** How the last run ended (null while none has, or one is going). */
  trainOutcome = $state<'done' | 'stopped' | 'failed' | null>(null);
  /** What the run in progress (or last) trains: a LoRA adapter, or a reward model (steps carry pair accuracy). */
  trainKind = $state<'adapter' | 'reward'>('adapter');
  trainMetrics = $state.raw<(StepMetrics & { accuracy?: number }) | null>(null);
  /** A reward run's validation accuracy per evaluation. */
  valAccuracy = $state.raw<[number, number][]>([]);
  trainLoss = $state.raw<[number, number][]>([]);
  valLoss = $state.raw<[number, number][]>([]);
  /** Learning rate per step of the run in progress (or last). */
  trainLr = $state.raw<[number, number][]>([]);
  /** The name of the run in progress (or last). */
  trainRun = $state('');
  lastCheckpoint = $state<number | null>(null);
  checkpoints = $state.raw<CheckpointSummary[]>([]);
  preview = $state.raw<DatasetPreview | null>(null);
  #train: { done: Promise<unknown>; pause: () => Promise<unknown>; resume: () => Promise<unknown>; stop: () => Promise<unknown> } | null = null;
  #client: EngineClient;
  #cancel: (() => void) | null = null;
  #started = 0;

  /** Evaluations and blind reviews. */
  readonly evaluation: EvalState;
  /** Teacher jobs: the loaded model writing a dataset. */
  readonly teaching: TeachState;
  /** web-llm, the second engine (its own worker), as an assistant for the teacher. */
  readonly webllm = new WebllmState();

  constructor() {
    this.#client = new EngineClient(() => new Worker(new URL('../../workers/engine.worker.ts', import.meta.url), { type: 'module', name: 'lora-lab-engine' }));
    this.evaluation = new EvalState(this.#client, (e) => this.#fail(e, 'evaluate'), download);
    this.teaching = new TeachState(this.#client, (e) => this.#fail(e, 'train'));
  }

  #fail(e: unknown, where: ErrorPlace = 'general'): void {
    const err = e as Error;
    const details = (err as { details?: { status?: unknown; url?: unknown; field?: unknown } }).details ?? {};
    const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
    this.error = {
      name: err.name ?? 'Error', message: err.message ?? String(e), where,
      status: typeof details.status === 'number' ? details.status : undefined, url: str(details.url), field: str(details.field),
    };
    // The worker died with its model and adapters; the next request starts a new one (set up as the last init).
    if (err.name === 'WorkerCrashedError') {
      this.info = null;
      this.adapters = [];
    }
    this.status = this.info ? 'ready' : 'error';
  }

  /** The current error when it belongs at `place`. */
  errorAt(place: ErrorPlace): UiError | null {
    return this.error?.where === place ? this.error : null;
  }

  get engineState(): EngineStateName {
    if (this.trainStatus !== 'idle') return 'training';
    if (this.evaluation.running) return 'generating';
    if (this.status === 'starting') return 'loading';
    if (this.status === 'error') return 'error';
    return this.status;
  }

  async start(hfEndpoint?: string): Promise<void> {
    this.status = 'starting';
    try {
      this.adapter = await this.#client.init(false, hfEndpoint);
      this.status = 'idle';
      void this.refreshCheckpoints();
      void this.refreshStorage();
    } catch (e) {
      this.#fail(e);
    }
  }

  /**
   * Loads a model as a transaction: the current model, its adapters and its source stay until the new one is ready
   * (the worker loads it beside the current one); a failure leaves them as they were, with the error.
   */
  async load(source: ModelSource): Promise<boolean> {
    this.error = null;
    this.status = 'loading';
    const startedAt = performance.now();
    this.progress = null;
    this.announcement = 'Loading the model…';
    try {
      const info = await this.#client.load(source, (p) => {
        this.progress = { ...p, startedAt, at: performance.now() };
      }, undefined, this.loadSettings.precision);
      this.info = info;
      this.adapters = [];
      this.adapterSources = new Map();
      this.modelSource = source;
      this.status = 'ready';
      this.announcement = `${this.info.label} is loaded and ready.`;
      // Something worth keeping was downloaded: ask the browser not to evict it (the answer shows on the Storage page).
      if ((source.kind === 'hf' || source.kind === 'url') && !this.persisted) void this.requestPersistence();
      void this.refreshStorage();
      return true;
    } catch (e) {
      this.#fail(e, 'model');
      this.announcement = `Loading failed: ${(this.error as UiError | null)?.message ?? ''}`;
      return false;
    }
  }

  async refreshStorage(): Promise<void> {
    try {
      this.storage = await this.#client.request('storageList', {});
      this.persisted = (await navigator.storage?.persisted?.()) ?? null;
    } catch (e) {
      // A browser without IndexedDB (some private windows) keeps nothing; the Storage page says so.
      if ((e as Error).name !== 'InvalidArgumentError') this.#fail(e, 'storage');
    }
  }

  /** Asks the browser not to evict what is kept; the answer is shown on the Storage page. */
  async requestPersistence(): Promise<void> {
    try {
      this.persisted = (await navigator.storage?.persist?.()) ?? false;
    } catch {
      this.persisted = false;
    }
  }

  async deleteKept(kind: KeptKind, id: string): Promise<void> {
    try {
      this.storage = await this.#client.request('deleteKept', { kind, id });
      if (kind === 'run') void this.refreshCheckpoints();
    } catch (e) {
      this.#fail(e, 'storage');
    }
  }

  async exportKept(kind: KeptKind, id: string, as?: 'json' | 'jsonl'): Promise<void> {
    try {
      const { name, blob } = await this.#client.request('exportKept', { kind, id, as });
      download(name, blob);
    } catch (e) {
      this.#fail(e, 'storage');
    }
  }

  async importFile(file: File, where: ErrorPlace = 'storage'): Promise<{ kind: KeptKind; id: string } | null> {
    this.error = null;
    try {
      const r = await this.#client.request('importFile', { file });
      await this.refreshStorage();
      this.announcement = `Imported ${file.name}.`;
      return r;
    } catch (e) {
      this.#fail(e, where);
      return null;
    }
  }

  /**
   * A dataset file the person picked, kept in this browser at once (so the Train form, a reload and later runs find
   * it); held in memory when it cannot be kept (no IndexedDB, or not a dataset: the preview then says what is wrong).
   */
  async keepDataset(file: File): Promise<DatasetSource> {
    try {
      const r = await this.#client.request('importFile', { file });
      void this.refreshStorage();
      if (r.kind === 'dataset') return { kind: 'kept', name: r.id };
    } catch {
      // falls through to the bytes in memory
    }
    return { kind: 'file', name: file.name, bytes: new Uint8Array(await file.arrayBuffer()) };
  }

  async setToken(token: string | null): Promise<void> {
    try {
      await this.#client.request('setToken', { token });
    } catch (e) {
      this.#fail(e, 'model');
    }
  }

  async generate(req: GenerateRequest): Promise<void> {
    if (this.status !== 'ready') return;
    this.error = null;
    this.output = '';
    this.result = null;
    this.firstTokenMs = null;
    this.tokensSoFar = 0;
    this.status = 'generating';
    this.#started = performance.now();
    const job = this.#client.generate(req, (text) => {
      if (this.firstTokenMs === null) this.firstTokenMs = performance.now() - this.#started;
      this.tokensSoFar++;
      this.output += text;
    });
    this.#cancel = job.cancel;
    try {
      this.result = await job.done;
      this.output = this.result.text;
      this.status = 'ready';
    } catch (e) {
      this.#fail(e);
    } finally {
      this.#cancel = null;
    }
  }

  /** Adds or replaces an adapter on the shelf. */
  #putAdapter(info: AdapterInfo): void {
    this.adapters = [...this.adapters.filter((a) => a.name !== info.name), info];
  }

  async loadAdapter(source: ModelSource, name?: string): Promise<void> {
    this.error = null;
    this.adapterBusy = true;
    try {
      const info = await this.#client.loadAdapter(source, name);
      this.#putAdapter(info);
      this.adapterSources = new Map(this.adapterSources).set(info.name, source.kind === 'files' ? { kind: 'kept', name: info.name } : source);
      this.announcement = `Adapter ${info.name} is loaded.`;
      void this.refreshStorage();
    } catch (e) {
      this.#fail(e, 'adapter');
    } finally {
      this.adapterBusy = false;
    }
  }

  async removeAdapter(name: string): Promise<void> {
    try {
      this.adapters = await this.#client.removeAdapter(name);
      const sources = new Map(this.adapterSources);
      sources.delete(name);
      this.adapterSources = sources;
    } catch (e) {
      this.#fail(e, 'adapter');
    }
  }

  /** Downloads the adapter as a .zip holding a PEFT folder (it loads back here and in PEFT). */
  async exportAdapter(name: string): Promise<void> {
    try {
      const f = await this.#client.request('exportAdapterZip', { name });
      download(f.name, f.blob);
    } catch (e) {
      this.#fail(e, 'adapter');
    }
  }

  /**
   * Writes the adapter's PEFT folder into a folder the person picks (File System Access, where the browser has it).
   * Returns the folder's name, or null when the dialog was cancelled or the writing failed (the error is shown).
   */
  async saveAdapterToFolder(name: string): Promise<string | null> {
    try {
      const parent = await pickFolder();
      if (!parent) return null;
      const f = await this.#client.request('exportAdapterFolder', { name });
      await writeFolder(parent, f.folder, f.files);
      this.announcement = `Adapter ${name} saved as the folder ${parent.name}/${f.folder}.`;
      return f.folder;
    } catch (e) {
      this.#fail(e, 'adapter');
      return null;
    }
  }

  /** An adapter .zip (PEFT folder inside) is kept, then loaded onto the shelf. */
  async loadAdapterZip(file: File): Promise<void> {
    const r = await this.importFile(file, 'adapter');
    if (r?.kind === 'adapter') await this.loadAdapter({ kind: 'kept', name: r.id }, r.id);
  }

  /** Downloads the base with the adapter merged in, as a .zip holding a model folder (it loads back as it is). */
  async exportMerged(name: string): Promise<void> {
    this.adapterBusy = true;
    try {
      const f = await this.#client.exportMerged(name, 1);
      download(f.name, f.blob);
    } catch (e) {
      this.#fail(e, 'adapter');
    } finally {
      this.adapterBusy = false;
    }
  }

  async compare(req: GenerateRequest, specs: CompareColumn[]): Promise<void> {
    if (this.status !== 'ready') return;
    this.error = null;
    this.ranked = null;
    const sentAt = performance.now();
    this.columns = specs.map((spec) => ({ spec, tokens: [], pieces: [], result: null, sentAt }));
    this.status = 'generating';
    const job = this.#client.compare(req, specs, (column, text, token) => {
      const c = this.columns[column];
      if (token >= 0) { c.tokens.push(token); c.pieces.push(text); } else if (c.pieces.length) c.pieces[c.pieces.length - 1] += text;
      c.at = performance.now();
      c.firstAt ??= c.at;
    });
    this.#cancel = job.cancel;
    this.#stopColumn = job.stopColumn;
    try {
      const results = await job.done;
      results.forEach((r, i) => { this.columns[i].result = r; });
      this.status = 'ready';
      // Every finished comparison is kept, to look at again later (Storage page), offline too.
      await this.#client.request('saveComparison', {
        savedAt: Date.now(), model: this.info?.label ?? '', prompt: req.prompt ?? '', settings: { ...req.sampling, maxNewTokens: req.maxNewTokens, format: req.format },
        columns: results.map((r, i) => ({ adapter: specs[i].adapter, strength: specs[i].strength, text: r.text, tokens: r.tokens.length })),
      }).catch(() => {});
      void this.refreshStorage();
    } catch (e) {
      this.#fail(e, 'compare');
    } finally {
      this.#cancel = null;
      this.#stopColumn = null;
    }
  }

  /** Runs (or resumes) an evaluation; the GPU is busy meanwhile, so generation and training wait. */
  async evaluate(req: Parameters<EvalState['start']>[0]): Promise<void> {
    if (this.status !== 'ready') return;
    this.error = null;
    this.status = 'generating';
    this.announcement = 'Evaluation started.';
    await this.evaluation.start(req);
    if (this.status === 'generating') this.status = 'ready';
    this.announcement = 'Evaluation finished.';
  }

  /** n samples per column, ranked by the loaded reward model: the paper's best-of-n, side by side. */
  async bestOf(req: GenerateRequest, specs: CompareColumn[], n: number): Promise<void> {
    if (this.status !== 'ready') return;
    this.error = null;
    this.columns = [];
    this.ranked = null;
    this.status = 'generating';
    this.bestOfProgress = { done: 0, total: specs.length * n };
    const job = this.#client.bestOf({ request: req, columns: specs, n }, (p) => { this.bestOfProgress = { done: p.done, total: p.total }; });
    this.#cancel = job.cancel;
    try {
      const r = await job.done;
      this.ranked = { specs, ...r };
    } catch (e) {
      this.#fail(e, 'compare');
    } finally {
      this.#cancel = null;
      this.bestOfProgress = null;
      if (this.status === 'generating') this.status = 'ready';
    }
  }

  /** GPU memory a training run with `config` would take beside the loaded model (null: no model, or bad settings). */
  async trainMemory(config: Partial<TrainConfig>): Promise<TrainMemory | null> {
    if (!this.info) return null;
    return this.#client.request('trainMemory', { config }).catch(() => null);
  }

  /** The loaded model (through an adapter, if picked) judges an evaluation's answer pairs; the GPU is busy meanwhile. */
  async judge(req: Parameters<EvalState['startJudge']>[0]): Promise<void> {
    if (this.status !== 'ready') return;
    this.error = null;
    this.status = 'generating';
    this.announcement = 'The judge started.';
    await this.evaluation.startJudge(req);
    if (this.status === 'generating') this.status = 'ready';
    this.announcement = 'The judge finished.';
  }

  /** The loaded model answers instructions into a new dataset (kept as it grows); the GPU is busy meanwhile. */
  async teach(req: Parameters<TeachState['start']>[0]): Promise<void> {
    if (this.status !== 'ready') return;
    this.error = null;
    this.status = 'generating';
    this.announcement = 'The teacher started.';
    await this.teaching.start(req);
    if (this.status === 'generating') this.status = 'ready';
    this.announcement = 'The teacher stopped.';
    void this.refreshStorage();
  }

  /** Shows a kept comparison's columns in the Compare view, as they were. */
  showComparison(c: KeptComparison): void {
    this.columns = c.columns.map((col) => ({ spec: { adapter: col.adapter, strength: col.strength }, tokens: [], pieces: [col.text], result: null, savedTokens: col.tokens }));
  }

  async previewDataset(dataset: DatasetSource, format: 'alpaca' | 'chat'): Promise<void> {
    try {
      this.preview = await this.#client.previewDataset(dataset, format);
    } catch (e) {
      this.preview = null;
      this.#fail(e, 'train');
    }
  }

  async refreshCheckpoints(): Promise<void> {
    try {
      this.checkpoints = await this.#client.listCheckpoints();
    } catch (e) {
      this.#fail(e, 'train');
    }
  }

  async train(req: TrainRequest): Promise<void> {
    const resumed = req.resumeFrom ? this.checkpoints.find((c) => c.name === req.resumeFrom) : undefined;
    await this.#training(req.resumeFrom ?? req.name, 'adapter', resumed?.history, (cb) => this.#client.train(req, cb), (info, outcome) => {
      this.announcement = `Training ${outcome}: adapter ${info.name} is on the shelf.`;
      this.#putAdapter(info);
      this.adapterSources = new Map(this.adapterSources).set(info.name, { kind: 'kept', name: info.name });
    });
  }

  /** Trains a reward model (LoRA + score head) with the same live view; it becomes the loaded reward model. */
  async trainReward(req: RewardTrainRequest): Promise<void> {
    await this.#training(req.name, 'reward', undefined, (cb) => this.#client.trainReward(req, cb), (r, outcome) => {
      this.evaluation.reward = r.info;
      this.announcement = `Reward training ${outcome}: ${r.info.label} (${r.pairs.train} pairs) is the loaded reward model and is kept in this browser.`;
    });
  }

  /** One training run (LoRA adapter or reward model): live metrics, pause, stop, and its outcome. */
  async #training<R>(
    name: string, kind: 'adapter' | 'reward', history: { train: [number, number][]; validation: [number, number][] } | undefined,
    start: (cb: TrainCallbacks) => { done: Promise<R>; pause: () => Promise<unknown>; resume: () => Promise<unknown>; stop: () => Promise<unknown> },
    finished: (result: R, outcome: 'done' | 'stopped') => void,
  ): Promise<void> {
    if (this.status !== 'ready') return;
    this.error = null;
    this.status = 'generating';
    this.trainStatus = 'running';
    this.trainKind = kind;
    this.trainLoss = history ? [...history.train] : [];
    this.valLoss = history ? [...history.validation] : [];
    this.valAccuracy = [];
    this.trainMetrics = null;
    this.trainOutcome = null;
    this.lastCheckpoint = null;
    this.trainLr = [];
    this.trainRun = name;
    const run = start({
      onStep: (m) => {
        this.trainMetrics = m;
        this.trainLoss = [...this.trainLoss, [m.step, m.trainLoss]];
        this.trainLr = [...this.trainLr, [m.step, m.learningRate]];
      },
      onEval: (step, loss, accuracy) => {
        this.valLoss = [...this.valLoss, [step, loss]];
        if (accuracy !== undefined) this.valAccuracy = [...this.valAccuracy, [step, accuracy]];
      },
      onCheckpoint: (step) => { this.lastCheckpoint = step; void this.refreshCheckpoints(); },
      onPaused: () => { if (this.trainStatus === 'pausing') this.trainStatus = 'paused'; },
    });
    this.#train = run;
    try {
      const result = await run.done;
      // trainStatus is changed by stopTraining() while this awaits; a stop that came during the last step ends a whole run.
      const last = this.trainMetrics as { step: number; totalSteps: number } | null; // set by onStep while awaiting
      const whole = !!last && last.step >= last.totalSteps;
      this.trainOutcome = (this.trainStatus as string) === 'stopping' && !whole ? 'stopped' : 'done';
      finished(result, this.trainOutcome);
      this.status = 'ready';
      void this.refreshStorage();
    } catch (e) {
      this.trainOutcome = 'failed';
      this.#fail(e, 'train');
    } finally {
      this.#train = null;
      this.trainStatus = 'idle';
      void this.refreshCheckpoints();
    }
  }

  /** Pauses a running run (it pauses once its step under way is done), or resumes a pausing or paused one. */
  async pauseTraining(): Promise<void> {
    if (!this.#train || this.trainStatus === 'stopping') return;
    const pause = this.trainStatus === 'running';
    this.trainStatus = pause ? 'pausing' : 'running';
    await (pause ? this.#train.pause() : this.#train.resume());
  }

  stopTraining(): void {
    if (!this.#train) return;
    this.trainStatus = 'stopping';
    void this.#train.stop();
  }

  async loadCheckpoint(name: string): Promise<void> {
    try {
      const info = await this.#client.loadCheckpointAdapter(name);
      this.#putAdapter(info);
    } catch (e) {
      this.#fail(e, 'train');
    }
  }

  async deleteCheckpoint(name: string): Promise<void> {
    try {
      this.checkpoints = await this.#client.deleteCheckpoint(name);
    } catch (e) {
      this.#fail(e, 'train');
    }
  }

  stop(): void {
    this.#cancel?.();
  }

  /** Ends one column of the running comparison; the others go on. */
  stopColumn(column: number): void {
    this.#stopColumn?.(column);
  }

  /**
   * A chat turn: streams the answer's text to `onText`; resolves with the result, or throws the typed error (the
   * chat view shows it next to the conversation, and offers what to do for a context overflow).
   */
  async chat(req: ChatRequest, onText: (text: string) => void): Promise<ChatResult> {
    if (this.status !== 'ready') throw new Error('The model is busy: wait for it, or stop what it is doing.');
    this.error = null;
    this.status = 'generating';
    this.announcement = 'Answering…';
    const job = this.#client.chat(req, (text) => onText(text));
    this.#cancel = job.cancel;
    try {
      const r = await job.done;
      this.announcement = `Answer done: ${r.tokens.length} tokens.`;
      return r;
    } finally {
      this.#cancel = null;
      this.status = this.info ? 'ready' : 'idle';
    }
  }
}

export function download(name: string, blob: Blob): void {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

/** Index of the first token where the columns' outputs differ (a column that ended counts), or -1. */
export function firstDivergence(columns: { tokens: number[] }[]): number {
  if (columns.length < 2) return -1;
  const longest = Math.max(...columns.map((c) => c.tokens.length));
  for (let i = 0; i < longest; i++) {
    const t = columns[0].tokens[i];
    if (columns.some((c) => c.tokens[i] !== t)) return i;
  }
  return -1;
}
