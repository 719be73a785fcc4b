// Every GPU test file ends with no WebGPU error outside an error scope on its shared devices: such an error means a
// command that silently did nothing (a copy within one buffer did, once), which results alone may not reveal.

import { afterAll, expect } from 'vitest';
import { testGpus } from './gpu.js';

afterAll(async () => {
  for (const g of await testGpus()) expect(g.uncapturedErrors, `uncaught WebGPU errors on ${g.description}`).toEqual([]);
});
