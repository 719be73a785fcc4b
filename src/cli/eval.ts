// lora-lab eval: a set through the base model and adapters, as the paper evaluated them: each answer's ROUGE-L against
// its reference and the reference's teacher-forced loss, then per model the aggregates, ROUGE-L by reference length,
// and answer lengths. --out keeps results as JSON Lines as they come: run again with the same --out to resume.

import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Engine } from '../lib/engine.js';
import { InvalidArgumentError } from '../lib/errors.js';
import { summarize, type ExampleResult } from '../lib/eval/metrics.js';
import { DEFAULT_EVAL, modelLabel, resultKey, runEvaluation, type EvalModel } from '../lib/eval/run.js';
import { BUILTIN_SETS, evalSetFromFile, userOrientedSet, vicunaSet, type BuiltinSet, type EvalExample } from '../lib/eval/sets.js';
import { createNodeGpu } from '../lib/gpu/node.js';
import { parseNumber, parseOptions, precisionOf, type OptionSpec } from './args.js';
import { checkOutputFile, readInput } from './input-files.js';
import { checkResume, readEvalOut, settingsLine, type EvalOutSettings } from './eval-out.js';
import { writeFileAtomic } from '../lib/store/atomic-node.js';
import { createHash } from 'node:crypto';
import { CACHE_OPTIONS, loadAdapterArg, openSource } from './sources.js';

export const EVAL_OPTIONS: OptionSpec = {
  ...CACHE_OPTIONS,
  model: { type: 'string' },
  adapter: { type: 'string', multiple: true },
  set: { type: 'string' },
  'max-new-tokens': { type: 'string' },
  limit: { type: 'string' },
  format: { type: 'string' },
  seed: { type: 'string' },
  temperature: { type: 'string' },
  'no-loss': { type: 'boolean' },
  stem: { type: 'boolean' },
  out: { type: 'string' },
  context: { type: 'string' },
  f32: { type: 'boolean' },
  precision: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
};

export const EVAL_HELP = `lora-lab eval — evaluate a model and adapters on a set, as "Instruction Tuning with GPT-4" did

  lora-lab eval --model <...> [--adapter <folder|hf-repo-id|url|builtin:NAME>[@strength]]... (at most 3)
                --set <user-oriented|vicuna80|file.json|file.jsonl|file.parquet>
                [--max-new-tokens N] [--limit N] [--format chat|alpaca] [--seed S] [--temperature T]
                [--no-loss] [--stem] [--out results.jsonl] [--context N] [--precision P] [--json]

  --set            user-oriented: the paper's 252 user-oriented instructions with reference answers;
                   vicuna80: the 80 Vicuna questions (no references: answers only); or an Alpaca / chat dataset file
  --max-new-tokens 1..4096 (default 256)   --limit N: the first N examples   --temperature 0..2 (default 0: greedy)
  --no-loss        skip the teacher-forced loss of the references      --stem: ROUGE-L with Porter stemming
  --precision      the weights: auto, f32, f16, q8 or q4 (compare a quantized model's loss and ROUGE-L with f32's)
  --out            keep every result in this JSON Lines file as it is made; the same --out resumes a stopped run
  --json           one line per example and model ({id, model, prediction, reference, rougeL, loss}), then one
                   summary line per model ({type: "summary", model, rougeL, rougeLByLength, loss, perplexity, ...})`;

const setsDir = fileURLToPath(new URL('../../public/data/eval/', import.meta.url));

export async function loadSet(text: string): Promise<{ name: string; examples: EvalExample[] }> {
  if (text in BUILTIN_SETS) {
    const bytes = new Uint8Array(readFileSync(setsDir + BUILTIN_SETS[text as BuiltinSet]));
    return { name: text, examples: text === 'vicuna80' ? vicunaSet(bytes) : userOrientedSet(bytes) };
  }
  if (!existsSync(text)) throw new InvalidArgumentError(`--set ${text}: not a file, nor one of ${Object.keys(BUILTIN_SETS).join(', ')}.`);
  return { name: basename(text), examples: await evalSetFromFile(readInput('--set', text), basename(text)) };
}

