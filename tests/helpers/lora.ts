// Merging an adapter into a copy of a model's tensors on the CPU: W + strength * scaling * B A. The float64 reference
// runs on these merged weights, which is what the GPU's unmerged path must reproduce.

import { fullModuleName, type LoraAdapter } from '../../src/lib/lora/peft.js';
import type { Weights } from '../reference/llama.js';

export function mergeForReference(weights: Weights, adapter: LoraAdapter, strength = 1): Weights {
  const out: Weights = new Map([...weights].map(([n, t]) => [n, { shape: t.shape, data: Float64Array.from(t.data) }]));
  for (const p of adapter.modules.values()) {
    const t = out.get(`${fullModuleName(p.layer, p.module)}.weight`)!;
    const w = t.data as Float64Array;
    for (let o = 0; o < p.outFeatures; o++) {
      for (let i = 0; i < p.inFeatures; i++) {
        let s = 0;
        for (let j = 0; j < p.rank; j++) s += p.b[o * p.rank + j] * p.a[j * p.inFeatures + i];
        w[o * p.inFeatures + i] += strength * p.scaling * s;
      }
    }
  }
  return out;
}
