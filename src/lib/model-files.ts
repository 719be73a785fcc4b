// The file abstraction every layer reads through: a model, an adapter, a dataset folder or a reward model, whatever
// its source (a Hugging Face repo, any URL with the same layout, files the user picked or dropped, a folder on disk
// in Node, a zip, bytes in memory), offers the same small interface: read a small file whole, or open a large one as
// a byte stream with its size, so weights are never held twice in memory. The sources live in hub/.

import { DownloadError, FileFormatError } from './errors.js';

export interface OpenedFile {
  size: number;
  stream: AsyncIterable<Uint8Array>;
}

export interface ModelFiles {
  /** Shown in messages and the UI: a repo id, a URL or a folder name. */
  readonly label: string;
  /**
   * What exported adapters record as base_model_name_or_path: a repo id, a URL or a folder's base name, never a
   * local absolute path (it would publish the user's directory layout). Defaults to `label`.
   */
  readonly modelId?: string;
  /** A GGUF model's file name, when the source is one (its config and weights come from that file). */
  readonly gguf?: string;
  /** The file's bytes, or null when it does not exist and `optional` is set. */
  bytes(name: string, optional?: boolean): Promise<Uint8Array | null>;
  /** A large file as a stream. */
  open(name: string): Promise<OpenedFile>;
}

/** JSON side files (configs, tokenizers, indexes) are small; the largest real tokenizer.json is ~20 MB. */
export const MAX_JSON_BYTES = 64 << 20;

/** What a parsed JSON value is, for messages: 'null', 'a list', 'a string', ... */
export function jsonKind(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'a list' : `a ${typeof v}`;
}

/** A JSON file that must hold an object (configs, tokenizer files, indexes); null when optional and absent. */
export async function readJson(files: ModelFiles, name: string, optional = false): Promise<Record<string, unknown> | null> {
  const b = await files.bytes(name, optional);
  if (!b) return null;
  if (b.byteLength > MAX_JSON_BYTES) {
    throw new FileFormatError(`${name} from ${files.label} is ${(b.byteLength / 2 ** 20).toFixed(0)} MiB, over the ${MAX_JSON_BYTES >> 20} MiB a JSON side file can be: it is not the file it claims to be.`, { file: name });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(b));
  } catch {
    throw new FileFormatError(`${name} from ${files.label} is not valid JSON. The file is corrupt: download it again.`, { file: name });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new FileFormatError(`${name} from ${files.label} holds ${jsonKind(parsed)}, not a JSON object. The file is corrupt or not the one expected: download it again.`, { file: name });
  }
  return parsed as Record<string, unknown>;
}

/** A required file a local source (memory, picked files, a folder, a zip) does not have. */
export function missingError(label: string, name: string): DownloadError {
  return new DownloadError(`${name} is missing from ${label}. A model folder needs config.json, tokenizer.json and model.safetensors (or shards with model.safetensors.index.json).`, { file: name, status: 404 });
}

export function missing(label: string, name: string): never {
  throw missingError(label, name);
}

/** The GGUF file of a set of names that has no config.json (a GGUF model is one file; a tokenizer.json may sit beside it). */
export function ggufIn(names: Iterable<string>): string | undefined {
  const list = [...names];
  return list.includes('config.json') ? undefined : list.find((n) => /\.gguf$/i.test(n));
}

/** Files held in memory (tests, the synthetic models, files already read). */
export class MemoryFiles implements ModelFiles {
  readonly gguf?: string;
  constructor(readonly label: string, private readonly files: Map<string, Uint8Array>) {
    this.gguf = ggufIn(files.keys());
  }

  async bytes(name: string, optional = false): Promise<Uint8Array | null> {
    const f = this.files.get(name);
    if (!f) return optional ? null : missing(this.label, name);
    return f;
  }

  async open(name: string): Promise<OpenedFile> {
    const f = this.files.get(name) ?? missing(this.label, name);
    return {
      size: f.byteLength,
      stream: (async function* () {
        for (let o = 0; o < f.byteLength; o += 1 << 20) yield f.subarray(o, o + (1 << 20));
      })(),
    };
  }
}
