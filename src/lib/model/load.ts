// Loads a model's config and weights from any ModelFiles source into GPU buffers, streaming each safetensors file
// once and reporting progress in bytes per file. Shards are listed by model.safetensors.index.json.

import { AdapterError, DownloadError, WeightMismatchError } from '../errors.js';
import { streamSafetensors } from '../formats/safetensors.js';
import type { Gpu } from '../gpu/device.js';
import { readJson, type ModelFiles, type OpenedFile } from '../model-files.js';
import { safeRelativeName } from '../hub/paths.js';
import { normalizeConfig, parameterCount, type ModelConfig } from './config.js';
import { choosePrecision, type Precision } from '../quant/precision.js';
import { Fingerprint } from './fingerprint.js';
import { ggufConfig, ggufRopeTensors, inGgufTerms, readGgufHeader, streamGgufInto, type GgufHeader } from './gguf.js';
import { ggufTokenizerConfig, tokenizerFromGguf } from '../tokenizer/gguf-tokenizer.js';
import type { WeightFormat } from '../quant/blocks.js';
import { destroyWeights, WeightLoader, type ModelWeights } from './weights.js';

export interface LoadProgress {
  /** upload: weights streamed from their files into GPU buffers; prepare: KV cache and first shader compiles. */
  phase: 'upload' | 'prepare';
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
  /** The model's content identity (fingerprint.ts): the same weights however they were opened. */
  fingerprint: string;
}

/** The safetensors files of a checkpoint: the shards named by the index, or model.safetensors. */
export async function weightFiles(files: ModelFiles): Promise<string[]> {
  const index = await readJson(files, 'model.safetensors.index.json', true);
  if (!index) return ['model.safetensors'];
  const map = index.weight_map;
  if (typeof map !== 'object' || map === null) {
    throw new WeightMismatchError('model.safetensors.index.json has no weight_map. The file is corrupt: download it again.');
  }
  const names = [...new Set(Object.values(map as Record<string, unknown>))];
  for (const n of names) {
    safeRelativeName(n, 'model.safetensors.index.json');
    if (!String(n).endsWith('.safetensors')) {
      throw new WeightMismatchError(`model.safetensors.index.json names the shard ${JSON.stringify(n)}, which is not a .safetensors file. The file is corrupt: download it again.`, { file: n });
    }
  }
  return (names as string[]).sort();
}

/** Tensors a checkpoint may hold that the engine does not use (rotary caches computed at load by older exporters). */
const IGNORABLE = /(^|\.)rotary_emb\.inv_freq$/;
const LAYER = /^model\.layers\.(\d+)\./;

/**
 * Every tensor must be one the config implies, or an ignorable cache: a layer beyond num_hidden_layers or an
 * unknown tensor inside a layer (a bias or norm of another architecture) means the config does not describe these
 * weights, and silently dropping them would run a different model.
 */
function checkExpected(loader: WeightLoader, config: ModelConfig, tensor: string, file: string): void {
  if (loader.wants(tensor) || loader.skips(tensor) || IGNORABLE.test(tensor)) return;
  if (tensor === 'lm_head.weight' && config.tieWordEmbeddings) return; // some tied checkpoints store the copy
  const layer = LAYER.exec(tensor);
  if (layer && Number(layer[1]) >= config.numLayers) {
    throw new WeightMismatchError(`${file}: tensor "${tensor}" is for layer ${layer[1]}, but config.json has num_hidden_layers ${config.numLayers}. The config does not describe these weights: use the config.json that came with them.`, { tensor, file });
  }
  throw new WeightMismatchError(`${file}: tensor "${tensor}" is not part of a ${config.architecture} with this config.json, so it would be ignored and a different model would run. Check that the config and weights come from the same model.`, { tensor, file });
}

/** A GGUF header read by loadConfig, whose stream loadWeights continues (the file is read once). */
const ggufHeaders = new WeakMap<ModelFiles, GgufHeader>();

export interface LoadedConfig {
  config: ModelConfig;
  raw: Record<string, unknown>;
  generation: Record<string, unknown>;
  /** A GGUF model's tokenizer, rebuilt from its metadata (used when no tokenizer.json sits beside the file). */
  tokenizer?: { rebuild: () => { json: Record<string, unknown>; config: Record<string, unknown> }; config: Record<string, unknown> };
}

export async function loadConfig(files: ModelFiles): Promise<LoadedConfig> {
  if (files.gguf) {
    const name = files.gguf;
    const header = await readGgufHeader(files, name);
    ggufHeaders.set(files, header);
    const { raw, generation } = ggufConfig(header, name, await ggufRopeTensors(header, name));
    const meta = header.parsed.metadata as unknown as Record<string, unknown>;
    let config: ModelConfig;
    try {
      config = normalizeConfig(raw, generation);
    } catch (e) {
      throw inGgufTerms(e, header, name);
    }
    return { config, raw, generation, tokenizer: { rebuild: () => tokenizerFromGguf(meta, name, config.vocabSize), config: ggufTokenizerConfig(meta) } };
  }
  const raw = await readJson(files, 'config.json').catch(async (e: unknown) => {
    // An adapter folder given where a model belongs: say so, rather than that config.json is missing.
    const isAdapter = e instanceof DownloadError && e.details.status === 404 && await files.bytes('adapter_config.json', true).then((b) => b !== null, () => false);
    if (isAdapter) throw new AdapterError(`${files.label} is a LoRA adapter, not a model: load its base model here, then add the adapter on the adapter shelf.`, { file: 'config.json' });
    throw e;
  }) as Record<string, unknown>;
  const generation = (await readJson(files, 'generation_config.json', true)) ?? {};
  return { config: normalizeConfig(raw, generation), raw, generation };
}

