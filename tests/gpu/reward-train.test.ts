// A reward model trained on our engine: LoRA plus a scalar head on the last token, the pairwise loss
// -log sigmoid(r_chosen - r_rejected). One GPU step against the float64 reference (loss, rewards, every LoRA gradient,
// the head's gradient, the AdamW update of the head), the reference against central finite differences, and a short
// training run on a tiny model that orders held-out pairs far better than chance.

import { describe, expect, it } from 'vitest';
import { syntheticAdapter } from '../../src/lib/lora/synthetic.js';
import { DEFAULT_TRAIN_CONFIG, type TrainConfig } from '../../src/lib/training/train-config.js';
import { MASKED, TrainStep } from '../../src/lib/training/step.js';
import { expectClose } from '../helpers/compare.js';
import { testGpu } from '../helpers/gpu.js';
import { tinyRunner } from '../helpers/models.js';
import { referenceAdamW, referenceTrainStep, type RewardObjective } from '../reference/train.js';
import type { SyntheticSpec } from '../../src/lib/model/synthetic.js';
import { Rng } from '../../src/lib/util/rng.js';
import type { PairExample } from '../../src/lib/reward/pairs.js';
import { RewardTrainer, rewardBatch } from '../../src/lib/training/reward-trainer.js';
import { EngineRewardModel, readRewardAdapter, writeRewardAdapter } from '../../src/lib/reward/reward-adapter.js';

