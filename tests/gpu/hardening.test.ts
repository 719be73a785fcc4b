// Bad models and runs on the GPU path: NaN/Inf in weights (refused while streaming, naming file, tensor and index),
// weights that overflow at run time (a typed error, never token id -1), training that diverges (stopped or skipped
// without touching the parameters), checkpoints that contradict their config, and file names that try to leave
// their repo or folder (no request outside the repo; the token goes nowhere else).

import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exampleFromIds } from '../../src/lib/data/examples.js';
import { Engine } from '../../src/lib/engine.js';
import { GpuCommandError, NonFiniteError, TokenizerError, UnsafePathError, WeightMismatchError } from '../../src/lib/errors.js';
import { createNodeGpu } from '../../src/lib/gpu/node.js';
import { encodeFromF32, type DType } from '../../src/lib/formats/dtype.js';
import { writeSafetensors } from '../../src/lib/formats/safetensors.js';
import { MemoryFiles } from '../../src/lib/model-files.js';
import { huggingFaceFiles } from '../../src/lib/hub/files.js';
import { NodeDirFiles } from '../../src/lib/hub/node-files.js';
import { loadWeights } from '../../src/lib/model/load.js';
import { syntheticModel, type SyntheticSpec } from '../../src/lib/model/synthetic.js';
import { DEFAULT_TRAIN_CONFIG, type TrainConfig } from '../../src/lib/training/train-config.js';
import { Trainer } from '../../src/lib/training/trainer.js';
import { testGpu } from '../helpers/gpu.js';
import { startHfServer, type HfServer } from '../helpers/hf-server.js';
import { tinyRunner } from '../helpers/models.js';
import { tinyTokenizerJson } from '../helpers/tiny-tokenizer.js';

const spec: SyntheticSpec = { hiddenSize: 24, intermediateSize: 40, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 6, vocabSize: 61, tied: false, seed: 5 };
const enc = new TextEncoder();

/** Model files for `spec` with tensors edited, extra tensors added, or the config edited. */
function files(opts: { dtype?: DType; edit?: (name: string, data: Float32Array) => void; extra?: string[]; config?: (c: Record<string, unknown>) => void; tokenizer?: Uint8Array } = {}) {
  const m = syntheticModel({ ...spec, dtype: opts.dtype });
  const dtype = opts.dtype ?? 'F32';
  const tensors = [...m.tensors].map(([name, t]) => {
    const data = t.data.slice();
    opts.edit?.(name, data);
    return { name, dtype, shape: t.shape, data: encodeFromF32(data, dtype) };
  });
  for (const name of opts.extra ?? []) tensors.push({ name, dtype, shape: [spec.hiddenSize], data: encodeFromF32(new Float32Array(spec.hiddenSize).fill(1), dtype) });
  const config = { ...m.config };
  opts.config?.(config);
  return new MemoryFiles('bad-model', new Map([
    ['config.json', enc.encode(JSON.stringify(config))],
    ['model.safetensors', writeSafetensors(tensors, { format: 'pt' })],
    ['tokenizer.json', opts.tokenizer ?? tinyTokenizerJson(spec.vocabSize)],
  ]));
}

