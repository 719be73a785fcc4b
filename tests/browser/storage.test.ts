// Browser storage in Chromium, for real: OPFS (in a worker, as the engine uses it) and IndexedDB (the fallback for
// large files, and the records), the schema upgrade from the previous version, and the ZIP archive round trip.

import { openDB } from 'idb';
import { describe, expect, it } from 'vitest';
import { IdbBlobStore } from '../../src/lib/store/idb-blobs.js';
import { LabStore } from '../../src/lib/store/kept.js';
import { exportSnapshot, importSnapshot } from '../../src/lib/store/archive.js';
import { putBlob, readBlob } from '../../src/lib/store/blobs.js';
import { IntegrityError } from '../../src/lib/errors.js';
import { exerciseStore } from '../helpers/store-scenarios.js';

const uniqueDb = (what: string) => `lora-lab-test-${what}-${Math.random().toString(36).slice(2)}`;

describe('browser storage', () => {
  it('OPFS in a worker: write, read, list, delete; interrupted writes; resumed and refused downloads; a full disk', async () => {
    const worker = new Worker(new URL('./opfs-worker.ts', import.meta.url), { type: 'module' });
    const result = await new Promise<{ ok: boolean; done?: string[]; error?: string }>((resolve) => {
      worker.addEventListener('message', (e) => resolve(e.data));
      worker.postMessage('go');
    });
    worker.terminate();
    expect(result.error).toBeUndefined();
    expect(result.done).toEqual(['write-read-list-delete', 'interrupted-write', 'resumed-download', 'hash-mismatch', 'quota']);
  });

  it('IndexedDB chunks (where OPFS is missing): the same scenarios', async () => {
    const name = uniqueDb('blobs');
    const lab = new LabStore(name);
    const done = await exerciseStore(new IdbBlobStore(() => lab.db()), async () => {
      const reopened = new LabStore(name); // a new connection, as after a reload
      return new IdbBlobStore(() => reopened.db());
    });
    expect(done).toEqual(['write-read-list-delete', 'interrupted-write', 'resumed-download', 'hash-mismatch', 'quota']);
  });

  it('upgrades a version 1 database: runs are kept, their inline dataset moves to the datasets store', async () => {
    const name = uniqueDb('upgrade');
    const v1 = await openDB(name, 1, { upgrade(db) { db.createObjectStore('checkpoints', { keyPath: 'name' }); } });
    const data = new TextEncoder().encode('[{"instruction":"a","output":"b"}]');
    const history = { train: [[1, 2.5]], validation: [] };
    await v1.put('checkpoints', {
      name: 'run-1', format: 'alpaca', totalSteps: 10, savedAt: 123,
      dataset: { kind: 'file', name: 'mine.json', bytes: data },
      checkpoint: { name: 'run-1', step: 4, baseModel: 'lora-lab/built-in-demo', history, peft: { config: '{}', safetensors: new Uint8Array(8) }, state: { tensors: [] } },
    });
    v1.close();

    const lab = new LabStore(name);
    const runs = await lab.listCheckpoints();
    expect(runs.map((r) => [r.name, r.step, r.lastLoss])).toEqual([['run-1', 4, 2.5]]);
    expect((await lab.getCheckpoint('run-1'))!.dataset).toEqual({ kind: 'kept', name: 'mine.json' });
    expect((await lab.getDataset('mine.json'))!.bytes).toEqual(data);
    expect((await lab.db()).version).toBe(5);
    expect(await lab.listConversations()).toEqual([]); // v4's store exists after the upgrade from v1
    expect(await lab.listTeachers()).toEqual([]); // and v5's
    expect(await lab.judges('any-run')).toEqual([]);
  });

  it('a model archive exports and imports back (verified), and a damaged one is refused leaving nothing', async () => {
    const lab = new LabStore(uniqueDb('archive'));
    const store = new IdbBlobStore(() => lab.db());
    const weights = new Uint8Array(200_000).map((_, i) => (i * 7) & 255);
    const config = new TextEncoder().encode('{"a":1}');
    await putBlob(store, 'hf/org/m/abc/model.safetensors', weights);
    await putBlob(store, 'hf/org/m/abc/config.json', config);
    const hex = async (b: Uint8Array) => [...new Uint8Array(await crypto.subtle.digest('SHA-256', b as BufferSource))].map((x) => x.toString(16).padStart(2, '0')).join('');
    await lab.putSnapshot({ id: 'hf/org/m/abc', kind: 'model', source: 'hf', repo: 'org/m', sha: 'abc', revisions: ['main'], bytes: 200_007, savedAt: 1,
      files: [{ path: 'model.safetensors', size: weights.byteLength, sha256: await hex(weights) }, { path: 'config.json', size: config.byteLength, sha256: await hex(config) }] });
    const chunks: Uint8Array[] = [];
    await exportSnapshot(store, lab, 'hf/org/m/abc', new WritableStream({ write(c) { chunks.push(c); } }));
    const archive = new Blob(chunks as BlobPart[]);

    const other = new LabStore(uniqueDb('archive-import'));
    const otherStore = new IdbBlobStore(() => other.db());
    const s = await importSnapshot(otherStore, other, archive, 'm.zip');
    expect(s.repo).toBe('org/m');
    expect(await readBlob(otherStore, 'hf/org/m/abc/model.safetensors')).toEqual(weights);
    expect((await other.listSnapshots()).map((x) => x.id)).toEqual(['hf/org/m/abc']);

    const bad = new Uint8Array(await archive.arrayBuffer());
    bad[bad.length - 1000] ^= 0xff; // inside the last file's bytes, before the central directory
    const third = new LabStore(uniqueDb('archive-bad'));
    const thirdStore = new IdbBlobStore(() => third.db());
    const err = await importSnapshot(thirdStore, third, new Blob([bad]), 'bad.zip').catch((e) => e);
    expect(err.name === 'IntegrityError' || err.name === 'FileFormatError').toBe(true);
    expect(err instanceof IntegrityError || /not a/.test(err.message)).toBe(true);
    expect(await thirdStore.list()).toEqual([]);
    expect(await third.listSnapshots()).toEqual([]);
  });
});

