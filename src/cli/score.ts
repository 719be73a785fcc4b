// lora-lab score: a reward model (ONNX, run by onnxruntime-web's wasm backend in Node) scores answers, as the paper's
// reward model ranked sampled responses. Four ways in: answers given on the command line; every record of a dataset;
// every answer of an evaluation (lora-lab eval --out), with a mean per model; or --best-of N answers sampled from a
// model (and adapter), ranked.

import { userMessage } from '../lib/tokenizer/alpaca.js';
import { readInput } from './input-files.js';
import { basename } from 'node:path';
import { parseDataset } from '../lib/data/records.js';
import { Engine } from '../lib/engine.js';
import { InvalidArgumentError } from '../lib/errors.js';
import type { ExampleResult } from '../lib/eval/metrics.js';
import { createNodeGpu } from '../lib/gpu/node.js';
import { SAMPLING_LIMITS as L } from '../lib/model/sampling.js';
import { RewardModel, type RewardScore } from '../lib/reward/onnx-reward.js';
import { loadRewardAdapter } from '../lib/reward/reward-adapter.js';
import { MAX_BEST_OF, sampleColumns } from '../lib/reward/best-of.js';
import { rankByScore, rankGroups, rewardByModel } from '../lib/reward/rank.js';
import { parseOptions, precisionOf, type Options, type OptionSpec } from './args.js';
import { loadSet } from './eval.js';
import { CACHE_OPTIONS, loadAdapterArg, openSource } from './sources.js';
import { DEFAULT_SCORE_LIMIT_S, nodeOrt } from './ort-node.js';

const SCORE_OPTIONS: OptionSpec = {
  ...CACHE_OPTIONS,
  reward: { type: 'string' },
  question: { type: 'string' },
  answer: { type: 'string', multiple: true },
  data: { type: 'string' },
  results: { type: 'string' },
  set: { type: 'string' },
  limit: { type: 'string' },
  model: { type: 'string' },
  adapter: { type: 'string' },
  prompt: { type: 'string' },
  'best-of': { type: 'string' },
  'max-new-tokens': { type: 'string' },
  temperature: { type: 'string' },
  seed: { type: 'string' },
  precision: { type: 'string' },
  f32: { type: 'boolean' },
  'time-limit': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
};

export const SCORE_HELP = `lora-lab score — score answers with a reward model (an ONNX text classifier with one logit, or one trained with lora-lab train --reward)

  lora-lab score --reward <folder|hf-repo-id|url> --question TEXT --answer TEXT [--answer TEXT]...
  lora-lab score --reward <...> --data <dataset.json|.jsonl|.parquet>     each record's output, as the answer
  lora-lab score --reward <...> --results <results.jsonl> --set <set>     an evaluation's answers (lora-lab eval --out)
  lora-lab score --reward <...> --model <...> [--adapter <...>] --prompt TEXT --best-of N
                 [--max-new-tokens N] [--temperature T] [--seed S] [--precision P]
  lora-lab score --reward <...> --model <...> [--adapter <...>] --set <set> [--limit N] --best-of N
                 N answers per question of a set, ranked; then the paper's rank groups (group k: every question's
                 k-th answer) with their mean reward and answer length

  --reward       a folder or repo in the transformers.js layout: onnx/model.onnx (or model.onnx), tokenizer.json,
                 config.json. The answer is scored after the question, through the tokenizer's chat template.
                 Or a reward model trained with lora-lab train --reward (a PEFT SEQ_CLS folder: LoRA + score head),
                 scored by LoRA Lab's engine over --model, its base (the question in the Alpaca template, then the answer).
  --time-limit   seconds one text may take on an ONNX reward model (default ${DEFAULT_SCORE_LIMIT_S}); the model runs in a thread of
                 its own, stopped at the limit (a graph that loops for ever ends in TimeLimitError, exit status 2)
  --best-of      1..16 answers sampled from the model (temperature default 0.8), ranked best first
  --json         one JSON object per scored answer (per question with --set), then (for --results) one summary line
                 per model, or (for --set with --best-of) one line per rank group`;

function readResults(path: string): ExampleResult[] {
  return new TextDecoder().decode(readInput('--results', path, 'write one with lora-lab eval --out')).split('\n').filter((l) => l.trim()).flatMap((l) => {
    try {
      const r = JSON.parse(l) as ExampleResult;
      return typeof r.id === 'string' && typeof r.model === 'string' && typeof r.prediction === 'string' ? [r] : [];
    } catch {
      return []; // a torn last line of a stopped run
    }
  });
}

