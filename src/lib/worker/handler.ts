// The worker side of the protocol: owns the Engine, runs one GPU job at a time, cancels on request and turns every
// failure into an `error` event so nothing can take the worker down.

import { Engine } from '../engine.js';
import { InvalidArgumentError, NoModelLoadedError, serializeError } from '../errors.js';
import type { Gpu } from '../gpu/device.js';
import type { ModelFiles } from '../hub/files.js';
import { resolveSource, type ResolveEnv } from '../hub/source.js';
import type { RequestMap, WorkerEvent, WorkerRequest } from './protocol.js';
import { parseDataset } from '../data/records.js';
import { readPeftAdapter } from '../lora/peft.js';
import type { CheckpointStore, DatasetSource } from '../storage/checkpoints.js';

export interface HandlerEnv extends ResolveEnv {
  /** Bytes of the bundled GPT-4 Alpaca sample. */
  builtinDataset: () => Promise<Uint8Array>;
  /** Where checkpoints persist (IndexedDB in the browser); without it runs keep no checkpoints. */
  checkpoints?: CheckpointStore;
  createGpu: (opts: { forceF32?: boolean }) => Promise<Gpu>;
  /** The built-in demo adapters (public/adapters/{name}/). */
  builtinAdapter: (name: string) => ModelFiles;
}

export function createHandler(env: HandlerEnv, post: (e: WorkerEvent) => void): (req: WorkerRequest) => Promise<void> {
  let engine: Engine | null = null;
  let gpu: Gpu | null = null;
  const running = new Map<number, AbortController>();
  const pauses = new Map<number, { paused: boolean; wake: (() => void)[] }>();
  const datasetBytes = async (d: DatasetSource) => (d.kind === 'builtin' ? env.builtinDataset() : d.bytes);
  const datasetName = (d: DatasetSource) => (d.kind === 'builtin' ? 'alpaca-gpt4-sample-en.json' : d.name);
  const store = (): CheckpointStore => {
    if (!env.checkpoints) throw new InvalidArgumentError('Checkpoints are not available here (no IndexedDB).');
    return env.checkpoints;
  };
  let queue: Promise<unknown> = Promise.resolve();

  const loaded = (): Engine => {
    if (!engine?.info) throw new NoModelLoadedError('No model is loaded: load one first (the built-in demo model loads instantly).');
    return engine;
  };

  const ensureGpu = async (forceF32 = false): Promise<Gpu> => {
    if (!gpu || gpu.lost) gpu = await env.createGpu({ forceF32 });
    return gpu;
  };

  const handlers: { [K in keyof RequestMap]: (id: number, p: RequestMap[K]['request'], signal: AbortSignal) => Promise<RequestMap[K]['result']> } = {
    async init(_id, p) {
      gpu = null;
      const g = await ensureGpu(p.forceF32);
      return { adapter: g.description, f16: g.f16, hasF16Feature: g.hasF16Feature };
    },
    async load(id, p, signal) {
      // A new model gets a new device: destroying the old one frees every buffer of the previous model at once.
      if (engine && gpu) {
        engine = null;
        const forceF32 = !gpu.f16 && gpu.hasF16Feature;
        gpu.destroy();
        gpu = await env.createGpu({ forceF32 });
      }
      const g = await ensureGpu();
      engine = new Engine(g, { contextLength: p.contextLength });
      const files = resolveSource(p.source, env);
      let last = 0;
      return engine.load(files, (progress) => {
        const t = performance.now();
        if (t - last > 50 || progress.loaded === progress.total) {
          last = t;
          post({ id, type: 'progress', progress });
        }
      }, signal);
    },
    async generate(id, p, signal) {
      return loaded().generate(p, (text, token) => post({ id, type: 'token', column: 0, token, text }), signal);
    },
    async compare(id, p, signal) {
      return loaded().compare(p.request, p.columns, (column, text, token) => post({ id, type: 'token', column, token, text }), signal);
    },
    async loadAdapter(_id, p) {
      const e = loaded();
      const files = resolveSource(p.source, { ...env, builtin: () => env.builtinAdapter(p.source.kind === 'builtin' ? p.source.name ?? '' : '') });
      return e.loadAdapter(files, p.name);
    },
    async removeAdapter(_id, p) {
      const e = loaded();
      e.removeAdapter(p.name);
      return e.adapters;
    },
    async exportAdapter(_id, p) {
      return loaded().exportAdapter(p.name);
    },
    async exportMerged(_id, p) {
      return loaded().exportMerged(p.name, p.strength);
    },
    async previewDataset(_id, p) {
      const records = await parseDataset(await datasetBytes(p.dataset), datasetName(p.dataset));
      return loaded().previewDataset(records, p.format);
    },
    async train(id, p, signal) {
      const e = loaded();
      const saved = p.resumeFrom ? await store().get(p.resumeFrom) : undefined;
      if (p.resumeFrom && !saved) throw new InvalidArgumentError(`No checkpoint named "${p.resumeFrom}".`);
      if (saved && saved.checkpoint.baseModel !== e.info?.modelId) {
        throw new InvalidArgumentError(`Checkpoint "${saved.name}" was trained on ${saved.checkpoint.baseModel}: load that model first.`);
      }
      const dataset = saved?.dataset ?? p.dataset;
      const format = saved?.format ?? p.format;
      const maxRecords = saved ? saved.maxRecords : p.maxRecords;
      const records = await parseDataset(await datasetBytes(dataset), datasetName(dataset));
      const pause = { paused: false, wake: [] as (() => void)[] };
      pauses.set(id, pause);
      try {
        return await e.train({ name: saved?.name ?? p.name, records, format, config: saved ? {} : p.config, maxRecords, resume: saved?.checkpoint }, {
          onStep: (metrics) => post({ id, type: 'trainStep', metrics }),
          onEval: (step, loss) => post({ id, type: 'trainEval', step, loss }),
          onCheckpoint: async (checkpoint) => {
            if (!env.checkpoints) return;
            await env.checkpoints.put({ name: checkpoint.name, checkpoint, dataset, format, maxRecords, totalSteps: checkpoint.totalSteps, savedAt: Date.now() });
            post({ id, type: 'checkpoint', step: checkpoint.step });
          },
        }, {
          signal,
          waitWhilePaused: () => (pause.paused ? new Promise<void>((r) => pause.wake.push(r)) : Promise.resolve()),
        });
      } finally {
        pauses.delete(id);
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
      return env.checkpoints ? env.checkpoints.list() : [];
    },
    async deleteCheckpoint(_id, p) {
      await store().delete(p.name);
      return store().list();
    },
    async loadCheckpointAdapter(_id, p) {
      const saved = await store().get(p.name);
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
    if (req.type === 'cancel' || req.type === 'pauseTraining' || req.type === 'listCheckpoints') return run();
    running.set(req.id, controller);
    // GPU jobs run one at a time, in order; a cancel reaches a job still waiting in the queue too.
    queue = queue.then(run);
    await queue;
  };
}
