// lora-lab: the engine headless in Node, through Dawn (the `webgpu` package).
//   lora-lab generate --model <folder|hf-repo-id|url> [--prompt TEXT | --prompt-ids 1,2,3] [--max-new-tokens N]
//                     [--temperature T] [--top-k K] [--top-p P] [--repetition-penalty R] [--seed S]
//                     [--format chat|alpaca|raw] [--stop STR]... [--context N] [--f32] [--hf-endpoint URL] [--json]
//                     [--adapter <folder|hf-repo-id|url>]... [--adapter-scale S]... [--compare]

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseDataset } from '../lib/data/records.js';
import { LORA_MODULES, type LoraModule } from '../lib/lora/peft.js';
import { DEFAULT_TRAIN_CONFIG, type TrainConfig } from '../lib/training/config.js';
import { fileURLToPath } from 'node:url';
import { Engine } from '../lib/engine.js';
import { InvalidArgumentError, LoraLabError } from '../lib/errors.js';
import { createNodeGpu } from '../lib/gpu/node.js';
import { NodeDirFiles } from '../lib/hub/node-files.js';
import { parseSourceText, resolveSource } from '../lib/hub/source.js';
import type { PromptFormat } from '../lib/tokenizer/tokenizer.js';
import { num, one, parseArgs, type ParsedArgs } from './args.js';

const TRAIN_HELP = `
  lora-lab train --model <...> --data <file.json|file.jsonl|file.parquet|builtin> --out <folder>
                 [--steps N | --epochs E] [--lr LR] [--rank R] [--alpha A] [--dropout P] [--targets q_proj,v_proj]
                 [--cutoff N] [--batch B] [--grad-accum G] [--warmup N] [--schedule cosine|linear|constant]
                 [--seed S] [--format alpaca|chat] [--max-records N] [--train-on-inputs] [--val-fraction F]
                 [--eval-every N] [--json]
  Writes a PEFT adapter folder (adapter_config.json + adapter_model.safetensors) and prints the loss per step
  (--json: one JSON object per line: steps, evaluations, and a final summary).`;

const HELP = `lora-lab — LoRA Lab's WebGPU engine in Node

Usage:
  lora-lab generate --model <folder|hf-repo-id[@revision]|url|builtin> [--prompt TEXT | --prompt-ids 1,2,3]
                    [--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P] [--repetition-penalty R]
                    [--seed S] [--format chat|alpaca|raw] [--stop STRING]... [--context N] [--f32]
                    [--hf-endpoint URL] [--hf-token TOKEN] [--json]
                    [--adapter <folder|hf-repo-id|url|builtin:NAME>]... [--adapter-scale S]... [--compare]

  --prompt-ids feeds token ids as given (no template, no extra BOS); --temperature 0 is greedy.
  --json prints one JSON object on the last line of stdout.
  --adapter applies a PEFT LoRA adapter (unmerged, at strength --adapter-scale, default 1). With --compare, the base
  model and every --adapter are decoded as one batch; --json then prints one object per column, base first.
${TRAIN_HELP}

  Environment: LORA_LAB_DRIVER=lavapipe|swiftshader picks a software Vulkan driver when there is no GPU.`;



const builtinDir = fileURLToPath(new URL('../../public/models/demo/', import.meta.url));

/** A model or adapter named on the command line: an existing path, 'builtin', a Hugging Face repo id or a URL. */
function openSource(text: string, args: ParsedArgs) {
  const source = existsSync(text) ? { kind: 'dir' as const, path: text } : parseSourceText(text);
  const token = one(args, 'hf-token') ?? process.env.HF_TOKEN;
  if (source.kind === 'hf' && token) source.token = token;
  return resolveSource(source, {
    builtin: () => new NodeDirFiles('built-in demo model', builtinDir),
    dir: (p: string) => new NodeDirFiles(p),
    hfEndpoint: one(args, 'hf-endpoint') ?? process.env.HF_ENDPOINT,
  });
}

