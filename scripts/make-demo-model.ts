// Writes the built-in demo model to public/models/demo/: a tiny LLaMA-architecture model with seeded random weights
// (it produces gibberish, and the UI says so) and SmolLM2's real tokenizer and chat template, so every part of the
// product (tokenizer, template, streaming, sampling) runs on it. Run: npx tsx scripts/make-demo-model.ts

import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { syntheticModel } from '../src/lib/model/synthetic.js';
import { normalizeConfig } from '../src/lib/model/config.js';
import { syntheticAdapter } from '../src/lib/lora/synthetic.js';
import { writePeftAdapter } from '../src/lib/lora/peft.js';

const out = new URL('../public/models/demo/', import.meta.url);
const fixtures = new URL('../tests/fixtures/SmolLM2-135M-Instruct/', import.meta.url);
mkdirSync(out, { recursive: true });

const m = syntheticModel({
  hiddenSize: 32, intermediateSize: 96, numLayers: 2, numHeads: 2, numKvHeads: 1, headDim: 16,
  vocabSize: 49152, tied: false, ropeTheta: 100000, maxPositionEmbeddings: 2048, dtype: 'F16', seed: 20261125,
  bosTokenId: 1, eosTokenId: 2,
});
const config = {
  ...m.config,
  lora_lab_note: 'Built-in demo model: LLaMA architecture with random weights (seed 20261125) and SmolLM2\'s tokenizer. It loads instantly and writes gibberish; load a real model (e.g. HuggingFaceTB/SmolLM2-135M-Instruct) for real answers.',
};
writeFileSync(new URL('config.json', out), JSON.stringify(config, null, 2) + '\n');
writeFileSync(new URL('generation_config.json', out), JSON.stringify({ bos_token_id: 1, eos_token_id: 2 }, null, 2) + '\n');
writeFileSync(new URL('model.safetensors', out), m.safetensors);
copyFileSync(new URL('tokenizer.json', fixtures), new URL('tokenizer.json', out));
copyFileSync(new URL('tokenizer_config.json', fixtures), new URL('tokenizer_config.json', out));
console.log(`demo model written to ${out.pathname} (${(m.safetensors.byteLength / 1e6).toFixed(1)} MB of weights)`);

// Two demo adapters for the demo model (random too): they make the comparison view show diverging columns.
const demoAdapters = [
  { name: 'demo-qv-r8', seed: 101, config: { r: 8, lora_alpha: 16, lora_dropout: 0.05, target_modules: ['q_proj', 'v_proj'] } },
  { name: 'demo-all-r4', seed: 102, config: { r: 4, lora_alpha: 8, lora_dropout: 0.05, target_modules: 'all-linear', use_rslora: true } },
];
for (const spec of demoAdapters) {
  const dir = new URL(`../public/adapters/${spec.name}/`, import.meta.url);
  mkdirSync(dir, { recursive: true });
  const adapter = syntheticAdapter(normalizeConfig(config), { ...spec, bScale: 1.5 }, 'lora-lab/built-in-demo');
  const files = writePeftAdapter(adapter);
  writeFileSync(new URL('adapter_config.json', dir), files.config);
  writeFileSync(new URL('adapter_model.safetensors', dir), files.safetensors);
  console.log(`demo adapter written to ${dir.pathname}`);
}
