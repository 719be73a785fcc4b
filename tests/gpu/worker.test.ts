// The worker's handler in Node, on real devices. Loading a model is a transaction: the new model loads into a scope of
// its own on the device, beside the current one, whose buffers are destroyed only once the new one is ready; kernels
// compiled for the first model are not compiled again. A load that fails frees what it made and leaves the current
// model answering as before; when two models do not fit side by side, the current one is unloaded to make room, and a
// second failure says so. One column of a comparison can be stopped while the others go on.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Gpu } from '../../src/lib/gpu/device.js';
import { createNodeGpu } from '../../src/lib/gpu/node.js';
import { NodeDirFiles } from '../../src/lib/hub/node-files.js';
import { createHandler } from '../../src/lib/worker/handler.js';
import type { WorkerEvent, WorkerRequest } from '../../src/lib/worker/protocol.js';
import type { LabStore } from '../../src/lib/store/kept.js';
import { requester } from '../helpers/worker-requests.js';

const demo = new URL('../../public/models/demo/', import.meta.url).pathname;
const file = (name: string) => new File([readFileSync(demo + name)], name);
/** The built-in model's config and tokenizer without its weights: it fails once the new device exists. */
const noWeights = { kind: 'files' as const, label: 'no weights', files: [file('config.json'), file('tokenizer.json')] };
const greedy = { promptIds: [1, 20, 30, 40], maxNewTokens: 6, sampling: { temperature: 0, repetitionPenalty: 1 } };

/** What the browser keeps (IndexedDB), in memory: the parts a training run uses. */
function memoryLab() {
  const checkpoints = new Map<string, unknown>();
  const adapters = new Map<string, unknown>();
  return {
    getCheckpoint: async (name: string) => checkpoints.get(name),
    putCheckpoint: async (c: { name: string }) => { checkpoints.set(c.name, structuredClone(c)); },
    listCheckpoints: async () => [],
    putAdapter: async (a: { name: string }) => { adapters.set(a.name, a); },
    keptAdapters: adapters,
  } as unknown as LabStore & { keptAdapters: Map<string, { baseModel: string | null; baseFingerprint?: string }> };
}

/** A worker handler on a real device; `shrink(n)` makes the n-th model scope created refuse any buffer over 1 KB. */
function worker(shrink: (n: number) => boolean = () => false, lab?: LabStore) {
  const events: WorkerEvent[] = [];
  /** Each model's scope of the device, in the order they were made. */
  const scopes: { gpu: Gpu; destroyed: boolean }[] = [];
  const devices: Gpu[] = [];
  const handle = createHandler({
    createGpu: async (opts) => {
      const gpu = await createNodeGpu(opts);
      devices.push(gpu);
      const scope = gpu.scope.bind(gpu);
      gpu.scope = () => {
        const s = scope();
        const d = { gpu: s, destroyed: false };
        scopes.push(d);
        if (shrink(scopes.length)) Object.defineProperty(s, 'maxBufferSize', { value: 1024 });
        const destroy = s.destroy.bind(s);
        s.destroy = () => { d.destroyed = true; destroy(); };
        return s;
      };
      return gpu;
    },
    builtin: () => new NodeDirFiles('built-in model', demo, 'lora-lab/built-in-demo'),
    builtinDataset: async () => new Uint8Array(readFileSync(new URL('../../public/data/alpaca-gpt4-sample-en.json', import.meta.url))),
    builtinAdapter: () => { throw new Error('unused'); },
    dir: (path) => new NodeDirFiles(path, path),
    lab,
  }, (e) => events.push(e));
  const request = requester(handle, events);
  return { request, scopes, devices, handle, events };
}

/**
 * Runs request `id` and, beside it, sends `then` (to the running job) as soon as the first `event` of the job arrives:
 * a stop that reaches a job in flight, as a click does in the app.
 */
async function runAndStop(w: ReturnType<typeof worker>, req: WorkerRequest, event: WorkerEvent['type'], then: WorkerRequest): Promise<void> {
  let sent = false;
  const poll = setInterval(() => {
    if (!sent && w.events.some((e) => e.id === req.id && e.type === event)) { sent = true; void w.handle(then); }
  }, 1);
  try {
    await w.handle(req);
  } finally {
    clearInterval(poll);
  }
}

