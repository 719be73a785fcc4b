// The page's worker client when the worker dies mid-request: every pending promise is rejected with a typed
// WorkerCrashedError (none hangs), and the next request starts a new worker, set up by the last init before it. An
// error event from a worker that still answers (an exception it did not catch) ends nothing.

import { describe, expect, it } from 'vitest';
import { WorkerCrashedError } from '../../src/lib/errors.js';
import { EngineClient, type Port } from '../../src/lib/worker/client.js';
import type { WorkerEvent, WorkerRequest } from '../../src/lib/worker/protocol.js';

/** A worker stand-in: records requests, answers when told, and can die like a Worker does (an 'error' event). */
class FakeWorker extends EventTarget {
  readonly got: WorkerRequest[] = [];
  terminated = false;
  postMessage(msg: WorkerRequest): void {
    this.got.push(msg);
  }
  answer(id: number, result: unknown): void {
    this.dispatchEvent(new MessageEvent<WorkerEvent>('message', { data: { id, type: 'result', result } }));
  }
  die(type: 'error' | 'messageerror' = 'error'): void {
    const e = new Event(type);
    Object.defineProperty(e, 'message', { value: type === 'error' ? 'Uncaught RangeError: Array buffer allocation failed' : '' });
    this.dispatchEvent(e);
  }
  terminate(): void {
    this.terminated = true;
  }
}

/** A client whose workers are fakes, kept in `workers` in the order they were started (liveness wait: 30 ms). */
function spawning() {
  const workers: FakeWorker[] = [];
  const client = new EngineClient(() => {
    const w = new FakeWorker();
    workers.push(w);
    return w as unknown as Port;
  }, 30);
  return { workers, client };
}

describe('worker client', () => {
  it('rejects every pending request with WorkerCrashedError when the worker dies, and the next load starts a new worker', async () => {
    const { workers, client } = spawning();
    const init = client.init(false, 'http://127.0.0.1:9/');
    workers[0].answer(workers[0].got[0].id, { adapter: 'fake', f16: true, hasF16Feature: false });
    await init;
    const load = client.load({ kind: 'builtin' });
    const gen = client.generate({ prompt: 'hi' });
    const train = client.train({ name: 'x', dataset: { kind: 'bundled', name: 'demo' } as never, format: 'alpaca', config: {} }, {});
    workers[0].die();
    for (const p of [load, gen.done, train.done]) await expect(p).rejects.toBeInstanceOf(WorkerCrashedError);
    await expect(load).rejects.toThrow(/Array buffer allocation failed.*Load the model again/);
    expect(workers[0].terminated).toBe(true);
    expect(client.workers).toBe(1);

    // The next request goes to a new worker, after the init the page asked for last (same endpoint).
    const again = client.load({ kind: 'builtin' });
    expect(workers).toHaveLength(2);
    expect(workers[1].got.map((r) => r.type)).toEqual(['init', 'load']);
    expect(workers[1].got[0].payload).toEqual({ forceF32: false, hfEndpoint: 'http://127.0.0.1:9/' });
    workers[1].answer(workers[1].got[0].id, { adapter: 'fake', f16: true, hasF16Feature: false });
    workers[1].answer(workers[1].got[1].id, { label: 'built-in' });
    await expect(again).resolves.toEqual({ label: 'built-in' });
    // Late events of the dead worker reach nobody.
    workers[0].answer(workers[0].got[1].id, { label: 'stale' });
  });

  it('an error event from a worker that still answers the ping ends nothing', async () => {
    const { workers, client } = spawning();
    const load = client.load({ kind: 'builtin' });
    workers[0].die();
    const ping = workers[0].got.find((r) => r.type === 'ping')!;
    expect(ping).toBeDefined();
    workers[0].answer(ping.id, { alive: true });
    await new Promise((r) => setTimeout(r, 60));
    expect(workers[0].terminated).toBe(false);
    workers[0].answer(workers[0].got[0].id, { label: 'built-in' });
    await expect(load).resolves.toEqual({ label: 'built-in' });
    expect(client.workers).toBe(1);
  });

  it('a message the page cannot read (messageerror) ends the worker the same way', async () => {
    const { workers, client } = spawning();
    const p = client.request('listCheckpoints', {});
    workers[0].die('messageerror');
    await expect(p).rejects.toThrow(/a message could not be read/);
    void client.request('listCheckpoints', {});
    expect(workers).toHaveLength(2);
    expect(workers[1].got.map((r) => r.type)).toEqual(['listCheckpoints']); // no init was ever asked for
  });
});