async function generateCommand(argv: string[]): Promise<void> {
  const args = parseArgs(argv, ['json', 'f32', 'help', 'compare']);
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

  const open = (text: string) => openSource(text, args);
  const files = open(modelText);
  const adapterTexts = args.values.get('adapter') ?? [];
  const scales = (args.values.get('adapter-scale') ?? []).map(Number);
  if (scales.some((x) => !(x >= 0 && x <= 2))) throw new InvalidArgumentError('--adapter-scale must be a number in 0..2.');
  const compare = args.flags.has('compare');
  if (compare && adapterTexts.length === 0) throw new InvalidArgumentError('--compare needs at least one --adapter.');
  if (!compare && adapterTexts.length > 1) throw new InvalidArgumentError('Several --adapter flags need --compare (one column each).');
  if (compare && adapterTexts.length > 3) throw new InvalidArgumentError('--compare takes at most 3 adapters (4 columns with the base).');

  const gpu = await createNodeGpu({ forceF32: args.flags.has('f32') });
  const engine = new Engine(gpu, { contextLength: num(args, 'context', 2048, true) });
  const info = await engine.load(files, (p) => {
    if (!json) process.stderr.write(`\rloading ${p.file}: ${(p.allLoaded / 1e6).toFixed(1)} / ${(p.allTotal / 1e6).toFixed(1)} MB`);
  });
  if (!json) process.stderr.write(`\nloaded ${info.label} (${info.architecture}, ${info.layers} layers) on ${info.adapter}, weights ${info.weightsF16 ? 'f16' : 'f32'}\n`);
  const adapters = [];
  for (const text of adapterTexts) {
    const builtin = /^builtin:(.+)$/.exec(text);
    const a = builtin
      ? await engine.loadAdapter(new NodeDirFiles(builtin[1], fileURLToPath(new URL(`../../public/adapters/${builtin[1]}/`, import.meta.url))))
      : await engine.loadAdapter(open(text), text);
    adapters.push(a);
    if (!json) process.stderr.write(`adapter ${a.name}: rank ${a.rank}, ${a.modules} modules\n`);
  }
  const request = {
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
  };
  if (compare) {
    const columns = [{ adapter: null, strength: 1 }, ...adapters.map((a, i) => ({ adapter: a.name, strength: scales[i] ?? 1 }))];
    const results = await engine.compare(request, columns);
    results.forEach((r, i) => {
      const column = { column: i, adapter: columns[i].adapter, strength: columns[i].strength, tokens: r.tokens, text: r.text, prefillMs: round(r.prefillMs), decodeTokensPerSecond: round(r.decodeTokensPerSecond), stopReason: r.stopReason };
      if (json) process.stdout.write(JSON.stringify(column) + '\n');
      else process.stdout.write(`\n=== ${columns[i].adapter ?? 'base'}${columns[i].adapter ? ` x${columns[i].strength}` : ''} (${r.tokens.length} tokens, ${column.decodeTokensPerSecond} tokens/s)\n${r.text}\n`);
    });
    return;
  }
  const result = await engine.generate({ ...request, adapter: adapters[0]?.name ?? null, adapterScale: scales[0] ?? 1 }, (text) => { if (!json) process.stdout.write(text); });
  const stats = engine.runner.stats;
  const summary = {
    model: info.label,
    adapter: adapters[0]?.name ?? null,
    tokens: result.tokens,
    text: result.text,
    promptTokens: result.promptIds.length,
    prefillMs: round(result.prefillMs),
    timeToFirstTokenMs: round(result.timeToFirstTokenMs),
    decodeTokensPerSecond: round(result.decodeTokensPerSecond),
    stopReason: result.stopReason,
    dispatchesPerToken: engine.runner.dispatchesPerForward,
    readbackBytesPerToken: stats.readbackBytes / stats.forwards,
    gpu: info.adapter,
    weightsF16: info.weightsF16,
  };
  if (json) process.stdout.write(JSON.stringify(summary) + '\n');
  else process.stderr.write(`\n\n${result.tokens.length} tokens, prefill ${summary.prefillMs} ms, first token ${summary.timeToFirstTokenMs} ms, ${summary.decodeTokensPerSecond} tokens/s (${result.stopReason})\n`);
}

