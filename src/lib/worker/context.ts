// What the worker's request handlers share: the engine and the GPU device it runs on, the store, the running jobs
// (to cancel or pause them), and the few helpers every feature needs (datasets by source, files through the cache).
// One instance per worker; each feature's handlers (model.ts, generation.ts, adapters.ts, training.ts, storage.ts,
// evaluation.ts, ...) take it and nothing else of the others.

import { GpuTurns } from './gpu-turns.js';
import type { Engine } from '../engine.js';
import { InvalidArgumentError, NoModelLoadedError } from '../errors.js';
import type { Gpu } from '../gpu/device.js';
import type { ModelFiles } from '../model-files.js';
import { resolveSource, type ModelSource, type ResolveEnv } from '../hub/source.js';
import type { OrtModule } from '../reward/onnx-reward.js';
import type { BuiltinSet } from '../eval/sets.js';
import type { DatasetSource } from '../store/checkpoints.js';
import type { LabStore } from '../store/kept.js';
import type { ModelCache, SnapshotKind } from '../store/model-cache.js';
import type { DownloadProgress } from '../store/progress.js';
import type { Estimate } from '../store/quota.js';
import type { WorkerEvent } from './protocol.js';

export interface HandlerEnv extends ResolveEnv {
  /** Bytes of the bundled GPT-4 Alpaca sample. */
  builtinDataset: () => Promise<Uint8Array>;
  /** What the browser keeps (IndexedDB): runs, adapters, datasets, comparisons, settings; without it nothing is kept. */
  lab?: LabStore;
  /**
   * Downloaded models and adapters (OPFS or IndexedDB) for a hub endpoint (default https://huggingface.co; a mirror,
   * or a local server in tests); without it repos and URLs are read straight from the network.
   */
  cache?: (endpoint?: string) => Promise<ModelCache>;
  estimate?: () => Promise<Estimate | null>;
  /** The bundled evaluation sets (public/data/eval/). */
  builtinEvalSet?: (name: BuiltinSet) => Promise<Uint8Array>;
  createGpu: (opts: { forceF32?: boolean }) => Promise<Gpu>;
  /** The built-in demo adapters (public/adapters/{name}/). */
  builtinAdapter: (name: string) => ModelFiles;
  /** onnxruntime-web, imported on first use (reward models). */
  ort?: () => Promise<OrtModule>;
}

export class WorkerContext {
  engine: Engine | null = null;
  /** The device; each model loads into a scope of it (its buffers), sharing the compiled pipelines. */
  gpu: Gpu | null = null;
  /** The loaded model's scope of `gpu`. */
  modelGpu: Gpu | null = null;
  /** A Hugging Face mirror (or a local server in tests) set by init; undefined: huggingface.co. */
  hfEndpoint: string | undefined;
  /** Jobs that can be cancelled, by request id. */
  readonly running = new Map<number, AbortController>();
  /** The GPU's turns: jobs run one at a time; a paused training run lends its turn out. */
  readonly turns = new GpuTurns();
  /** Training runs that can be paused, by request id. */
  readonly pauses = new Map<number, { paused: boolean; wake: (() => void)[] }>();

  constructor(readonly env: HandlerEnv, readonly post: (e: WorkerEvent) => void) {}

  /** The engine with a model loaded. */
  loaded = (): Engine => {
    if (!this.engine?.info) throw new NoModelLoadedError('No model is loaded: load one first (the built-in demo model loads instantly).');
    return this.engine;
  };

  store = (): LabStore => {
    if (!this.env.lab) throw new InvalidArgumentError('Nothing can be kept here: this browser gives the page no IndexedDB (a private window may refuse it).');
    return this.env.lab;
  };

  /** The cache of downloads for the current hub endpoint. */
  get cache(): (() => Promise<ModelCache>) | undefined {
    const cache = this.env.cache;
    return cache ? () => cache(this.hfEndpoint) : undefined;
  }