describe('weights are checked while they stream', () => {
  it.each([
    ['F32', 'model.layers.1.mlp.down_proj.weight', 17, NaN],
    ['F16', 'model.layers.0.input_layernorm.weight', 3, Infinity],
    ['BF16', 'lm_head.weight', 100, -Infinity],
  ] as const)('a %s checkpoint with a non-finite value in %s is refused, naming file, tensor and index', async (dtype, tensor, index, value) => {
    for (const f16 of [false, true]) {
      const gpu = await testGpu({ f16 });
      const err = await loadWeights(gpu, files({ dtype, edit: (n, d) => { if (n === tensor) d[index] = value; } })).catch((e) => e);
      expect(err).toBeInstanceOf(NonFiniteError);
      expect(err.details).toMatchObject({ file: 'model.safetensors', tensor, index });
    }
  });

  it('a finite f32 weight beyond the f16 range is refused with f16 storage and loads with f32', async () => {
    const big = files({ edit: (n, d) => { if (n === 'model.layers.0.self_attn.q_proj.weight') d[9] = 1e6; } });
    const err = await loadWeights(await testGpu({ f16: true }), big).catch((e) => e);
    expect(err).toBeInstanceOf(NonFiniteError);
    expect(err.message).toMatch(/beyond the f16 range .* --f32/);
    await expect(loadWeights(await testGpu({ f16: false }), big)).resolves.toBeTruthy();
  });

  it('tensors the config does not describe are refused: layers past num_hidden_layers, unknown layer tensors', async () => {
    const gpu = await testGpu();
    const fewer = await loadWeights(gpu, files({ config: (c) => { c.num_hidden_layers = 1; } })).catch((e) => e);
    expect(fewer).toBeInstanceOf(WeightMismatchError);
    expect(fewer.message).toMatch(/is for layer 1, but config\.json has num_hidden_layers 1/);
    const unknown = await loadWeights(gpu, files({ extra: ['model.layers.0.self_attn.q_norm.weight'] })).catch((e) => e);
    expect(unknown).toBeInstanceOf(WeightMismatchError);
    expect(unknown.message).toMatch(/q_norm\.weight" is not part of a LlamaForCausalLM/);
    // Rotary caches that older exporters saved are not weights, and are fine.
    await expect(loadWeights(gpu, files({ extra: ['model.layers.0.self_attn.rotary_emb.inv_freq'] }))).resolves.toBeTruthy();
  });

  it('a tokenizer with more ids than vocab_size is refused when the model loads', async () => {
    const engine = new Engine(await testGpu(), { contextLength: 32, slots: 1 });
    const err = await engine.load(files({ tokenizer: tinyTokenizerJson(spec.vocabSize + 5) })).catch((e) => e);
    expect(err).toBeInstanceOf(TokenizerError);
    expect(err.message).toMatch(/ids up to 65 but config\.json has vocab_size 61/);
  });
});

describe('non-finite values at run time', () => {
  it('logits that overflow end generation with NonFiniteError, never a token id of -1', async () => {
    const engine = new Engine(await testGpu(), { contextLength: 32, slots: 1 });
    await engine.load(files({ edit: (n, d) => { if (n === 'lm_head.weight') d.forEach((_, i) => { d[i] = (i % 2 ? 3e38 : -3e38); }); } }));
    const err = await engine.generate({ promptIds: [3, 4, 5], maxNewTokens: 4, sampling: { temperature: 0 } }).catch((e) => e);
    expect(err).toBeInstanceOf(NonFiniteError);
    expect(err.message).toMatch(/non-finite logits .* generated token 1/);
    // The engine keeps working for a sound model afterwards.
    await engine.load(files());
    const ok = await engine.generate({ promptIds: [3, 4, 5], maxNewTokens: 4, sampling: { temperature: 0 } });
    expect(ok.tokens.every((t) => t >= 0 && t < spec.vocabSize)).toBe(true);
  });

  it('a GPU command that failed unwatched (a kernel that did not compile) stops generation with a typed error, not void tokens', async () => {
    // A device of its own: this one is meant to end with an error no scope caught (gpu-setup.ts checks the shared ones).
    const gpu = await createNodeGpu();
    try {
      const engine = new Engine(gpu, { contextLength: 32, slots: 1 });
      await engine.load(files());
      const ok = await engine.generate({ promptIds: [3, 4, 5], maxNewTokens: 2, sampling: { temperature: 0 } });
      expect(ok.tokens).toHaveLength(2);
      // What a driver that cannot compile one of our kernels does: an invalid pipeline, whose dispatches do nothing.
      gpu.pipelines.get('broken', 'fn main( {');
      const err = await engine.generate({ promptIds: [3, 4, 5], maxNewTokens: 2, sampling: { temperature: 0 } }).catch((e) => e);
      expect(err).toBeInstanceOf(GpuCommandError);
      expect(err.message).toMatch(/A GPU command failed on .*Load the model again/);
      await expect(engine.load(files())).rejects.toBeInstanceOf(GpuCommandError); // the device stays refused
    } finally {
      gpu.destroy();
    }
  });

  const data = [[[10, 11], [20, 21, 22, 2]], [[12, 13], [23, 24, 25, 2]], [[14, 15], [26, 27, 28, 2]]].map(([p, r]) => exampleFromIds(p, r));
  const config: TrainConfig = { ...DEFAULT_TRAIN_CONFIG, rank: 4, alpha: 8, dropout: 0, targetModules: ['q_proj', 'v_proj'], learningRate: 1e-2, warmupSteps: 0, steps: 6, microBatch: 1, gradAccumulation: 1, cutoff: 8, evalEvery: 0, checkpointEvery: 2, seed: 3 };

  /** Trains 3 good steps, then poisons the adapter's A on the GPU, so step 4's loss is NaN. */
  async function poisonedRun(nonFinite: 'stop' | 'skip') {
    const gpu = await testGpu();
    const { runner } = await tinyRunner(gpu, spec, { slots: 2, contextLength: 16, maxRows: 16 });
    const trainer = new Trainer(gpu, runner.model, `poison-${nonFinite}`, { ...config, nonFinite }, { train: data, validation: [] }, 'tiny');
    const steps: { step: number; skipped: boolean; loss: number }[] = [];
    const hooks = { onStep: (m: { step: number; skipped: boolean; trainLoss: number }) => steps.push({ step: m.step, skipped: m.skipped, loss: m.trainLoss }), onCheckpoint: () => {} };
    await trainer.run(hooks, {}, 3);
    const before = await trainer.step.saveState();
    const tp = trainer.step.params[0];
    const R = runner.lora.rank;
    const nan = new Float32Array(tp.lg.G * R * tp.lg.K).fill(NaN);
    gpu.device.queue.writeBuffer(tp.lg.a, trainer.step.slot * nan.byteLength, nan);
    gpu.device.queue.writeBuffer(tp.a, 0, nan);
    const err = await trainer.run(hooks).then(() => null, (e) => e);
    const after = await trainer.step.saveState();
    trainer.destroy();
    return { err, steps, before, after, trainer };
  }

  it("a non-finite loss stops the run at that step without applying it ('stop')", async () => {
    const { err, steps, before, after, trainer } = await poisonedRun('stop');
    expect(err).toBeInstanceOf(NonFiniteError);
    expect(err.details).toMatchObject({ step: 4, lastCheckpointStep: 2 });
    expect(err.message).toMatch(/diverged at step 4.*last good checkpoint \(step 2\) is kept/);
    expect(steps.map((s) => s.step)).toEqual([1, 2, 3]);
    expect(trainer.stepsDone).toBe(3);
    // Moments and B untouched by the bad step.
    for (let i = 0; i < before.tensors.length; i++) {
      for (const f of ['b', 'mA', 'vA', 'mB', 'vB'] as const) expect(after.tensors[i][f]).toEqual(before.tensors[i][f]);
    }
  });

  it("with 'skip' the bad steps are dropped and reported, and the run completes", async () => {
    const { err, steps, before, after } = await poisonedRun('skip');
    expect(err).toBeNull();
    expect(steps.map((s) => s.skipped)).toEqual([false, false, false, true, true, true]);
    for (let i = 0; i < before.tensors.length; i++) {
      for (const f of ['b', 'mA', 'vA', 'mB', 'vB'] as const) expect(after.tensors[i][f]).toEqual(before.tensors[i][f]);
    }
  });
});

describe('file names from files stay inside their repo or folder', () => {
  let server: HfServer;
  const m = syntheticModel(spec);
  const redirects = new Map<string, string>();
  const index = (to: string) => enc.encode(JSON.stringify({ weight_map: { 'model.embed_tokens.weight': to } }));
  beforeAll(async () => {
    const good = new Map([['config.json', enc.encode(JSON.stringify(m.config))], ['model.safetensors', m.safetensors]]);
    server = await startHfServer({
      'tests/evil': { files: new Map([['config.json', enc.encode(JSON.stringify(m.config))], ['model.safetensors.index.json', index('../../x.safetensors')]]), token: 'hf_secret' },
      'tests/encoded': { files: new Map([['config.json', enc.encode(JSON.stringify(m.config))], ['model.safetensors.index.json', index('%2e%2e/%2e%2e/x.safetensors')]]) },
      'tests/redirect': { files: good, token: 'hf_secret', redirects },
      'cdn/lfs': { files: good },
    });
    // Another origin (localhost, not 127.0.0.1), as the hub's CDN is another host.
    redirects.set('model.safetensors', `${server.endpoint.replace('127.0.0.1', 'localhost')}/cdn/lfs/resolve/main/model.safetensors`);
  });
  afterAll(() => server.close());

  it.each(['../../x.safetensors', '/etc/x.safetensors', 'https://evil.example/x.safetensors', 'a/../../x.safetensors'])('an index naming %s is refused before any request leaves the repo', async (to) => {
    const gpu = await testGpu();
    const repoFiles = new Map([['config.json', enc.encode(JSON.stringify(m.config))], ['model.safetensors.index.json', index(to)]]);
    const local = await loadWeights(gpu, new MemoryFiles('m', repoFiles)).catch((e) => e);
    expect(local).toBeInstanceOf(UnsafePathError);
    const n = server.requests.length;
    const err = await loadWeights(gpu, huggingFaceFiles('tests/evil', 'main', { endpoint: server.endpoint, token: 'hf_secret' })).catch((e) => e);
    expect(err).toBeInstanceOf(UnsafePathError);
    for (const url of server.requests.slice(n)) expect(url.startsWith('/tests/evil/resolve/main/')).toBe(true);
  });

  it('percent-encoded dots stay a literal file name inside the repo', async () => {
    const n = server.requests.length;
    await loadWeights(await testGpu(), huggingFaceFiles('tests/encoded', 'main', { endpoint: server.endpoint })).catch(() => {});
    const urls = server.requests.slice(n);
    expect(urls).toContain('/tests/encoded/resolve/main/%252e%252e/%252e%252e/x.safetensors');
    for (const url of urls) expect(url.startsWith('/tests/encoded/resolve/main/')).toBe(true);
  });

  it('a local folder cannot be left through the index, and the token is not sent to another host on a redirect', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lora-lab-'));
    mkdirSync(join(dir, 'model'));
    writeFileSync(join(dir, 'outside.safetensors'), m.safetensors);
    writeFileSync(join(dir, 'model', 'config.json'), JSON.stringify(m.config));
    writeFileSync(join(dir, 'model', 'model.safetensors.index.json'), index('../outside.safetensors'));
    const err = await loadWeights(await testGpu(), new NodeDirFiles(join(dir, 'model'))).catch((e) => e);
    expect(err).toBeInstanceOf(UnsafePathError);

    // The hub answers LFS files with a redirect to its CDN: the bearer token must not follow to another origin.
    const n = server.requests.length;
    const hf = huggingFaceFiles('tests/redirect', 'main', { endpoint: server.endpoint, token: 'hf_secret' });
    const loaded = await loadWeights(await testGpu(), hf);
    expect(loaded.config.numLayers).toBe(spec.numLayers);
    const seen = server.requests.slice(n).map((url, i) => [url, server.authorizations[n + i]]);
    expect(seen).toContainEqual(['/tests/redirect/resolve/main/model.safetensors', 'Bearer hf_secret']);
    expect(seen).toContainEqual(['/cdn/lfs/resolve/main/model.safetensors', null]);
  });
});
