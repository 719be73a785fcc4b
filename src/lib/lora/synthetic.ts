// Seeded random LoRA adapters (B non-zero, unlike a fresh PEFT init, so they change the output): the demo adapters
// shipped with the app and the adapters of the tests.

import type { ModelConfig } from '../model/config.js';
import { Rng } from '../util/rng.js';
import { moduleShape } from './fit.js';
import { LORA_MODULES, moduleKey, moduleScaling, parsePeftConfig, targets, type LoraAdapter, type LoraModule, type LoraTensorPair } from './peft.js';

export interface SyntheticAdapterSpec {
  name: string;
  seed: number;
  /** adapter_config.json keys (r, lora_alpha, target_modules, use_rslora, rank_pattern, ...). */
  config: Record<string, unknown>;
  /** Standard deviation of B's entries (A's are 1/sqrt(in)). */
  bScale?: number;
}

export function syntheticAdapter(base: ModelConfig, spec: SyntheticAdapterSpec, baseName = 'synthetic'): LoraAdapter {
  const config = parsePeftConfig({ peft_type: 'LORA', task_type: 'CAUSAL_LM', base_model_name_or_path: baseName, ...spec.config });
  const rng = new Rng(spec.seed);
  const modules = new Map<string, LoraTensorPair>();
  for (let layer = 0; layer < base.numLayers; layer++) {
    for (const module of LORA_MODULES as readonly LoraModule[]) {
      if (!targets(config, layer, module)) continue;
      const [inF, outF] = moduleShape(base, module);
      const { r, scaling } = moduleScaling(config, layer, module);
      const a = Float32Array.from({ length: r * inF }, () => rng.normal() / Math.sqrt(inF));
      const b = Float32Array.from({ length: outF * r }, () => rng.normal() * (spec.bScale ?? 0.5));
      modules.set(moduleKey(layer, module), { layer, module, rank: r, inFeatures: inF, outFeatures: outF, a, b, scaling });
    }
  }
  return { name: spec.name, config, modules, dtype: 'F32' };
}
