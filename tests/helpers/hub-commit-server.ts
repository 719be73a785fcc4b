// The part of the hub's write API that @huggingface/hub's createRepo and commit use, on 127.0.0.1, with its LFS
// storage on a second origin (as the hub hands uploads to S3), so tests can see where the token goes:
//   POST /api/repos/create                                   {name, organization, type} -> {url}; 409 when it exists
//   POST /api/{models|datasets}/{owner}/{name}/preupload/{rev} files of 64 KiB and more go to LFS, others inline
//   POST /{datasets/}{owner}/{name}.git/info/lfs/objects/batch  basic transfer: an upload URL on the storage origin
//   PUT  <storage>/upload/{oid}                                 the body must hash to the oid and have its size
//   POST /api/{models|datasets}/{owner}/{name}/commit/{rev}   NDJSON: header, file (base64), lfsFile (uploaded oid)
// A commit is applied whole or not at all. Every request is logged with its origin and Authorization header.

import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface HubRepo {
  type: 'model' | 'dataset';
  files: Map<string, Uint8Array>;
  commits: string[];
}

export interface CommitHub {
  endpoint: string;
  storage: string;
  repos: Map<string, HubRepo>;
  log: { origin: 'hub' | 'storage'; method: string; path: string; auth: string | null }[];
  /** Cut the connection of the next `n` LFS uploads after `bytes` bytes. */
  cutUploads: (n: number, bytes: number) => void;
  close: () => Promise<void>;
}

const LFS_MIN = 64 << 10;

async function body(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Answers a browser's CORS preflight (the app's worker calls from another origin); true when it did. */
function cors(req: IncomingMessage, res: ServerResponse): boolean {
  res.setHeader('Access-Control-Allow-Origin', '*');
  res.setHeader('Access-Control-Expose-Headers', 'ETag, X-Request-Id');
  if (req.method !== 'OPTIONS') return false;
  res.writeHead(204, { 'Access-Control-Allow-Methods': 'GET, POST, PUT', 'Access-Control-Allow-Headers': 'Authorization, Content-Type, Accept, X-Request-Id', 'Access-Control-Max-Age': '600' });
  res.end();
  return true;
}

export async function startCommitHub(token: string): Promise<CommitHub> {
  const repos = new Map<string, HubRepo>();
  const lfs = new Map<string, Uint8Array>();
  const log: CommitHub['log'] = [];
  let cuts = { n: 0, bytes: 0 };
  const listen = (s: Server) => new Promise<string>((r) => s.listen(0, '127.0.0.1', () => r(`http://127.0.0.1:${(s.address() as AddressInfo).port}`)));
  const json = (res: ServerResponse, status: number, o: unknown) => { res.writeHead(status, { 'content-type': 'application/json' }); res.end(JSON.stringify(o)); };

  const storageServer = createServer(async (req, res) => {
    if (cors(req, res)) return;
    log.push({ origin: 'storage', method: req.method!, path: req.url!, auth: req.headers.authorization ?? null });
    const m = /^\/upload\/([0-9a-f]{64})\?size=(\d+)$/.exec(req.url ?? '');
    if (!m || req.method !== 'PUT') return json(res, 404, { error: 'no such upload' });
    if (cuts.n > 0) {
      cuts.n--;
      let got = 0;
      req.on('data', (c: Buffer) => { got += c.length; if (got >= cuts.bytes) req.socket.destroy(); });
      return;
    }
    const b = new Uint8Array(await body(req));
    if (sha256(b) !== m[1] || b.length !== Number(m[2])) return json(res, 400, { error: 'the body does not match its oid and size' });
    lfs.set(m[1], b);
    res.writeHead(200, { etag: `"${m[1]}"` });
    res.end();
  });
  const storage = await listen(storageServer);

  const hubServer = createServer(async (req, res) => {
    if (cors(req, res)) return;
    const path = new URL(req.url!, 'http://x').pathname;
    log.push({ origin: 'hub', method: req.method!, path, auth: req.headers.authorization ?? null });
    if (req.headers.authorization !== `Bearer ${token}`) return json(res, 401, { error: 'Invalid credentials in Authorization header' });
    if (req.method === 'POST' && path === '/api/repos/create') {
      const o = JSON.parse((await body(req)).toString());
      const id = `${o.organization}/${o.name}`;
      const key = `${o.type ?? 'model'}:${id}`;
      if (repos.has(key)) return json(res, 409, { error: 'You already created this repo', url: `${endpoint}/${id}` });
      repos.set(key, { type: o.type ?? 'model', files: new Map(), commits: [] });
      return json(res, 200, { url: `${endpoint}/${id}`, id });
    }
    const api = /^\/api\/(models|datasets)\/([^/]+\/[^/]+)\/(preupload|commit)\/([^/]+)$/.exec(path);
    const batch = /^\/(datasets\/)?([^/]+\/[^/]+)\.git\/info\/lfs\/objects\/batch$/.exec(path);
    const key = api ? `${api[1] === 'datasets' ? 'dataset' : 'model'}:${api[2]}` : batch ? `${batch[1] ? 'dataset' : 'model'}:${batch[2]}` : '';
    const repo = repos.get(key);
    if (!repo) return json(res, 404, { error: 'Repository not found' });
    const b = (await body(req)).toString();
    if (api?.[3] === 'preupload') {
      const o = JSON.parse(b) as { files: { path: string; size: number }[] };
      return json(res, 200, { files: o.files.map((f) => ({ path: f.path, uploadMode: f.size >= LFS_MIN ? 'lfs' : 'regular', shouldIgnore: false })) });
    }
    if (batch) {
      const o = JSON.parse(b) as { objects: { oid: string; size: number }[] };
      return json(res, 200, { transfer: 'basic', objects: o.objects.map((x) => ({ oid: x.oid, size: x.size, actions: lfs.has(x.oid) ? undefined : { upload: { href: `${storage}/upload/${x.oid}?size=${x.size}` } } })) });
    }
    // The commit: checked whole, then applied whole.
    const next = new Map(repo.files);
    for (const line of b.split('\n').filter(Boolean)) {
      const { key: k, value } = JSON.parse(line);
      if (k === 'file') next.set(value.path, new Uint8Array(Buffer.from(value.content, 'base64')));
      else if (k === 'lfsFile') {
        const data = lfs.get(value.oid);
        if (!data || data.length !== value.size) return json(res, 422, { error: `LFS object ${value.oid} of ${value.path} was not uploaded` });
        next.set(value.path, data);
      } else if (k === 'deletedFile') next.delete(value.path);
    }
    repo.files = next;
    const oid = sha256(new TextEncoder().encode(b)).slice(0, 40);
    repo.commits.push(oid);
    return json(res, 200, { commitOid: oid, commitUrl: `${endpoint}/${api![2]}/commit/${oid}` });
  });
  const endpoint = await listen(hubServer);

  return {
    endpoint, storage, repos, log,
    cutUploads: (n, bytes) => { cuts = { n, bytes }; },
    close: async () => {
      for (const s of [hubServer, storageServer]) { s.closeAllConnections(); await new Promise((r) => s.close(r)); }
    },
  };
}
