// Requests to a worker handler in Node, as the page's client makes them: each gets the next id, and resolves with its
// result or throws its error (name and message as the page would rebuild them).

import type { WorkerEvent, WorkerRequest } from '../../src/lib/worker/protocol.js';

export function requester(handle: (req: WorkerRequest) => Promise<void>, events: WorkerEvent[]) {
  let id = 0;
  return async <T>(type: WorkerRequest['type'], payload: unknown): Promise<T> => {
    const n = ++id;
    await handle({ id: n, type, payload } as WorkerRequest);
    const last = events.filter((e) => e.id === n && (e.type === 'result' || e.type === 'error')).pop()!;
    if (last.type === 'error') throw Object.assign(new Error(last.error.message), { name: last.error.name });
    return (last as { result: T }).result;
  };
}
