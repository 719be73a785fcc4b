// Vitest browser mode (Chromium, SwiftShader WebGPU): the engine inside the real Worker loads the demo model
// from the dev server and streams tokens through the typed protocol.

import { describe, expect, it } from 'vitest';
import { ContextOverflowError, NoModelLoadedError } from '../../src/lib/errors.js';
import { EngineClient } from '../../src/lib/worker/client.js';

function client() {
  return new EngineClient(() => new Worker(new URL('../../workers/engine.worker.ts', import.meta.url), { type: 'module' }));
}

// One worker for the tests below, in order: each new worker compiles every kernel again, which takes SwiftShader tens
// of seconds. The training test goes on in it too.
const c = client();

describe('engine worker', () => {
  it('loads the built-in model with progress and streams tokens', async () => {
    const init = await c.init();
    expect(init.gpu).toMatch(/swiftshader/i);
    expect(init.f16).toBe(true); // f16 weights without shader-f16: the kernels unpack u32 pairs
    expect(init.hasF16Feature).toBe(false);
    await expect(c.generate({ prompt: 'hi' }).done).rejects.toBeInstanceOf(NoModelLoadedError);

    const progress: number[] = [];
    const info = await c.load({ kind: 'builtin' }, (p) => progress.push(p.allLoaded));
    expect(info.architecture).toBe('LlamaForCausalLM');
    expect(info.note).toMatch(/trained from scratch/);
    expect(progress.length).toBeGreaterThan(0);

    const pieces: string[] = [];
    const job = c.generate({ prompt: 'Tell me about LoRA.', maxNewTokens: 12, sampling: { temperature: 0.8, seed: 7 } }, (t) => pieces.push(t));
    const result = await job.done;
    // 12 tokens, or fewer ended by the model's end of turn (a trained model may answer briefly).
    expect(result.stopReason === 'length' ? result.tokens.length === 12 : result.stopReason === 'eos' && result.tokens.length < 12).toBe(true);
    expect(result.tokens.length).toBeGreaterThan(1);
    expect(pieces.join('')).toBe(result.text);
    expect(pieces.length).toBeGreaterThan(1);

    // Same seed, same tokens, through the worker.
    const again = await c.generate({ prompt: 'Tell me about LoRA.', maxNewTokens: 12, sampling: { temperature: 0.8, seed: 7 } }).done;
    expect(again.tokens).toEqual(result.tokens);

    // Typed errors cross the boundary and the worker keeps working afterwards.
    const err = await c.generate({ prompt: 'x', maxNewTokens: 5000 }).done.catch((e) => e);
    expect(err).toBeInstanceOf(ContextOverflowError);
    const after = await c.generate({ promptIds: [1, 2, 3], maxNewTokens: 3, sampling: { temperature: 0 } }).done;
    expect(after.tokens.length).toBe(3);
  });

  it('cancels a running generation', async () => {
    let n = 0;
    const job = c.generate({ prompt: 'Count to a thousand.', maxNewTokens: 1000, sampling: { temperature: 0.7 } }, () => {
      if (++n === 3) job.cancel();
    });
    const r = await job.done;
    expect(r.stopReason).toBe('aborted');
    expect(r.tokens.length).toBeLessThan(20);
  });
});

