// web-llm at the network boundary: which prebuilt models a device can run, custom models by URL, progress and error
// mapping, and the backend's streaming and Stop, over web-llm's own model list (its real records, version pinned).

import { prebuiltAppConfig, modelVersion } from '@mlc-ai/web-llm';
import { describe, expect, it } from 'vitest';
import { webllmBackend, type MlcChat } from '../../src/lib/assist/webllm-backend.js';
import { appConfig, customRecord, modelChoices, progressOf, webllmError } from '../../src/lib/assist/webllm-models.js';
import { DownloadError, InvalidArgumentError, OfflineError, WebGPUUnavailableError } from '../../src/lib/errors.js';

const swiftshader = { features: new Set<string>(), maxStorageBufferBindingSize: 128 << 20, memoryBudgetMB: 4096 };
const bigGpu = { features: new Set(['shader-f16']), maxStorageBufferBindingSize: 2 ** 31, memoryBudgetMB: 24_000 };

describe('web-llm model list', () => {
  it('pins web-llm 0.2.79, whose libraries are v0_2_48 (the ones binary-mlc-llm-libs holds for it)', () => {
    expect(modelVersion).toBe('v0_2_48');
  });
  it('excludes f16 models on a GPU without shader-f16 and keeps the f32 ones, saying why', () => {
    const c = modelChoices(prebuiltAppConfig.model_list, swiftshader);
    const q0f32 = c.find((m) => m.id === 'Qwen2-0.5B-Instruct-q0f32-MLC')!;
    expect(q0f32.excluded).toBeUndefined();
    const f16 = c.find((m) => m.id === 'Qwen2-0.5B-Instruct-q4f16_1-MLC')!;
    expect(f16.excluded).toBe('needs shader-f16, which this GPU lacks');
    expect(c.filter((m) => !m.excluded).every((m) => !/f16/.test(m.id))).toBe(true);
    // Usable models come first, smallest first.
    const firstExcluded = c.findIndex((m) => m.excluded);
    expect(c.slice(firstExcluded).every((m) => m.excluded)).toBe(true);
    expect(c.some((m) => /embed|snowflake/i.test(m.id))).toBe(false); // embedding models are not assistants
  });
  it('excludes models over the memory budget or the storage-buffer limit', () => {
    const small = modelChoices(prebuiltAppConfig.model_list, { ...bigGpu, memoryBudgetMB: 1000 });
    const llama8b = small.find((m) => /Llama-3.1-8B-Instruct-q4f16_1/.test(m.id))!;
    expect(llama8b.excluded).toMatch(/needs about \d+ MB of GPU memory, over the 1000 MB budget/);
    const rec = { model: 'https://x/m/', model_id: 'm', model_lib: 'https://x/m.wasm', buffer_size_required_bytes: 1 << 30 };
    expect(modelChoices([rec], swiftshader)[0].excluded).toMatch(/storage buffers of 1024 MiB; this GPU allows 128 MiB/);
    expect(modelChoices([{ ...rec, required_features: ['timestamp-query'] }], bigGpu)[0].excluded).toBe('needs timestamp-query');
    expect(modelChoices(prebuiltAppConfig.model_list, bigGpu).filter((m) => !m.excluded).length).toBeGreaterThan(20);
  });
});

describe('custom models by URL', () => {
  it('makes a record from a weights folder and a library URL, listed before the prebuilt ones', () => {
    const r = customRecord({ weightsUrl: 'http://127.0.0.1:8000/mirror/Qwen2-0.5B-Instruct-q0f32-MLC', libUrl: 'http://127.0.0.1:8000/libs/Qwen2-0.5B-Instruct-q0f32-ctx4k_cs1k-webgpu.wasm' });
    expect(r).toEqual({ model: 'http://127.0.0.1:8000/mirror/Qwen2-0.5B-Instruct-q0f32-MLC/', model_id: 'Qwen2-0.5B-Instruct-q0f32-MLC', model_lib: 'http://127.0.0.1:8000/libs/Qwen2-0.5B-Instruct-q0f32-ctx4k_cs1k-webgpu.wasm', overrides: {} });
    const cfg = appConfig(prebuiltAppConfig.model_list, [r]);
    expect(cfg.model_list[0]).toBe(r);
    expect(cfg.model_list.filter((m) => m.model_id === r.model_id)).toHaveLength(1); // the mirror replaces the hub's record
    // A URL in the hub's layout down to the revision (which web-llm then uses as it is) is named after its repo.
    expect(customRecord({ weightsUrl: 'http://127.0.0.1:8000/Qwen2-0.5B-test-MLC/resolve/main/', libUrl: 'http://x/m.wasm' }).model_id).toBe('Qwen2-0.5B-test-MLC');
  });
  it('refuses what is not an http(s) URL or not a .wasm library', () => {
    expect(() => customRecord({ weightsUrl: 'mirror/model', libUrl: 'http://x/m.wasm' })).toThrow(InvalidArgumentError);
    expect(() => customRecord({ weightsUrl: 'file:///m/', libUrl: 'http://x/m.wasm' })).toThrow(/must be an http\(s\) URL/);
    expect(() => customRecord({ weightsUrl: 'http://x/m/', libUrl: 'http://x/m.js' })).toThrow(/\.wasm file/);
  });
});

