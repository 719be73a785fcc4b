// |a - e| <= atol + rtol * |e|, element by element; reports the worst element so a failure says where and how much.

import { appendFileSync } from 'node:fs';
import { expect } from 'vitest';
import { assertClose } from './close.js';

export { compareClose, type CloseReport } from './close.js';

/**
 * With LORA_LAB_TOLERANCE_REPORT=<file>, every comparison appends its measured error to that file (one JSON line:
 * max |a - e| and max |e|), so tolerances are set from measured error rather than guessed.
 */
function report(what: string, actual: ArrayLike<number>, expected: ArrayLike<number>, atol: number, rtol: number): void {
  const file = process.env.LORA_LAB_TOLERANCE_REPORT;
  if (!file) return;
  let maxErr = 0;
  let maxRef = 0;
  for (let i = 0; i < expected.length; i++) {
    maxErr = Math.max(maxErr, Math.abs(actual[i] - expected[i]));
    maxRef = Math.max(maxRef, Math.abs(expected[i]));
  }
  appendFileSync(file, JSON.stringify({ what, maxErr, maxRef, atol, rtol, test: expect.getState().currentTestName }) + '\n');
}

export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, atol: number, rtol: number, what = 'values'): void {
  report(what, actual, expected, atol, rtol);
  assertClose(actual, expected, atol, rtol, what);
}
