// lora-lab: the engine headless in Node, through Dawn (the `webgpu` package). Two subcommands, generate and train;
// options are parsed strictly (src/cli/args.ts), files are written crash-safe (lib/storage/atomic-node.ts), and every
// error is printed as one line naming its type, with exit status 2 (130/143 after SIGINT/SIGTERM).

import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDataset } from '../lib/data/records.js';
import { Engine } from '../lib/engine.js';
import { AbortedError, InvalidArgumentError, LoraLabError } from '../lib/errors.js';
import { createNodeGpu } from '../lib/gpu/node.js';
import { NodeDirFiles } from '../lib/hub/node-files.js';
import { safeBaseName } from '../lib/hub/paths.js';
import { SAMPLING_LIMITS as L } from '../lib/model/sampling.js';
import { sameModel } from '../lib/model/fingerprint.js';
import { BUILTIN_MODEL_ID } from '../lib/hub/source.js';
import { LORA_MODULES, type LoraModule } from '../lib/lora/peft.js';
import { recoverFolder, replaceFolder } from '../lib/storage/atomic-node.js';
import { checkpointFiles, readCheckpointFiles, type CheckpointData } from '../lib/training/checkpoint-files.js';
import { DEFAULT_TRAIN_CONFIG, type TrainConfig } from '../lib/training/config.js';
import type { Checkpoint } from '../lib/training/trainer.js';
import { Options, parseNumber, parseOptions, precisionOf, type OptionSpec } from './args.js';
import { PRECISIONS } from '../lib/quant/precision.js';
import { cacheCommand } from './cache.js';
import { evalCommand } from './eval.js';
import { scoreCommand } from './score.js';
import { CACHE_OPTIONS, loadAdapterArg, openSource } from './sources.js';

const SOURCE_OPTIONS: OptionSpec = {
  ...CACHE_OPTIONS,
  f32: { type: 'boolean' },
  precision: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
};

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

const TRAIN_SETTINGS = ['steps', 'epochs', 'lr', 'rank', 'alpha', 'dropout', 'targets', 'cutoff', 'batch', 'grad-accum', 'warmup',
  'schedule', 'seed', 'format', 'max-records', 'train-on-inputs', 'val-fraction', 'eval-every', 'on-non-finite'] as const;