  datasetBytes = async (d: DatasetSource): Promise<Uint8Array> => {
    if (d.kind === 'builtin') return this.env.builtinDataset();
    if (d.kind === 'file') return d.bytes;
    const kept = await this.store().getDataset(d.name);
    if (!kept) throw new InvalidArgumentError(`The dataset "${d.name}" is no longer kept (deleted on the Storage page?): pick the file again.`);
    return kept.bytes;
  };

  datasetName = (d: DatasetSource): string => (d.kind === 'builtin' ? 'alpaca-gpt4-sample-en.json' : d.name);

  /** A picked dataset file is kept on first use, so runs that name it can continue after a reload. */
  keepDataset = async (d: DatasetSource): Promise<DatasetSource> => {
    if (d.kind !== 'file' || !this.env.lab) return d;
    await this.env.lab.putDataset({ name: d.name, bytes: d.bytes, size: d.bytes.byteLength, savedAt: Date.now() });
    return { kind: 'kept', name: d.name };
  };

  /** Repos and URLs through the cache (downloaded once, then offline); other sources as they are. */
  openFiles = async (source: ModelSource, kind: SnapshotKind, onProgress: (p: DownloadProgress) => void, signal: AbortSignal, fallback: ResolveEnv): Promise<ModelFiles> => {
    const cache = this.cache;
    if (source.kind === 'snapshot' && cache) {
      const c = await cache();
      const s = await c.catalog.getSnapshot(source.id);
      if (!s) throw new InvalidArgumentError(`${source.label ?? source.id} is no longer kept in this browser (deleted on the Storage page?): import its .zip again.`);
      return c.files(s);
    }
    if ((source.kind === 'hf' || source.kind === 'url') && cache) {
      const c = await cache();
      if (source.kind === 'url') return c.url(source.url, kind, { onProgress, signal });
      // The remembered token goes to huggingface.co only: never to a mirror a link named (?hf-endpoint=), which could
      // be anyone's server. A token typed for this load goes where the person sent it.
      const token = source.token ?? (this.hfEndpoint === undefined ? await this.env.lab?.getSetting<string>('hfToken') : undefined);
      return c.hf(source.repo, source.revision ?? 'main', kind, { token, onProgress, signal, file: source.file });
    }
    return resolveSource(source, fallback);
  };

  /**
   * The device, made on first use. A lost device, or one where a command failed unwatched (its results void:
   * Gpu.check), is replaced by a new one; the model on the old one goes with it.
   */
  ensureGpu = async (forceF32 = false): Promise<Gpu> => {
    if (this.gpu && !this.gpu.lost && this.gpu.uncapturedErrors.length) {
      this.engine = null;
      this.modelGpu = null;
      this.gpu.destroy();
      this.gpu = null;
    }
    if (!this.gpu || this.gpu.lost) this.gpu = await this.env.createGpu({ forceF32 });
    return this.gpu;
  };

  /**
   * Request `id` (a training run) can be paused by pauseTraining: `wait` resolves while it is not paused. While paused
   * it gives its GPU turn to the jobs waiting, and queues for it again when resumed (or cancelled).
   */
  pausable = (id: number) => {
    const pause = { paused: false, wake: [] as (() => void)[] };
    this.pauses.set(id, pause);
    return {
      wait: async () => {
        if (!pause.paused) return;
        // Paused between steps: the GPU is lent to the jobs waiting (a chat, a comparison), then taken back in turn.
        this.turns.give(id);
        this.post({ id, type: 'trainPaused' });
        await new Promise<void>((r) => pause.wake.push(r));
        await this.turns.take(id);
        // What ran meanwhile left its prompt in the KV cache; what the run does next is not known to the engine.
        this.engine?.forgetCachedPrefix();
      },
      dispose: () => this.pauses.delete(id),
    };
  };

  /** Sets a run's pause; a resumed (or cancelled) run wakes. */
  setPaused(id: number, paused: boolean): boolean {
    const pause = this.pauses.get(id);
    if (!pause) return false;
    pause.paused = paused;
    if (!paused) for (const w of pause.wake.splice(0)) w();
    return true;
  }
}
