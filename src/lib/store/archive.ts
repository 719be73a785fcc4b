// Kept things as single files, for people to carry between browsers and machines (a demo on an offline laptop):
// a model or adapter snapshot is a ZIP (stored, not compressed: weights do not compress) holding
// `lora-lab-snapshot.json` (the snapshot record with each file's size and SHA-256) and `files/<path>`. ZIPs are read
// and written with @zip.js/zip.js, streaming: a model is never held whole in memory, and an import is checked file by
// file against the record before the snapshot becomes visible.

import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { BlobReader, configure, TextWriter, Uint8ArrayWriter, ZipReader, ZipWriter, type Entry, type FileEntry } from '@zip.js/zip.js';
import { FileFormatError, IntegrityError } from '../errors.js';
import { safeRelativeName } from '../hub/paths.js';
import type { BlobStore } from './blobs.js';
import { blobKey, type Snapshot, type SnapshotCatalog } from './snapshot-catalog.js';

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
  const manifest = new TextEncoder().encode(JSON.stringify({ format: ARCHIVE_FORMAT, version: 1, snapshot: s }, null, 2));
  await writeZip([
    { name: SNAPSHOT_MANIFEST, open: () => (async function* () { yield manifest; })() },
    ...s.files.map((f) => ({
      name: `files/${f.path}`,
      open: async () => {
        const opened = await store.open(blobKey(id, f.path));
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
  if (s.kind !== 'model' && s.kind !== 'adapter') refuse(name, 'its kind is neither model nor adapter');
  if (s.source !== 'hf' && s.source !== 'url') refuse(name, 'its source is unknown');
  if (typeof s.repo !== 'string' || typeof s.sha !== 'string' || typeof s.id !== 'string' || !Array.isArray(s.files) || !Array.isArray(s.revisions)) refuse(name, 'the record is incomplete');
  safeRelativeName(s.id, name);
  const files = s.files.map((f) => {
    if (typeof f?.path !== 'string' || !Number.isSafeInteger(f.size) || f.size < 0 || typeof f.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(f.sha256)) refuse(name, 'a file entry lacks its path, size or SHA-256');
    return { path: safeRelativeName(f.path, name), size: f.size, sha256: f.sha256 };
  });
  return { id: s.id, kind: s.kind, source: s.source, repo: s.repo, sha: s.sha, revisions: s.revisions.filter((r): r is string => typeof r === 'string'), files, bytes: files.reduce((a, f) => a + f.size, 0), savedAt: Date.now() };
}

/** A WritableStream into a BlobStore writer that also hashes what passes. */
function intoStore(store: BlobStore, key: string): { writable: WritableStream<Uint8Array>; result: () => { size: number; sha256: string } } {
  const hasher = sha256.create();
  let size = 0;
  let writer: Awaited<ReturnType<BlobStore['append']>> | null = null;
  const writable = new WritableStream<Uint8Array>({
    async start() { writer = await store.append(key, true); },
    async write(c) { await writer!.write(c); hasher.update(c); size += c.byteLength; },
    async close() { await writer!.close(); },
    async abort() { await writer?.close(); },
  });
  return { writable, result: () => ({ size, sha256: bytesToHex(hasher.digest()) }) };
}

/**
 * Reads a model archive into the store: every file must have the size and SHA-256 its record gives, else nothing of
 * the archive is kept. The snapshot is recorded last, so it is listed only when whole.
 */
export async function importSnapshot(store: BlobStore, catalog: SnapshotCatalog, archive: Blob, name: string): Promise<Snapshot> {
  const zip = new ZipReader(new BlobReader(archive));
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
    const text = await manifestEntry.getData(new TextWriter());
    raw = JSON.parse(text);
  } catch {
    refuse(name, `${SNAPSHOT_MANIFEST} is not valid JSON`);
  }
  const s = checkSnapshotRecord(raw, name);
  const written: string[] = [];
  try {
    for (const f of s.files) {
      const entry = byName.get(`files/${f.path}`) ?? refuse(name, `files/${f.path} is missing`);
      const key = blobKey(s.id, f.path);
      const sink = intoStore(store, key);
      await entry.getData(sink.writable);
      const got = sink.result();
      if (got.size !== f.size || got.sha256 !== f.sha256) {
        await store.discard(key);
        throw new IntegrityError(`${f.path} in ${name} is damaged: it does not match the size and SHA-256 its record gives. Nothing of the archive was kept; export it again.`, { file: f.path });
      }
      await store.commit(key);
      written.push(key);
    }
  } catch (e) {
    for (const k of written) await store.delete(k).catch(() => {});
    throw e;
  } finally {
    await zip.close();
  }
  await catalog.putSnapshot(s);
  return s;
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