const spec: SyntheticSpec = { hiddenSize: 12, intermediateSize: 20, numLayers: 2, numHeads: 2, numKvHeads: 1, headDim: 6, vocabSize: 29, tied: false, seed: 21 };
const T = 5;
// Four sequences = two pairs (chosen, rejected); the second pair's sequences end early (padding after the end).
const tokens = [3, 7, 1, 22, 9, 4, 4, 15, 2, 28, 5, 6, 7, 0, 0, 11, 12, 0, 0, 0];
const endsT = [4, 4, 2, 1];
const ends = Uint32Array.from(endsT, (t, b) => b * T + t);
const adapterConfig = { r: 3, lora_alpha: 6, target_modules: 'all-linear' };
const tc: TrainConfig = { ...DEFAULT_TRAIN_CONFIG, rank: 3, alpha: 6, targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'], weightDecay: 0.01, maxGradNorm: 0 };
const head = Float32Array.from({ length: spec.hiddenSize }, (_, i) => Math.fround(0.3 * Math.sin(1.7 * i + 0.4)));
const objective: RewardObjective = { head, ends: endsT };
const maxAbs = (a: ArrayLike<number>) => Math.max(...Array.from(a, Math.abs));

describe('reward model: reference gradients', () => {
  it('match central finite differences (LoRA A, B and the head)', async () => {
    const { model, config } = await tinyRunner(await testGpu(), spec);
    const adapter = syntheticAdapter(config, { name: 'x', seed: 3, config: adapterConfig, bScale: 0.3 });
    const run = (h: ArrayLike<number>) => referenceTrainStep(config, model.tensors, adapter, tokens, [], T, 0.5, 0, 0, { head: h, ends: endsT });
    const ref = run(head);
    const h = 1e-5;
    const check = (fd: number, g: number) => expect(Math.abs(fd - g)).toBeLessThanOrEqual(1e-7 + 1e-4 * Math.abs(g));
    for (const key of ['0.q_proj', '1.down_proj', '1.v_proj']) {
      const p = adapter.modules.get(key)!;
      for (const which of ['a', 'b'] as const) {
        const orig = p[which];
        const i = Math.floor(orig.length / 2);
        const wide = Float64Array.from(orig);
        (p as unknown as Record<string, Float64Array>)[which] = wide;
        wide[i] += h; const up = run(head).lossSum * 0.5;
        wide[i] -= 2 * h; const down = run(head).lossSum * 0.5;
        (p as unknown as Record<string, ArrayLike<number>>)[which] = orig;
        check((up - down) / (2 * h), ref.grads.get(key)![which][i]);
      }
    }
    for (const i of [0, 5, spec.hiddenSize - 1]) {
      const wide = Float64Array.from(head);
      wide[i] += h; const up = run(wide).lossSum * 0.5;
      wide[i] -= 2 * h; const down = run(wide).lossSum * 0.5;
      check((up - down) / (2 * h), ref.headGrad![i]);
    }
  });
});

describe('reward model: one GPU step', () => {
  for (const dropout of [0, 0.3]) {
    it(`rewards, pair losses, LoRA and head gradients, and the head's AdamW update match the reference (dropout ${dropout})`, async () => {
      const gpu = await testGpu();
      const { model, config, runner } = await tinyRunner(gpu, spec);
      const adapter = syntheticAdapter(config, { name: 'rm', seed: 3, config: { ...adapterConfig, lora_dropout: dropout }, bScale: 0.3 });
      const ref = referenceTrainStep(config, model.tensors, adapter, tokens, [], T, 0.5, dropout, 77, objective);
      const step = new TrainStep(gpu, runner.model, adapter, { ...tc, dropout }, { batch: 4, seqLen: T }, head);
      const r = await step.rewardMicro({ tokens: Uint32Array.from(tokens), ends }, 0.5, 77);
      expectClose(r.rewards, ref.rewards!, 2e-6, 1e-5, 'rewards'); // measured up to 5.2e-7 (|r| ~ 1.1)
      const pairSum = r.pairLosses.reduce((s, x) => s + x, 0);
      expect(pairSum).toBeCloseTo(ref.lossSum, 5);
      const grads = await step.gradients();
      let scale = maxAbs(ref.headGrad!);
      for (const g of ref.grads.values()) scale = Math.max(scale, maxAbs(g.a), maxAbs(g.b));
      // measured at most 6.7e-7 x scale (LoRA) and 4.4e-7 x scale (head)
      for (const [key, g] of ref.grads) {
        expectClose(grads.get(key)!.a, g.a, 4e-6 * scale, 1e-5, `dA ${key}`);
        expectClose(grads.get(key)!.b, g.b, 4e-6 * scale, 1e-5, `dB ${key}`);
      }
      expectClose(await step.headGradient(), ref.headGrad!, 4e-6 * scale, 1e-5, 'dHead');
      const opt = { lr: 1e-2, beta1: tc.beta1, beta2: tc.beta2, eps: tc.eps, weightDecay: tc.weightDecay };
      await step.optimizerStep(1, opt.lr);
      const p = Float64Array.from(head);
      referenceAdamW(p, ref.headGrad!, new Float64Array(p.length), new Float64Array(p.length), 1, opt);
      expectClose(await step.readHead(), p, 5e-7, 1e-5, 'head after AdamW'); // measured 8.8e-8
      // The forward reads the updated head: a forward-only pass gives rewards from it.
      const after = await step.rewardMicro({ tokens: Uint32Array.from(tokens), ends }, 0, 0, false);
      expect(after.rewards[0]).not.toBe(r.rewards[0]);
      step.destroy();
    });
  }

  it('leaves a padding pair out of the loss and the gradients', async () => {
    const gpu = await testGpu();
    const { config, runner } = await tinyRunner(gpu, spec);
    const adapter = syntheticAdapter(config, { name: 'rm', seed: 3, config: adapterConfig, bScale: 0.3 });
    // No dropout: its masks depend on the row, and the same pair is placed at other rows below.
    const step = new TrainStep(gpu, runner.model, adapter, { ...tc, dropout: 0 }, { batch: 4, seqLen: T }, head);
    const padded = Uint32Array.from(ends);
    padded[2] = MASKED;
    padded[3] = MASKED;
    const r = await step.rewardMicro({ tokens: Uint32Array.from(tokens), ends: padded }, 1, 0);
    expect(r.pairLosses[1]).toBe(0);
    const withPad = await step.headGradient();
    await step.optimizerStep(1, 0, true); // drops the gradients
    const one = await step.rewardMicro({ tokens: Uint32Array.from([...tokens.slice(0, 2 * T), ...tokens.slice(0, 2 * T)]), ends: Uint32Array.from([ends[0], ends[1], ends[0] + 2 * T, ends[1] + 2 * T]) }, 0.5, 0);
    expect(one.pairLosses[0]).toBeCloseTo(r.pairLosses[0], 6);
    // The same pair twice at weight 1/2 gives the gradient of that pair alone at weight 1.
    expectClose(await step.headGradient(), withPad, 1e-6, 1e-5, 'head gradient without the padding pair');
    step.destroy();
  });
});


describe('reward model: training', () => {
  // Pairs anyone can tell apart, and a model cannot before training: the chosen answer ends in a token of the upper
  // half of the vocabulary, the rejected one in the lower half, after the same random prompt.
  const rng = new Rng(5);
  const tok = (lo: number, hi: number) => lo + Math.floor(rng.next() * (hi - lo));
  const pair = (): PairExample => {
    const prompt = Array.from({ length: 3 + tok(0, 5) }, () => tok(1, 29));
    const body = Array.from({ length: tok(1, 4) }, () => tok(1, 29));
    return { chosen: [...prompt, ...body, tok(15, 29)], rejected: [...prompt, ...body, tok(1, 15)] };
  };
  const train = Array.from({ length: 96 }, pair);
  const heldOut = Array.from({ length: 48 }, pair);
  const rtc: TrainConfig = { ...tc, rank: 4, alpha: 8, dropout: 0, learningRate: 2e-2, warmupSteps: 0, schedule: 'constant', steps: 40, microBatch: 4, gradAccumulation: 2, evalEvery: 20, maxGradNorm: 1, weightDecay: 0 };

  it('orders held-out pairs far better than chance, and scores the same after export and reload', async () => {
    const gpu = await testGpu();
    const { config, runner } = await tinyRunner(gpu, spec);
    const trainer = new RewardTrainer(gpu, runner.model, 'rm', rtc, { train, validation: heldOut }, 'tiny');
    const before = await trainer.scorePairs(heldOut);
    const evals: number[] = [];
    const trained = await trainer.run({ onEval: (_s, _l, acc) => evals.push(acc) });
    const after = await trainer.scorePairs(heldOut);
    console.log(`reward model: held-out accuracy ${before.accuracy.toFixed(3)} -> ${after.accuracy.toFixed(3)}, loss ${before.loss.toFixed(4)} -> ${after.loss.toFixed(4)}`);
    expect(before.accuracy).toBeLessThan(0.7);
    expect(after.accuracy).toBeGreaterThanOrEqual(0.9);
    expect(after.loss).toBeLessThan(before.loss * 0.6);
    expect(evals).toHaveLength(2);
    expect(trainer.history.train).toHaveLength(40);
    // Export as PEFT files (LoRA + score head) and load back: the engine scorer gives the trainer's rewards.
    const files = writeRewardAdapter(trained);
    const cfg = JSON.parse(files.config);
    expect(cfg.task_type).toBe('SEQ_CLS');
    expect(cfg.modules_to_save).toEqual(['score']);
    const back = readRewardAdapter('rm', cfg, files.safetensors, config.hiddenSize);
    expectClose(back.head, trained.head, 0, 0, 'head after reload');
    const p = heldOut[0];
    const viaTrainer = await trainer.step.rewardMicro(rewardBatch([p, p, p, p], 4, trainer.seqLen), 0, 0, false);
    trainer.destroy();
    const scorer = new EngineRewardModel(gpu, runner.model, null as never, 0, back, 'rm', 32);
    const chosen = await scorer.scoreIds(p.chosen);
    const rejected = await scorer.scoreIds(p.rejected);
    expect(chosen).toBeCloseTo(viaTrainer.rewards[0], 4);
    expect(rejected).toBeCloseTo(viaTrainer.rewards[1], 4);
    await scorer.dispose();
    expect(runner.model.lora.adapters.filter((a) => a !== null)).toHaveLength(0);
  });
});
