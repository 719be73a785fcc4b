// lora-lab export: a model (with an adapter merged in, or as it is) as one GGUF file for llama.cpp, Ollama and LM
// Studio, or an adapter as a GGUF LoRA file for llama.cpp's --lora. The file is written crash-safe (writeFileAtomic):
// it is whole or absent.

import { Engine } from '../lib/engine.js';
import { InvalidArgumentError } from '../lib/errors.js';
import { GGUF_EXPORT_TYPES } from '../lib/formats/gguf-export.js';
import { createNodeGpu } from '../lib/gpu/node.js';
import { writeFileAtomic } from '../lib/store/atomic-node.js';
import { parseOptions } from './args.js';
import { checkOutputFile } from './input-files.js';
import { loadAdapterArg, openSource, SOURCE_OPTIONS } from './sources.js';

export const EXPORT_HELP = `lora-lab export — a model or an adapter as GGUF, for llama.cpp, Ollama and LM Studio

  lora-lab export --model <...> [--adapter <...> [--strength S]] --gguf [--type f16|q8_0|q4_k_m] --out FILE.gguf
  lora-lab export --model <...> --adapter <...> --gguf --adapter-only [--type f32|f16] --out FILE.gguf

  --model         the base: builtin, a folder, a Hugging Face repo id or a URL (as lora-lab generate takes it)
  --adapter       a PEFT adapter (folder, repo id, URL or builtin:NAME), merged into the model at --strength (default 1)
  --gguf          write GGUF (the one export format; PEFT folders come from lora-lab train and the app)
  --type          f16, q8_0 (default) or q4_k_m, with llama-quantize's per-tensor choices; with --adapter-only f32
                  (default) or f16
  --adapter-only  the adapter alone, as a GGUF LoRA file (llama-cli -m base.gguf --lora FILE.gguf)
  --out           the file to write; its folder must exist. The tokenizer and chat template are inside the file.`;

export async function exportCommand(argv: string[]): Promise<number> {
  const args = parseOptions('export', argv, {
    ...SOURCE_OPTIONS, model: { type: 'string' }, adapter: { type: 'string' }, strength: { type: 'string' }, gguf: { type: 'boolean' },
    type: { type: 'string' }, 'adapter-only': { type: 'boolean' }, out: { type: 'string' },
  });
  if (args.flag('help')) { console.log(EXPORT_HELP); return 0; }
  if (!args.flag('gguf')) throw new InvalidArgumentError('Give --gguf: lora-lab export writes GGUF files (lora-lab export --help).');
  const modelText = args.string('model');
  if (!modelText) throw new InvalidArgumentError('Give --model: the base model to export (builtin, a folder, a repo id or a URL).');
  const out = args.string('out');
  if (!out) throw new InvalidArgumentError('Give --out FILE.gguf: where the file goes.');
  checkOutputFile('--out', out);
  const adapterText = args.string('adapter');
  const adapterOnly = args.flag('adapter-only');
  if (adapterOnly && !adapterText) throw new InvalidArgumentError('--adapter-only exports an adapter: give --adapter too.');
  const type = adapterOnly ? args.choice('type', ['f32', 'f16'] as const, 'f32') : args.choice('type', GGUF_EXPORT_TYPES, 'q8_0');
  const strength = args.number('strength', 1, { min: 0, max: 2 });
  if (args.has('strength') && (!adapterText || adapterOnly)) throw new InvalidArgumentError('--strength applies to an adapter merged into the model: give --adapter (without --adapter-only).');
  const json = args.flag('json');

  // The weights are read back from the GPU as loaded: f32 storage keeps them as the files give them.
  const engine = new Engine(await createNodeGpu({ forceF32: true }), { contextLength: 64, slots: 1 });
  try {
    await engine.load(await openSource(modelText, args, 'model', json), undefined, undefined, { precision: 'f32' });
    const adapter = adapterText ? (await loadAdapterArg(engine, adapterText, args, json)).name : null;
    const chunks = adapterOnly ? engine.exportAdapterGguf(adapter!, type as 'f32' | 'f16') : await engine.exportGguf(adapter, type as (typeof GGUF_EXPORT_TYPES)[number], strength);
    writeFileAtomic(out, chunks);
    const bytes = chunks.reduce((t, c) => t + c.byteLength, 0);
    const what = adapterOnly ? `adapter ${adapter} (GGUF LoRA, ${type})` : `${engine.info!.label}${adapter ? ` + ${adapter}${strength !== 1 ? ` ×${strength}` : ''}` : ''} (${type})`;
    process.stdout.write(json ? JSON.stringify({ out, bytes, type, adapterOnly, adapter }) + '\n' : `wrote ${what} to ${out} (${(bytes / 2 ** 20).toFixed(1)} MiB)\n`);
    return 0;
  } finally {
    engine.unload();
  }
}
