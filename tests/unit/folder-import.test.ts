// A model folder in a .zip (the adapter shelf's "Export merged model" writes one) is kept as a snapshot of its own:
// every file's bytes and SHA-256 as zipped, under local/{name}, opened as a model by its id; a second import of the
// same name is refused, as are zips with files outside the folder, names that climb out, and zips of no model.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { describe, expect, it } from 'vitest';
import { zipBlob } from '../../src/lib/store/archive.js';
import { readBlob } from '../../src/lib/store/blobs.js';
import { diskCache } from '../../src/lib/store/disk-catalog.js';
import { importModelFolder, isModelFolder } from '../../src/lib/store/folder-import.js';
import { ModelCache } from '../../src/lib/store/model-cache.js';
import { keptSource } from '../../src/lib/store/snapshot-catalog.js';

const weights = Uint8Array.from({ length: 70_001 }, (_, i) => (i * 7) & 255);
const config = new TextEncoder().encode('{"architectures": ["LlamaForCausalLM"]}');
const tokenizer = new TextEncoder().encode('{"model": {}}');
const cache = () => diskCache(mkdtempSync(join(tmpdir(), 'lora-lab-folder-')));

describe('a model folder zipped', () => {
  it('is kept whole under local/{name}, each file with its SHA-256, and opens as a model by its id', async () => {
    const c = cache();
    const zip = await zipBlob(new Map([['demo-zh-merged/config.json', config], ['demo-zh-merged/model.safetensors', weights], ['demo-zh-merged/tokenizer.json', tokenizer]]));
    const s = await importModelFolder(c.store, c.catalog, zip, 'demo-zh-merged.zip');
    expect(s).toMatchObject({ id: 'local/demo-zh-merged', kind: 'model', source: 'local', repo: 'demo-zh-merged', bytes: weights.length + config.length + tokenizer.length });
    expect(s.files.map((f) => [f.path, f.size, f.sha256])).toEqual([
      ['config.json', config.length, bytesToHex(sha256(config))],
      ['model.safetensors', weights.length, bytesToHex(sha256(weights))],
      ['tokenizer.json', tokenizer.length, bytesToHex(sha256(tokenizer))],
    ]);
    expect(await readBlob(c.store, 'local/demo-zh-merged/model.safetensors')).toEqual(weights);
    expect(await c.catalog.getSnapshot(s.id)).toEqual(s);
    expect(keptSource(s)).toEqual({ kind: 'snapshot', id: 'local/demo-zh-merged', label: 'demo-zh-merged' });
    expect(await new ModelCache(c.store, c.catalog).files(s).bytes('model.safetensors')).toEqual(weights);
    // Imported twice: refused, the kept copy untouched.
    await expect(importModelFolder(c.store, c.catalog, zip, 'demo-zh-merged.zip')).rejects.toThrow(/kept here already: delete it on the Storage page first/);
    expect(await readBlob(c.store, 'local/demo-zh-merged/model.safetensors')).toEqual(weights);
  });

  it('at the top of the zip is kept the same way', async () => {
    const c = cache();
    const s = await importModelFolder(c.store, c.catalog, await zipBlob(new Map([['config.json', config], ['model.safetensors', weights]])), 'flat.zip');
    expect(s.files.map((f) => f.path)).toEqual(['config.json', 'model.safetensors']);
  });

  it('with files outside the folder, names that climb out, or no weights is refused and leaves nothing', async () => {
    const c = cache();
    const outside = await zipBlob(new Map([['m/config.json', config], ['m/model.safetensors', weights], ['other/notes.txt', config]]));
    await expect(importModelFolder(c.store, c.catalog, outside, 'outside.zip')).rejects.toThrow(/other\/notes\.txt lies outside the model folder m\//);
    const climbing = await zipBlob(new Map([['config.json', config], ['model.safetensors', weights], ['../evil.safetensors', weights]]));
    await expect(importModelFolder(c.store, c.catalog, climbing, 'climbing.zip')).rejects.toThrow(/climbing\.zip/);
    await expect(importModelFolder(c.store, c.catalog, await zipBlob(new Map([['config.json', config]])), 'no-weights.zip')).rejects.toThrow(/holds no model folder/);
    expect(await c.catalog.listSnapshots()).toEqual([]);
    expect((await c.store.list()).filter((b) => !b.key.startsWith('exports/'))).toEqual([]);
  });

  it('is told from an adapter folder and a model archive by its names', () => {
    expect(isModelFolder(['x/config.json', 'x/model-00001-of-00002.safetensors'])).toBe(true);
    expect(isModelFolder(['adapter_config.json', 'adapter_model.safetensors', 'config.json'])).toBe(false);
    expect(isModelFolder(['lora-lab-snapshot.json', 'files/model.safetensors'])).toBe(false);
  });
});
