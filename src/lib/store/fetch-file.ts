// One file from the network into a BlobStore: resumed with an HTTP Range request when part of it is already kept,
// retried when the connection breaks, checked against the size (and the SHA-256, when published) it must have, and
// committed only then. Whatever happens, the store holds the finished file, or a partial one to resume, never a
// wrong file under the finished key.

import { sha1 } from '@noble/hashes/legacy.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { AbortedError, DownloadError, IntegrityError, StorageFullError } from '../errors.js';
import { streamChunks } from '../hub/files.js';
import { formatBytes } from '../util/bytes.js';
import type { BlobStore } from './blobs.js';

export interface PlannedFile {
  path: string;
  /** Known from the hub's listing; otherwise taken from the response. */
  size?: number;
  /** Lower-case hex SHA-256 (the hub publishes it for LFS files). */
  sha256?: string;
  /** The git blob SHA-1 the hub's listing gives for a file kept in git (not LFS): SHA-1 of "blob <size>\0" + bytes. */
  gitOid?: string;
}

export interface FetchFileOptions {
  fetch: typeof fetch;
  /** Sent with every request for this file (the hub token goes only to the hub). */
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Automatic resumes after a broken connection before giving up (default 3). */
  retries?: number;
  /** Bytes between flushes to disk: what a crash can lose at most (default 8 MiB). */
  flushEvery?: number;
  /** Called with the bytes kept so far and the size when known. */
  onBytes?: (loaded: number, total: number | undefined) => void;
}

export interface FetchedFile {
  path: string;
  size: number;
  sha256: string;
  /** Bytes that were already kept from an earlier, interrupted download. */
  resumed: number;
}

/** Thrown inside the loop for an optional file that does not exist; becomes a null result. */
const NOT_FOUND = new Error('not found');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function aborted(path: string): AbortedError {
  return new AbortedError(`The download of ${path} was stopped; what arrived is kept, so loading again resumes where it stopped.`, { file: path });
}

/** The total size a response announces: Content-Range's "/total" for a 206, Content-Length for a 200. */
function announcedSize(res: Response): number | undefined {
  const range = /\/(\d+)\s*$/.exec(res.headers.get('content-range') ?? '');
  if (res.status === 206 && range) return Number(range[1]);
  const len = res.headers.get('content-length');
  return res.status === 200 && len !== null && /^\d+$/.test(len) ? Number(len) : undefined;
}

function httpError(path: string, url: string, status: number): DownloadError {
  if (status === 401 || status === 403) {
    return new DownloadError(`${path}: ${status} ${status === 401 ? 'Unauthorized' : 'Forbidden'} at ${url}. The repo is gated or private: accept its licence on huggingface.co and give an access token (Settings > Access Tokens).`, { file: path, url, status });
  }
  if (status === 404) return new DownloadError(`${path}: 404 Not Found at ${url}. Check the repo id, revision or URL.`, { file: path, url, status });
  return new DownloadError(`${path}: HTTP ${status} at ${url}. Try again later; what arrived so far is kept.`, { file: path, url, status });
}

/** Downloads `url` as `file` into `store` under `key`. Returns null for a 404 when `optional`. */
export async function fetchFile(store: BlobStore, key: string, url: string, file: PlannedFile, opts: FetchFileOptions & { optional?: boolean }): Promise<FetchedFile | null> {
  try {
    return await fetchOrThrow(store, key, url, file, opts);
  } catch (e) {
    if (e === NOT_FOUND) return null;
    throw e;
  }
}

