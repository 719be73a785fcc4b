// The page side of the protocol: a small class that owns the Worker, matches events to requests by id and rebuilds
// typed errors. `generate` streams text through a callback and can be cancelled.

import type { Precision } from '../quant/precision.js';
import type { AdapterInfo, CompareColumn, ChatRequest, ChatResult, GenerateRequest, GenerateResult, ModelInfo } from '../engine.js';
import { rebuildError, WorkerCrashedError } from '../errors.js';
import type { ModelSource } from '../hub/source.js';
import type { LoadProgress } from '../model/load.js';
import type { RequestMap, RequestType, TrainRequest, WorkerEvent, WorkerRequest } from './protocol.js';
import type { CheckpointSummary, DatasetSource } from '../store/checkpoints.js';
import type { DatasetPreview } from '../training/session.js';
import type { RewardTrainRequest } from './reward.js';
import type { StepMetrics } from '../training/trainer.js';
import type { DownloadProgress } from '../store/progress.js';
import type { EvalProgress } from '../eval/run.js';
import type { ExampleResult } from '../eval/metrics.js';

export interface TrainCallbacks {
  /** A reward model's steps carry `accuracy` too (RewardStepMetrics). */
  onStep?: (m: StepMetrics & { accuracy?: number }) => void;
  onEval?: (step: number, loss: number, accuracy?: number) => void;
  onCheckpoint?: (step: number) => void;
  /** A pause took effect: the step under way when it was asked for is done, and no other starts. */
  onPaused?: () => void;
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  onProgress?: (p: LoadProgress | DownloadProgress) => void;
  onToken?: (text: string, token: number, column: number) => void;
  train?: TrainCallbacks;
  onEval?: (p: EvalProgress, result?: ExampleResult) => void;
}

export interface Port {
  postMessage(msg: WorkerRequest): void;
  addEventListener(type: 'message', fn: (e: MessageEvent<WorkerEvent>) => void): void;
  addEventListener(type: 'error' | 'messageerror', fn: (e: Event) => void): void;
  terminate?(): void;
}

/**
 * Owns the engine worker. When the worker dies, every pending request is rejected with WorkerCrashedError, and the
 * next request starts a new worker from `spawn`, set up as the last `init` asked (the model it held is gone: load one
 * again). A message the page cannot read ends the worker (its answer is lost). An `error` event does not by itself
 * mean the worker died (an exception it did not catch leaves it running; a script that failed to load leaves nothing
 * running): the worker is asked for a ping, and taken as dead when no answer comes within `livenessMs`.
 */
export class EngineClient {
  #nextId = 1;
  readonly #pending = new Map<number, Pending>();
  #port: Port | null = null;
  #initPayload: RequestMap['init']['request'] | null = null;
  /** Workers started so far (1 until one dies). */
  workers = 0;

  constructor(private readonly spawn: () => Port, private readonly livenessMs = 10_000) {}

