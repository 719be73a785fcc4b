// Deterministic train/validation split and micro-batches. The order of each epoch is a seeded shuffle, so a
// checkpoint only needs (epoch, cursor) to resume at the same place. 'length' batching sorts windows of the shuffled
// order by length so a micro-batch holds examples of similar length (less padding); 'packed' concatenates examples
// into full rows (no padding; attention is not blocked between packed examples, as in simple packing).

import { Rng } from '../util/rng.js';
import { IGNORE, type Example } from './examples.js';

export function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  const rng = new Rng(seed);
  for (let i = out.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** The same records always land on the same side for the same seed. */
export function splitTrainValidation<T>(items: readonly T[], fraction: number, seed: number): { train: T[]; validation: T[] } {
  const order = shuffled(items.map((_, i) => i), seed ^ 0x5eed);
  const nVal = fraction > 0 ? Math.max(1, Math.min(items.length - 1, Math.round(items.length * fraction))) : 0;
  const val = new Set(order.slice(0, nVal));
  return { train: items.filter((_, i) => !val.has(i)), validation: items.filter((_, i) => val.has(i)) };
}

export interface MicroBatch {
  /** (B, T) row-major token ids and targets (-100 = no loss); rows padded with token 0 / -100. */
  tokens: Int32Array;
  targets: Int32Array;
  /** Real (non-padding) tokens, and per row. */
  realTokens: number;
  rowLengths: number[];
}

/**
 * Padding length for a batch whose longest row has `n` tokens, at most `max`: a multiple of 16, and past 256 of an
 * eighth of the power of two below n (288, 320, ... 512, 576, ...), so a batch pads its longest row by at most
 * 15 tokens or 1/8 (powers of two padded up to 2x). Every length has its graph; their activations are shared.
 */
export function lengthBucket(n: number, max: number): number {
  const step = Math.max(16, 2 ** Math.floor(Math.log2(Math.max(1, n - 1))) / 8);
  return Math.min(Math.max(16, Math.ceil(n / step) * step), max);
}

/** Every length bucket up to `max` (each graph a run may build), shortest first. */
export function lengthBuckets(max: number): number[] {
  const out: number[] = [];
  for (let n = 1; ; n = out[out.length - 1] + 1) {
    out.push(lengthBucket(n, max));
    if (out[out.length - 1] >= max) return out;
  }
}

/** The batch cut to `T2` columns per row (rows must fit). */
export function narrowBatch(b: MicroBatch, B: number, T: number, T2: number): MicroBatch {
  if (T2 === T) return b;
  const tokens = new Int32Array(B * T2);
  const targets = new Int32Array(B * T2);
  for (let r = 0; r < B; r++) {
    tokens.set(b.tokens.subarray(r * T, r * T + T2), r * T2);
    targets.set(b.targets.subarray(r * T, r * T + T2), r * T2);
  }
  return { ...b, tokens, targets };
}

/** Micro-batches of `B` rows of `T` tokens for one epoch. */
export function epochBatches(examples: readonly Example[], B: number, T: number, seed: number, epoch: number, mode: 'length' | 'packed'): MicroBatch[] {
  const order = shuffled(examples, seed * 1000 + epoch);
  const rows: { ids: number[]; targets: number[] }[] = [];
  if (mode === 'packed') {
    let ids: number[] = [];
    let targets: number[] = [];
    for (const e of order) {
      for (let i = 0; i < e.ids.length; i++) {
        ids.push(e.ids[i]);
        targets.push(e.targets[i]);
        if (ids.length === T) { rows.push({ ids, targets }); ids = []; targets = []; }
      }
    }
    if (ids.length) rows.push({ ids, targets });
  } else {
    const window = B * 16;
    for (let w = 0; w < order.length; w += window) {
      const part = order.slice(w, w + window).sort((a, b) => a.ids.length - b.ids.length);
      for (const e of part) rows.push({ ids: e.ids.slice(0, T), targets: e.targets.slice(0, T) });
    }
  }
  const batches: MicroBatch[] = [];
  for (let r = 0; r < rows.length; r += B) {
    const tokens = new Int32Array(B * T);
    const targets = new Int32Array(B * T).fill(IGNORE);
    let realTokens = 0;
    const rowLengths: number[] = [];
    for (let b = 0; b < B && r + b < rows.length; b++) {
      const row = rows[r + b];
      tokens.set(row.ids, b * T);
      targets.set(row.targets, b * T);
      realTokens += row.ids.length;
      rowLengths.push(row.ids.length);
    }
    batches.push({ tokens, targets, realTokens, rowLengths });
  }
  // Batches in a window are in length order; shuffle them so the loss curve does not follow lengths.
  return mode === 'length' ? shuffled(batches, seed * 7919 + epoch) : batches;
}
