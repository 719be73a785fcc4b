// Entry point of the engine's Web Worker: binds the protocol handler to this worker's messages.

import { Gpu } from '../src/lib/gpu/device.js';
import { HttpFiles } from '../src/lib/hub/files.js';
import { safeBaseName } from '../src/lib/hub/paths.js';
import { BUILTIN_MODEL_ID } from '../src/lib/hub/source.js';
import { createHandler } from '../src/lib/worker/handler.js';
import { CheckpointStore } from '../src/lib/storage/checkpoints.js';
import type { WorkerEvent, WorkerRequest } from '../src/lib/worker/protocol.js';

const builtinUrl = new URL(`${import.meta.env.BASE_URL}models/demo/`, self.location.origin).href;

const handle = createHandler(
  {
    createGpu: (opts) => Gpu.create(navigator.gpu, opts),
    builtin: () => new HttpFiles('built-in demo model', builtinUrl, {}, BUILTIN_MODEL_ID),
    builtinDataset: async () => new Uint8Array(await (await fetch(new URL(`${import.meta.env.BASE_URL}data/alpaca-gpt4-sample-en.json`, self.location.origin))).arrayBuffer()),
    checkpoints: typeof indexedDB === 'undefined' ? undefined : new CheckpointStore(),
    builtinAdapter: (name) => new HttpFiles(name, new URL(`${import.meta.env.BASE_URL}adapters/${encodeURIComponent(safeBaseName(name, 'A built-in adapter name'))}/`, self.location.origin).href),
  },
  (e: WorkerEvent) => self.postMessage(e),
);

self.addEventListener('message', (e: MessageEvent<WorkerRequest>) => void handle(e.data));
