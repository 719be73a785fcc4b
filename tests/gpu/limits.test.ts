// Portability: every kernel (inference, LoRA, training) runs under WebGPU's default limits (8 storage buffers per
// stage, 16 KiB of workgroup memory, 256 invocations), as on devices that offer no more.

import { describe, expect, it } from 'vitest';
import { createNodeGpu } from '../../src/lib/gpu/node.js';
import { DispatchBuilder } from '../../src/lib/gpu/kernel.js';
import { GpuOutOfMemoryError } from '../../src/lib/errors.js';
import { embedKernel } from '../../src/lib/kernels/embed.js';
import { syntheticAdapter } from '../../src/lib/lora/synthetic.js';
import { generateColumns } from '../../src/lib/model/generate.js';
import { DEFAULT_TRAIN_CONFIG } from '../../src/lib/training/train-config.js';
import { exampleFromIds } from '../../src/lib/data/examples.js';
import { Trainer } from '../../src/lib/training/trainer.js';
import { tinyRunner } from '../helpers/models.js';

describe('WebGPU default limits', () => {
  it('generation with LoRA columns and a training step run with only buffer sizes raised', async () => {
    const gpu = await createNodeGpu({ forceF32: false, defaultLimits: true });
    expect(gpu.device.limits.maxComputeWorkgroupStorageSize).toBe(16384);
    expect(gpu.device.limits.maxStorageBuffersPerShaderStage).toBe(8);
    gpu.device.pushErrorScope('validation');
    const { config, runner } = await tinyRunner(gpu, { hiddenSize: 128, intermediateSize: 200, numLayers: 2, numHeads: 2, numKvHeads: 1, headDim: 64, vocabSize: 1100, tied: false, seed: 2, architecture: 'Qwen2ForCausalLM' }, { slots: 2, contextLength: 48, maxRows: 24 });
    const slot = runner.lora.add(syntheticAdapter(config, { name: 'a', seed: 1, config: { r: 4, target_modules: 'all-linear' } }));
    const out: number[][] = [[], []];
    const prompt = Array.from({ length: 20 }, (_, i) => i + 3);
    await generateColumns(runner, prompt, [{ loraSlot: 0, strength: 1 }, { loraSlot: slot, strength: 1 }],
      { temperature: 0.8, topK: 40, topP: 0.9, repetitionPenalty: 1.1, seed: 1, maxNewTokens: 4, eosTokenIds: [] }, ({ column, token }) => { out[column].push(token); });
    expect(out.map((o) => o.length)).toEqual([4, 4]);
    const t = new Trainer(gpu, runner.model, 'limits', { ...DEFAULT_TRAIN_CONFIG, rank: 4, targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'], steps: 1, microBatch: 2, gradAccumulation: 1, evalEvery: 0, checkpointEvery: 0 },
      { train: [exampleFromIds([5, 6, 7], [8, 9, 10, 11]), exampleFromIds([12, 13], [14, 15, 16])], validation: [] }, 'tiny');
    const losses: number[] = [];
    await t.run({ onStep: (m) => losses.push(m.trainLoss) });
    expect(Number.isFinite(losses[0])).toBe(true);
    expect(await gpu.device.popErrorScope()).toBeNull();
    t.destroy();
  });
});

describe('the dispatch guard', () => {
  it('refuses a buffer over the binding limit with a typed error naming it, before the driver sees a bind group', async () => {
    const gpu = await createNodeGpu({ forceF32: true });
    const limit = gpu.device.limits.maxStorageBufferBindingSize;
    const builder = new DispatchBuilder(gpu);
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.UNIFORM;
    const small = (label: string) => builder.buffer(label, 256, label === 'S' ? GPUBufferUsage.UNIFORM : GPUBufferUsage.STORAGE);
    // A buffer object as large as the guard must refuse (allocating one for real would take gigabytes on some GPUs).
    const huge = { size: limit + 256, label: 'embed.table', mapAsync: () => Promise.resolve(), usage } as unknown as GPUBuffer;
    const k = embedKernel('f32');
    const call = () => builder.dispatch(k, { K: 4, rowStart: 0, rowCount: 1, ldw: 4, scale: 1 }, { S: small('S'), E: huge, tokens: small('tokens'), x: small('x') }, { rows: 1, D: 4 });
    expect(call).toThrow(GpuOutOfMemoryError);
    expect(call).toThrow(new RegExp(`embed\\+f32: buffer E \\(embed.table\\) is ${limit + 256} bytes, over the ${limit} this GPU binds at once. Use a smaller batch`));
    // The same dispatch with buffers that fit resolves.
    expect(builder.dispatch(k, { K: 4, rowStart: 0, rowCount: 1, ldw: 4, scale: 1 }, { S: small('S'), E: small('E'), tokens: small('tokens'), x: small('x') }, { rows: 1, D: 4 }).label).toBe('embed+f32');
    builder.destroy();
  });
});
