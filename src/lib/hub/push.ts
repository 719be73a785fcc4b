// Push to the Hub: files (an adapter's PEFT folder with its model card, a merged model, a dataset, an evaluation's
// results) become one commit to a repo the person names, through @huggingface/hub's commit API (the repo is made
// first when it does not exist). The commit is the last request: until it is accepted the repo is as it was, so an
// interrupted push changes nothing there, and nothing kept here is touched either way.
//
// The token travels only to the hub's own origin: every request goes through `hubFetch`, which sets the
// Authorization header for the endpoint's origin and removes it from any other (LFS storage the hub redirects
// uploads to, a host a response names), whatever the library puts there.

import { commit, createRepo, HubApiError } from '@huggingface/hub';
import { AbortedError, DownloadError, InvalidArgumentError } from '../errors.js';
import { isRepoId } from './files.js';
import { HF_TOKEN, hubFetch } from './hub-fetch.js';

export { hubFetch };
import { safeRelativeName } from './paths.js';

export type PushRepoType = 'model' | 'dataset';

export interface PushProgress {
  phase: 'creating' | 'preuploading' | 'uploadingLargeFiles' | 'committing';
  /** Bytes of large files sent so far, of all of them. */
  sent?: number;
  total?: number;
}

export interface PushRequest {
  /** The hub: https://huggingface.co, a mirror, or a local server in tests. */
  endpoint: string;
  repo: string;
  type: PushRepoType;
  token: string;
  files: Map<string, Blob | Uint8Array>;
  /** The commit's title. */
  message: string;
  private?: boolean;
  signal?: AbortSignal;
  onProgress?: (p: PushProgress) => void;
  /** The network (tests give the browser a fake hub); default: global fetch. */
  fetch?: typeof fetch;
}

export interface PushResult {
  repoUrl: string;
  commitOid: string;
  commitUrl: string;
  /** The repo did not exist and was made by this push. */
  created: boolean;
}

/** A repo name to push to: owner/name. */
export function checkRepoName(repo: string): void {
  if (!isRepoId(repo)) throw new InvalidArgumentError(`"${repo}" is not a repo name: give it as owner/name (your user or organization, then the repo).`, { field: 'repo' });
}

function check(r: PushRequest): void {
  if (!/^https?:\/\/[^/]+/.test(r.endpoint)) throw new InvalidArgumentError(`The hub endpoint "${r.endpoint}" is not an http(s) URL.`);
  checkRepoName(r.repo);
  if (!HF_TOKEN.test(r.token ?? '')) throw new InvalidArgumentError('Pushing needs a Hugging Face token with write access (hf_..., from Settings > Access Tokens on the hub): paste it whole, without spaces.', { field: 'token' });
  if (r.files.size === 0) throw new InvalidArgumentError('There is nothing to push: no files were given.');
  for (const name of r.files.keys()) safeRelativeName(name, 'a pushed file');
  if (!r.message.trim()) throw new InvalidArgumentError('Give the commit a title.', { field: 'message' });
}

/** What the hub answered, in words, without the token (a message can echo what was sent). */
function pushError(e: unknown, r: PushRequest): Error {
  if (r.signal?.aborted || (e as Error).name === 'AbortError') return new AbortedError('The push was stopped: the repo on the hub is as it was, and everything is still kept here.');
  const scrub = (s: string) => s.split(r.token).join('<token>');
  if (e instanceof HubApiError) {
    const why = e.statusCode === 401 || e.statusCode === 403
      ? 'the token was refused: it needs write access to this repo (a fine-grained token must list it)'
      : e.statusCode === 404 ? 'the hub does not know this repo or its owner' : `the hub answered ${e.statusCode}: ${scrub(e.message)}`;
    return new DownloadError(`Pushing to ${r.repo} failed: ${why}. Nothing was changed on the hub; everything is still kept here.`, { status: e.statusCode, url: scrub(e.url ?? '') });
  }
  return new DownloadError(`Pushing to ${r.repo} failed: ${scrub((e as Error).message ?? String(e))}. Nothing was changed on the hub (a push is one commit, made last); everything is still kept here. Check the network and try again.`);
}

/** Pushes `files` as one commit to `repo` (made when missing). */
export async function pushToHub(r: PushRequest): Promise<PushResult> {
  check(r);
  const f = hubFetch(r.endpoint, r.token, r.fetch ?? fetch);
  const repo = { type: r.type, name: r.repo } as const;
  const base = r.endpoint.replace(/\/$/, '');
  try {
    r.onProgress?.({ phase: 'creating' });
    let created = true;
    try {
      await createRepo({ repo, hubUrl: base, fetch: f, private: r.private, accessToken: r.token });
    } catch (e) {
      if (!(e instanceof HubApiError && e.statusCode === 409)) throw e;
      created = false; // it exists: the commit goes on top of it
    }
    const operations = [...r.files].map(([path, content]) => ({
      operation: 'addOrUpdate' as const, path, content: content instanceof Blob ? content : new Blob([content as BlobPart]),
    }));
    const total = operations.reduce((n, o) => n + o.content.size, 0);
    const out = await commit({
      repo, hubUrl: base, fetch: f, accessToken: r.token, title: r.message, operations, useXet: false, abortSignal: r.signal,
    });
    r.onProgress?.({ phase: 'committing', sent: total, total });
    if (!out?.commit) throw new Error('the hub did not say which commit it made');
    const prefix = r.type === 'dataset' ? 'datasets/' : '';
    return { repoUrl: `${base}/${prefix}${r.repo}`, commitOid: out.commit.oid, commitUrl: out.commit.url, created };
  } catch (e) {
    throw pushError(e, r);
  }
}
