// Push to the Hub against a local server with the hub's write API (tests/helpers/hub-commit-server.ts): small files
// inline and large ones through LFS storage on another origin arrive whole and verified; the token reaches the hub's
// origin only; an interrupted push or a refused token leaves the repo unchanged; bad input is refused before any request.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DownloadError, InvalidArgumentError } from '../../src/lib/errors.js';
import { hubFetch, pushToHub } from '../../src/lib/hub/push.js';
import { startCommitHub, type CommitHub } from '../helpers/hub-commit-server.js';

const TOKEN = 'hf_pushTestToken123';
let hub: CommitHub;
beforeAll(async () => { hub = await startCommitHub(TOKEN); });
afterAll(async () => { await hub.close(); });

const big = Uint8Array.from({ length: 300_000 }, (_, i) => (i * 2654435761) >>> 24);
const files = () => new Map<string, Uint8Array>([
  ['adapter_config.json', new TextEncoder().encode('{"r": 8}')],
  ['adapter_model.safetensors', big],
  ['README.md', new TextEncoder().encode('# my adapter\n')],
]);

describe('push to the Hub', () => {
  it('makes the repo, uploads large files to LFS storage and small ones inline, in one commit, whole', async () => {
    const phases: string[] = [];
    const r = await pushToHub({ endpoint: hub.endpoint, repo: 'me/my-adapter', type: 'model', token: TOKEN, files: files(), message: 'Upload my-adapter', onProgress: (p) => phases.push(p.phase) });
    expect(r.created).toBe(true);
    expect(r.repoUrl).toBe(`${hub.endpoint}/me/my-adapter`);
    const repo = hub.repos.get('model:me/my-adapter')!;
    expect(repo.commits).toEqual([r.commitOid]);
    expect([...repo.files.keys()].sort()).toEqual(['README.md', 'adapter_config.json', 'adapter_model.safetensors']);
    expect(repo.files.get('adapter_model.safetensors')).toEqual(big);
    expect(new TextDecoder().decode(repo.files.get('adapter_config.json'))).toBe('{"r": 8}');
    expect(phases).toEqual(['creating', 'committing']);
    // The large file went to storage; the token went to the hub only.
    expect(hub.log.some((l) => l.origin === 'storage' && l.method === 'PUT')).toBe(true);
    expect(hub.log.filter((l) => l.origin === 'storage').map((l) => l.auth)).toEqual(hub.log.filter((l) => l.origin === 'storage').map(() => null));
    expect(hub.log.filter((l) => l.origin === 'hub').every((l) => l.auth === `Bearer ${TOKEN}`)).toBe(true);

    // A second push to the same repo is a second commit on top of it.
    const again = await pushToHub({ endpoint: hub.endpoint, repo: 'me/my-adapter', type: 'model', token: TOKEN, files: new Map([['README.md', new TextEncoder().encode('# v2\n')]]), message: 'v2' });
    expect(again.created).toBe(false);
    expect(repo.commits).toHaveLength(2);
    expect(new TextDecoder().decode(repo.files.get('README.md'))).toBe('# v2\n');
    expect(repo.files.get('adapter_model.safetensors')).toEqual(big);
  });

  it('an interrupted upload leaves the repo as it was, and says so', async () => {
    await pushToHub({ endpoint: hub.endpoint, repo: 'me/stable', type: 'dataset', token: TOKEN, files: new Map([['data.json', new TextEncoder().encode('[1]')]]), message: 'first' });
    const repo = hub.repos.get('dataset:me/stable')!;
    const before = new Map(repo.files);
    hub.cutUploads(1, 50_000);
    const err = await pushToHub({ endpoint: hub.endpoint, repo: 'me/stable', type: 'dataset', token: TOKEN, files: new Map([['data.json', new TextEncoder().encode('[2]')], ['big.bin', big.map((x) => x ^ 1)]]), message: 'second' }).catch((e) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect(err.message).toMatch(/Nothing was changed on the hub/);
    expect(repo.files).toEqual(before);
    expect(repo.commits).toHaveLength(1);
  });

  it('a refused token is said in words, without the token, and changes nothing', async () => {
    const bad = 'hf_wrongToken999';
    const err = await pushToHub({ endpoint: hub.endpoint, repo: 'me/other', type: 'model', token: bad, files: files(), message: 'x' }).catch((e) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect(err.message).toMatch(/token was refused/);
    expect(err.message).not.toContain(bad);
    expect(hub.repos.has('model:me/other')).toBe(false);
  });

  it('bad input is refused before any request', async () => {
    const n = hub.log.length;
    const base = { endpoint: hub.endpoint, repo: 'me/x', type: 'model' as const, token: TOKEN, files: files(), message: 'x' };
    for (const [change, field] of [[{ repo: 'no-owner' }, 'repo'], [{ repo: '../evil/x' }, 'repo'], [{ token: 'hf_with space' }, 'token'], [{ token: 'not-a-token' }, 'token'], [{ message: ' ' }, 'message']] as const) {
      const err = await pushToHub({ ...base, ...change }).catch((e) => e);
      expect(err).toBeInstanceOf(InvalidArgumentError);
      expect(err.details.field).toBe(field);
    }
    await expect(pushToHub({ ...base, files: new Map([['../x', new Uint8Array(1)]]) })).rejects.toThrow(/Only plain file names/);
    await expect(pushToHub({ ...base, files: new Map() })).rejects.toThrow(/nothing to push/);
    expect(hub.log.length).toBe(n);
  });

  it('hubFetch sets the token for the hub origin and strips it from every other', async () => {
    const seen: [string, string | null][] = [];
    const f = hubFetch('https://huggingface.co', TOKEN, async (input, init) => {
      seen.push([String(input instanceof Request ? input.url : input), new Headers(init?.headers).get('authorization')]);
      return new Response('{}');
    });
    await f('https://huggingface.co/api/repos/create', { headers: { Authorization: 'Bearer hf_other' } });
    await f('https://huggingface.co.evil.example/api', {});
    await f('https://s3.amazonaws.com/bucket/x', { headers: { Authorization: `Bearer ${TOKEN}` } });
    await f('http://huggingface.co/api', {});
    expect(seen).toEqual([
      ['https://huggingface.co/api/repos/create', `Bearer ${TOKEN}`],
      ['https://huggingface.co.evil.example/api', null],
      ['https://s3.amazonaws.com/bucket/x', null],
      ['http://huggingface.co/api', null],
    ]);
  });
});
