// The thread one reward-model session runs in (src/cli/ort-node.ts starts it): onnxruntime-web's wasm backend.

import * as ort from 'onnxruntime-web';
import { parentPort } from 'node:worker_threads';
import { serveOrt, type OrtRequest } from '../lib/reward/ort-thread.js';

ort.env.wasm.numThreads = 1;
const port = parentPort!;
const serve = serveOrt(async () => ort, (r) => port.postMessage(r));
port.on('message', (req: OrtRequest) => void serve(req));
