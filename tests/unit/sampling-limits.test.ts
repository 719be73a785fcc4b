// One source of truth for the sampling settings' ranges: the validator accepts exactly SAMPLING_LIMITS' ranges and
// its messages name those numbers (the app's inputs and the CLI read the same object).

import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/lib/errors.js';
import { DEFAULT_SAMPLING, SAMPLING_LIMITS, validateSampling } from '../../src/lib/model/sampling.js';

describe('sampling limits', () => {
  it.each(Object.entries(SAMPLING_LIMITS))('%s: its range is accepted, just outside it is refused with the same numbers', (key, { min, max }) => {
    const at = (v: number) => () => validateSampling({ ...DEFAULT_SAMPLING, [key]: v });
    expect(at(min)).not.toThrow();
    expect(at(max)).not.toThrow();
    for (const v of [max + (key === 'topK' ? 1 : 0.001), min - (key === 'topK' ? 1 : 0.001)]) {
      expect(at(v)).toThrow(InvalidArgumentError);
      expect(at(v)).toThrow(new RegExp(`${min}.*${max}`));
    }
  });
});