describe('loading a model', () => {
  it('that fails leaves the loaded model answering as before; one that succeeds replaces it, frees its buffers and compiles nothing again', async () => {
    const w = worker();
    await w.request('init', {});
    await w.request('load', { source: { kind: 'builtin' } });
    const before = await w.request<{ tokens: number[] }>('generate', greedy);
    await w.devices[0].pipelines.idle(); // the kernels the first answer's quick start skipped, compiled after it
    const compiled = w.devices[0].pipelines.compiles;
    const modelBytes = w.scopes[0].gpu.allocatedBytes;

    await expect(w.request('load', { source: noWeights })).rejects.toThrow(/model\.safetensors/);
    // The failed load's buffers are gone; the built-in model's are untouched and it still answers the same.
    expect(w.scopes.map((d) => d.destroyed)).toEqual([false, true]);
    expect(w.scopes[1].gpu.allocatedBytes).toBe(0);
    expect(w.scopes[0].gpu.allocatedBytes).toBe(modelBytes);
    expect((await w.request<{ tokens: number[] }>('generate', greedy)).tokens).toEqual(before.tokens);

    // An adapter folder picked in the model panel: named for what it is, and the model stays.
    const zh = new URL('../../public/adapters/demo-zh/', import.meta.url).pathname;
    const adapterFiles = ['adapter_config.json', 'adapter_model.safetensors'].map((n) => new File([readFileSync(zh + n)], n));
    await expect(w.request('load', { source: { kind: 'files', label: 'demo-zh', files: adapterFiles } })).rejects.toThrow(/demo-zh is a LoRA adapter, not a model: load its base model/);
    expect((await w.request<{ tokens: number[] }>('generate', greedy)).tokens).toEqual(before.tokens);

    await w.request('load', { source: { kind: 'builtin' } });
    expect(w.scopes.map((d) => d.destroyed)).toEqual([true, true, true, false]);
    expect(w.scopes[0].gpu.allocatedBytes).toBe(0);
    expect((await w.request<{ tokens: number[] }>('generate', greedy)).tokens).toEqual(before.tokens);
    // One device all along, and the same model loaded again needed no new kernel.
    expect(w.devices.length).toBe(1);
    await w.devices[0].pipelines.idle();
    expect(w.devices[0].pipelines.compiles).toBe(compiled);
  });

  it('that does not fit beside the loaded one unloads it to make room, and says so when it fails even then', async () => {
    // Scope 2 (beside the first) is out of memory; scope 3 (alone) is not.
    const w = worker((n) => n === 2);
    await w.request('init', {});
    await w.request('load', { source: { kind: 'builtin' } });
    const before = await w.request<{ tokens: number[] }>('generate', greedy);
    await w.request('load', { source: { kind: 'builtin' } });
    expect(w.scopes.map((d) => d.destroyed)).toEqual([true, true, false]);
    expect((await w.request<{ tokens: number[] }>('generate', greedy)).tokens).toEqual(before.tokens);

    // Out of memory beside it and alone: the error says the previous model is gone, and nothing is loaded.
    const v = worker((n) => n >= 2);
    await v.request('init', {});
    await v.request('load', { source: { kind: 'builtin' } });
    await expect(v.request('load', { source: { kind: 'builtin' } })).rejects.toThrow(/The previous model was unloaded to make room for this one: load it again\./);
    await expect(v.request('generate', greedy)).rejects.toThrow(/No model is loaded/);
  });

  it('after a GPU command failed unwatched, answers are refused with a typed error until a load makes a new device', async () => {
    const w = worker();
    await w.request('init', {});
    await w.request('load', { source: { kind: 'builtin' } });
    const before = await w.request<{ tokens: number[] }>('generate', greedy);
    w.devices[0].pipelines.get('broken', 'fn main( {'); // a kernel this driver cannot compile
    await expect(w.request('generate', greedy)).rejects.toMatchObject({ name: 'GpuCommandError', message: expect.stringMatching(/Load the model again/) });
    await w.request('load', { source: { kind: 'builtin' } });
    expect(w.devices).toHaveLength(2); // the failed device is replaced, its model gone with it
    expect((await w.request<{ tokens: number[] }>('generate', greedy)).tokens).toEqual(before.tokens);
  });

  it('one column of a comparison stops on request; the other goes on to the answer it gives alone', async () => {
    const w = worker();
    await w.request('init', {});
    await w.request('load', { source: { kind: 'builtin' } });
    const request = { prompt: 'Describe a process of making crepes.', format: 'chat', maxNewTokens: 24, sampling: { temperature: 0, repetitionPenalty: 1 } };
    const alone = await w.request<{ tokens: number[] }>('generate', request);
    const columns = [{ adapter: null, strength: 1 }, { adapter: null, strength: 1 }];
    // Column 1 is stopped as soon as its first token arrives (the request goes beside the running job).
    await runAndStop(w, { id: 1000, type: 'compare', payload: { request, columns } } as WorkerRequest, 'token', { id: 1001, type: 'stopColumn', payload: { target: 1000, column: 1 } } as WorkerRequest);
    const result = w.events.find((e) => e.id === 1000 && e.type === 'result') as { result: { tokens: number[]; stopReason: string }[] };
    expect(result.result[0].tokens).toEqual(alone.tokens);
    expect(result.result[0].tokens.length).toBe(24);
    expect(result.result[1].stopReason).toBe('aborted');
    expect(result.result[1].tokens.length).toBeLessThan(24);
    expect(alone.tokens.slice(0, result.result[1].tokens.length)).toEqual(result.result[1].tokens);
  });

  it('a run continues on the same weights however they were opened, and never on other weights under the same name', async () => {
    const lab = memoryLab();
    const w = worker(undefined, lab);
    await w.request('init', {});
    // Opened as a folder on disk: its id is the folder's name, "demo".
    const fromDir = await w.request<{ modelId: string; fingerprint: string }>('load', { source: { kind: 'dir', path: demo } });
    expect(fromDir.modelId).toBe('demo');
    // A rank-16 adapter is resident while the rank-8 run trains (the inference bank pads every slot to 16); the model
    // it continues on has none: the checkpoint holds the run's own rank, not the bank's.
    await w.request('loadAdapter', { source: { kind: 'dir', path: new URL('../../public/adapters/demo-zh/', import.meta.url).pathname }, name: 'demo-zh' });
    const config = { rank: 8, steps: 2, microBatch: 1, gradAccumulation: 1, cutoff: 64, checkpointEvery: 1, evalEvery: 0, warmupSteps: 0 };
    // Stopped after its first step (the stop goes beside the running job): a checkpoint at step 1 of 2.
    await runAndStop(w, { id: 2000, type: 'train', payload: { name: 'run', dataset: { kind: 'builtin' }, format: 'chat', config, maxRecords: 4 } } as WorkerRequest,
      'trainStep', { id: 2001, type: 'cancel', payload: { target: 2000 } } as WorkerRequest);
    // The same weights as the built-in model (another id): the run continues.
    const builtin = await w.request<{ modelId: string; fingerprint: string }>('load', { source: { kind: 'builtin' } });
    expect(builtin.modelId).toBe('lora-lab/built-in-demo');
    expect(builtin.fingerprint).toBe(fromDir.fingerprint);
    const steps: number[] = [];
    const cont = w.handle({ id: 2002, type: 'train', payload: { name: 'ignored', dataset: { kind: 'builtin' }, format: 'chat', config: {}, resumeFrom: 'run' } } as WorkerRequest);
    await cont;
    for (const e of w.events) if (e.id === 2002 && e.type === 'trainStep') steps.push(e.metrics.step);
    expect(w.events.find((e) => e.id === 2002 && e.type === 'error')).toBeUndefined();
    expect(steps).toEqual([2]);
    // The finished adapter is kept with the fingerprint of the weights it was trained on.
    expect(lab.keptAdapters.get('run')).toMatchObject({ baseModel: 'lora-lab/built-in-demo', baseFingerprint: fromDir.fingerprint });

    // One weight changed, opened under the same name "demo": other weights, so the run is refused, saying why.
    const bytes = new Uint8Array(readFileSync(demo + 'model.safetensors'));
    bytes[bytes.length - 1] ^= 1;
    const other = [file('config.json'), file('tokenizer.json'), new File([bytes], 'model.safetensors')];
    const changed = await w.request<{ modelId: string; fingerprint: string }>('load', { source: { kind: 'files', label: 'demo', files: other } });
    expect(changed.modelId).toBe('demo');
    expect(changed.fingerprint).not.toBe(fromDir.fingerprint);
    // "run" is finished now: a new run stopped at step 1 on the built-in weights, then the changed model again.
    await w.request('load', { source: { kind: 'builtin' } });
    await runAndStop(w, { id: 2003, type: 'train', payload: { name: 'run-2', dataset: { kind: 'builtin' }, format: 'chat', config, maxRecords: 4 } } as WorkerRequest,
      'trainStep', { id: 2004, type: 'cancel', payload: { target: 2003 } } as WorkerRequest);
    await w.request('load', { source: { kind: 'files', label: 'demo', files: other } });
    await expect(w.request('train', { name: 'x', dataset: { kind: 'builtin' }, format: 'chat', config: {}, resumeFrom: 'run-2' }))
      .rejects.toThrow(/Run "run-2" was trained on lora-lab\/built-in-demo, a model with other weights than demo: load that model first/);
  });
});

