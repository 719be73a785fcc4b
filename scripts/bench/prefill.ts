// The prefill section of `npm run bench` (--only prefill [--peer]): prompts of 32 and 256 tokens evaluated from an
// empty cache to their first token, at SmolLM2-135M's shapes. With --peer, llama.cpp runs the same weights (our GGUF
// export of the model, F16) on the same driver, in a child process between two rounds of ours: ours, peer, ours, so
// a drift of the machine shows as a difference between our rounds.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Engine } from '../../src/lib/engine.js';
import { modelToGguf } from '../../src/lib/formats/gguf-export.js';

export const PREFILL_LENGTHS = [32, 256];

const prompt = (n: number) => Array.from({ length: n }, (_, i) => 100 + ((i * 37) % 1000));

/** Our prefill of each length, `runs` times (after one warm-up each): ms per run. */
export async function ourPrefill(engine: Engine, runs: number): Promise<Record<number, number[]>> {
  const out: Record<number, number[]> = {};
  for (const n of PREFILL_LENGTHS) await engine.generate({ promptIds: prompt(n), maxNewTokens: 1, sampling: { temperature: 0 } });
  for (let r = 0; r < runs; r++) for (const n of PREFILL_LENGTHS) {
    const g = await engine.generate({ promptIds: prompt(n), maxNewTokens: 1, sampling: { temperature: 0 } });
    (out[n] ??= []).push(g.timeToFirstTokenMs);
  }
  return out;
}

export interface PeerResult { backend: string; device: string; prefillMs: Record<number, number[]> }

/**
 * llama.cpp's prefill of the same lengths on the model folder `files` exported as F16 GGUF (our exporter: the file
 * llama.cpp reads is the one a person would download from the app). `icd`: the Vulkan driver's ICD file, as ours uses.
 */
export function peerPrefill(files: Map<string, Uint8Array>, runs: number, icd: string | undefined): PeerResult {
  const dir = mkdtempSync(join(tmpdir(), 'lora-lab-peer-'));
  try {
    const path = join(dir, 'model.gguf');
    writeFileSync(path, Buffer.concat(modelToGguf(files, 'f16', 'bench').map((c) => Buffer.from(c.buffer, c.byteOffset, c.byteLength))));
    const script = new URL('./llamacpp-prefill.mjs', import.meta.url).pathname;
    const r = spawnSync(process.execPath, [script, '--model', path, '--lengths', PREFILL_LENGTHS.join(','), '--runs', String(runs)], {
      env: { ...process.env, ...(icd ? { VK_ICD_FILENAMES: icd } : {}) }, encoding: 'utf8', timeout: 20 * 60_000,
    });
    const line = r.stdout.trim().split('\n').pop() ?? '';
    if (r.status !== 0 || !line.startsWith('{')) throw new Error(`llama.cpp peer failed (exit ${r.status}): ${r.stderr.slice(-2000)}`);
    return JSON.parse(line) as PeerResult;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