/** --model, loaded once: the model --best-of samples from, and the base of a reward model trained with LoRA Lab. */
async function openEngine(args: Options, json: boolean, why: string): Promise<Engine> {
  const modelText = args.string('model');
  if (!modelText) throw new InvalidArgumentError(`${why}: give --model too.`);
  const n = args.has('best-of') ? args.number('best-of', 4, { min: 1, max: MAX_BEST_OF, integer: true }) : 1;
  const engine = new Engine(await createNodeGpu({ forceF32: args.flag('f32') }), { contextLength: 2048, slots: Math.min(n, 8) });
  await engine.load(await openSource(modelText, args, 'model', json), undefined, undefined, { precision: precisionOf(args) });
  return engine;
}

/**
 * The reward model: an ONNX classifier on onnxruntime-web, or a PEFT SEQ_CLS folder (LoRA + score head, from
 * lora-lab train --reward) scored by our engine over --model.
 */
async function openReward(args: Options, json: boolean, engine: () => Promise<Engine>) {
  const files = await openSource(args.string('reward')!, args, 'reward', json);
  if (await files.bytes('adapter_config.json', true)) {
    const e = await engine();
    const reward = await loadRewardAdapter(files, e.runner.cfg.hiddenSize);
    const scorer = e.rewardScorer(reward, files.label);
    if (!json) process.stderr.write(`reward model ${files.label} (LoRA + score head) on ${e.info!.label}, scored by LoRA Lab's engine\n`);
    return scorer;
  }
  const limitS = args.number('time-limit', DEFAULT_SCORE_LIMIT_S, { min: 0.1, max: 86_400 });
  const reward = await RewardModel.load(nodeOrt(limitS * 1000), files, ['wasm']);
  if (!json) process.stderr.write(`reward model ${reward.info.label} (${reward.info.onnxPath}) on onnxruntime-web ${reward.info.provider}\n`);
  return reward;
}

/** The model (and adapter) that --best-of samples from: `sample(prompt)` gives n answers, own seeds. */
async function openSampler(args: Options, n: number, json: boolean, engine: Engine) {
  const adapterText = args.string('adapter');
  const adapter = adapterText ? (await loadAdapterArg(engine, adapterText, args, json)).name : null;
  const req = {
    maxNewTokens: args.number('max-new-tokens', 128, { min: 1, max: 4096, integer: true }),
    sampling: { temperature: args.number('temperature', 0.8, L.temperature), seed: args.number('seed', 0, { min: 0, max: 0xffffffff, integer: true }) },
  };
  return {
    async sample(prompt: string): Promise<string[]> {
      const [samples] = await sampleColumns(engine, engine.promptIds({ prompt, format: 'chat' }), [{ adapter, strength: 1 }], n, req, undefined,
        (done, total) => { if (!json) process.stderr.write(`\rsampled ${done}/${total}${done === total ? '\n' : ''}`); });
      return samples.map((x) => x.text);
    },
  };
}

const words = (s: string) => s.split(/\s+/).filter(Boolean).length;

