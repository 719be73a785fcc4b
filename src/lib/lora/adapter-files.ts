// An adapter from files, whatever their format: a PEFT folder (adapter_config.json and adapter_model.safetensors) or
// a GGUF LoRA adapter. Both readers stay in their own modules (peft.ts, gguf-adapter.ts); this one chooses.

import { AdapterError } from '../errors.js';
import { readJson, type ModelFiles } from '../model-files.js';
import type { ModelConfig } from '../model/config.js';
import { loadGgufAdapter } from './gguf-adapter.js';
import { readPeftAdapter, type LoraAdapter } from './peft.js';

/**
 * Reads adapter_config.json and adapter_model.safetensors from any source (folder, repo, URL, dropped files), or a
 * GGUF LoRA adapter (`base`: the loaded model's config, which a GGUF adapter's q/k rows are unpermuted with).
 */
export async function loadPeftAdapter(files: ModelFiles, name = files.label, base?: ModelConfig): Promise<LoraAdapter> {
  if (files.gguf) return loadGgufAdapter(files, files.gguf, name, base);
  const cfg = await readJson(files, 'adapter_config.json', true);
  if (!cfg) throw new AdapterError(`${files.label} has no adapter_config.json: a PEFT adapter folder holds adapter_config.json and adapter_model.safetensors.`);
  const st = await files.bytes('adapter_model.safetensors', true);
  if (!st) {
    const bin = await files.bytes('adapter_model.bin', true);
    if (bin) {
      throw new AdapterError(`${files.label} has adapter_model.bin (a PyTorch pickle), which is not supported: convert it to safetensors, e.g. in Python: model = PeftModel.from_pretrained(base, path); model.save_pretrained(out, safe_serialization=True).`);
    }
    throw new AdapterError(`${files.label} has no adapter_model.safetensors.`);
  }
  return readPeftAdapter(name, cfg, st, undefined, base);
}

