// The worker side of the protocol: owns the engine (through the WorkerContext), runs one GPU job at a time, cancels
// on request and turns every failure into an `error` event so nothing can take the worker down. Each feature's
// requests are handled in a module of its own (model, generation, adapters, training, storage, evaluation, judging,
// teaching, reward); this one composes them and keeps the queue.

import { InvalidArgumentError, serializeError } from '../errors.js';
import { adapterHandlers } from './adapters.js';
import { WorkerContext, type HandlerEnv } from './context.js';
import { evaluationHandlers, type EvalRequestMap } from './evaluation.js';
import { generationHandlers } from './generation.js';
import { judgingHandlers, type JudgeRequestMap } from './judging.js';
import { modelHandlers } from './model.js';
import type { Handlers, ImmediateRequest, RequestType, WorkerEvent, WorkerRequest } from './protocol.js';
import { rewardHandlers, type RewardRequestMap } from './reward.js';
import { sharingHandlers } from './sharing.js';
import { storageHandlers, type StorageRequestMap } from './storage.js';
import { teachingHandlers, type TeachRequestMap } from './teaching.js';
import { trainingHandlers } from './training.js';

export type { HandlerEnv };

/**
 * Requests that do not use the GPU: they run at once, also while a generation or a training run holds the queue.
 * The request map marks them (`immediate: true`); the compiler holds this list to exactly those.
 */
const IMMEDIATE: Record<ImmediateRequest, true> = {
  cancel: true, ping: true, stopColumn: true, pauseTraining: true, listCheckpoints: true, trainMemory: true,
  storageList: true, deleteKept: true, exportKept: true, importFile: true, saveComparison: true, setToken: true,
  evalRuns: true, evalResults: true, evalDelete: true, evalExport: true, evalImport: true,
  reviewStart: true, reviewOpen: true, reviewVote: true, reviewFinish: true, reviewExport: true, reviewImport: true,
  judgeList: true, judgeDelete: true, judgePrepare: true, judgeGet: true, judgeKeep: true,
  teachList: true, teachDelete: true, teachPrepare: true, teachGet: true, teachKeep: true, rewardPairs: true,
};

/** The handlers of the features kept in the store (storage, evaluation, judging, teaching, reward models). */
type KeptRequest = keyof StorageRequestMap | keyof EvalRequestMap | keyof JudgeRequestMap | keyof TeachRequestMap | keyof RewardRequestMap;

