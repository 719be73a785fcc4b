// A seeded few thousand cases of each parser's mutation fuzzer (npm run fuzz runs 100,000 each): only typed errors,
// no hang, and what is accepted is exactly what the bytes say (see tests/fuzz/fuzzers.ts for the oracles).

import { describe, expect, it } from 'vitest';
import { FUZZERS } from '../fuzz/fuzzers.js';

// ~1-4 s each alone; several times that when the GPU and browser projects share the two cores.
describe('fuzzing every parser over real files', { timeout: 60_000 }, () => {
  it.each(Object.entries(FUZZERS))('%s', async (_name, fuzz) => {
    const stats = await fuzz(3000, 20261201);
    expect(stats.cases).toBe(3000);
    // Both outcomes occur, so the mutations reach past the first check and the oracle runs.
    expect(stats.accepted).toBeGreaterThan(100);
    expect(Object.values(stats.refused).reduce((a, b) => a + b, 0)).toBeGreaterThan(100);
  });
});
