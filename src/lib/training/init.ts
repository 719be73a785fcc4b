// A fresh adapter as PEFT initializes one: A ~ kaiming_uniform(a = sqrt(5)) = U(-1/sqrt(in), 1/sqrt(in)), B = 0,
// drawn from a seeded RNG so the same seed gives the same adapter.

import { moduleShape } from '../lora/fit.js';
import { LORA_MODULES, moduleKey, parsePeftConfig, type LoraAdapter, type LoraTensorPair } from '../lora/peft.js';
import type { ModelConfig } from '../model/config.js';
import { Rng } from '../util/rng.js';
import type { TrainConfig } from './train-config.js';

export function initAdapter(name: string, base: ModelConfig, c: TrainConfig, baseName: string | null): LoraAdapter {
  const config = parsePeftConfig({
    peft_type: 'LORA', task_type: 'CAUSAL_LM', base_model_name_or_path: baseName, r: c.rank, lora_alpha: c.alpha,
    lora_dropout: c.dropout, use_rslora: c.useRslora, target_modules: [...c.targetModules],
  });
  const scaling = c.useRslora ? c.alpha / Math.sqrt(c.rank) : c.alpha / c.rank;
  const rng = new Rng(c.seed);
  const modules = new Map<string, LoraTensorPair>();
  for (let layer = 0; layer < base.numLayers; layer++) {
    for (const module of LORA_MODULES) {
      if (!c.targetModules.includes(module)) continue;
      const [inF, outF] = moduleShape(base, module);
      const bound = 1 / Math.sqrt(inF);
      const a = Float32Array.from({ length: c.rank * inF }, () => (2 * rng.next() - 1) * bound);
      modules.set(moduleKey(layer, module), { layer, module, rank: c.rank, inFeatures: inF, outFeatures: outF, a, b: new Float32Array(outF * c.rank), scaling });
    }
  }
  return { name, config, modules, dtype: 'F32' };
}
