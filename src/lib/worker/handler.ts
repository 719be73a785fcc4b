// The worker side of the protocol: owns the Engine, runs one GPU job at a time, cancels on request and turns every
// failure into an `error` event so nothing can take the worker down.

import { Engine, type ModelInfo } from '../engine.js';
import { GpuOutOfMemoryError, InvalidArgumentError, LoraLabError, NoModelLoadedError, serializeError } from '../errors.js';
import type { Gpu } from '../gpu/device.js';
import type { ModelFiles } from '../hub/files.js';
import { resolveSource, type ModelSource, type ResolveEnv } from '../hub/source.js';
import { safeFileName } from '../hub/paths.js';
import type { RequestMap, WorkerEvent, WorkerRequest } from './protocol.js';
import { parseDataset } from '../data/records.js';
import { adapterCard } from '../lora/model-card.js';
import { sameModel } from '../model/fingerprint.js';
import { readPeftAdapter } from '../lora/peft.js';
import type { DatasetSource } from '../store/checkpoints.js';
import type { LabStore } from '../store/kept.js';
import type { ModelCache } from '../store/model-cache.js';
import type { Estimate } from '../store/quota.js';
import type { DownloadProgress } from '../store/progress.js';
import type { LoadProgress } from '../model/load.js';
import { keepAdapter, storageHandlers } from './storage.js';
import { evaluationHandlers } from './evaluation.js';
import { judgingHandlers } from './judging.js';
import { teachingHandlers } from './teaching.js';
import { rewardHandlers } from './reward.js';
import type { OrtModule } from '../reward/onnx-reward.js';
import type { SnapshotKind } from '../store/model-cache.js';
import { zipBlob } from '../store/archive.js';
import type { BuiltinSet } from '../eval/sets.js';

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


/** Requests that do not use the GPU: they run at once, also while a generation or a training run holds the queue. */
const IMMEDIATE = new Set<string>(['cancel', 'stopColumn', 'pauseTraining', 'listCheckpoints', 'storageList', 'deleteKept', 'exportKept', 'importFile', 'saveComparison', 'setToken',
  'evalRuns', 'evalResults', 'evalDelete', 'evalExport', 'evalImport', 'reviewStart', 'reviewOpen', 'reviewVote', 'reviewFinish', 'reviewExport', 'reviewImport', 'judgeList', 'judgeDelete', 'judgePrepare', 'judgeGet', 'judgeKeep', 'teachList', 'teachDelete', 'teachPrepare', 'teachGet', 'teachKeep', 'trainMemory']);

