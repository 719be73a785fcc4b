// The network as the hub's clients see it: a fetch that sends the Hugging Face token to the hub endpoint's origin and
// to no other host, whatever the library that makes the request puts in its headers (a listing's next page named by
// a Link header, LFS storage an upload is sent to, a redirect a response names). With `others: 'refuse'` a request to
// another origin is not made at all: the hub's API has no reason to send its reader anywhere else.

import { DownloadError } from '../errors.js';

export function hubFetch(endpoint: string, token: string | undefined, base: typeof fetch = fetch, others: 'strip' | 'refuse' = 'strip'): typeof fetch {
  const origin = new URL(endpoint).origin;
  return (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const headers = new Headers(input instanceof Request ? input.headers : undefined);
    new Headers(init?.headers).forEach((v, k) => headers.set(k, v));
    if (url.origin === origin) {
      if (token) headers.set('Authorization', `Bearer ${token}`);
    } else {
      if (others === 'refuse') {
        return Promise.reject(new DownloadError(`The hub at ${origin} sent the request on to another host (${url.origin}); it was not followed. A hub does not do that: check the endpoint.`, { url: url.origin }));
      }
      headers.delete('Authorization');
    }
    return base(input instanceof Request ? new Request(input, { headers }) : input, { ...init, headers });
  };
}

/** A Hugging Face access token as the hub issues them: hf_ and letters, digits, _ or - (nothing that could end a header). */
export const HF_TOKEN = /^hf_[A-Za-z0-9_-]{1,512}$/;

/**
 * A fetch that gives up on a server that goes quiet: when no byte arrives for `idleMs` (waiting for the answer, or
 * between two pieces of its body), the request is aborted with a TimeoutError. A download then resumes where it
 * stopped (fetch-file.ts retries with a Range); an API call fails with a message instead of hanging.
 */
export function idleFetch(base: typeof fetch, idleMs: number): typeof fetch {
  return async (input, init) => {
    const quiet = new AbortController();
    const signal = init?.signal ? AbortSignal.any([init.signal, quiet.signal]) : quiet.signal;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => quiet.abort(new DOMException(`no data arrived for ${idleMs < 1000 ? (idleMs / 1000).toFixed(1) : Math.round(idleMs / 1000)} s`, 'TimeoutError')), idleMs);
    };
    arm();
    let res: Response;
    try {
      res = await base(input, { ...init, signal });
    } catch (e) {
      clearTimeout(timer);
      throw quiet.signal.aborted ? quiet.signal.reason : e;
    }
    if (!res.body) { clearTimeout(timer); return res; }
    const watched = res.body.pipeThrough(new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, c) { arm(); c.enqueue(chunk); },
      flush() { clearTimeout(timer); },
    }), { signal });
    return new Response(watched, { status: res.status, statusText: res.statusText, headers: res.headers });
  };
}
