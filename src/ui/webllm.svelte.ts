// web-llm on the page: the device's model list (what it can run, and why not the rest), custom models by URL, one
// model loaded at a time in web-llm's own worker with its progress, and the loaded model as an AssistantBackend.
// web-llm is imported only when first used; its downloads go to its own Cache API cache.

import type { MLCEngineInterface, ModelRecord } from '@mlc-ai/web-llm';
import type { AssistantBackend } from '../lib/assist/backend.js';
import { webllmBackend } from '../lib/assist/webllm-backend.js';
import { appConfig, customRecord, modelChoices, progressOf, webllmError, type CustomModel, type ModelChoice, type WebllmProgress } from '../lib/assist/webllm-models.js';
import { persisted } from './persisted.svelte.ts';

export class WebllmState {
  /** The model chosen in the pickers, and custom models added by URL (kept in this browser). */
  settings = persisted<{ modelId: string; custom: ModelRecord[]; memoryBudgetMB: number }>('webllm', { modelId: '', custom: [], memoryBudgetMB: 4096 });
  choices = $state.raw<ModelChoice[]>([]);
  /** The model list is being read (web-llm's module is fetched on first use). */
  listing = $state(false);
  loaded = $state.raw<string | null>(null);
  progress = $state.raw<WebllmProgress | null>(null);
  error = $state.raw<Error | null>(null);
  #engine: MLCEngineInterface | null = null;
  #worker: Worker | null = null;
  #prebuilt: ModelRecord[] = [];

  /** Reads web-llm's model list and this device's limits. */
  async refresh(): Promise<void> {
    this.listing = true;
    try {
      await this.#list();
    } finally {
      this.listing = false;
    }
  }

  async #list(): Promise<void> {
    const { prebuiltAppConfig } = await import('@mlc-ai/web-llm');
    this.#prebuilt = prebuiltAppConfig.model_list;
    const adapter = await navigator.gpu?.requestAdapter();
    const caps = {
      features: new Set<string>(adapter ? [...adapter.features] : []),
      maxStorageBufferBindingSize: adapter?.limits.maxStorageBufferBindingSize ?? 0,
      memoryBudgetMB: this.settings.memoryBudgetMB,
    };
    // A custom model with a prebuilt model's id replaces it (a mirror of it): one entry each.
    this.choices = modelChoices(appConfig(this.#prebuilt, $state.snapshot(this.settings.custom) as ModelRecord[]).model_list, caps);
  }

  addCustom(c: CustomModel): string {
    const r = customRecord(c);
    this.settings.custom = [r, ...this.settings.custom.filter((x) => x.model_id !== r.model_id)];
    this.settings.modelId = r.model_id;
    void this.refresh();
    return r.model_id;
  }

  /** Loads `modelId` in web-llm's worker (a previous web-llm model is unloaded first). */
  async load(modelId: string): Promise<boolean> {
    this.error = null;
    this.progress = { fraction: 0, text: 'Starting web-llm…', elapsedMs: 0, phase: 'other' };
    try {
      await this.unload();
      const { CreateWebWorkerMLCEngine } = await import('@mlc-ai/web-llm');
      const worker = (this.#worker = new Worker(new URL('../../workers/webllm.worker.ts', import.meta.url), { type: 'module', name: 'web-llm' }));
      this.#engine = await CreateWebWorkerMLCEngine(worker, modelId, {
        appConfig: appConfig(this.#prebuilt, $state.snapshot(this.settings.custom) as ModelRecord[]),
        initProgressCallback: (r) => { this.progress = progressOf(r); },
      });
      this.loaded = modelId;
      return true;
    } catch (e) {
      this.error = webllmError(e, modelId, navigator.onLine);
      await this.unload();
      return false;
    } finally {
      this.progress = null;
    }
  }

  async unload(): Promise<void> {
    const e = this.#engine;
    this.#engine = null;
    this.loaded = null;
    await e?.unload().catch(() => {});
    // Its GPU memory goes with the worker: nothing of web-llm stays allocated beside LoRA Lab's engine.
    this.#worker?.terminate();
    this.#worker = null;
  }

  /** The loaded model as a backend for the teacher and the judge. */
  backend(): AssistantBackend | null {
    return this.#engine && this.loaded ? webllmBackend(this.#engine as never, this.loaded) : null;
  }
}
