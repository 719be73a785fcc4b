// Reactive state of the engine worker for the UI: owns the EngineClient and the loaded model (status, load progress,
// model info), the one error panel and the GPU, which runs one job at a time. Each concern has its own state and its
// own status: the adapter shelf (shelf.svelte.ts), chat and comparison (generation.svelte.ts), training
// (training.svelte.ts), what is kept (storage.svelte.ts), evaluation and teaching. Components read their fields and
// call their methods; only these files talk to the worker.

import type { ModelInfo } from '../lib/engine.js';
import type { ModelSource } from '../lib/hub/source.js';
import type { LoadProgress } from '../lib/model/load.js';
import type { Precision } from '../lib/quant/precision.js';
import type { DownloadProgress } from '../lib/store/progress.js';
import { EngineClient } from '../lib/worker/client.js';
import { EvalState } from './eval.svelte.ts';
import { GenerationState } from './generation.svelte.ts';
import { download, type ErrorPlace, type GpuJob, type Host, type UiError } from './host.ts';
import { persisted } from './persisted.svelte.ts';
import { SharingState } from './sharing.svelte.ts';
import { ShelfState } from './shelf.svelte.ts';
import { StorageState } from './storage.svelte.ts';
import { TeachState } from './teach.svelte.ts';
import { TrainingState } from './training.svelte.ts';
import { WebllmState } from './webllm.svelte.ts';
import { DEMO_PROMPT } from './forms.svelte.ts';

export type { ErrorPlace, UiError };

/** The model's status; what the GPU is doing is `job`. */
export type Status = 'idle' | 'starting' | 'loading' | 'ready' | 'error';
/** What automation and assistive technology read off the root element (data-engine-state). */
export type EngineStateName = 'idle' | 'loading' | 'ready' | 'generating' | 'training' | 'error';

/** The jobs that may run while a training run is paused (and the run itself, to go on). */
const LENDABLE: readonly GpuJob[] = ['chat', 'compare', 'bestOf', 'train'];

export class EngineState implements Host {
  status = $state<Status>('idle');
  /** The job that holds the GPU (null: none). */
  job = $state<GpuJob | null>(null);
  /** The GPU the worker runs on, as init reported it. */
  gpu = $state<{ gpu: string; f16: boolean; hasF16Feature: boolean } | null>(null);
  info = $state.raw<ModelInfo | null>(null);
  progress = $state.raw<((LoadProgress | DownloadProgress) & { startedAt: number; at: number }) | null>(null);
  /** How the next model's weights are kept (the model panel's choice, kept in this browser). */
  readonly loadSettings = persisted<{ precision: Precision }>('load', { precision: 'auto' });
  /** The Playground's prompt: shared so a link can fill it and it survives switching views. */
  draft = $state(DEMO_PROMPT);
  /** The loaded model's source, for "Copy link". */
  modelSource = $state.raw<ModelSource | null>(null);
  /** The last thing worth announcing to screen readers (the ARIA live region). */
  announcement = $state('');
  error = $state.raw<UiError | null>(null);
  readonly client: EngineClient;

  readonly storage: StorageState;
  readonly shelf: ShelfState;
  readonly generation: GenerationState;
  readonly training: TrainingState;
  /** Recipes for a cluster and pushes to the Hub. */
  readonly sharing: SharingState;
  /** Evaluations and blind reviews. */
  readonly evaluation: EvalState;
  /** Teacher jobs: the loaded model writing a dataset. */
  readonly teaching: TeachState;
  /** web-llm, the second engine (its own worker), as an assistant for the teacher. */
  readonly webllm = new WebllmState();

  constructor() {
    this.client = new EngineClient(() => new Worker(new URL('../../workers/engine.worker.ts', import.meta.url), { type: 'module', name: 'lora-lab-engine' }));
    this.storage = new StorageState(this, () => void this.training.refreshCheckpoints());
    this.shelf = new ShelfState(this, (file) => this.storage.importFile(file, 'adapter'));
    this.generation = new GenerationState(this);
    this.evaluation = new EvalState(this.client, (e) => this.fail(e, 'evaluate'), download);
    this.training = new TrainingState(this, this.shelf, (info) => { this.evaluation.reward = info; });
    this.teaching = new TeachState(this.client, (e) => this.fail(e, 'train'));
    this.sharing = new SharingState(this);
  }

