// The worker's reward-model requests: an ONNX reward model (onnxruntime-web, loaded on first use so the app's own
// bundle stays small) on its WebGPU execution provider, with wasm as the fallback (which one ran is reported), or a
// reward model trained on our engine (a PEFT SEQ_CLS folder: LoRA + score head, scored over the loaded base). It
// scores answers given by the page, or every answer of a kept evaluation (each score is kept with its result); and it
// trains reward models on comparison data or on the votes kept in this browser.

import { userMessage } from '../tokenizer/alpaca.js';
import { InvalidArgumentError } from '../errors.js';
import { MemoryFiles, type ModelFiles } from '../model-files.js';
import type { ModelSource } from '../hub/source.js';
import type { EvalProgress } from '../eval/run.js';
import { RewardModel, type OrtModule, type Provider, type RewardModelInfo, type RewardScore } from '../reward/onnx-reward.js';
import { EngineRewardModel, loadRewardAdapter, writeRewardAdapter } from '../reward/reward-adapter.js';
import { parseComparisonData, preferencePairs, type ComparisonRecord } from '../reward/pairs.js';
import { toPaperFormat, type Criterion } from '../eval/votes.js';
import type { DatasetSource } from '../store/checkpoints.js';
import type { TrainConfig } from '../training/train-config.js';
import type { RewardHooks } from '../training/reward-trainer.js';
import type { TrainControl } from '../training/trainer.js';
import { keepAdapter } from './storage.js';
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
  /** How many preference pairs a reward run's data holds (the Train view shows it beside "Pairs used"). */
  rewardPairs: { request: { data: RewardTrainRequest['data'] }; result: { available: number }; immediate: true };
  /**
   * Trains a reward model on the loaded base (progress as training steps and evaluations); it is kept in this browser
   * and becomes the loaded reward model.
   */
  rewardTrain: { request: RewardTrainRequest; result: { info: RewardModelInfo; pairs: { train: number; validation: number } } };
  /** n samples per column from the loaded model, ranked within each column by the loaded reward model. */
  bestOf: { request: { request: GenerateRequest; columns: BestOfColumn[]; n: number }; result: { columns: Ranked<Sample>[][]; rewardModel: string } };
}

export interface RewardTrainRequest {
  name: string;
  /** Comparison data in the paper's format (a file or a kept dataset), or the votes of the reviews kept here. */
  data: { kind: 'dataset'; dataset: DatasetSource } | { kind: 'votes'; criterion: Criterion };
  config: Partial<TrainConfig>;
  maxPairs?: number;
}

export interface RewardEnv {
  lab: LabStore | null;
  engine: () => Engine;
  ort: () => Promise<OrtModule>;
  open: (source: ModelSource, onProgress: (p: DownloadProgress) => void, signal: AbortSignal) => Promise<ModelFiles>;
  dataset: (d: DatasetSource) => Promise<{ bytes: Uint8Array; name: string }>;
  /** Training progress and pause, shared with LoRA training (the Train view's live view). */
  training: (id: number, signal: AbortSignal) => { hooks: RewardHooks; control: TrainControl; dispose: () => void };
}

/** Every vote on `criterion` of the reviews kept here, as comparison data. */
export async function keptVotes(lab: LabStore, criterion: Criterion): Promise<ComparisonRecord[]> {
  const out: ComparisonRecord[] = [];
  for (const run of await lab.listRuns()) {
    const votes = (await lab.reviews(run.id)).flatMap((r) => r.votes).filter((v) => v.criterion === criterion);
    if (!votes.length) continue;
    const instructions = new Map(run.examples.map((e) => [e.id, userMessage(e.instruction, e.input)]));
    out.push(...toPaperFormat(votes, await lab.results(run.id), instructions));
  }
  return out;
}

