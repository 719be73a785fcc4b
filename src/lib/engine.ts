// The engine: one loaded model (weights, KV cache, tokenizer) on one GPU device, and generation requests against it.
// The same class serves the Web Worker (browser) and the CLI (Node); only how the GPU and the files are obtained
// differs, and that is passed in.

import { writeFusedPeft } from './lora/fused.js';
import type { DType } from './formats/dtype.js';
import { adapterToGguf, modelToGguf, type GgufExportType } from './formats/gguf-export.js';
import { trainMemory, type TrainMemory } from './training/memory.js';
import { DEFAULT_TRAIN_CONFIG, type TrainConfig } from './training/train-config.js';
import { InvalidArgumentError, NoModelLoadedError, TokenizerError } from './errors.js';
import type { Gpu } from './gpu/device.js';
import type { ModelFiles } from './model-files.js';
import { parameterCount, type ModelConfig } from './model/config.js';
import { generateColumns, type Column, type GenerateTimings } from './model/generate.js';
import { writePeftAdapter, type LoraAdapter } from './lora/peft.js';
import { loadPeftAdapter } from './lora/adapter-files.js';
import { mergedCheckpoint } from './lora/merge.js';
import type { TrainRecord } from './data/records.js';
import { previewRecords, runTraining, trainingEos, type DatasetPreview, type TrainRunOptions } from './training/session.js';
import type { TrainControl, TrainHooks } from './training/trainer.js';
import { RewardTrainer, type RewardAdapter, type RewardHooks } from './training/reward-trainer.js';
import { MAX_PREFERENCE_PAIRS, pairExamples, preferencePairs, type ComparisonRecord } from './reward/pairs.js';
import { EngineRewardModel } from './reward/reward-adapter.js';
import { runPreferenceTraining, type PreferenceRunOptions, type PreferenceRunResult } from './training/preference-session.js';
import type { PreferenceHooks } from './training/preference-trainer.js';
import { splitTrainValidation } from './data/batches.js';
import { validateTrainConfig } from './training/train-config.js';
import { loadConfig, loadWeights, type LoadProgress } from './model/load.js';
import { ModelRunner } from './model/runner.js';
import { LoraBank } from './lora/bank.js';
import { LoadedModel } from './model/loaded.js';
import { DEFAULT_SAMPLING, type SamplingOptions } from './model/sampling.js';
import { StopFilter } from './model/stop-strings.js';
import { StreamDecoder } from './tokenizer/stream-decoder.js';
import { TextTokenizer, type ChatMessage, type PromptFormat } from './tokenizer/tokenizer.js';
import { chatPrompt, commonPrefix, type OverflowPolicy } from './chat/prompt.js';
import type { WeightFormat } from './quant/blocks.js';
import type { Precision } from './quant/precision.js';

export interface ModelInfo {
  label: string;
  /** Repo id, URL or folder base name: what adapters trained on this model record as their base. */
  modelId: string;
  /** The model's content identity: the same weights give the same fingerprint however they were opened. */
  fingerprint: string;
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
  /** How the layers' weight matrices are stored (chosen at load; see quant/precision.ts). */
  precision: WeightFormat;
  hasF16Feature: boolean;
  /** The GPU it runs on (the WebGPU adapter's description). */
  gpu: string;
  hasChatTemplate: boolean;
  /** The chat template reads enable_thinking (Qwen3): chat offers to switch thinking off. */
  thinkingSwitch: boolean;
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
  /** Name of a loaded adapter to generate through (single-column generation), and its strength (default 1). */
  adapter?: string | null;
  adapterScale?: number;
}

/** One column of a comparison: the base model (adapter null) or a loaded adapter at a strength. */
export interface CompareColumn {
  adapter: string | null;
  strength: number;
}

export interface AdapterInfo {
  name: string;
  rank: number;
  alpha: number;
  targetModules: string[] | string;
  modules: number;
  useRslora: boolean;
  baseModel: string | null;
  parameters: number;
  bytes: number;
}

