// What each part of the UI's engine state (adapters, generation, training, storage, evaluation) needs of the whole:
// the worker client, the one error panel and announcement, and the GPU, which runs one job at a time. EngineState
// (engine.svelte.ts) implements it; the parts never import each other.

import type { ModelInfo } from '../lib/engine.js';
import type { EngineClient } from '../lib/worker/client.js';

/** Where an error is shown: beside the panel or view whose action caused it ('general': at the top). */
export type ErrorPlace = 'general' | 'model' | 'adapter' | 'compare' | 'train' | 'evaluate' | 'storage';

export interface UiError {
  name: string;
  message: string;
  where: ErrorPlace;
  /** HTTP status of a failed download (401/403 ask for a token). */
  status?: number;
  /** The URL of a failed download; none for a file missing from a local folder. */
  url?: string;
  /** The input at fault, when the error names one ('token', 'name', …). */
  field?: string;
  /** What it came of, where fixing that clears it ('dataset': the Train view's data; 'source:url': a model tab). */
  cause?: string;
}

/** What holds the GPU: a chat turn, a comparison, best-of-n, a training run, an evaluation, the judge, the teacher. */
export type GpuJob = 'chat' | 'compare' | 'bestOf' | 'train' | 'evaluate' | 'judge' | 'teach';

export interface Host {
  readonly client: EngineClient;
  /** The loaded model (null: none). */
  readonly info: ModelInfo | null;
  fail(e: unknown, where: ErrorPlace, cause?: string): void;
  clearError(): void;
  /** Clears the error only when it came of `cause` (its cause is gone: the data or the source was changed). */
  clearErrorOf(cause: string): void;
  announce(text: string): void;
  /** Takes the GPU for `job`; false when no model is loaded or another job holds it. */
  begin(job: GpuJob): boolean;
  /** Gives the GPU back after `job`. */
  end(job: GpuJob): void;
  /** What is kept changed (a download, a training run, an import): the Storage listing is read again. */
  keptChanged(): void;
}

export function download(name: string, blob: Blob): void {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}
