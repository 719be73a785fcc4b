// A model folder on disk (Node only: the CLI and tests).

import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { DownloadError } from '../errors.js';
import type { ModelFiles, OpenedFile } from './files.js';

export class NodeDirFiles implements ModelFiles {
  constructor(readonly label: string, private readonly dir: string = label) {}

  async bytes(name: string, optional = false): Promise<Uint8Array | null> {
    try {
      return new Uint8Array(await readFile(join(this.dir, name)));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' && optional) return null;
      throw this.#error(name, e);
    }
  }

  async open(name: string): Promise<OpenedFile> {
    const path = join(this.dir, name);
    try {
      const s = await stat(path);
      return { size: s.size, stream: createReadStream(path, { highWaterMark: 1 << 20 }) };
    } catch (e) {
      throw this.#error(name, e);
    }
  }

  #error(name: string, e: unknown): DownloadError {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      return new DownloadError(`${name} is missing from ${this.dir}. A model folder needs config.json, tokenizer.json and model.safetensors (or shards with model.safetensors.index.json).`, { file: name, status: 404 });
    }
    return new DownloadError(`Could not read ${join(this.dir, name)}: ${(e as Error).message}`, { file: name });
  }
}
