// The worker's model requests: init (the GPU device and the hub endpoint) and load, a transaction that keeps the
// loaded model until the new one is ready.

import { Engine, type ModelInfo } from '../engine.js';
import { GpuOutOfMemoryError, InvalidArgumentError, LoraLabError } from '../errors.js';
import type { Gpu } from '../gpu/device.js';
import type { LoadProgress } from '../model/load.js';
import type { DownloadProgress } from '../store/progress.js';
import type { WorkerContext } from './context.js';
import type { Handlers } from './protocol.js';

export function modelHandlers(ctx: WorkerContext): Handlers<'init' | 'load'> {
  return {
    async init(_id, p) {
      if (p.hfEndpoint !== undefined) {
        if (!/^https?:\/\/[^/]+/.test(p.hfEndpoint)) throw new InvalidArgumentError(`The hub endpoint "${p.hfEndpoint}" is not an http(s) URL.`);
        ctx.hfEndpoint = p.hfEndpoint.replace(/\/$/, '');
      }
      ctx.gpu = null;
      const g = await ctx.ensureGpu(p.forceF32);
      return { gpu: g.description, f16: g.f16, hasF16Feature: g.hasF16Feature };
    },
    async load(id, p, signal) {
      // A paused run lends the GPU to chats and comparisons, never to a load: its model must stay.
      if (ctx.pauses.size) throw new InvalidArgumentError('A training run is paused on the loaded model: stop it (its last checkpoint is kept) before loading another model.');
      let last = 0;
      const report = (progress: LoadProgress | DownloadProgress) => {
        const t = performance.now();
        if (t - last > 50 || progress.loaded === progress.total || progress.phase === 'prepare') {
          last = t;
          ctx.post({ id, type: 'progress', progress });
        }
      };
      // Loading is a transaction. Files first (a download can take minutes and fail on its own), then the new model in
      // a scope of its own on the device while the current one stays as it is; only once the new one is ready is the
      // old scope destroyed, which frees every buffer of the previous model at once. A failure frees what it made and
      // leaves the current model loaded. Kernels compiled for the previous model are reused.
      const files = await ctx.openFiles(p.source, 'model', report, signal, ctx.env);
      const attempt = async (): Promise<{ g: Gpu; next: Engine; info: ModelInfo }> => {
        const g = (await ctx.ensureGpu()).scope();
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
        if (!(e instanceof GpuOutOfMemoryError) || !ctx.engine || !ctx.modelGpu) throw e;
        ctx.engine = null;
        ctx.modelGpu.destroy();
        ctx.modelGpu = null;
        try {
          r = await attempt();
        } catch (e2) {
          if (e2 instanceof LoraLabError) e2.message += ' The previous model was unloaded to make room for this one: load it again.';
          throw e2;
        }
      }
      ctx.modelGpu?.destroy();
      ctx.modelGpu = r.g;
      ctx.engine = r.next;
      return r.info;
    },
  };
}
