// The worker's storage requests: what is kept (models, adapters, datasets, runs, comparisons) with sizes against the
// quota; delete; export as files (a model or adapter as a ZIP, a dataset as JSON or JSON Lines, a run as its
// checkpoint files in a ZIP, a comparison as JSON); import the same files back, and model folders zipped (a merged model
// exported here) as kept models.

import { datasetFile, parseDataset } from '../data/records.js';
import { conversationJson } from '../chat/conversation.js';
import { modelToGguf, type GgufExportType } from '../formats/gguf-export.js';
import { AdapterError, FileFormatError, InvalidArgumentError } from '../errors.js';
import { safeBaseName, safeFileName } from '../hub/paths.js';
import { parsePeftConfig, readPeftAdapter } from '../lora/peft.js';
import { importModelFolder, isModelFolder } from '../store/folder-import.js';
import { BlobReader, ZipReader } from '@zip.js/zip.js';
import { exportSnapshot, importSnapshot, readSmallZip, SNAPSHOT_MANIFEST, writeZip, type ZipSource } from '../store/archive.js';
import type { BlobStore } from '../store/blobs.js';
import type { Snapshot } from '../store/snapshot-catalog.js';
import type { KeptAdapter, KeptComparison, KeptDataset, LabStore } from '../store/kept.js';
import type { ModelCache } from '../store/model-cache.js';
import type { Estimate } from '../store/quota.js';
import type { CheckpointSummary } from '../store/checkpoints.js';
import { checkpointFiles, readCheckpointFiles } from '../training/checkpoint-files.js';
import { MemoryFiles } from '../model-files.js';

export type KeptKind = 'snapshot' | 'adapter' | 'dataset' | 'run' | 'comparison' | 'evaluation' | 'conversation';

export interface StorageListing {
  snapshots: Snapshot[];
  adapters: Omit<KeptAdapter, 'safetensors' | 'config'>[];
  datasets: Omit<KeptDataset, 'bytes'>[];
  runs: CheckpointSummary[];
  comparisons: KeptComparison[];
  /** Evaluations (their answers, blind votes and judge reviews go with them). */
  evaluations: { id: string; name: string; setLabel: string; examples: number; models: number; votes: number; status: string; createdAt: number }[];
  /** Chat conversations (the Chat view keeps them; listed here to see, export and delete with the rest). */
  conversations: { id: string; title: string; turns: number; bytes: number; updatedAt: number }[];
  /** Bytes of unfinished downloads (resumable). */
  partialBytes: number;
  estimate: Estimate | null;
  /** Where large files live: 'opfs' or 'idb'. */
  backend: string;
}

export interface StorageRequestMap {
  storageList: { request: Record<string, never>; result: StorageListing; immediate: true };
  deleteKept: { request: { kind: KeptKind; id: string }; result: StorageListing; immediate: true };
  /** `gguf`: a kept model as one GGUF file of that type (for llama.cpp, Ollama, LM Studio) instead of its archive. */
  exportKept: { request: { kind: KeptKind; id: string; as?: 'json' | 'jsonl'; gguf?: GgufExportType }; result: { name: string; blob: Blob }; immediate: true };
  importFile: { request: { file: File }; result: { kind: KeptKind; id: string }; immediate: true };
  saveComparison: { request: KeptComparison; result: number; immediate: true };
  setToken: { request: { token: string | null }; result: { saved: boolean }; immediate: true };
}

export interface StorageEnv {
  cache: () => Promise<ModelCache>;
  lab: LabStore;
  estimate: () => Promise<Estimate | null>;
}

/** Adapters and datasets imported as files are small enough to hold in memory; models stream. */
const MAX_ADAPTER_ZIP = 1 << 30;


/** A kept model (its safetensors, config and tokenizer files) as one GGUF file of `type`. */
async function keptModelGguf(cache: ModelCache, s: Snapshot, type: GgufExportType): Promise<{ name: string; blob: Blob }> {
  if (s.kind !== 'model') throw new InvalidArgumentError(`${s.repo} is not a model: only models export as GGUF here (adapters do from the adapter shelf, over their base).`);
  const kept = cache.files(s);
  const files = new Map<string, Uint8Array>();
  for (const f of s.files) if (/\.safetensors$|^(config|tokenizer|tokenizer_config)\.json$|^chat_template\.jinja$/.test(f.path)) files.set(f.path, (await kept.bytes(f.path))!);
  return { name: `${safeFileName(s.repo.split('/').pop() ?? 'model')}-${type}.gguf`, blob: new Blob(modelToGguf(files, type, s.repo) as BlobPart[]) };
}

