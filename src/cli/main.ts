// lora-lab: the engine headless in Node, through Dawn (the `webgpu` package). Subcommands generate, train, eval, score
// and cache, each in its own module, imported only when run (a mistyped option answers before any engine code loads);
// options are parsed strictly (src/cli/args.ts), and every error is printed as one line naming its type, with exit
// status 2 (130/143 after SIGINT/SIGTERM).

import { AbortedError, InvalidArgumentError, LoraLabError } from '../lib/errors.js';

const HELP = `lora-lab — LoRA Lab's WebGPU engine in Node

  lora-lab generate --help     generate text with a model and adapters
  lora-lab train --help        train a LoRA adapter (or, with --reward, a reward model on preference pairs)
  lora-lab eval --help         evaluate a model and adapters (ROUGE-L, loss, perplexity) on a set
  lora-lab score --help        score answers with a reward model (ONNX, or one trained here), rank best-of-n samples
  lora-lab recipe --help       the files to re-run a training on a multi-GPU cluster with TRL or Axolotl
  lora-lab push --help         push an adapter, a merged model, a dataset or results to the Hugging Face Hub
  lora-lab export --help       a model (an adapter merged in) or an adapter as GGUF, for llama.cpp, Ollama, LM Studio
  lora-lab cache --help        models and adapters kept for offline use

  Environment: LORA_LAB_DRIVER=lavapipe|swiftshader picks a software Vulkan driver when there is no GPU;
  HF_TOKEN and HF_ENDPOINT stand in for --hf-token and --hf-endpoint; LORA_LAB_CACHE for --cache-dir;
  LORA_LAB_OFFLINE=1 (or HF_HUB_OFFLINE=1) for --offline.`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (!command || command === '--help' || command === '-h' || command === 'help') {
      console.log(HELP);
      return command ? 0 : 1;
    }
    if (command === 'generate') { await (await import('./generate.js')).generateCommand(rest); return 0; }
    if (command === 'train') return await (await import('./train.js')).trainCommand(rest);
    if (command === 'cache') return await (await import('./cache.js')).cacheCommand(rest);
    if (command === 'eval') return await (await import('./eval.js')).evalCommand(rest);
    if (command === 'score') return await (await import('./score.js')).scoreCommand(rest);
    if (command === 'recipe') return await (await import('./recipe.js')).recipeCommand(rest);
    if (command === 'push') return await (await import('./push.js')).pushCommand(rest);
    if (command === 'export') return await (await import('./export.js')).exportCommand(rest);
    throw new InvalidArgumentError(`Unknown command "${command}": use generate, train, eval, score, recipe, push, export or cache (lora-lab --help).`);
  } catch (e) {
    const err = e as Error;
    process.stderr.write(`\nerror: ${err instanceof LoraLabError ? `${err.name}: ` : ''}${err.message}\n`);
    return err instanceof AbortedError ? 130 : 2;
  }
}
