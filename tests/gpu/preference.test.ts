// DPO, ORPO and SimPO on the GPU: each objective's loss and LoRA gradients against the float64 autodiff reference
// (itself against finite differences), TRL's logged metrics against their definitions, the reference log-probabilities
// against the float64 forward, and a stopped run resumed to the uninterrupted run's losses.

import { describe, expect, it } from 'vitest';
import { exampleFromIds } from '../../src/lib/data/examples.js';
import type { PreferenceExample } from '../../src/lib/data/preference-data.js';
import { syntheticAdapter } from '../../src/lib/lora/synthetic.js';
import { PREFERENCE_DEFAULTS, type PreferenceConfig } from '../../src/lib/training/preference.js';
import { PreferenceTrainer, referenceLogps, type PreferenceCheckpoint } from '../../src/lib/training/preference-trainer.js';
import { DEFAULT_TRAIN_CONFIG, type TrainConfig } from '../../src/lib/training/train-config.js';
import type { SyntheticSpec } from '../../src/lib/model/synthetic.js';
import { expectClose } from '../helpers/compare.js';
import { testGpu } from '../helpers/gpu.js';
import { tinyRunner } from '../helpers/models.js';
import { referenceForward } from '../reference/llama.js';
import { mergeForReference } from '../helpers/lora.js';
import { referenceTrainStep } from '../reference/train.js';
import { preferenceLoss, type RefPreference } from '../reference/preference.js';

const spec: SyntheticSpec = { hiddenSize: 12, intermediateSize: 20, numLayers: 2, numHeads: 2, numKvHeads: 1, headDim: 6, vocabSize: 29, tied: false, seed: 21 };
// Two pairs, every sequence 3 prompt + 4 answer tokens (one length: no padding rows).
const PAIRS: PreferenceExample[] = [
  { chosen: exampleFromIds([3, 7, 1], [22, 9, 4, 2]), rejected: exampleFromIds([3, 7, 1], [15, 15, 8, 2]) },
  { chosen: exampleFromIds([5, 11, 6], [9, 9, 27, 2]), rejected: exampleFromIds([5, 11, 6], [1, 20, 3, 2]) },
];
const T = 7;
const tc: TrainConfig = {
  ...DEFAULT_TRAIN_CONFIG, rank: 3, alpha: 6, dropout: 0, targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
  microBatch: 2, gradAccumulation: 1, cutoff: 64, maxGradNorm: 0, weightDecay: 0, warmupSteps: 0, learningRate: 1e-2, steps: 4, evalEvery: 0, checkpointEvery: 0,
};
const REFERENCE = [{ chosen: -11.5, rejected: -12.25 }, { chosen: -13, rejected: -10.75 }];
const maxAbs = (a: ArrayLike<number>) => Math.max(...Array.from(a, Math.abs));
const CASES: [string, PreferenceConfig][] = [
  ['dpo', { ...PREFERENCE_DEFAULTS.dpo, beta: 0.5 }], ['dpo, label smoothing 0.2', { ...PREFERENCE_DEFAULTS.dpo, beta: 0.5, labelSmoothing: 0.2 }],
  ['orpo', { ...PREFERENCE_DEFAULTS.orpo, beta: 0.5 }], ['simpo', { ...PREFERENCE_DEFAULTS.simpo, beta: 2, gamma: 0.5 }],
];
const refOf = (c: PreferenceConfig): RefPreference => ({ ...c, reference: c.objective === 'dpo' ? REFERENCE : undefined });
const flat = (pick: (e: PreferenceExample['chosen']) => number[]) => PAIRS.flatMap((p) => [...pick(p.chosen), ...pick(p.rejected)]);

async function setup(c: PreferenceConfig) {
  const gpu = await testGpu();
  const { model, config, runner } = await tinyRunner(gpu, spec);
  const initial = syntheticAdapter(config, { name: 'sft', seed: 3, config: { r: 3, lora_alpha: 6, target_modules: 'all-linear' }, bScale: 0.3 });
  const trainer = new PreferenceTrainer(gpu, runner.model, 'pref', tc, c, { train: PAIRS, validation: [] }, c.objective === 'dpo' ? { train: REFERENCE, validation: [] } : null, { initial });
  return { model, config, runner, initial, trainer };
}

