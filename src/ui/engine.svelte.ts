// Reactive state of the engine worker for the UI: owns the EngineClient, exposes status, load progress, model info,
// the streamed answer and its timings. Components read these fields and call the methods; only this file talks to
// the worker.

import type { GenerateRequest, GenerateResult, ModelInfo } from '../lib/engine.js';
import type { ModelSource } from '../lib/hub/source.js';
import type { LoadProgress } from '../lib/model/load.js';
import { EngineClient } from '../lib/worker/client.js';

export type Status = 'idle' | 'starting' | 'loading' | 'ready' | 'generating' | 'error';

export interface UiError {
  name: string;
  message: string;
}

export class EngineState {
  status = $state<Status>('idle');
  adapter = $state<{ adapter: string; f16: boolean; hasF16Feature: boolean } | null>(null);
  info = $state.raw<ModelInfo | null>(null);
  progress = $state.raw<(LoadProgress & { startedAt: number; at: number }) | null>(null);
  output = $state('');
  result = $state.raw<GenerateResult | null>(null);
  firstTokenMs = $state<number | null>(null);
  tokensSoFar = $state(0);
  error = $state.raw<UiError | null>(null);
  #client: EngineClient;
  #cancel: (() => void) | null = null;
  #started = 0;

  constructor() {
    const worker = new Worker(new URL('../../workers/engine.worker.ts', import.meta.url), { type: 'module', name: 'lora-lab-engine' });
    this.#client = new EngineClient(worker);
  }

  #fail(e: unknown): void {
    const err = e as Error;
    this.error = { name: err.name ?? 'Error', message: err.message ?? String(e) };
    this.status = this.info ? 'ready' : 'error';
  }

  async start(): Promise<void> {
    this.status = 'starting';
    try {
      this.adapter = await this.#client.init();
      this.status = 'idle';
    } catch (e) {
      this.#fail(e);
    }
  }

  async load(source: ModelSource): Promise<void> {
    this.error = null;
    this.status = 'loading';
    this.info = null;
    const startedAt = performance.now();
    this.progress = null;
    try {
      this.info = await this.#client.load(source, (p) => {
        this.progress = { ...p, startedAt, at: performance.now() };
      });
      this.status = 'ready';
    } catch (e) {
      this.#fail(e);
    }
  }

  async generate(req: GenerateRequest): Promise<void> {
    if (this.status !== 'ready') return;
    this.error = null;
    this.output = '';
    this.result = null;
    this.firstTokenMs = null;
    this.tokensSoFar = 0;
    this.status = 'generating';
    this.#started = performance.now();
    const job = this.#client.generate(req, (text) => {
      if (this.firstTokenMs === null) this.firstTokenMs = performance.now() - this.#started;
      this.tokensSoFar++;
      this.output += text;
    });
    this.#cancel = job.cancel;
    try {
      this.result = await job.done;
      this.output = this.result.text;
      this.status = 'ready';
    } catch (e) {
      this.#fail(e);
    } finally {
      this.#cancel = null;
    }
  }

  stop(): void {
    this.#cancel?.();
  }
}
