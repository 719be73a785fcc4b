// The worker's evaluation requests: runs (kept result by result, resumable), their summaries and exports, and blind
// pairwise reviews. The page gets a review's pairs without model names; votes are matched to models here, and the
// names come back only when the review is finished.

import { safeFileName } from '../hub/paths.js';
import { sameModel } from '../model/fingerprint.js';
import { parseDataset } from '../data/records.js';
import type { Engine } from '../engine.js';
import { FileFormatError, InvalidArgumentError } from '../errors.js';
import { summarize, type ExampleResult, type ModelSummary } from '../eval/metrics.js';
import type { EvalRunRecord, ReviewRecord } from '../eval/run-records.js';
import { DEFAULT_EVAL, modelLabel, resultKey, runEvaluation, type EvalModel, type EvalOptions, type EvalProgress } from '../eval/run.js';
import { recordsToExamples, userOrientedSet, validationExamples, vicunaSet, type BuiltinSet, type EvalExample } from '../eval/sets.js';
import { CRITERIA, makePairs, tally, tallyToCsv, toPaperFormat, votesFromJson, votesToCsv, votesToJson, type Criterion, type PairKey, type ReviewPair, type TallyRow, type Verdict } from '../eval/votes.js';
import type { LabStore } from '../store/kept.js';
import type { DatasetSource } from '../store/checkpoints.js';

export type EvalSetChoice =
  | { kind: 'builtin'; name: BuiltinSet }
  | { kind: 'dataset'; dataset: DatasetSource; split: 'all' | 'validation'; fraction?: number; seed?: number };

export interface EvalRunSummary {
  run: Omit<EvalRunRecord, 'examples'> & { total: number };
  done: number;
  summaries: ModelSummary[];
}

export interface EvalRequestMap {
  evalStart: { request: { runId?: string; name?: string; set?: EvalSetChoice; models?: EvalModel[]; options?: Partial<EvalOptions>; limit?: number }; result: { runId: string; stopped: boolean } };
  evalRuns: { request: Record<string, never>; result: EvalRunSummary[]; immediate: true };
  evalResults: { request: { runId: string }; result: { summary: EvalRunSummary; results: ExampleResult[]; examples: EvalExample[]; reviews: { id: string; finished: boolean; votes: number; pairs: number; tally: TallyRow[] | null; models: [string, string] | null }[] }; immediate: true };
  evalDelete: { request: { runId: string }; result: EvalRunSummary[]; immediate: true };
  evalExport: { request: { runId: string; as: 'json' | 'csv' }; result: { name: string; blob: Blob }; immediate: true };
  evalImport: { request: { file: File }; result: { runId: string }; immediate: true };
  reviewStart: { request: { runId: string; models: [string, string]; seed?: number }; result: { reviewId: string; pairs: ReviewPair[]; prompts: Record<string, { instruction: string; input: string }> }; immediate: true };
  reviewOpen: { request: { reviewId: string }; result: { reviewId: string; pairs: ReviewPair[]; prompts: Record<string, { instruction: string; input: string }>; voted: { pairId: string; criterion: Criterion; verdict: Verdict }[]; finished: boolean }; immediate: true };
  reviewVote: { request: { reviewId: string; pairId: string; criterion: Criterion; verdict: Verdict }; result: { votes: number }; immediate: true };
  reviewFinish: { request: { reviewId: string }; result: { tally: TallyRow[]; models: [string, string]; keys: PairKey[] }; immediate: true };
  reviewExport: { request: { reviewId: string; as: 'json' | 'csv' | 'paper' | 'tally' }; result: { name: string; blob: Blob }; immediate: true };
  reviewImport: { request: { runId: string; file: File }; result: { reviewId: string }; immediate: true };
}

export interface EvalEnv {
  lab: LabStore;
  engine: () => Engine;
  builtinEvalSet: (name: BuiltinSet) => Promise<Uint8Array>;
  datasetBytes: (d: DatasetSource) => Promise<Uint8Array>;
  datasetName: (d: DatasetSource) => string;
}

const json = (v: unknown) => new Blob([JSON.stringify(v, null, 1)], { type: 'application/json' });
const csvCell = (v: unknown) => { const s = v === undefined || v === null ? '' : String(v); return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s; };