describe.each(CASES)('%s', (_name, c) => {
  it('the reference gradients match central finite differences', async () => {
    const { model, config, initial, trainer } = await setup(c);
    trainer.destroy();
    const loss = () => referenceTrainStep(config, model.tensors, initial, flat((e) => e.ids), flat((e) => e.targets), T, 1, 0, 0, undefined, preferenceLoss(refOf(c))).lossSum;
    const ref = referenceTrainStep(config, model.tensors, initial, flat((e) => e.ids), flat((e) => e.targets), T, 1, 0, 0, undefined, preferenceLoss(refOf(c)));
    const h = 1e-5;
    for (const key of ['0.q_proj', '1.down_proj']) {
      const p = initial.modules.get(key)!;
      for (const [which, arr] of [['a', p.a], ['b', p.b]] as const) {
        const i = Math.floor(arr.length / 2);
        const wide = Float64Array.from(arr);
        (p as unknown as Record<string, Float64Array>)[which] = wide;
        wide[i] += h; const up = loss();
        wide[i] -= 2 * h; const down = loss();
        (p as unknown as Record<string, ArrayLike<number>>)[which] = arr;
        const g = ref.grads.get(key)![which][i];
        expect(Math.abs((up - down) / (2 * h) - g)).toBeLessThanOrEqual(1e-6 + 1e-4 * Math.abs(g));
      }
    }
  });

  it('the loss and every LoRA gradient of a micro-step match the float64 reference', async () => {
    const { model, config, initial, trainer } = await setup(c);
    const ref = referenceTrainStep(config, model.tensors, initial, flat((e) => e.ids), flat((e) => e.targets), T, 1, 0, 0, undefined, preferenceLoss(refOf(c)));
    const r = await trainer.accumulate([0, 1]);
    expect(r.count).toBe(2);
    expectClose([r.lossSum / r.count], [ref.lossSum], 1e-5, 1e-5, 'loss');
    const grads = await trainer.step.gradients();
    let scale = 0;
    for (const g of ref.grads.values()) scale = Math.max(scale, maxAbs(g.a), maxAbs(g.b));
    for (const [key, g] of ref.grads) {
      expectClose(grads.get(key)!.a, g.a, 2e-5 * scale, 1e-4, `dA ${key}`);
      expectClose(grads.get(key)!.b, g.b, 2e-5 * scale, 1e-4, `dB ${key}`);
    }
    trainer.destroy();
  });
});

describe("TRL's logged metrics and the reference log-probabilities", () => {
  it.each(CASES)('%s: equal their definitions computed in float64 from the teacher-forced log-probabilities of the same pairs', async (_name, c) => {
    const { model, config, initial, trainer } = await setup(c);
    // Each answer's summed log-probability (and token count) under the float64 forward of the adapter merged in.
    const merged = mergeForReference(model.tensors, initial);
    const logp = (e: PreferenceExample['chosen']) => {
      const logits = referenceForward(config, merged, e.ids);
      let s = 0;
      let n = 0;
      e.targets.forEach((y, t) => {
        if (y < 0) return;
        const row = logits[t];
        const mx = Math.max(...row);
        s += row[y] - mx - Math.log(row.reduce((a, z) => a + Math.exp(z - mx), 0));
        n++;
      });
      return { s, mean: s / n };
    };
    const want: Record<string, number> = {};
    const add = (k: string, v: number) => { want[k] = (want[k] ?? 0) + v / PAIRS.length; };
    PAIRS.forEach((p, i) => {
      const lc = logp(p.chosen);
      const lr = logp(p.rejected);
      // TRL: DPO's rewards are beta (pi - ref) of summed log-probs; ORPO's and SimPO's beta times the mean log-probs,
      // which are their logps too; ORPO logs log_odds_chosen and log_odds_ratio (its log sigmoid).
      const [rc, rr, pc, pr] = c.objective === 'dpo'
        ? [c.beta * (lc.s - REFERENCE[i].chosen), c.beta * (lr.s - REFERENCE[i].rejected), lc.s, lr.s]
        : [c.beta * lc.mean, c.beta * lr.mean, lc.mean, lr.mean];
      add('rewards/chosen', rc); add('rewards/rejected', rr); add('rewards/margins', rc - rr); add('rewards/accuracies', rc > rr ? 1 : 0);
      add('logps/chosen', pc); add('logps/rejected', pr);
      if (c.objective === 'orpo') {
        const x = lc.mean - lr.mean - (Math.log1p(-Math.exp(lc.mean)) - Math.log1p(-Math.exp(lr.mean)));
        add('log_odds_chosen', x);
        add('log_odds_ratio', -Math.log1p(Math.exp(-x)));
      }
    });
    const got = await trainer.score('train');
    for (const [k, v] of Object.entries(want)) expectClose([got.metrics[k]], [v], 1e-5, 1e-5, k);
    trainer.destroy();
  });

  it('with the adapter off are the base model\'s scores: the float64 forward of the base, and the engine\'s teacher-forced scoring', async () => {
    const { model, config, runner } = await setup(PREFERENCE_DEFAULTS.orpo).then((s) => { s.trainer.destroy(); return s; });
    const ref = await referenceLogps(runner, PAIRS, 0);
    PAIRS.forEach((p, i) => {
      for (const [side, e] of [['chosen', p.chosen], ['rejected', p.rejected]] as const) {
        const logits = referenceForward(config, model.tensors, e.ids);
        let s = 0;
        e.targets.forEach((y, t) => { if (y >= 0) { const row = logits[t]; const mx = Math.max(...row); s += row[y] - mx - Math.log(row.reduce((a, z) => a + Math.exp(z - mx), 0)); } });
        expectClose([ref[i][side]], [s], 1e-5, 1e-5, `${side} ${i}`);
      }
    });
  });
});

