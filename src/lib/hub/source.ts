// What the user asked to load, as plain data that crosses the worker boundary, and its resolution into ModelFiles.

import { InvalidArgumentError } from '../errors.js';
import { ZipFiles } from './zip-files.js';
import { type ModelFiles } from '../model-files.js';
import { BrowserFiles, HttpFiles, huggingFaceFiles, isRepoId } from './files.js';

/** The built-in demo model's identity, the same in the browser and the CLI (checkpoints record it as their base). */
export const BUILTIN_MODEL_ID = 'lora-lab/built-in-demo';
/** The adapters shipped with the built-in model (public/adapters/NAME), and what each does. */
export const BUILTIN_ADAPTERS: Readonly<Record<string, string>> = { 'demo-zh': 'answers in Chinese', 'demo-short': 'answers in one sentence' };

export type ModelSource =
  | { kind: 'builtin'; name?: string }
  /** `file`: a GGUF model, one .gguf file of the repo. */
  | { kind: 'hf'; repo: string; revision?: string; token?: string; file?: string }
  | { kind: 'url'; url: string }
  | { kind: 'files'; files: File[]; label?: string }
  | { kind: 'dir'; path: string }
  /** An adapter kept in this browser, by name. */
  | { kind: 'kept'; name: string }
  /** A model folder imported into this browser's store (Storage > Import), by its snapshot id. */
  | { kind: 'snapshot'; id: string; label?: string };

export interface ResolveEnv {
  /** Base URL (browser) or folder (Node) of the built-in demo model. */
  builtin: () => ModelFiles;
  /** Node only: a folder on disk. */
  dir?: (path: string) => ModelFiles;
  /** Overrides https://huggingface.co (tests point it at a local server). */
  hfEndpoint?: string;
  fetch?: typeof fetch;
}

/** Parses what a person typed: a repo id (`owner/name` or `owner/name@revision`), a URL, or (Node) a path. */
export function parseSourceText(text: string): ModelSource {
  const t = text.trim();
  if (t === '' || t === 'builtin' || t === 'demo') return { kind: 'builtin' };
  if (/^https?:\/\//.test(t)) return { kind: 'url', url: t };
  // owner/name[@revision]/file.gguf: one GGUF file of a repo.
  const gguf = /^([\w.-]+\/[\w.-]+)(?:@([^/]+))?\/(.+\.gguf)$/i.exec(t);
  if (gguf && isRepoId(gguf[1])) return { kind: 'hf', repo: gguf[1], revision: gguf[2] || undefined, file: gguf[3] };
  const [repo, revision] = t.split('@');
  if (isRepoId(repo) && !t.startsWith('/')) return { kind: 'hf', repo, revision: revision || undefined };
  return { kind: 'dir', path: t };
}

export function resolveSource(source: ModelSource, env: ResolveEnv): ModelFiles {
  switch (source.kind) {
    case 'builtin':
      return env.builtin();
    case 'hf':
      if (!isRepoId(source.repo)) throw new InvalidArgumentError(`"${source.repo}" is not a Hugging Face repo id: make sure it looks like owner/name, e.g. HuggingFaceTB/SmolLM2-135M-Instruct`);
      return huggingFaceFiles(source.repo, source.revision ?? 'main', { token: source.token, endpoint: env.hfEndpoint, fetch: env.fetch, gguf: source.file });
    case 'url': {
      // A URL of a .gguf file: the model is that file, and a tokenizer.json may sit beside it.
      const gguf = /\/([^/?#]+\.gguf)(?:[?#].*)?$/i.exec(source.url);
      if (gguf) return new HttpFiles(source.url, source.url.slice(0, source.url.lastIndexOf('/') + 1), { fetch: env.fetch, gguf: decodeURIComponent(gguf[1]) });
      return new HttpFiles(source.url, source.url, { fetch: env.fetch });
    }
    case 'files':
      // One .zip: a model folder zipped (a merged model exported here, for one).
      if (source.files.length === 1 && /\.zip$/i.test(source.files[0].name)) return new ZipFiles(source.label ?? source.files[0].name, source.files[0]);
      return new BrowserFiles(source.label ?? 'local files', source.files);
    case 'kept':
      throw new InvalidArgumentError(`"${source.name}" names a kept adapter; only adapters can be opened by name.`);
    case 'snapshot':
      throw new InvalidArgumentError(`${source.label ?? source.id} is a model folder imported into a browser's store: it opens only there (Storage > Load).`);
    case 'dir':
      if (!env.dir) throw new InvalidArgumentError('Folders on disk can only be opened in Node; in the browser pick the folder or drop its files.');
      return env.dir(source.path);
  }
}