export const RESULTS_FORMAT = 'lora-lab-eval';

async function examplesOf(env: EvalEnv, set: EvalSetChoice): Promise<{ label: string; examples: EvalExample[] }> {
  if (set.kind === 'builtin') {
    const bytes = await env.builtinEvalSet(set.name);
    return set.name === 'vicuna80'
      ? { label: 'Vicuna 80 questions', examples: vicunaSet(bytes) }
      : { label: 'User-oriented instructions (252)', examples: userOrientedSet(bytes) };
  }
  const name = env.datasetName(set.dataset);
  const records = await parseDataset(await env.datasetBytes(set.dataset), name);
  const prefix = `${name.replace(/\.[^.]+$/, '')}#`;
  if (set.split === 'validation') {
    const fraction = set.fraction ?? 0.05;
    return { label: `${name}, validation split (${Math.round(fraction * 100)} %)`, examples: validationExamples(records, fraction, set.seed ?? 42, prefix) };
  }
  return { label: name, examples: recordsToExamples(records, prefix) };
}

/** An evaluation's run, results and summaries as one JSON file (what Evaluate exports and imports back). */
export async function evalResultsJson(lab: LabStore, runId: string): Promise<{ name: string; blob: Blob }> {
  const r = (await lab.getRun(runId)) ?? missing('evaluation', runId);
  const results = await lab.results(runId);
  return { name: `${safeFileName(r.name)}.json`, blob: json({ format: RESULTS_FORMAT, version: 1, run: r, results, summaries: r.models.map((m) => summarize(results, modelLabel(m))) }) };
}

