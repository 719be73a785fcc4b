// The worker side of the protocol: owns the Engine, runs one GPU job at a time, cancels on request and turns every
// failure into an `error` event so nothing can take the worker down.

import { Engine } from '../engine.js';
import { InvalidArgumentError, NoModelLoadedError, serializeError } from '../errors.js';
import type { Gpu } from '../gpu/device.js';
import type { ModelFiles } from '../hub/files.js';
import { resolveSource, type ResolveEnv } from '../hub/source.js';
import type { RequestMap, WorkerEvent, WorkerRequest } from './protocol.js';

export interface HandlerEnv extends ResolveEnv {
  createGpu: (opts: { forceF32?: boolean }) => Promise<Gpu>;
  /** The built-in demo adapters (public/adapters/{name}/). */
  builtinAdapter: (name: string) => ModelFiles;
}

export function createHandler(env: HandlerEnv, post: (e: WorkerEvent) => void): (req: WorkerRequest) => Promise<void> {
  let engine: Engine | null = null;
  let gpu: Gpu | null = null;
  const running = new Map<number, AbortController>();
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
    async cancel(_id, p) {
      const c = running.get(p.target);
      c?.abort();
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
    if (req.type === 'cancel') return run();
    running.set(req.id, controller);
    // GPU jobs run one at a time, in order; a cancel reaches a job still waiting in the queue too.
    queue = queue.then(run);
    await queue;
  };
}
