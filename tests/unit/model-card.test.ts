// An exported adapter's README says what it is and, for a run trained here, how it was trained and on what.

import { describe, expect, it } from 'vitest';
import type { AdapterInfo } from '../../src/lib/engine.js';
import { adapterCard } from '../../src/lib/lora/model-card.js';
import type { StoredCheckpoint } from '../../src/lib/store/checkpoints.js';
import { DEFAULT_TRAIN_CONFIG } from '../../src/lib/training/train-config.js';

const info: AdapterInfo = { name: 'my-run', rank: 8, alpha: 16, targetModules: ['q_proj', 'v_proj'], modules: 8, useRslora: false, baseModel: 'org/base', parameters: 12345, bytes: 49380 };

describe('adapter model card', () => {
  it('names the base, the LoRA settings and how to load it', () => {
    const md = adapterCard(info, 'my-run');
    expect(md).toMatch(/^# my-run\n/);
    expect(md).toContain('- base model: org/base');
    expect(md).toContain('- rank 8, alpha 16; target modules: q_proj, v_proj');
    expect(md).toContain('PeftModel.from_pretrained(base, "my-run")');
    expect(md).not.toContain('## Training');
  });

  it('for a run trained here: the data, steps, optimizer settings and last losses', () => {
    const run = {
      name: 'my-run', dataset: { kind: 'builtin' }, format: 'alpaca', maxRecords: 64, totalSteps: 20, savedAt: 0,
      checkpoint: { config: { ...DEFAULT_TRAIN_CONFIG, learningRate: 0.001, steps: 20 }, step: 12, history: { train: [[11, 2.5], [12, 2.25]], validation: [[10, 2.75]] } },
    } as unknown as StoredCheckpoint;
    const md = adapterCard(info, 'my-run', run);
    expect(md).toContain('Instruction Tuning with GPT-4');
    expect(md).toContain('the first 64 records, the Alpaca prompt template, loss on responses only');
    expect(md).toContain('12 of 20 steps (stopped early); micro-batch 4 × 4 accumulated; cutoff 256 tokens');
    expect(md).toContain('learning rate 0.001 (cosine, 100 warmup steps)');
    expect(md).toContain('last train loss 2.2500, last validation loss 2.7500');
  });
});
