// lora-lab push as a user runs it, against the local hub (tests/helpers/hub-commit-server.ts): an adapter folder goes
// up as one commit without its checkpoint/ (unless asked), a single file to a dataset repo; refusals come before any
// request, and the token never reaches the LFS storage origin.

import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliHere, jsonLines } from '../helpers/cli.js';
import { startCommitHub, type CommitHub } from '../helpers/hub-commit-server.js';

const TOKEN = 'hf_cliPushToken42';
let hub: CommitHub;
beforeAll(async () => { hub = await startCommitHub(TOKEN); });
afterAll(async () => { await hub.close(); });

function adapterFolder(): string {
  const dir = mkdtempSync(join(tmpdir(), 'push-'));
  writeFileSync(join(dir, 'adapter_config.json'), '{"r": 4}');
  writeFileSync(join(dir, 'adapter_model.safetensors'), new Uint8Array(200_000).fill(7));
  writeFileSync(join(dir, 'README.md'), '# adapter');
  mkdirSync(join(dir, 'checkpoint'));
  writeFileSync(join(dir, 'checkpoint', 'optimizer.safetensors'), new Uint8Array(100));
  return dir;
}

describe('lora-lab push', () => {
  it('pushes an adapter folder (without its checkpoint/) and a dataset file, each as one commit', async () => {
    const dir = adapterFolder();
    const r = await cliHere('push', dir, '--repo', 'me/cli-adapter', '--hf-token', TOKEN, '--hf-endpoint', hub.endpoint, '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(jsonLines(r.stdout)[0]).toMatchObject({ type: 'pushed', repo: 'me/cli-adapter', repoType: 'model', created: true, files: ['README.md', 'adapter_config.json', 'adapter_model.safetensors'] });
    expect([...hub.repos.get('model:me/cli-adapter')!.files.keys()].sort()).toEqual(['README.md', 'adapter_config.json', 'adapter_model.safetensors']);
    const withCp = await cliHere('push', dir, '--repo', 'me/cli-adapter', '--with-checkpoint', '--hf-token', TOKEN, '--hf-endpoint', hub.endpoint, '--json');
    expect(jsonLines(withCp.stdout)[0].files).toContain('checkpoint/optimizer.safetensors');

    const data = join(dir, 'answers.json');
    writeFileSync(data, '[{"instruction": "a", "input": "", "output": "b"}]');
    const d = await cliHere('push', data, '--repo', 'me/answers', '--type', 'dataset', '--hf-token', TOKEN, '--hf-endpoint', hub.endpoint);
    expect(d.code, d.stderr).toBe(0);
    expect(d.stdout).toMatch(/pushed 1 files .* to http:\/\/127\.0\.0\.1:\d+\/datasets\/me\/answers \(new repo\)/);
    expect(hub.log.filter((l) => l.origin === 'storage').every((l) => l.auth === null)).toBe(true);
  });

  it('prints all of a long --json answer to a slow pipe before it exits (not the first 64 KiB)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'push-many-'));
    for (let i = 0; i < 3000; i++) writeFileSync(join(dir, `file-${String(i).padStart(5, '0')}-with-a-longer-name.txt`), String(i));
    const bin = new URL('../../bin/lora-lab.js', import.meta.url).pathname;
    const out = join(mkdtempSync(join(tmpdir(), 'push-out-')), 'out.json');
    // The reader sleeps before it reads: the pipe's 64 KiB fill and the rest waits in the command's queue.
    const line = `node ${bin} push ${dir} --repo me/many --hf-token ${TOKEN} --hf-endpoint ${hub.endpoint} --json | (sleep 3; cat) > ${out}`;
    await new Promise<void>((resolve, reject) => execFile('bash', ['-c', line], (e) => (e ? reject(e) : resolve())));
    const text = readFileSync(out, 'utf8');
    expect(text.length).toBeGreaterThan(100_000);
    expect(JSON.parse(text).files).toHaveLength(3000);
  }, 60_000);

  it('refuses before any request: no token, a bad repo name, a symbolic link, a missing path', async () => {
    const dir = adapterFolder();
    symlinkSync('/etc/passwd', join(dir, 'link'));
    const n = hub.log.length;
    const env = process.env.HF_TOKEN;
    delete process.env.HF_TOKEN;
    try {
      for (const [args, why] of [
        [[dir, '--repo', 'me/x'], /needs a token with write access/],
        [[dir, '--repo', 'x', '--hf-token', TOKEN], /is not a repo name/],
        [[dir, '--repo', 'me/x', '--hf-token', TOKEN], /is a symbolic link/],
        [[join(dir, 'nope'), '--repo', 'me/x', '--hf-token', TOKEN], /no such file or folder/],
      ] as const) {
        const r = await cliHere('push', ...args, '--hf-endpoint', hub.endpoint);
        expect(r.code).toBe(2);
        expect(r.stderr).toMatch(why);
      }
    } finally {
      if (env !== undefined) process.env.HF_TOKEN = env;
    }
    expect(hub.log.length).toBe(n);
  });
});
