// lora-lab's cache as a user meets it: a repo downloaded once from a hub-style server, then generated from with
// --offline and the server gone; cache list / export / import / rm; an archive imported on "another machine" (a
// fresh cache folder) generates the same tokens without any network.

import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHfServer, type HfServer } from '../helpers/hf-server.js';

const run = promisify(execFile);
const bin = new URL('../../bin/lora-lab.js', import.meta.url).pathname;

async function cli(env: Record<string, string>, ...args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const r = await run('node', [bin, ...args], { env: { ...process.env, ...env }, maxBuffer: 1 << 24 });
    return { ...r, code: 0 };
  } catch (e) {
    const err = e as { stdout: string; stderr: string; code: number };
    return { stdout: err.stdout, stderr: err.stderr, code: err.code };
  }
}
const lastJson = (out: string) => JSON.parse(out.trim().split('\n').at(-1)!);
const GREEDY = ['--prompt-ids', '1,2,3', '--temperature', '0', '--max-new-tokens', '6', '--json'];

describe('lora-lab cache', () => {
  let server: HfServer;
  const dir = mkdtempSync(join(tmpdir(), 'lora-lab-cli-cache-'));
  const cacheA = join(dir, 'a');
  const cacheB = join(dir, 'b');
  beforeAll(async () => {
    const demo = new URL('../../public/models/demo/', import.meta.url);
    const files = new Map(['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']
      .map((f) => [f, new Uint8Array(readFileSync(new URL(f, demo)))]));
    server = await startHfServer({ 'lora-lab/demo': { files } });
  });
  afterAll(() => server?.close());

  it('downloads once, then generates offline; exports, imports into a fresh cache, and deletes', async () => {
    const online = await cli({ LORA_LAB_CACHE: cacheA }, 'generate', '--model', 'lora-lab/demo', '--hf-endpoint', server.endpoint, ...GREEDY);
    expect(online.code).toBe(0);
    const tokens = lastJson(online.stdout).tokens;
    expect(tokens).toHaveLength(6);
    const requests = server.requests.length;

    // --offline with an endpoint that answers nothing: the kept copy, the same tokens, no request.
    const offline = await cli({ LORA_LAB_CACHE: cacheA }, 'generate', '--offline', '--model', 'lora-lab/demo', '--hf-endpoint', 'http://127.0.0.1:9', ...GREEDY);
    expect(offline.code).toBe(0);
    expect(lastJson(offline.stdout).tokens).toEqual(tokens);
    expect(server.requests.length).toBe(requests);

    const list = await cli({}, 'cache', 'list', '--json', '--cache-dir', cacheA);
    const kept = lastJson(list.stdout);
    expect(kept).toMatchObject({ kind: 'model', repo: 'lora-lab/demo', revisions: ['main'], files: 5 });
    expect(kept.sha).toMatch(/^[0-9a-f]{40}$/);

    const archive = join(dir, 'demo.zip');
    const exported = await cli({}, 'cache', 'export', 'lora-lab/demo', '--out', archive, '--cache-dir', cacheA);
    expect(exported.code).toBe(0);
    expect(existsSync(archive)).toBe(true);

    const imported = await cli({}, 'cache', 'import', archive, '--cache-dir', cacheB);
    expect(imported.stdout).toMatch(/imported lora-lab\/demo@main/);
    const elsewhere = await cli({ LORA_LAB_CACHE: cacheB, LORA_LAB_OFFLINE: '1' }, 'generate', '--model', 'lora-lab/demo', ...GREEDY);
    expect(elsewhere.code).toBe(0);
    expect(lastJson(elsewhere.stdout).tokens).toEqual(tokens);

    // A damaged archive is refused and leaves nothing.
    const bytes = readFileSync(archive);
    const at = bytes.indexOf(Buffer.from('files/model.safetensors')) + 200; // inside the weights' bytes
    bytes[at] ^= 0xff;
    writeFileSync(join(dir, 'bad.zip'), bytes);
    const bad = await cli({}, 'cache', 'import', join(dir, 'bad.zip'), '--cache-dir', join(dir, 'c'));
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/IntegrityError: model\.safetensors in bad\.zip is damaged/);
    expect((await cli({}, 'cache', 'list', '--cache-dir', join(dir, 'c'))).stdout).toMatch(/nothing kept/);

    const rm = await cli({}, 'cache', 'rm', 'lora-lab/demo', '--cache-dir', cacheB);
    expect(rm.stdout).toMatch(/deleted lora-lab\/demo@main/);
    const gone = await cli({ LORA_LAB_CACHE: cacheB }, 'generate', '--offline', '--model', 'lora-lab/demo', ...GREEDY);
    expect(gone.code).toBe(2);
    expect(gone.stderr).toMatch(/OfflineError: lora-lab\/demo@main is not kept on this device and the network is off/);
  });
});
