// The CLI's snapshot records: one JSON file per snapshot under <cache>/snapshots/, written crash-safe (a record is
// the old one or the new one). Together with DiskBlobStore under the same folder this is the CLI's cache.

import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from './atomic-node.js';
import type { Snapshot, SnapshotCatalog } from './snapshot-catalog.js';
import { DiskBlobStore } from './disk-blobs.js';

export class DiskCatalog implements SnapshotCatalog {
  constructor(readonly root: string) {}

  #path(id: string): string {
    return join(this.root, 'snapshots', `${encodeURIComponent(id)}.json`);
  }

  async getSnapshot(id: string): Promise<Snapshot | undefined> {
    try {
      return JSON.parse(readFileSync(this.#path(id), 'utf8')) as Snapshot;
    } catch {
      return undefined;
    }
  }

  async putSnapshot(s: Snapshot): Promise<void> {
    mkdirSync(join(this.root, 'snapshots'), { recursive: true });
    writeFileAtomic(this.#path(s.id), new TextEncoder().encode(JSON.stringify(s, null, 2)));
  }

  async listSnapshots(): Promise<Snapshot[]> {
    const names = (() => { try { return readdirSync(join(this.root, 'snapshots')); } catch { return []; } })();
    const out: Snapshot[] = [];
    for (const n of names) {
      if (!n.endsWith('.json') || n.startsWith('.')) continue;
      const s = await this.getSnapshot(decodeURIComponent(n.slice(0, -5)));
      if (s) out.push(s);
    }
    return out;
  }

  async deleteSnapshot(id: string): Promise<void> {
    rmSync(this.#path(id), { force: true });
  }
}

/** The CLI's cache folder: --cache-dir, else $LORA_LAB_CACHE, else $XDG_CACHE_HOME/lora-lab or ~/.cache/lora-lab. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.LORA_LAB_CACHE) return env.LORA_LAB_CACHE;
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'lora-lab');
}

export function diskCache(root: string): { store: DiskBlobStore; catalog: DiskCatalog } {
  return { store: new DiskBlobStore(join(root, 'blobs')), catalog: new DiskCatalog(root) };
}
