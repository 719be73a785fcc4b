// The real download code (Hugging Face URL layout, sharded checkpoints, progress, errors) against a local server.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DownloadError } from '../../src/lib/errors.js';
import { bf16ToF32, encodeFromF32, f32ToBF16 } from '../../src/lib/formats/dtype.js';
import { writeSafetensors } from '../../src/lib/formats/safetensors.js';
import { huggingFaceFiles } from '../../src/lib/hub/files.js';
import { parseSourceText, resolveSource } from '../../src/lib/hub/source.js';
import { loadWeights, type LoadProgress } from '../../src/lib/model/load.js';
import { ModelRunner } from '../../src/lib/model/runner.js';
import { LoraBank } from '../../src/lib/lora/bank.js';
import { LoadedModel } from '../../src/lib/model/loaded.js';
import { syntheticModel } from '../../src/lib/model/synthetic.js';
import { expectClose } from '../helpers/compare.js';
import { testGpu } from '../helpers/gpu.js';
import { startHfServer, type HfServer } from '../helpers/hf-server.js';
import { TINY_CONFIGS } from '../helpers/models.js';
import { referenceForward } from '../reference/llama.js';

const spec = { ...TINY_CONFIGS.llamaGqaUntied, dtype: 'BF16' as const };
const model = syntheticModel(spec);
const enc = new TextEncoder();

function shardedFiles(): Map<string, Uint8Array> {
  const names = [...model.tensors.keys()];
  const half = Math.ceil(names.length / 2);
  const shards = [names.slice(0, half), names.slice(half)];
  const files = new Map<string, Uint8Array>([['config.json', enc.encode(JSON.stringify(model.config))]]);
  const weightMap: Record<string, string> = {};
  shards.forEach((list, i) => {
    const file = `model-0000${i + 1}-of-00002.safetensors`;
    files.set(file, writeSafetensors(list.map((name) => {
      const t = model.tensors.get(name)!;
      weightMap[name] = file;
      return { name, dtype: 'BF16', shape: t.shape, data: encodeFromF32(t.data, 'BF16') };
    }), { format: 'pt' }));
  });
  files.set('model.safetensors.index.json', enc.encode(JSON.stringify({ metadata: {}, weight_map: weightMap })));
  return files;
}

describe('downloads with the Hugging Face URL layout', () => {
  let server: HfServer;
  beforeAll(async () => {
    server = await startHfServer({
      'tests/sharded-llama': { files: shardedFiles() },
      'tests/gated': { files: shardedFiles(), token: 'hf_secret' },
    });
  });
  afterAll(() => server.close());

  it('loads a sharded BF16 model with per-file progress, and it computes the reference logits', async () => {
    const gpu = await testGpu();
    const files = resolveSource(parseSourceText('tests/sharded-llama@main'), { builtin: () => { throw new Error('unused'); }, hfEndpoint: server.endpoint });
    const progress: LoadProgress[] = [];
    const loaded = await loadWeights(gpu, files, (p) => progress.push(p));
    expect(server.requests).toContain('/tests/sharded-llama/resolve/main/model.safetensors.index.json');
    expect(new Set(progress.map((p) => p.file))).toEqual(new Set(['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']));
    const last = progress[progress.length - 1];
    expect(last.allLoaded).toBe(last.allTotal);
    expect(progress.length).toBeGreaterThan(2);
    for (let i = 1; i < progress.length; i++) expect(progress[i].allLoaded).toBeGreaterThanOrEqual(progress[i - 1].allLoaded);

    const runner = new ModelRunner(new LoadedModel(gpu, loaded.config, loaded.weights, new LoraBank(gpu, loaded.config)), { slots: 1, contextLength: 16, maxRows: 16 });
    const prompt = [3, 1, 4, 1, 5, 9, 2, 6];
    await runner.forward({ tokens: prompt, slots: prompt.map(() => 0), positions: prompt.map((_, i) => i), seqs: 1, lastStride: 8, lastOffset: 7 });
    // The reference runs on the BF16-rounded weights the file holds.
    const rounded = new Map([...model.tensors].map(([n, t]) => [n, { shape: t.shape, data: Float32Array.from(t.data, (v) => bf16ToF32(f32ToBF16(v))) }]));
    const ref = referenceForward(loaded.config, rounded, prompt)[7];
    const scale = Math.max(...Array.from(ref, Math.abs));
    expectClose(await runner.readLogits(1), ref, 1e-5 * scale, 0, 'logits of the downloaded model');
  });

  it('a missing file is a 404 DownloadError naming the file and what to do', async () => {
    const files = huggingFaceFiles('tests/sharded-llama', 'main', { endpoint: server.endpoint });
    const err = await files.bytes('tokenizer.json').catch((e) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect(err.details).toMatchObject({ status: 404, file: 'tokenizer.json' });
    expect(err.message).toMatch(/tokenizer\.json: 404 .*Check the repo id/);
    // Optional files (generation_config.json) are simply absent.
    expect(await files.bytes('generation_config.json', true)).toBeNull();
  });

  it('a gated repo without a token is a 401 DownloadError that asks for a token; with it, it loads', async () => {
    const anon = huggingFaceFiles('tests/gated', 'main', { endpoint: server.endpoint });
    const err = await anon.bytes('config.json').catch((e) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect(err.details.status).toBe(401);
    expect(err.message).toMatch(/gated or private.*access token/);
    const authed = huggingFaceFiles('tests/gated', 'main', { endpoint: server.endpoint, token: 'hf_secret' });
    expect(JSON.parse(new TextDecoder().decode((await authed.bytes('config.json'))!)).hidden_size).toBe(37);
  });

  it('an unknown revision is a 404 naming the file', async () => {
    const files = huggingFaceFiles('tests/nope', 'v2', { endpoint: server.endpoint });
    await expect(files.bytes('config.json')).rejects.toThrow(/config\.json: 404/);
  });
});
