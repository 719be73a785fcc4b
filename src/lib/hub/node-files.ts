// A model folder on disk (Node only: the CLI and tests).

import { createReadStream, existsSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { DownloadError, UnsafePathError } from '../errors.js';
import { ggufIn, missingError, type ModelFiles, type OpenedFile } from '../model-files.js';
import { safeRelativeName } from './paths.js';

export class NodeDirFiles implements ModelFiles {
  readonly modelId: string;
  readonly gguf?: string;
  /** `dir` is a model folder, or a .gguf file (the model; a tokenizer.json may sit beside it). */
  constructor(readonly label: string, private readonly dir: string = label, modelId?: string) {
    if (/\.gguf$/i.test(dir) && existsSync(dir) && statSync(dir).isFile()) {
      this.gguf = basename(dir);
      this.dir = dirname(dir);
    } else if (existsSync(dir) && statSync(dir).isDirectory()) {
      this.gguf = ggufIn(readdirSync(dir));
    }
    this.modelId = modelId ?? basename(resolve(dir));
  }

  /**
   * The path of `name` inside the folder; names that would leave it are refused, and so are folder links on the way
   * that lead outside it (a shard named sub/x where sub links to /). The file itself may be a link, as the files of a
   * Hugging Face cache snapshot are (to ../../blobs).
   */
  path(name: string): string {
    const path = resolve(this.dir, safeRelativeName(name, this.label));
    const rel = relative(resolve(this.dir), path);
    if (rel.startsWith('..') || isAbsolute(rel)) safeRelativeName('..', this.label);
    const parent = dirname(path);
    if (parent !== resolve(this.dir) && existsSync(parent) && existsSync(this.dir)) {
      const real = relative(realpathSync(this.dir), realpathSync(parent));
      if (real.startsWith('..') || isAbsolute(real)) {
        throw new UnsafePathError(`${this.label}: ${name} goes through a folder link that leads outside the model folder (to ${realpathSync(parent)}). Only files inside the folder are read: copy them in.`, { name });
      }
    }
    return path;
  }

  async bytes(name: string, optional = false): Promise<Uint8Array | null> {
    const path = this.path(name);
    try {
      return new Uint8Array(await readFile(path));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' && optional) return null;
      throw this.#error(name, e);
    }
  }

  async open(name: string): Promise<OpenedFile> {
    const path = this.path(name);
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
      return missingError(this.dir, name);
    }
    return new DownloadError(`Could not read ${join(this.dir, name)}: ${(e as Error).message}`, { file: name });
  }
}
