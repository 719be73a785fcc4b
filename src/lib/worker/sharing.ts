// The worker's requests that carry work out of the browser: a saved run's cluster recipe (a .zip: its data as TRL
// and Axolotl read it, the scripts and configs), and a push to the Hub of an adapter, a merged model, a kept
// dataset, an evaluation's results or a run's recipe, as one commit (hub/push.ts). A failed push keeps everything
// here as it was and says why.

import { parseDataset } from '../data/records.js';
import { InvalidArgumentError } from '../errors.js';
import { safeFileName } from '../hub/paths.js';
import { pushToHub, type PushRepoType } from '../hub/push.js';
import { sameModel } from '../model/fingerprint.js';
import { recipeData } from '../recipe/data.js';
import { buildRecipe, DEFAULT_GPUS } from '../recipe/recipe.js';
import { zipBlob } from '../store/archive.js';
import { adapterFolder, mergedFolder } from './adapters.js';
import type { WorkerContext } from './context.js';
import { evalResultsJson } from './evaluation.js';
import type { Handlers, PushSource, SharingRequestMap } from './protocol.js';

export function sharingHandlers(ctx: WorkerContext): Handlers<keyof SharingRequestMap> {
  /** A saved run's recipe files, from the loaded model (which must be the run's base) and the run's kept dataset. */
  const recipeFiles = async (name: string, gpus = DEFAULT_GPUS) => {
    const saved = await ctx.store().getCheckpoint(name);
    if (!saved) throw new InvalidArgumentError(`No saved run is named "${name}": it may have been deleted on the Storage page.`);
    const e = ctx.loaded();
    const cp = saved.checkpoint;
    if (!sameModel({ model: cp.baseModel, fingerprint: cp.baseFingerprint }, e.info!)) {
      throw new InvalidArgumentError(`Run "${name}" was trained on ${cp.baseModel}, not on ${e.info!.label}: load that model first (its tokenizer makes the recipe's data).`);
    }
    const dataFile = ctx.datasetName(saved.dataset);
    const records = await parseDataset(await ctx.datasetBytes(saved.dataset), dataFile);
    const data = recipeData(e.tokenizer, e.trainingEos, { records, format: saved.format, maxRecords: saved.maxRecords }, cp.config);
    const files = buildRecipe({
      name, baseModel: cp.baseModel ?? e.info!.modelId, baseFingerprint: cp.baseFingerprint, config: cp.config, format: saved.format,
      totalSteps: cp.totalSteps, dataFile, maxRecords: saved.maxRecords, examples: { train: data.train.length, validation: data.validation.length },
    }, data, gpus);
    return { folder: `${safeFileName(name, 'run')}-recipe`, files };
  };

  /** The files of a push and the kind of repo they go to. */
  const pushFiles = async (what: PushSource): Promise<{ files: Map<string, Uint8Array | Blob>; type: PushRepoType; label: string }> => {
    if (what.kind === 'adapter') return { files: new Map((await adapterFolder(ctx, what.name)).files), type: 'model', label: `adapter ${what.name}` };
    if (what.kind === 'merged') return { files: (await mergedFolder(ctx, what.name, what.strength)).files, type: 'model', label: `${what.name} merged into its base` };
    if (what.kind === 'recipe') return { files: (await recipeFiles(what.name, what.gpus)).files, type: 'model', label: `the cluster recipe of ${what.name}` };
    if (what.kind === 'evaluation') {
      const r = await evalResultsJson(ctx.store(), what.runId);
      return { files: new Map([[r.name, r.blob]]), type: 'dataset', label: `evaluation ${r.name}` };
    }
    const kept = await ctx.store().getDataset(what.name);
    if (!kept) throw new InvalidArgumentError(`No dataset named "${what.name}" is kept in this browser: it may have been deleted on the Storage page.`);
    return { files: new Map([[safeFileName(what.name, 'dataset'), kept.bytes]]), type: 'dataset', label: `dataset ${what.name}` };
  };

  return {
    async exportRecipe(_id, p) {
      const { folder, files } = await recipeFiles(p.name, p.gpus);
      return { name: `${folder}.zip`, blob: await zipBlob(new Map([...files].map(([n, b]) => [`${folder}/${n}`, b]))) };
    },
    async pushToHub(_id, p, signal) {
      const token = p.token?.trim() || (ctx.hfEndpoint === undefined ? await ctx.env.lab?.getSetting<string>('hfToken') : undefined);
      if (!token) throw new InvalidArgumentError('Pushing needs a Hugging Face token with write access: paste one (it is kept in this browser for huggingface.co only).', { field: 'token' });
      const { files, type, label } = await pushFiles(p.what);
      return pushToHub({
        endpoint: ctx.hfEndpoint ?? 'https://huggingface.co', repo: p.repo.trim(), type, token, files, signal,
        private: p.private, message: p.message?.trim() || `Upload ${label} from LoRA Lab`,
      });
    },
  };
}
