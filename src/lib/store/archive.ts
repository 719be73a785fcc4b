// Kept things as single files, for people to carry between browsers and machines (a demo on an offline laptop):
// a model or adapter snapshot is a ZIP (stored, not compressed: weights do not compress) holding
// `lora-lab-snapshot.json` (the snapshot record with each file's size and SHA-256) and `files/<path>`. ZIPs are read
// and written with @zip.js/zip.js, streaming: a model is never held whole in memory, and an import is checked file by
// file against the record before the snapshot becomes visible.

import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { BlobReader, configure, TextWriter, Uint8ArrayWriter, ZipReader, ZipWriter, type Entry, type FileEntry } from '@zip.js/zip.js';
import { FileFormatError, IntegrityError, InvalidArgumentError } from '../errors.js';
import { safeRelativeName } from '../hub/paths.js';
import type { BlobStore } from './blobs.js';
import { blobKey, fileKey, type Snapshot, type SnapshotCatalog } from './snapshot-catalog.js';

configure({ useWebWorkers: false });

export const SNAPSHOT_MANIFEST = 'lora-lab-snapshot.json';
export const ARCHIVE_FORMAT = 'lora-lab-snapshot';

/** An async iterable as a web ReadableStream (ReadableStream.from is not everywhere yet). */
export function toReadable(chunks: AsyncIterable<Uint8Array>): ReadableStream<Uint8Array> {
  const it = chunks[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>({
    async pull(c) {
      const { done, value } = await it.next();
      if (done) c.close();
      else c.enqueue(value);
    },
    async cancel() { await it.return?.(); },
  });
}

export interface ZipSource {
  name: string;
  open(): Promise<AsyncIterable<Uint8Array>> | AsyncIterable<Uint8Array>;
}

/** Writes the entries, uncompressed, as one ZIP (Zip64 when large) to `out`. */
export async function writeZip(entries: ZipSource[], out: WritableStream<Uint8Array>): Promise<void> {
  const zip = new ZipWriter(out, { level: 0, zip64: true, bufferedWrite: false });
  for (const e of entries) await zip.add(e.name, toReadable(await e.open()), { level: 0 });
  await zip.close();
}

/** Small files (an adapter folder) as one ZIP in memory. */
export async function zipBlob(files: Map<string, Uint8Array>): Promise<Blob> {
  const chunks: Uint8Array[] = [];
  await writeZip([...files].map(([name, b]) => ({ name, open: () => (async function* () { yield b; })() })), new WritableStream({ write(c) { chunks.push(c.slice()); } }));
  return new Blob(chunks as BlobPart[], { type: 'application/zip' });
}

/** A snapshot as a ZIP: its record, then its files. */
export async function exportSnapshot(store: BlobStore, catalog: SnapshotCatalog, id: string, out: WritableStream<Uint8Array>): Promise<Snapshot> {
  const s = await catalog.getSnapshot(id);
  if (!s) throw new FileFormatError(`Nothing is kept under ${id}.`);
  const { store: _where, ...record } = s; // where this device keeps the bytes is not part of the snapshot
  const manifest = new TextEncoder().encode(JSON.stringify({ format: ARCHIVE_FORMAT, version: 1, snapshot: record }, null, 2));
  await writeZip([
    { name: SNAPSHOT_MANIFEST, open: () => (async function* () { yield manifest; })() },
    ...s.files.map((f) => ({
      name: `files/${f.path}`,
      open: async () => {
        const opened = await store.open(fileKey(s, f.path));
        if (!opened) throw new FileFormatError(`${f.path} of ${s.repo} is listed as kept but its bytes are gone: delete the model and load it again.`);
        return opened.stream;
      },
    })),
  ], out);
  return s;
}

function refuse(name: string, why: string): never {
  throw new FileFormatError(`${name} is not a LoRA Lab model archive: ${why}. Export it again from the Storage page or with lora-lab cache export.`, { file: name });
}

/** Checks a snapshot record read from a file: shape, ids and file names, so a crafted archive cannot point elsewhere. */
export function checkSnapshotRecord(raw: unknown, name: string): Snapshot {
  const m = raw as { format?: unknown; snapshot?: Partial<Snapshot> };
  if (m?.format !== ARCHIVE_FORMAT) refuse(name, `${SNAPSHOT_MANIFEST} has no "format": "${ARCHIVE_FORMAT}"`);
  const s = m.snapshot ?? refuse(name, 'the record is missing');
  if (s.kind !== 'model' && s.kind !== 'adapter' && s.kind !== 'reward') refuse(name, 'its kind is not model, adapter or reward');
  if (s.source !== 'hf' && s.source !== 'url' && s.source !== 'local') refuse(name, 'its source is unknown');
  if (typeof s.repo !== 'string' || typeof s.sha !== 'string' || typeof s.id !== 'string' || !Array.isArray(s.files) || !Array.isArray(s.revisions)) refuse(name, 'the record is incomplete');
  safeRelativeName(s.id, name);
  const files = s.files.map((f) => {
    if (typeof f?.path !== 'string' || !Number.isSafeInteger(f.size) || f.size < 0 || typeof f.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(f.sha256)) refuse(name, 'a file entry lacks its path, size or SHA-256');
    return { path: safeRelativeName(f.path, name), size: f.size, sha256: f.sha256 };
  });
  return { id: s.id, kind: s.kind, source: s.source, repo: s.repo, sha: s.sha, revisions: s.revisions.filter((r): r is string => typeof r === 'string'), files, bytes: files.reduce((a, f) => a + f.size, 0), savedAt: Date.now() };
}

/**
 * A WritableStream into the unfinished file under `key`, hashing what passes; it stops (with IntegrityError) at the
 * first byte past `limit`, so an entry larger than its record never fills the disk.
 */
export function intoStore(store: BlobStore, key: string, limit: number, what: string): { writable: WritableStream<Uint8Array>; result: () => { size: number; sha256: string } } {
  const hasher = sha256.create();
  let size = 0;
  let writer: Awaited<ReturnType<BlobStore['append']>> | null = null;
  const writable = new WritableStream<Uint8Array>({
    async start() { writer = await store.append(key, true); },
    async write(c) {
      if (size + c.byteLength > limit) throw new IntegrityError(`${what} is larger than the ${limit} bytes its record gives: nothing of the archive was kept; export it again.`, { file: what });
      await writer!.write(c); hasher.update(c); size += c.byteLength;
    },
    async close() { await writer!.close(); },
    async abort() { await writer?.close(); },
  });
  return { writable, result: () => ({ size, sha256: bytesToHex(hasher.digest()) }) };
}

/** The prefix of the keys a replacing import of snapshot `id` writes under. */
const importKey = (id: string) => `${id}@import-`;

/**
 * Reads a model archive into the store. Every file is written as the unfinished file under its key and checked against
 * its record (size, then SHA-256); only once all of them check out are they committed and the record written, so the
 * snapshot is listed only when whole. A failure discards what was staged and leaves what is kept as it was. A snapshot
 * kept already is replaced only with `replace`, and then by a swap: the new copy is written and committed under a key
 * of its own (`{id}@import-{random}`), the record is switched to it in one write, and only then are the old copy's
 * files deleted. Stopped anywhere (a kill included), the record lists the old copy or the new one, whole; what a
 * stopped import left under its own key is deleted by the next import of the same snapshot.
 */
export async function importSnapshot(store: BlobStore, catalog: SnapshotCatalog, archive: Blob, name: string, opts: { replace?: boolean } = {}): Promise<Snapshot> {
  const zip = new ZipReader(new BlobReader(archive));
  try {
    let entries: Entry[];
    try {
      entries = await zip.getEntries();
    } catch (e) {
      refuse(name, `it is not a readable ZIP (${(e as Error).message})`);
    }
    const byName = new Map(entries.filter((e): e is FileEntry => !e.directory).map((e) => [e.filename, e]));
    const manifestEntry = byName.get(SNAPSHOT_MANIFEST) ?? refuse(name, `it has no ${SNAPSHOT_MANIFEST}`);
    if (manifestEntry.uncompressedSize > 16 << 20) refuse(name, `${SNAPSHOT_MANIFEST} is too large`);
    let raw: unknown;
    try {
      raw = JSON.parse(await manifestEntry.getData(new TextWriter()));
    } catch {
      refuse(name, `${SNAPSHOT_MANIFEST} is not valid JSON`);
    }
    const snap = checkSnapshotRecord(raw, name);
    if (snap.files.length === 0) refuse(name, 'its record lists no files');
    const kept = await catalog.getSnapshot(snap.id);
    if (kept && !opts.replace) {
      throw new InvalidArgumentError(`${name} holds ${snap.repo} (${snap.id}), which is kept here already: importing it would replace the kept copy. Delete the kept one first, or import with replace (lora-lab cache import --replace).`, { file: name, id: snap.id });
    }
    // Checked from the archive's own directory before a byte is written: every file there, at its record's size.
    for (const f of snap.files) {
      const entry = byName.get(`files/${f.path}`) ?? refuse(name, `files/${f.path} is missing`);
      if (entry.uncompressedSize !== f.size) refuse(name, `files/${f.path} holds ${entry.uncompressedSize} bytes, not the ${f.size} its record gives`);
    }
    // Leftovers of replacing imports that were stopped: keys of their own that no record names.
    for (const b of await store.list()) {
      if (b.key.startsWith(importKey(snap.id)) && !(kept?.store && b.key.startsWith(`${kept.store}/`))) await store.delete(b.key).catch(() => {});
    }
    const where = kept ? `${importKey(snap.id)}${Array.from(crypto.getRandomValues(new Uint8Array(6)), (b) => b.toString(16).padStart(2, '0')).join('')}` : undefined;
    const staged: string[] = [];
    try {
      for (const f of snap.files) {
        const key = blobKey(where ?? snap.id, f.path);
        const sink = intoStore(store, key, f.size, `${f.path} in ${name}`);
        staged.push(key);
        try {
          await byName.get(`files/${f.path}`)!.getData(sink.writable);
        } catch (e) {
          if (e instanceof IntegrityError) throw e;
          refuse(name, `files/${f.path} cannot be read (${(e as Error).message})`);
        }
        const got = sink.result();
        if (got.size !== f.size || got.sha256 !== f.sha256) {
          throw new IntegrityError(`${f.path} in ${name} is damaged: it does not match the size and SHA-256 its record gives. Nothing of the archive was kept; export it again.`, { file: f.path });
        }
      }
    } catch (e) {
      for (const k of staged) await store.discard(k).catch(() => {});
      throw e;
    }
    for (const k of staged) await store.commit(k);
    const record: Snapshot = where ? { ...snap, store: where } : snap;
    await catalog.putSnapshot(record);
    // The replaced copy goes once the record names the new one.
    for (const f of kept?.files ?? []) await store.delete(fileKey(kept!, f.path)).catch(() => {});
    return record;
  } finally {
    await zip.close().catch(() => {});
  }
}

/** A small ZIP's files (an adapter folder); refuses archives whose files add up to more than `maxBytes`. */
export async function readSmallZip(archive: Blob, name: string, maxBytes: number): Promise<Map<string, Uint8Array>> {
  const zip = new ZipReader(new BlobReader(archive));
  try {
    const entries = (await zip.getEntries()).filter((e): e is FileEntry => !e.directory);
    const total = entries.reduce((a, e) => a + e.uncompressedSize, 0);
    if (total > maxBytes) throw new FileFormatError(`${name} unpacks to ${total} bytes, more than the ${maxBytes} an adapter can have.`, { file: name });
    const out = new Map<string, Uint8Array>();
    for (const e of entries) out.set(e.filename, await e.getData(new Uint8ArrayWriter()));
    return out;
  } catch (e) {
    if (e instanceof FileFormatError) throw e;
    throw new FileFormatError(`${name} is not a readable ZIP (${(e as Error).message}).`, { file: name });
  } finally {
    await zip.close();
  }
}
