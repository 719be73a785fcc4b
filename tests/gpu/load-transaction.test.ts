// Loading a model is a transaction in the worker: the new model loads on a device of its own beside the current one,
// which is destroyed only once the new one is ready. A load that fails leaves the current model answering as before;
// when two models do not fit side by side, the current one is unloaded to make room, and a second failure says so.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Gpu } from '../../src/lib/gpu/device.js';
import { createNodeGpu } from '../../src/lib/gpu/node.js';
import { NodeDirFiles } from '../../src/lib/hub/node-files.js';
import { createHandler } from '../../src/lib/worker/handler.js';
import type { WorkerEvent, WorkerRequest } from '../../src/lib/worker/protocol.js';

const demo = new URL('../../public/models/demo/', import.meta.url).pathname;
const file = (name: string) => new File([readFileSync(demo + name)], name);
/** The built-in model's config and tokenizer without its weights: it fails once the new device exists. */
const noWeights = { kind: 'files' as const, label: 'no weights', files: [file('config.json'), file('tokenizer.json')] };
const greedy = { promptIds: [1, 20, 30, 40], maxNewTokens: 6, sampling: { temperature: 0, repetitionPenalty: 1 } };

/** A worker handler on real devices; `shrink(n)` makes the n-th device created refuse any buffer over 1 KB. */
function worker(shrink: (n: number) => boolean = () => false) {
  const events: WorkerEvent[] = [];
  const devices: { gpu: Gpu; destroyed: boolean }[] = [];
  const handle = createHandler({
    createGpu: async (opts) => {
      const gpu = await createNodeGpu(opts);
      const d = { gpu, destroyed: false };
      devices.push(d);
      if (shrink(devices.length)) Object.defineProperty(gpu, 'maxBufferSize', { value: 1024 });
      const destroy = gpu.destroy.bind(gpu);
      gpu.destroy = () => { d.destroyed = true; destroy(); };
      return gpu;
    },
    builtin: () => new NodeDirFiles('built-in model', demo, 'lora-lab/built-in-demo'),
    builtinDataset: async () => new Uint8Array(),
    builtinAdapter: () => { throw new Error('unused'); },
  }, (e) => events.push(e));
  let id = 0;
  const request = async <T>(type: WorkerRequest['type'], payload: unknown): Promise<T> => {
    const n = ++id;
    await handle({ id: n, type, payload } as WorkerRequest);
    const last = events.filter((e) => e.id === n && (e.type === 'result' || e.type === 'error')).pop()!;
    if (last.type === 'error') throw Object.assign(new Error(last.error.message), { name: last.error.name });
    return (last as { result: T }).result;
  };
  return { request, devices };
}

describe('loading a model', () => {
  it('that fails leaves the loaded model answering as before; one that succeeds replaces it and frees its device', async () => {
    const w = worker();
    await w.request('init', {});
    await w.request('load', { source: { kind: 'builtin' } });
    const before = await w.request<{ tokens: number[] }>('generate', greedy);

    await expect(w.request('load', { source: noWeights })).rejects.toThrow(/model\.safetensors/);
    // The failed load's device is gone; the built-in model's is untouched and still answers the same.
    expect(w.devices.map((d) => d.destroyed)).toEqual([false, true]);
    expect((await w.request<{ tokens: number[] }>('generate', greedy)).tokens).toEqual(before.tokens);

    await w.request('load', { source: { kind: 'builtin' } });
    expect(w.devices.map((d) => d.destroyed)).toEqual([true, true, false]);
    expect((await w.request<{ tokens: number[] }>('generate', greedy)).tokens).toEqual(before.tokens);
  });

  it('that does not fit beside the loaded one unloads it to make room, and says so when it fails even then', async () => {
    // Device 2 (beside the first) is out of memory; device 3 (alone) is not.
    const w = worker((n) => n === 2);
    await w.request('init', {});
    await w.request('load', { source: { kind: 'builtin' } });
    const before = await w.request<{ tokens: number[] }>('generate', greedy);
    await w.request('load', { source: { kind: 'builtin' } });
    expect(w.devices.map((d) => d.destroyed)).toEqual([true, true, false]);
    expect((await w.request<{ tokens: number[] }>('generate', greedy)).tokens).toEqual(before.tokens);

    // Out of memory beside it and alone: the error says the previous model is gone, and nothing is loaded.
    const v = worker((n) => n >= 2);
    await v.request('init', {});
    await v.request('load', { source: { kind: 'builtin' } });
    await expect(v.request('load', { source: { kind: 'builtin' } })).rejects.toThrow(/The previous model was unloaded to make room for this one: load it again\./);
    await expect(v.request('generate', greedy)).rejects.toThrow(/No model is loaded/);
  });
});
