// lora-lab generate: text from a model (and adapters, or several side by side with --compare) on WebGPU.

import { Engine } from '../lib/engine.js';
import { InvalidArgumentError } from '../lib/errors.js';
import { createNodeGpu } from '../lib/gpu/node.js';
import { SAMPLING_LIMITS as L } from '../lib/model/sampling.js';
import { PRECISIONS } from '../lib/quant/precision.js';
import { parseNumber, parseOptions, precisionOf, type OptionSpec } from './args.js';
import { loadAdapterArg, openSource, SOURCE_OPTIONS } from './sources.js';

const GENERATE_OPTIONS: OptionSpec = {
  ...SOURCE_OPTIONS,
  model: { type: 'string' },
  prompt: { type: 'string' },
  'prompt-ids': { type: 'string' },
  'max-new-tokens': { type: 'string' },
  temperature: { type: 'string' },
  'top-k': { type: 'string' },
  'top-p': { type: 'string' },
  'repetition-penalty': { type: 'string' },
  seed: { type: 'string' },
  format: { type: 'string' },
  stop: { type: 'string', multiple: true },
  context: { type: 'string' },
  adapter: { type: 'string', multiple: true },
  'adapter-scale': { type: 'string', multiple: true },
  compare: { type: 'boolean' },
};

const GENERATE_HELP = `lora-lab generate — generate text with a model (and adapters) on WebGPU

  lora-lab generate --model <folder|hf-repo-id[@revision]|url|builtin> (--prompt TEXT | --prompt-ids 1,2,3)
                    [--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P] [--repetition-penalty R]
                    [--seed S] [--format chat|alpaca|raw] [--stop STRING]... [--context N] [--f32] [--precision P]
                    [--hf-endpoint URL] [--hf-token TOKEN] [--cache-dir DIR] [--offline] [--json]
                    [--adapter <folder|hf-repo-id|url|builtin:NAME>]... [--adapter-scale S]... [--compare]

  --prompt-ids         token ids fed as given (no template, no extra BOS)
  --max-new-tokens     1..1000000 (default 64); prompt + new tokens must fit the context
  --temperature        ${L.temperature.min}..${L.temperature.max} (default 0.7; 0 is greedy)
  --top-k              ${L.topK.min}..${L.topK.max} (default 40; 0 turns it off)       --top-p   ${L.topP.min}..${L.topP.max} (default 0.9)
  --repetition-penalty ${L.repetitionPenalty.min}..${L.repetitionPenalty.max} (default 1)                      --seed    0..4294967295 (default 0)
  --context            16..1048576 tokens of KV cache (default 2048, at most the model's)
  --precision          how weights are kept: ${PRECISIONS.join(', ')} (default auto: f16 or f32 up to 1 GiB, else q8, else q4)
  --f32                keep float weights f32 (exact, twice f16's memory); q8/q4 still quantize
  --adapter            a PEFT LoRA adapter, applied unmerged at strength --adapter-scale (0..2, default 1)
  --compare            decode the base model and every --adapter (at most 3) as one batch
  --cache-dir          where Hugging Face repos and URLs are kept after their first download (lora-lab cache --help)
  --offline            never use the network: load only what is kept
  --json               one JSON object on the last line of stdout (with --compare: one per column, base first)`;