describe('a paused training run', () => {
  const until = async (w: ReturnType<typeof worker>, ok: () => boolean, what: string) => {
    for (const t0 = Date.now(); !ok(); await new Promise((r) => setTimeout(r, 5))) if (Date.now() - t0 > 120_000) throw new Error(`no ${what} in 2 min`);
  };
  const config = { rank: 4, steps: 3, microBatch: 1, gradAccumulation: 1, cutoff: 64, checkpointEvery: 0, evalEvery: 0, warmupSteps: 0, seed: 3 };
  const train = (id: number, name: string) => ({ id, type: 'train', payload: { name, dataset: { kind: 'builtin' }, format: 'chat', config, maxRecords: 4 } }) as WorkerRequest;
  const losses = (w: ReturnType<typeof worker>, id: number) => w.events.flatMap((e) => (e.id === id && e.type === 'trainStep' ? [e.metrics.trainLoss] : []));

  it('lends the GPU to a chat and a comparison, refuses a load, and goes on to the losses of a run left alone', async () => {
    const w = worker();
    await w.request('init', {});
    await w.request('load', { source: { kind: 'builtin' } });
    const before = await w.request<{ tokens: number[] }>('generate', greedy);
    await w.handle(train(3000, 'alone'));
    const alone = losses(w, 3000);
    expect(alone).toHaveLength(3);

    const run = w.handle(train(3001, 'paused'));
    await until(w, () => losses(w, 3001).length >= 1, 'first step');
    await w.handle({ id: 3002, type: 'pauseTraining', payload: { target: 3001, paused: true } } as WorkerRequest);
    await until(w, () => w.events.some((e) => e.id === 3001 && e.type === 'trainPaused'), 'pause');
    const stepsAtPause = losses(w, 3001).length; // the step under way when it was asked went on
    // The answers come while the run waits, and are the answers of a model that trains nothing.
    expect((await w.request<{ tokens: number[] }>('generate', greedy)).tokens).toEqual(before.tokens);
    const columns = await w.request<{ tokens: number[] }[]>('compare', { request: greedy, columns: [{ adapter: null, strength: 1 }, { adapter: null, strength: 1 }] });
    expect(columns.map((c) => c.tokens)).toEqual([before.tokens, before.tokens]);
    await expect(w.request('load', { source: { kind: 'builtin' } })).rejects.toThrow(/A training run is paused on the loaded model: stop it/);
    expect(losses(w, 3001)).toHaveLength(stepsAtPause);
    expect(stepsAtPause).toBeLessThan(3);

    await w.handle({ id: 3003, type: 'pauseTraining', payload: { target: 3001, paused: false } } as WorkerRequest);
    await run;
    expect(w.events.find((e) => e.id === 3001 && e.type === 'error')).toBeUndefined();
    expect(losses(w, 3001)).toEqual(alone);
    // The KV cache was used beside the run: the next answer reads its prompt anew, and is the same.
    expect((await w.request<{ tokens: number[] }>('generate', greedy)).tokens).toEqual(before.tokens);

    // Stopped while paused: it wakes, takes its turn back, ends, and gives the GPU up for good.
    const stopped = w.handle(train(3004, 'stopped'));
    await until(w, () => losses(w, 3004).length >= 1, 'first step');
    await w.handle({ id: 3005, type: 'pauseTraining', payload: { target: 3004, paused: true } } as WorkerRequest);
    await until(w, () => w.events.some((e) => e.id === 3004 && e.type === 'trainPaused'), 'pause');
    await w.handle({ id: 3006, type: 'cancel', payload: { target: 3004 } } as WorkerRequest);
    await stopped;
    expect(losses(w, 3004).length).toBeLessThan(3);
    expect((await w.request<{ tokens: number[] }>('generate', greedy)).tokens).toEqual(before.tokens);
    await w.request('load', { source: { kind: 'builtin' } }); // no run holds the model any more
  });
});