export interface GenerateResult extends GenerateTimings {
  promptIds: number[];
  tokens: number[];
  text: string;
  /** Per generated token: its logit and the log-sum-exp of its step (log-probability = logit / T - lse). */
  logits: number[];
  lses: number[];
}

export interface ChatRequest {
  /** An optional system message, then alternating user/assistant turns, ending with the user's new message. */
  messages: ChatMessage[];
  adapter?: string | null;
  adapterScale?: number;
  sampling?: Partial<SamplingOptions>;
  maxNewTokens?: number;
  stopStrings?: string[];
  /** What to do when the conversation outgrows the context (default: ask, by a ContextOverflowError). */
  overflow?: OverflowPolicy;
  /** The template's enable_thinking (Qwen3), when the model's template reads it; unset: the template's default. */
  thinking?: boolean;
}

export interface ChatResult extends GenerateResult {
  /** Prompt tokens whose KV entries were kept from the previous turn, and those computed now. */
  reusedTokens: number;
  prefilledTokens: number;
  /** Tokens in the context after this answer, of contextLength. */
  contextUsed: number;
  contextLength: number;
  /** Oldest messages left out to fit the context. */
  droppedMessages: number;
  /** The model has no chat template: the answer saw only the last message, in the Alpaca template. */
  singleTurn: boolean;
}

export interface EngineOptions {
  contextLength?: number;
  /** Prefill chunk (rows per forward). */
  maxRows?: number;
  /** Sequences decoded at once (KV cache slots): the most comparison columns. */
  slots?: number;
  /** Rows projected to logits in one forward (teacher-forced scoring), default 16: 16 x vocabulary x 4 bytes. */
  maxSeqs?: number;
  /**
   * generate, chat and compare start on the kernels decoding compiles anyway while the many-row ones are not compiled
   * (GenerateOptions.quickStart); default on. Evaluation and scoring never do.
   */
  quickStart?: boolean;
}

function adapterInfo(a: LoraAdapter): AdapterInfo {
  const mods = [...a.modules.values()];
  const parameters = mods.reduce((n, p) => n + p.rank * (p.inFeatures + p.outFeatures), 0);
  return {
    name: a.name,
    rank: a.config.r,
    alpha: a.config.loraAlpha,
    targetModules: a.config.targetModules,
    modules: mods.length,
    useRslora: a.config.useRslora,
    baseModel: a.config.baseModelNameOrPath,
    parameters,
    bytes: parameters * 4,
  };
}

interface Loaded {
  label: string;
  config: ModelConfig;
  rawConfig: Record<string, unknown>;
  files: ModelFiles;
  runner: ModelRunner<LoraBank>;
  tokenizer: TextTokenizer;
  eos: number[];
  info: ModelInfo;
}

/** What KV slot 0 holds, so a chat's next turn prefills only what is new: the tokens, and the adapter they went through. */
interface SlotContents {
  tokens: number[];
  lora: string;
}

/**
 * config.json of a merged export: the base's, with the dtype of the written weights, and (when an adapter is merged) a
 * note saying what it is, in place of the base's own note, which would describe the wrong model.
 */
function mergedConfig(raw: Record<string, unknown>, base: string, adapter: string | null, strength: number, dtype: DType): Record<string, unknown> {
  const { lora_lab_note: _baseNote, ...rest } = raw;
  const torch_dtype = dtype === 'F16' ? 'float16' : dtype === 'BF16' ? 'bfloat16' : 'float32';
  if (adapter === null) return { ...raw, torch_dtype };
  return { ...rest, torch_dtype, lora_lab_note: `${base} with the LoRA adapter "${adapter}" merged into its weights at strength ${strength} (exported from LoRA Lab).` };
}

export class Engine {
  #model: Loaded | null = null;
  #slot0: SlotContents | null = null;

