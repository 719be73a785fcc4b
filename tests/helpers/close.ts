// |a - e| <= atol + rtol * |e|, element by element; reports the worst element so a failure says where and how much.
// No Node imports: the browser tests use it too (compare.ts adds the tolerance report for Node).

export interface CloseReport {
  ok: boolean;
  worst: number;       // index of the worst element (largest excess over its tolerance)
  actual: number;
  expected: number;
  maxAbsError: number;
  count: number;
}

export function compareClose(actual: ArrayLike<number>, expected: ArrayLike<number>, atol: number, rtol: number): CloseReport {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} != ${expected.length}`);
  let worst = -1;
  let worstExcess = -Infinity;
  let maxAbs = 0;
  let ok = true;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    const err = Math.abs(a - e);
    // NaN anywhere fails: `err <= tol` is false for NaN.
    const pass = err <= atol + rtol * Math.abs(e);
    if (!pass) ok = false;
    const excess = Number.isNaN(err) ? Infinity : err - (atol + rtol * Math.abs(e));
    if (excess > worstExcess) { worstExcess = excess; worst = i; }
    if (!(err <= maxAbs)) maxAbs = err;
  }
  return { ok, worst, actual: actual[worst], expected: expected[worst], maxAbsError: maxAbs, count: expected.length };
}

export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, atol: number, rtol: number, what = 'values'): void {
  const r = compareClose(actual, expected, atol, rtol);
  if (!r.ok) {
    throw new Error(`${what}: element ${r.worst} is ${r.actual}, expected ${r.expected} (atol ${atol}, rtol ${rtol}; max abs error ${r.maxAbsError} over ${r.count})`);
  }
}
