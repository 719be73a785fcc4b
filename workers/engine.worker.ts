// Entry point of the engine's Web Worker: binds the protocol handler to this worker's messages, with the browser's
// storage: IndexedDB for records, the Origin Private File System (or IndexedDB chunks) for downloaded files.

import { Gpu } from '../src/lib/gpu/device.js';
import { HttpFiles } from '../src/lib/hub/files.js';
import { safeBaseName } from '../src/lib/hub/paths.js';
import { BUILTIN_MODEL_ID } from '../src/lib/hub/source.js';
import { IdbBlobStore } from '../src/lib/store/idb-blobs.js';
import { LabStore } from '../src/lib/store/kept.js';
import { ModelCache } from '../src/lib/store/model-cache.js';
import { OpfsBlobStore } from '../src/lib/store/opfs-blobs.js';
import { createHandler } from '../src/lib/worker/handler.js';
import type { OrtModule } from '../src/lib/reward/onnx-reward.js';
import { threadedOrt, type OrtReply } from '../src/lib/reward/ort-thread.js';
import { BUILTIN_SETS } from '../src/lib/eval/sets.js';
import type { WorkerEvent, WorkerRequest } from '../src/lib/worker/protocol.js';

const base = new URL(import.meta.env.BASE_URL, self.location.origin);
const builtinUrl = new URL('models/demo/', base).href;
const lab = typeof indexedDB === 'undefined' ? undefined : new LabStore();
const estimate = async () => {
  try {
    const e = await navigator.storage?.estimate?.();
    return e && e.quota !== undefined && e.usage !== undefined ? { quota: e.quota, usage: e.usage } : null;
  } catch {
    return null;
  }
};
const caches = new Map<string, Promise<ModelCache>>();
// What public/models/demo and public/adapters/* hold (precached by the service worker, so they load offline).
const BUILTIN_MODEL_FILES = ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'];
const BUILTIN_ADAPTER_FILES = ['adapter_config.json', 'adapter_model.safetensors'];

/** Seconds one text may take on an ONNX reward model before its thread is stopped (TimeLimitError). */
const REWARD_TEXT_LIMIT_S = 60;
/**
 * onnxruntime-web, fetched the first time a reward model is loaded: its sessions run in a worker of their own
 * (ort.worker.ts) under a time limit; this worker only builds the input tensors.
 */
let ort: Promise<OrtModule> | null = null;
const loadOrt = (): Promise<OrtModule> => {
  ort ??= import('onnxruntime-web/webgpu').then((m) => threadedOrt(m, () => {
    const w = new Worker(new URL('./ort.worker.ts', import.meta.url), { type: 'module' });
    return {
      post: (msg) => w.postMessage(msg),
      onMessage: (fn) => w.addEventListener('message', (e: MessageEvent<OrtReply>) => fn(e.data)),
      onError: (fn) => w.addEventListener('error', (e) => fn(e.message || 'its worker failed to start')),
      terminate: () => w.terminate(),
    };
  }, REWARD_TEXT_LIMIT_S * 1000));
  return ort;
};

const handle = createHandler(
  {
    ort: loadOrt,
    createGpu: (opts) => Gpu.create(navigator.gpu, opts),
    builtin: () => new HttpFiles('built-in demo model', builtinUrl, { files: BUILTIN_MODEL_FILES }, BUILTIN_MODEL_ID),
    builtinDataset: async () => new Uint8Array(await (await fetch(new URL('data/alpaca-gpt4-sample-en.json', base))).arrayBuffer()),
    builtinAdapter: (name) => new HttpFiles(name, new URL(`adapters/${encodeURIComponent(safeBaseName(name, 'A built-in adapter name'))}/`, base).href, { files: BUILTIN_ADAPTER_FILES }),
    builtinEvalSet: async (name) => new Uint8Array(await (await fetch(new URL(`data/eval/${BUILTIN_SETS[name]}`, base))).arrayBuffer()),
    lab,
    estimate,
    cache: lab
      ? (endpoint) => {
        const key = endpoint ?? '';
        if (!caches.has(key)) {
          caches.set(key, (async () => {
            const store = (await OpfsBlobStore.create()) ?? new IdbBlobStore(() => lab.db());
            return new ModelCache(store, lab, { endpoint, offline: () => !navigator.onLine, estimate });
          })());
        }
        return caches.get(key)!;
      }
      : undefined,
  },
  (e: WorkerEvent) => self.postMessage(e),
);

self.addEventListener('message', (e: MessageEvent<WorkerRequest>) => void handle(e.data));
