// Loads a model's config and weights from any ModelFiles source into GPU buffers, streaming each safetensors file
// once and reporting progress in bytes per file. Shards are listed by model.safetensors.index.json.

import { WeightMismatchError } from '../errors.js';
import { streamSafetensors } from '../formats/safetensors.js';
import type { Gpu } from '../gpu/device.js';
import { readJson, type ModelFiles } from '../hub/files.js';
import { normalizeConfig, type ModelConfig } from './config.js';
import { WeightLoader, type ModelWeights } from './weights.js';

export interface LoadProgress {
  file: string;
  /** Bytes of this file received so far, and its size. */
  loaded: number;
  total: number;
  /** Bytes of all weight files received so far, and their total (known once every file was opened). */
  allLoaded: number;
  allTotal: number;
}

export interface LoadedWeights {
  config: ModelConfig;
  rawConfig: Record<string, unknown>;
  generationConfig: Record<string, unknown>;
  weights: ModelWeights;
}

/** The safetensors files of a checkpoint: the shards named by the index, or model.safetensors. */
export async function weightFiles(files: ModelFiles): Promise<string[]> {
  const index = await readJson(files, 'model.safetensors.index.json', true);
  if (!index) return ['model.safetensors'];
  const map = index.weight_map;
  if (typeof map !== 'object' || map === null) {
    throw new WeightMismatchError('model.safetensors.index.json has no weight_map. The file is corrupt: download it again.');
  }
  return [...new Set(Object.values(map as Record<string, string>))].sort();
}

export async function loadConfig(files: ModelFiles): Promise<{ config: ModelConfig; raw: Record<string, unknown>; generation: Record<string, unknown> }> {
  const raw = (await readJson(files, 'config.json'))!;
  const generation = (await readJson(files, 'generation_config.json', true)) ?? {};
  return { config: normalizeConfig(raw, generation), raw, generation };
}

export async function loadWeights(
  gpu: Gpu, files: ModelFiles, onProgress: (p: LoadProgress) => void = () => {},
  signal?: AbortSignal, configs?: Awaited<ReturnType<typeof loadConfig>>,
): Promise<LoadedWeights> {
  const { config, raw, generation } = configs ?? await loadConfig(files);
  const names = await weightFiles(files);
  return gpu.guard('loading weights', async () => {
    const loader = new WeightLoader(gpu, config);
    const opened = [];
    for (const name of names) opened.push({ name, file: await files.open(name) });
    const allTotal = opened.reduce((a, o) => a + o.file.size, 0);
    let allLoaded = 0;
    for (const { name, file } of opened) {
      let loaded = 0;
      const counted = (async function* () {
        for await (const chunk of file.stream) {
          signal?.throwIfAborted();
          loaded += chunk.byteLength;
          allLoaded += chunk.byteLength;
          onProgress({ file: name, loaded, total: file.size, allLoaded, allTotal });
          yield chunk;
        }
      })();
      await streamSafetensors(counted, file.size, () => {}, (t, bytes) => {
        if (loader.wants(t.name)) loader.upload(t.name, t.dtype, t.shape, bytes);
      }, name);
    }
    return { config, rawConfig: raw, generationConfig: generation, weights: loader.finish() };
  });
}