describe('comparison in the worker', () => {
  it('compares the base and two adapters in one batch, and exports an adapter as PEFT files', async () => {
    const short = await c.loadAdapter({ kind: 'builtin', name: 'demo-short' }, 'short');
    const zh = await c.loadAdapter({ kind: 'builtin', name: 'demo-zh' }, 'zh');
    expect([short.rank, zh.rank, zh.modules]).toEqual([16, 16, 28]);
    const columns = [{ adapter: null, strength: 1 }, { adapter: 'short', strength: 1 }, { adapter: 'zh', strength: 0.8 }];
    const streamed: number[][] = columns.map(() => []);
    const req = { prompt: 'Compare us.', maxNewTokens: 8, sampling: { temperature: 0 } };
    const results = await c.compare(req, columns, (col, _t, token) => { if (token >= 0) streamed[col].push(token); }).done;
    expect(results.map((r) => r.tokens)).toEqual(streamed);
    expect(results[2].tokens).not.toEqual(results[0].tokens); // demo-zh changes the answer
    // Each column equals the same request run alone through its adapter.
    for (let i = 0; i < columns.length; i++) {
      const alone = await c.generate({ ...req, adapter: columns[i].adapter, adapterScale: columns[i].strength }).done;
      expect(alone.tokens).toEqual(results[i].tokens);
    }
    const exported = await c.exportAdapter('short');
    expect(JSON.parse(exported.config)).toMatchObject({ peft_type: 'LORA', r: 16 });
    expect([...JSON.parse(exported.config).target_modules].sort()).toEqual(['down_proj', 'gate_proj', 'k_proj', 'o_proj', 'q_proj', 'up_proj', 'v_proj']);
    expect(exported.safetensors.byteLength).toBeGreaterThan(1000);
    const err = await c.loadAdapter({ kind: 'builtin', name: 'missing' }).catch((e) => e);
    expect(err.name).toBe('AdapterError');
  });

  it('loading a model again replaces the previous one (its buffers freed, its kernels kept) and keeps working', async () => {
    const a = await c.generate({ promptIds: [1, 2, 3], maxNewTokens: 4, sampling: { temperature: 0 } }).done;
    const info = await c.load({ kind: 'builtin' });
    expect(info.gpuBytesAllocated).toBeLessThan(1.5 * (info.weightBytes + info.kvCacheBytes)); // the first model is gone
    const b = await c.generate({ promptIds: [1, 2, 3], maxNewTokens: 4, sampling: { temperature: 0 } }).done;
    expect(b.tokens).toEqual(a.tokens);
  });

  it('keeps weights in f16 on a GPU without shader-f16: half the bytes, the answer f32 weights give', async () => {
    // The built-in model's checkpoint is F16, so both loads hold the same values: only the kernels' reads differ.
    const prompt = { prompt: 'Give three tips for staying healthy.', maxNewTokens: 16, sampling: { temperature: 0, repetitionPenalty: 1 } };
    const f16 = await c.load({ kind: 'builtin' }); // auto: f16 here too
    const h = await c.generate(prompt).done;
    const f32 = await c.load({ kind: 'builtin' }, undefined, undefined, 'f32');
    const e = await c.generate(prompt).done;
    expect([f16.precision, f32.precision]).toEqual(['f16', 'f32']);
    expect(f16.weightBytes).toBeLessThan(0.55 * f32.weightBytes); // norms and biases stay f32
    // Same values, unpacked exactly, summed in the same order: bit for bit (measured).
    expect(h.tokens.length).toBe(16);
    expect([h.tokens, h.logits, h.lses]).toEqual([e.tokens, e.logits, e.lses]);
    await c.load({ kind: 'builtin' }); // back to f16 for the tests below
  });
});

describe('training in the worker', () => {
  it('trains on the bundled data with live steps, checkpoints to IndexedDB, pauses, and resumes a saved run', async () => {
    // The worker of the tests above, with its model loaded (a new one would compile every kernel again).
    const preview = await c.previewDataset({ kind: 'builtin' }, 'alpaca');
    expect(preview.records).toBe(999);
    expect(preview.samples[0].prompt).toMatch(/^Below is an instruction that describes a task/);
    for (const cp of await c.listCheckpoints()) await c.deleteCheckpoint(cp.name);

    const steps: number[] = [];
    const saved: number[] = [];
    // Small: SwiftShader compiles every training kernel anew for each worker, and steps are slow on the CPU.
    const config = { steps: 3, microBatch: 1, gradAccumulation: 1, cutoff: 72, checkpointEvery: 2, evalEvery: 0, warmupSteps: 0, learningRate: 1e-3 };
    let paused = false;
    const run = c.train({ name: 'browser-run', dataset: { kind: 'builtin' }, format: 'alpaca', config, maxRecords: 12 }, {
      onStep: (m) => {
        steps.push(m.step);
        if (m.step === 1 && !paused) { paused = true; void run.pause().then(() => setTimeout(() => void run.resume(), 300)); }
      },
      onCheckpoint: (s) => saved.push(s),
    });
    const info = await run.done;
    expect(steps).toEqual([1, 2, 3]);
    expect(saved).toEqual([2, 3]); // every 2 steps, and the last
    expect(info.name).toBe('browser-run');
    const list = await c.listCheckpoints();
    expect(list.map((x) => [x.name, x.step, x.totalSteps])).toEqual([['browser-run', 3, 3]]);

    // The trained adapter is on the shelf: it can be compared with the base at once.
    const cols = await c.compare({ promptIds: [1, 2, 3], maxNewTokens: 3, sampling: { temperature: 0 } }, [{ adapter: null, strength: 1 }, { adapter: 'browser-run', strength: 1 }]).done;
    expect(cols.length).toBe(2);
    const fromCheckpoint = await c.loadCheckpointAdapter('browser-run');
    expect(fromCheckpoint.name).toBe('browser-run@3');

    // Stop a run at step 2 of 3, then continue it from its checkpoint in IndexedDB (a new worker would read the same
    // records; it would also compile every kernel again, a minute on SwiftShader).
    const seen: number[] = [];
    const long = c.train({ name: 'resumable', dataset: { kind: 'builtin' }, format: 'alpaca', config: { ...config, steps: 3 }, maxRecords: 12 }, {
      onStep: (m) => { seen.push(m.step); if (m.step === 2) void long.stop(); },
    });
    await long.done;
    expect(seen).toEqual([1, 2]);
    const rest: number[] = [];
    await c.train({ name: 'ignored', dataset: { kind: 'builtin' }, format: 'alpaca', config: {}, resumeFrom: 'resumable' }, { onStep: (m) => rest.push(m.step) }).done;
    expect(rest).toEqual([3]);
    c.terminate();
  });
});