async function trainCommand(argv: string[]): Promise<void> {
  const args = parseArgs(argv, ['json', 'f32', 'train-on-inputs']);
  const json = args.flags.has('json');
  const modelText = one(args, 'model');
  const dataText = one(args, 'data');
  const out = one(args, 'out');
  if (!modelText || !dataText || !out) throw new InvalidArgumentError('lora-lab train needs --model, --data and --out (see lora-lab --help).');
  const format = (one(args, 'format') ?? 'alpaca') as 'alpaca' | 'chat';
  if (format !== 'alpaca' && format !== 'chat') throw new InvalidArgumentError(`--format ${format}: use alpaca or chat.`);
  const dataPath = dataText === 'builtin' ? fileURLToPath(new URL('../../public/data/alpaca-gpt4-sample-en.json', import.meta.url)) : dataText;
  if (!existsSync(dataPath)) throw new InvalidArgumentError(`--data ${dataText}: no such file.`);
  const records = await parseDataset(new Uint8Array(readFileSync(dataPath)), basename(dataPath));

  const files = openSource(modelText, args);
  const targets = (one(args, 'targets') ?? 'q_proj,v_proj').split(',').map((t) => t.trim()) as LoraModule[];
  const bad = targets.find((t) => !LORA_MODULES.includes(t));
  if (bad) throw new InvalidArgumentError(`--targets: "${bad}" is not one of ${LORA_MODULES.join(', ')}.`);
  const stepsGiven = one(args, 'steps') !== undefined;
  const config: Partial<TrainConfig> = {
    steps: num(args, 'steps', 0, true),
    epochs: stepsGiven ? 0 : num(args, 'epochs', DEFAULT_TRAIN_CONFIG.epochs),
    learningRate: num(args, 'lr', DEFAULT_TRAIN_CONFIG.learningRate),
    rank: num(args, 'rank', DEFAULT_TRAIN_CONFIG.rank, true),
    alpha: num(args, 'alpha', DEFAULT_TRAIN_CONFIG.alpha),
    dropout: num(args, 'dropout', DEFAULT_TRAIN_CONFIG.dropout),
    targetModules: targets,
    cutoff: num(args, 'cutoff', DEFAULT_TRAIN_CONFIG.cutoff, true),
    microBatch: num(args, 'batch', DEFAULT_TRAIN_CONFIG.microBatch, true),
    gradAccumulation: num(args, 'grad-accum', 1, true),
    warmupSteps: num(args, 'warmup', stepsGiven ? Math.min(DEFAULT_TRAIN_CONFIG.warmupSteps, Math.floor(num(args, 'steps', 0, true) / 10)) : DEFAULT_TRAIN_CONFIG.warmupSteps, true),
    schedule: (one(args, 'schedule') ?? 'cosine') as TrainConfig['schedule'],
    seed: num(args, 'seed', DEFAULT_TRAIN_CONFIG.seed, true),
    trainOnInputs: args.flags.has('train-on-inputs'),
    validationFraction: num(args, 'val-fraction', DEFAULT_TRAIN_CONFIG.validationFraction),
    evalEvery: num(args, 'eval-every', DEFAULT_TRAIN_CONFIG.evalEvery, true),
    checkpointEvery: 0,
  };
  const gpu = await createNodeGpu({ forceF32: args.flags.has('f32') });
  const engine = new Engine(gpu, { contextLength: 256, slots: 1 });
  const info = await engine.load(files);
  if (!json) process.stderr.write(`loaded ${info.label} on ${info.adapter}; ${records.length} records from ${dataPath}\n`);
  const name = basename(out.replace(/\/+$/, ''));
  const t0 = performance.now();
  let last: number | null = null;
  const adapter = await engine.train({ name, records, format, config, maxRecords: one(args, 'max-records') ? num(args, 'max-records', 0, true) : undefined }, {
    onStep: (m) => {
      last = m.trainLoss;
      if (json) process.stdout.write(JSON.stringify({ type: 'step', step: m.step, totalSteps: m.totalSteps, epoch: m.epoch, loss: round(m.trainLoss, 6), learningRate: m.learningRate, gradNorm: round(m.gradNorm, 6), tokensPerSecond: round(m.tokensPerSecond) }) + '\n');
      else process.stdout.write(`step ${m.step}/${m.totalSteps}  loss ${m.trainLoss.toFixed(4)}  lr ${m.learningRate.toExponential(2)}  grad-norm ${m.gradNorm.toFixed(3)}  ${m.tokensPerSecond.toFixed(0)} tokens/s\n`);
    },
    onEval: (step, v) => {
      if (json) process.stdout.write(JSON.stringify({ type: 'eval', step, validationLoss: round(v, 6) }) + '\n');
      else process.stdout.write(`step ${step}  validation loss ${v.toFixed(4)}\n`);
    },
  });
  const peft = engine.exportAdapter(adapter.name);
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'adapter_config.json'), peft.config);
  writeFileSync(join(out, 'adapter_model.safetensors'), peft.safetensors);
  const summary = { type: 'done', out, adapter: adapter.name, finalLoss: last, seconds: round((performance.now() - t0) / 1000) };
  if (json) process.stdout.write(JSON.stringify(summary) + '\n');
  else process.stderr.write(`wrote ${out} (rank ${adapter.rank}, ${adapter.modules} modules) in ${summary.seconds} s\n`);
}

const round = (x: number, k = 2) => Math.round(x * 10 ** k) / 10 ** k;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (!command || command === '--help' || command === 'help' || rest.includes('--help')) {
      console.log(HELP);
      return command ? 0 : 1;
    }
    if (command === 'generate') await generateCommand(rest);
    else if (command === 'train') await trainCommand(rest);
    else throw new InvalidArgumentError(`Unknown command "${command}". Run lora-lab --help.`);
    return 0;
  } catch (e) {
    const err = e as Error;
    process.stderr.write(`\nerror: ${err instanceof LoraLabError ? `${err.name}: ` : ''}${err.message}\n`);
    return 2;
  }
}