/** Streams a ZIP into the store under a scratch key and hands back the finished file (disk-backed in OPFS). */
async function zipToBlob(store: BlobStore, name: string, entries: ZipSource[] | ((out: WritableStream<Uint8Array>) => Promise<unknown>)): Promise<Blob> {
  const key = `exports/${name}`;
  // Only the latest export is kept (the page has read earlier ones by now): exports never pile up unseen.
  for (const b of await store.list()) if (b.key.startsWith('exports/')) await store.delete(b.key);
  const writer = await store.append(key, true);
  const out = new WritableStream<Uint8Array>({
    write: (c) => writer.write(c),
    close: () => writer.close(),
    abort: () => writer.close(),
  });
  try {
    if (typeof entries === 'function') await entries(out);
    else await writeZip(entries, out);
  } catch (e) {
    await store.discard(key);
    throw e;
  }
  await store.commit(key);
  const file = 'file' in store ? await (store as BlobStore & { file(k: string): Promise<File | null> }).file(key) : null;
  if (file) return file;
  const chunks: Uint8Array[] = [];
  for await (const c of (await store.open(key))!.stream) chunks.push(c);
  return new Blob(chunks as BlobPart[], { type: 'application/zip' });
}

const bytesEntry = (name: string, b: Uint8Array): ZipSource => ({ name, open: () => (async function* () { yield b; })() });

/** Everything kept, for the Storage page: models, adapters, datasets, runs, comparisons, evaluations, conversations. */
async function storageListing(env: StorageEnv): Promise<StorageListing> {
  const { lab } = env;
  const cache = await env.cache();
  const blobs = await cache.store.list();
  return {
    snapshots: (await cache.list()).sort((a, b) => b.savedAt - a.savedAt),
    adapters: (await lab.listAdapters()).sort((a, b) => b.savedAt - a.savedAt),
    datasets: (await lab.listDatasets()).sort((a, b) => b.savedAt - a.savedAt),
    runs: (await lab.listCheckpoints()).sort((a, b) => b.savedAt - a.savedAt),
    comparisons: await lab.listComparisons(),
    evaluations: await Promise.all((await lab.listRuns()).map(async (r) => ({
      id: r.id, name: r.name, setLabel: r.setLabel, examples: r.examples.length, models: r.models.length,
      votes: (await lab.reviews(r.id)).reduce((t, x) => t + x.votes.length, 0), status: r.status, createdAt: r.createdAt,
    }))),
    conversations: (await lab.listConversations()).map((c) => ({ id: c.id, title: c.title, turns: c.turns.length, bytes: JSON.stringify(c).length, updatedAt: c.updatedAt })),
    partialBytes: blobs.filter((b) => !b.complete).reduce((a, b) => a + b.size, 0),
    estimate: await env.estimate(),
    backend: cache.store.kind,
  };
}