describe('progress and errors', () => {
  it("maps web-llm's progress reports to a fraction, a phase and its own text", () => {
    expect(progressOf({ progress: 0.25, timeElapsed: 3, text: 'Fetching param cache[3/12]: 120MB fetched. 25% completed, 3 secs elapsed.' }))
      .toEqual({ fraction: 0.25, text: 'Fetching param cache[3/12]: 120MB fetched. 25% completed, 3 secs elapsed.', elapsedMs: 3000, phase: 'download' });
    expect(progressOf({ progress: 0.9, timeElapsed: 9, text: 'Loading model from cache[10/12]: 400MB loaded.' }).phase).toBe('load');
    expect(progressOf({ progress: 1.2, timeElapsed: 1, text: 'Finish loading on WebGPU - swiftshader' }).fraction).toBe(1);
  });
  it('turns failures into typed errors that say what to do', () => {
    expect(webllmError(new TypeError('Failed to fetch'), 'm', false)).toBeInstanceOf(OfflineError);
    const dl = webllmError(new TypeError('Failed to fetch'), 'm', true);
    expect(dl).toBeInstanceOf(DownloadError);
    expect(dl.message).toMatch(/no server answered \(Failed to fetch\)\. The network may be off.*Check the weights and library URLs/);
    expect(webllmError(new Error('404 Not Found: params_shard_0.bin'), 'm', true).message).toMatch(/the server refused a file \(404 Not Found/);
    expect(webllmError(new Error('This model requires WebGPU extension shader-f16, which is not enabled in this browser.'), 'm', true)).toBeInstanceOf(WebGPUUnavailableError);
    expect(webllmError(new Error('Cannot find model record in appConfig for x.'), 'x', true).message).toMatch(/not in the model list/);
  });
});

describe('the web-llm backend', () => {
  /** A scripted engine: streams the answer in pieces; interruptGenerate ends the stream at the next piece. */
  function fakeEngine(pieces: string[], finish = 'stop'): MlcChat & { requests: Record<string, unknown>[]; interrupted: boolean } {
    const e = {
      requests: [] as Record<string, unknown>[], interrupted: false,
      interruptGenerate() { e.interrupted = true; },
      chat: { completions: { create: async (req: Record<string, unknown>) => {
        e.requests.push(req);
        return (async function* () {
          for (const [i, p] of pieces.entries()) {
            if (e.interrupted) { yield { choices: [{ delta: {}, finish_reason: 'abort' }] }; return; }
            yield { choices: [{ delta: { content: p }, finish_reason: i === pieces.length - 1 ? finish : null }] };
          }
          yield { choices: [], usage: { completion_tokens: pieces.length } };
        })();
      } } },
    };
    return e;
  }
  it('streams a chat completion with the settings asked for', async () => {
    const eng = fakeEngine(['8 ', '6\n', 'Reasons.']);
    const b = webllmBackend(eng, 'Qwen2-0.5B-Instruct-q0f32-MLC');
    const got: string[] = [];
    const r = await b.complete([{ role: 'user', content: 'hi' }], { maxNewTokens: 32, sampling: { temperature: 0, seed: 3 } }, (d) => got.push(d));
    expect(r).toEqual({ text: '8 6\nReasons.', tokens: 3, stopReason: 'eos' });
    expect(got).toEqual(['8 ', '6\n', 'Reasons.']);
    expect(eng.requests[0]).toMatchObject({ messages: [{ role: 'user', content: 'hi' }], stream: true, max_tokens: 32, temperature: 0, seed: 3 });
    expect(b).toMatchObject({ kind: 'web-llm', model: 'Qwen2-0.5B-Instruct-q0f32-MLC' });
    expect((await webllmBackend(fakeEngine(['a'], 'length'), 'm').complete([{ role: 'user', content: 'x' }], { maxNewTokens: 1 })).stopReason).toBe('length');
  });
  it('Stop interrupts the generation and reports aborted', async () => {
    const eng = fakeEngine(['one ', 'two ', 'three']);
    const stop = new AbortController();
    const r = await webllmBackend(eng, 'm').complete([{ role: 'user', content: 'x' }], { maxNewTokens: 8 }, (d) => { if (d === 'one ') stop.abort(); }, stop.signal);
    expect(eng.interrupted).toBe(true);
    expect(r.stopReason).toBe('aborted');
    expect(r.text).toBe('one ');
  });
});
