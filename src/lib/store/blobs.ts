// Where large files are kept: a key-value store of byte files with two states. A file being written is "partial":
// it can be appended to (a download resumes where it stopped) but is never read as whole. `commit` makes it visible
// under its key in one step; until then readers see the previous file or nothing. Implementations: the Origin Private
// File System (browser worker), IndexedDB in chunks (browsers without OPFS), a folder on disk (Node, the CLI).

import type { OpenedFile } from '../model-files.js';

export interface BlobWriter {
  /** Bytes in the partial file so far: where the next write lands. */
  readonly size: number;
  write(chunk: Uint8Array): Promise<void>;
  /** Makes what was written durable: after a crash the partial file holds at least these bytes. */
  flush(): Promise<void>;
  close(): Promise<void>;
}

export interface BlobEntry {
  key: string;
  size: number;
  complete: boolean;
}

export interface BlobStore {
  /** 'opfs' | 'idb' | 'disk': shown on the storage page. */
  readonly kind: string;
  /** Bytes of the unfinished file under `key`, 0 when there is none. */
  partialSize(key: string): Promise<number>;
  /** The unfinished file's bytes (a resumed download hashes them before it goes on). */
  readPartial(key: string): AsyncIterable<Uint8Array>;
  /** Opens the unfinished file for appending; `restart` empties it first. One writer per key at a time. */
  append(key: string, restart?: boolean): Promise<BlobWriter>;
  /** Makes the unfinished file the finished one under `key`, replacing any previous. */
  commit(key: string): Promise<void>;
  /** Deletes the unfinished file, if any. */
  discard(key: string): Promise<void>;
  /** A finished file, or null. */
  open(key: string): Promise<OpenedFile | null>;
  /** Deletes the finished and the unfinished file. */
  delete(key: string): Promise<void>;
  list(): Promise<BlobEntry[]>;
}

/** Writes a whole stream under `key` (import, small side files); the key becomes visible only if all of it arrived. */
export async function putBlob(store: BlobStore, key: string, chunks: AsyncIterable<Uint8Array> | Uint8Array): Promise<number> {
  const w = await store.append(key, true);
  try {
    if (chunks instanceof Uint8Array) await w.write(chunks);
    else for await (const c of chunks) await w.write(c);
    await w.flush();
  } catch (e) {
    await w.close().catch(() => {});
    await store.discard(key).catch(() => {});
    throw e;
  }
  await w.close();
  const size = w.size;
  await store.commit(key);
  return size;
}

/** A finished file's bytes, or null. For small files only: large ones are streamed with `open`. */
export async function readBlob(store: BlobStore, key: string): Promise<Uint8Array | null> {
  const f = await store.open(key);
  if (!f) return null;
  const out = new Uint8Array(f.size);
  let o = 0;
  for await (const c of f.stream) { out.set(c, o); o += c.byteLength; }
  return out;
}
