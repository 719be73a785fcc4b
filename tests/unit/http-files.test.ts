// HttpFiles: a folder on a web server. When the folder's files are known (the built-in model and adapters, which the
// service worker precaches), an optional file that is not among them is absent without a request: offline, that
// request would fail as a network error instead of a 404, and the built-in model would not load on a plane.

import { describe, expect, it } from 'vitest';
import { HttpFiles } from '../../src/lib/hub/files.js';
import { DownloadError } from '../../src/lib/errors.js';

function offlineFetch(served: Record<string, string>) {
  const asked: string[] = [];
  const fetch = (async (url: string | URL) => {
    const name = String(url).split('/').pop()!;
    asked.push(name);
    if (name in served) return new Response(served[name], { status: 200, headers: { 'content-type': 'application/json' } });
    throw new TypeError('Failed to fetch'); // offline: only what the service worker holds answers
  }) as typeof globalThis.fetch;
  return { fetch, asked };
}

describe('HttpFiles', () => {
  it('with its files known, an optional file not among them is absent without a request', async () => {
    const { fetch, asked } = offlineFetch({ 'config.json': '{}' });
    const files = new HttpFiles('built-in', 'http://app.test/models/demo/', { fetch, files: ['config.json'] });
    expect(await files.bytes('chat_template.jinja', true)).toBeNull();
    expect(new TextDecoder().decode((await files.bytes('config.json'))!)).toBe('{}');
    expect(asked).toEqual(['config.json']);
  });

  it('without a list, an optional file that cannot be reached is a DownloadError that says what to do', async () => {
    const { fetch } = offlineFetch({});
    const files = new HttpFiles('somewhere', 'http://app.test/m/', { fetch });
    const err = await files.bytes('chat_template.jinja', true).catch((e) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect(err.message).toMatch(/Could not reach .*chat_template\.jinja.*Check the network connection/);
  });
});
