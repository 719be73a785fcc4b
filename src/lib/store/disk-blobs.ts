// BlobStore in a folder on disk (Node: the CLI's cache). Finished files live under complete/<key>, unfinished ones
// under partial/<key>; `commit` is a rename within one file system, so a reader sees the whole file or none.

import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { WriteError } from '../errors.js';
import type { OpenedFile } from '../model-files.js';
import { safeRelativeName } from '../hub/paths.js';
import type { BlobEntry, BlobStore, BlobWriter } from './blobs.js';

export class DiskBlobStore implements BlobStore {
  readonly kind = 'disk';
  constructor(readonly root: string) {}

  #path(state: 'complete' | 'partial', key: string): string {
    return join(this.root, state, safeRelativeName(key, 'A cache key'));
  }

  async partialSize(key: string): Promise<number> {
    return (await stat(this.#path('partial', key)).catch(() => null))?.size ?? 0;
  }

  async *readPartial(key: string): AsyncIterable<Uint8Array> {
    if (!(await this.partialSize(key))) return;
    for await (const c of createReadStream(this.#path('partial', key), { highWaterMark: 1 << 20 })) yield c as Uint8Array;
  }

  async append(key: string, restart = false): Promise<BlobWriter> {
    const path = this.#path('partial', key);
    let fh: FileHandle;
    try {
      await mkdir(dirname(path), { recursive: true });
      fh = await open(path, restart ? 'w' : 'a');
    } catch (e) {
      throw new WriteError(`Could not write to the cache at ${this.root}: ${(e as Error).message}. Check the folder is writable, or pick another with --cache-dir.`, { path });
    }
    let size = (await fh.stat()).size;
    return {
      get size() { return size; },
      async write(chunk) {
        try {
          for (let o = 0; o < chunk.byteLength; ) o += (await fh.write(chunk, o, chunk.byteLength - o)).bytesWritten;
        } catch (e) {
          throw new WriteError(`Could not write to the cache at ${path}: ${(e as Error).message}. Free disk space or pick another folder with --cache-dir.`, { path });
        }
        size += chunk.byteLength;
      },
      async flush() { await fh.sync(); },
      async close() { await fh.close(); },
    };
  }

  async commit(key: string): Promise<void> {
    const to = this.#path('complete', key);
    await mkdir(dirname(to), { recursive: true });
    await rename(this.#path('partial', key), to);
  }

  async discard(key: string): Promise<void> {
    await rm(this.#path('partial', key), { force: true });
  }

  async open(key: string): Promise<OpenedFile | null> {
    const path = this.#path('complete', key);
    const s = await stat(path).catch(() => null);
    if (!s?.isFile()) return null;
    return { size: s.size, stream: createReadStream(path, { highWaterMark: 1 << 20 }) };
  }

  async delete(key: string): Promise<void> {
    await rm(this.#path('complete', key), { force: true });
    await this.discard(key);
  }

  async list(): Promise<BlobEntry[]> {
    const out: BlobEntry[] = [];
    for (const state of ['complete', 'partial'] as const) {
      const base = join(this.root, state);
      const entries = await readdir(base, { recursive: true, withFileTypes: true }).catch(() => []);
      for (const e of entries) {
        if (!e.isFile()) continue;
        const full = join(e.parentPath, e.name);
        out.push({ key: relative(base, full).split(sep).join('/'), size: (await stat(full)).size, complete: state === 'complete' });
      }
    }
    return out;
  }
}
