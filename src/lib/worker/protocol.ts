// The typed message protocol between the page and the engine worker. Every request carries an id; the worker answers
// with any number of events for that id (progress, token) and then exactly one `result` or `error`.
// Errors cross as {name, message, details} and are rebuilt as typed errors by the client.

import type { GgufExportType } from '../formats/gguf-export.js';
import type { AdapterInfo, ChatRequest, ChatResult, CompareColumn, GenerateRequest, GenerateResult, ModelInfo } from '../engine.js';
import type { SerializedError } from '../errors.js';
import type { ModelSource } from '../hub/source.js';
import type { LoadProgress } from '../model/load.js';
import type { Precision } from '../quant/precision.js';
import type { CheckpointSummary, DatasetSource } from '../store/checkpoints.js';
import type { DatasetPreview } from '../training/session.js';
import type { TrainConfig } from '../training/train-config.js';
import type { TrainMemory } from '../training/memory.js';
import type { StepMetrics } from '../training/trainer.js';
import type { DownloadProgress } from '../store/progress.js';
import type { StorageRequestMap } from './storage.js';
import type { EvalRequestMap } from './evaluation.js';
import type { JudgeRequestMap } from './judging.js';
import type { TeachRequestMap } from './teaching.js';
import type { RewardRequestMap } from './reward.js';
import type { PreferenceConfig, PreferenceObjective } from '../training/preference.js';
import type { Criterion } from '../eval/votes.js';
import type { PushResult } from '../hub/push.js';
import type { EvalProgress } from '../eval/run.js';
import type { ExampleResult } from '../eval/metrics.js';

export interface TrainRequest {
  name: string;
  dataset: DatasetSource;
  format: 'alpaca' | 'chat';
  config: Partial<TrainConfig>;
  maxRecords?: number;
  /** Continue the run saved under this name (its dataset and settings are used). */
  resumeFrom?: string;
  /**
   * Preference tuning instead of instruction tuning: DPO, ORPO or SimPO on pairs (the dataset holds them, in TRL's
   * format or as comparison data, or `votes` picks the votes kept here on a criterion), with the objective's settings,
   * DPO's reference (an adapter on the shelf; absent: the base) and an adapter to start from.
   */
  preference?: {
    objective: PreferenceObjective;
    settings?: Partial<Omit<PreferenceConfig, 'objective'>>;
    votes?: Criterion;
    referenceAdapter?: string | null;
    startFrom?: string | null;
  };
}

