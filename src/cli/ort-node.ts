// onnxruntime-web for the CLI: each reward-model session in a worker_threads thread of its own, under a time limit
// (see lib/reward/ort-thread.ts). The thread registers tsx for its TypeScript (ort-node-thread.mjs).

import * as ort from 'onnxruntime-web';
import { Worker } from 'node:worker_threads';
import type { OrtModule } from '../lib/reward/onnx-reward.js';
import { threadedOrt, type OrtReply } from '../lib/reward/ort-thread.js';

/** Seconds one reward-model text may take before the thread running it is stopped (lora-lab score --time-limit). */
export const DEFAULT_SCORE_LIMIT_S = 60;

export function nodeOrt(limitMs: number): OrtModule {
  return threadedOrt(ort, () => {
    const w = new Worker(new URL('./ort-node-thread.mjs', import.meta.url));
    return {
      post: (m) => w.postMessage(m),
      onMessage: (fn) => w.on('message', (r: OrtReply) => fn(r)),
      onError: (fn) => {
        w.on('error', (e) => fn(e.message));
        w.on('exit', (code) => fn(`its thread ended with code ${code}`));
      },
      terminate: () => void w.terminate(),
    };
  }, limitMs);
}