export function storageHandlers(env: StorageEnv): { [K in keyof StorageRequestMap]: (p: StorageRequestMap[K]['request']) => Promise<StorageRequestMap[K]['result']> } {
  const { lab } = env;
  const list = () => storageListing(env);

  return {
    storageList: () => list(),

    async deleteKept({ kind, id }) {
      if (kind === 'snapshot') await (await env.cache()).remove(id);
      else if (kind === 'adapter') await lab.deleteAdapter(id);
      else if (kind === 'dataset') await lab.deleteDataset(id);
      else if (kind === 'run') await lab.deleteCheckpoint(id);
      else if (kind === 'evaluation') await lab.deleteRun(id);
      else if (kind === 'conversation') await lab.deleteConversation(id);
      else await lab.deleteComparison(Number(id));
      return list();
    },

    async exportKept({ kind, id, as, gguf }) {
      const cache = await env.cache();
      if (kind === 'snapshot' && gguf) return keptModelGguf(cache, await cache.catalog.getSnapshot(id) ?? missing('model', id), gguf);
      if (kind === 'snapshot') {
        const s = await cache.catalog.getSnapshot(id) ?? missing('model', id);
        const name = `${safeFileName(s.source === 'hf' ? `${s.repo}@${s.sha.slice(0, 7)}` : s.repo)}.lora-lab.zip`;
        return { name, blob: await zipToBlob(cache.store, name, (out) => exportSnapshot(cache.store, cache.catalog, id, out)) };
      }
      if (kind === 'adapter') {
        const a = await lab.getAdapter(id) ?? missing('adapter', id);
        const name = `${safeFileName(a.name)}.zip`;
        return { name, blob: await zipToBlob(cache.store, name, [bytesEntry('adapter_config.json', new TextEncoder().encode(a.config)), bytesEntry('adapter_model.safetensors', a.safetensors)]) };
      }
      if (kind === 'conversation') {
        const c = await lab.getConversation(id) ?? missing('conversation', id);
        return { name: `${safeFileName(c.title, 'conversation')}.json`, blob: new Blob([conversationJson(c)], { type: 'application/json' }) };
      }
      if (kind === 'evaluation') {
        const r = await lab.getRun(id) ?? missing('evaluation', id);
        const lines = (await lab.results(id)).map(({ runId: _run, ...x }) => JSON.stringify(x)).join('\n');
        return { name: `${safeFileName(r.name, 'evaluation')}.jsonl`, blob: new Blob([lines ? `${lines}\n` : ''], { type: 'application/x-ndjson' }) };
      }
      if (kind === 'dataset') {
        const d = await lab.getDataset(id) ?? missing('dataset', id);
        const records = await parseDataset(d.bytes, d.name);
        const format = as ?? 'jsonl';
        return { name: `${safeFileName(d.name.replace(/\.(json|jsonl|ndjson|parquet)$/i, ''))}.${format}`, blob: new Blob([datasetFile(records, format) as BlobPart], { type: 'application/json' }) };
      }
      if (kind === 'run') {
        const c = await lab.getCheckpoint(id) ?? missing('run', id);
        const files = checkpointFiles(c.checkpoint, { file: c.dataset.kind === 'builtin' ? 'builtin' : c.dataset.name, sha256: '', format: c.format, ...(c.maxRecords ? { maxRecords: c.maxRecords } : {}) });
        const name = `${safeFileName(c.name)}-step${c.checkpoint.step}.zip`;
        return { name, blob: await zipToBlob(cache.store, name, [...files].map(([f, b]) => bytesEntry(`checkpoint/${f}`, b))) };
      }
      const all = await lab.listComparisons();
      const c = all.find((x) => String(x.id) === id) ?? missing('comparison', id);
      return { name: `comparison-${c.id}.json`, blob: new Blob([JSON.stringify(c, null, 2)], { type: 'application/json' }) };
    },

    importFile: ({ file }) => importKept(env, file),

    async saveComparison(c) {
      return lab.putComparison({ ...c, savedAt: Date.now() });
    },

    async setToken({ token }) {
      if (token === null) { await lab.deleteSetting('hfToken'); return { saved: false }; }
      if (!token.startsWith('hf_')) throw new InvalidArgumentError('A Hugging Face access token starts with "hf_": copy it again from huggingface.co (Settings > Access Tokens).', { field: 'token' });
      await lab.putSetting('hfToken', token);
      return { saved: true };
    },
  };
}

/**
 * Keeps an imported file: a dataset (checked record by record), a LoRA Lab model archive, a model folder zipped (a
 * merged model exported here) or a PEFT adapter zipped.
 */
