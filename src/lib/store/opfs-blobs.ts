// BlobStore in the Origin Private File System, used from the engine's worker. Unfinished files are written through a
// synchronous access handle, which writes in place (a download interrupted by a closed tab keeps what reached the
// disk and resumes there); `commit` moves the file from partial/ to complete/. Keys map to flat, encoded names.

import { type OpenedFile } from '../model-files.js';
import { streamChunks } from '../hub/files.js';
import type { BlobEntry, BlobStore, BlobWriter } from './blobs.js';
import { storageFull } from './quota.js';

interface SyncHandle {
  getSize(): number;
  truncate(n: number): void;
  write(b: Uint8Array, o: { at: number }): number;
  flush(): void;
  close(): void;
}
type MovableHandle = FileSystemFileHandle & {
  createSyncAccessHandle(): Promise<SyncHandle>;
  move?(dir: FileSystemDirectoryHandle, name: string): Promise<void>;
};
type IterableDir = FileSystemDirectoryHandle & { entries(): AsyncIterable<[string, FileSystemHandle]> };

const encode = (key: string) => encodeURIComponent(key);
const decode = (name: string) => decodeURIComponent(name);

export class OpfsBlobStore implements BlobStore {
  readonly kind = 'opfs';
  private constructor(private readonly complete: FileSystemDirectoryHandle, private readonly partial: FileSystemDirectoryHandle) {}

  /** The store under `folder` of this origin's private file system, or null where OPFS or sync handles are missing. */
  static async create(folder = 'lora-lab'): Promise<OpfsBlobStore | null> {
    if (typeof navigator === 'undefined' || !navigator.storage?.getDirectory) return null;
    if (typeof FileSystemFileHandle === 'undefined' || !('createSyncAccessHandle' in FileSystemFileHandle.prototype)) return null;
    try {
      const root = await (await navigator.storage.getDirectory()).getDirectoryHandle(folder, { create: true });
      return new OpfsBlobStore(await root.getDirectoryHandle('complete', { create: true }), await root.getDirectoryHandle('partial', { create: true }));
    } catch {
      return null; // e.g. private browsing modes that refuse OPFS
    }
  }

  async #file(dir: FileSystemDirectoryHandle, key: string, create = false): Promise<MovableHandle | null> {
    try {
      return (await dir.getFileHandle(encode(key), { create })) as MovableHandle;
    } catch (e) {
      if ((e as DOMException).name === 'NotFoundError') return null;
      throw e;
    }
  }

  async partialSize(key: string): Promise<number> {
    const h = await this.#file(this.partial, key);
    return h ? (await h.getFile()).size : 0;
  }

  async *readPartial(key: string): AsyncIterable<Uint8Array> {
    const h = await this.#file(this.partial, key);
    if (h) yield* streamChunks((await h.getFile()).stream());
  }

  async append(key: string, restart = false): Promise<BlobWriter> {
    const h = (await this.#file(this.partial, key, true))!;
    const access = await h.createSyncAccessHandle();
    if (restart) access.truncate(0);
    let size = access.getSize();
    let open = true;
    return {
      get size() { return size; },
      async write(chunk) {
        try {
          for (let o = 0; o < chunk.byteLength; ) o += access.write(chunk.subarray(o), { at: size + o });
        } catch (e) {
          access.truncate(size); // nothing of a failed write stays: the file is what it was before
          throw storageFull(e) ?? e;
        }
        size += chunk.byteLength;
      },
      async flush() { access.flush(); },
      async close() { if (open) { open = false; access.flush(); access.close(); } },
    };
  }

  async commit(key: string): Promise<void> {
    const h = await this.#file(this.partial, key);
    if (!h) throw new Error(`nothing to commit under ${key}`);
    await this.complete.removeEntry(encode(key)).catch(() => {});
    if (h.move) {
      await h.move(this.complete, encode(key));
      return;
    }
    // Without move(): copy, then drop the partial file.
    const to = (await this.#file(this.complete, key, true))!;
    const w = await to.createWritable();
    await (await h.getFile()).stream().pipeTo(w);
    await this.partial.removeEntry(encode(key));
  }

  async discard(key: string): Promise<void> {
    await this.partial.removeEntry(encode(key)).catch(() => {});
  }

  /** The finished file as a File (read from disk on demand: exports hand it to the page without a copy). */
  async file(key: string): Promise<File | null> {
    const h = await this.#file(this.complete, key);
    return h ? h.getFile() : null;
  }

  async open(key: string): Promise<OpenedFile | null> {
    const f = await this.file(key);
    return f ? { size: f.size, stream: streamChunks(f.stream()) } : null;
  }

  async delete(key: string): Promise<void> {
    await this.complete.removeEntry(encode(key)).catch(() => {});
    await this.discard(key);
  }

  async list(): Promise<BlobEntry[]> {
    const out: BlobEntry[] = [];
    for (const [dir, complete] of [[this.complete, true], [this.partial, false]] as const) {
      for await (const [name, h] of (dir as IterableDir).entries()) {
        if (h.kind === 'file') out.push({ key: decode(name), size: (await (h as FileSystemFileHandle).getFile()).size, complete });
      }
    }
    return out;
  }
}
