// A local HTTP server on 127.0.0.1 with Hugging Face's URL layout: /{owner}/{name}/resolve/{revision}/{file}.
// Repos can be marked gated (401 without the right bearer token). Used to test the real download code offline.

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Repo {
  files: Map<string, Uint8Array>;
  /** When set, requests need `Authorization: Bearer <token>`. */
  token?: string;
  /** Files answered with a 302 to another URL (as the hub redirects LFS files to its CDN). */
  redirects?: Map<string, string>;
}

export interface HfServer {
  endpoint: string;
  requests: string[];
  /** The Authorization header of each request, in order (null when absent). */
  authorizations: (string | null)[];
  close(): Promise<void>;
}

export async function startHfServer(repos: Record<string, Repo>): Promise<HfServer> {
  const requests: string[] = [];
  const authorizations: (string | null)[] = [];
  const server: Server = createServer((req, res) => {
    requests.push(req.url ?? '');
    authorizations.push(req.headers.authorization ?? null);
    const m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(req.url ?? '');
    const repo = m ? repos[m[1]] : undefined;
    if (!m || !repo) { res.writeHead(404).end('Repository not found'); return; }
    if (repo.token && req.headers.authorization !== `Bearer ${repo.token}`) { res.writeHead(401).end('Access to this repo is restricted'); return; }
    const redirect = repo.redirects?.get(decodeURIComponent(m[3]));
    if (redirect) { res.writeHead(302, { location: redirect }).end(); return; }
    const file = repo.files.get(decodeURIComponent(m[3]));
    if (!file) { res.writeHead(404).end('Entry not found'); return; }
    res.writeHead(200, { 'content-length': String(file.byteLength), 'content-type': 'application/octet-stream' });
    // Send in pieces so the client sees several progress events.
    let o = 0;
    const pump = () => {
      while (o < file.byteLength) {
        const piece = file.subarray(o, o + 4096);
        o += piece.byteLength;
        if (!res.write(piece)) { res.once('drain', pump); return; }
      }
      res.end();
    };
    pump();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    authorizations,
    close: () => new Promise((r) => server.close(() => r())),
  };
}
