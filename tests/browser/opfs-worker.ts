// Runs the BlobStore scenarios against the Origin Private File System, in a dedicated worker (where the engine uses
// it: synchronous access handles exist only there), and posts the outcome.

import { OpfsBlobStore } from '../../src/lib/store/opfs-blobs.js';
import { exerciseStore } from '../helpers/store-scenarios.js';

self.addEventListener('message', async () => {
  try {
    const store = await OpfsBlobStore.create('lora-lab-test');
    if (!store) throw new Error('OPFS with sync access handles is not available in this worker');
    const done = await exerciseStore(store, async () => (await OpfsBlobStore.create('lora-lab-test'))!);
    self.postMessage({ ok: true, done });
  } catch (e) {
    self.postMessage({ ok: false, error: `${(e as Error).name}: ${(e as Error).message}` });
  }
});