export async function scoreCommand(argv: string[]): Promise<number> {
  const args = parseOptions('score', argv, SCORE_OPTIONS);
  if (args.flag('help')) { console.log(SCORE_HELP); return 0; }
  const json = args.flag('json');
  const rewardText = args.string('reward');
  if (!rewardText) throw new InvalidArgumentError('Give --reward: a reward model folder, Hugging Face repo id or URL (see lora-lab score --help).');
  const modes = ['question', 'data', 'results', 'best-of'].filter((m) => args.has(m));
  if (modes.length !== 1) throw new InvalidArgumentError('Give exactly one of --question (with --answer), --data, --results (with --set) or --best-of (with --model and --prompt).');

  const out = (line: Record<string, unknown>, text: string) => process.stdout.write(json ? JSON.stringify(line) + '\n' : text + '\n');
  let engine: Engine | null = null;
  const model = async (why: string) => (engine ??= await openEngine(args, json, why));
  const reward = await openReward(args, json, () => model('A reward model trained with LoRA Lab scores over its base model'));
  const fmt = (x: number) => x.toFixed(4).padStart(9);
  try {
    if (args.has('best-of') && args.has('set')) {
      // The paper's rank groups: n answers per question of a set, ranked by reward; group k is every question's k-th.
      const set = await loadSet(args.string('set')!);
      const examples = set.examples.slice(0, args.has('limit') ? args.number('limit', 0, { min: 1, max: 1e9, integer: true }) : undefined);
      const sampler = await openSampler(args, args.number('best-of', 4, { min: 1, max: MAX_BEST_OF, integer: true }), json, await model('--best-of samples answers from a model'));
      const scores: number[][] = [];
      const lengths: number[][] = [];
      for (const e of examples) {
        const question = userMessage(e.instruction, e.input);
        const answers = await sampler.sample(question);
        const s: number[] = [];
        for (const a of answers) s.push((await reward.score(question, a)).score);
        scores.push(s);
        lengths.push(answers.map(words));
        const best = rankByScore(answers, s)[0];
        out({ id: e.id, best: best.item, score: best.score, scores: s }, `${e.id.padEnd(14)} best ${fmt(best.score)}  ${best.item.replace(/\s+/g, ' ').slice(0, 80)}`);
      }
      for (const g of rankGroups(scores, lengths)) {
        out({ type: 'rankGroup', rank: g.rank, answers: g.answers, meanReward: g.meanScore, meanWords: g.meanOther },
          `rank group ${g.rank}: ${g.answers} answers, mean reward ${g.meanScore.toFixed(4)}, mean length ${g.meanOther?.toFixed(1) ?? '–'} words`);
      }
      return 0;
    }
    if (args.has('question') || args.has('best-of')) {
      const question = args.string('question') ?? args.string('prompt');
      if (!question) throw new InvalidArgumentError('--best-of needs --prompt: the question the answers are sampled for.');
      let answers = args.strings('answer');
      if (args.has('best-of')) {
        const sampler = await openSampler(args, args.number('best-of', 4, { min: 1, max: MAX_BEST_OF, integer: true }), json, await model('--best-of samples answers from a model'));
        answers = await sampler.sample(question);
      }
      if (answers.length === 0) throw new InvalidArgumentError('--question needs at least one --answer to score.');
      const scores: RewardScore[] = [];
      for (const a of answers) scores.push(await reward.score(question, a));
      for (const r of rankByScore(answers.map((a, i) => ({ answer: a, i, truncated: scores[i].truncated })), scores.map((s) => s.score))) {
        out({ rank: r.rank, answer: r.item.i + 1, score: r.score, truncated: r.item.truncated, text: r.item.answer }, `#${r.rank} ${fmt(r.score)}  answer ${r.item.i + 1}: ${r.item.answer.replace(/\s+/g, ' ').slice(0, 100)}`);
      }
      return 0;
    }
    if (args.has('data')) {
      const path = args.string('data')!;
      const records = await parseDataset(readInput('--data', path), basename(path));
      let sum = 0;
      for (const [i, r] of records.entries()) {
        const [q, a] = r.kind === 'alpaca'
          ? [userMessage(r.instruction, r.input), r.output]
          : [r.messages.filter((m) => m.role === 'user').at(-1)?.content ?? '', r.messages[r.messages.length - 1].content];
        const s = await reward.score(q, a);
        sum += s.score;
        out({ record: i + 1, score: s.score, tokens: s.tokens, truncated: s.truncated }, `${String(i + 1).padStart(5)} ${fmt(s.score)}  ${q.replace(/\s+/g, ' ').slice(0, 80)}`);
      }
      if (!json) process.stderr.write(`${records.length} records, mean reward ${(sum / Math.max(1, records.length)).toFixed(4)}\n`);
      return 0;
    }
    const setText = args.string('set');
    if (!setText) throw new InvalidArgumentError('--results needs --set: the evaluation set its answers belong to (their questions).');
    const set = await loadSet(setText);
    const questions = new Map(set.examples.map((e) => [e.id, userMessage(e.instruction, e.input)]));
    const results = readResults(args.string('results')!);
    const unknown = results.filter((r) => !questions.has(r.id));
    if (unknown.length) throw new InvalidArgumentError(`${unknown.length} results (e.g. id ${unknown[0].id}) are not examples of --set ${setText}: give the set the evaluation ran on.`);
    const scored = [];
    for (const r of results) {
      const s = await reward.score(questions.get(r.id)!, r.prediction);
      scored.push({ id: r.id, model: r.model, score: s.score });
      out({ id: r.id, model: r.model, score: s.score, truncated: s.truncated }, `${r.id.padEnd(12)} ${r.model.padEnd(24)} ${fmt(s.score)}`);
    }
    for (const m of rewardByModel(scored)) {
      out({ type: 'summary', ...m }, `${m.model.padEnd(28)} mean reward ${m.mean.toFixed(4)}  best of the models on ${(100 * m.bestShare).toFixed(1)}% of questions (${m.answers} answers)`);
    }
    return 0;
  } finally {
    await reward.dispose();
    (engine as Engine | null)?.unload();
  }
}
