// Typed errors. Each says what went wrong and what to do about it; they cross the worker boundary as
// {name, message, details} and are rebuilt on the other side by `rebuildError`, so callers can `instanceof` them.

export class LoraLabError extends Error {
  override name = 'LoraLabError';
  constructor(message: string, readonly details: Record<string, unknown> = {}) {
    super(message);
  }
}

/** No WebGPU at all (no navigator.gpu, or no adapter). */
export class WebGPUUnavailableError extends LoraLabError { override name = 'WebGPUUnavailableError'; }
/** The GPU device was lost (driver reset, out of memory, tab in background on some systems). */
export class DeviceLostError extends LoraLabError { override name = 'DeviceLostError'; }
/** An allocation failed on the GPU. */
export class GpuOutOfMemoryError extends LoraLabError { override name = 'GpuOutOfMemoryError'; }
/** A GPU command failed where no error scope watched it (a kernel that did not compile, a refused copy): its results are void. */
export class GpuCommandError extends LoraLabError { override name = 'GpuCommandError'; }
/** A malformed safetensors file; `details.reason` says which rule was broken. */
export class SafetensorsError extends LoraLabError { override name = 'SafetensorsError'; }
/** config.json names an architecture or option the engine does not implement. */
export class UnsupportedModelError extends LoraLabError { override name = 'UnsupportedModelError'; }
/** The checkpoint does not match its config (missing tensor, wrong shape). */
export class WeightMismatchError extends LoraLabError { override name = 'WeightMismatchError'; }
/** A file could not be fetched: `details.status` (404, 401, ...) and `details.file`. */
export class DownloadError extends LoraLabError { override name = 'DownloadError'; }
/** Prompt plus requested tokens do not fit in the context window. */
export class ContextOverflowError extends LoraLabError { override name = 'ContextOverflowError'; }
/** A request argument is out of range (temperature < 0, top_p outside (0, 1], ...). */
export class InvalidArgumentError extends LoraLabError { override name = 'InvalidArgumentError'; }
/** The tokenizer files are missing or unreadable. */
export class TokenizerError extends LoraLabError { override name = 'TokenizerError'; }
/** A LoRA adapter file is malformed, unsupported, or does not fit the loaded base model. */
export class AdapterError extends LoraLabError { override name = 'AdapterError'; }
/** A dataset file is malformed; `details.record` and `details.field` say where. */
export class DatasetError extends LoraLabError { override name = 'DatasetError'; }
/** A side file (config, tokenizer, index) is not what its name promises: not JSON, not an object, far too big. */
export class FileFormatError extends LoraLabError { override name = 'FileFormatError'; }
/** A weight, adapter or checkpoint value is NaN or infinite, or a computation produced one (`details` say where). */
export class NonFiniteError extends LoraLabError { override name = 'NonFiniteError'; }
/** A file or folder name read from a file (or given for a built-in) would leave its source folder or repo. */
export class UnsafePathError extends LoraLabError { override name = 'UnsafePathError'; }
/** A file the project writes could not be written or replaced (disk full, no permission, not a folder). */
export class WriteError extends LoraLabError { override name = 'WriteError'; }
/** The browser's storage quota or the disk is full; `details.needed` and `details.free` in bytes when known. */
export class StorageFullError extends LoraLabError { override name = 'StorageFullError'; }
/** A downloaded file is not what the hub published (size or SHA-256): nothing of it is kept. */
export class IntegrityError extends LoraLabError { override name = 'IntegrityError'; }
/** The network is off (or --offline) and what was asked for is not in the cache. */
export class OfflineError extends LoraLabError { override name = 'OfflineError'; }
/** A request was cancelled by the caller. */
export class AbortedError extends LoraLabError { override name = 'AbortedError'; }
/** The engine worker stopped (it crashed, or the browser ended it): the requests it had were lost with its model. */
export class WorkerCrashedError extends LoraLabError { override name = 'WorkerCrashedError'; }
/** An operation needs a loaded model and none is loaded. */
export class NoModelLoadedError extends LoraLabError { override name = 'NoModelLoadedError'; }
/** Work that ran past its time limit was stopped (a reward model's graph that loops, for one). */
export class TimeLimitError extends LoraLabError { override name = 'TimeLimitError'; }

const errorClasses = {
  LoraLabError, WebGPUUnavailableError, DeviceLostError, GpuOutOfMemoryError, GpuCommandError, SafetensorsError,
  UnsupportedModelError, WeightMismatchError, DownloadError, ContextOverflowError, InvalidArgumentError,
  TokenizerError, AbortedError, NoModelLoadedError, AdapterError, DatasetError, NonFiniteError, UnsafePathError,
  WriteError, FileFormatError, StorageFullError, IntegrityError, OfflineError, WorkerCrashedError, TimeLimitError,
} as const;

export type ErrorName = keyof typeof errorClasses;

/** What crosses the worker boundary: plain data, structured-clone safe. */
export interface SerializedError {
  name: string;
  message: string;
  details?: Record<string, unknown>;
}

export function serializeError(err: unknown): SerializedError {
  if (err instanceof LoraLabError) return { name: err.name, message: err.message, details: err.details };
  if (err instanceof Error) return { name: err.name, message: err.message };
  return { name: 'Error', message: String(err) };
}

/** Rebuilds a typed error from its serialized form; unknown names become a plain LoraLabError. */
export function rebuildError(e: SerializedError): Error {
  const cls = (errorClasses as Record<string, typeof LoraLabError>)[e.name];
  if (cls) return new cls(e.message, e.details ?? {});
  const err = new LoraLabError(e.message, e.details ?? {});
  err.name = e.name;
  return err;
}
