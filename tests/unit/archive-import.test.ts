// Importing a model archive never damages what is kept: the kept copy of the same snapshot stays whole through an
// import of a damaged archive and is replaced only when asked; an entry larger than its record is stopped at its
// size (a small ZIP cannot fill the disk); unreadable ZIPs and empty records are refused by name, leaving nothing;
// every kind `cache export` writes (a reward model's too) imports back. Disk store, as the CLI uses it.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { describe, expect, it } from 'vitest';
import { FileFormatError, IntegrityError, InvalidArgumentError } from '../../src/lib/errors.js';
import { ARCHIVE_FORMAT, exportSnapshot, importSnapshot, SNAPSHOT_MANIFEST, zipBlob } from '../../src/lib/store/archive.js';
import { putBlob, readBlob } from '../../src/lib/store/blobs.js';
import { CachedFiles } from '../../src/lib/store/cached-files.js';
import { diskCache } from '../../src/lib/store/disk-catalog.js';
import type { Snapshot } from '../../src/lib/store/snapshot-catalog.js';

const ID = 'hf/org/m/abc';
const weights = Uint8Array.from({ length: 50_000 }, (_, i) => (i * 31) & 255);
const config = new TextEncoder().encode('{"hidden_size": 8}');
const record = (files: Map<string, Uint8Array>, kind: Snapshot['kind'] = 'model'): Snapshot => ({
  id: ID, kind, source: 'hf', repo: 'org/m', sha: 'abc', revisions: ['main'], savedAt: 1,
  files: [...files].map(([path, b]) => ({ path, size: b.length, sha256: bytesToHex(sha256(b)) })),
  bytes: [...files.values()].reduce((t, b) => t + b.length, 0),
});

async function cacheWith(files: Map<string, Uint8Array>, kind: Snapshot['kind'] = 'model') {
  const c = diskCache(mkdtempSync(join(tmpdir(), 'lora-lab-import-')));
  for (const [path, b] of files) await putBlob(c.store, `${ID}/${path}`, b);
  await c.catalog.putSnapshot(record(files, kind));
  return c;
}

async function exported(c: Awaited<ReturnType<typeof cacheWith>>): Promise<Blob> {
  const chunks: Uint8Array[] = [];
  await exportSnapshot(c.store, c.catalog, ID, new WritableStream({ write(x) { chunks.push(x.slice()); } }));
  return new Blob(chunks as BlobPart[]);
}

/** An archive written by hand: the record says `files`, the entries hold `entries`. */
const crafted = (files: Map<string, Uint8Array>, entries: Map<string, Uint8Array>, kind: Snapshot['kind'] = 'model') =>
  zipBlob(new Map([[SNAPSHOT_MANIFEST, new TextEncoder().encode(JSON.stringify({ format: ARCHIVE_FORMAT, version: 1, snapshot: record(files, kind) }))], ...[...entries].map(([p, b]) => [`files/${p}`, b] as [string, Uint8Array])]));

const files = new Map([['config.json', config], ['model.safetensors', weights]]);

/** What a reader of the kept snapshot gets: its files through CachedFiles, each checked against its record's hash. */
async function keptBytes(c: ReturnType<typeof diskCache>, id: string): Promise<Map<string, Uint8Array>> {
  const s = (await c.catalog.getSnapshot(id))!;
  const reader = new CachedFiles(c.store, s, id);
  const out = new Map<string, Uint8Array>();
  for (const f of s.files) {
    const b = (await reader.bytes(f.path))!;
    expect(bytesToHex(sha256(b)), `${f.path} against its record`).toBe(f.sha256);
    out.set(f.path, b);
  }
  return out;
}

