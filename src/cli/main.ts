// lora-lab: the engine headless in Node, through Dawn (the `webgpu` package).
//   lora-lab generate --model <folder|hf-repo-id|url> [--prompt TEXT | --prompt-ids 1,2,3] [--max-new-tokens N]
//                     [--temperature T] [--top-k K] [--top-p P] [--repetition-penalty R] [--seed S]
//                     [--format chat|alpaca|raw] [--stop STR]... [--context N] [--f32] [--hf-endpoint URL] [--json]

import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Engine } from '../lib/engine.js';
import { InvalidArgumentError, LoraLabError } from '../lib/errors.js';
import { createNodeGpu } from '../lib/gpu/node.js';
import { NodeDirFiles } from '../lib/hub/node-files.js';
import { parseSourceText, resolveSource } from '../lib/hub/source.js';
import type { PromptFormat } from '../lib/tokenizer/tokenizer.js';
import { num, one, parseArgs } from './args.js';

const HELP = `lora-lab — LoRA Lab's WebGPU engine in Node

Usage:
  lora-lab generate --model <folder|hf-repo-id[@revision]|url|builtin> [--prompt TEXT | --prompt-ids 1,2,3]
                    [--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P] [--repetition-penalty R]
                    [--seed S] [--format chat|alpaca|raw] [--stop STRING]... [--context N] [--f32]
                    [--hf-endpoint URL] [--hf-token TOKEN] [--json]

  --prompt-ids feeds token ids as given (no template, no extra BOS); --temperature 0 is greedy.
  --json prints one JSON object on the last line of stdout.
  Environment: LORA_LAB_DRIVER=lavapipe|swiftshader picks a software Vulkan driver when there is no GPU.`;

const builtinDir = fileURLToPath(new URL('../../public/models/demo/', import.meta.url));

async function generateCommand(argv: string[]): Promise<void> {
  const args = parseArgs(argv, ['json', 'f32', 'help']);
  const json = args.flags.has('json');
  const modelText = one(args, 'model');
  if (!modelText) throw new InvalidArgumentError('Give --model: a folder, a Hugging Face repo id (owner/name), a URL, or "builtin".');
  const prompt = one(args, 'prompt');
  const idsText = one(args, 'prompt-ids');
  if ((prompt === undefined) === (idsText === undefined)) throw new InvalidArgumentError('Give exactly one of --prompt TEXT or --prompt-ids 1,2,3.');
  const promptIds = idsText?.split(',').map((s) => {
    const n = Number(s.trim());
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`--prompt-ids: "${s}" is not a token id.`);
    return n;
  });
  const format = (one(args, 'format') ?? 'chat') as PromptFormat;
  if (!['chat', 'alpaca', 'raw'].includes(format)) throw new InvalidArgumentError(`--format ${format}: use chat, alpaca or raw.`);

  const source = existsSync(modelText) ? { kind: 'dir' as const, path: modelText } : parseSourceText(modelText);
  const token = one(args, 'hf-token') ?? process.env.HF_TOKEN;
  if (source.kind === 'hf' && token) source.token = token;
  const files = resolveSource(source, {
    builtin: () => new NodeDirFiles('built-in demo model', builtinDir),
    dir: (p) => new NodeDirFiles(p),
    hfEndpoint: one(args, 'hf-endpoint') ?? process.env.HF_ENDPOINT,
  });

  const gpu = await createNodeGpu({ forceF32: args.flags.has('f32') });
  const engine = new Engine(gpu, { contextLength: num(args, 'context', 2048, true) });
  const info = await engine.load(files, (p) => {
    if (!json) process.stderr.write(`\rloading ${p.file}: ${(p.allLoaded / 1e6).toFixed(1)} / ${(p.allTotal / 1e6).toFixed(1)} MB`);
  });
  if (!json) process.stderr.write(`\nloaded ${info.label} (${info.architecture}, ${info.layers} layers) on ${info.adapter}, weights ${info.weightsF16 ? 'f16' : 'f32'}\n`);
  const result = await engine.generate({
    prompt, promptIds, format,
    maxNewTokens: num(args, 'max-new-tokens', 64, true),
    stopStrings: args.values.get('stop') ?? [],
    sampling: {
      temperature: num(args, 'temperature', 0.7),
      topK: num(args, 'top-k', 40, true),
      topP: num(args, 'top-p', 0.9),
      repetitionPenalty: num(args, 'repetition-penalty', 1),
      seed: num(args, 'seed', 0, true),
    },
  }, (text) => { if (!json) process.stdout.write(text); });
  const stats = engine.runner.stats;
  const summary = {
    model: info.label,
    tokens: result.tokens,
    text: result.text,
    promptTokens: result.promptIds.length,
    prefillMs: round(result.prefillMs),
    timeToFirstTokenMs: round(result.timeToFirstTokenMs),
    decodeTokensPerSecond: round(result.decodeTokensPerSecond),
    stopReason: result.stopReason,
    dispatchesPerToken: engine.runner.dispatchesPerForward,
    readbackBytesPerToken: stats.readbackBytes / stats.forwards,
    adapter: info.adapter,
    weightsF16: info.weightsF16,
  };
  if (json) process.stdout.write(JSON.stringify(summary) + '\n');
  else process.stderr.write(`\n\n${result.tokens.length} tokens, prefill ${summary.prefillMs} ms, first token ${summary.timeToFirstTokenMs} ms, ${summary.decodeTokensPerSecond} tokens/s (${result.stopReason})\n`);
}

const round = (x: number) => Math.round(x * 100) / 100;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (!command || command === '--help' || command === 'help' || rest.includes('--help')) {
      console.log(HELP);
      return command ? 0 : 1;
    }
    if (command === 'generate') await generateCommand(rest);
    else throw new InvalidArgumentError(`Unknown command "${command}". Run lora-lab --help.`);
    return 0;
  } catch (e) {
    const err = e as Error;
    process.stderr.write(`\nerror: ${err instanceof LoraLabError ? `${err.name}: ` : ''}${err.message}\n`);
    return 2;
  }
}
