// Which web-llm models this device can run, and a custom model given by URLs (a self-hosted mirror, or offline
// copies). Pure functions over web-llm's model records, so they are tested without a GPU; web-llm itself is imported
// only by the worker that runs it.

import type { AppConfig, InitProgressReport, ModelRecord } from '@mlc-ai/web-llm';
import { DownloadError, InvalidArgumentError, LoraLabError, OfflineError, WebGPUUnavailableError } from '../errors.js';

export interface DeviceCaps {
  /** The GPU adapter's features (shader-f16 matters: q*f16 models need it). */
  features: ReadonlySet<string>;
  maxStorageBufferBindingSize: number;
  /** What the page may spend on one model, in MB (web-llm's vram_required_MB is compared with it). */
  memoryBudgetMB: number;
}

export interface ModelChoice {
  id: string;
  vramMB: number | null;
  lowResource: boolean;
  /** Why the device cannot run it; absent when it can. */
  excluded?: string;
}

/** A q4f16_1 or q0f16 model computes in f16: it needs shader-f16 even when its record does not say so. */
const needsF16 = (r: ModelRecord) => /q\d+f16/i.test(r.model_id) || (r.required_features ?? []).includes('shader-f16');

/** Every LLM of the list, each marked with why this device cannot run it (f16, buffer limits, memory). */
export function modelChoices(list: ModelRecord[], caps: DeviceCaps): ModelChoice[] {
  return list
    .filter((r) => (r.model_type ?? 0) === 0) // 0: LLM; embedding and VLM models are not chat assistants here
    .map((r) => {
      const missing = (r.required_features ?? []).filter((f) => !caps.features.has(f));
      const why = needsF16(r) && !caps.features.has('shader-f16') ? 'needs shader-f16, which this GPU lacks'
        : missing.length ? `needs ${missing.join(', ')}`
        : r.buffer_size_required_bytes !== undefined && r.buffer_size_required_bytes > caps.maxStorageBufferBindingSize
          ? `needs storage buffers of ${Math.ceil(r.buffer_size_required_bytes / 2 ** 20)} MiB; this GPU allows ${Math.floor(caps.maxStorageBufferBindingSize / 2 ** 20)} MiB`
        : r.vram_required_MB !== undefined && r.vram_required_MB > caps.memoryBudgetMB
          ? `needs about ${Math.round(r.vram_required_MB)} MB of GPU memory, over the ${Math.round(caps.memoryBudgetMB)} MB budget`
        : undefined;
      return { id: r.model_id, vramMB: r.vram_required_MB ?? null, lowResource: !!r.low_resource_required, ...(why ? { excluded: why } : {}) };
    })
    .sort((a, b) => Number(!!a.excluded) - Number(!!b.excluded) || (a.vramMB ?? 0) - (b.vramMB ?? 0));
}

export interface CustomModel {
  /**
   * Folder of the MLC weights (mlc-chat-config.json, ndarray-cache.json, params_shard_*.bin, tokenizer files). web-llm
   * reads it in the hub's layout: a URL without /resolve/<rev>/ gets /resolve/main/ appended (a hub mirror works as
   * it is; a plain folder should be named .../resolve/main/).
   */
  weightsUrl: string;
  /** The model library (.wasm) compiled for web-llm. */
  libUrl: string;
  /** A name for it (default: the weights folder's last part). */
  id?: string;
}

const httpUrl = (text: string, what: string): URL => {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new InvalidArgumentError(`The ${what} "${text}" is not a URL: give a full http(s) address.`, { field: what });
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new InvalidArgumentError(`The ${what} must be an http(s) URL, not ${u.protocol}.`, { field: what });
  return u;
};