async function fetchOrThrow(store: BlobStore, key: string, url: string, file: PlannedFile, opts: FetchFileOptions & { optional?: boolean }): Promise<FetchedFile> {
  const { path } = file;
  const retries = opts.retries ?? 3;
  const flushEvery = opts.flushEvery ?? 8 << 20;
  let offset = await store.partialSize(key);
  if (file.size !== undefined && offset > file.size) { await store.discard(key); offset = 0; }
  let hasher = sha256.create();
  // A git file is checked against its blob id, which hashes a header with the file's size before its bytes.
  const gitCheck = file.gitOid && /^[0-9a-f]{40}$/.test(file.gitOid) && file.size !== undefined;
  const newGitHasher = () => (gitCheck ? sha1.create().update(new TextEncoder().encode(`blob ${file.size}\0`)) : null);
  let gitHasher = newGitHasher();
  if (offset > 0) {
    let seen = 0;
    for await (const c of store.readPartial(key)) { hasher.update(c); gitHasher?.update(c); seen += c.byteLength; }
    offset = seen;
  }
  const resumed = offset;
  let total = file.size;
  opts.onBytes?.(offset, total);

  for (let attempt = 0; ; attempt++) {
    if (opts.signal?.aborted) throw aborted(path);
    // The writer is open before the request: a body is read as soon as it arrives, since a stream that breaks drops
    // what it had queued but not yet handed over.
    let writer = await store.append(key);
    const outcome = await (async (): Promise<'done' | 'retry'> => {
      const headers: Record<string, string> = { ...opts.headers };
      if (offset > 0) headers.Range = `bytes=${offset}-`;
      let res: Response;
      try {
        res = await opts.fetch(url, { headers, signal: opts.signal });
      } catch (e) {
        if (opts.signal?.aborted) throw aborted(path);
        if (attempt < retries) return 'retry';
        throw new DownloadError(`Could not reach ${url} (${(e as Error).message}). Check the network connection; ${offset ? `the ${formatBytes(offset)} that arrived are kept and loading again resumes there` : 'then load again'}.`, { file: path, url });
      }
      // Asked from the end of a whole partial file (a crash between its last byte and its commit): nothing is left.
      if (res.status === 416 && offset > 0 && (total === undefined || offset === total)) { await res.body?.cancel(); return 'done'; }
      // Static hosts with a single-page-app fallback answer a missing file with their index.html: that is a 404.
      const html = res.ok && (res.headers.get('content-type') ?? '').includes('text/html') && !/\.html?$/.test(path);
      if (html) {
        await res.body?.cancel();
        if (opts.optional && offset === 0) throw NOT_FOUND;
        throw new DownloadError(`${path}: not found at ${url} (the server answered with an HTML page). Check the URL: it must be the folder that holds config.json and the weights.`, { file: path, url, status: 404 });
      }
      if (!res.ok) {
        await res.body?.cancel();
        if (res.status === 404 && opts.optional && offset === 0) throw NOT_FOUND;
        if (res.status >= 500 && attempt < retries) return 'retry';
        throw httpError(path, url, res.status);
      }
      // A server that ignores Range sends the whole file again: start over rather than append it.
      const rangeStart = Number(/bytes (\d+)-/.exec(res.headers.get('content-range') ?? '')?.[1] ?? NaN);
      if (offset > 0 && !(res.status === 206 && rangeStart === offset)) {
        await writer.close();
        writer = await store.append(key, true);
        offset = 0;
        hasher = sha256.create();
        gitHasher = newGitHasher();
      }
      const announced = announcedSize(res);
      if (announced !== undefined) {
        if (total !== undefined && announced !== total) {
          await res.body?.cancel();
          throw new IntegrityError(`${path}: the server sends ${announced} bytes but the listing says ${total}. The repo changed while downloading or the server is wrong: load again.`, { file: path, url });
        }
        total = announced;
      }
      if (!res.body) throw new DownloadError(`${path}: the server answered without a body at ${url}.`, { file: path, url });
      let flushed = offset;
      try {
        for await (const chunk of streamChunks(res.body)) {
          if (opts.signal?.aborted) throw aborted(path);
          if (total !== undefined && offset + chunk.byteLength > total) {
            throw new IntegrityError(`${path}: the server sent more than the ${total} bytes the file has. Load again; if it repeats, the server is wrong.`, { file: path, url });
          }
          await writer.write(chunk);
          hasher.update(chunk);
          gitHasher?.update(chunk);
          offset += chunk.byteLength;
          if (offset - flushed >= flushEvery) { await writer.flush(); flushed = offset; }
          opts.onBytes?.(offset, total);
        }
        if (total === undefined || offset === total) return 'done';
        throw new DownloadError(`${path}: the connection ended after ${offset} of ${total} bytes.`, { file: path, url });
      } catch (e) {
        if (e instanceof StorageFullError || e instanceof IntegrityError || e instanceof AbortedError) throw e;
        if (opts.signal?.aborted) throw aborted(path);
        if (attempt < retries) return 'retry';
        throw new DownloadError(`The connection broke while downloading ${path} (${formatBytes(offset)} of ${total === undefined ? 'an unknown size' : formatBytes(total)} kept). Load again to resume where it stopped.`, { file: path, url, kept: offset });
      }
    })().catch(async (e) => {
      await writer.close().catch(() => {});
      // A full disk or a wrong file leaves nothing behind, nor does a failure before any byte arrived (a 404, a
      // refusal); a broken connection or a stop keeps what arrived.
      if (e instanceof StorageFullError || e instanceof IntegrityError || e === NOT_FOUND || offset === 0) await store.discard(key);
      throw e;
    });
    await writer.close();
    if (outcome === 'done') break;
    await sleep(200 * 2 ** attempt);
  }

  if (total !== undefined && offset !== total) {
    await store.discard(key);
    throw new IntegrityError(`${path} has ${offset} bytes but must have ${total}. Nothing of it was kept: load again.`, { file: path });
  }
  const digest = bytesToHex(hasher.digest());
  if (file.sha256 && digest !== file.sha256.toLowerCase()) {
    await store.discard(key);
    throw new IntegrityError(`${path} does not match the SHA-256 the hub publishes (got ${digest.slice(0, 12)}…, expected ${file.sha256.slice(0, 12)}…): it was damaged on the way. Nothing of it was kept: load again.`, { file: path, expected: file.sha256, actual: digest });
  }
  if (gitHasher && bytesToHex(gitHasher.digest()) !== file.gitOid) {
    await store.discard(key);
    throw new IntegrityError(`${path} does not match the git blob id the hub lists for it (${file.gitOid!.slice(0, 12)}…): it was damaged on the way or the server is wrong. Nothing of it was kept: load again.`, { file: path, expected: file.gitOid });
  }
  await store.commit(key);
  return { path, size: offset, sha256: digest, resumed };
}
