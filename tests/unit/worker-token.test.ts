// The Hugging Face token kept in the browser goes to huggingface.co only: a page opened with ?hf-endpoint= (a link can
// name any server) must not send it there. A token typed for one load is sent as given.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LabStore } from '../../src/lib/store/kept.js';
import { diskCache } from '../../src/lib/store/disk-catalog.js';
import { ModelCache } from '../../src/lib/store/model-cache.js';
import { createHandler } from '../../src/lib/worker/handler.js';
import type { WorkerEvent } from '../../src/lib/worker/protocol.js';
import { startHfServer, type HfServer } from '../helpers/hf-server.js';

describe('the remembered access token', () => {
  let server: HfServer;
  beforeAll(async () => {
    server = await startHfServer({ 'org/gated': { files: new Map([['config.json', new TextEncoder().encode('{}')]]), token: 'hf_remembered' } });
  });
  afterAll(() => server.close());

  it('is not sent to an endpoint a link named; a token given for the load is', async () => {
    const { store, catalog } = diskCache(mkdtempSync(join(tmpdir(), 'lora-lab-token-')));
    const lab = { getSetting: async () => 'hf_remembered' } as unknown as LabStore;
    const events: WorkerEvent[] = [];
    const handle = createHandler({
      builtin: () => { throw new Error('unused'); },
      builtinDataset: async () => new Uint8Array(),
      builtinAdapter: () => { throw new Error('unused'); },
      createGpu: async () => ({ description: 'none', f16: false, hasF16Feature: false, destroy() {}, lost: false }) as never,
      lab,
      cache: (endpoint) => Promise.resolve(new ModelCache(store, catalog, { endpoint })),
      estimate: async () => null,
    }, (e) => events.push(e));
    await handle({ id: 1, type: 'init', payload: { hfEndpoint: server.endpoint } });
    await handle({ id: 2, type: 'load', payload: { source: { kind: 'hf', repo: 'org/gated' } } });
    const err = events.find((e) => e.id === 2 && e.type === 'error');
    expect(err && err.type === 'error' && err.error.details?.status).toBe(401);
    expect(server.authorizations.filter((a) => a !== null)).toEqual([]);

    await handle({ id: 3, type: 'load', payload: { source: { kind: 'hf', repo: 'org/gated', token: 'hf_typed' } } });
    expect(server.authorizations).toContain('Bearer hf_typed');
    expect(server.authorizations).not.toContain('Bearer hf_remembered');
  });
});
