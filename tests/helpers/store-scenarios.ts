// Scenarios every BlobStore must pass, run against real browser storage (OPFS in a worker, IndexedDB chunks on the
// page): write, read, list, delete; an interrupted write stays invisible and resumes; a download cut mid-file resumes
// byte-identical through the real ModelCache; a hash mismatch keeps nothing; a full disk gives the typed error and
// leaves the store as it was. They throw on the first failed check, naming it.

import { StorageFullError, IntegrityError } from '../../src/lib/errors.js';
import { putBlob, readBlob, type BlobStore } from '../../src/lib/store/blobs.js';
import { blobKey, type SnapshotCatalog, type Snapshot } from '../../src/lib/store/snapshot-catalog.js';
import { ModelCache } from '../../src/lib/store/model-cache.js';
import { fakeHub } from './fake-hub.js';

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`check failed: ${what}`);
}
const same = (a: Uint8Array | null, b: Uint8Array) => !!a && a.byteLength === b.byteLength && a.every((x, i) => x === b[i]);

function bytes(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) { s = (s * 1103515245 + 12345) >>> 0; b[i] = s >>> 24; }
  return b;
}

class MemoryCatalog implements SnapshotCatalog {
  readonly m = new Map<string, Snapshot>();
  async getSnapshot(id: string) { return this.m.get(id); }
  async putSnapshot(s: Snapshot) { this.m.set(s.id, s); }
  async listSnapshots() { return [...this.m.values()]; }
  async deleteSnapshot(id: string) { this.m.delete(id); }
}

