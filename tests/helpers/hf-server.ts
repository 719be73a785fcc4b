// A local HTTP server on 127.0.0.1 with Hugging Face's URL layout, to test the real download code offline:
//   GET /api/models/{owner}/{name}/revision/{rev}   model info with the commit sha (what @huggingface/hub's modelInfo asks)
//   GET /api/models/{owner}/{name}/tree/{rev}       file listing with size and, for LFS files, the SHA-256 (listFiles)
//   GET /{owner}/{name}/resolve/{rev}/{file}        the file, with Range support (206, 416)
// Revisions: the head commit `sha`, `main`, any name in `refs`, and older commits in `commits`. Repos can be gated
// (401 without the right bearer token), redirect files, cut connections mid-file, or publish a wrong hash.

import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Repo {
  /** Files at the head commit. */
  files: Map<string, Uint8Array>;
  /** The head commit (default: derived from the file contents). */
  sha?: string;
  /** Branch or tag names → commit sha (main → head by default). */
  refs?: Record<string, string>;
  /** Files of other commits. */
  commits?: Record<string, Map<string, Uint8Array>>;
  /** When set, requests need `Authorization: Bearer <token>`. */
  token?: string;
  /** Files answered with a 302 to another URL (as the hub redirects LFS files to its CDN). */
  redirects?: Map<string, string>;
  /** Cut the connection after `bytes` bytes of `file`, `times` times (then serve normally). */
  cuts?: { file: string; bytes: number; times: number }[];
  /** The SHA-256 the listing publishes for a file, instead of the real one (to test verification). */
  publishedSha256?: Map<string, string>;
  /** Ignore Range headers (a server that always sends the whole file). */
  noRange?: boolean;
  /** The listing's git blob id for a (non-LFS) file, instead of the real one. */
  publishedGitOid?: Map<string, string>;
  /** The listing names a next page here (a Link header with rel="next"), as a hostile or broken hub might. */
  nextPage?: string;
  /** Stop sending `file` after `bytes` bytes, `times` times, keeping the connection open (a stalled server). */
  stalls?: { file: string; bytes: number; times: number }[];
  /** The listing answers its headers and the start of its body, then stalls, this many times. */
  stallListing?: number;
  /** Bytes per write; a delay between writes slows the download so a test can interrupt it. */
  piece?: number;
  delayMs?: number;
}

export interface HfServer {
  endpoint: string;
  requests: string[];
  /** The Authorization header of each request, in order (null when absent). */
  authorizations: (string | null)[];
  /** The Range header of each request, in order (null when absent). */
  ranges: (string | null)[];
  /** The most file responses that were being sent at once (reset it to measure again). */
  maxInFlight: number;
  close(): Promise<void>;
}

export const isLfs = (path: string) => /\.(safetensors|bin|gguf)$/.test(path);
export const sha256Hex = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function headSha(repo: Repo): string {
  if (repo.sha) return repo.sha;
  const h = createHash('sha1');
  for (const [k, v] of [...repo.files].sort(([a], [b]) => a.localeCompare(b))) h.update(k).update(v);
  return h.digest('hex');
}

