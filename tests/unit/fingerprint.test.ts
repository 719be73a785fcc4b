// A model's fingerprint: its bytes hash alike whatever their alignment, and runs match a model by fingerprint when
// they recorded one (by the id it was opened under otherwise).

import { describe, expect, it } from 'vitest';
import { hashBytes, sameModel } from '../../src/lib/model/fingerprint.js';
import { Rng } from '../../src/lib/util/rng.js';

describe('model fingerprints', () => {
  it('hash bytes alike at any alignment and length, and tell one changed bit apart', () => {
    const r = new Rng(5);
    const bytes = new Uint8Array(1027).map(() => (r.next() * 256) | 0);
    const shifted = new Uint8Array(1030);
    shifted.set(bytes, 3);
    expect(hashBytes(shifted.subarray(3, 3 + 1027))).toBe(hashBytes(bytes)); // unaligned view, odd length
    const flipped = bytes.slice();
    flipped[1026] ^= 1;
    expect(hashBytes(flipped)).not.toBe(hashBytes(bytes));
    expect(hashBytes(bytes.subarray(0, 1026))).not.toBe(hashBytes(bytes));
    expect(hashBytes(bytes)).toMatch(/^[0-9a-f]{16}$/);
  });

  it('match runs by fingerprint when recorded, else by id', () => {
    const loaded = { modelId: 'demo', fingerprint: 'aaaaaaaaaaaaaaaa' };
    expect(sameModel({ model: 'lora-lab/built-in-demo', fingerprint: 'aaaaaaaaaaaaaaaa' }, loaded)).toBe(true);
    expect(sameModel({ model: 'demo', fingerprint: 'bbbbbbbbbbbbbbbb' }, loaded)).toBe(false);
    expect(sameModel({ model: 'demo' }, loaded)).toBe(true);
    expect(sameModel({ model: 'other' }, loaded)).toBe(false);
  });
});