describe('cache import', () => {
  it('keeps the kept copy whole through a damaged import of the same snapshot, and replaces it only when asked', async () => {
    const target = await cacheWith(files);
    const archive = await exported(await cacheWith(files));
    // The same id: refused without replace, the kept copy untouched.
    await expect(importSnapshot(target.store, target.catalog, archive, 'm.zip')).rejects.toThrow(InvalidArgumentError);
    // The same id, one byte of the weights changed: IntegrityError, and the kept files are still there, whole.
    const damaged = new Map(files);
    const bad = weights.slice();
    bad[100] ^= 1;
    damaged.set('model.safetensors', bad);
    const err = await importSnapshot(target.store, target.catalog, await crafted(files, damaged), 'bad.zip', { replace: true }).catch((e) => e);
    expect(err).toBeInstanceOf(IntegrityError);
    expect(await readBlob(target.store, `${ID}/model.safetensors`)).toEqual(weights);
    expect(await readBlob(target.store, `${ID}/config.json`)).toEqual(config);
    expect((await target.store.list()).every((b) => b.complete)).toBe(true); // nothing staged is left
    // With replace, a good archive replaces it.
    expect((await importSnapshot(target.store, target.catalog, archive, 'm.zip', { replace: true })).id).toBe(ID);
    expect(await keptBytes(target, ID)).toEqual(files);
  });

  it('stops an entry at the size its record gives: a small ZIP cannot fill the disk', async () => {
    const target = diskCache(mkdtempSync(join(tmpdir(), 'lora-lab-import-')));
    const small = new Map([['model.safetensors', weights.subarray(0, 10)]]);
    const err = await importSnapshot(target.store, target.catalog, await crafted(small, new Map([['model.safetensors', new Uint8Array(3_000_000)]])), 'bomb.zip').catch((e) => e);
    expect(err).toBeInstanceOf(FileFormatError);
    expect(err.message).toMatch(/files\/model\.safetensors holds 3000000 bytes, not the 10 its record gives/);
    expect(await target.store.list()).toEqual([]);
  });

  it('refuses unreadable ZIPs, a record without files and a missing entry by name, leaving nothing', async () => {
    const target = diskCache(mkdtempSync(join(tmpdir(), 'lora-lab-import-')));
    for (const [archive, why] of [
      [new Blob([new Uint8Array([0x50, 0x4b, 3, 4, 1, 2, 3])]), /not a readable ZIP/],
      [await crafted(new Map(), new Map()), /its record lists no files/],
      [await crafted(files, new Map([['config.json', config]])), /files\/model\.safetensors is missing/],
    ] as const) {
      const err = await importSnapshot(target.store, target.catalog, archive, 'x.zip').catch((e) => e);
      expect(err).toBeInstanceOf(FileFormatError);
      expect(err.message).toMatch(why);
    }
    expect(await target.store.list()).toEqual([]);
    expect(await target.catalog.listSnapshots()).toEqual([]);
  });

  it('a replacing import that stops between its commits (a kill) leaves the kept copy whole, and a later one finishes', async () => {
    const target = await cacheWith(files);
    const newer = new Map([['config.json', new TextEncoder().encode('{"hidden_size": 16}')], ['model.safetensors', weights.map((b) => b ^ 0x5a)]]);
    const archive = await crafted(newer, newer);
    // The process dies at the k-th commit or record write (k = 0: the first file's commit; k = 2: the record): nothing
    // after it runs, no clean-up either.
    for (let k = 0; k <= newer.size; k++) {
      let left = k;
      const die = <T>(go: () => Promise<T>): Promise<T> => (left-- > 0 ? go() : Promise.reject(new Error('killed')));
      const bound = (t: object, p: string | symbol) => { const v = Reflect.get(t, p); return typeof v === 'function' ? v.bind(t) : v; };
      const store = new Proxy(target.store, { get: (t, p) => (p === 'commit' ? (key: string) => die(() => t.commit(key)) : bound(t, p)) });
      const catalog = new Proxy(target.catalog, { get: (t, p) => (p === 'putSnapshot' ? (s: Snapshot) => die(() => t.putSnapshot(s)) : bound(t, p)) });
      await expect(importSnapshot(store, catalog, archive, 'newer.zip', { replace: true })).rejects.toThrow('killed');
      expect(await keptBytes(target, ID)).toEqual(files); // the old copy, every byte its record lists
    }
    await importSnapshot(target.store, target.catalog, archive, 'newer.zip', { replace: true });
    expect(await keptBytes(target, ID)).toEqual(newer);
    // Only the new copy's bytes are kept (the old copy's and the stopped imports' are gone): nothing leaks.
    expect((await target.store.list()).reduce((t, b) => t + b.size, 0)).toBe([...newer.values()].reduce((t, b) => t + b.length, 0));
  });

  it('imports a reward model snapshot, as cache export writes it', async () => {
    const archive = await exported(await cacheWith(files, 'reward'));
    const target = diskCache(mkdtempSync(join(tmpdir(), 'lora-lab-import-')));
    expect((await importSnapshot(target.store, target.catalog, archive, 'rm.zip')).kind).toBe('reward');
  });
});