export async function loadWeights(
  gpu: Gpu, files: ModelFiles, onProgress: (p: LoadProgress) => void = () => {},
  signal?: AbortSignal, configs?: Awaited<ReturnType<typeof loadConfig>>, precision: Precision = 'auto',
): Promise<LoadedWeights> {
  const { config, raw, generation } = configs ?? await loadConfig(files);
  const format = choosePrecision(precision, config, gpu.f16); // refused before any weight is read
  if (files.gguf) return loadGgufWeights(gpu, files, files.gguf, config, raw, generation, format, onProgress, signal);
  const names = await weightFiles(files);
  return gpu.guard('loading weights', async () => {
    const opened = [];
    for (const name of names) opened.push({ name, file: await files.open(name) });
    checkSize(config, opened.reduce((a, o) => a + o.file.size, 0));
    const loader = new WeightLoader(gpu, config, format);
    const fingerprint = new Fingerprint();
    try {
      await streamInto(loader, config, opened, onProgress, signal, fingerprint);
      return { config, rawConfig: raw, generationConfig: generation, weights: loader.finish(), fingerprint: fingerprint.digest(config) };
    } catch (e) {
      // A refused or interrupted load frees what it allocated: a bad file must not cost the GPU memory of a model.
      destroyWeights(gpu, loader.weights);
      throw e;
    }
  }, (made) => destroyWeights(gpu, made.weights));
}

async function loadGgufWeights(
  gpu: Gpu, files: ModelFiles, name: string, config: ModelConfig, raw: Record<string, unknown>, generation: Record<string, unknown>,
  format: WeightFormat, onProgress: (p: LoadProgress) => void, signal?: AbortSignal,
): Promise<LoadedWeights> {
  const header = ggufHeaders.get(files) ?? await readGgufHeader(files, name);
  ggufHeaders.delete(files);
  return gpu.guard('loading weights', async () => {
    const loader = new WeightLoader(gpu, config, format, true);
    const fingerprint = new Fingerprint();
    const total = header.file.size;
    try {
      await streamGgufInto(header, loader, config, name, (loaded) => onProgress({ phase: 'upload', file: name, loaded, total, allLoaded: loaded, allTotal: total }), signal, fingerprint);
      return { config, rawConfig: raw, generationConfig: generation, weights: loader.finish(), fingerprint: fingerprint.digest(config) };
    } catch (e) {
      destroyWeights(gpu, loader.weights);
      throw e;
    }
  }, (made) => destroyWeights(gpu, made.weights));
}

/**
 * Every parameter takes at least 2 bytes (F16/BF16): files smaller than that cannot hold what the config implies.
 * Checked before any GPU allocation, so a config that does not belong to its weights never allocates for itself.
 */
function checkSize(config: ModelConfig, bytes: number): void {
  const needed = parameterCount(config) * 2;
  if (bytes >= needed) return;
  throw new WeightMismatchError(
    `config.json describes ${(parameterCount(config) / 1e6).toFixed(1)}M parameters (at least ${(needed / 1e6).toFixed(1)} MB) but the weight files hold ${(bytes / 1e6).toFixed(1)} MB. ` +
      'The weights are incomplete (download them again) or the config does not belong to them (use the config.json that came with them).',
    { needed, bytes },
  );
}

/** Streams each safetensors file once into the loader, reporting bytes per file and overall. */
async function streamInto(
  loader: WeightLoader, config: ModelConfig, opened: { name: string; file: OpenedFile }[],
  onProgress: (p: LoadProgress) => void, signal?: AbortSignal, fingerprint?: Fingerprint,
): Promise<void> {
  const allTotal = opened.reduce((a, o) => a + o.file.size, 0);
  let allLoaded = 0;
  for (const { name, file } of opened) {
    let loaded = 0;
    const counted = (async function* () {
      for await (const chunk of file.stream) {
        signal?.throwIfAborted();
        loaded += chunk.byteLength;
        allLoaded += chunk.byteLength;
        onProgress({ phase: 'upload', file: name, loaded, total: file.size, allLoaded, allTotal });
        yield chunk;
      }
    })();
    // Names are checked from the header, before any tensor bytes are downloaded.
    await streamSafetensors(counted, file.size, (h) => { for (const t of h.tensors) checkExpected(loader, config, t.name, name); }, (t, bytes) => {
      if (!loader.wants(t.name)) return;
      fingerprint?.add(t.name, t.dtype, t.shape, bytes);
      loader.upload(t.name, t.dtype, t.shape, bytes, name);
    }, name);
  }
}