/** `reopen` gives a new store over the same storage (what a reload sees). */
export async function exerciseStore(store: BlobStore, reopen: () => Promise<BlobStore>): Promise<string[]> {
  const done: string[] = [];
  // Write, read, list, delete.
  const a = bytes(5_000_123, 1);
  await putBlob(store, 'm/a.bin', a);
  check(same(await readBlob(store, 'm/a.bin'), a), 'a written file reads back byte-identical');
  check((await store.list()).some((e) => e.key === 'm/a.bin' && e.complete && e.size === a.byteLength), 'list shows the file with its size');
  await store.delete('m/a.bin');
  check((await store.open('m/a.bin')) === null && !(await store.list()).some((e) => e.key === 'm/a.bin'), 'a deleted file is gone');
  done.push('write-read-list-delete');

  // An interrupted write is never visible, survives a "reload" as partial, and resumes.
  const b = bytes(9_000_000, 2);
  let w = await store.append('m/b.bin', true);
  await w.write(b.subarray(0, 4_500_000));
  await w.flush();
  await w.close();
  check((await store.open('m/b.bin')) === null, 'an unfinished file cannot be opened');
  const again = await reopen();
  const kept = await again.partialSize('m/b.bin');
  check(kept > 0 && kept <= 4_500_000, `the partial file survives a reopen (${kept} bytes)`);
  w = await again.append('m/b.bin');
  await w.write(b.subarray(kept));
  await w.close();
  await again.commit('m/b.bin');
  check(same(await readBlob(again, 'm/b.bin'), b), 'the resumed file is byte-identical');
  await again.delete('m/b.bin');
  done.push('interrupted-write');

  // A download cut mid-file, through the real cache: resumed with a Range request, byte-identical.
  const endpoint = 'https://hub.test';
  const files = new Map([['adapter_config.json', new TextEncoder().encode('{"r":4}')], ['adapter_model.safetensors', bytes(3_000_000, 3)]]);
  const hub = fakeHub(endpoint, {
    'org/lora': { sha: 'b'.repeat(40), files, cuts: [{ file: 'adapter_model.safetensors', bytes: 1_000_000, times: 1 }] },
    'org/bad': { sha: 'c'.repeat(40), files, publishedSha256: new Map([['adapter_model.safetensors', 'f'.repeat(64)]]) },
  });
  const catalog = new MemoryCatalog();
  const cache = new ModelCache(store, catalog, { endpoint, fetch: hub.fetch });
  const got = await cache.hf('org/lora', 'main', 'adapter');
  check(hub.ranges.some((r) => r !== null && /^bytes=[1-9]\d*-$/.test(r)), `the cut file was resumed with a Range request (${JSON.stringify(hub.ranges)})`);
  check(same(await got.bytes('adapter_model.safetensors'), files.get('adapter_model.safetensors')!), 'the resumed download is byte-identical');
  done.push('resumed-download');

  // A hash mismatch: refused, nothing kept.
  const before = (await store.list()).length;
  const err = await cache.hf('org/bad', 'main', 'adapter').catch((e) => e);
  check(err instanceof IntegrityError, `a wrong SHA-256 gives IntegrityError (got ${err?.name})`);
  check(!(await store.list()).some((e) => e.key.startsWith('hf/org/bad/') && e.key.endsWith('.safetensors')), 'nothing of the damaged file is kept');
  check(!(await catalog.listSnapshots()).some((s) => s.repo === 'org/bad'), 'no snapshot is listed for it');
  check((await store.list()).length <= before + 1, 'only the small verified side file may remain');
  done.push('hash-mismatch');

  // A full disk: the writer's QuotaExceededError becomes StorageFullError and the partial file is dropped.
  const full: BlobStore = {
    kind: store.kind,
    partialSize: (k) => store.partialSize(k), readPartial: (k) => store.readPartial(k), commit: (k) => store.commit(k),
    discard: (k) => store.discard(k), open: (k) => store.open(k), delete: (k) => store.delete(k), list: () => store.list(),
    append: async () => { throw new Error('replaced below'); },
  };
  full.append = async (key, restart) => {
    const inner = await store.append(key, restart);
    let n = 0;
    return {
      get size() { return inner.size; },
      async write(c) { if (++n > 3) throw new StorageFullError('full', {}); await inner.write(c); },
      flush: () => inner.flush(), close: () => inner.close(),
    };
  };
  const snapshotsBefore = JSON.stringify(await catalog.listSnapshots());
  const listBefore = JSON.stringify((await store.list()).sort((x, y) => x.key.localeCompare(y.key)));
  const fullErr = await new ModelCache(full, catalog, { endpoint, fetch: fakeHub(endpoint, { 'org/big': { sha: 'd'.repeat(40), files } }).fetch }).hf('org/big', 'main', 'adapter').catch((e) => e);
  check(fullErr instanceof StorageFullError, `a full disk gives StorageFullError (got ${fullErr?.name})`);
  const listAfter = JSON.stringify((await store.list()).filter((e) => !(e.key.startsWith('hf/org/big/') && e.key.endsWith('.json'))).sort((x, y) => x.key.localeCompare(y.key)));
  check(listAfter === listBefore && JSON.stringify(await catalog.listSnapshots()) === snapshotsBefore, 'the store is as it was (no partial weights, no snapshot)');
  // And the quota check before a download: refused before any byte is fetched.
  const huge = fakeHub(endpoint, { 'org/huge': { sha: 'e'.repeat(40), files } });
  const small = new ModelCache(store, catalog, { endpoint, fetch: huge.fetch, estimate: async () => ({ quota: 1_000_000, usage: 900_000 }) });
  const quotaErr = await small.hf('org/huge', 'main', 'adapter').catch((e) => e);
  check(huge.ranges.length === 0, 'no file was requested');
  check(quotaErr instanceof StorageFullError && /needs .* but only .* is free/.test(quotaErr.message), `the estimate check refuses a download that does not fit (${quotaErr?.message})`);
  done.push('quota');
  await cache.remove(got.snapshot.id);
  check((await store.list()).every((e) => !e.key.startsWith(`${got.snapshot.id}/`)), 'removing a snapshot deletes its files');
  for (const e of await store.list()) await store.delete(e.key);
  return done;
}

export { blobKey };
