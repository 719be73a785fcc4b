// The worker's recipe and push requests, on a real device with the built-in model: a saved run's recipe holds exactly
// the examples it trained on; an adapter, a run's recipe and a kept dataset are pushed to the local hub as one commit
// each, the token reaching the hub's origin only; the token kept in this browser is never sent to a mirror.

import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlobReader, Uint8ArrayWriter, ZipReader } from '@zip.js/zip.js';
import { parseDataset } from '../../src/lib/data/records.js';
import { createNodeGpu } from '../../src/lib/gpu/node.js';
import { NodeDirFiles } from '../../src/lib/hub/node-files.js';
import { TextTokenizer } from '../../src/lib/tokenizer/tokenizer.js';
import { buildExamples } from '../../src/lib/training/session.js';
import { DEFAULT_TRAIN_CONFIG } from '../../src/lib/training/train-config.js';
import { createHandler } from '../../src/lib/worker/handler.js';
import type { WorkerEvent } from '../../src/lib/worker/protocol.js';
import type { LabStore } from '../../src/lib/store/kept.js';
import { startCommitHub, type CommitHub } from '../helpers/hub-commit-server.js';
import { requester } from '../helpers/worker-requests.js';

const TOKEN = 'hf_workerPush7';
const demo = new URL('../../public/models/demo/', import.meta.url).pathname;
const sample = () => new Uint8Array(readFileSync(new URL('../../public/data/alpaca-gpt4-sample-en.json', import.meta.url)));
let hub: CommitHub;
beforeAll(async () => { hub = await startCommitHub(TOKEN); });
afterAll(async () => { await hub.close(); });

/** The parts of what the browser keeps that these requests use, in memory. */
function memoryLab() {
  const checkpoints = new Map<string, unknown>();
  const datasets = new Map<string, { name: string; bytes: Uint8Array }>([['answers.json', { name: 'answers.json', bytes: new TextEncoder().encode('[{"instruction":"a","input":"","output":"b"}]') }]]);
  return {
    getCheckpoint: async (name: string) => checkpoints.get(name),
    putCheckpoint: async (c: { name: string }) => { checkpoints.set(c.name, structuredClone(c)); },
    listCheckpoints: async () => [],
    putAdapter: async () => {},
    getDataset: async (name: string) => datasets.get(name),
    getSetting: async (key: string) => (key === 'hfToken' ? 'hf_keptTokenNeverToMirrors' : undefined),
  } as unknown as LabStore;
}

async function unzip(blob: Blob): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  for (const e of await new ZipReader(new BlobReader(blob)).getEntries()) if (!e.directory) out.set(e.filename, await e.getData!(new Uint8ArrayWriter()));
  return out;
}

describe('recipe and push from the worker', () => {
  it('exports a saved run\'s recipe with its exact examples, and pushes an adapter, a recipe and a dataset', async () => {
    const events: WorkerEvent[] = [];
    const handle = createHandler({
      createGpu: (opts) => createNodeGpu(opts),
      builtin: () => new NodeDirFiles('built-in model', demo, 'lora-lab/built-in-demo'),
      builtinDataset: async () => sample(),
      builtinAdapter: () => { throw new Error('unused'); },
      dir: (path) => new NodeDirFiles(path, path),
      lab: memoryLab(),
    }, (e) => events.push(e));
    const request = requester(handle, events);
    await request('init', { hfEndpoint: hub.endpoint });
    await request('load', { source: { kind: 'builtin' } });
    const config = { rank: 4, steps: 1, microBatch: 1, gradAccumulation: 1, cutoff: 80, checkpointEvery: 1, evalEvery: 0, warmupSteps: 0, validationFraction: 0.25 };
    await request('train', { name: 'run', dataset: { kind: 'builtin' }, format: 'alpaca', config, maxRecords: 8 });

    const { name, blob } = await request<{ name: string; blob: Blob }>('exportRecipe', { name: 'run', gpus: 2 });
    expect(name).toBe('run-recipe.zip');
    const files = await unzip(blob);
    const model = new NodeDirFiles('demo', demo);
    const tok = await TextTokenizer.fromFiles(model);
    const records = await parseDataset(sample(), 'x.json');
    const ours = buildExamples(tok, tok.eosTokenIds[0], { name: 'x', records, format: 'alpaca', config: {}, baseModel: null, maxRecords: 8 }, { ...DEFAULT_TRAIN_CONFIG, ...config });
    const rows = (f: string) => new TextDecoder().decode(files.get(f)).trim().split('\n').map((l) => JSON.parse(l).input_ids);
    expect(rows('run-recipe/data/train.jsonl')).toEqual(ours.train.map((e) => e.ids));
    expect(rows('run-recipe/data/validation.jsonl')).toEqual(ours.validation.map((e) => e.ids));
    expect(files.has('run-recipe/train_trl.py')).toBe(true);

    // The adapter on the shelf (the finished run), with its model card, to a model repo.
    const pushed = await request<{ created: boolean; repoUrl: string }>('pushToHub', { what: { kind: 'adapter', name: 'run' }, repo: 'me/run', token: TOKEN });
    expect(pushed.created).toBe(true);
    expect([...hub.repos.get('model:me/run')!.files.keys()].sort()).toEqual(['README.md', 'adapter_config.json', 'adapter_model.safetensors']);
    await request('pushToHub', { what: { kind: 'recipe', name: 'run', gpus: 4 }, repo: 'me/run-recipe', token: TOKEN });
    expect(hub.repos.get('model:me/run-recipe')!.files.has('accelerate/fsdp.yaml')).toBe(true);
    await request('pushToHub', { what: { kind: 'merged', name: 'run', strength: 1 }, repo: 'me/run-merged', token: TOKEN });
    const merged = hub.repos.get('model:me/run-merged')!.files;
    expect([...merged.keys()].sort()).toEqual(expect.arrayContaining(['README.md', 'config.json', 'model.safetensors']));
    await request('pushToHub', { what: { kind: 'dataset', name: 'answers.json' }, repo: 'me/answers', token: TOKEN, private: true });
    expect([...hub.repos.get('dataset:me/answers')!.files.keys()]).toEqual(['answers.json']);
    expect(hub.log.filter((l) => l.origin === 'storage').every((l) => l.auth === null)).toBe(true);
    expect(hub.log.filter((l) => l.origin === 'hub').every((l) => l.auth === `Bearer ${TOKEN}`)).toBe(true);

    // The hub endpoint here is a mirror (set by init): the token kept in this browser is not sent to it.
    const n = hub.log.length;
    await expect(request('pushToHub', { what: { kind: 'adapter', name: 'run' }, repo: 'me/run' })).rejects.toThrow(/needs a Hugging Face token/);
    expect(hub.log.length).toBe(n);
  });
});