describe('reviews', () => {
  it('votes cast at once all count: a review is read and written in one transaction', async () => {
    const lab = new LabStore(uniqueDb('review-votes'));
    await lab.putReview({ id: 'r1', runId: 'run', createdAt: 1, models: ['base', 'a@1'], pairs: [], keys: [], votes: [], finished: false });
    // Twenty votes at once, as keys pressed in quick succession send them (each a read, a change and a write).
    await Promise.all(Array.from({ length: 20 }, (_, i) => lab.updateReview('r1', (r) => ({
      next: { ...r, votes: [...r.votes, { pairId: `p${i}`, exampleId: `e${i}`, sides: ['base', 'a@1'] as [string, string], criterion: 'helpfulness' as const, verdict: 'A' as const }] },
      result: null,
    }))));
    expect((await lab.getReview('r1'))!.votes.map((v) => v.pairId).sort()).toEqual(Array.from({ length: 20 }, (_, i) => `p${i}`).sort());
    // A change that throws leaves the review as it was.
    await expect(lab.updateReview('r1', () => { throw new Error('refused'); })).rejects.toThrow('refused');
    expect((await lab.getReview('r1'))!.votes).toHaveLength(20);
  });

  it('the worker keeps every vote of a quick succession (keys 1, 2, 3 on one pair)', async () => {
    const lab = new LabStore(uniqueDb('review-handler'));
    const keys = [{ pairId: 'p0', exampleId: 'e0', sides: ['base', 'a@1'] as [string, string] }];
    await lab.putReview({ id: 'r2', runId: 'run', createdAt: 1, models: ['base', 'a@1'], pairs: [], keys, votes: [], finished: false });
    const { evaluationHandlers } = await import('../../src/lib/worker/evaluation.js');
    const h = evaluationHandlers({ lab, engine: () => { throw new Error('unused'); }, builtinEvalSet: async () => new Uint8Array(), datasetBytes: async () => new Uint8Array(), datasetName: () => 'x' }, () => {});
    await Promise.all((['helpfulness', 'honesty', 'harmlessness'] as const).map((criterion) => h.reviewVote({ reviewId: 'r2', pairId: 'p0', criterion, verdict: 'A' })));
    expect((await lab.getReview('r2'))!.votes.map((v) => v.criterion).sort()).toEqual(['harmlessness', 'helpfulness', 'honesty']);
  });
});
