// A static file server on 127.0.0.1 with CORS, for the web-llm scripts: `resolve` maps a request path to a file (or
// null for 404). Paths a script builds from a folder go through `inside`, which keeps them in that folder.

import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { join, normalize } from 'node:path';

/** `rest` (a URL path's tail) as a path inside `dir`: leading `../` segments are dropped. */
export const inside = (dir: string, rest: string): string => join(dir, normalize(rest).replace(/^(\.\.[/\\])+/, ''));

export async function serveFiles(resolve: (path: string) => string | null): Promise<{ base: string; close: () => void }> {
  const server = createServer((req, res) => {
    const file = resolve(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
    res.setHeader('Access-Control-Allow-Origin', '*');
    if (!file || !existsSync(file) || !statSync(file).isFile()) { res.writeHead(404).end(); return; }
    const type = file.endsWith('.wasm') ? 'application/wasm' : file.endsWith('.json') ? 'application/json' : 'application/octet-stream';
    res.writeHead(200, { 'Content-Length': statSync(file).size, 'Content-Type': type });
    createReadStream(file).pipe(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { base: `http://127.0.0.1:${(server.address() as { port: number }).port}`, close: () => server.close() };
}