export interface RequestMap extends StorageRequestMap, EvalRequestMap, JudgeRequestMap, TeachRequestMap, RewardRequestMap, SharingRequestMap {
  init: { request: { forceF32?: boolean; /** A Hugging Face mirror (or a local server in tests) instead of huggingface.co. */ hfEndpoint?: string }; result: { gpu: string; f16: boolean; hasF16Feature: boolean } };
  load: { request: { source: ModelSource; contextLength?: number; /** How to keep the weights (default auto). */ precision?: Precision }; result: ModelInfo };
  generate: { request: GenerateRequest; result: GenerateResult };
  /** A conversation's next assistant turn; the KV cache of the previous turn is reused where the prefix is shared. */
  chat: { request: ChatRequest; result: ChatResult };
  compare: { request: { request: GenerateRequest; columns: CompareColumn[] }; result: GenerateResult[] };
  loadAdapter: { request: { source: ModelSource; name?: string }; result: AdapterInfo };
  removeAdapter: { request: { name: string }; result: AdapterInfo[] };
  exportAdapter: { request: { name: string }; result: { config: string; safetensors: Uint8Array } };
  /** The adapter as a .zip holding a PEFT folder (adapter_config.json, adapter_model.safetensors, README.md). */
  exportAdapterZip: { request: { name: string }; result: { name: string; blob: Blob } };
  /** The same PEFT folder as files, for the page to write into a folder the person picks (File System Access). */
  exportAdapterFolder: { request: { name: string }; result: { folder: string; files: [string, Uint8Array][] } };
  /** The base with the adapter merged in, as a .zip holding a Hugging Face model folder. */
  exportMerged: { request: { name: string; strength: number }; result: { name: string; blob: Blob } };
  /** The model (an adapter merged in, or the base when null) as one GGUF file, or with type "lora" the adapter alone. */
  exportGguf: { request: { adapter: string | null; type: GgufExportType | 'lora'; strength: number }; result: { name: string; blob: Blob } };
  previewDataset: { request: { dataset: DatasetSource; format: 'alpaca' | 'chat' }; result: DatasetPreview };
  /** A preference run's result says how many pairs it trained on, held out, and cut to the cutoff. */
  train: { request: TrainRequest; result: AdapterInfo & { pairs?: { train: number; validation: number; truncated: number } } };
  /** GPU memory a run with these settings would take beside the loaded model. */
  trainMemory: { request: { config: Partial<TrainConfig> }; result: TrainMemory; immediate: true };
  pauseTraining: { request: { target: number; paused: boolean }; result: { paused: boolean }; immediate: true };
  listCheckpoints: { request: Record<string, never>; result: CheckpointSummary[]; immediate: true };
  deleteCheckpoint: { request: { name: string }; result: CheckpointSummary[] };
  loadCheckpointAdapter: { request: { name: string }; result: AdapterInfo };
  cancel: { request: { target: number }; result: { cancelled: boolean }; immediate: true };
  /** Whether the worker still answers (the page asks after an error event). */
  ping: { request: Record<string, never>; result: { alive: true }; immediate: true };
  /** Ends one column of a running comparison; the others go on. */
  stopColumn: { request: { target: number; column: number }; result: { stopped: boolean }; immediate: true };
}

/** What a push sends. */
export type PushSource =
  | { kind: 'adapter'; name: string }
  | { kind: 'merged'; name: string; strength: number }
  | { kind: 'dataset'; name: string }
  | { kind: 'evaluation'; runId: string }
  | { kind: 'recipe'; name: string; gpus?: number };

export interface SharingRequestMap {
  /** A saved run's recipe for a cluster, as a .zip (its base model must be the one loaded: its tokenizer makes the data). */
  exportRecipe: { request: { name: string; gpus?: number }; result: { name: string; blob: Blob } };
  /**
   * Pushes `what` to the Hub repo `repo` as one commit (the repo is made when missing). The token: the one given, else
   * the one kept here, which goes to huggingface.co only (never to a mirror a link named).
   */
  pushToHub: { request: { what: PushSource; repo: string; private?: boolean; message?: string; token?: string }; result: PushResult };
}

export type RequestType = keyof RequestMap;

/** Requests marked `immediate` in the map: they use no GPU and run at once, beside the queued GPU jobs. */
export type ImmediateRequest = { [K in RequestType]: RequestMap[K] extends { immediate: true } ? K : never }[RequestType];

/** The worker's handlers of requests `K`: each gets the request id, its payload and a cancel signal. */
export type Handlers<K extends RequestType> = { [R in K]: (id: number, p: RequestMap[R]['request'], signal: AbortSignal) => Promise<RequestMap[R]['result']> };

export type WorkerRequest = {
  [K in RequestType]: { id: number; type: K; payload: RequestMap[K]['request'] };
}[RequestType];

export type WorkerEvent =
  | { id: number; type: 'progress'; progress: LoadProgress | DownloadProgress }
  | { id: number; type: 'token'; column: number; token: number; text: string }
  | { id: number; type: 'trainStep'; metrics: StepMetrics }
  /** accuracy: a reward model's share of validation pairs ordered right. */
  | { id: number; type: 'trainEval'; step: number; loss: number; accuracy?: number }
  | { id: number; type: 'checkpoint'; step: number }
  /** A paused run has finished the step it was in and waits: no step runs until it is resumed. */
  | { id: number; type: 'trainPaused' }
  | { id: number; type: 'evalProgress'; progress: EvalProgress; result?: ExampleResult }
  | { id: number; type: 'result'; result: unknown }
  | { id: number; type: 'error'; error: SerializedError };
