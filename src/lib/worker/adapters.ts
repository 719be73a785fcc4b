// The worker's adapter requests: load one beside the base (from what is kept, a folder, a repo, a URL, a built-in, a
// saved run's checkpoint), remove it, export it as PEFT files, a .zip, merged into the base, or as GGUF.

import { InvalidArgumentError } from '../errors.js';
import { safeFileName } from '../hub/paths.js';
import { adapterCard } from '../lora/model-card.js';
import { readPeftAdapter } from '../lora/peft.js';
import { zipBlob } from '../store/archive.js';
import type { WorkerContext } from './context.js';
import type { Handlers } from './protocol.js';
import { keepAdapter } from './storage.js';

type AdapterRequest = 'loadAdapter' | 'removeAdapter' | 'exportAdapter' | 'exportAdapterZip' | 'exportAdapterFolder' | 'exportMerged' | 'exportGguf' | 'loadCheckpointAdapter';

/** An adapter's PEFT folder: adapter_config.json, adapter_model.safetensors and a README model card. */
export async function adapterFolder(ctx: WorkerContext, name: string): Promise<{ folder: string; files: [string, Uint8Array][] }> {
  const e = ctx.loaded();
  const { config, safetensors } = e.exportAdapter(name);
  const info = e.adapters.find((a) => a.name === name)!;
  const folder = safeFileName(name, 'adapter');
  // A run trained here (its last checkpoint has these weights' name) tells how it was trained in the card.
  const run = await ctx.env.lab?.getCheckpoint(name).catch(() => undefined);
  const enc = new TextEncoder();
  return { folder, files: [['adapter_config.json', enc.encode(config)], ['adapter_model.safetensors', safetensors], ['README.md', enc.encode(adapterCard(info, folder, run))]] };
}

/** The base with the adapter merged in, as a Hugging Face model folder with a README: loads here and in transformers. */
export async function mergedFolder(ctx: WorkerContext, name: string, strength: number): Promise<{ folder: string; files: Map<string, Uint8Array> }> {
  const e = ctx.loaded();
  const files = await e.exportMerged(name, strength);
  const folder = `${safeFileName(name, 'adapter')}-merged`;
  const base = e.info!.modelId;
  const readme = `# ${folder}\n\n${base} with the LoRA adapter "${name}" merged into its weights at strength ${strength}, exported from LoRA Lab.\n\n` +
    `Load it with transformers (\`AutoModelForCausalLM.from_pretrained("${folder}")\`), or drop this .zip on LoRA Lab's model panel (Local folder).\n`;
  files.set('README.md', new TextEncoder().encode(readme));
  return { folder, files };
}

export function adapterHandlers(ctx: WorkerContext): Handlers<AdapterRequest> {
  return {
    async loadAdapter(id, p, signal) {
      const e = ctx.loaded();
      if (p.source.kind === 'kept') {
        const kept = await ctx.store().getAdapter(p.source.name);
        if (!kept) throw new InvalidArgumentError(`No adapter named "${p.source.name}" is kept in this browser: load it from its folder, repo or URL.`);
        return e.addAdapter(readPeftAdapter(kept.name, JSON.parse(kept.config), kept.safetensors, undefined, e.runner.cfg));
      }
      const builtin = p.source.kind === 'builtin' ? p.source.name ?? '' : '';
      const files = await ctx.openFiles(p.source, 'adapter', (progress) => ctx.post({ id, type: 'progress', progress }), signal, { ...ctx.env, builtin: () => ctx.env.builtinAdapter(builtin) });
      const info = await e.loadAdapter(files, p.name);
      if (ctx.env.lab && p.source.kind !== 'builtin') await keepAdapter(ctx.env.lab, info.name, e.exportAdapter(info.name), info.baseModel, files.label);
      return info;
    },
    async removeAdapter(_id, p) {
      const e = ctx.loaded();
      e.removeAdapter(p.name);
      return e.adapters;
    },
    async exportAdapter(_id, p) {
      return ctx.loaded().exportAdapter(p.name);
    },
    async exportAdapterZip(_id, p) {
      const { folder, files } = await adapterFolder(ctx, p.name);
      return { name: `${folder}.zip`, blob: await zipBlob(new Map(files.map(([n, b]) => [`${folder}/${n}`, b]))) };
    },
    async exportAdapterFolder(_id, p) {
      return adapterFolder(ctx, p.name);
    },
    async exportMerged(_id, p) {
      const { folder, files } = await mergedFolder(ctx, p.name, p.strength);
      return { name: `${folder}.zip`, blob: await zipBlob(new Map([...files].map(([n, b]) => [`${folder}/${n}`, b]))) };
    },
    async exportGguf(_id, p) {
      const e = ctx.loaded();
      if (p.type === 'lora') {
        if (!p.adapter) throw new InvalidArgumentError('A GGUF LoRA file is made of an adapter: pick one on the shelf.');
        return { name: `${safeFileName(p.adapter, 'adapter')}-lora.gguf`, blob: new Blob(e.exportAdapterGguf(p.adapter) as BlobPart[]) };
      }
      const stem = p.adapter ? `${safeFileName(p.adapter, 'adapter')}-merged` : safeFileName(e.info!.modelId.split('/').pop() ?? 'model', 'model');
      return { name: `${stem}-${p.type}.gguf`, blob: new Blob(await e.exportGguf(p.adapter, p.type, p.strength) as BlobPart[]) };
    },
    async loadCheckpointAdapter(_id, p) {
      const saved = await ctx.store().getCheckpoint(p.name);
      if (!saved) throw new InvalidArgumentError(`No checkpoint named "${p.name}".`);
      const adapter = readPeftAdapter(`${saved.name}@${saved.checkpoint.step}`, JSON.parse(saved.checkpoint.peft.config), saved.checkpoint.peft.safetensors);
      return ctx.loaded().addAdapter(adapter);
    },
  };
}
