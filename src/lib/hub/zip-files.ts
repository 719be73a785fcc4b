// A model folder inside a .zip (a merged model exported here, or any Hugging Face model folder zipped), read in place:
// files are matched by base name, small ones read whole and weights streamed out of the archive, so a model is never
// unpacked into memory twice.

import { BlobReader, configure, Uint8ArrayWriter, ZipReader, type FileEntry } from '@zip.js/zip.js';
import { FileFormatError } from '../errors.js';
import { missing, type ModelFiles, type OpenedFile } from '../model-files.js';
import { streamChunks } from './files.js';

configure({ useWebWorkers: false });

export class ZipFiles implements ModelFiles {
  #entries: Promise<Map<string, FileEntry>> | null = null;
  constructor(readonly label: string, private readonly archive: Blob) {}

  /** The archive's files by base name; one folder's worth: two files of one name are refused, not guessed between. */
  #list(): Promise<Map<string, FileEntry>> {
    this.#entries ??= (async () => {
      let entries: FileEntry[];
      try {
        entries = (await new ZipReader(new BlobReader(this.archive)).getEntries()).filter((e): e is FileEntry => !e.directory);
      } catch (e) {
        throw new FileFormatError(`${this.label} is not a readable ZIP (${(e as Error).message}). Zip the model's folder again.`, { file: this.label });
      }
      const byName = new Map<string, FileEntry>();
      for (const e of entries) {
        const base = e.filename.split('/').pop()!;
        if (byName.has(base)) {
          throw new FileFormatError(`${this.label} holds two files named ${base} (${byName.get(base)!.filename} and ${e.filename}): zip one model folder at a time.`, { file: this.label });
        }
        byName.set(base, e);
      }
      return byName;
    })();
    return this.#entries;
  }

  async #entry(name: string, optional: boolean): Promise<FileEntry | null> {
    const e = (await this.#list()).get(name);
    if (e || optional) return e ?? null;
    return missing(this.label, name);
  }

  async bytes(name: string, optional = false): Promise<Uint8Array | null> {
    const e = await this.#entry(name, optional);
    return e ? e.getData(new Uint8ArrayWriter()) : null;
  }

  async open(name: string): Promise<OpenedFile> {
    const e = (await this.#entry(name, false))!;
    const pipe = new TransformStream<Uint8Array, Uint8Array>();
    // A damaged entry fails the stream, and so the read of the weights, with zip.js's reason.
    e.getData(pipe.writable).catch((err: unknown) => pipe.writable.abort(err).catch(() => {}));
    return { size: e.uncompressedSize, stream: streamChunks(pipe.readable) };
  }
}
