// Models and adapters kept on this device: resolved, downloaded and verified once, then loaded from the store with no
// network. A Hugging Face repo is listed through the hub's API (@huggingface/hub) at the revision, which resolves to a
// commit sha that keys the snapshot; the files a model needs are downloaded in parallel, resumed and verified
// (fetch-file.ts), and the snapshot is recorded only when all of them are whole. Cache first: a revision already
// resolved loads from the store without asking the network.

import { HF_TOKEN, hubFetch, idleFetch } from '../hub/hub-fetch.js';
import { HubApiError, listFiles, modelInfo } from '@huggingface/hub';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { DownloadError, InvalidArgumentError, OfflineError } from '../errors.js';
import { readJson } from '../model-files.js';
import { encodePath, safeRelativeName } from '../hub/paths.js';
import type { BlobStore } from './blobs.js';
import { CachedFiles } from './cached-files.js';
import { blobKey, fileKey, findSnapshot, snapshotId, type Snapshot, type SnapshotCatalog, type SnapshotFile } from './snapshot-catalog.js';
import { fetchFile, type PlannedFile } from './fetch-file.js';
import { ProgressMeter, type DownloadProgress } from './progress.js';
import { checkSpace, type Estimate } from './quota.js';

export type SnapshotKind = 'model' | 'adapter' | 'reward';

/** Files read when present: generation settings, chat template, tokenizer extras. */
const MODEL_OPTIONAL = ['generation_config.json', 'tokenizer_config.json', 'chat_template.jinja', 'special_tokens_map.json'];
const MODEL_REQUIRED = ['config.json', 'tokenizer.json'];
const ADAPTER_REQUIRED = ['adapter_config.json', 'adapter_model.safetensors'];
const INDEX = 'model.safetensors.index.json';
/** Files a GGUF model may have beside its .gguf (its own metadata holds the config and, usually, the tokenizer). */
const GGUF_OPTIONAL = ['tokenizer.json', 'tokenizer_config.json', 'chat_template.jinja'];
/** A reward model on onnxruntime-web (the transformers.js layout): one ONNX file, its tokenizer, its config. */
const REWARD_ONNX = ['onnx/model.onnx', 'model.onnx'];
const REWARD_FILES = ['tokenizer.json', 'config.json', 'tokenizer_config.json', 'special_tokens_map.json'];
const PARALLEL = 3;

function noRewardModel(label: string): DownloadError {
  return new DownloadError(`${label} has no onnx/model.onnx or model.onnx: a reward model is an ONNX text classifier with one output (export one with optimum-cli export onnx --task text-classification).`, { status: 404, file: REWARD_ONNX[0] });
}

export interface CacheOptions {
  /** https://huggingface.co, or a local server with its layout (tests). */
  endpoint?: string;
  fetch?: typeof fetch;
  /** True when the network must not be used (the CLI's --offline, or a browser that is offline). */
  offline?: () => boolean;
  /** The browser's storage estimate, checked before a download. */
  estimate?: () => Promise<Estimate | null>;
  /** A server that sends nothing for this long is given up on (a download then resumes); default 30 s. */
  idleMs?: number;
}

export interface FetchSnapshotOptions {
  token?: string;
  /** A GGUF model: this .gguf file of the repo (the snapshot is that file and the tokenizer files beside it). */
  file?: string;
  onProgress?: (p: DownloadProgress) => void;
  signal?: AbortSignal;
}

export class ModelCache {
  readonly endpoint: string;
  readonly #fetch: typeof fetch;
  constructor(readonly store: BlobStore, readonly catalog: SnapshotCatalog, private readonly opts: CacheOptions = {}) {
    this.endpoint = (opts.endpoint ?? 'https://huggingface.co').replace(/\/$/, '');
    this.#fetch = idleFetch(opts.fetch ?? globalThis.fetch.bind(globalThis), opts.idleMs ?? 30_000);
  }