  constructor(readonly gpu: Gpu, private readonly opts: EngineOptions = {}) {}

  get info(): ModelInfo | null {
    return this.#model?.info ?? null;
  }

  get tokenizer(): TextTokenizer {
    return this.#require().tokenizer;
  }

  get runner(): ModelRunner<LoraBank> {
    return this.#require().runner;
  }

  /** End-of-sequence ids of the loaded model (config and tokenizer); the first is the one training appends. */
  get eosIds(): number[] {
    const m = this.#require();
    return [...new Set([...m.tokenizer.eosTokenIds, ...m.eos])];
  }

  /** The end-of-sequence id training appends to each answer (and reward models score after): eosIds' first, or 0. */
  get trainingEos(): number {
    const m = this.#require();
    return trainingEos(m.tokenizer, m.config);
  }

  /** The runner's LoRA slot of a loaded adapter (0 for null: the base model). */
  loraSlot(adapter: string | null): number {
    return adapter === null ? 0 : this.#require().runner.lora.slotOf(this.#adapter(adapter).name);
  }

  /**
   * `precision`: how the weights are stored (default `auto`: float when it fits, else quantized). A transaction: the
   * loaded model stays loaded and answering until the new one is ready, and a failure frees what the attempt made and
   * keeps it. Both are on the GPU at once for a moment; the worker unloads first when they do not fit side by side.
   */
  async load(files: ModelFiles, onProgress?: (p: LoadProgress) => void, signal?: AbortSignal, opts: { precision?: Precision } = {}): Promise<ModelInfo> {
    const t0 = performance.now();
    // Small files first, so a wrong source or an unsupported model fails before any download of weights.
    const configs = await loadConfig(files);
    const tokenizer = await TextTokenizer.fromFiles(files, configs.tokenizer);
    if (tokenizer.vocabSize > configs.config.vocabSize) {
      throw new TokenizerError(
        `The tokenizer has ids up to ${tokenizer.vocabSize - 1} but config.json has vocab_size ${configs.config.vocabSize}, so some tokens have no embedding. The tokenizer and config come from different models: use the files of one repo.`,
        { tokenizerVocab: tokenizer.vocabSize, vocabSize: configs.config.vocabSize },
      );
    }
    const loaded = await loadWeights(this.gpu, files, onProgress, signal, configs, opts.precision);
    const cfg = loaded.config;
    onProgress?.({ phase: 'prepare', file: 'KV cache and GPU programs', loaded: 0, total: 0, allLoaded: loaded.weights.bytes, allTotal: loaded.weights.bytes });
    const contextLength = Math.min(cfg.maxContext, this.opts.contextLength ?? 2048);
    const model = new LoadedModel(this.gpu, cfg, loaded.weights, new LoraBank(this.gpu, cfg), tokenizer);
    const runner = await this.gpu.guard('allocating the KV cache', () =>
      new ModelRunner(model, { slots: this.opts.slots ?? 4, contextLength, maxRows: this.opts.maxRows ?? 64, maxSeqs: this.opts.maxSeqs ?? 16 }), (r) => r.destroy())
      .catch((e) => { model.destroy(); throw e; });
    const eos = [...new Set([...cfg.eosTokenIds, ...tokenizer.eosTokenIds])];
    const note = typeof loaded.rawConfig.lora_lab_note === 'string' ? loaded.rawConfig.lora_lab_note : null;
    const info: ModelInfo = {
      label: files.label,
      modelId: files.modelId ?? files.label,
      fingerprint: loaded.fingerprint,
      architecture: cfg.architecture,
      layers: cfg.numLayers,
      hiddenSize: cfg.hiddenSize,
      vocabSize: cfg.vocabSize,
      parameters: parameterCount(cfg),
      contextLength,
      weightBytes: loaded.weights.bytes,
      kvCacheBytes: runner.kvCacheBytes,
      gpuBytesAllocated: this.gpu.allocatedBytes,
      weightsF16: loaded.weights.embed.format === 'f16',
      precision: loaded.weights.layers[0]?.qkv.format ?? loaded.weights.embed.format,
      hasF16Feature: this.gpu.hasF16Feature,
      gpu: this.gpu.description,
      hasChatTemplate: tokenizer.chatTemplate !== null,
      thinkingSwitch: tokenizer.thinkingSwitch,
      note,
      loadMs: performance.now() - t0,
    };
    this.unload();
    info.gpuBytesAllocated = this.gpu.allocatedBytes;
    this.#model = { label: files.label, config: cfg, rawConfig: loaded.rawConfig, files, runner, tokenizer, eos, info };
    return info;
  }

