// Writes the built-in demo model to public/models/demo/: a tiny LLaMA-architecture model with seeded random weights
// (it produces gibberish, and the UI says so) and SmolLM2's real tokenizer and chat template, so every part of the
// product (tokenizer, template, streaming, sampling) runs on it. Run: npx tsx scripts/make-demo-model.ts

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { syntheticModel } from '../src/lib/model/synthetic.js';
import { normalizeConfig } from '../src/lib/model/config.js';
import { syntheticAdapter } from '../src/lib/lora/synthetic.js';
import { writePeftAdapter } from '../src/lib/lora/peft.js';
import { BUILTIN_MODEL_ID } from '../src/lib/hub/source.js';
import { replaceFolder } from '../src/lib/storage/atomic-node.js';

const out = new URL('../public/models/demo/', import.meta.url);
const fixtures = new URL('../tests/fixtures/SmolLM2-135M-Instruct/', import.meta.url);

const m = syntheticModel({
  hiddenSize: 32, intermediateSize: 96, numLayers: 2, numHeads: 2, numKvHeads: 1, headDim: 16,
  vocabSize: 49152, tied: false, ropeTheta: 100000, maxPositionEmbeddings: 2048, dtype: 'F16', seed: 20261125,
  bosTokenId: 1, eosTokenId: 2,
});
const config = {
  ...m.config,
  lora_lab_note: 'Built-in demo model: LLaMA architecture with random weights (seed 20261125) and SmolLM2\'s tokenizer. It loads instantly and writes gibberish; load a real model (e.g. HuggingFaceTB/SmolLM2-135M-Instruct) for real answers.',
};
const enc = new TextEncoder();
// Each folder is replaced as a whole (crash-safe), never left half-written.
replaceFolder(fileURLToPath(out), new Map([
  ['config.json', enc.encode(JSON.stringify(config, null, 2) + '\n')],
  ['generation_config.json', enc.encode(JSON.stringify({ bos_token_id: 1, eos_token_id: 2 }, null, 2) + '\n')],
  ['model.safetensors', m.safetensors],
  ['tokenizer.json', new Uint8Array(readFileSync(new URL('tokenizer.json', fixtures)))],
  ['tokenizer_config.json', new Uint8Array(readFileSync(new URL('tokenizer_config.json', fixtures)))],
  ['PROVENANCE.md', new Uint8Array(readFileSync(new URL('PROVENANCE.md', out)))], // hand-written; kept as it is
]));
console.log(`demo model written to ${out.pathname} (${(m.safetensors.byteLength / 1e6).toFixed(1)} MB of weights)`);

// Two demo adapters for the demo model (random too): they make the comparison view show diverging columns.
const demoAdapters = [
  { name: 'demo-qv-r8', seed: 101, config: { r: 8, lora_alpha: 16, lora_dropout: 0.05, target_modules: ['q_proj', 'v_proj'] } },
  { name: 'demo-all-r4', seed: 102, config: { r: 4, lora_alpha: 8, lora_dropout: 0.05, target_modules: 'all-linear', use_rslora: true } },
];
for (const spec of demoAdapters) {
  const dir = new URL(`../public/adapters/${spec.name}/`, import.meta.url);
  const adapter = syntheticAdapter(normalizeConfig(config), { ...spec, bScale: 1.5 }, BUILTIN_MODEL_ID);
  const files = writePeftAdapter(adapter);
  replaceFolder(fileURLToPath(dir), new Map([['adapter_config.json', enc.encode(files.config)], ['adapter_model.safetensors', files.safetensors]]));
  console.log(`demo adapter written to ${dir.pathname}`);
}