async function importKept(env: StorageEnv, file: File): Promise<{ kind: KeptKind; id: string }> {
  const { lab } = env;
  const lower = file.name.toLowerCase();
  if (/\.(json|jsonl|ndjson|parquet)$/.test(lower)) {
    const bytes = new Uint8Array(await file.arrayBuffer());
    await parseDataset(bytes, file.name); // refused here, with the record at fault, if it is not a dataset
    const name = safeBaseName(file.name, 'A dataset file name');
    await lab.putDataset({ name, bytes, size: bytes.byteLength, savedAt: Date.now() });
    return { kind: 'dataset', id: name };
  }
  if (!lower.endsWith('.zip')) throw new FileFormatError(`${file.name}: import takes a .zip (a model, model folder, adapter or training run exported here, or a PEFT adapter folder zipped) or a dataset (.json, .jsonl, .parquet).`, { file: file.name });
  const cache = await env.cache();
  const head = await readZipNames(file);
  if (head.includes(SNAPSHOT_MANIFEST)) {
    const s = await importSnapshot(cache.store, cache.catalog, file, file.name);
    return { kind: 'snapshot', id: s.id };
  }
  if (isModelFolder(head)) {
    const s = await importModelFolder(cache.store, cache.catalog, file, file.name);
    return { kind: 'snapshot', id: s.id };
  }
  const files = await readSmallZip(file, file.name, MAX_ADAPTER_ZIP);
  const pick = (n: string) => [...files].find(([k]) => k === n || k.endsWith(`/${n}`))?.[1];
  if (pick('trainer_state.json')) return importRun(lab, files, file.name);
  const config = pick('adapter_config.json');
  const st = pick('adapter_model.safetensors');
  if (!config || !st) throw new FileFormatError(`${file.name} holds neither a LoRA Lab model archive, a model folder (config.json and .safetensors weights) nor a PEFT adapter (adapter_config.json and adapter_model.safetensors).`, { file: file.name });
  const name = file.name.replace(/\.zip$/i, '');
  const text = new TextDecoder().decode(config);
  // Every check of a loaded adapter, before keeping it; a Phi-3 adapter's fused modules are split (and checked) over its
  // base when it is loaded: kept here as it is.
  let baseModel: string | null;
  try {
    baseModel = readPeftAdapter(name, JSON.parse(text), st).config.baseModelNameOrPath;
  } catch (e) {
    if (!(e instanceof AdapterError && (e.details as { needsBase?: boolean } | undefined)?.needsBase)) throw e;
    baseModel = parsePeftConfig(JSON.parse(text)).baseModelNameOrPath;
  }
  await lab.putAdapter({ name, config: text, safetensors: st, baseModel, origin: file.name, size: st.byteLength, savedAt: Date.now() });
  return { kind: 'adapter', id: name };
}

/**
 * A training run exported from Storage (its checkpoint files in a .zip), kept as a saved run to continue: every value
 * checked as a resumed run checks it; a run of the same name kept here is never replaced.
 */
async function importRun(lab: LabStore, zipped: Map<string, Uint8Array>, fileName: string): Promise<{ kind: KeptKind; id: string }> {
  const files = new Map([...zipped].map(([k, b]) => [k.split('/').pop()!, b]));
  const { checkpoint, data } = await readCheckpointFiles(new MemoryFiles(fileName, files));
  if (await lab.getCheckpoint(checkpoint.name)) {
    throw new InvalidArgumentError(`A saved run named "${checkpoint.name}" is kept here already: delete it in the Train view or Storage first, to import ${fileName} in its place.`, { file: fileName });
  }
  // The data it trains on: the bundled sample, or a dataset kept here under its name (continuing says so if it is not).
  const dataset = data.file === 'builtin' ? { kind: 'builtin' as const } : { kind: 'kept' as const, name: data.file };
  await lab.putCheckpoint({ name: checkpoint.name, checkpoint, dataset, format: data.format, maxRecords: data.maxRecords, totalSteps: checkpoint.totalSteps, savedAt: Date.now() });
  return { kind: 'run', id: checkpoint.name };
}

/** Keeps an adapter that was just loaded or trained, so it is on the shelf after a reload and offline. */
export async function keepAdapter(lab: LabStore, name: string, files: { config: string; safetensors: Uint8Array }, baseModel: string | null, origin: string, baseFingerprint?: string, kind?: 'reward'): Promise<void> {
  await lab.putAdapter({ name, ...files, baseModel, ...(baseFingerprint ? { baseFingerprint } : {}), origin, size: files.safetensors.byteLength, savedAt: Date.now(), ...(kind ? { kind } : {}) });
}

async function readZipNames(file: Blob): Promise<string[]> {
  const zip = new ZipReader(new BlobReader(file));
  try {
    return (await zip.getEntries()).map((e) => e.filename);
  } catch (e) {
    throw new FileFormatError(`The file is not a readable ZIP (${(e as Error).message}).`);
  } finally {
    await zip.close();
  }
}

function missing(what: string, id: string): never {
  throw new InvalidArgumentError(`No kept ${what} "${id}": it may have been deleted in another tab. Reload the Storage page.`);
}