  #live(): Port {
    if (this.#port) return this.#port;
    const port = (this.#port = this.spawn());
    this.workers++;
    port.addEventListener('message', (e) => this.#onEvent(e.data));
    port.addEventListener('error', (e) => void this.#suspect(port, e));
    port.addEventListener('messageerror', (e) => this.#died(port, e));
    // A worker started after one died is set up as the last init asked, before any other request reaches it.
    if (this.workers > 1 && this.#initPayload) this.#post(port, 'init', this.#initPayload);
    return port;
  }

  #checking: Port | null = null;

  /** After an error event: the worker is dead unless it answers a ping in time. */
  async #suspect(port: Port, e: Event): Promise<void> {
    if (port !== this.#port || this.#checking === port) return;
    this.#checking = port;
    const ping = this.#post(port, 'ping', {}).done.then(() => true, () => false);
    const alive = await Promise.race([ping, new Promise<boolean>((r) => setTimeout(() => r(false), this.livenessMs))]);
    this.#checking = null;
    if (alive) console.warn(`The engine reported an error and goes on: ${(e as ErrorEvent).message || 'no message'}`);
    else this.#died(port, e);
  }

  #died(port: Port, e: Event): void {
    if (port !== this.#port) return;
    this.#port = null;
    port.terminate?.();
    const what = (e as ErrorEvent).message || (e.type === 'messageerror' ? 'a message could not be read' : 'it stopped');
    const err = () => new WorkerCrashedError(`The engine stopped (${what}); what it was doing is lost, and so is the loaded model. Load the model again: a new engine starts on the next request.`);
    for (const p of this.#pending.values()) p.reject(err());
    this.#pending.clear();
  }

  #post<K extends RequestType>(port: Port, type: K, payload: RequestMap[K]['request']): { id: number; done: Promise<RequestMap[K]['result']> } {
    const id = this.#nextId++;
    const done = new Promise<RequestMap[K]['result']>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
    });
    // An init replayed on a new worker is nobody's request: its failure shows on the request that follows.
    done.catch(() => {});
    port.postMessage({ id, type, payload } as WorkerRequest);
    return { id, done };
  }

  #onEvent(e: WorkerEvent): void {
    const p = this.#pending.get(e.id);
    if (!p) return;
    switch (e.type) {
      case 'progress': p.onProgress?.(e.progress); break;
      case 'token': p.onToken?.(e.text, e.token, e.column); break;
      case 'trainStep': p.train?.onStep?.(e.metrics); break;
      case 'trainEval': p.train?.onEval?.(e.step, e.loss, e.accuracy); break;
      case 'checkpoint': p.train?.onCheckpoint?.(e.step); break;
      case 'trainPaused': p.train?.onPaused?.(); break;
      case 'evalProgress': p.onEval?.(e.progress, e.result); break;
      case 'result': this.#pending.delete(e.id); p.resolve(e.result); break;
      case 'error': this.#pending.delete(e.id); p.reject(rebuildError(e.error)); break;
    }
  }

  #send<K extends RequestType>(type: K, payload: RequestMap[K]['request'], hooks: Omit<Pending, 'resolve' | 'reject'> = {}): { id: number; done: Promise<RequestMap[K]['result']> } {
    const port = this.#live();
    const id = this.#nextId++;
    const done = new Promise<RequestMap[K]['result']>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject, ...hooks });
    });
    port.postMessage({ id, type, payload } as WorkerRequest);
    return { id, done };
  }

  init(forceF32 = false, hfEndpoint?: string) {
    this.#initPayload = { forceF32, hfEndpoint };
    return this.#send('init', this.#initPayload).done;
  }

  /** Any request by name, for the simple ones (storage) that need no callbacks. */
  request<K extends RequestType>(type: K, payload: RequestMap[K]['request']): Promise<RequestMap[K]['result']> {
    return this.#send(type, payload).done;
  }

  load(source: ModelSource, onProgress?: (p: LoadProgress | DownloadProgress) => void, contextLength?: number, precision?: Precision): Promise<ModelInfo> {
    return this.#send('load', { source, contextLength, precision }, { onProgress }).done;
  }

  generate(req: GenerateRequest, onToken?: (text: string, token: number) => void): { done: Promise<GenerateResult>; cancel: () => void } {
    const { id, done } = this.#send('generate', req, { onToken });
    return { done, cancel: () => void this.#send('cancel', { target: id }).done };
  }

  chat(req: ChatRequest, onToken?: (text: string, token: number) => void): { done: Promise<ChatResult>; cancel: () => void } {
    const { id, done } = this.#send('chat', req, { onToken });
    return { done, cancel: () => void this.#send('cancel', { target: id }).done };
  }

  compare(request: GenerateRequest, columns: CompareColumn[], onToken?: (column: number, text: string, token: number) => void): { done: Promise<GenerateResult[]>; cancel: () => void; stopColumn: (column: number) => void } {
    const { id, done } = this.#send('compare', { request, columns }, { onToken: (text, token, column) => onToken?.(column, text, token) });
    return { done, cancel: () => void this.#send('cancel', { target: id }).done, stopColumn: (column) => void this.#send('stopColumn', { target: id, column }).done };
  }

  loadAdapter(source: ModelSource, name?: string, onProgress?: (p: LoadProgress | DownloadProgress) => void): Promise<AdapterInfo> {
    return this.#send('loadAdapter', { source, name }, { onProgress }).done;
  }

  removeAdapter(name: string): Promise<AdapterInfo[]> {
    return this.#send('removeAdapter', { name }).done;
  }

  exportAdapter(name: string): Promise<{ config: string; safetensors: Uint8Array }> {
    return this.#send('exportAdapter', { name }).done;
  }

  exportMerged(name: string, strength = 1): Promise<{ name: string; blob: Blob }> {
    return this.#send('exportMerged', { name, strength }).done;
  }

  exportGguf(adapter: string | null, type: RequestMap['exportGguf']['request']['type'], strength = 1): Promise<{ name: string; blob: Blob }> {
    return this.#send('exportGguf', { adapter, type, strength }).done;
  }

  previewDataset(dataset: DatasetSource, format: 'alpaca' | 'chat'): Promise<DatasetPreview> {
    return this.#send('previewDataset', { dataset, format }).done;
  }

  /** Starts (or resumes) an evaluation; results stream in as they are kept; `stop` ends it after the current example. */
  evaluate(req: RequestMap['evalStart']['request'], onEval: (p: EvalProgress, result?: ExampleResult) => void) {
    const { id, done } = this.#send('evalStart', req, { onEval });
    return { done, stop: () => this.#send('cancel', { target: id }).done };
  }

  /** Starts (or resumes) a model's review of an evaluation's answer pairs; `stop` ends it after the current reply. */
  judge(req: RequestMap['judgeStart']['request'], onProgress: (p: EvalProgress) => void) {
    const { id, done } = this.#send('judgeStart', req, { onEval: (p) => onProgress(p) });
    return { done, stop: () => this.#send('cancel', { target: id }).done };
  }

  /** Starts (or resumes) a teacher job: the loaded model answers instructions into a dataset; `stop` keeps what is done. */
  teach(req: RequestMap['teachStart']['request'], onProgress: (p: EvalProgress) => void) {
    const { id, done } = this.#send('teachStart', req, { onEval: (p) => onProgress(p) });
    return { done, stop: () => this.#send('cancel', { target: id }).done };
  }

  /** Loads a reward model (ONNX) in the worker; download progress as for models. */
  loadReward(req: RequestMap['rewardLoad']['request'], onProgress?: (p: DownloadProgress) => void) {
    return this.#send('rewardLoad', req, { onProgress: onProgress as (p: LoadProgress | DownloadProgress) => void }).done;
  }

  /** Scores every answer of a kept evaluation with the loaded reward model (scores are kept with the results). */
  scoreRun(runId: string, onProgress: (p: EvalProgress) => void) {
    const { id, done } = this.#send('rewardScoreRun', { runId }, { onEval: (p) => onProgress(p) });
    return { done, stop: () => this.#send('cancel', { target: id }).done };
  }

  /** n samples per comparison column, ranked by the loaded reward model. */
  bestOf(req: RequestMap['bestOf']['request'], onProgress: (p: EvalProgress) => void) {
    const { id, done } = this.#send('bestOf', req, { onEval: (p) => onProgress(p) });
    return { done, cancel: () => void this.#send('cancel', { target: id }).done };
  }

  /** Starts a training run; the handle pauses, resumes and stops it. */
  train(req: TrainRequest, callbacks: TrainCallbacks) {
    return this.#trainingRun('train', req, callbacks);
  }

  /** Trains a reward model; progress comes as training steps (with accuracy), like a LoRA run's. */
  trainReward(req: RewardTrainRequest, callbacks: TrainCallbacks) {
    return this.#trainingRun('rewardTrain', req, callbacks);
  }

  #trainingRun<K extends 'train' | 'rewardTrain'>(type: K, req: RequestMap[K]['request'], callbacks: TrainCallbacks) {
    const { id, done } = this.#send(type, req, { train: callbacks });
    return {
      done,
      pause: () => this.#send('pauseTraining', { target: id, paused: true }).done,
      resume: () => this.#send('pauseTraining', { target: id, paused: false }).done,
      stop: () => this.#send('cancel', { target: id }).done,
    };
  }

  listCheckpoints(): Promise<CheckpointSummary[]> {
    return this.#send('listCheckpoints', {}).done;
  }

  deleteCheckpoint(name: string): Promise<CheckpointSummary[]> {
    return this.#send('deleteCheckpoint', { name }).done;
  }

  loadCheckpointAdapter(name: string): Promise<AdapterInfo> {
    return this.#send('loadCheckpointAdapter', { name }).done;
  }

  terminate(): void {
    this.#port?.terminate?.();
    this.#port = null;
    for (const p of this.#pending.values()) p.reject(new Error('The engine worker was stopped.'));
    this.#pending.clear();
  }
}
