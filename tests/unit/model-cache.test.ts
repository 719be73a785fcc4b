// The model cache against a local server with the hub's URL layout and API: listing through @huggingface/hub at a
// commit sha, parallel downloads with progress, resume after a cut connection (HTTP Range), SHA-256 verification,
// revisions pinned to a sha, gated repos, the quota check, and loading with the network off. Node, on disk.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DownloadError, IntegrityError, InvalidArgumentError, OfflineError, StorageFullError } from '../../src/lib/errors.js';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readBlob } from '../../src/lib/store/blobs.js';
import { blobKey } from '../../src/lib/store/snapshot-catalog.js';
import { diskCache } from '../../src/lib/store/disk-catalog.js';
import { ModelCache } from '../../src/lib/store/model-cache.js';
import type { DownloadProgress } from '../../src/lib/store/progress.js';
import { Rng } from '../../src/lib/util/rng.js';
import { sha256Hex, startHfServer, type HfServer, type Repo } from '../helpers/hf-server.js';

const enc = new TextEncoder();
function randomBytes(n: number, seed: number): Uint8Array {
  const r = new Rng(seed);
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (r.next() * 256) | 0;
  return b;
}

/** A model repo's file set: side files, an index and two shards of random bytes (the cache does not parse weights). */
function modelRepo(seed: number): Map<string, Uint8Array> {
  return new Map([
    ['config.json', enc.encode(JSON.stringify({ seed }))],
    ['tokenizer.json', enc.encode('{"model":{}}')],
    ['generation_config.json', enc.encode('{}')],
    ['README.md', enc.encode('not downloaded')],
    ['pytorch_model.bin', randomBytes(1000, seed + 9)],
    ['model.safetensors.index.json', enc.encode(JSON.stringify({ weight_map: { a: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors' } }))],
    ['model-00001-of-00002.safetensors', randomBytes(300_000, seed + 1)],
    ['model-00002-of-00002.safetensors', randomBytes(200_001, seed + 2)],
  ]);
}
const WANTED = ['config.json', 'tokenizer.json', 'generation_config.json', 'model.safetensors.index.json', 'model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'];
const OLD_SHA = 'a'.repeat(40);

// Downloads with retries and back-off take seconds; a loaded CI machine takes longer.
describe('model cache', { timeout: 60_000 }, () => {
  let server: HfServer;
  const repos: Record<string, Repo> = {};
  const dirs: string[] = [];
  const cacheAt = (opts: ConstructorParameters<typeof ModelCache>[2] = {}) => {
    const dir = mkdtempSync(join(tmpdir(), 'lora-lab-cache-'));
    dirs.push(dir);
    const { store, catalog } = diskCache(dir);
    return { dir, store, catalog, cache: new ModelCache(store, catalog, { endpoint: server.endpoint, ...opts }) };
  };

  beforeAll(async () => {
    Object.assign(repos, {
      'org/model': { files: modelRepo(1), commits: { [OLD_SHA]: modelRepo(2) }, refs: { v1: OLD_SHA }, delayMs: 1, piece: 32768 },
      'org/cut': { files: modelRepo(3), piece: 8192 },
      'org/bad-hash': { files: modelRepo(4), publishedSha256: new Map([['model-00002-of-00002.safetensors', '0'.repeat(64)]]) },
      'org/gated': { files: modelRepo(5), token: 'hf_right' },
      'org/weights-bin': { files: new Map([['config.json', enc.encode('{}')], ['tokenizer.json', enc.encode('{}')], ['pytorch_model.bin', new Uint8Array(10)]]) },
      'org/adapter': { files: new Map([['adapter_config.json', enc.encode('{"r":4}')], ['adapter_model.safetensors', randomBytes(5000, 7)]]) },
      'org/reward': { files: new Map([['onnx/model.onnx', randomBytes(30_000, 13)], ['onnx/model_quantized.onnx', randomBytes(9_000, 14)], ['tokenizer.json', enc.encode('{}')], ['config.json', enc.encode('{"num_labels":1}')], ['README.md', enc.encode('x')]]) },
      'org/gguf': { files: new Map([['model-Q4_K_M.gguf', randomBytes(40_000, 11)], ['model-Q8_0.gguf', randomBytes(70_000, 12)], ['tokenizer.json', enc.encode('{}')], ['README.md', enc.encode('x')]]) },
    });
    server = await startHfServer(repos);
  });
  afterAll(async () => {
    await server.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  afterEach(() => { server.requests.length = 0; server.ranges.length = 0; server.authorizations.length = 0; });

  it('lists the repo at its commit, downloads what a model needs in parallel with progress, and keeps it whole', async () => {
    const { cache, store, catalog } = cacheAt();
    const progress: DownloadProgress[] = [];
    const files = await cache.hf('org/model', 'main', 'model', { onProgress: (p) => progress.push(p) });
    const sha = files.snapshot.sha;
    expect(sha).toMatch(/^[0-9a-f]{40}$/);
    expect(server.requests[0]).toMatch(/^\/api\/models\/org\/model\/revision\/main\?/);
    expect(server.requests).toContain(`/api/models/org/model/tree/${sha}?recursive=true&expand=false`);
    // Files come from the resolved commit, never from the moving branch name; README and .bin are not fetched.
    const fetched = server.requests.filter((r) => r.includes('/resolve/'));
    expect(fetched.every((r) => r.startsWith(`/org/model/resolve/${sha}/`))).toBe(true);
    expect(fetched.map((r) => r.split('/').pop()).sort()).toEqual([...WANTED].sort());
    expect(files.snapshot.files.map((f) => f.path).sort()).toEqual([...WANTED].sort());
    for (const name of WANTED) expect(await files.bytes(name)).toEqual(repos['org/model'].files.get(name));
    expect((await files.snapshot.files.find((f) => f.path === 'model-00001-of-00002.safetensors')!).sha256).toBe(sha256Hex(repos['org/model'].files.get('model-00001-of-00002.safetensors')!));
    // Progress: every file listed with its size, a total that adds up, a speed, and a last report at 100 %.
    const last = progress.at(-1)!;
    expect(last.allLoaded).toBe(last.allTotal);
    expect(last.allTotal).toBe(WANTED.reduce((a, n) => a + repos['org/model'].files.get(n)!.byteLength, 0));
    expect(last.files.every((f) => f.done && f.loaded === f.total)).toBe(true);
    expect(progress.some((p) => p.bytesPerSecond > 0 && Number.isFinite(p.etaMs))).toBe(true);
    // Parallel: several files were being sent at once.
    expect(server.maxInFlight).toBeGreaterThan(1);
    expect((await catalog.listSnapshots()).map((s) => s.revisions)).toEqual([['main']]);
    expect((await store.list()).filter((b) => !b.complete)).toEqual([]);
  });

  it('loads a kept model with the network off, and says what is kept when asked for something that is not', async () => {
    const { dir } = cacheAt();
    const online = new ModelCache(diskCache(dir).store, diskCache(dir).catalog, { endpoint: server.endpoint });
    const first = await online.hf('org/model', 'main', 'model');
    server.requests.length = 0;
    const offline = new ModelCache(diskCache(dir).store, diskCache(dir).catalog, { endpoint: 'http://127.0.0.1:9', offline: () => true });
    const again = await offline.hf('org/model', 'main', 'model');
    expect(await again.bytes('model-00002-of-00002.safetensors')).toEqual(await first.bytes('model-00002-of-00002.safetensors'));
    expect(server.requests).toEqual([]);
    const err = await offline.hf('org/other', 'main', 'model').catch((e) => e);
    expect(err).toBeInstanceOf(OfflineError);
    expect(err.message).toMatch(/org\/other@main is not kept.*use a kept model: org\/model@main/);
    // Not --offline but the hub is unreachable: the same typed error, not a crash.
    const unreachable = new ModelCache(diskCache(dir).store, diskCache(dir).catalog, { endpoint: 'http://127.0.0.1:9' });
    expect(await unreachable.hf('org/other', 'main', 'model').catch((e) => e)).toBeInstanceOf(OfflineError);
  });

  it('resumes a file whose connection was cut, with a Range request, and the result is byte-identical', async () => {
    const shard = 'model-00001-of-00002.safetensors';
    // Cut once: the download resumes by itself within the same call.
    repos['org/cut'].cuts = [{ file: shard, bytes: 100_000, times: 1 }];
    const a = cacheAt();
    const files = await a.cache.hf('org/cut', 'main', 'model');
    expect(await files.bytes(shard)).toEqual(repos['org/cut'].files.get(shard));
    // Resumed from what had arrived.
    expect(server.ranges.filter((r) => r !== null)).toEqual(['bytes=100000-']);

    // Cut more often than it retries: the call fails with what was kept; the next call resumes from there.
    repos['org/cut'].cuts = [{ file: shard, bytes: 40_000, times: 4 }];
    const b = cacheAt();
    const err = await b.cache.hf('org/cut', 'main', 'model').catch((e) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect(err.message).toMatch(/connection broke .*Load again to resume/);
    const kept = await b.store.partialSize(blobKey(`hf/org/cut/${files.snapshot.sha}`, shard));
    expect(kept).toBe(160_000);
    expect(await b.catalog.listSnapshots()).toEqual([]); // nothing is listed until every file is whole
    server.ranges.length = 0;
    const resumed = await b.cache.hf('org/cut', 'main', 'model');
    expect(server.ranges).toContain(`bytes=${kept}-`);
    expect(await resumed.bytes(shard)).toEqual(repos['org/cut'].files.get(shard));
    expect(resumed.snapshot.files.find((f) => f.path === shard)!.sha256).toBe(sha256Hex(repos['org/cut'].files.get(shard)!));
  });

  it('refuses a file whose SHA-256 differs from the published one and keeps nothing of it', async () => {
    const { cache, store, catalog } = cacheAt();
    const err = await cache.hf('org/bad-hash', 'main', 'model').catch((e) => e);
    expect(err).toBeInstanceOf(IntegrityError);
    expect(err.message).toMatch(/model-00002-of-00002\.safetensors does not match the SHA-256/);
    expect((await store.list()).some((b) => b.key.endsWith('model-00002-of-00002.safetensors'))).toBe(false);
    expect(await catalog.listSnapshots()).toEqual([]);
  });

  it('pins a revision to its commit: a tag and a sha give the old files, main the new ones, each kept once', async () => {
    const { cache, catalog } = cacheAt();
    const old = await cache.hf('org/model', 'v1', 'model');
    expect(old.snapshot.sha).toBe(OLD_SHA);
    expect(await old.bytes('config.json')).toEqual(enc.encode(JSON.stringify({ seed: 2 })));
    const bySha = await cache.hf('org/model', OLD_SHA, 'model');
    expect(bySha.snapshot.id).toBe(old.snapshot.id);
    const head = await cache.hf('org/model', 'main', 'model');
    expect(await head.bytes('config.json')).toEqual(enc.encode(JSON.stringify({ seed: 1 })));
    const kept = await catalog.listSnapshots();
    expect(kept.length).toBe(2);
    expect(kept.find((s) => s.sha === OLD_SHA)!.revisions).toEqual(['v1']);
  });

  it('a gated repo needs a token; the token goes to the hub only', async () => {
    const { cache } = cacheAt();
    const err = await cache.hf('org/gated', 'main', 'model').catch((e) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect(err.details.status).toBe(401);
    expect(err.message).toMatch(/gated or private.*access token/);
    expect(await cache.hf('org/gated', 'main', 'model', { token: 'hf_wrong' }).catch((e) => e.details.status)).toBe(401);
    const files = await cache.hf('org/gated', 'main', 'model', { token: 'hf_right' });
    expect(await files.bytes('config.json')).toEqual(repos['org/gated'].files.get('config.json'));
    expect(server.authorizations.at(-1)).toBe('Bearer hf_right');
  });

  it('a listing that names its next page on another host is not followed, and the token never goes there', async () => {
    const seen: (string | null)[] = [];
    const other = createServer((req, res) => { seen.push(req.headers.authorization ?? null); res.writeHead(200, { 'content-type': 'application/json' }); res.end('[]'); });
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
    try {
      repos['org/next-elsewhere'] = { files: modelRepo(6), token: 'hf_right', nextPage: `http://127.0.0.1:${(other.address() as AddressInfo).port}/api/models/org/next-elsewhere/tree/main?cursor=x` };
      const { cache } = cacheAt();
      const err = await cache.hf('org/next-elsewhere', 'main', 'model', { token: 'hf_right' }).catch((e) => e);
      expect(err).toBeInstanceOf(DownloadError);
      expect(err.message).toMatch(/sent the request on to another host .* it was not followed/);
      expect(seen).toEqual([]);
    } finally {
      other.close();
    }
  });

  it('a server that stalls mid-file is given up on after its quiet time and the download resumes; a stalled listing fails in words', async () => {
    repos['org/stall'] = { files: modelRepo(7), stalls: [{ file: 'model-00001-of-00002.safetensors', bytes: 100_000, times: 1 }] };
    const { cache } = cacheAt({ idleMs: 400 });
    const files = await cache.hf('org/stall', 'main', 'model');
    expect(await files.bytes('model-00001-of-00002.safetensors')).toEqual(repos['org/stall'].files.get('model-00001-of-00002.safetensors'));
    expect(server.ranges.filter((r) => r === 'bytes=100000-').length).toBe(1);
    repos['org/stall-listing'] = { files: modelRepo(8), stallListing: 99 };
    const t0 = performance.now();
    const err = await cacheAt({ idleMs: 400 }).cache.hf('org/stall-listing', 'main', 'model').catch((e) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect(err.message).toMatch(/stopped answering about org\/stall-listing \(no data arrived for 0.4 s\)/);
    expect(performance.now() - t0).toBeLessThan(5000);
  });

  it('checks a git (non-LFS) file against the blob id the listing gives, and keeps nothing of a mismatch', async () => {
    repos['org/bad-git'] = { files: modelRepo(9), publishedGitOid: new Map([['config.json', '1'.repeat(40)]]) };
    const { cache, store } = cacheAt();
    const err = await cache.hf('org/bad-git', 'main', 'model').catch((e) => e);
    expect(err).toBeInstanceOf(IntegrityError);
    expect(err.message).toMatch(/config\.json does not match the git blob id the hub lists for it/);
    expect((await store.list()).filter((b) => b.key.endsWith('/config.json'))).toEqual([]);
  });

  it('a token with a line break (or anything but hf_ and letters, digits, _ and -) is refused without being echoed', async () => {
    const { cache } = cacheAt();
    const n = server.requests.length;
    for (const token of ['hf_abc\r\nX-Evil: 1', 'hf_abc def', 'secret-abc']) {
      const err = await cache.hf('org/gated', 'main', 'model', { token }).catch((e) => e);
      expect(err).toBeInstanceOf(InvalidArgumentError);
      expect(err.message).not.toContain(token.slice(3));
    }
    expect(server.requests.length).toBe(n);
  });

  it('says what a repo lacks, and checks the space before downloading anything', async () => {
    const { cache, store } = cacheAt();
    const err = await cache.hf('org/weights-bin', 'main', 'model').catch((e) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect(err.message).toMatch(/has no model\.safetensors.*pytorch_model\.bin/);

    const small = cacheAt({ estimate: async () => ({ quota: 100_000, usage: 40_000 }) });
    const full = await small.cache.hf('org/model', 'main', 'model').catch((e) => e);
    expect(full).toBeInstanceOf(StorageFullError);
    expect(full.message).toMatch(/needs 4\d\d KB but only 59 KB .* is free/);
    expect(await small.store.list()).toEqual([]);
    expect(server.requests.filter((r) => r.includes('/resolve/'))).toEqual([]);
    expect(await store.list()).toEqual([]);
  });

  it('a GGUF repo: one named .gguf file (and the tokenizer beside it) is downloaded and kept as its own model', async () => {
    const { cache } = cacheAt();
    const plain = await cache.hf('org/gguf', 'main', 'model').catch((e) => e);
    expect(plain).toBeInstanceOf(DownloadError);
    expect(plain.message).toMatch(/is a GGUF repo: name one of its files after the repo id, e.g\. org\/gguf\/model-Q4_K_M\.gguf/);
    const files = await cache.hf('org/gguf', 'main', 'model', { file: 'model-Q4_K_M.gguf' });
    expect(files.gguf).toBe('model-Q4_K_M.gguf');
    expect(files.snapshot.repo).toBe('org/gguf/model-Q4_K_M.gguf');
    const fetched = server.requests.filter((r) => r.includes('/resolve/')).map((r) => r.split('/').pop()).sort();
    expect(fetched).toEqual(['model-Q4_K_M.gguf', 'tokenizer.json']); // not the other quantization, not the README
    expect(await files.bytes('model-Q4_K_M.gguf')).toEqual(repos['org/gguf'].files.get('model-Q4_K_M.gguf'));
    const wrong = await cache.hf('org/gguf', 'main', 'model', { file: 'model-Q2_K.gguf' }).catch((e) => e);
    expect(wrong.message).toMatch(/has no model-Q2_K\.gguf\. Its GGUF files: model-Q4_K_M\.gguf, model-Q8_0\.gguf/);
    // By URL: the file, and the tokenizer of its folder.
    const byUrl = await cacheAt().cache.url(`${server.endpoint}/org/gguf/resolve/main/model-Q8_0.gguf`, 'model');
    expect(byUrl.gguf).toBe('model-Q8_0.gguf');
    expect(await byUrl.bytes('tokenizer.json')).toEqual(enc.encode('{}'));
  });

  it('a reward model: its ONNX file, tokenizer and config (not the other ONNX variants), by repo or URL; a repo without ONNX is named as such', async () => {
    const { cache } = cacheAt();
    const files = await cache.hf('org/reward', 'main', 'reward');
    expect(files.snapshot.kind).toBe('reward');
    const fetched = server.requests.filter((r) => r.includes('/resolve/')).map((r) => r.split('/resolve/')[1].split('/').slice(1).join('/')).sort();
    expect(fetched).toEqual(['config.json', 'onnx/model.onnx', 'tokenizer.json']);
    expect(await files.bytes('onnx/model.onnx')).toEqual(repos['org/reward'].files.get('onnx/model.onnx'));
    server.requests.length = 0;
    const byUrl = await cacheAt().cache.url(`${server.endpoint}/org/reward/resolve/main/`, 'reward');
    expect(await byUrl.bytes('onnx/model.onnx')).toEqual(repos['org/reward'].files.get('onnx/model.onnx'));
    expect(server.requests.some((r) => r.endsWith('/model_quantized.onnx'))).toBe(false);
    const notOnnx = await cache.hf('org/adapter', 'main', 'reward').catch((e) => e);
    expect(notOnnx).toBeInstanceOf(DownloadError);
    expect(notOnnx.message).toMatch(/has no onnx\/model\.onnx or model\.onnx: a reward model is an ONNX text classifier/);
    const byUrlNot = await cacheAt().cache.url(`${server.endpoint}/org/adapter/resolve/main/`, 'reward').catch((e) => e);
    expect(byUrlNot.message).toMatch(/has no onnx\/model\.onnx or model\.onnx/);
  });

  it('plain URLs: the same resume and size checks, keyed by the URL', async () => {
    const base = `${server.endpoint}/org/adapter/resolve/main/`;
    repos['org/adapter'].cuts = [{ file: 'adapter_model.safetensors', bytes: 3000, times: 1 }];
    const { cache, dir } = cacheAt();
    const files = await cache.url(base, 'adapter');
    expect(server.ranges.some((r) => r !== null && /^bytes=[1-9]\d*-$/.test(r))).toBe(true);
    expect(await files.bytes('adapter_model.safetensors')).toEqual(repos['org/adapter'].files.get('adapter_model.safetensors'));
    // A server that ignores Range: the partial file is started over, not appended to.
    repos['org/adapter'].noRange = true;
    repos['org/adapter'].cuts = [{ file: 'adapter_model.safetensors', bytes: 3000, times: 1 }];
    const other = cacheAt();
    const again = await other.cache.url(base, 'adapter');
    expect(await again.bytes('adapter_model.safetensors')).toEqual(repos['org/adapter'].files.get('adapter_model.safetensors'));
    repos['org/adapter'].noRange = false;
    // Kept: the second time needs no network.
    const offline = new ModelCache(diskCache(dir).store, diskCache(dir).catalog, { offline: () => true });
    expect(await (await offline.url(base, 'adapter')).bytes('adapter_config.json')).toEqual(enc.encode('{"r":4}'));
    expect(await readBlob(diskCache(dir).store, blobKey(files.snapshot.id, 'adapter_config.json'))).toEqual(enc.encode('{"r":4}'));
  });
  it('a URL that is not a model folder names its first missing file, whichever answer comes first', async () => {
    // The folder has nothing; tokenizer.json's 404 arrives before config.json's. The message must not depend on timing.
    const html = (delay: number) => new Promise<Response>((r) => setTimeout(() => r(new Response('<!doctype html>', { headers: { 'content-type': 'text/html' } })), delay));
    const slowFirst = (async (input: string | URL | Request) => html(String(input).endsWith('config.json') ? 80 : 1)) as typeof fetch;
    const { cache, store } = cacheAt({ fetch: slowFirst });
    const err = await cache.url('http://127.0.0.1:9/models/missing/', 'model').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect((err as DownloadError).message).toMatch(/^config\.json: not found at .*Check the URL/);
    expect(await store.list()).toEqual([]);
  });
});
