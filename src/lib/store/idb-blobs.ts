// BlobStore in IndexedDB, for browsers without the Origin Private File System: a file is a `blobs` record (size,
// whether complete, chunk count) and its bytes are `chunks` records of up to CHUNK bytes. A chunk and the size that
// counts it are written in one transaction, so a partial file is always a whole number of chunks that exist.

import type { OpenedFile } from '../model-files.js';
import type { BlobEntry, BlobStore, BlobWriter } from './blobs.js';
import type { LabDatabase } from './db.js';
import { storageFull } from './quota.js';

const CHUNK = 4 << 20;

export class IdbBlobStore implements BlobStore {
  readonly kind = 'idb';
  constructor(private readonly db: () => Promise<LabDatabase>) {}

  async #record(key: string) {
    return (await this.db()).get('blobs', key);
  }

  #partialKey(key: string): string {
    return `partial:${key}`;
  }

  async partialSize(key: string): Promise<number> {
    return (await this.#record(this.#partialKey(key)))?.size ?? 0;
  }

  async *#chunks(key: string): AsyncIterable<Uint8Array> {
    const rec = await this.#record(key);
    if (!rec) return;
    const db = await this.db();
    for (let i = 0; i < rec.chunks; i++) {
      const c = await db.get('chunks', [key, i]);
      if (c) yield c;
    }
  }

  readPartial(key: string): AsyncIterable<Uint8Array> {
    return this.#chunks(this.#partialKey(key));
  }

  async append(key: string, restart = false): Promise<BlobWriter> {
    const pk = this.#partialKey(key);
    if (restart) await this.#remove(pk);
    const db = await this.db();
    const rec = (await db.get('blobs', pk)) ?? { key: pk, size: 0, complete: false, chunks: 0 };
    let pending: Uint8Array[] = [];
    let pendingBytes = 0;
    const put = async () => {
      if (!pendingBytes) return;
      const chunk = new Uint8Array(pendingBytes);
      let o = 0;
      for (const p of pending) { chunk.set(p, o); o += p.byteLength; }
      pending = [];
      pendingBytes = 0;
      const tx = db.transaction(['blobs', 'chunks'], 'readwrite');
      rec.size += chunk.byteLength;
      rec.chunks += 1;
      try {
        await Promise.all([tx.objectStore('chunks').put(chunk, [pk, rec.chunks - 1]), tx.objectStore('blobs').put({ ...rec }), tx.done]);
      } catch (e) {
        rec.size -= chunk.byteLength;
        rec.chunks -= 1;
        throw storageFull(e) ?? e;
      }
    };
    return {
      get size() { return rec.size + pendingBytes; },
      async write(c) {
        pending.push(c.slice());
        pendingBytes += c.byteLength;
        if (pendingBytes >= CHUNK) await put();
      },
      flush: put,
      close: put,
    };
  }

  async commit(key: string): Promise<void> {
    const db = await this.db();
    const pk = this.#partialKey(key);
    const rec = await db.get('blobs', pk);
    if (!rec) throw new Error(`nothing to commit under ${key}`);
    await this.#remove(key);
    // Chunks are re-keyed under the final name in one transaction with the records.
    const tx = db.transaction(['blobs', 'chunks'], 'readwrite');
    for (let i = 0; i < rec.chunks; i++) {
      const c = await tx.objectStore('chunks').get([pk, i]);
      await tx.objectStore('chunks').put(c!, [key, i]);
      await tx.objectStore('chunks').delete([pk, i]);
    }
    await tx.objectStore('blobs').delete(pk);
    await tx.objectStore('blobs').put({ key, size: rec.size, complete: true, chunks: rec.chunks });
    await tx.done;
  }

  async #remove(key: string): Promise<void> {
    const db = await this.db();
    const tx = db.transaction(['blobs', 'chunks'], 'readwrite');
    await tx.objectStore('chunks').delete(IDBKeyRange.bound([key, 0], [key, Infinity]));
    await tx.objectStore('blobs').delete(key);
    await tx.done;
  }

  discard(key: string): Promise<void> {
    return this.#remove(this.#partialKey(key));
  }

  async open(key: string): Promise<OpenedFile | null> {
    const rec = await this.#record(key);
    if (!rec?.complete) return null;
    return { size: rec.size, stream: this.#chunks(key) };
  }

  async delete(key: string): Promise<void> {
    await this.#remove(key);
    await this.discard(key);
  }

  async list(): Promise<BlobEntry[]> {
    return (await (await this.db()).getAll('blobs')).map((r) => r.key.startsWith('partial:')
      ? { key: r.key.slice(8), size: r.size, complete: false }
      : { key: r.key, size: r.size, complete: true });
  }
}