export async function startHfServer(repos: Record<string, Repo>): Promise<HfServer> {
  const requests: string[] = [];
  const authorizations: (string | null)[] = [];
  const ranges: (string | null)[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const sockets = new Set<import('node:net').Socket>();

  const filesAt = (repo: Repo, rev: string): { sha: string; files: Map<string, Uint8Array> } | null => {
    const head = headSha(repo);
    const sha = rev === 'main' || rev === 'HEAD' ? head : repo.refs?.[rev] ?? rev;
    if (sha === head) return { sha, files: repo.files };
    const files = repo.commits?.[sha];
    return files ? { sha, files } : null;
  };

  const server: Server = createServer((req, res) => {
    // The app runs on another origin (port) in browser tests: answer as the hub does, with CORS.
    res.setHeader('access-control-allow-origin', '*');
    res.setHeader('access-control-expose-headers', 'content-length, content-range, accept-ranges, link, x-request-id');
    if (req.method === 'OPTIONS') {
      res.writeHead(204, { 'access-control-allow-headers': 'authorization, range, accept, content-type', 'access-control-allow-methods': 'GET, HEAD' }).end();
      return;
    }
    const url = new URL(req.url ?? '/', 'http://x');
    requests.push(req.url ?? '');
    authorizations.push(req.headers.authorization ?? null);
    ranges.push((req.headers.range as string | undefined) ?? null);
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    const api = /^\/api\/models\/([^/]+\/[^/]+)\/(revision|tree)\/([^/]+)$/.exec(url.pathname);
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    const repoId = api?.[1] ?? resolve?.[1];
    const repo = repoId ? repos[repoId] : undefined;
    if (!repo) { json(404, { error: 'Repository not found' }); return; }
    if (repo.token && req.headers.authorization !== `Bearer ${repo.token}`) { json(401, { error: 'Access to this repo is restricted' }); return; }
    const at = filesAt(repo, decodeURIComponent((api?.[3] ?? resolve?.[2])!));
    if (!at) { json(404, { error: 'Revision not found' }); return; }

    if (api?.[2] === 'revision') {
      json(200, { _id: `id-${repoId}`, id: repoId, sha: at.sha, private: !!repo.token, gated: false, downloads: 0, likes: 0,
        lastModified: '2026-01-01T00:00:00.000Z', siblings: [...at.files.keys()].map((rfilename) => ({ rfilename })) });
      return;
    }
    if (api?.[2] === 'tree') {
      if (repo.stallListing && repo.stallListing > 0) {
        repo.stallListing--;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('[');
        return;
      }
      if (repo.nextPage) res.setHeader('link', `<${repo.nextPage}>; rel="next"`);
      json(200, [...at.files].map(([path, b]) => ({
        // A git file's id is its blob SHA-1 (of "blob <size>\0" + bytes), as git and the hub compute it.
        type: 'file', oid: repo.publishedGitOid?.get(path) ?? createHash('sha1').update(`blob ${b.byteLength}\0`).update(b).digest('hex'), size: isLfs(path) ? 134 : b.byteLength, path,
        ...(isLfs(path) ? { lfs: { oid: repo.publishedSha256?.get(path) ?? sha256Hex(b), size: b.byteLength, pointerSize: 134 } } : {}),
      })));
      return;
    }

    const name = decodeURIComponent(resolve![3]);
    const redirect = repo.redirects?.get(name);
    if (redirect) { res.writeHead(302, { location: redirect }).end(); return; }
    const file = at.files.get(name);
    if (!file) { json(404, { error: 'Entry not found' }); return; }
    let start = 0;
    const range = /^bytes=(\d+)-$/.exec((req.headers.range as string | undefined) ?? '');
    if (range && !repo.noRange) {
      start = Number(range[1]);
      if (start >= file.byteLength) { res.writeHead(416, { 'content-range': `bytes */${file.byteLength}` }).end(); return; }
      res.writeHead(206, { 'content-length': String(file.byteLength - start), 'content-range': `bytes ${start}-${file.byteLength - 1}/${file.byteLength}`, 'content-type': 'application/octet-stream', 'accept-ranges': 'bytes' });
    } else {
      res.writeHead(200, { 'content-length': String(file.byteLength), 'content-type': 'application/octet-stream', 'accept-ranges': 'bytes' });
    }
    const cut = repo.cuts?.find((c) => c.file === name && c.times > 0);
    if (cut) cut.times--;
    const stall = cut ? undefined : repo.stalls?.find((c) => c.file === name && c.times > 0);
    if (stall) stall.times--;
    const end = cut ? Math.min(file.byteLength, start + cut.bytes) : stall ? Math.min(file.byteLength, start + stall.bytes) : file.byteLength;
    // Send in pieces so the client sees several progress events.
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    let o = start;
    const pump = () => {
      while (o < end) {
        const piece = file.subarray(o, Math.min(end, o + (repo.piece ?? 4096)));
        o += piece.byteLength;
        // The cut comes a moment after the last piece has reached the socket, so the client has read exactly
        // `cut.bytes` when the connection breaks (a stream that breaks drops what it had queued but not handed over).
        const more = cut && o >= end ? res.write(piece, () => setTimeout(() => res.socket?.end(), 250)) : res.write(piece);
        if (repo.delayMs) { setTimeout(pump, repo.delayMs); return; }
        if (!more) { res.once('drain', pump); return; }
      }
      if (!cut && !stall) res.end(); // a stalled answer neither ends nor breaks: the client must give up on it
      inFlight--;
    };
    pump();
  });
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    authorizations,
    ranges,
    get maxInFlight() { return maxInFlight; },
    set maxInFlight(v: number) { maxInFlight = v; },
    close: () => new Promise((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
  };
}
