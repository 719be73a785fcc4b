// A kept snapshot as ModelFiles: the engine reads config, tokenizer and weights straight from the store (weights
// streamed, never a second full copy in memory), with no network.

import { DownloadError } from '../errors.js';
import { ggufIn, type ModelFiles, type OpenedFile } from '../model-files.js';
import { readBlob, type BlobStore } from './blobs.js';
import { fileKey, type Snapshot } from './snapshot-catalog.js';

export class CachedFiles implements ModelFiles {
  readonly modelId: string;
  readonly #names: Set<string>;
  readonly gguf?: string;
  constructor(readonly store: BlobStore, readonly snapshot: Snapshot, readonly label: string) {
    this.modelId = snapshot.repo;
    this.#names = new Set(snapshot.files.map((f) => f.path));
    this.gguf = ggufIn(this.#names);
  }

  #missing(name: string): never {
    throw new DownloadError(`${name} is not in the kept copy of ${this.label}. A model needs config.json, tokenizer.json and its safetensors weights: delete it on the Storage page and load it again.`, { file: name, status: 404 });
  }

  #gone(name: string): never {
    throw new DownloadError(`${name} of ${this.label} is listed as kept but its bytes are gone (the browser may have evicted them). Delete the model on the Storage page and load it again.`, { file: name });
  }

  async bytes(name: string, optional = false): Promise<Uint8Array | null> {
    if (!this.#names.has(name)) return optional ? null : this.#missing(name);
    return (await readBlob(this.store, fileKey(this.snapshot, name))) ?? this.#gone(name);
  }

  async open(name: string): Promise<OpenedFile> {
    if (!this.#names.has(name)) this.#missing(name);
    return (await this.store.open(fileKey(this.snapshot, name))) ?? this.#gone(name);
  }
}