  /**
   * Resolves when no kernel is being compiled in the background (after a quick start): a process waits for it before
   * it exits, so no compile is cut off halfway.
   */
  idle(): Promise<void> {
    return this.gpu.pipelines.idle();
  }

  /** Frees the loaded model's GPU memory: weights, KV cache, activations and resident adapters. */
  unload(): void {
    const m = this.#model;
    this.#model = null;
    this.#slot0 = null;
    if (!m) return;
    m.runner.destroy();
    m.runner.model.destroy();
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

  /** Loads a PEFT adapter next to the base weights (which stay as they are) and returns its summary. */
  async loadAdapter(files: ModelFiles, name?: string): Promise<AdapterInfo> {
    const m = this.#require();
    const adapter = await loadPeftAdapter(files, name, m.config);
    m.runner.lora.add(adapter);
    this.#slot0 = null;
    return adapterInfo(adapter);
  }

  /** Makes an adapter already in memory (trained here, or from storage) resident. */
  addAdapter(adapter: LoraAdapter): AdapterInfo {
    this.#require().runner.lora.add(adapter);
    this.#slot0 = null;
    return adapterInfo(adapter);
  }

  removeAdapter(name: string): void {
    this.#require().runner.lora.remove(name);
    this.#slot0 = null; // slots are renumbered
  }

  get adapters(): AdapterInfo[] {
    return this.#model ? this.#model.runner.lora.adapters.filter((a): a is LoraAdapter => !!a).map(adapterInfo) : [];
  }

  /** The adapter as the PEFT files adapter_config.json and adapter_model.safetensors. */
  exportAdapter(name: string): { config: string; safetensors: Uint8Array } {
    const cfg = this.#require().config;
    // Phi-3's PEFT adapters name its fused qkv_proj and gate_up_proj.
    return cfg.fusedProjections ? writeFusedPeft(this.#adapter(name), cfg) : writePeftAdapter(this.#adapter(name));
  }

  #adapter(name: string): LoraAdapter {
    const bank = this.#require().runner.lora;
    const a = bank.adapters[bank.slotOf(name) - 1];
    if (!a) throw new InvalidArgumentError(`No adapter named "${name}" is loaded: load it first (loaded: ${this.adapters.map((x) => x.name).join(', ') || 'none'}).`);
    return a;
  }

  async generate(req: GenerateRequest, onText?: (delta: string, token: number) => void, signal?: AbortSignal): Promise<GenerateResult> {
    const [r] = await this.compare(req, [{ adapter: req.adapter ?? null, strength: req.adapterScale ?? 1 }], (_c, d, t) => onText?.(d, t), signal);
    return r;
  }

  /**
   * A full model with `adapter` merged into a copy of the weights: config.json, model.safetensors, and the tokenizer
   * files of the source, ready to load as a base model anywhere.
   */
  async exportMerged(adapter: string | null, strength = 1, dtype: DType = this.gpu.f16 ? 'F16' : 'F32'): Promise<Map<string, Uint8Array>> {
    const m = this.#require();
    const weights = await mergedCheckpoint(this.gpu, m.config, m.runner.weights, adapter === null ? null : this.#adapter(adapter), strength, dtype);
    const enc = new TextEncoder();
    const files = new Map<string, Uint8Array>([
      ['config.json', enc.encode(JSON.stringify(mergedConfig(m.rawConfig, m.label, adapter, strength, dtype), null, 2))],
      ['model.safetensors', weights],
    ]);
    for (const name of ['tokenizer.json', 'tokenizer_config.json', 'generation_config.json', 'chat_template.jinja']) {
      const b = await m.files.bytes(name, true);
      if (b) files.set(name, b);
    }
    return files;
  }

  /**
   * The loaded model (with `adapter` merged in at `strength`, or the base when null) as one GGUF file of `type`, for
   * llama.cpp, Ollama and LM Studio: chunks of the file, its tokenizer and chat template inside.
   */
  async exportGguf(adapter: string | null, type: GgufExportType, strength = 1): Promise<Uint8Array[]> {
    const m = this.#require();
    // Merged in f32, then quantized once: the weights as the engine holds them, the adapter's delta unrounded.
    return modelToGguf(await this.exportMerged(adapter, strength, 'F32'), type, adapter ? `${m.info.label} + ${adapter}` : m.info.label);
  }

  /** A loaded adapter as a GGUF LoRA file (llama.cpp --lora) for this base model. */
  exportAdapterGguf(name: string, type: 'f32' | 'f16' = 'f32'): Uint8Array[] {
    return adapterToGguf(this.#adapter(name), this.#require().config, type);
  }

  previewDataset(records: TrainRecord[], format: 'alpaca' | 'chat'): DatasetPreview {
    return previewRecords(this.#require().tokenizer, records, format);
  }

  /** GPU memory a training run with these settings takes beside the loaded model (before starting it). */
  trainMemory(config: Partial<TrainConfig>): TrainMemory {
    const c = { ...DEFAULT_TRAIN_CONFIG, ...config };
    const bank = this.#require().runner.lora;
    // The run's adapter takes a free slot, or a new one; an empty bank also allocates slot 0 ("no adapter").
    const bankSlots = bank.adapters.includes(null) ? 0 : bank.adapters.length === 0 ? 2 : 1;
    return trainMemory(this.#require().runner.cfg, { rank: c.rank, targets: c.targetModules, batch: c.microBatch, cutoff: c.cutoff, bankSlots });
  }

  /** Trains a new adapter (or resumes a checkpoint); when done it is resident and listed like a loaded one. */
  /** Forgets which prompt the KV cache holds (something else used the GPU meanwhile): the next answer reads it anew. */
  forgetCachedPrefix(): void {
    this.#slot0 = null;
  }

  async train(o: Omit<TrainRunOptions, 'baseModel'>, hooks: TrainHooks = {}, control: TrainControl = {}): Promise<AdapterInfo> {
    const m = this.#require();
    const eosId = this.trainingEos;
    this.#slot0 = null;
    const { adapter } = await runTraining(this.gpu, m.runner.model, m.tokenizer, eosId, { ...o, baseModel: m.info.modelId, baseFingerprint: m.info.fingerprint }, hooks, control);
    return adapterInfo(adapter);
  }

  /**
   * Trains a reward model (LoRA + a score head on the last token) on the preference pairs of comparison data, with
   * the pairwise loss. The result is not made an adapter for generation: it is returned, to be scored with or exported.
   */
  async trainReward(o: { name: string; records: ComparisonRecord[]; config: Partial<TrainConfig>; maxPairs?: number }, hooks: RewardHooks = {}, control: TrainControl = {}): Promise<RewardAdapter & { pairs: { train: number; validation: number; available: number } }> {
    const m = this.#require();
    const c: TrainConfig = { ...DEFAULT_TRAIN_CONFIG, ...o.config };
    validateTrainConfig(c);
    const eosId = this.trainingEos;
    const { pairs, available } = preferencePairs(o.records, Math.min(o.maxPairs ?? Infinity, MAX_PREFERENCE_PAIRS));
    const data = splitTrainValidation(pairExamples(m.tokenizer, pairs, c.cutoff, eosId), c.validationFraction, c.seed);
    const trainer = new RewardTrainer(this.gpu, m.runner.model, o.name, c, data, m.info.modelId);
    try {
      const r = await trainer.run(hooks, control);
      return { ...r, pairs: { train: data.train.length, validation: data.validation.length, available } };
    } finally {
      trainer.destroy();
    }
  }

  /**
   * Tunes an adapter on preference pairs with DPO, ORPO or SimPO (the base, or a frozen adapter, as DPO's reference);
   * the result joins the shelf, for Compare and Evaluate. Checkpoints go to hooks.onCheckpoint as for LoRA runs.
   */
  async trainPreference(o: Omit<PreferenceRunOptions, 'baseModel' | 'baseFingerprint'>, hooks: PreferenceHooks = {}, control: TrainControl = {}): Promise<AdapterInfo & { pairs: PreferenceRunResult['pairs'] }> {
    const m = this.#require();
    this.#slot0 = null; // the reference log-probabilities are scored in KV slots 0 and 1
    const r = await runPreferenceTraining(this.gpu, m.runner, m.tokenizer, this.trainingEos, { ...o, baseModel: m.info.modelId, baseFingerprint: m.info.fingerprint }, hooks, control);
    return { ...adapterInfo(r.adapter), pairs: r.pairs };
  }

  /** A scorer for a reward model trained on this base (it takes a slot of the adapter bank until disposed). */
  rewardScorer(reward: RewardAdapter, label: string): EngineRewardModel {
    const m = this.#require();
    const eosId = this.trainingEos;
    return new EngineRewardModel(this.gpu, m.runner.model, m.tokenizer, eosId, reward, label, Math.min(512, m.runner.opts.contextLength));
  }

  /**
   * The next assistant turn of a conversation, in KV slot 0. The KV entries of the longest prefix shared with what the
   * slot holds from the previous turn (same adapter and strength) are kept, so a follow-up prefills only its new
   * tokens; the answer is the one a generation from scratch on the whole rendered conversation gives.
   */
  async chat(req: ChatRequest, onText?: (delta: string, token: number) => void, signal?: AbortSignal): Promise<ChatResult> {
    const m = this.#require();
    const maxNewTokens = req.maxNewTokens ?? 256;
    const prompt = chatPrompt(m.tokenizer, req.messages, m.runner.opts.contextLength, maxNewTokens, req.overflow ?? 'stop', req.thinking === undefined ? {} : { enable_thinking: req.thinking });
    const column = { adapter: req.adapter ?? null, strength: req.adapterScale ?? 1 };
    const lora = column.adapter === null || column.strength === 0 ? 'base' : `${this.loraSlot(column.adapter)}@${column.strength}`;
    const kept = this.#slot0 && this.#slot0.lora === lora ? this.#slot0.tokens : [];
    const reused = m.runner.reusablePrefix(Math.min(commonPrefix(kept, prompt.ids), prompt.ids.length - 1), kept.length);
    const [r] = await this.#decode(prompt.ids, [column], { ...req, maxNewTokens }, (_c, d, t) => onText?.(d, t), signal, { cachedTokens: reused, quick: this.#quick });
    // Every generated token but the last went through a forward, so the slot holds them after the prompt.
    this.#slot0 = r.stopReason === 'aborted' && r.tokens.length === 0 ? null : { tokens: [...prompt.ids, ...r.tokens.slice(0, -1)], lora };
    return {
      ...r, reusedTokens: reused, prefilledTokens: prompt.ids.length - reused,
      contextUsed: prompt.ids.length + r.tokens.length, contextLength: m.runner.opts.contextLength,
      droppedMessages: prompt.dropped, singleTurn: prompt.singleTurn,
    };
  }

  /** Generates the same prompt through several columns (base and adapters) decoded as one batch. */
  async compare(
    req: GenerateRequest, columns: CompareColumn[],
    onText?: (column: number, delta: string, token: number) => void, signal?: AbortSignal,
    /** Columns to end early (read before each token): one column stops, the others go on. */
    stoppedColumns?: ReadonlySet<number>,
  ): Promise<GenerateResult[]> {
    return this.#decode(this.promptIds(req), columns, req, onText, signal, { stoppedColumns, quick: this.#quick });
  }

  /**
   * Several prompts in flight: item i is generated in column i with its own prompt ids and adapter, all decoded as one
   * batch (an evaluation runs examples this way when fewer models than KV slots are compared).
   */
  async generateMany(
    items: { promptIds: number[]; adapter: string | null; strength: number; /** Its own sampling seed (best-of-n). */ seed?: number }[],
    req: Omit<GenerateRequest, 'prompt' | 'promptIds' | 'adapter' | 'adapterScale' | 'input'>, signal?: AbortSignal,
  ): Promise<GenerateResult[]> {
    return this.#decode(items.map((i) => i.promptIds), items, req, undefined, signal);
  }

  /** Interactive calls (generate, chat, compare) take quick steps unless the engine was made without them. */
  get #quick(): boolean {
    return this.opts.quickStart !== false;
  }

  async #decode(
    prompt: number[] | number[][], columns: (CompareColumn & { seed?: number })[], req: Omit<GenerateRequest, 'prompt' | 'promptIds'>,
    onText?: (column: number, delta: string, token: number) => void, signal?: AbortSignal,
    { cachedTokens = 0, stoppedColumns, quick = false }: { cachedTokens?: number; stoppedColumns?: ReadonlySet<number>; quick?: boolean } = {},
  ): Promise<GenerateResult[]> {
    const m = this.#require();
    this.#slot0 = null; // overwritten below; chat() records what it leaves there
    const sampling = { ...DEFAULT_SAMPLING, ...req.sampling };
    const cols: Column[] = columns.map((c, i) => ({
      loraSlot: c.adapter === null ? 0 : m.runner.lora.slotOf(this.#adapter(c.adapter).name), strength: c.strength, seed: c.seed,
      stopped: stoppedColumns ? () => stoppedColumns.has(i) : undefined,
    }));
    const out = columns.map(() => ({ tokens: [] as number[], logits: [] as number[], lses: [] as number[], stop: new StopFilter(req.stopStrings ?? []), decoder: new StreamDecoder((ids) => m.tokenizer.decode(ids)) }));
    const timings = await generateColumns(m.runner, prompt, cols, {
      ...sampling,
      maxNewTokens: req.maxNewTokens ?? 128,
      eosTokenIds: m.eos,
      cachedTokens,
      quickStart: quick,
    }, ({ column, token, logit, lse }) => {
      const o = out[column];
      o.tokens.push(token);
      o.logits.push(logit);
      o.lses.push(lse);
      if (m.eos.includes(token)) return false;
      const shown = o.stop.push(o.decoder.push(token));
      onText?.(column, shown, token);
      return o.stop.stopped;
    }, signal);
    // The kernels quick steps skipped compile while the person reads the answer: the next prompt runs them.
    if (timings.some((t) => t.quickSteps > 0)) void m.runner.compileDeferred();
    return timings.map((t, i) => {
      const o = out[i];
      const rest = o.stop.finish(o.stop.stopped ? '' : o.decoder.flush());
      if (rest) onText?.(i, rest, -1);
      const promptIds = Array.isArray(prompt[0]) ? (prompt as number[][])[i] : (prompt as number[]);
      return { ...t, promptIds, tokens: o.tokens, text: o.stop.text, logits: o.logits, lses: o.lses };
    });
  }
}