const TRAIN_OPTIONS: OptionSpec = {
  ...SOURCE_OPTIONS,
  model: { type: 'string' },
  data: { type: 'string' },
  out: { type: 'string' },
  resume: { type: 'string' },
  'checkpoint-every': { type: 'string' },
  ...Object.fromEntries(TRAIN_SETTINGS.map((k) => [k, { type: k === 'train-on-inputs' ? 'boolean' as const : 'string' as const }])),
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
  --f32                a device without shader-f16 (weights f32, or q8/q4)
  --adapter            a PEFT LoRA adapter, applied unmerged at strength --adapter-scale (0..2, default 1)
  --compare            decode the base model and every --adapter (at most 3) as one batch
  --cache-dir          where Hugging Face repos and URLs are kept after their first download (lora-lab cache --help)
  --offline            never use the network: load only what is kept
  --json               one JSON object on the last line of stdout (with --compare: one per column, base first)`;

const TRAIN_HELP = `lora-lab train — train a LoRA adapter on instruction data

  lora-lab train --model <...> --data <file.json|file.jsonl|file.parquet|builtin> --out <folder>
                 [--steps N | --epochs E] [--lr LR] [--rank R] [--alpha A] [--dropout P] [--targets q_proj,v_proj]
                 [--cutoff N] [--batch B] [--grad-accum G] [--warmup N] [--schedule cosine|linear|constant]
                 [--seed S] [--format alpaca|chat] [--max-records N] [--train-on-inputs] [--val-fraction F]
                 [--eval-every N] [--checkpoint-every N] [--on-non-finite stop|skip] [--precision P] [--json]
  lora-lab train --resume <folder> [--model <...>] [--data <...>] [--checkpoint-every N] [--json]

  --out                a new folder, or an adapter folder to replace. It always holds a complete adapter: the latest
                       checkpoint's (every --checkpoint-every steps, default ${DEFAULT_TRAIN_CONFIG.checkpointEvery}, and on SIGINT/SIGTERM), then
                       the final one, with the training state in <out>/checkpoint for --resume.
  --resume             continues the run in that folder exactly where its checkpoint left it; the settings and the
                       dataset come from the checkpoint (the data file must be unchanged)
  --steps              1..10000000 optimizer steps (or --epochs E > 0; default ${DEFAULT_TRAIN_CONFIG.epochs} epochs)
  --rank 1..64  --alpha > 0  --dropout [0, 1)  --lr (0, 1)  --cutoff 2..65536  --batch 1..1024  --grad-accum 1..1024
  --targets            comma-separated, from ${LORA_MODULES.join(', ')}
  --max-records        1.. (use only the first N records)         --val-fraction [0, 1)
  --eval-every         0.. steps between validation losses (0: never)
  --on-non-finite      stop (default: end with an error, the last good checkpoint kept) or skip (drop that step)
  --precision          the base's weights: ${PRECISIONS.join(', ')}; q8 or q4 train QLoRA (a frozen quantized base, f32 LoRA)
  --json               one JSON object per line: steps, evaluations, checkpoints, and a final summary`;

const HELP = `lora-lab — LoRA Lab's WebGPU engine in Node

  lora-lab generate --help     generate text with a model and adapters
  lora-lab train --help        train a LoRA adapter
  lora-lab eval --help         evaluate a model and adapters (ROUGE-L, loss, perplexity) on a set
  lora-lab score --help        score answers with a reward model (ONNX), rank best-of-n samples
  lora-lab cache --help        models and adapters kept for offline use

  Environment: LORA_LAB_DRIVER=lavapipe|swiftshader picks a software Vulkan driver when there is no GPU;
  HF_TOKEN and HF_ENDPOINT stand in for --hf-token and --hf-endpoint; LORA_LAB_CACHE for --cache-dir;
  LORA_LAB_OFFLINE=1 (or HF_HUB_OFFLINE=1) for --offline.`;

const builtinData = fileURLToPath(new URL('../../public/data/alpaca-gpt4-sample-en.json', import.meta.url));

async function generateCommand(argv: string[]): Promise<void> {
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
  if (!json) process.stderr.write(`\nloaded ${info.label} (${info.architecture}, ${info.layers} layers) on ${info.adapter}, weights ${info.precision} (${(info.weightBytes / 1e6).toFixed(1)} MB)\n`);
  const adapters = [];
  for (const text of adapterTexts) {
    const a = await loadAdapterArg(engine, text, args, json);
    adapters.push(a);
    if (!json) process.stderr.write(`adapter ${a.name}: rank ${a.rank}, ${a.modules} modules\n`);
  }
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
    precision: info.precision,
    weightBytes: info.weightBytes,
  };
  if (json) process.stdout.write(JSON.stringify(summary) + '\n');
  else process.stderr.write(`\n\n${result.tokens.length} tokens, prefill ${summary.prefillMs} ms, first token ${summary.timeToFirstTokenMs} ms, ${summary.decodeTokensPerSecond} tokens/s (${result.stopReason})\n`);
}

/** Files an adapter folder may hold besides the adapter itself; anything else means --out is someone's folder. */
const OUT_FILES = new Set(['adapter_config.json', 'adapter_model.safetensors', 'checkpoint', 'README.md']);

/** Checks --out before any work: a new folder under an existing one, or an adapter folder this command may replace. */
function checkOut(out: string): void {
  recoverFolder(out);
  const parent = dirname(resolve(out));
  if (!existsSync(parent) || !statSync(parent).isDirectory()) throw new InvalidArgumentError(`--out ${out}: the folder ${parent} does not exist; create it first.`);
  if (!existsSync(out)) return;
  if (!statSync(out).isDirectory()) throw new InvalidArgumentError(`--out ${out} is a file, not a folder: give a new folder name (or an adapter folder to replace).`);
  const foreign = readdirSync(out).filter((n) => !OUT_FILES.has(n));
  if (foreign.length) {
    throw new InvalidArgumentError(`--out ${out} holds other files (${foreign.slice(0, 3).join(', ')}${foreign.length > 3 ? ', ...' : ''}) and would be replaced as a whole: give a new folder, or an adapter folder written by lora-lab train.`);
  }
}

function readData(dataText: string): { bytes: Uint8Array; path: string; sha256: string } {
  const path = dataText === 'builtin' ? builtinData : dataText;
  if (!existsSync(path) || !statSync(path).isFile()) throw new InvalidArgumentError(`--data ${dataText}: no such file.`);
  const bytes = new Uint8Array(readFileSync(path));
  return { bytes, path, sha256: createHash('sha256').update(bytes).digest('hex') };
}

/** The TrainConfig fields given on the command line (the rest come from the defaults or the checkpoint). */
function trainSettings(args: Options): Partial<TrainConfig> {
  const c: Partial<TrainConfig> = {};
  const stepsGiven = args.has('steps');
  if (stepsGiven && args.has('epochs')) throw new InvalidArgumentError('Give --steps or --epochs, not both.');
  if (stepsGiven) { c.steps = args.number('steps', 0, { min: 1, max: 10_000_000, integer: true }); c.epochs = 0; }
  if (args.has('epochs')) c.epochs = args.number('epochs', 0, { min: 0, max: 10_000, above: true });
  if (args.has('lr')) c.learningRate = args.number('lr', 0, { min: 0, max: 1, above: true, below: true });
  if (args.has('rank')) c.rank = args.number('rank', 0, { min: 1, max: 64, integer: true });
  if (args.has('alpha')) c.alpha = args.number('alpha', 0, { min: 0, max: 1e6, above: true });
  if (args.has('dropout')) c.dropout = args.number('dropout', 0, { min: 0, max: 1, below: true });
  const targets = args.list('targets', (t) => {
    if (!LORA_MODULES.includes(t as LoraModule)) throw new InvalidArgumentError(`--targets: "${t}" is not one of ${LORA_MODULES.join(', ')}.`);
    return t as LoraModule;
  });
  if (targets) c.targetModules = [...new Set(targets)];
  if (args.has('cutoff')) c.cutoff = args.number('cutoff', 0, { min: 2, max: 65536, integer: true });
  if (args.has('batch')) c.microBatch = args.number('batch', 0, { min: 1, max: 1024, integer: true });
  if (args.has('grad-accum')) c.gradAccumulation = args.number('grad-accum', 0, { min: 1, max: 1024, integer: true });
  c.warmupSteps = args.number('warmup', stepsGiven ? Math.min(DEFAULT_TRAIN_CONFIG.warmupSteps, Math.floor(c.steps! / 10)) : DEFAULT_TRAIN_CONFIG.warmupSteps, { min: 0, max: 10_000_000, integer: true });
  c.schedule = args.choice('schedule', ['cosine', 'linear', 'constant'] as const, DEFAULT_TRAIN_CONFIG.schedule);
  if (args.has('seed')) c.seed = args.number('seed', 0, { min: 0, max: 0xffffffff, integer: true });
  c.trainOnInputs = args.flag('train-on-inputs');
  if (args.has('val-fraction')) c.validationFraction = args.number('val-fraction', 0, { min: 0, max: 1, below: true });
  if (args.has('eval-every')) c.evalEvery = args.number('eval-every', 0, { min: 0, max: 10_000_000, integer: true });
  c.nonFinite = args.choice('on-non-finite', ['stop', 'skip'] as const, 'stop');
  return c;
}

/** What a train command will do: a new run from the options, or the run whose checkpoint is in --resume. */
interface RunPlan {
  out: string;
  resume?: { checkpoint: Checkpoint; data: CheckpointData };
  modelText: string;
  dataText: string;
  config: Partial<TrainConfig>;
  format: 'alpaca' | 'chat';
  maxRecords?: number;
}

async function planResume(args: Options, out: string): Promise<RunPlan> {
  const given = TRAIN_SETTINGS.filter((k) => args.has(k));
  if (given.length) throw new InvalidArgumentError(`--resume continues a run with the settings of its checkpoint: drop --${given.join(', --')}.`);
  if (args.has('out') && resolve(args.string('out')!) !== resolve(out)) throw new InvalidArgumentError('--resume writes to the folder it resumes: drop --out.');
  recoverFolder(out);
  if (!existsSync(resolve(out, 'checkpoint', 'trainer_state.json'))) {
    throw new InvalidArgumentError(`--resume ${out}: there is no checkpoint in this folder (${out}/checkpoint/trainer_state.json). Give the --out folder of an earlier lora-lab train run.`);
  }
  const resume = await readCheckpointFiles(new NodeDirFiles(`${out}/checkpoint`, resolve(out, 'checkpoint')));
  const modelText = args.string('model') ?? (resume.checkpoint.baseModel === BUILTIN_MODEL_ID ? 'builtin' : undefined);
  if (!modelText) throw new InvalidArgumentError(`Give --model: this run was trained on ${resume.checkpoint.baseModel ?? 'an unnamed model'}.`);
  // Checkpoints name the dataset by its file name only (no local paths); the SHA-256 proves it is the same file.
  const dataText = args.string('data') ?? (resume.data.file === 'builtin' ? 'builtin' : undefined);
  if (!dataText) throw new InvalidArgumentError(`Give --data: this run was trained on ${resume.data.file} (SHA-256 ${resume.data.sha256.slice(0, 12)}...).`);
  return { out, resume, modelText, dataText, config: { ...resume.checkpoint.config }, format: resume.data.format, maxRecords: resume.data.maxRecords };
}

function planNew(args: Options): RunPlan {
  const out = args.string('out');
  const modelText = args.string('model');
  const dataText = args.string('data');
  if (!modelText || !dataText || !out) throw new InvalidArgumentError('lora-lab train needs --model, --data and --out (see lora-lab train --help).');
  return {
    out, modelText, dataText, config: trainSettings(args),
    format: args.choice('format', ['alpaca', 'chat'] as const, 'alpaca'),
    maxRecords: args.has('max-records') ? args.number('max-records', 0, { min: 1, max: 1e9, integer: true }) : undefined,
  };
}

/** SIGINT/SIGTERM stop after the current step, so the run writes its checkpoint and exits; a second signal: now. */
function stopOnSignals(json: boolean): { signal: AbortSignal; received: () => NodeJS.Signals | null; dispose: () => void } {
  const stop = new AbortController();
  let received: NodeJS.Signals | null = null;
  const onSignal = (sig: NodeJS.Signals) => {
    if (received) process.exit(sig === 'SIGINT' ? 130 : 143);
    received = sig;
    if (!json) process.stderr.write(`\n${sig}: stopping after this step and writing a checkpoint (again to quit now)\n`);
    stop.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: stop.signal,
    received: () => received,
    dispose: () => { process.off('SIGINT', onSignal); process.off('SIGTERM', onSignal); },
  };
}

async function trainCommand(argv: string[]): Promise<number> {
  const args = parseOptions('train', argv, TRAIN_OPTIONS);
  if (args.flag('help')) { console.log(TRAIN_HELP); return 0; }
  const json = args.flag('json');
  const emit = (o: Record<string, unknown>, text: string) => process.stdout.write((json ? JSON.stringify(o) : text) + '\n');
  const resumeDir = args.string('resume');
  const { out, resume, modelText, dataText, config, format, maxRecords } = resumeDir !== undefined ? await planResume(args, resumeDir) : planNew(args);
  config.checkpointEvery = args.number('checkpoint-every', resume?.checkpoint.config.checkpointEvery ?? DEFAULT_TRAIN_CONFIG.checkpointEvery, { min: 0, max: 10_000_000, integer: true });
  checkOut(out);

  const data = readData(dataText);
  if (resume && data.sha256 !== resume.data.sha256) {
    throw new InvalidArgumentError(`--data ${data.path} is not the file this run was trained on (its SHA-256 differs): resume with the same dataset file.`);
  }
  const records = await parseDataset(data.bytes, basename(data.path));
  const files = await openSource(modelText, args, 'model', json);
  const gpu = await createNodeGpu({ forceF32: args.flag('f32') });
  const engine = new Engine(gpu, { contextLength: 256, slots: 1 });
  const info = await engine.load(files, undefined, undefined, { precision: precisionOf(args) });
  if (resume && !sameModel({ model: resume.checkpoint.baseModel, fingerprint: resume.checkpoint.baseFingerprint }, info)) {
    throw new InvalidArgumentError(`The checkpoint in ${out} was trained on ${resume.checkpoint.baseModel}, not ${info.modelId}: give --model ${resume.checkpoint.baseModel}.`);
  }
  if (!json) process.stderr.write(`loaded ${info.label} on ${info.adapter}, weights ${info.precision}; ${records.length} records from ${data.path}\n`);

  const dataRecord: CheckpointData = { file: dataText === 'builtin' ? 'builtin' : basename(data.path), sha256: data.sha256, format, ...(maxRecords ? { maxRecords } : {}) };
  const name = resume?.checkpoint.name ?? basename(resolve(out));
  const write = (c: Checkpoint) => {
    const folder = new Map([['adapter_config.json', new TextEncoder().encode(c.peft.config)], ['adapter_model.safetensors', c.peft.safetensors]]);
    for (const [f, b] of checkpointFiles(c, dataRecord)) folder.set(`checkpoint/${f}`, b);
    replaceFolder(out, folder);
    emit({ type: 'checkpoint', step: c.step, out }, `checkpoint at step ${c.step} written to ${out}`);
  };

  const signals = stopOnSignals(json);
  const t0 = performance.now();
  let last: number | null = null;
  try {
    const adapter = await engine.train({ name, records, format, config, maxRecords, resume: resume?.checkpoint }, {
      onStep: (m) => {
        last = m.trainLoss;
        emit({ type: 'step', step: m.step, totalSteps: m.totalSteps, epoch: m.epoch, loss: round(m.trainLoss, 6), learningRate: m.learningRate, gradNorm: round(m.gradNorm, 6), tokensPerSecond: round(m.tokensPerSecond), skipped: m.skipped },
          `step ${m.step}/${m.totalSteps}  loss ${m.trainLoss.toFixed(4)}  lr ${m.learningRate.toExponential(2)}  grad-norm ${m.gradNorm.toFixed(3)}  ${m.tokensPerSecond.toFixed(0)} tokens/s${m.skipped ? '  (skipped: not finite)' : ''}`);
      },
      onEval: (step, v) => emit({ type: 'eval', step, validationLoss: round(v, 6) }, `step ${step}  validation loss ${v.toFixed(4)}`),
      onCheckpoint: write,
    }, { signal: signals.signal });
    const seconds = round((performance.now() - t0) / 1000);
    const sig = signals.received();
    if (sig) {
      emit({ type: 'stopped', signal: sig, out, seconds }, `stopped by ${sig}; resume with: lora-lab train --resume ${out}`);
      return sig === 'SIGINT' ? 130 : 143;
    }
    emit({ type: 'done', out, adapter: adapter.name, finalLoss: last, seconds }, `wrote ${out} (rank ${adapter.rank}, ${adapter.modules} modules) in ${seconds} s`);
    return 0;
  } finally {
    signals.dispose();
  }
}

const round = (x: number, k = 2) => Math.round(x * 10 ** k) / 10 ** k;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (!command || command === '--help' || command === '-h' || command === 'help') {
      console.log(HELP);
      return command ? 0 : 1;
    }
    if (command === 'generate') { await generateCommand(rest); return 0; }
    if (command === 'train') return await trainCommand(rest);
    if (command === 'cache') return await cacheCommand(rest);
    if (command === 'eval') return await evalCommand(rest);
    if (command === 'score') return await scoreCommand(rest);
    throw new InvalidArgumentError(`Unknown command "${command}": use generate, train, eval, score or cache (lora-lab --help).`);
  } catch (e) {
    const err = e as Error;
    process.stderr.write(`\nerror: ${err instanceof LoraLabError ? `${err.name}: ` : ''}${err.message}\n`);
    return err instanceof AbortedError ? 130 : 2;
  }
}
