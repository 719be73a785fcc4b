// The loss chart's smoothing (TensorBoard's debiased EMA) against a float64 loop written from its definition, and
// the exported CSV.

import { plural, rate } from '../../src/ui/format.js';
import { describe, expect, it } from 'vitest';
import { curvesCsv, smooth, type Series } from '../../src/ui/chart-data.js';

describe('loss chart data', () => {
  it('smooths as TensorBoard does: debiased, weight 0 is the identity, non-finite points pass through', () => {
    const pts: Series = [[1, 4], [2, 2], [3, 3], [4, NaN], [5, 1]];
    expect(smooth(pts, 0)).toBe(pts);
    const w = 0.6;
    // By definition: s_n = sum_i w^(n-i) (1-w) y_i / (1 - w^n) over the finite points so far.
    const finite = [4, 2, 3, 1];
    const expected = finite.map((_, n) => {
      let num = 0;
      for (let i = 0; i <= n; i++) num += w ** (n - i) * (1 - w) * finite[i];
      return num / (1 - w ** (n + 1));
    });
    const got = smooth(pts, w);
    expect(got[0][1]).toBeCloseTo(4, 12); // the first point is itself, not pulled toward 0
    [got[0], got[1], got[2], got[4]].forEach(([, v], i) => expect(v).toBeCloseTo(expected[i], 12));
    expect(Number.isNaN(got[3][1])).toBe(true);
    expect(got.map(([x]) => x)).toEqual([1, 2, 3, 4, 5]);
  });

  it('writes one row per run and step, with empty cells where a run has no value, names quoted', () => {
    const csv = curvesCsv([
      { name: 'a', train: [[1, 2.5], [2, 2]], validation: [[2, 2.25]], lr: [[1, 1e-3], [2, 5e-4]] },
      { name: 'b, "old"', train: [[1, 3]], validation: [] },
    ]);
    expect(csv).toBe('run,step,train_loss,validation_loss,learning_rate\na,1,2.5,,0.001\na,2,2,2.25,0.0005\n"b, ""old""",1,3,,\n');
  });
});

describe('decode rates as people read them', () => {
  it('says seconds per token below one token a second, never "0.0 tokens/s"', () => {
    expect(rate(12.345)).toBe('12.3 tokens/s');
    expect(rate(1)).toBe('1.0 tokens/s');
    expect(rate(1 / 34)).toBe('34.0 s/token'); // web-llm-sized models on SwiftShader
    expect(rate(0)).toBe('– tokens/s');
    expect(rate(Infinity)).toBe('– tokens/s');
  });
});

describe('counts in words', () => {
  it('say "1 token" and "2 tokens", "1 local file" and "3 local files"', () => {
    expect([plural(1, 'token'), plural(2, 'token'), plural(0, 'token'), plural(1, 'local file'), plural(3, 'local file')]).toEqual(['1 token', '2 tokens', '0 tokens', '1 local file', '3 local files']);
  });
});