export function rewardHandlers(env: RewardEnv, onProgress: (id: number, p: EvalProgress) => void, onDownload: (id: number, p: DownloadProgress) => void) {
  let model: RewardModel | EngineRewardModel | null = null;
  const loaded = (): RewardModel | EngineRewardModel => {
    if (!model) throw new InvalidArgumentError('No reward model is loaded: load one first (an ONNX text classifier with one output, or one trained here).');
    if (model instanceof EngineRewardModel && model.base !== env.engine().runner.model) {
      throw new InvalidArgumentError(`The reward model ${model.info.label} was set up on a model that is no longer loaded: load it again (it scores over its base model).`);
    }
    return model;
  };
  /** A reward model trained here (kept with the adapters), as its PEFT files. */
  const keptFiles = async (name: string): Promise<ModelFiles> => {
    const a = await env.lab?.getAdapter(name);
    if (!a) throw new InvalidArgumentError(`No reward model named "${name}" is kept in this browser: it may have been deleted in another tab.`);
    return new MemoryFiles(name, new Map([['adapter_config.json', new TextEncoder().encode(a.config)], ['adapter_model.safetensors', a.safetensors]]));
  };
  const use = async (next: RewardModel | EngineRewardModel) => {
    // The new model is ready: only now is the old one let go (a failed load leaves it loaded).
    if (model !== next) await model?.dispose();
    model = next;
  };

  /** The comparison records of a reward run's data: the votes kept here on one criterion, or a file. */
  const comparisonRecords = async (data: RewardTrainRequest['data']): Promise<ComparisonRecord[]> => {
    if (data.kind === 'votes') {
      if (!env.lab) throw new InvalidArgumentError('Nothing is kept in this browser: there are no votes to train on.');
      return keptVotes(env.lab, data.criterion);
    }
    const d = await env.dataset(data.dataset);
    return parseComparisonData(new TextDecoder().decode(d.bytes), d.name);
  };

  return {
    async rewardPairs(p: { data: RewardTrainRequest['data'] }): Promise<{ available: number }> {
      return { available: preferencePairs(await comparisonRecords(p.data), 0).available };
    },
    async rewardLoad(id: number, p: RewardRequestMap['rewardLoad']['request'], signal: AbortSignal): Promise<RewardModelInfo> {
      const files = p.source.kind === 'kept' ? await keptFiles(p.source.name) : await env.open(p.source, (d) => onDownload(id, d), signal);
      if (await files.bytes('adapter_config.json', true)) {
        // A reward model trained with LoRA Lab (or PEFT): LoRA + score head over the loaded base.
        const engine = env.engine();
        const next = engine.rewardScorer(await loadRewardAdapter(files, engine.runner.cfg.hiddenSize), files.label);
        await use(next);
        return next.info;
      }
      const ort = await env.ort();
      const next = await RewardModel.load(ort, files, p.providers ?? ['webgpu', 'wasm']);
      await use(next);
      return next.info;
    },
    async rewardTrain(id: number, p: RewardTrainRequest, signal: AbortSignal): Promise<RewardRequestMap['rewardTrain']['result']> {
      const engine = env.engine();
      const name = p.name.trim();
      if (!name) throw new InvalidArgumentError('Name the reward model.', { field: 'name' });
      if (env.lab && await env.lab.getAdapter(name)) throw new InvalidArgumentError(`An adapter named "${name}" is kept in this browser: give the reward model another name.`, { field: 'name' });
      const records = await comparisonRecords(p.data);
      if (p.data.kind === 'votes' && !preferencePairs(records, 1).available) {
        throw new InvalidArgumentError(`No review kept here has a vote on ${p.data.criterion} that prefers one answer: vote in a blind review (Evaluate), or give a comparison-data file.`);
      }
      const t = env.training(id, signal);
      try {
        const trained = await engine.trainReward({ name, records, config: p.config, maxPairs: p.maxPairs }, t.hooks, t.control);
        const info = engine.info!;
        if (env.lab) await keepAdapter(env.lab, name, writeRewardAdapter(trained), info.modelId, 'reward model trained here', info.fingerprint, 'reward');
        const next = engine.rewardScorer(trained, name);
        await use(next);
        return { info: next.info, pairs: trained.pairs };
      } finally {
        t.dispose();
      }
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