describe('a reward model trained in the worker', () => {
  /** One kept evaluation of two models with a finished blind review, in memory. */
  function reviewedLab() {
    const examples = Array.from({ length: 6 }, (_, i) => ({ id: `e${i}`, instruction: `Name a colour, number ${i}.`, input: '' }));
    const results = examples.flatMap((e, i) => [
      { id: e.id, model: 'base', prediction: `blue ${i}`, predictionTokens: 2, stopReason: 'eos', runId: 'run-1' },
      { id: e.id, model: 'tuned@1', prediction: `I like the colour green number ${i}.`, predictionTokens: 8, stopReason: 'eos', runId: 'run-1' },
    ]);
    const verdicts = ['A', 'B', 'A', 'tie', 'A', 'B'] as const;
    const votes = examples.map((e, i) => ({ pairId: `p${i}`, exampleId: e.id, sides: ['tuned@1', 'base'] as [string, string], criterion: 'helpfulness' as const, verdict: verdicts[i] }));
    const honestTies = examples.map((e, i) => ({ ...votes[i], criterion: 'honesty' as const, verdict: 'tie' as const }));
    const adapters = new Map<string, { name: string; config: string; safetensors: Uint8Array; kind?: string }>();
    return {
      listRuns: async () => [{ id: 'run-1', examples }],
      getRun: async () => ({ id: 'run-1', examples }),
      results: async () => results,
      putResult: async (r: { id: string; model: string }) => { const i = results.findIndex((x) => x.id === r.id && x.model === r.model); results[i] = r as never; },
      reviews: async () => [{ id: 'rv', runId: 'run-1', votes: [...votes, ...honestTies], finished: true }],
      getAdapter: async (name: string) => adapters.get(name),
      putAdapter: async (a: { name: string; config: string; safetensors: Uint8Array }) => { adapters.set(a.name, a); },
      adapters, rows: results,
    } as unknown as LabStore & { adapters: typeof adapters; rows: typeof results };
  }
  const config = { steps: 2, microBatch: 2, gradAccumulation: 1, cutoff: 40, warmupSteps: 0, evalEvery: 0, validationFraction: 0 };

  it('learns from the votes kept here, is kept with the adapters, becomes the reward model and scores the run', async () => {
    const lab = reviewedLab();
    const w = worker(undefined, lab);
    await w.request('load', { source: { kind: 'builtin' } });
    const r = await w.request<{ info: { label: string; runtime: string }; pairs: { train: number } }>('rewardTrain', { name: 'rm', data: { kind: 'votes', criterion: 'helpfulness' }, config });
    expect(r.info).toMatchObject({ label: 'rm', runtime: 'lora-lab' });
    expect(r.pairs.train).toBe(5); // six votes, one a tie
    const steps = w.events.filter((e) => e.type === 'trainStep').map((e) => (e as unknown as { metrics: { step: number; accuracy: number } }).metrics);
    expect(steps.map((m) => m.step)).toEqual([1, 2]);
    expect(steps.every((m) => m.accuracy >= 0 && m.accuracy <= 1)).toBe(true);
    const kept = lab.adapters.get('rm')!;
    expect(kept.kind).toBe('reward');
    expect(JSON.parse(kept.config).task_type).toBe('SEQ_CLS');
    // It is the loaded reward model: every answer of the run gets its score.
    expect(await w.request('rewardScoreRun', { runId: 'run-1' })).toEqual({ scored: 12 });
    expect(lab.rows.every((x) => Number.isFinite((x as { reward?: number }).reward) && (x as { rewardModel?: string }).rewardModel === 'rm')).toBe(true);
    // Loaded back by name, it scores as before; as an adapter for generation it is refused, saying what it is.
    const [before] = await w.request<{ score: number }[]>('rewardScore', { items: [{ question: 'Name a colour.', answer: 'Green.' }] });
    await w.request('rewardUnload', {});
    await w.request('rewardLoad', { source: { kind: 'kept', name: 'rm' } });
    const [after] = await w.request<{ score: number }[]>('rewardScore', { items: [{ question: 'Name a colour.', answer: 'Green.' }] });
    expect(after.score).toBeCloseTo(before.score, 5);
    await expect(w.request('loadAdapter', { source: { kind: 'kept', name: 'rm' } })).rejects.toThrow(/is a reward model/);
    // The name is taken; votes that never prefer an answer train nothing.
    await expect(w.request('rewardTrain', { name: 'rm', data: { kind: 'votes', criterion: 'helpfulness' }, config })).rejects.toThrow(/"rm" is kept in this browser/);
    await expect(w.request('rewardTrain', { name: 'rm2', data: { kind: 'votes', criterion: 'honesty' }, config })).rejects.toThrow(/No review kept here has a vote on honesty that prefers one answer/);
  });
});
