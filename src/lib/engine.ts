// The engine: one loaded model (weights, KV cache, tokenizer) on one GPU device, and generation requests against it.
// The same class serves the Web Worker (browser) and the CLI (Node); only how the GPU and the files are obtained
// differs, and that is passed in.

import { InvalidArgumentError, NoModelLoadedError } from './errors.js';
import type { Gpu } from './gpu/device.js';
import type { ModelFiles } from './hub/files.js';
import { parameterCount, type ModelConfig } from './model/config.js';
import { generate, type GenerateTimings } from './model/generate.js';
import { loadConfig, loadWeights, type LoadProgress } from './model/load.js';
import { ModelRunner } from './model/runner.js';
import { DEFAULT_SAMPLING, type SamplingOptions } from './model/sampling.js';
import { StreamDecoder } from './tokenizer/stream-decoder.js';
import { TextTokenizer, type PromptFormat } from './tokenizer/tokenizer.js';

export interface ModelInfo {
  label: string;
  architecture: string;
  layers: number;
  hiddenSize: number;
  vocabSize: number;
  parameters: number;
  contextLength: number;
  weightBytes: number;
  kvCacheBytes: number;
  gpuBytesAllocated: number;
  weightsF16: boolean;
  hasF16Feature: boolean;
  adapter: string;
  hasChatTemplate: boolean;
  /** Set for the built-in demo model, whose weights are random. */
  note: string | null;
  loadMs: number;
}

export interface GenerateRequest {
  /** Text prompt, formatted by `format`; or `promptIds`, fed as given (no template, no extra BOS). */
  prompt?: string;
  promptIds?: number[];
  format?: PromptFormat;
  /** Alpaca's optional input field. */
  input?: string;
  sampling?: Partial<SamplingOptions>;
  maxNewTokens?: number;
  stopStrings?: string[];
}

export interface GenerateResult extends GenerateTimings {
  promptIds: number[];
  tokens: number[];
  text: string;
}

export interface EngineOptions {
  contextLength?: number;
  /** Prefill chunk (rows per forward). */
  maxRows?: number;
  /** Sequences decoded at once (KV cache slots). */
  slots?: number;
}

interface Loaded {
  label: string;
  config: ModelConfig;
  runner: ModelRunner;
  tokenizer: TextTokenizer;
  eos: number[];
  info: ModelInfo;
}

export class Engine {
  #model: Loaded | null = null;

  constructor(readonly gpu: Gpu, private readonly opts: EngineOptions = {}) {}

  get info(): ModelInfo | null {
    return this.#model?.info ?? null;
  }

  get tokenizer(): TextTokenizer {
    return this.#require().tokenizer;
  }

  get runner(): ModelRunner {
    return this.#require().runner;
  }

  async load(files: ModelFiles, onProgress?: (p: LoadProgress) => void, signal?: AbortSignal): Promise<ModelInfo> {
    const t0 = performance.now();
    this.unload();
    // Small files first, so a wrong source or an unsupported model fails before any download of weights.
    const configs = await loadConfig(files);
    const tokenizer = await TextTokenizer.fromFiles(files);
    const loaded = await loadWeights(this.gpu, files, onProgress, signal, configs);
    const cfg = loaded.config;
    const contextLength = Math.min(cfg.maxContext, this.opts.contextLength ?? 2048);
    const runner = await this.gpu.guard('allocating the KV cache', () =>
      new ModelRunner(this.gpu, cfg, loaded.weights, { slots: this.opts.slots ?? 1, contextLength, maxRows: this.opts.maxRows ?? 64 }));
    const eos = [...new Set([...cfg.eosTokenIds, ...tokenizer.eosTokenIds])];
    const note = typeof loaded.rawConfig.lora_lab_note === 'string' ? loaded.rawConfig.lora_lab_note : null;
    const info: ModelInfo = {
      label: files.label,
      architecture: cfg.architecture,
      layers: cfg.numLayers,
      hiddenSize: cfg.hiddenSize,
      vocabSize: cfg.vocabSize,
      parameters: parameterCount(cfg),
      contextLength,
      weightBytes: loaded.weights.bytes,
      kvCacheBytes: runner.kvCacheBytes,
      gpuBytesAllocated: this.gpu.allocatedBytes,
      weightsF16: this.gpu.f16,
      hasF16Feature: this.gpu.hasF16Feature,
      adapter: this.gpu.description,
      hasChatTemplate: tokenizer.chatTemplate !== null,
      note,
      loadMs: performance.now() - t0,
    };
    this.#model = { label: files.label, config: cfg, runner, tokenizer, eos, info };
    return info;
  }

  unload(): void {
    // Buffers are released with the device on dispose; a reload reuses the device.
    this.#model = null;
  }

  #require(): Loaded {
    if (!this.#model) throw new NoModelLoadedError('No model is loaded: load one first (the built-in demo model loads instantly).');
    return this.#model;
  }

  promptIds(req: GenerateRequest): number[] {
    const m = this.#require();
    if (req.promptIds) return req.promptIds;
    if (req.prompt === undefined) throw new InvalidArgumentError('Give a prompt (text) or prompt ids.');
    return m.tokenizer.promptIds(req.prompt, req.format ?? 'chat', req.input ?? '');
  }

  async generate(req: GenerateRequest, onText?: (delta: string, token: number) => void, signal?: AbortSignal): Promise<GenerateResult> {
    const m = this.#require();
    const promptIds = this.promptIds(req);
    const sampling = { ...DEFAULT_SAMPLING, ...req.sampling };
    const stops = (req.stopStrings ?? []).filter((s) => s.length > 0);
    const tokens: number[] = [];
    const decoder = new StreamDecoder((ids) => m.tokenizer.decode(ids));
    let text = '';
    let emitted = 0;
    const timings = await generate(m.runner, promptIds, {
      ...sampling,
      maxNewTokens: req.maxNewTokens ?? 128,
      eosTokenIds: m.eos,
    }, ({ token }) => {
      tokens.push(token);
      if (m.eos.includes(token)) return false;
      text += decoder.push(token);
      let stopAt = -1;
      for (const s of stops) {
        const i = text.indexOf(s, Math.max(0, emitted - s.length));
        if (i >= 0 && (stopAt < 0 || i < stopAt)) stopAt = i;
      }
      if (stopAt >= 0) text = text.slice(0, stopAt);
      if (text.length > emitted) onText?.(text.slice(emitted), token);
      emitted = text.length;
      return stopAt >= 0;
    }, signal);
    if (timings.stopReason !== 'stop') {
      const rest = decoder.flush();
      if (rest) { text += rest; onText?.(rest, -1); }
    }
    return { ...timings, promptIds, tokens, text };
  }
}
