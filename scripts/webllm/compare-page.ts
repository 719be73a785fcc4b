// In the page of compare.ts: runs one engine (web-llm, or LoRA Lab's engine in its worker) on a model served from
// 127.0.0.1 and reports its load time, prefill and decode speed and the text, each engine timed by its own counters
// (web-llm's usage.extra, our GenerateResult): greedy, a fixed number of new tokens.

import { CreateWebWorkerMLCEngine } from '@mlc-ai/web-llm';
import { EngineClient } from '../../src/lib/worker/client.js';
import type { Precision } from '../../src/lib/quant/precision.js';

export interface RunOptions {
  engine: 'web-llm' | 'lora-lab';
  /** web-llm: the MLC weights folder (hub layout) and model library; lora-lab: the Hugging Face folder. */
  modelUrl: string;
  libUrl?: string;
  prompt: string;
  maxTokens: number;
  /** lora-lab: the weights' precision on the GPU. */
  precision?: Precision;
}

export interface RunResult {
  engine: string;
  loadS: number;
  promptTokens: number;
  prefillS: number;
  decodeTokensPerSecond: number;
  newTokens: number;
  text: string;
}

async function webllm(o: RunOptions): Promise<RunResult> {
  const modelId = 'compare-model';
  const t0 = performance.now();
  // In web-llm's own worker, as the app runs it.
  const worker = new Worker(new URL('../../workers/webllm.worker.ts', import.meta.url), { type: 'module' });
  const engine = await CreateWebWorkerMLCEngine(worker, modelId, {
    appConfig: { model_list: [{ model: o.modelUrl, model_id: modelId, model_lib: o.libUrl!, overrides: {} }], useIndexedDBCache: false },
  });
  const loadS = (performance.now() - t0) / 1000;
  console.log(`web-llm loaded in ${loadS.toFixed(1)} s`);
  const r = await engine.completions.create({ prompt: o.prompt, max_tokens: o.maxTokens, temperature: 0, ignore_eos: true, stream: false });
  const extra = (r.usage as unknown as { extra: { prefill_tokens_per_s: number; decode_tokens_per_s: number; time_to_first_token_s: number } }).extra;
  const promptTokens = r.usage!.prompt_tokens;
  await engine.unload();
  worker.terminate();
  return {
    engine: 'web-llm', loadS, promptTokens, prefillS: promptTokens / extra.prefill_tokens_per_s,
    decodeTokensPerSecond: extra.decode_tokens_per_s, newTokens: r.usage!.completion_tokens, text: r.choices[0].text,
  };
}

async function ours(o: RunOptions): Promise<RunResult> {
  const c = new EngineClient(() => new Worker(new URL('../../workers/engine.worker.ts', import.meta.url), { type: 'module' }));
  try {
    await c.init();
    const t0 = performance.now();
    await c.load({ kind: 'url', url: o.modelUrl }, undefined, 1024, o.precision ?? 'f32');
    const loadS = (performance.now() - t0) / 1000;
    const r = await c.generate({ prompt: o.prompt, format: 'raw', maxNewTokens: o.maxTokens, sampling: { temperature: 0, repetitionPenalty: 1 } }).done;
    return {
      engine: 'lora-lab', loadS, promptTokens: r.promptIds.length, prefillS: r.prefillMs / 1000,
      decodeTokensPerSecond: r.decodeTokensPerSecond, newTokens: r.tokens.length, text: r.text,
    };
  } finally {
    c.terminate();
  }
}

(window as unknown as { runEngine: (o: RunOptions) => Promise<RunResult> }).runEngine = async (o) => {
  try {
    return await (o.engine === 'web-llm' ? webllm(o) : ours(o));
  } catch (e) {
    // Emscripten's ExitStatus carries its status and no stack: say what it was.
    const x = e as { name?: string; message?: string; stack?: string };
    throw new Error(`${o.engine} failed: ${x?.stack ?? `${x?.name}: ${x?.message}`} ${JSON.stringify(e)}`);
  }
};
document.body.dataset.ready = 'true';
