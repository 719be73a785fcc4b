// Where model files come from. Every source (a Hugging Face repo, any URL with the same layout, files the user
// picked or dropped, a folder on disk in Node, bytes in memory) offers the same small interface: read a small file
// whole, or open a large one as a byte stream with its size, so weights are never held twice in memory.

import { DownloadError, FileFormatError } from '../errors.js';
import { encodePath, safeRelativeName } from './paths.js';

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

/** Files the user picked (folder picker) or dropped, matched by base name. */
export class BrowserFiles implements ModelFiles {
  readonly #files: Map<string, Blob>;
  readonly gguf?: string;
  constructor(readonly label: string, files: Iterable<File>) {
    this.#files = new Map([...files].map((f) => [f.name, f]));
    this.gguf = ggufIn(this.#files.keys());
  }

  async bytes(name: string, optional = false): Promise<Uint8Array | null> {
    const f = this.#files.get(name);
    if (!f) return optional ? null : missing(this.label, name);
    return new Uint8Array(await f.arrayBuffer());
  }

  async open(name: string): Promise<OpenedFile> {
    const f = this.#files.get(name) ?? missing(this.label, name);
    return { size: f.size, stream: streamChunks(f.stream()) };
  }
}

export async function* streamChunks(body: ReadableStream<Uint8Array>): AsyncIterable<Uint8Array> {
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    reader.releaseLock();
  }
}

export interface HttpOptions {
  /** Hugging Face access token for gated or private repos. */
  token?: string;
  fetch?: typeof fetch;
  /**
   * The files the folder holds, when known (the built-in model and adapters): an optional file not listed is absent
   * without a request, which offline would fail rather than answer 404.
   */
  files?: readonly string[];
  /** The folder holds a GGUF model in this file. */
  gguf?: string;
}

/** Files under a base URL: `${base}${name}`. A Hugging Face repo is `https://huggingface.co/{id}/resolve/{rev}/`. */
export class HttpFiles implements ModelFiles {
  readonly #fetch: typeof fetch;
  readonly gguf?: string;
  constructor(readonly label: string, readonly baseUrl: string, private readonly opts: HttpOptions = {}, readonly modelId = label) {
    this.#fetch = opts.fetch ?? globalThis.fetch.bind(globalThis);
    this.gguf = opts.gguf;
    if (!this.baseUrl.endsWith('/')) this.baseUrl += '/';
  }

  async #get(name: string, optional: boolean): Promise<Response | null> {
    if (optional && this.opts.files && !this.opts.files.includes(name)) return null;
    // Contained: the request stays under baseUrl, so a token given for this repo goes nowhere else.
    const url = this.baseUrl + encodePath(safeRelativeName(name, this.label));
    const headers: Record<string, string> = this.opts.token ? { Authorization: `Bearer ${this.opts.token}` } : {};
    let res: Response;
    try {
      res = await this.#fetch(url, { headers });
    } catch (e) {
      throw new DownloadError(`Could not reach ${url} (${(e as Error).message}). Check the network connection, or load the model from a local folder.`, { file: name, url });
    }
    // Static hosts with a single-page-app fallback answer a missing file with index.html: that is a 404 too.
    const html = res.ok && (res.headers.get('content-type') ?? '').includes('text/html');
    if (res.ok && !html) return res;
    if ((res.status === 404 || html) && optional) return null;
    if (html) {
      throw new DownloadError(`${name}: not found at ${url} (the server answered with an HTML page). Check the URL: it must be the folder that holds config.json and the weights.`, { file: name, url, status: 404 });
    }
    if (res.status === 401 || res.status === 403) {
      throw new DownloadError(
        `${name}: ${res.status} ${res.status === 401 ? 'Unauthorized' : 'Forbidden'} at ${url}. The repo is gated or private: ` +
          'accept its licence on huggingface.co and give an access token (Settings > Access Tokens), or check the repo id.',
        { file: name, url, status: res.status },
      );
    }
    if (res.status === 404) {
      throw new DownloadError(`${name}: 404 Not Found at ${url}. Check the repo id and revision; the model must have safetensors weights and a tokenizer.json.`, { file: name, url, status: 404 });
    }
    throw new DownloadError(`${name}: HTTP ${res.status} at ${url}. Try again later.`, { file: name, url, status: res.status });
  }

  async bytes(name: string, optional = false): Promise<Uint8Array | null> {
    const res = await this.#get(name, optional);
    return res ? new Uint8Array(await res.arrayBuffer()) : null;
  }

  async open(name: string): Promise<OpenedFile> {
    const res = (await this.#get(name, false))!;
    const size = Number(res.headers.get('content-length') ?? NaN);
    if (!Number.isFinite(size) || !res.body) {
      const b = new Uint8Array(await res.arrayBuffer());
      return { size: b.byteLength, stream: (async function* () { yield b; })() };
    }
    return { size, stream: streamChunks(res.body) };
  }
}

const REPO_ID = /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/;

/** True when `s` looks like a Hugging Face repo id (`owner/name`), not a URL or path. */
export function isRepoId(s: string): boolean {
  return REPO_ID.test(s) && !s.startsWith('.') && !s.includes('..');
}

/** Files of a Hugging Face repo at a revision; `endpoint` lets tests point at a local server with the same layout. */
export function huggingFaceFiles(repoId: string, revision = 'main', opts: HttpOptions & { endpoint?: string } = {}): HttpFiles {
  const endpoint = (opts.endpoint ?? 'https://huggingface.co').replace(/\/$/, '');
  return new HttpFiles(`${repoId}@${revision}`, `${endpoint}/${repoId}/resolve/${encodeURIComponent(revision)}/`, opts, repoId);
}