function keptHandlers(ctx: WorkerContext): Handlers<KeptRequest> {
  const cache = ctx.cache;
  const storage = ctx.env.lab && cache && ctx.env.estimate ? storageHandlers({ lab: ctx.env.lab, cache, estimate: ctx.env.estimate }) : null;
  const noStorage = async (): Promise<never> => ctx.store() as never;
  const evaluation = ctx.env.lab && ctx.env.builtinEvalSet
    ? evaluationHandlers({ lab: ctx.env.lab, engine: ctx.loaded, builtinEvalSet: ctx.env.builtinEvalSet, datasetBytes: ctx.datasetBytes, datasetName: ctx.datasetName }, (id, progress, result) => ctx.post({ id, type: 'evalProgress', progress, result }))
    : null;
  const ev = () => evaluation ?? (ctx.store() as never);
  const judging = ctx.env.lab ? judgingHandlers({ lab: ctx.env.lab, engine: ctx.loaded }, (id, progress) => ctx.post({ id, type: 'evalProgress', progress })) : null;
  const jd = () => judging ?? (ctx.store() as never);
  const teaching = ctx.env.lab ? teachingHandlers({ lab: ctx.env.lab, engine: ctx.loaded, datasetBytes: ctx.datasetBytes, datasetName: ctx.datasetName }, (id, progress) => ctx.post({ id, type: 'evalProgress', progress })) : null;
  const tc = () => teaching ?? (ctx.store() as never);
  const reward = rewardHandlers({
    lab: ctx.env.lab ?? null,
    engine: ctx.loaded,
    ort: ctx.env.ort ?? (async () => { throw new InvalidArgumentError('Reward models run on onnxruntime-web, which this worker was built without.'); }),
    open: (source, onProgress, signal) => ctx.openFiles(source, 'reward', onProgress, signal, {
      ...ctx.env, builtin: () => { throw new InvalidArgumentError('There is no built-in reward model: give a folder, a Hugging Face repo id or a URL of an ONNX text classifier.'); },
    }),
    dataset: async (d) => {
      const kept = await ctx.keepDataset(d);
      return { bytes: await ctx.datasetBytes(kept), name: ctx.datasetName(kept) };
    },
    training: (id, signal) => {
      const pause = ctx.pausable(id);
      return {
        hooks: {
          onStep: (metrics) => ctx.post({ id, type: 'trainStep', metrics }),
          onEval: (step, loss, accuracy) => ctx.post({ id, type: 'trainEval', step, loss, accuracy }),
        },
        control: { signal, waitWhilePaused: pause.wait },
        dispose: pause.dispose,
      };
    },
  }, (id, progress) => ctx.post({ id, type: 'evalProgress', progress }), (id, progress) => ctx.post({ id, type: 'progress', progress }));
  return {
    storageList: (_id, p) => storage ? storage.storageList(p) : noStorage(),
    deleteKept: (_id, p) => storage ? storage.deleteKept(p) : noStorage(),
    exportKept: (_id, p) => storage ? storage.exportKept(p) : noStorage(),
    importFile: (_id, p) => storage ? storage.importFile(p) : noStorage(),
    saveComparison: (_id, p) => storage ? storage.saveComparison(p) : noStorage(),
    setToken: (_id, p) => storage ? storage.setToken(p) : noStorage(),
    evalStart: (id, p, signal) => ev().evalStart(id, p, signal),
    evalRuns: () => ev().evalRuns(),
    evalResults: (_id, p) => ev().evalResults(p),
    evalDelete: (_id, p) => ev().evalDelete(p),
    evalExport: (_id, p) => ev().evalExport(p),
    evalImport: (_id, p) => ev().evalImport(p),
    reviewStart: (_id, p) => ev().reviewStart(p),
    reviewOpen: (_id, p) => ev().reviewOpen(p),
    reviewVote: (_id, p) => ev().reviewVote(p),
    reviewFinish: (_id, p) => ev().reviewFinish(p),
    reviewExport: (_id, p) => ev().reviewExport(p),
    reviewImport: (_id, p) => ev().reviewImport(p),
    judgeStart: (id, p, signal) => jd().judgeStart(id, p, signal),
    judgeList: (_id, p) => jd().judgeList(p),
    judgePrepare: (_id, p) => jd().judgePrepare(p),
    judgeGet: (_id, p) => jd().judgeGet(p),
    judgeKeep: (_id, p) => jd().judgeKeep(p),
    judgeDelete: (_id, p) => jd().judgeDelete(p),
    teachStart: (id, p, signal) => tc().teachStart(id, p, signal),
    teachList: () => tc().teachList(),
    teachPrepare: (_id, p) => tc().teachPrepare(p),
    teachGet: (_id, p) => tc().teachGet(p),
    teachKeep: (_id, p) => tc().teachKeep(p),
    teachDelete: (_id, p) => tc().teachDelete(p),
    rewardLoad: (id, p, signal) => reward.rewardLoad(id, p, signal),
    rewardScore: (id, p, signal) => reward.rewardScore(id, p, signal),
    rewardScoreRun: (id, p, signal) => reward.rewardScoreRun(id, p, signal),
    rewardUnload: () => reward.rewardUnload(),
    bestOf: (id, p, signal) => reward.bestOf(id, p, signal),
    rewardTrain: (id, p, signal) => reward.rewardTrain(id, p, signal),
    rewardPairs: (_id, p) => reward.rewardPairs(p),
  };
}

export function createHandler(env: HandlerEnv, post: (e: WorkerEvent) => void): (req: WorkerRequest) => Promise<void> {
  const ctx = new WorkerContext(env, post);
  const handlers: Handlers<RequestType> = {
    ...modelHandlers(ctx),
    ...generationHandlers(ctx),
    ...adapterHandlers(ctx),
    ...trainingHandlers(ctx),
    ...sharingHandlers(ctx),
    ...keptHandlers(ctx),
    ping: async () => ({ alive: true }),
    async cancel(_id, p) {
      const c = ctx.running.get(p.target);
      c?.abort();
      ctx.setPaused(p.target, false);
      return { cancelled: !!c };
    },
  };

  return async (req: WorkerRequest) => {
    const controller = new AbortController();
    const run = async () => {
      try {
        const h = handlers[req.type] as (id: number, p: unknown, s: AbortSignal) => Promise<unknown>;
        if (!h) throw new InvalidArgumentError(`Unknown request type "${(req as { type: string }).type}".`);
        const result = await h(req.id, req.payload, controller.signal);
        post({ id: req.id, type: 'result', result });
      } catch (e) {
        post({ id: req.id, type: 'error', error: serializeError(e) });
      } finally {
        ctx.running.delete(req.id);
      }
    };
    if (Object.hasOwn(IMMEDIATE, req.type)) return run();
    ctx.running.set(req.id, controller);
    // GPU jobs run one at a time, in order; a cancel reaches a job still waiting for its turn too.
    await ctx.turns.take(req.id);
    try {
      await run();
    } finally {
      ctx.turns.give(req.id);
    }
  };
}
