// The worker's reward-model requests: an ONNX reward model (onnxruntime-web, loaded on first use so the app's own
// bundle stays small) on its WebGPU execution provider, with wasm as the fallback (which one ran is reported). It scores
// answers given by the page, or every answer of a kept evaluation (each score is kept with its result).

import { userMessage } from '../tokenizer/alpaca.js';
import { InvalidArgumentError } from '../errors.js';
import type { ModelFiles } from '../hub/files.js';
import type { ModelSource } from '../hub/source.js';
import type { EvalProgress } from '../eval/run.js';
import { RewardModel, type OrtModule, type Provider, type RewardModelInfo, type RewardScore } from '../reward/onnx-reward.js';
import type { LabStore } from '../store/kept.js';
import type { DownloadProgress } from '../store/progress.js';
import type { Engine, GenerateRequest } from '../engine.js';
import { rankSamples, sampleColumns, type BestOfColumn, type Sample } from '../reward/best-of.js';
import type { Ranked } from '../reward/rank.js';

export interface RewardRequestMap {
  rewardLoad: { request: { source: ModelSource; providers?: Provider[] }; result: RewardModelInfo };
  rewardScore: { request: { items: { question: string; answer: string }[] }; result: RewardScore[] };
  /** Scores every answer of an evaluation run; results keep their score. */
  rewardScoreRun: { request: { runId: string }; result: { scored: number } };
  rewardUnload: { request: Record<string, never>; result: { unloaded: boolean } };
  /** n samples per column from the loaded model, ranked within each column by the loaded reward model. */
  bestOf: { request: { request: GenerateRequest; columns: BestOfColumn[]; n: number }; result: { columns: Ranked<Sample>[][]; rewardModel: string } };
}

export interface RewardEnv {
  lab: LabStore | null;
  engine: () => Engine;
  ort: () => Promise<OrtModule>;
  open: (source: ModelSource, onProgress: (p: DownloadProgress) => void, signal: AbortSignal) => Promise<ModelFiles>;
}

export function rewardHandlers(env: RewardEnv, onProgress: (id: number, p: EvalProgress) => void, onDownload: (id: number, p: DownloadProgress) => void) {
  let model: RewardModel | null = null;
  const loaded = (): RewardModel => {
    if (!model) throw new InvalidArgumentError('No reward model is loaded: load one first (an ONNX text classifier with one output).');
    return model;
  };

  return {
    async rewardLoad(id: number, p: RewardRequestMap['rewardLoad']['request'], signal: AbortSignal): Promise<RewardModelInfo> {
      const files = await env.open(p.source, (d) => onDownload(id, d), signal);
      const ort = await env.ort();
      const next = await RewardModel.load(ort, files, p.providers ?? ['webgpu', 'wasm']);
      // The new model is ready: only now is the old one let go (a failed load leaves it loaded).
      await model?.dispose();
      model = next;
      return next.info;
    },
    async rewardScore(id: number, p: RewardRequestMap['rewardScore']['request'], signal: AbortSignal): Promise<RewardScore[]> {
      const m = loaded();
      const out: RewardScore[] = [];
      for (const [i, it] of p.items.entries()) {
        if (signal.aborted) break;
        out.push(await m.score(it.question, it.answer));
        onProgress(id, { done: i + 1, total: p.items.length, example: '' });
      }
      return out;
    },
    async rewardScoreRun(id: number, p: { runId: string }, signal: AbortSignal): Promise<{ scored: number }> {
      const m = loaded();
      if (!env.lab) throw new InvalidArgumentError('Nothing is kept in this browser: there is no evaluation to score.');
      const run = await env.lab.getRun(p.runId);
      if (!run) throw new InvalidArgumentError(`No evaluation "${p.runId}" is kept: it may have been deleted in another tab.`);
      const questions = new Map(run.examples.map((e) => [e.id, userMessage(e.instruction, e.input)]));
      const results = await env.lab.results(run.id);
      let scored = 0;
      for (const r of results) {
        if (signal.aborted) break;
        const s = await m.score(questions.get(r.id) ?? r.id, r.prediction);
        await env.lab.putResult({ ...r, reward: s.score, rewardModel: m.info.label });
        scored++;
        onProgress(id, { done: scored, total: results.length, example: r.id });
      }
      return { scored };
    },
    async bestOf(id: number, p: RewardRequestMap['bestOf']['request'], signal: AbortSignal): Promise<RewardRequestMap['bestOf']['result']> {
      const m = loaded();
      const engine = env.engine();
      if (!p.request.prompt?.trim()) throw new InvalidArgumentError('Best-of needs a typed prompt: the reward model scores answers to it.');
      const question = userMessage(p.request.prompt, p.request.input ?? '');
      const samples = await sampleColumns(engine, engine.promptIds(p.request), p.columns, p.n, p.request, signal,
        (done, total) => onProgress(id, { done, total, example: 'sampling' }));
      const columns = await rankSamples(samples, async (text) => (await m.score(question, text)).score);
      return { columns, rewardModel: m.info.label };
    },
    async rewardUnload(): Promise<{ unloaded: boolean }> {
      const had = model !== null;
      await model?.dispose();
      model = null;
      return { unloaded: had };
    },
  };
}