export async function generateCommand(argv: string[]): Promise<void> {
  const args = parseOptions('generate', argv, GENERATE_OPTIONS);
  if (args.flag('help')) { console.log(GENERATE_HELP); return; }
  const json = args.flag('json');
  const modelText = args.string('model');
  if (!modelText) throw new InvalidArgumentError('Give --model: a folder, a Hugging Face repo id (owner/name), a URL, or "builtin".');
  const prompt = args.string('prompt');
  if ((prompt === undefined) === !args.has('prompt-ids')) throw new InvalidArgumentError('Give exactly one of --prompt TEXT or --prompt-ids 1,2,3.');
  const promptIds = args.list('prompt-ids', (t, option) => parseNumber(option, t, { min: 0, max: 2 ** 31 - 1, integer: true }));
  const format = args.choice('format', ['chat', 'alpaca', 'raw'] as const, 'chat');
  const adapterTexts = args.strings('adapter');
  const scales = args.strings('adapter-scale').map((t) => parseNumber('--adapter-scale', t, { min: 0, max: 2 }));
  const compare = args.flag('compare');
  if (scales.length > Math.max(1, adapterTexts.length)) throw new InvalidArgumentError(`${scales.length} --adapter-scale values for ${adapterTexts.length} --adapter: give at most one per adapter.`);
  if (compare && adapterTexts.length === 0) throw new InvalidArgumentError('--compare needs at least one --adapter.');
  if (!compare && adapterTexts.length > 1) throw new InvalidArgumentError('Several --adapter flags need --compare (one column each).');
  if (compare && adapterTexts.length > 3) throw new InvalidArgumentError('--compare takes at most 3 adapters (4 columns with the base).');
  const request = {
    prompt, promptIds, format,
    maxNewTokens: args.number('max-new-tokens', 64, { min: 1, max: 1_000_000, integer: true }),
    stopStrings: args.strings('stop'),
    sampling: {
      temperature: args.number('temperature', 0.7, L.temperature),
      topK: args.number('top-k', 40, { ...L.topK, integer: true }),
      topP: args.number('top-p', 0.9, L.topP),
      repetitionPenalty: args.number('repetition-penalty', 1, L.repetitionPenalty),
      seed: args.number('seed', 0, { min: 0, max: 0xffffffff, integer: true }),
    },
  };
  const contextLength = args.number('context', 2048, { min: 16, max: 1 << 20, integer: true });
  const files = await openSource(modelText, args, 'model', json);

  const gpu = await createNodeGpu({ forceF32: args.flag('f32') });
  const engine = new Engine(gpu, { contextLength });
  const info = await engine.load(files, (p) => {
    if (!json) process.stderr.write(`\rloading ${p.file}: ${(p.allLoaded / 1e6).toFixed(1)} / ${(p.allTotal / 1e6).toFixed(1)} MB`);
  }, undefined, { precision: precisionOf(args) });
  if (!json) process.stderr.write(`\nloaded ${info.label} (${info.architecture}, ${info.layers} layers) on ${info.gpu}, weights ${info.precision} (${(info.weightBytes / 1e6).toFixed(1)} MB)\n`);
  const adapters = [];
  for (const text of adapterTexts) {
    const a = await loadAdapterArg(engine, text, args, json);
    adapters.push(a);
    if (!json) process.stderr.write(`adapter ${a.name}: rank ${a.rank}, ${a.modules} modules\n`);
  }
  if (compare) {
    const columns = [{ adapter: null, strength: 1 }, ...adapters.map((a, i) => ({ adapter: a.name, strength: scales[i] ?? 1 }))];
    const results = await engine.compare(request, columns);
    await engine.idle(); // compiles a quick start began after the answer: not cut off by the exit
    results.forEach((r, i) => {
      const column = { column: i, adapter: columns[i].adapter, strength: columns[i].strength, tokens: r.tokens, text: r.text, prefillMs: round(r.prefillMs), decodeTokensPerSecond: round(r.decodeTokensPerSecond), stopReason: r.stopReason };
      if (json) process.stdout.write(JSON.stringify(column) + '\n');
      else process.stdout.write(`\n=== ${columns[i].adapter ?? 'base'}${columns[i].adapter ? ` x${columns[i].strength}` : ''} (${r.tokens.length} tokens, ${column.decodeTokensPerSecond} tokens/s)\n${r.text}\n`);
    });
    return;
  }
  const result = await engine.generate({ ...request, adapter: adapters[0]?.name ?? null, adapterScale: scales[0] ?? 1 }, (text) => { if (!json) process.stdout.write(text); });
  await engine.idle(); // compiles a quick start began after the answer: not cut off by the exit
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
    gpu: info.gpu,
    weightsF16: info.weightsF16,
    precision: info.precision,
    weightBytes: info.weightBytes,
  };
  if (json) process.stdout.write(JSON.stringify(summary) + '\n');
  else process.stderr.write(`\n\n${result.tokens.length} tokens, prefill ${summary.prefillMs} ms, first token ${summary.timeToFirstTokenMs} ms, ${summary.decodeTokensPerSecond} tokens/s (${result.stopReason})\n`);
}

const round = (x: number, k = 2) => Math.round(x * 10 ** k) / 10 ** k;