export function createHandler(env: HandlerEnv, post: (e: WorkerEvent) => void): (req: WorkerRequest) => Promise<void> {
  let engine: Engine | null = null;
  /** The device; each model loads into a scope of it (its buffers), sharing the compiled pipelines. */
  let gpu: Gpu | null = null;
  /** The loaded model's scope of `gpu`. */
  let modelGpu: Gpu | null = null;
  const running = new Map<number, AbortController>();
  const pauses = new Map<number, { paused: boolean; wake: (() => void)[] }>();
  /** An adapter's PEFT folder: adapter_config.json, adapter_model.safetensors and a README model card. */
  const adapterFolder = async (name: string): Promise<{ folder: string; files: [string, Uint8Array][] }> => {
    const e = loaded();
    const { config, safetensors } = e.exportAdapter(name);
    const info = e.adapters.find((a) => a.name === name)!;
    const folder = safeFileName(name, 'adapter');
    // A run trained here (its last checkpoint has these weights' name) tells how it was trained in the card.
    const run = await env.lab?.getCheckpoint(name).catch(() => undefined);
    const enc = new TextEncoder();
    return { folder, files: [['adapter_config.json', enc.encode(config)], ['adapter_model.safetensors', safetensors], ['README.md', enc.encode(adapterCard(info, folder, run))]] };
  };
  /** Request `id` (a training run) can be paused by pauseTraining: `wait` resolves while it is not paused. */
  const pausable = (id: number) => {
    const pause = { paused: false, wake: [] as (() => void)[] };
    pauses.set(id, pause);
    return {
      wait: () => {
        if (!pause.paused) return Promise.resolve();
        post({ id, type: 'trainPaused' });
        return new Promise<void>((r) => pause.wake.push(r));
      },
      dispose: () => pauses.delete(id),
    };
  };
  const store = (): LabStore => {
    if (!env.lab) throw new InvalidArgumentError('Nothing can be kept here: this browser gives the page no IndexedDB (a private window may refuse it).');
    return env.lab;
  };
  const datasetBytes = async (d: DatasetSource): Promise<Uint8Array> => {
    if (d.kind === 'builtin') return env.builtinDataset();
    if (d.kind === 'file') return d.bytes;
    const kept = await store().getDataset(d.name);
    if (!kept) throw new InvalidArgumentError(`The dataset "${d.name}" is no longer kept (deleted on the Storage page?): pick the file again.`);
    return kept.bytes;
  };
  const datasetName = (d: DatasetSource) => (d.kind === 'builtin' ? 'alpaca-gpt4-sample-en.json' : d.name);
  /** A picked dataset file is kept on first use, so runs that name it can continue after a reload. */
  const keepDataset = async (d: DatasetSource): Promise<DatasetSource> => {
    if (d.kind !== 'file' || !env.lab) return d;
    await env.lab.putDataset({ name: d.name, bytes: d.bytes, size: d.bytes.byteLength, savedAt: Date.now() });
    return { kind: 'kept', name: d.name };
  };
  /** Repos and URLs through the cache (downloaded once, then offline); other sources as they are. */
  const openFiles = async (source: ModelSource, kind: SnapshotKind, onProgress: (p: DownloadProgress) => void, signal: AbortSignal, fallback: ResolveEnv): Promise<ModelFiles> => {
    if ((source.kind === 'hf' || source.kind === 'url') && cache) {
      const c = await cache();
      if (source.kind === 'url') return c.url(source.url, kind, { onProgress, signal });
      // The remembered token goes to huggingface.co only: never to a mirror a link named (?hf-endpoint=), which could
      // be anyone's server. A token typed for this load goes where the person sent it.
      const token = source.token ?? (hfEndpoint === undefined ? await env.lab?.getSetting<string>('hfToken') : undefined);
      return c.hf(source.repo, source.revision ?? 'main', kind, { token, onProgress, signal, file: source.file });
    }
    return resolveSource(source, fallback);
  };
  let queue: Promise<unknown> = Promise.resolve();
  /** Running comparisons' columns asked to stop, by request id. */
  const columnStops = new Map<number, Set<number>>();
  let hfEndpoint: string | undefined;
  const cache = env.cache ? () => env.cache!(hfEndpoint) : undefined;

  const loaded = (): Engine => {
    if (!engine?.info) throw new NoModelLoadedError('No model is loaded: load one first (the built-in demo model loads instantly).');
    return engine;
  };

  // A lost device, or one where a command failed unwatched (its results void: Gpu.check), is replaced by a new one on
  // the next load; the model on the old one goes with it.
  const ensureGpu = async (forceF32 = false): Promise<Gpu> => {
    if (gpu && !gpu.lost && gpu.uncapturedErrors.length) {
      engine = null;
      modelGpu = null;
      gpu.destroy();
      gpu = null;
    }
    if (!gpu || gpu.lost) gpu = await env.createGpu({ forceF32 });
    return gpu;
  };

  const storage = env.lab && cache && env.estimate ? storageHandlers({ lab: env.lab, cache, estimate: env.estimate }) : null;
  const noStorage = async (): Promise<never> => store() as never;
  const evaluation = env.lab && env.builtinEvalSet
    ? evaluationHandlers({ lab: env.lab, engine: loaded, builtinEvalSet: env.builtinEvalSet, datasetBytes, datasetName }, (id, progress, result) => post({ id, type: 'evalProgress', progress, result }))
    : null;
  const ev = () => evaluation ?? (store() as never);
  const judging = env.lab ? judgingHandlers({ lab: env.lab, engine: loaded }, (id, progress) => post({ id, type: 'evalProgress', progress })) : null;
  const jd = () => judging ?? (store() as never);
  const teaching = env.lab ? teachingHandlers({ lab: env.lab, engine: loaded, datasetBytes, datasetName }, (id, progress) => post({ id, type: 'evalProgress', progress })) : null;
  const tc = () => teaching ?? (store() as never);
  const reward = rewardHandlers({
    lab: env.lab ?? null,
    engine: loaded,
    ort: env.ort ?? (async () => { throw new InvalidArgumentError('Reward models run on onnxruntime-web, which this worker was built without.'); }),
    open: (source, onProgress, signal) => openFiles(source, 'reward', onProgress, signal, {
      ...env, builtin: () => { throw new InvalidArgumentError('There is no built-in reward model: give a folder, a Hugging Face repo id or a URL of an ONNX text classifier.'); },
    }),
    dataset: async (d) => {
      const kept = await keepDataset(d);
      return { bytes: await datasetBytes(kept), name: datasetName(kept) };
    },
    training: (id, signal) => {
      const pause = pausable(id);
      return {
        hooks: {
          onStep: (metrics) => post({ id, type: 'trainStep', metrics }),
          onEval: (step, loss, accuracy) => post({ id, type: 'trainEval', step, loss, accuracy }),
        },
        control: { signal, waitWhilePaused: pause.wait },
        dispose: pause.dispose,
      };
    },
  }, (id, progress) => post({ id, type: 'evalProgress', progress }), (id, progress) => post({ id, type: 'progress', progress }));
  const handlers: { [K in keyof RequestMap]: (id: number, p: RequestMap[K]['request'], signal: AbortSignal) => Promise<RequestMap[K]['result']> } = {
    storageList: (_id, p) => storage ? storage.storageList(p) : noStorage(),
    deleteKept: (_id, p) => storage ? storage.deleteKept(p) : noStorage(),
    exportKept: (_id, p) => storage ? storage.exportKept(p) : noStorage(),
    importFile: (_id, p) => storage ? storage.importFile(p) : noStorage(),
    saveComparison: (_id, p) => storage ? storage.saveComparison(p) : noStorage(),
    setToken: (_id, p) => storage ? storage.setToken(p) : noStorage(),
    evalStart: (id, p, signal) => ev().evalStart(id, p, signal),
    evalRuns: () => ev().evalRuns(),
    evalResults: (_id, p) => ev().evalResults(p),
    evalDelete: (_id, p) => ev().evalDelete(p),
    evalExport: (_id, p) => ev().evalExport(p),
    evalImport: (_id, p) => ev().evalImport(p),
    reviewStart: (_id, p) => ev().reviewStart(p),
    reviewOpen: (_id, p) => ev().reviewOpen(p),
    reviewVote: (_id, p) => ev().reviewVote(p),
    reviewFinish: (_id, p) => ev().reviewFinish(p),
    reviewExport: (_id, p) => ev().reviewExport(p),
    reviewImport: (_id, p) => ev().reviewImport(p),
    judgeStart: (id, p, signal) => jd().judgeStart(id, p, signal),
    judgeList: (_id, p) => jd().judgeList(p),
    judgePrepare: (_id, p) => jd().judgePrepare(p),
    judgeGet: (_id, p) => jd().judgeGet(p),
    judgeKeep: (_id, p) => jd().judgeKeep(p),
    judgeDelete: (_id, p) => jd().judgeDelete(p),
    teachStart: (id, p, signal) => tc().teachStart(id, p, signal),
    teachList: () => tc().teachList(),
    teachPrepare: (_id, p) => tc().teachPrepare(p),
    teachGet: (_id, p) => tc().teachGet(p),
    teachKeep: (_id, p) => tc().teachKeep(p),
    teachDelete: (_id, p) => tc().teachDelete(p),
    rewardLoad: (id, p, signal) => reward.rewardLoad(id, p, signal),
    rewardScore: (id, p, signal) => reward.rewardScore(id, p, signal),
    rewardScoreRun: (id, p, signal) => reward.rewardScoreRun(id, p, signal),
    rewardUnload: () => reward.rewardUnload(),
    trainMemory: async (_id, p) => loaded().trainMemory(p.config),
    bestOf: (id, p, signal) => reward.bestOf(id, p, signal),
    rewardTrain: (id, p, signal) => reward.rewardTrain(id, p, signal),
    async init(_id, p) {
      if (p.hfEndpoint !== undefined) {
        if (!/^https?:\/\/[^/]+/.test(p.hfEndpoint)) throw new InvalidArgumentError(`The hub endpoint "${p.hfEndpoint}" is not an http(s) URL.`);
        hfEndpoint = p.hfEndpoint.replace(/\/$/, '');
      }
      gpu = null;
      const g = await ensureGpu(p.forceF32);
      return { adapter: g.description, f16: g.f16, hasF16Feature: g.hasF16Feature };
    },
    async load(id, p, signal) {
      let last = 0;
      const report = (progress: LoadProgress | DownloadProgress) => {
        const t = performance.now();
        if (t - last > 50 || progress.loaded === progress.total || progress.phase === 'prepare') {
          last = t;
          post({ id, type: 'progress', progress });
        }
      };
      // Loading is a transaction. Files first (a download can take minutes and fail on its own), then the new model in
      // a scope of its own on the device while the current one stays as it is; only once the new one is ready is the
      // old scope destroyed, which frees every buffer of the previous model at once. A failure frees what it made and
      // leaves the current model loaded. Kernels compiled for the previous model are reused.
      const files = await openFiles(p.source, 'model', report, signal, env);
      const attempt = async (): Promise<{ g: Gpu; next: Engine; info: ModelInfo }> => {
        const g = (await ensureGpu()).scope();
        const next = new Engine(g, { contextLength: p.contextLength });
        try {
          return { g, next, info: await next.load(files, report, signal, { precision: p.precision }) };
        } catch (e) {
          g.destroy();
          throw e;
        }
      };
      let r: Awaited<ReturnType<typeof attempt>>;
      try {
        r = await attempt();
      } catch (e) {
        // Two models do not fit side by side: make room by unloading the current one, and say so if that fails too.
        if (!(e instanceof GpuOutOfMemoryError) || !engine || !modelGpu) throw e;
        engine = null;
        modelGpu.destroy();
        modelGpu = null;
        try {
          r = await attempt();
        } catch (e2) {
          if (e2 instanceof LoraLabError) e2.message += ' The previous model was unloaded to make room for this one: load it again.';
          throw e2;
        }
      }
      modelGpu?.destroy();
      modelGpu = r.g;
      engine = r.next;
      return r.info;
    },
    async generate(id, p, signal) {
      return loaded().generate(p, (text, token) => post({ id, type: 'token', column: 0, token, text }), signal);
    },
    async chat(id, p, signal) {
      return loaded().chat(p, (text, token) => post({ id, type: 'token', column: 0, token, text }), signal);
    },
    async compare(id, p, signal) {
      const stopped = new Set<number>();
      columnStops.set(id, stopped);
      try {
        return await loaded().compare(p.request, p.columns, (column, text, token) => post({ id, type: 'token', column, token, text }), signal, stopped);
      } finally {
        columnStops.delete(id);
      }
    },
    async stopColumn(_id, p) {
      const s = columnStops.get(p.target);
      s?.add(p.column);
      return { stopped: !!s };
    },
    async loadAdapter(id, p, signal) {
      const e = loaded();
      if (p.source.kind === 'kept') {
        const kept = await store().getAdapter(p.source.name);
        if (!kept) throw new InvalidArgumentError(`No adapter named "${p.source.name}" is kept in this browser: load it from its folder, repo or URL.`);
        return e.addAdapter(readPeftAdapter(kept.name, JSON.parse(kept.config), kept.safetensors));
      }
      const builtin = p.source.kind === 'builtin' ? p.source.name ?? '' : '';
      const files = await openFiles(p.source, 'adapter', (progress) => post({ id, type: 'progress', progress }), signal, { ...env, builtin: () => env.builtinAdapter(builtin) });
      const info = await e.loadAdapter(files, p.name);
      if (env.lab && p.source.kind !== 'builtin') await keepAdapter(env.lab, info.name, e.exportAdapter(info.name), info.baseModel, files.label);
      return info;
    },
    async removeAdapter(_id, p) {
      const e = loaded();
      e.removeAdapter(p.name);
      return e.adapters;
    },
    async exportAdapter(_id, p) {
      return loaded().exportAdapter(p.name);
    },
    async exportAdapterZip(_id, p) {
      const { folder, files } = await adapterFolder(p.name);
      return { name: `${folder}.zip`, blob: await zipBlob(new Map(files.map(([n, b]) => [`${folder}/${n}`, b]))) };
    },
    async exportAdapterFolder(_id, p) {
      return adapterFolder(p.name);
    },
    async exportMerged(_id, p) {
      // A Hugging Face model folder in a .zip: it loads back here (model panel, Local folder) and in transformers.
      const e = loaded();
      const files = await e.exportMerged(p.name, p.strength);
      const folder = `${safeFileName(p.name, 'adapter')}-merged`;
      const base = e.info!.modelId;
      const readme = `# ${folder}\n\n${base} with the LoRA adapter "${p.name}" merged into its weights at strength ${p.strength}, exported from LoRA Lab.\n\n` +
        `Load it with transformers (\`AutoModelForCausalLM.from_pretrained("${folder}")\`), or drop this .zip on LoRA Lab's model panel (Local folder).\n`;
      files.set('README.md', new TextEncoder().encode(readme));
      return { name: `${folder}.zip`, blob: await zipBlob(new Map([...files].map(([n, b]) => [`${folder}/${n}`, b]))) };
    },
    async previewDataset(_id, p) {
      const records = await parseDataset(await datasetBytes(p.dataset), datasetName(p.dataset));
      return loaded().previewDataset(records, p.format);
    },
    async train(id, p, signal) {
      const e = loaded();
      const saved = p.resumeFrom ? await store().getCheckpoint(p.resumeFrom) : undefined;
      if (p.resumeFrom && !saved) throw new InvalidArgumentError(`No checkpoint named "${p.resumeFrom}".`);
      // A new run never replaces a saved one (its checkpoint and optimizer state would be lost): it is continued or renamed.
      if (!p.resumeFrom && env.lab && await env.lab.getCheckpoint(p.name)) {
        throw new InvalidArgumentError(`A saved run is named "${p.name}": continue it, or give the new run another name.`, { field: 'name' });
      }
      if (saved && !sameModel({ model: saved.checkpoint.baseModel, fingerprint: saved.checkpoint.baseFingerprint }, e.info!)) {
        throw new InvalidArgumentError(`Run "${saved.name}" was trained on ${saved.checkpoint.baseModel}, a model with other weights than ${e.info!.label}: load that model first.`);
      }
      const dataset = saved?.dataset ?? await keepDataset(p.dataset);
      const format = saved?.format ?? p.format;
      const maxRecords = saved ? saved.maxRecords : p.maxRecords;
      const records = await parseDataset(await datasetBytes(dataset), datasetName(dataset));
      const pause = pausable(id);
      try {
        const info = await e.train({ name: saved?.name ?? p.name, records, format, config: saved ? {} : p.config, maxRecords, resume: saved?.checkpoint }, {
          onStep: (metrics) => post({ id, type: 'trainStep', metrics }),
          onEval: (step, loss) => post({ id, type: 'trainEval', step, loss }),
          onCheckpoint: async (checkpoint) => {
            if (!env.lab) return;
            await env.lab.putCheckpoint({ name: checkpoint.name, checkpoint, dataset, format, maxRecords, totalSteps: checkpoint.totalSteps, savedAt: Date.now() });
            post({ id, type: 'checkpoint', step: checkpoint.step });
          },
        }, { signal, waitWhilePaused: pause.wait });
        if (env.lab) await keepAdapter(env.lab, info.name, e.exportAdapter(info.name), info.baseModel, 'trained here', e.info?.fingerprint);
        return info;
      } finally {
        pause.dispose();
      }
    },
    async pauseTraining(_id, p) {
      const pause = pauses.get(p.target);
      if (!pause) return { paused: false };
      pause.paused = p.paused;
      if (!p.paused) for (const w of pause.wake.splice(0)) w();
      return { paused: pause.paused };
    },
    async listCheckpoints() {
      return env.lab ? env.lab.listCheckpoints() : [];
    },
    async deleteCheckpoint(_id, p) {
      await store().deleteCheckpoint(p.name);
      return store().listCheckpoints();
    },
    async loadCheckpointAdapter(_id, p) {
      const saved = await store().getCheckpoint(p.name);
      if (!saved) throw new InvalidArgumentError(`No checkpoint named "${p.name}".`);
      const adapter = readPeftAdapter(`${saved.name}@${saved.checkpoint.step}`, JSON.parse(saved.checkpoint.peft.config), saved.checkpoint.peft.safetensors);
      return loaded().addAdapter(adapter);
    },
    async cancel(_id, p) {
      const c = running.get(p.target);
      c?.abort();
      const pause = pauses.get(p.target);
      if (pause) { pause.paused = false; for (const w of pause.wake.splice(0)) w(); }
      return { cancelled: !!c };
    },
  };

  return async (req: WorkerRequest) => {
    const controller = new AbortController();
    const run = async () => {
      try {
        const h = handlers[req.type] as (id: number, p: unknown, s: AbortSignal) => Promise<unknown>;
        if (!h) throw new InvalidArgumentError(`Unknown request type "${(req as { type: string }).type}".`);
        const result = await h(req.id, req.payload, controller.signal);
        post({ id: req.id, type: 'result', result });
      } catch (e) {
        post({ id: req.id, type: 'error', error: serializeError(e) });
      } finally {
        running.delete(req.id);
      }
    };
    if (IMMEDIATE.has(req.type)) return run();
    running.set(req.id, controller);
    // GPU jobs run one at a time, in order; a cancel reaches a job still waiting in the queue too.
    queue = queue.then(run);
    await queue;
  };
}