/** `<source>[@strength]`: a trailing @number in [0, 2] is the strength; anything else after @ is a revision. */
export function parseAdapterArg(text: string): { source: string; strength: number } {
  const m = /^(.*)@([0-9]*\.?[0-9]+)$/.exec(text);
  if (m && Number(m[2]) <= 2) return { source: m[1], strength: parseNumber('--adapter strength', m[2], { min: 0, max: 2 }) };
  return { source: text, strength: 1 };
}

const round = (x: number | null | undefined, k = 6) => (x === null || x === undefined || !Number.isFinite(x) ? null : Math.round(x * 10 ** k) / 10 ** k);

export async function evalCommand(argv: string[]): Promise<number> {
  const args = parseOptions('eval', argv, EVAL_OPTIONS);
  if (args.flag('help')) { console.log(EVAL_HELP); return 0; }
  const json = args.flag('json');
  const modelText = args.string('model');
  const setText = args.string('set');
  if (!modelText || !setText) throw new InvalidArgumentError('lora-lab eval needs --model and --set (see lora-lab eval --help).');
  const adapters = args.strings('adapter').map(parseAdapterArg);
  if (adapters.length > 3) throw new InvalidArgumentError('--adapter at most 3 times (4 models with the base, decoded as one batch).');
  const set = await loadSet(setText);
  const limit = args.has('limit') ? args.number('limit', 0, { min: 1, max: 1e9, integer: true }) : set.examples.length;
  const examples = set.examples.slice(0, limit);
  const opts = {
    ...DEFAULT_EVAL,
    format: args.choice('format', ['chat', 'alpaca'] as const, 'chat'),
    maxNewTokens: args.number('max-new-tokens', DEFAULT_EVAL.maxNewTokens, { min: 1, max: 4096, integer: true }),
    sampling: { temperature: args.number('temperature', 0, { min: 0, max: 2 }), seed: args.number('seed', 0, { min: 0, max: 0xffffffff, integer: true }), repetitionPenalty: 1 },
    skipLoss: args.flag('no-loss'),
    stem: args.flag('stem'),
  };
  const out = args.string('out');
  if (out) checkOutputFile('--out', out);
  // Read (and checked) before any work; its settings are compared once the model is loaded.
  const file = out && existsSync(out) ? readEvalOut(out) : { settings: null, results: [] as ExampleResult[] };
  if (out && file.results.length && !file.settings) throw new InvalidArgumentError(`--out ${out} has results without the settings line lora-lab eval writes first: give a new --out.`, { option: 'out' });
  const previous = file.results;

  const files = await openSource(modelText, args, 'model', json);
  const gpu = await createNodeGpu({ forceF32: args.flag('f32') });
  // Four KV slots: the models of an example, and several examples at once when fewer than four models are compared.
  const engine = new Engine(gpu, { contextLength: args.number('context', 2048, { min: 16, max: 1 << 20, integer: true }), slots: 4 });
  const info = await engine.load(files, undefined, undefined, { precision: precisionOf(args) });
  const models: EvalModel[] = [{ adapter: null, strength: 1 }];
  for (const a of adapters) {
    const loaded = await loadAdapterArg(engine, a.source, args, json);
    models.push({ adapter: loaded.name, strength: a.strength });
  }
  if (!json) process.stderr.write(`evaluating ${models.map(modelLabel).join(', ')} of ${info.label} on ${set.name} (${examples.length} examples)\n`);
  const settings: EvalOutSettings = {
    model: info.modelId, fingerprint: info.fingerprint, precision: info.precision, set: set.name, format: opts.format, maxNewTokens: opts.maxNewTokens,
    temperature: opts.sampling.temperature, seed: opts.sampling.seed, loss: !opts.skipLoss, stem: opts.stem,
    models: Object.fromEntries(models.map((m) => [modelLabel(m), m.adapter === null ? null : createHash('sha256').update(engine.exportAdapter(m.adapter).safetensors).digest('hex')])),
  };
  if (out) {
    if (file.settings) {
      checkResume(out, file.settings, settings);
      // A run killed mid-write leaves a torn last line: the next result starts on a line of its own.
      const text = readFileSync(out, 'utf8');
      if (!text.endsWith('\n')) appendFileSync(out, '\n');
      // Models added since are recorded with the settings (the first line is rewritten whole only when they change).
      const merged = { ...file.settings, models: { ...file.settings.models, ...settings.models } };
      if (JSON.stringify(merged.models) !== JSON.stringify(file.settings.models)) {
        const rest = readFileSync(out, 'utf8').split('\n').slice(1).join('\n');
        writeFileAtomic(out, new TextEncoder().encode(settingsLine(merged) + rest));
      }
    } else {
      writeFileAtomic(out, new TextEncoder().encode(settingsLine(settings)));
    }
  }

  const wanted = new Set(examples.flatMap((e) => models.map((m) => resultKey(e.id, modelLabel(m)))));
  const results = previous.filter((r) => wanted.has(resultKey(r.id, r.model)));
  const kept = new Set(results.map((r) => resultKey(r.id, r.model)));
  const emit = (r: ExampleResult) => {
    const line = { id: r.id, model: r.model, prediction: r.prediction, reference: r.reference ?? null, rougeL: round(r.rougeL), loss: r.nll !== undefined && r.lossTokens ? round(r.nll / r.lossTokens) : null, tokens: r.predictionTokens, stopReason: r.stopReason };
    if (json) process.stdout.write(JSON.stringify(line) + '\n');
  };
  results.forEach(emit);
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const t0 = performance.now();
  const { stopped } = await runEvaluation(engine, examples, models, opts, {
    kept,
    onResult: (r) => {
      results.push(r);
      // Whole lines only: a line is written in one call, and a torn last line is skipped when resuming.
      if (out) appendFileSync(out, JSON.stringify(r) + '\n');
      emit(r);
    },
    onProgress: (p) => { if (!json) process.stderr.write(`\r${p.done}/${p.total} examples`); },
  }, stop.signal).finally(() => { process.off('SIGINT', onSignal); process.off('SIGTERM', onSignal); });
  const seconds = (performance.now() - t0) / 1000;
  if (!json) process.stderr.write('\n');
  for (const m of models) {
    const s = summarize(results, modelLabel(m));
    const summary = {
      type: 'summary', model: s.model, examples: s.examples, rougeL: round(s.rougeL),
      rougeLByLength: Object.fromEntries(s.byBucket.map((b) => [b.label, { examples: b.examples, rougeL: round(b.rougeL) }])),
      loss: round(s.loss), perplexity: round(s.perplexity, 3), answerWords: { mean: round(s.answerWords.mean, 2), median: s.answerWords.median, p90: round(s.answerWords.p90, 2) },
      seconds: round(seconds, 2),
    };
    if (json) process.stdout.write(JSON.stringify(summary) + '\n');
    else {
      process.stdout.write(`${s.model.padEnd(28)} ROUGE-L ${s.rougeL?.toFixed(4) ?? '–'}  loss ${s.loss?.toFixed(4) ?? '–'}  ppl ${s.perplexity?.toFixed(2) ?? '–'}  answer words ${s.answerWords.mean.toFixed(1)}\n`);
      process.stdout.write(`${''.padEnd(28)} by reference length: ${s.byBucket.map((b) => `${b.label}: ${b.rougeL?.toFixed(4) ?? '–'} (${b.examples})`).join('  ')}\n`);
    }
  }
  if (stopped) {
    process.stderr.write(`stopped; ${out ? `run again with --out ${out} to resume` : 'give --out to keep results and resume'}\n`);
    return 130;
  }
  return 0;
}