  fail(e: unknown, where: ErrorPlace = 'general', cause?: string): void {
    const err = e as Error;
    const details = (err as { details?: { status?: unknown; url?: unknown; field?: unknown } }).details ?? {};
    const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
    this.error = {
      name: err.name ?? 'Error', message: err.message ?? String(e), where,
      status: typeof details.status === 'number' ? details.status : undefined, url: str(details.url), field: str(details.field), cause,
    };
    // The worker died with its model and adapters; the next request starts a new one (set up as the last init).
    if (err.name === 'WorkerCrashedError') {
      this.info = null;
      this.shelf.clear();
      this.job = null;
    }
    this.status = this.info ? 'ready' : 'error';
  }

  clearError(): void {
    this.error = null;
  }

  clearErrorOf(cause: string): void {
    if (this.error?.cause === cause) this.error = null;
  }

  announce(text: string): void {
    this.announcement = text;
  }

  keptChanged(): void {
    void this.storage.refresh();
  }

  /** A model is loaded, no job holds the GPU and no training run waits paused. */
  get ready(): boolean {
    return this.canAnswer && this.training.status === 'idle';
  }

  /** A chat turn or a comparison can run now: as `ready`, or beside a paused training run (it lends the GPU). */
  get canAnswer(): boolean {
    return this.status === 'ready' && this.job === null;
  }

  begin(job: GpuJob): boolean {
    if (!(LENDABLE.includes(job) ? this.canAnswer : this.ready)) return false;
    this.job = job;
    return true;
  }

  end(job: GpuJob): void {
    if (this.job === job) this.job = null;
  }

  /** The current error when it belongs at `place`. */
  errorAt(place: ErrorPlace): UiError | null {
    return this.error?.where === place ? this.error : null;
  }

  get engineState(): EngineStateName {
    if (this.training.status !== 'idle') return 'training';
    if (this.evaluation.running || this.job !== null) return 'generating';
    if (this.status === 'starting') return 'loading';
    return this.status;
  }

  async start(hfEndpoint?: string): Promise<void> {
    this.status = 'starting';
    try {
      this.gpu = await this.client.init(false, hfEndpoint);
      this.status = 'idle';
      void this.training.refreshCheckpoints();
      void this.storage.refresh();
    } catch (e) {
      this.fail(e);
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
      const info = await this.client.load(source, (p) => {
        this.progress = { ...p, startedAt, at: performance.now() };
      }, undefined, this.loadSettings.precision);
      this.info = info;
      this.shelf.clear();
      this.modelSource = source;
      this.status = 'ready';
      this.announcement = `${this.info.label} is loaded and ready.`;
      // Something worth keeping was downloaded: ask the browser not to evict it (the answer shows on the Storage page).
      if ((source.kind === 'hf' || source.kind === 'url') && !this.storage.persisted) void this.storage.requestPersistence();
      void this.storage.refresh();
      return true;
    } catch (e) {
      this.fail(e, 'model', 'model-source');
      this.announcement = `Loading failed: ${(this.error as UiError | null)?.message ?? ''}`;
      return false;
    }
  }

  /** Runs (or resumes) an evaluation; the GPU is busy meanwhile, so generation and training wait. */
  async evaluate(req: Parameters<EvalState['start']>[0]): Promise<void> {
    await this.#job('evaluate', 'Evaluation started.', 'Evaluation finished.', () => this.evaluation.start(req));
  }

  /** The loaded model (through an adapter, if picked) judges an evaluation's answer pairs; the GPU is busy meanwhile. */
  async judge(req: Parameters<EvalState['startJudge']>[0]): Promise<void> {
    await this.#job('judge', 'The judge started.', 'The judge finished.', () => this.evaluation.startJudge(req));
  }

  /** The loaded model answers instructions into a new dataset (kept as it grows); the GPU is busy meanwhile. */
  async teach(req: Parameters<TeachState['start']>[0]): Promise<void> {
    await this.#job('teach', 'The teacher started.', 'The teacher stopped.', () => this.teaching.start(req));
    void this.storage.refresh();
  }

  async #job(job: GpuJob, started: string, finished: string, run: () => Promise<unknown>): Promise<void> {
    if (!this.begin(job)) return;
    this.error = null;
    this.announcement = started;
    try {
      await run();
    } finally {
      this.end(job);
    }
    this.announcement = finished;
  }
}