export function evaluationHandlers(env: EvalEnv, onProgress: (id: number, p: EvalProgress, result?: ExampleResult) => void) {
  const { lab } = env;
  const summaryOf = async (run: EvalRunRecord, results?: ExampleResult[]): Promise<EvalRunSummary> => {
    const rs = results ?? await lab.results(run.id);
    const { examples, ...rest } = run;
    const done = new Set(rs.map((r) => r.id)).size;
    return { run: { ...rest, total: examples.length }, done, summaries: run.models.map((m) => summarize(rs, modelLabel(m))) };
  };
  const listRuns = async () => Promise.all((await lab.listRuns()).map((r) => summaryOf(r)));
  const review = async (id: string): Promise<ReviewRecord> => (await lab.getReview(id)) ?? missing('review', id);
  const run = async (id: string): Promise<EvalRunRecord> => (await lab.getRun(id)) ?? missing('evaluation', id);
  const prompts = (r: EvalRunRecord, pairs: ReviewPair[]) => {
    const ids = new Set(pairs.map((p) => p.exampleId));
    return Object.fromEntries(r.examples.filter((e) => ids.has(e.id)).map((e) => [e.id, { instruction: e.instruction, input: e.input }]));
  };

  return {
    async evalStart(id: number, p: EvalRequestMap['evalStart']['request'], signal: AbortSignal): Promise<EvalRequestMap['evalStart']['result']> {
      const engine = env.engine();
      let record: EvalRunRecord;
      if (p.runId) {
        record = await run(p.runId);
        if (!engine.info || !sameModel({ model: record.baseModel, fingerprint: record.baseFingerprint }, engine.info)) {
          throw new InvalidArgumentError(`This evaluation ran on ${record.baseModel}, whose weights differ from the model loaded now: load that model to resume it.`);
        }
        const loaded = new Set(engine.adapters.map((a) => a.name));
        const absent = record.models.filter((m) => m.adapter !== null && !loaded.has(m.adapter)).map((m) => m.adapter);
        if (absent.length) throw new InvalidArgumentError(`Load the adapter${absent.length > 1 ? 's' : ''} ${absent.join(', ')} to resume this evaluation.`);
      } else {
        if (!p.set || !p.models?.length) throw new InvalidArgumentError('Pick an evaluation set and at least one model.');
        const { label, examples } = await examplesOf(env, p.set);
        const limited = p.limit ? examples.slice(0, p.limit) : examples;
        if (!limited.length) throw new InvalidArgumentError('The evaluation set is empty.');
        record = {
          id: `eval-${Date.now().toString(36)}`, name: p.name?.trim() || `${label} · ${p.models.map(modelLabel).join(' vs ')}`,
          createdAt: Date.now(), baseModel: engine.info?.modelId ?? '', baseFingerprint: engine.info?.fingerprint, setLabel: label, examples: limited, models: p.models,
          options: { ...DEFAULT_EVAL, ...p.options, sampling: { ...DEFAULT_EVAL.sampling, ...p.options?.sampling } }, status: 'running',
        };
      }
      await lab.putRun({ ...record, status: 'running' });
      const kept = new Set((await lab.results(record.id)).map((r) => resultKey(r.id, r.model)));
      try {
        const { stopped } = await runEvaluation(engine, record.examples, record.models, record.options, {
          kept,
          onResult: async (r) => { await lab.putResult({ ...r, runId: record.id }); onProgress(id, { done: -1, total: record.examples.length, example: r.id }, r); },
          onProgress: (pr) => onProgress(id, pr),
        }, signal);
        await lab.putRun({ ...record, status: stopped ? 'stopped' : 'done' });
        return { runId: record.id, stopped };
      } catch (e) {
        await lab.putRun({ ...record, status: 'stopped' });
        throw e;
      }
    },

    evalRuns: () => listRuns(),

    async evalResults({ runId }: { runId: string }) {
      const r = await run(runId);
      const results = await lab.results(runId);
      const reviews = (await lab.reviews(runId)).map((v) => ({
        id: v.id, finished: v.finished, votes: v.votes.length, pairs: v.pairs.length,
        // Names and tallies only for finished reviews: an open review stays blind.
        tally: v.finished ? tally(v.votes) : null, models: v.finished ? v.models : null,
      }));
      return { summary: await summaryOf(r, results), results, examples: r.examples, reviews };
    },

    async evalDelete({ runId }: { runId: string }) {
      await lab.deleteRun(runId);
      return listRuns();
    },

    async evalExport({ runId, as }: { runId: string; as: 'json' | 'csv' }) {
      if (as === 'json') return evalResultsJson(lab, runId);
      const r = await run(runId);
      const results = await lab.results(runId);
      const head = ['id', 'model', 'rougeL', 'loss', 'loss_tokens', 'prediction_tokens', 'stop_reason', 'prediction', 'reference'];
      const rows = results.map((x) => [x.id, x.model, x.rougeL, x.nll !== undefined && x.lossTokens ? x.nll / x.lossTokens : '', x.lossTokens, x.predictionTokens, x.stopReason, x.prediction, x.reference]);
      return { name: `${safeFileName(r.name)}.csv`, blob: new Blob([[head, ...rows].map((row) => row.map(csvCell).join(',')).join('\n') + '\n'], { type: 'text/csv' }) };
    },

    async evalImport({ file }: { file: File }) {
      let parsed: { format?: unknown; run?: EvalRunRecord; results?: ExampleResult[] };
      try {
        parsed = JSON.parse(await file.text());
      } catch {
        throw new FileFormatError(`${file.name} is not valid JSON: import an evaluation exported as JSON.`);
      }
      if (parsed.format !== RESULTS_FORMAT || !parsed.run || !Array.isArray(parsed.results)) throw new FileFormatError(`${file.name} is not a LoRA Lab evaluation export (no "format": "${RESULTS_FORMAT}").`);
      const r = parsed.run;
      if (typeof r.id !== 'string' || !Array.isArray(r.examples) || !Array.isArray(r.models)) throw new FileFormatError(`${file.name}: the run record is incomplete.`);
      await lab.putRun({ ...r, status: r.status === 'running' ? 'stopped' : r.status });
      for (const x of parsed.results) {
        if (typeof x?.id !== 'string' || typeof x.model !== 'string' || typeof x.prediction !== 'string') throw new FileFormatError(`${file.name}: a result lacks its id, model or prediction.`);
        await lab.putResult({ ...x, runId: r.id });
      }
      return { runId: r.id };
    },

    async reviewStart({ runId, models, seed }: { runId: string; models: [string, string]; seed?: number }) {
      const r = await run(runId);
      const results = await lab.results(runId);
      const { pairs, keys } = makePairs(results, models[0], models[1], seed ?? Date.now() >>> 0);
      if (!pairs.length) throw new InvalidArgumentError('These two models have no example both answered: run the evaluation first.');
      const rec: ReviewRecord = { id: `review-${Date.now().toString(36)}`, runId, createdAt: Date.now(), models, pairs, keys, votes: [], finished: false };
      await lab.putReview(rec);
      return { reviewId: rec.id, pairs, prompts: prompts(r, pairs) };
    },

    async reviewOpen({ reviewId }: { reviewId: string }) {
      const v = await review(reviewId);
      const r = await run(v.runId);
      return { reviewId, pairs: v.pairs, prompts: prompts(r, v.pairs), voted: v.votes.map((x) => ({ pairId: x.pairId, criterion: x.criterion, verdict: x.verdict })), finished: v.finished };
    },

    async reviewVote({ reviewId, pairId, criterion, verdict }: { reviewId: string; pairId: string; criterion: Criterion; verdict: Verdict }) {
      if (!CRITERIA.includes(criterion) || !['A', 'tie', 'B'].includes(verdict)) throw new InvalidArgumentError('A vote is A, tie or B on helpfulness, honesty or harmlessness.');
      // Read and written in one transaction: votes cast in quick succession (keys 1, 2, 3) all count.
      const votes = await lab.updateReview(reviewId, (v) => {
        if (v.finished) throw new InvalidArgumentError('This review is finished; start a new one to vote again.');
        const key = v.keys.find((k) => k.pairId === pairId) ?? missing('pair', pairId);
        // A second vote on the same pair and criterion replaces the first.
        const next = [...v.votes.filter((x) => !(x.pairId === pairId && x.criterion === criterion)), { pairId, exampleId: key.exampleId, sides: key.sides, criterion, verdict }];
        return { next: { ...v, votes: next }, result: next.length };
      });
      return { votes: votes ?? missing('review', reviewId) };
    },

    async reviewFinish({ reviewId }: { reviewId: string }) {
      const v = await lab.updateReview(reviewId, (r) => ({ next: { ...r, finished: true }, result: r })) ?? missing('review', reviewId);
      return { tally: tally(v.votes), models: v.models, keys: v.keys };
    },

    async reviewExport({ reviewId, as }: { reviewId: string; as: 'json' | 'csv' | 'paper' | 'tally' }) {
      const v = await review(reviewId);
      if (!v.finished) throw new InvalidArgumentError('Finish the review first: exports name the models.');
      const base = safeFileName(`${v.models.join('-vs-')}-${v.id}`);
      if (as === 'json') return { name: `${base}.votes.json`, blob: new Blob([votesToJson(v.votes)], { type: 'application/json' }) };
      if (as === 'csv') return { name: `${base}.votes.csv`, blob: new Blob([votesToCsv(v.votes)], { type: 'text/csv' }) };
      if (as === 'tally') return { name: `${base}.tally.csv`, blob: new Blob([tallyToCsv(tally(v.votes))], { type: 'text/csv' }) };
      const r = await run(v.runId);
      const instructions = new Map(r.examples.map((e) => [e.id, e.input ? `${e.instruction}\n\n${e.input}` : e.instruction]));
      return { name: `${base}.comparison.json`, blob: json(toPaperFormat(v.votes, await lab.results(v.runId), instructions)) };
    },

    async reviewImport({ runId, file }: { runId: string; file: File }) {
      await run(runId);
      const votes = votesFromJson(await file.text());
      const models = [...new Set(votes.flatMap((x) => x.sides))];
      if (models.length !== 2) throw new FileFormatError(`${file.name} holds votes on ${models.length} models; a review compares two.`);
      const keys = [...new Map(votes.map((x) => [x.pairId, { pairId: x.pairId, exampleId: x.exampleId, sides: x.sides }])).values()];
      const rec: ReviewRecord = { id: `review-${Date.now().toString(36)}`, runId, createdAt: Date.now(), models: models as [string, string], pairs: [], keys, votes, finished: true };
      await lab.putReview(rec);
      return { reviewId: rec.id };
    },
  };
}

function missing(what: string, id: string): never {
  throw new InvalidArgumentError(`No ${what} "${id}" is kept: it may have been deleted in another tab.`);
}
