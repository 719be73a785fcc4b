// Where model files come from: files the user picked or dropped, any URL with a repo's layout, a Hugging Face repo.
// Each is a ModelFiles (model-files.ts); folders on disk (node-files.ts) and zips (zip-files.ts) are the others.

import { DownloadError } from '../errors.js';
import { encodePath, safeRelativeName } from './paths.js';
import { ggufIn, missing, type ModelFiles, type OpenedFile } from '../model-files.js';

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