describe('a stopped preference run resumed from its checkpoint', () => {
  it.each(['dpo', 'orpo', 'simpo'] as const)('%s: the losses of the uninterrupted run, exactly', async (objective) => {
    const c = { ...PREFERENCE_DEFAULTS[objective], beta: objective === 'simpo' ? 2 : 0.5 };
    const gpu = await testGpu();
    const run = async (stops: number[]) => {
      const { runner } = await tinyRunner(gpu, spec);
      const losses: number[] = [];
      let resume: PreferenceCheckpoint | undefined;
      for (const until of stops) {
        const trainer = new PreferenceTrainer(gpu, runner.model, 'pref', tc, c, { train: PAIRS, validation: [] }, objective === 'dpo' ? { train: REFERENCE, validation: [] } : null, { resume });
        await trainer.run({ onStep: (m) => losses.push(m.trainLoss) }, {}, until);
        resume = await trainer.checkpoint();
        trainer.destroy();
      }
      return losses;
    };
    const whole = await run([4]);
    expect(whole).toHaveLength(4);
    expect(await run([2, 4])).toEqual(whole);
    expect(whole[3]).toBeLessThan(whole[0]); // it learns: lr 1e-2 on two pairs
  });
});

describe('a preference run through the engine (as the worker and the CLI run one)', () => {
  it('continued from a saved checkpoint: the objective, its settings and the reference come back, the losses are the uninterrupted run\'s', async () => {
    const { Engine } = await import('../../src/lib/engine.js');
    const { MemoryFiles } = await import('../../src/lib/model-files.js');
    const { modelFiles } = await import('../helpers/models.js');
    const { tinyTokenizerJson } = await import('../helpers/tiny-tokenizer.js');
    const { files } = modelFiles(spec);
    const folder = new MemoryFiles('tiny', new Map([['config.json', (await files.bytes('config.json'))!], ['model.safetensors', (await files.bytes('model.safetensors'))!], ['tokenizer.json', tinyTokenizerJson(spec.vocabSize)]]));
    const records = ['ab', 'bc', 'ca', 'cab'].map((q, i) => ({ prompt: `${q} ${i}`, chosen: `${q}${q} good`, rejected: 'b' }));
    const config = { ...tc, steps: 4, checkpointEvery: 2, validationFraction: 0.25, evalEvery: 2 };
    const run = async (stopAt: number | null, resume?: PreferenceCheckpoint) => {
      const engine = new Engine(await testGpu(), { contextLength: 64, slots: 2 });
      await engine.load(folder);
      const losses: number[] = [];
      let saved: PreferenceCheckpoint | undefined;
      const stop = new AbortController();
      await engine.trainPreference({ name: 'dpo-run', records, config, objective: 'dpo', preference: { beta: 0.5 }, format: 'alpaca', resume }, {
        onStep: (m) => { losses.push(m.trainLoss); if (m.step === stopAt) stop.abort(); },
        onCheckpoint: (c) => { saved = c as PreferenceCheckpoint; },
      }, { signal: stop.signal });
      engine.unload();
      return { losses, saved: saved! };
    };
    const whole = await run(null);
    const first = await run(2);
    expect(first.saved.step).toBe(2);
    expect(first.saved.preference).toEqual({ objective: 'dpo', beta: 0.5, labelSmoothing: 0, gamma: 0, referenceAdapter: null });
    const rest = await run(null, first.saved);
    expect([...first.losses, ...rest.losses]).toEqual(whole.losses);
  });
});
