// The hub's API and file layout as a fetch function, for code that runs in the browser (workers included), where the
// Node test server cannot be started from the test: model info with the commit sha, the tree listing with LFS
// SHA-256s, files with Range support, and connections that break mid-file.

export interface FakeRepo {
  sha: string;
  files: Map<string, Uint8Array>;
  /** The listing's SHA-256 for a file, instead of the real one. */
  publishedSha256?: Map<string, string>;
  /** Break the body of `file` after `bytes` bytes, `times` times. */
  cuts?: { file: string; bytes: number; times: number }[];
}

/** A git file's id: the SHA-1 of "blob <size>\0" + its bytes. */
async function gitBlobId(b: Uint8Array): Promise<string> {
  const head = new TextEncoder().encode(`blob ${b.byteLength}\0`);
  const all = new Uint8Array(head.length + b.length);
  all.set(head);
  all.set(b, head.length);
  const d = new Uint8Array(await crypto.subtle.digest('SHA-1', all as BufferSource));
  return [...d].map((x) => x.toString(16).padStart(2, '0')).join('');
}

async function sha256Hex(b: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', b as BufferSource));
  return [...d].map((x) => x.toString(16).padStart(2, '0')).join('');
}

export function fakeHub(endpoint: string, repos: Record<string, FakeRepo>): { fetch: typeof fetch; ranges: (string | null)[] } {
  const ranges: (string | null)[] = [];
  const json = (status: number, body: unknown) => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
  const f = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const url = new URL(String(input instanceof Request ? input.url : input));
    if (!String(url).startsWith(endpoint)) throw new TypeError('Failed to fetch');
    const headers = new Headers(init?.headers);
    const api = /^\/api\/models\/([^/]+\/[^/]+)\/(revision|tree)\/([^/]+)$/.exec(url.pathname);
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    const repo = repos[(api?.[1] ?? resolve?.[1]) ?? ''];
    if (!repo) return json(404, { error: 'Repository not found' });
    if (api?.[2] === 'revision') return json(200, { _id: 'x', id: api[1], sha: repo.sha, private: false, gated: false, downloads: 0, likes: 0, lastModified: '2026-01-01T00:00:00Z' });
    if (api?.[2] === 'tree') {
      const list = [];
      for (const [path, b] of repo.files) {
        const lfs = path.endsWith('.safetensors');
        list.push({ type: 'file', oid: await gitBlobId(b), path, size: lfs ? 134 : b.byteLength, ...(lfs ? { lfs: { oid: repo.publishedSha256?.get(path) ?? await sha256Hex(b), size: b.byteLength, pointerSize: 134 } } : {}) });
      }
      return json(200, list);
    }
    const name = decodeURIComponent(resolve![3]);
    const file = repo.files.get(name);
    if (!file) return json(404, { error: 'Entry not found' });
    const range = headers.get('range');
    ranges.push(range);
    const start = Number(/^bytes=(\d+)-$/.exec(range ?? '')?.[1] ?? 0);
    const cut = repo.cuts?.find((c) => c.file === name && c.times > 0);
    if (cut) cut.times--;
    const end = cut ? Math.min(file.byteLength, start + cut.bytes) : file.byteLength;
    let o = start;
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        if (o >= end) {
          if (cut) c.error(new TypeError('network error: connection reset'));
          else c.close();
          return;
        }
        const piece = file.slice(o, Math.min(end, o + 16384));
        o += piece.byteLength;
        c.enqueue(piece);
      },
    });
    const h: Record<string, string> = { 'content-type': 'application/octet-stream', 'content-length': String(file.byteLength - start) };
    if (start > 0) h['content-range'] = `bytes ${start}-${file.byteLength - 1}/${file.byteLength}`;
    return new Response(body, { status: start > 0 ? 206 : 200, headers: h });
  };
  return { fetch: f as typeof fetch, ranges };
}
