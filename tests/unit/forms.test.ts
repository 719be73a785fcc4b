// The views' kept inputs: what is read back from localStorage is checked against the defaults' shape, and a new
// run's suggested name never takes a saved run's.

import { describe, expect, it } from 'vitest';
import { freeName, TRAIN_FORM_DEFAULTS } from '../../src/ui/forms.svelte.ts';
import { merge } from '../../src/ui/persisted.svelte.ts';

describe('kept form inputs', () => {
  it('take what was saved where it has the right type, and the default elsewhere', () => {
    const saved = {
      name: 'kept-name', maxRecords: '12', format: 'chat', extra: { nested: true },
      dataset: { kind: 'kept', name: 'my-data.jsonl' },
      config: { rank: 4, learningRate: null, targetModules: ['q_proj'], steps: 'many' },
    };
    const f = merge(TRAIN_FORM_DEFAULTS, saved);
    expect(f.name).toBe('kept-name');
    expect(f.maxRecords).toBe(TRAIN_FORM_DEFAULTS.maxRecords); // a string where a number belongs
    expect(f.format).toBe('chat');
    expect(f.dataset).toEqual({ kind: 'kept', name: 'my-data.jsonl' });
    expect(f.config.rank).toBe(4);
    expect(f.config.learningRate).toBe(TRAIN_FORM_DEFAULTS.config.learningRate);
    expect(f.config.steps).toBe(TRAIN_FORM_DEFAULTS.config.steps);
    expect(f.config.targetModules).toEqual(['q_proj']);
    expect(f.config.cutoff).toBe(TRAIN_FORM_DEFAULTS.config.cutoff); // missing: the default
    expect('extra' in f).toBe(false); // an object the defaults do not have is not taken
    expect(merge(TRAIN_FORM_DEFAULTS, 'garbage')).toEqual(TRAIN_FORM_DEFAULTS);
    expect(merge(TRAIN_FORM_DEFAULTS, [1, 2])).toEqual(TRAIN_FORM_DEFAULTS);
  });

  it('suggest a run name that no saved run has', () => {
    expect(freeName('run', [])).toBe('run');
    expect(freeName('run', ['run'])).toBe('run-2');
    expect(freeName('run', ['run', 'run-2', 'run-3'])).toBe('run-4');
    expect(freeName('run-2', ['run', 'run-2'])).toBe('run-3');
  });
});