/** A model record for weights and a library at URLs of the person's choice (web-llm resolves files under `model`). */
export function customRecord(c: CustomModel): ModelRecord {
  const weights = httpUrl(c.weightsUrl.trim(), 'weights URL');
  const lib = httpUrl(c.libUrl.trim(), 'model library URL');
  if (!lib.pathname.endsWith('.wasm')) throw new InvalidArgumentError('The model library is a .wasm file compiled for web-llm (from mlc-llm or binary-mlc-llm-libs).', { field: 'model library URL' });
  const folder = weights.href.endsWith('/') ? weights.href : `${weights.href}/`;
  // web-llm reads <folder>resolve/main/<file> unless the URL holds /resolve/<revision>/ already: the name is the repo's.
  const repoPath = folder.replace(/\/resolve\/[^/]+\/$/, '/');
  const id = (c.id?.trim() || repoPath.split('/').filter(Boolean).pop() || 'custom-model').replace(/[^\w.-]+/g, '-');
  return { model: folder, model_id: id, model_lib: lib.href, overrides: {} };
}

/** web-llm's list plus the custom models, as the engine's app config (web-llm's own Cache API cache). */
export function appConfig(prebuilt: ModelRecord[], custom: ModelRecord[]): AppConfig {
  return { model_list: [...custom, ...prebuilt.filter((r) => !custom.some((c) => c.model_id === r.model_id))], useIndexedDBCache: false };
}

export interface WebllmProgress {
  /** 0..1 */
  fraction: number;
  text: string;
  elapsedMs: number;
  /** What web-llm is doing: fetching files, loading them onto the GPU, or compiling shaders. */
  phase: 'download' | 'load' | 'compile' | 'other';
}

/** web-llm's progress report in our terms (its text is kept: it names the file and the MB so far). */
export function progressOf(r: InitProgressReport): WebllmProgress {
  const t = r.text.toLowerCase();
  const phase = /fetch|download|param cache\[/.test(t) && !/loading model from cache/.test(t) ? 'download'
    : /from cache|loading/.test(t) ? 'load'
    : /shader|compil|pipeline/.test(t) ? 'compile'
    : 'other';
  return { fraction: Math.max(0, Math.min(1, r.progress)), text: r.text, elapsedMs: r.timeElapsed * 1000, phase };
}

/** web-llm's failures as our typed errors, each saying what to do. */
export function webllmError(e: unknown, model: string, online: boolean): Error {
  const msg = e instanceof Error ? e.message : String(e);
  if (e instanceof LoraLabError) return e;
  if (/shader-f16|f16 support|ShaderF16/i.test(msg)) {
    return new WebGPUUnavailableError(`${model} computes in f16, and this GPU has no shader-f16: pick a q4f32 or q0f32 model.`, { model });
  }
  if (/Failed to fetch|NetworkError|fetch failed|Load failed|ERR_|404|403|Not Found|network/i.test(msg)) {
    if (!online) return new OfflineError(`${model} is not in web-llm's cache and the network is off: connect once to download it, or pick a model downloaded before.`, { model });
    // No HTTP answer at all: the browser says it is online, but nothing came back from the server.
    const unanswered = !/\b(404|403|Not Found)\b/i.test(msg);
    return new DownloadError(unanswered
      ? `web-llm could not download ${model}: no server answered (${msg}). The network may be off or let nothing through, or the server is down or refuses this page. Check the weights and library URLs, and your connection.`
      : `web-llm could not download ${model}: the server refused a file (${msg}). Check the weights and library URLs.`, { model });
  }
  if (/Cannot find model record|Missing `model_lib`/i.test(msg)) return new InvalidArgumentError(`${model} is not in the model list: pick one from the list, or give its weights and library URLs.`, { model });
  if (/device (was )?lost|out of memory|OOM|allocation/i.test(msg)) {
    return new LoraLabError(`${model} did not fit on this GPU (${msg}). Unload the LoRA Lab model first, or pick a smaller web-llm model.`, { model });
  }
  return new LoraLabError(`web-llm failed on ${model}: ${msg}`, { model });
}
