// The worker's LoRA training requests: preview a dataset as the model will see it, the memory a run would take,
// train (new or continued from a saved run), pause and resume, and the saved runs.

import { parseDataset } from '../data/records.js';
import { InvalidArgumentError } from '../errors.js';
import { sameModel } from '../model/fingerprint.js';
import type { WorkerContext } from './context.js';
import type { Handlers } from './protocol.js';
import { keepAdapter } from './storage.js';

type TrainingRequest = 'previewDataset' | 'train' | 'trainMemory' | 'pauseTraining' | 'listCheckpoints' | 'deleteCheckpoint';

export function trainingHandlers(ctx: WorkerContext): Handlers<TrainingRequest> {
  return {
    trainMemory: async (_id, p) => ctx.loaded().trainMemory(p.config),
    async previewDataset(_id, p) {
      const records = await parseDataset(await ctx.datasetBytes(p.dataset), ctx.datasetName(p.dataset));
      return ctx.loaded().previewDataset(records, p.format);
    },
    async train(id, p, signal) {
      const e = ctx.loaded();
      const saved = p.resumeFrom ? await ctx.store().getCheckpoint(p.resumeFrom) : undefined;
      if (p.resumeFrom && !saved) throw new InvalidArgumentError(`No checkpoint named "${p.resumeFrom}".`);
      // A new run never replaces a saved one (its checkpoint and optimizer state would be lost): it is continued or renamed.
      if (!p.resumeFrom && ctx.env.lab && await ctx.env.lab.getCheckpoint(p.name)) {
        throw new InvalidArgumentError(`A saved run is named "${p.name}": continue it, or give the new run another name.`, { field: 'name' });
      }
      if (saved && !sameModel({ model: saved.checkpoint.baseModel, fingerprint: saved.checkpoint.baseFingerprint }, e.info!)) {
        throw new InvalidArgumentError(`Run "${saved.name}" was trained on ${saved.checkpoint.baseModel}, a model with other weights than ${e.info!.label}: load that model first.`);
      }
      const dataset = saved?.dataset ?? await ctx.keepDataset(p.dataset);
      const format = saved?.format ?? p.format;
      const maxRecords = saved ? saved.maxRecords : p.maxRecords;
      const records = await parseDataset(await ctx.datasetBytes(dataset), ctx.datasetName(dataset));
      const pause = ctx.pausable(id);
      try {
        const info = await e.train({ name: saved?.name ?? p.name, records, format, config: saved ? {} : p.config, maxRecords, resume: saved?.checkpoint }, {
          onStep: (metrics) => ctx.post({ id, type: 'trainStep', metrics }),
          onEval: (step, loss) => ctx.post({ id, type: 'trainEval', step, loss }),
          onCheckpoint: async (checkpoint) => {
            if (!ctx.env.lab) return;
            await ctx.env.lab.putCheckpoint({ name: checkpoint.name, checkpoint, dataset, format, maxRecords, totalSteps: checkpoint.totalSteps, savedAt: Date.now() });
            ctx.post({ id, type: 'checkpoint', step: checkpoint.step });
          },
        }, { signal, waitWhilePaused: pause.wait });
        if (ctx.env.lab) await keepAdapter(ctx.env.lab, info.name, e.exportAdapter(info.name), info.baseModel, 'trained here', e.info?.fingerprint);
        return info;
      } finally {
        pause.dispose();
      }
    },
    async pauseTraining(_id, p) {
      return { paused: ctx.setPaused(p.target, p.paused) && p.paused };
    },
    async listCheckpoints() {
      return ctx.env.lab ? ctx.env.lab.listCheckpoints() : [];
    },
    async deleteCheckpoint(_id, p) {
      await ctx.store().deleteCheckpoint(p.name);
      return ctx.store().listCheckpoints();
    },
  };
}
