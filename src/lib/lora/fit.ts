// Checks that an adapter fits a base model: every module's layer exists and its A/B shapes match the base's
// in/out features. The error names the tensor and both shapes.

import { AdapterError } from '../errors.js';
import type { ModelConfig } from '../model/config.js';
import { fullModuleName, LORA_MODULES, moduleKey, targets, type LoraAdapter, type LoraModule } from './peft.js';

/** (in_features, out_features) of a projection in the base model. */
export function moduleShape(c: ModelConfig, module: LoraModule): [number, number] {
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  switch (module) {
    case 'q_proj': return [c.hiddenSize, q];
    case 'k_proj': case 'v_proj': return [c.hiddenSize, kv];
    case 'o_proj': return [q, c.hiddenSize];
    case 'gate_proj': case 'up_proj': return [c.hiddenSize, c.intermediateSize];
    case 'down_proj': return [c.intermediateSize, c.hiddenSize];
  }
}

export function checkAdapterFits(a: LoraAdapter, c: ModelConfig, baseLabel = 'the loaded model'): void {
  const outside = a.config.layersToTransform?.find((l) => l >= c.numLayers);
  if (outside !== undefined) {
    throw new AdapterError(`Adapter "${a.name}" does not fit ${baseLabel}: its layers_to_transform names layer ${outside}, but the base has ${c.numLayers} layers. Load the base model the adapter was trained on${a.config.baseModelNameOrPath ? ` (${a.config.baseModelNameOrPath})` : ''}.`, { layer: outside, layers: c.numLayers });
  }
  // What the config targets must be in the file: PEFT would otherwise leave a module at its untrained init.
  for (let layer = 0; layer < c.numLayers; layer++) {
    for (const m of LORA_MODULES) {
      if (targets(a.config, layer, m) && !a.modules.has(moduleKey(layer, m))) {
        throw new AdapterError(`Adapter "${a.name}": adapter_config.json targets ${fullModuleName(layer, m)} of ${baseLabel}, but adapter_model.safetensors has no lora_A/lora_B for it. The config and weights do not belong together, or the adapter was made for another base.`, { module: moduleKey(layer, m) });
      }
    }
  }
  for (const p of a.modules.values()) {
    const name = `base_model.model.${fullModuleName(p.layer, p.module)}`;
    if (p.layer >= c.numLayers) {
      throw new AdapterError(
        `Adapter "${a.name}" does not fit ${baseLabel}: ${name}.lora_A.weight is for layer ${p.layer}, but the base has ${c.numLayers} layers. Load the base model the adapter was trained on${a.config.baseModelNameOrPath ? ` (${a.config.baseModelNameOrPath})` : ''}.`,
        { tensor: `${name}.lora_A.weight`, layer: p.layer, layers: c.numLayers },
      );
    }
    const [inF, outF] = moduleShape(c, p.module);
    if (p.inFeatures !== inF) {
      throw new AdapterError(
        `Adapter "${a.name}" does not fit ${baseLabel}: ${name}.lora_A.weight is [${p.rank}, ${p.inFeatures}] but the base's ${p.module} takes ${inF} inputs, so it must be [${p.rank}, ${inF}]. Load the base model the adapter was trained on${a.config.baseModelNameOrPath ? ` (${a.config.baseModelNameOrPath})` : ''}.`,
        { tensor: `${name}.lora_A.weight`, actual: [p.rank, p.inFeatures], expected: [p.rank, inF] },
      );
    }
    if (p.outFeatures !== outF) {
      throw new AdapterError(
        `Adapter "${a.name}" does not fit ${baseLabel}: ${name}.lora_B.weight is [${p.outFeatures}, ${p.rank}] but the base's ${p.module} has ${outF} outputs, so it must be [${outF}, ${p.rank}]. Load the base model the adapter was trained on${a.config.baseModelNameOrPath ? ` (${a.config.baseModelNameOrPath})` : ''}.`,
        { tensor: `${name}.lora_B.weight`, actual: [p.outFeatures, p.rank], expected: [outF, p.rank] },
      );
    }
  }
}
