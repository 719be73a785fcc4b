// The worker's generation requests: one answer, a chat turn, a comparison of columns (each column stoppable on its
// own), tokens streamed as they come.

import type { WorkerContext } from './context.js';
import type { Handlers } from './protocol.js';

export function generationHandlers(ctx: WorkerContext): Handlers<'generate' | 'chat' | 'compare' | 'stopColumn'> {
  /** Running comparisons' columns asked to stop, by request id. */
  const columnStops = new Map<number, Set<number>>();
  return {
    async generate(id, p, signal) {
      return ctx.loaded().generate(p, (text, token) => ctx.post({ id, type: 'token', column: 0, token, text }), signal);
    },
    async chat(id, p, signal) {
      return ctx.loaded().chat(p, (text, token) => ctx.post({ id, type: 'token', column: 0, token, text }), signal);
    },
    async compare(id, p, signal) {
      const stopped = new Set<number>();
      columnStops.set(id, stopped);
      try {
        return await ctx.loaded().compare(p.request, p.columns, (column, text, token) => ctx.post({ id, type: 'token', column, token, text }), signal, stopped);
      } finally {
        columnStops.delete(id);
      }
    },
    async stopColumn(_id, p) {
      const s = columnStops.get(p.target);
      s?.add(p.column);
      return { stopped: !!s };
    },
  };
}