  files(s: Snapshot, label = s.source === 'hf' ? `${s.repo}@${s.revisions[0] ?? s.sha.slice(0, 7)}` : s.repo): CachedFiles {
    return new CachedFiles(this.store, s, label);
  }

  list(): Promise<Snapshot[]> {
    return this.catalog.listSnapshots();
  }

  /** Deletes a snapshot's record first (so it is never listed half-deleted), then its files. */
  async remove(id: string): Promise<void> {
    const s = await this.catalog.getSnapshot(id);
    await this.catalog.deleteSnapshot(id);
    for (const f of s?.files ?? []) await this.store.delete(fileKey(s!, f.path));
  }

  #offline(): boolean {
    return this.opts.offline?.() ?? false;
  }

  async #notCached(what: string, kind: SnapshotKind, cause?: string): Promise<never> {
    const kept = (await this.list()).filter((s) => s.kind === kind).map((s) => s.source === 'hf' ? `${s.repo}@${s.revisions.join(',')}` : s.repo);
    throw new OfflineError(
      `${what} is not kept on this device and ${cause ?? 'the network is off'}. Connect once to download it` +
        (kept.length ? `, or use a kept ${kind}: ${kept.join('; ')}.` : '.'),
      { kept },
    );
  }

  /** A Hugging Face repo at a revision: from the store when kept, else resolved, downloaded and kept. */
  async hf(repo: string, revision: string, kind: SnapshotKind, o: FetchSnapshotOptions = {}): Promise<CachedFiles> {
    // A GGUF file is kept as its own snapshot, named repo/file: a repo often holds a dozen quantizations.
    const key = o.file ? `${repo}/${o.file}` : repo;
    const label = `${key}@${revision}`;
    const all = await this.list();
    const kept = findSnapshot(all, 'hf', key, revision);
    if (kept && kept.kind === kind) return this.files(kept, label);
    if (this.#offline()) return this.#notCached(label, kind);
    const { sha, listing } = await this.#resolve(repo, revision, o.token, kind);
    if (o.file) return this.#ggufSnapshot(repo, o.file, key, revision, sha, listing, all, o, kind);
    if (kind === 'reward') {
      const onnx = REWARD_ONNX.find((p) => listing.has(p));
      if (!onnx) throw noRewardModel(label);
      if (!listing.has('tokenizer.json')) throw new DownloadError(`${label} has no tokenizer.json: the reward model's tokenizer is needed to score text.`, { status: 404, file: 'tokenizer.json' });
      return this.#fileSet(repo, key, revision, sha, [onnx, ...REWARD_FILES.filter((p) => listing.has(p))], listing, all, o, kind);
    }
    const id = snapshotId('hf', repo, sha);
    const same = all.find((s) => s.id === id);
    if (same) return this.#alsoAt(same, revision, label);
    const url = (path: string) => `${this.endpoint}/${repo}/resolve/${sha}/${encodePath(path)}`;
    const headers: Record<string, string> = o.token ? { Authorization: `Bearer ${o.token}` } : {};
    const has = (p: string) => listing.has(p);
    const planned = (p: string): PlannedFile => ({ path: p, ...listing.get(p)! });
    const required = kind === 'model' ? MODEL_REQUIRED : ADAPTER_REQUIRED;
    const missing = required.filter((p) => !has(p));
    if (kind === 'model' && !has(INDEX) && !has('model.safetensors')) missing.push('model.safetensors');
    if (missing.length) {
      const ggufs = [...listing.keys()].filter((p) => /\.gguf$/i.test(p));
      if (kind === 'model' && ggufs.length) {
        throw new DownloadError(`${label} is a GGUF repo: name one of its files after the repo id, e.g. ${repo}/${pickGguf(ggufs)} (it has ${ggufs.slice(0, 6).join(', ')}${ggufs.length > 6 ? ', …' : ''}).`, { status: 404, file: 'config.json' });
      }
      const other = [...listing.keys()].filter((p) => /\.(bin|pt|pth|onnx)$/.test(p)).slice(0, 3);
      throw new DownloadError(
        `${label} has no ${missing.join(', ')}. ${kind === 'model' ? 'A model needs config.json, tokenizer.json and safetensors weights (or a GGUF file)' : 'A PEFT adapter needs adapter_config.json and adapter_model.safetensors'}` +
          (other.length ? ` (this repo has ${other.join(', ')}, which LoRA Lab does not read).` : '.'),
        { status: 404, file: missing[0] },
      );
    }
    const first = [...required, ...(kind === 'model' ? MODEL_OPTIONAL.filter(has) : []), ...(kind === 'model' && has(INDEX) ? [INDEX] : [])].map(planned);
    let total = first.reduce((a, f) => a + (f.size ?? 0), 0);
    // Shards are named by the index, which is downloaded with the small files; their sizes are in the listing.
    const weightNames = kind === 'model' && !has(INDEX) ? ['model.safetensors'] : [];
    total += weightNames.reduce((a, p) => a + listing.get(p)!.size, 0);
    const sizeOfShards = [...listing.entries()].filter(([p]) => p.endsWith('.safetensors') && p !== 'model.safetensors').reduce((a, [, f]) => a + f.size, 0);
    await this.#checkSpace(id, kind === 'model' && has(INDEX) ? total + sizeOfShards : total);

    const run = new Download(this.store, id, { fetch: this.#fetch, headers, signal: o.signal }, o.onProgress);
    for (const f of [...first, ...weightNames.map(planned)]) run.meter.plan(f.path, f.size ?? 0);
    const fetched = await run.all(first.map((f) => ({ file: f, url: url(f.path) })));
    if (kind === 'model' && has(INDEX)) {
      const shards = await shardNames(this.files(partialSnapshot(id, kind, repo, sha, fetched), label));
      for (const s of shards) {
        if (!has(s)) throw new DownloadError(`${INDEX} of ${label} names ${s}, which the repo does not have. The repo is incomplete: pick another revision.`, { file: s, status: 404 });
      }
      weightNames.push(...shards);
      for (const s of shards) run.meter.plan(s, listing.get(s)!.size);
    }
    fetched.push(...await run.all(weightNames.map((p) => ({ file: planned(p), url: url(p) }))));
    const snapshot: Snapshot = { ...partialSnapshot(id, kind, repo, sha, fetched), revisions: [revision] };
    await this.catalog.putSnapshot(snapshot);
    return this.files(snapshot, label);
  }

  async #ggufSnapshot(
    repo: string, file: string, key: string, revision: string, sha: string, listing: Map<string, { size: number; sha256?: string }>, all: Snapshot[], o: FetchSnapshotOptions,
    kind: SnapshotKind,
  ): Promise<CachedFiles> {
    const label = `${key}@${revision}`;
    if (!listing.has(file)) {
      const ggufs = [...listing.keys()].filter((p) => /\.gguf$/i.test(p));
      throw new DownloadError(`${repo}@${revision} has no ${file}.${ggufs.length ? ` Its GGUF files: ${ggufs.slice(0, 8).join(', ')}${ggufs.length > 8 ? ', …' : ''}.` : ' It has no GGUF file.'}`, { status: 404, file });
    }
    // Tokenizer files at the repo's root, when it has them (the GGUF's metadata holds the tokenizer otherwise).
    const side = kind === 'model' ? GGUF_OPTIONAL.filter((p) => listing.has(p)) : [];
    return this.#fileSet(repo, key, revision, sha, [file, ...side], listing, all, o, kind);
  }

  /** Named files of a repo at a commit, kept as the snapshot `key` (a GGUF file and its tokenizer, a reward model). */
  async #fileSet(
    repo: string, key: string, revision: string, sha: string, paths: string[], listing: Map<string, { size: number; sha256?: string }>, all: Snapshot[],
    o: FetchSnapshotOptions, kind: SnapshotKind,
  ): Promise<CachedFiles> {
    const label = `${key}@${revision}`;
    const id = snapshotId('hf', key, sha);
    const same = all.find((s) => s.id === id);
    if (same) return this.#alsoAt(same, revision, label);
    const planned = paths.map((p): PlannedFile => ({ path: p, ...listing.get(p)! }));
    await this.#checkSpace(id, planned.reduce((a, f) => a + (f.size ?? 0), 0));
    const run = new Download(this.store, id, { fetch: this.#fetch, headers: o.token ? { Authorization: `Bearer ${o.token}` } : {}, signal: o.signal }, o.onProgress);
    for (const f of planned) run.meter.plan(f.path, f.size ?? 0);
    const fetched = await run.all(planned.map((f) => ({ file: f, url: `${this.endpoint}/${repo}/resolve/${sha}/${encodePath(f.path)}` })));
    const snapshot: Snapshot = { ...partialSnapshot(id, kind, key, sha, fetched), revisions: [revision] };
    await this.catalog.putSnapshot(snapshot);
    return this.files(snapshot, label);
  }

  /** A kept snapshot reached under another revision name (a tag or branch pointing at the same commit): recorded. */
  async #alsoAt(same: Snapshot, revision: string, label: string): Promise<CachedFiles> {
    const s = { ...same, revisions: [...new Set([...same.revisions, revision])] };
    await this.catalog.putSnapshot(s);
    return this.files(s, label);
  }

  /** Any folder served over HTTP with the hub's file layout: the same resume and size checks, keyed by the URL. */
  async url(baseUrl: string, kind: SnapshotKind, o: FetchSnapshotOptions = {}): Promise<CachedFiles> {
    const gguf = /\/([^/?#]+\.gguf)$/i.exec(baseUrl);
    if (gguf) return this.#ggufUrl(baseUrl, decodeURIComponent(gguf[1]), kind, o);
    const base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
    const id = snapshotId('url', bytesToHex(sha256(new TextEncoder().encode(base))).slice(0, 16), '');
    const kept = await this.catalog.getSnapshot(id);
    if (kept && kept.kind === kind) return this.files(kept, base);
    if (this.#offline()) return this.#notCached(base, kind);
    const run = new Download(this.store, id, { fetch: this.#fetch, signal: o.signal }, o.onProgress);
    const url = (p: string) => base + encodePath(p);
    if (kind === 'reward') {
      let onnx: SnapshotFile | null = null;
      for (const p of REWARD_ONNX) if (!onnx) [onnx] = await run.all([{ file: { path: p }, url: url(p), optional: true }]);
      if (!onnx) throw noRewardModel(base);
      const rest = await run.all(REWARD_FILES.map((p, i) => ({ file: { path: p }, url: url(p), optional: i > 0 })));
      const snapshot: Snapshot = { ...partialSnapshot(id, kind, base, '', [onnx, ...rest]), source: 'url' };
      await this.catalog.putSnapshot(snapshot);
      return this.files(snapshot, base);
    }
    const required = kind === 'model' ? MODEL_REQUIRED : ADAPTER_REQUIRED;
    const fetched = await run.all(required.map((p) => ({ file: { path: p }, url: url(p) })));
    if (kind === 'model') {
      fetched.push(...await run.all([...MODEL_OPTIONAL, INDEX].map((p) => ({ file: { path: p }, url: url(p), optional: true }))));
      const shards = await shardNames(this.files(partialSnapshot(id, kind, base, '', fetched), base));
      fetched.push(...await run.all(shards.map((p) => ({ file: { path: p }, url: url(p) }))));
    }
    const snapshot: Snapshot = { ...partialSnapshot(id, kind, base, '', fetched), source: 'url' };
    await this.catalog.putSnapshot(snapshot);
    return this.files(snapshot, base);
  }

  /** A .gguf file by URL, with the tokenizer files of its folder when there are any; keyed by the URL. */
  async #ggufUrl(fileUrl: string, name: string, kind: SnapshotKind, o: FetchSnapshotOptions): Promise<CachedFiles> {
    const id = snapshotId('url', bytesToHex(sha256(new TextEncoder().encode(fileUrl))).slice(0, 16), '');
    const kept = await this.catalog.getSnapshot(id);
    if (kept && kept.kind === kind) return this.files(kept, fileUrl);
    if (this.#offline()) return this.#notCached(fileUrl, kind);
    const folder = fileUrl.slice(0, fileUrl.lastIndexOf('/') + 1);
    const run = new Download(this.store, id, { fetch: this.#fetch, signal: o.signal }, o.onProgress);
    const fetched = await run.all([{ file: { path: name }, url: fileUrl }]);
    if (kind === 'model') fetched.push(...await run.all(GGUF_OPTIONAL.map((p) => ({ file: { path: p }, url: folder + encodePath(p), optional: true }))));
    const snapshot: Snapshot = { ...partialSnapshot(id, kind, fileUrl, '', fetched), source: 'url' };
    await this.catalog.putSnapshot(snapshot);
    return this.files(snapshot, fileUrl);
  }

  async #checkSpace(id: string, total: number): Promise<void> {
    if (!this.opts.estimate) return;
    const partial = (await this.store.list()).filter((b) => !b.complete && b.key.startsWith(`${id}/`)).reduce((a, b) => a + b.size, 0);
    const kept = (await this.list()).map((s) => ({ label: s.repo, bytes: s.bytes }));
    checkSpace(total - partial, await this.opts.estimate(), kept);
  }

  async #resolve(repo: string, revision: string, token: string | undefined, kind: SnapshotKind): Promise<{ sha: string; listing: Map<string, { size: number; sha256?: string; gitOid?: string }> }> {
    if (token !== undefined && !HF_TOKEN.test(token)) {
      throw new InvalidArgumentError('A Hugging Face access token is "hf_" followed by letters and digits: copy it again from huggingface.co (Settings > Access Tokens), without spaces or line breaks.', { field: 'token' });
    }
    // The token goes to the hub's origin only, and the listing is read from there only (a Link to another host is refused).
    const common = { hubUrl: this.endpoint, fetch: hubFetch(this.endpoint, token, this.#fetch, 'refuse') };
    try {
      const info = await modelInfo({ ...common, name: repo, revision, additionalFields: ['sha'] });
      const sha = (info as { sha?: string }).sha;
      if (typeof sha !== 'string' || !/^[0-9a-f]{40}$/.test(sha)) {
        throw new DownloadError(`The hub did not give a commit for ${repo}@${revision}. Try again later.`, { status: 502 });
      }
      const listing = new Map<string, { size: number; sha256?: string; gitOid?: string }>();
      for await (const f of listFiles({ ...common, repo: { type: 'model', name: repo }, revision: sha, recursive: true })) {
        if (f.type !== 'file') continue;
        safeRelativeName(f.path, `The listing of ${repo}`);
        listing.set(f.path, { size: f.lfs?.size ?? f.size, sha256: f.lfs?.oid, gitOid: f.lfs ? undefined : f.oid });
      }
      return { sha, listing };
    } catch (e) {
      if (e instanceof HubApiError) {
        const s = e.statusCode;
        if (s === 401 || s === 403) {
          throw new DownloadError(`${repo}: ${s} ${s === 401 ? 'Unauthorized' : 'Forbidden'}. The repo is gated or private: accept its licence on huggingface.co and give an access token (Settings > Access Tokens)${token ? '; the token given was refused' : ''}.`, { status: s, url: e.url });
        }
        if (s === 404) throw new DownloadError(`${repo}@${revision} was not found on the hub. Check the repo id (owner/name) and the revision (a branch, tag or commit).`, { status: 404, url: e.url });
        throw new DownloadError(`The hub answered ${s} for ${repo}. Try again later.`, { status: s, url: e.url });
      }
      if ((e as Error).name === 'TimeoutError') throw new DownloadError(`The hub at ${this.endpoint} stopped answering about ${repo} (${(e as Error).message}). Try again later.`, { status: 504 });
      if (e instanceof TypeError || (e as Error).name === 'TypeError') return this.#notCached(`${repo}@${revision}`, kind, `the hub cannot be reached (${(e as Error).message})`);
      throw e;
    }
  }
}

/** A snapshot record for the files fetched so far (it is stored only once all are there). */
function partialSnapshot(id: string, kind: SnapshotKind, repo: string, sha: string, fetched: (SnapshotFile | null)[]): Snapshot {
  const files = fetched.filter((f): f is SnapshotFile => f !== null);
  return { id, kind, source: 'hf', repo, sha, revisions: [], files, bytes: files.reduce((a, f) => a + f.size, 0), savedAt: Date.now() };
}

async function shardNames(files: CachedFiles): Promise<string[]> {
  const index = await readJson(files, INDEX, true);
  if (!index) return ['model.safetensors'];
  const map = index.weight_map;
  if (typeof map !== 'object' || map === null) throw new DownloadError(`${INDEX} has no weight_map. The file is corrupt: download it again.`, { file: INDEX });
  return [...new Set(Object.values(map as Record<string, unknown>).map((n) => safeRelativeName(n, INDEX)))].sort();
}

/** One snapshot's downloads: PARALLEL files at a time, one meter for speed and time left. */
class Download {
  readonly meter: ProgressMeter;
  constructor(
    private readonly store: BlobStore, private readonly id: string,
    private readonly opts: { fetch: typeof fetch; headers?: Record<string, string>; signal?: AbortSignal },
    onProgress?: (p: DownloadProgress) => void,
  ) {
    this.meter = new ProgressMeter(onProgress ?? (() => {}));
  }

  /**
   * Fetches the jobs, PARALLEL at a time. When some fail, the error thrown is that of the first failed job in the
   * list's order (config.json before tokenizer.json), whichever finished first, so the message is the same every time.
   */
  async all(jobs: { file: PlannedFile; url: string; optional?: boolean }[]): Promise<(SnapshotFile | null)[]> {
    const out: (SnapshotFile | null)[] = new Array(jobs.length).fill(null);
    const errors = new Map<number, unknown>();
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < jobs.length && errors.size === 0; i = next++) {
        try {
          out[i] = await this.#one(jobs[i]);
        } catch (e) {
          errors.set(i, e);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL, jobs.length) }, worker));
    if (errors.size) throw errors.get(Math.min(...errors.keys()));
    return out;
  }

  async #one({ file, url, optional }: { file: PlannedFile; url: string; optional?: boolean }): Promise<SnapshotFile | null> {
    const key = blobKey(this.id, file.path);
    const done = await this.store.open(key);
    if (done && (file.size === undefined || done.size === file.size)) {
      // Finished by an earlier, interrupted download of this snapshot: it was verified before it was committed.
      this.meter.update(file.path, done.size, done.size, true);
      return { path: file.path, size: done.size, sha256: file.sha256 };
    }
    const r = await fetchFile(this.store, key, url, file, {
      ...this.opts, optional,
      onBytes: (loaded, total) => this.meter.update(file.path, loaded, total),
    });
    if (!r) return null;
    this.meter.resumedBytes += r.resumed;
    this.meter.update(file.path, r.size, r.size, true);
    return { path: r.path, size: r.size, sha256: r.sha256 };
  }
}

/** The GGUF file to suggest from a repo's list: a Q4_K_M one when there is one (the usual choice), else the first. */
function pickGguf(names: string[]): string {
  return names.find((n) => /q4_k_m/i.test(n)) ?? names[0];
}
