// The thread one reward-model session runs in, started by the engine worker (lib/reward/ort-thread.ts): a graph that
// never ends is stopped by ending this worker, and the engine worker, its model and its requests go on.
import { serveOrt, type OrtRequest } from '../src/lib/reward/ort-thread.js';
import type { OrtModule } from '../src/lib/reward/onnx-reward.js';

let ort: Promise<OrtModule> | null = null;
/** onnxruntime-web's WebGPU build (wasm inside): threads need a cross-origin-isolated page, else one thread. */
const load = (): Promise<OrtModule> => (ort ??= import('onnxruntime-web/webgpu').then((m) => {
  m.env.wasm.numThreads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
  return m;
}));

const serve = serveOrt(load, (r) => self.postMessage(r));
self.onmessage = (e: MessageEvent<OrtRequest>) => void serve(e.data);
