// What is kept, as records: model and adapter snapshots (which files, at which commit), kept adapters, datasets,
// saved comparisons and settings. The browser keeps them in IndexedDB (db.ts), the CLI in JSON files (disk-catalog.ts).
// A snapshot record is written only after every one of its files was committed: a listed snapshot is whole.

import type { ModelSource } from '../hub/source.js';

export interface SnapshotFile {
  path: string;
  size: number;
  /** The SHA-256 the hub published (LFS files) or the one computed on import; checked on every download. */
  sha256?: string;
}

export interface Snapshot {
  /** `hf/{repo}/{commit sha}`, `url/{hash of the base URL}` or `local/{folder name}`; blob keys are `${store ?? id}/${path}`. */
  id: string;
  /**
   * Where its files are kept, when not under its id: a replacing import writes the new copy under a key of its own and
   * then swaps the record, so the kept copy stays whole until the new one is (see importSnapshot).
   */
  store?: string;
  kind: 'model' | 'adapter' | 'reward';
  /** `local`: a model folder imported from a file (a merged model exported here, for one); it opens by its id. */
  source: 'hf' | 'url' | 'local';
  /** Repo id, base URL, or the imported folder's name. */
  repo: string;
  /** The commit this snapshot is (hf), or '' (url). */
  sha: string;
  /** Revisions (branch, tag or sha) that resolved to this commit. */
  revisions: string[];
  files: SnapshotFile[];
  bytes: number;
  savedAt: number;
}

export interface SnapshotCatalog {
  getSnapshot(id: string): Promise<Snapshot | undefined>;
  putSnapshot(s: Snapshot): Promise<void>;
  listSnapshots(): Promise<Snapshot[]>;
  deleteSnapshot(id: string): Promise<void>;
}

/** What opens a kept snapshot: its repo at its commit, its URL, or (an imported folder) the snapshot itself. */
export function keptSource(s: Snapshot): ModelSource {
  if (s.source === 'hf') return { kind: 'hf', repo: s.repo, revision: s.revisions[0] ?? s.sha };
  if (s.source === 'url') return { kind: 'url', url: s.repo };
  return { kind: 'snapshot', id: s.id, label: s.repo };
}

/** A snapshot as a person names it: repo@revision, the URL without its scheme, or the imported folder's name. */
export function snapshotLabel(s: Snapshot): string {
  return s.source === 'hf' ? `${s.repo}@${s.revisions[0] ?? s.sha.slice(0, 7)}` : s.repo.replace(/^https?:\/\//, '');
}

export const snapshotId = (source: 'hf' | 'url', repo: string, sha: string): string => [source, repo, sha].filter(Boolean).join('/');
export const blobKey = (id: string, path: string): string => `${id}/${path}`;
/** The key a kept snapshot's file is stored under. */
export const fileKey = (s: Pick<Snapshot, 'id' | 'store'>, path: string): string => blobKey(s.store ?? s.id, path);

/** The newest snapshot of `repo` that `revision` resolved to (or that is `revision` itself, a commit sha). */
export function findSnapshot(all: Snapshot[], source: 'hf' | 'url', repo: string, revision: string): Snapshot | undefined {
  return all
    .filter((s) => s.source === source && s.repo === repo && (s.revisions.includes(revision) || (revision.length >= 7 && s.sha.startsWith(revision))))
    .sort((a, b) => b.savedAt - a.savedAt)[0];
}
