// A model folder in a .zip (what the adapter shelf's "Export merged model" writes, or any Hugging Face model folder
// zipped) kept as a snapshot of its own: Storage imports it, and it loads from there offline like a downloaded model.
// Streamed file by file into the store and hashed on the way; committed and listed only when every file is whole.

import { BlobReader, ZipReader, type Entry, type FileEntry } from '@zip.js/zip.js';
import { FileFormatError, InvalidArgumentError } from '../errors.js';
import { safeRelativeName } from '../hub/paths.js';
import { intoStore } from './archive.js';
import type { BlobStore } from './blobs.js';
import { blobKey, type Snapshot, type SnapshotCatalog, type SnapshotFile } from './snapshot-catalog.js';

/** The files a model folder needs: its config and at least one safetensors file of weights. */
export function isModelFolder(names: string[]): boolean {
  const base = names.map((n) => n.split('/').pop() ?? n);
  return base.includes('config.json') && base.some((n) => n.endsWith('.safetensors')) && !base.includes('adapter_config.json');
}

/**
 * Keeps the model folder inside `zip` as the snapshot `local/{name}` (the zip's name without .zip). The folder may
 * sit at the top of the zip or in one folder inside it; files elsewhere are refused by name, never written.
 */
export async function importModelFolder(store: BlobStore, catalog: SnapshotCatalog, zip: Blob, fileName: string): Promise<Snapshot> {
  const name = fileName.replace(/\.zip$/i, '').trim() || 'model';
  const id = `local/${safeRelativeName(name.replace(/[^\w.-]+/g, '-'), fileName)}`;
  if (await catalog.getSnapshot(id)) {
    throw new InvalidArgumentError(`A model imported from ${fileName} is kept here already: delete it on the Storage page first, or rename the .zip to keep both.`, { file: fileName });
  }
  const reader = new ZipReader(new BlobReader(zip));
  const staged: string[] = [];
  try {
    let entries: Entry[];
    try {
      entries = await reader.getEntries();
    } catch (e) {
      throw new FileFormatError(`${fileName} is not a readable ZIP (${(e as Error).message}).`, { file: fileName });
    }
    const files = entries.filter((e): e is FileEntry => !e.directory);
    const config = files.find((e) => e.filename === 'config.json' || e.filename.endsWith('/config.json'));
    if (!config || !isModelFolder(files.map((e) => e.filename))) throw new FileFormatError(`${fileName} holds no model folder (config.json beside .safetensors weights).`, { file: fileName });
    const top = config.filename.slice(0, config.filename.length - 'config.json'.length); // '' or 'folder/'
    const kept: SnapshotFile[] = [];
    for (const e of files) {
      if (!e.filename.startsWith(top)) throw new FileFormatError(`${fileName}: ${e.filename} lies outside the model folder ${top || '(the top)'}; zip the folder alone.`, { file: fileName });
      const path = safeRelativeName(e.filename.slice(top.length), fileName);
      const key = blobKey(id, path);
      const sink = intoStore(store, key, e.uncompressedSize, `${path} in ${fileName}`);
      staged.push(key);
      await e.getData(sink.writable);
      kept.push({ path, ...sink.result() });
    }
    for (const k of staged) await store.commit(k);
    const snapshot: Snapshot = { id, kind: 'model', source: 'local', repo: name, sha: '', revisions: [], files: kept, bytes: kept.reduce((a, f) => a + f.size, 0), savedAt: Date.now() };
    await catalog.putSnapshot(snapshot);
    return snapshot;
  } catch (e) {
    for (const k of staged) await store.discard(k).catch(() => store.delete(k)).catch(() => {});
    throw e;
  } finally {
    await reader.close().catch(() => {});
  }
}
