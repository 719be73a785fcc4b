// The worker's LoRA training requests: preview a dataset as the model will see it, the memory a run would take,
// train (new or continued from a saved run; instruction tuning, or preference tuning on pairs or on the votes kept
// here), pause and resume, and the saved runs.

import { parseDataset } from '../data/records.js';
import { InvalidArgumentError } from '../errors.js';
import { sameModel } from '../model/fingerprint.js';
import type { WorkerContext } from './context.js';
import type { Handlers } from './protocol.js';
import { keepAdapter } from './storage.js';
import { keptVotes } from './reward.js';
import { parsePreferenceData } from '../data/preference-data.js';
import type { Criterion } from '../eval/votes.js';
import type { DatasetSource } from '../store/checkpoints.js';
import type { StepMetrics } from '../training/loop.js';
import type { PreferenceCheckpoint } from '../training/preference-trainer.js';
import type { Checkpoint } from '../training/trainer.js';

/** The votes on `criterion` of the reviews kept here, as a comparison-data file named for them. */
async function votesDataset(ctx: WorkerContext, criterion: Criterion): Promise<DatasetSource> {
  const records = ctx.env.lab ? await keptVotes(ctx.env.lab, criterion) : [];
  if (!records.length) throw new InvalidArgumentError(`There are no votes on ${criterion} kept here: vote in Evaluate's blind review first, or pick a file of pairs.`);
  return { kind: 'file', name: `votes-${criterion}-${new Date().toISOString().slice(0, 10)}.json`, bytes: new TextEncoder().encode(JSON.stringify(records)) };
}

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
      const preference = saved ? saved.checkpoint.preference : p.preference;
      // The votes of the reviews kept here, kept as a comparison-data file: a saved run continues on the same pairs.
      const source = !saved && p.preference?.votes ? await votesDataset(ctx, p.preference.votes) : p.dataset;
      const dataset = saved?.dataset ?? await ctx.keepDataset(source);
      const format = saved?.format ?? p.format;
      const maxRecords = saved ? saved.maxRecords : p.maxRecords;
      const bytes = await ctx.datasetBytes(dataset);
      const pause = ctx.pausable(id);
      const onCheckpoint = async (checkpoint: Checkpoint) => {
        if (!ctx.env.lab) return;
        await ctx.env.lab.putCheckpoint({ name: checkpoint.name, checkpoint, dataset, format, maxRecords, totalSteps: checkpoint.totalSteps, savedAt: Date.now() });
        ctx.post({ id, type: 'checkpoint', step: checkpoint.step });
      };
      const onStep = (metrics: StepMetrics) => ctx.post({ id, type: 'trainStep', metrics });
      try {
        const info = preference
          ? await e.trainPreference({
            name: saved?.name ?? p.name, records: parsePreferenceData(new TextDecoder().decode(bytes), ctx.datasetName(dataset)).records.slice(0, maxRecords || undefined), format,
            config: saved ? {} : p.config, objective: preference.objective, preference: saved ? {} : p.preference?.settings,
            referenceAdapter: saved ? saved.checkpoint.preference?.referenceAdapter : p.preference?.referenceAdapter, startFrom: saved ? null : p.preference?.startFrom,
            resume: saved?.checkpoint.preference ? saved.checkpoint as PreferenceCheckpoint : undefined,
          }, {
            onStep, onCheckpoint,
            onEval: (step, loss, metrics) => ctx.post({ id, type: 'trainEval', step, loss, accuracy: metrics['rewards/accuracies'] }),
          }, { signal, waitWhilePaused: pause.wait })
          : await e.train({ name: saved?.name ?? p.name, records: await parseDataset(bytes, ctx.datasetName(dataset)), format, config: saved ? {} : p.config, maxRecords, resume: saved?.checkpoint }, {
            onStep, onCheckpoint,
            onEval: (step, loss) => ctx.post({ id, type: 'trainEval', step, loss }),
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
