// q8/q4 weights on the GPU: the matmul kernels (gemv, gemm, dX = dY W) against float64 references on the dequantized
// weights at odd shapes (K not a multiple of 32: a padded last block); a whole model at q4 against the float64
// reference forward on its dequantized weights; one QLoRA step (frozen q4/q8 base, f32 LoRA) against the float64
// autodiff reference; and the built-in model's perplexity on bundled data at q8 and q4 against f32.
// Tolerances: the kernels dequantize exactly (an integer level times an f16 scale is exact in f32), so the f32
// matmul tolerances hold (kernels.test.ts); measured max |error| 7e-6 here.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Engine } from '../../src/lib/engine.js';
import { meanLoss, teacherForcedLoss } from '../../src/lib/eval/loss.js';
import { NodeDirFiles } from '../../src/lib/hub/node-files.js';
import { BROADCAST_ROWS, GEMV_MAX_ROWS, matmulProgram, matmulVariant, type MatmulDevice, type MatmulOptions } from '../../src/lib/kernels/matmul.js';
import { matmulNNKernel, nnVec } from '../../src/lib/kernels/train/matmul-nn.js';
import { syntheticAdapter } from '../../src/lib/lora/synthetic.js';
import { dequantizeRows, quantizeRows, rowLayout, type QuantFormat } from '../../src/lib/quant/blocks.js';
import { weightBytes } from '../../src/lib/quant/precision.js';
import { embedKernel } from '../../src/lib/kernels/embed.js';
import { DEFAULT_TRAIN_CONFIG, type TrainConfig } from '../../src/lib/training/train-config.js';
import { MASKED, TrainStep } from '../../src/lib/training/step.js';
import { Rng } from '../../src/lib/util/rng.js';
import { expectClose } from '../helpers/compare.js';
import { subgroupOf, testGpu } from '../helpers/gpu.js';
import { out, randn, runProgram, step, type BufferInput } from '../helpers/kernel.js';
import { tinyRunner } from '../helpers/models.js';
import type { Weights } from '../reference/llama.js';
import { referenceTrainStep } from '../reference/train.js';
import { dxReference, embedReference, matmulParams, matmulReference } from '../reference/matmul.js';
import type { SyntheticSpec } from '../../src/lib/model/synthetic.js';

const ATOL = 3e-5;
const RTOL = 1e-5;

/** A matrix quantized as the loader does it, and the values the GPU computes with. */
function quantized(w: Float32Array, n: number, k: number, format: QuantFormat) {
  const data = quantizeRows(w, n, k, format);
  return { data, ldw: rowLayout(format, k).words, seen: dequantizeRows(data, n, k, format) };
}


describe('matmul with quantized weights', () => {
  const variants: [string, Partial<MatmulOptions>][] = [
    ['plain', {}], ['norm+bias', { norm: true, bias: true }], ['swiglu+norm', { swiglu: true, norm: true }], ['residual', { residual: true }],
  ];
  // gemv with 1 lane (K=53), 2 lanes (K=67), 8 lanes (K=300, 301); one row: the gemv that stages the row in
  // workgroup memory; gemm (M=70). No K is a multiple of 32.
  const shapes: [number, number, number][] = [[1, 37, 53], [3, 130, 67], [5, 19, 300], [70, 131, 35], [1, 41, 301]];
  // The broadcast matmul of CPU adapters with fixed-size subgroups (this device's size): one row, and a block of
  // rows cut short, plain and swiglu+norm.
  const broadcast: [number, number, number][] = [[1, 41, 301], [BROADCAST_ROWS + 1, 70, 53], [37, 300, 301]];
  for (const cpu of [false, true]) for (const format of ['q8', 'q4'] as const) {
    for (const [vname, v] of variants) {
      // Every shape for plain; the fused epilogues on two gemv shapes, and swiglu+norm (the widest) also on gemm.
      const sizes = cpu ? (vname === 'plain' || vname === 'swiglu+norm' ? broadcast : []) :
        vname === 'plain' ? shapes : vname === 'swiglu+norm' ? [shapes[1], shapes[3], shapes[4]] : [shapes[1], shapes[4]];
      if (sizes.length) it.each(sizes)(`${vname}, ${format}${cpu ? ' (CPU broadcast)' : ''}, M=%i N=%i K=%i`, async (M, N, K) => {
        const gpu = await testGpu();
        const device: MatmulDevice = { cpu, subgroup: cpu ? subgroupOf(gpu) : 0 };
        const o: MatmulOptions = { format, norm: false, bias: false, swiglu: false, residual: false, last: false, ...v };
        const rng = new Rng(M * 1000 + N + K + (format === 'q4' ? 1 : 0));
        const x = randn(rng, M * K);
        const W = quantized(randn(rng, N * K, 0.3), N, K, format);
        const W2 = quantized(randn(rng, N * K, 0.3), N, K, format);
        const gain = randn(rng, K, 0.2).map((g) => 1 + g);
        const bias = randn(rng, N + 5);
        const nOff = 5, ldo = N + 7;
        const out0 = randn(rng, M * ldo);
        const expected = matmulReference(o, { M, N, K, x, W: W.seen, W2: W2.seen, gain, bias, nOff, ldo, out0 });
        const buffers: Record<string, BufferInput> = {
          S: step(M), x, w: W.data, out: out(Float32Array.from(out0)),
          ...(o.swiglu ? { w2: W2.data } : {}), ...(o.norm ? { gain } : {}), ...(o.bias ? { bias } : {}),
        };
        const variant = matmulVariant(M);
        const got = await runProgram(gpu, matmulProgram(variant, o, K, device), matmulParams(N, K, W.ldw, ldo, nOff), buffers, { N, rows: M });
        expectClose(got.out, expected, ATOL, RTOL, `${vname} ${format} M=${M} N=${N} K=${K}`);
      });
    }
  }

  // The last two: dY's stride and offset and K multiples of 4 (dY read and dX written as vec4s).
  it.each([['q8', 70, 37, 53, false, false], ['q4', 9, 130, 45, false, false], ['q4', 1, 5, 3, false, false], ['q8', 70, 37, 53, true, false], ['q4', 9, 130, 45, true, false], ['q4', 37, 21, 301, true, false],
    ['q8', 70, 37, 52, true, true], ['q4', 37, 21, 300, true, true]] as const)('dX = dY W through %s weights, M=%i N=%i K=%i (CPU broadcast: %s, strides multiples of 4: %s)', async (format, M, N, K, broadcast, vec) => {
    const gpu = await testGpu();
    const rng = new Rng(M + N + K);
    const W = quantized(randn(rng, N * K, 0.5), N, K, format);
    const yOff = vec ? 4 : 3, ldy = vec ? Math.ceil((N + 6) / 4) * 4 : N + 5;
    const dy = randn(rng, M * ldy);
    const dx0 = randn(rng, M * K);
    const expected = dxReference(dy, ldy, yOff, W.seen, M, N, K, dx0);
    const { dx } = await runProgram(gpu, matmulNNKernel(format, true, broadcast ? subgroupOf(gpu) : 0, M, nnVec(ldy, yOff, K)), { M, N, K, ldy, yOff, ldw: W.ldw, ldo: K, outRow: 0, yRow: 0 },
      { dy, w: W.data, dx: out(Float32Array.from(dx0)) }, { K, rows: M });
    expectClose(dx, expected, ATOL, RTOL, `dX ${format}`);
  });
});

/** The tensors a model loaded at `format` computes with: layer matrices quantized and dequantized, the embedding and lm_head at q8. */
function dequantizedBase(tensors: Map<string, { shape: number[]; data: Float32Array }>, format: QuantFormat): Weights {
  const out: Weights = new Map();
  for (const [name, t] of tensors) {
    const isLayerMatrix = /^model\.layers\.\d+\.(self_attn|mlp)\..*\.weight$/.test(name);
    const f = isLayerMatrix ? format : name === 'lm_head.weight' || name === 'model.embed_tokens.weight' ? 'q8' : null;
    if (!f) { out.set(name, t); continue; }
    const [n, k] = t.shape;
    out.set(name, { shape: t.shape, data: dequantizeRows(quantizeRows(t.data, n, k, f), n, k, f) });
  }
  return out;
}

describe('embedding lookup from a q8 table', () => {
  it('copies the dequantized rows of one vocab shard and leaves rows of other shards alone', async () => {
    const gpu = await testGpu();
    const rng = new Rng(4);
    const D = 45, rowStart = 40, rowCount = 29, M = 11;
    const E = quantized(randn(rng, rowCount * D), rowCount, D, 'q8');
    const tokens = Uint32Array.from({ length: M }, (_, i) => (i % 3 === 0 ? rng.int(40) : rowStart + rng.int(rowCount)));
    const x0 = randn(rng, M * D);
    const expected = embedReference(tokens, E.seen, D, rowStart, x0);
    const got = await runProgram(gpu, embedKernel('q8'), { K: D, rowStart, rowCount, ldw: E.ldw, scale: 1 }, { S: step(M), E: E.data, tokens, x: out(Float32Array.from(x0)) }, { rows: M, D });
    expectClose(got.x, expected, 0, 0, 'embedding rows');
  });
});

describe('QLoRA: a LoRA step over a quantized base', () => {
  const spec: SyntheticSpec = { hiddenSize: 40, intermediateSize: 44, numLayers: 2, numHeads: 2, numKvHeads: 1, headDim: 20, vocabSize: 29, tied: false, seed: 21 };
  const T = 5;
  const tokens = [3, 7, 1, 22, 9, 4, 4, 15, 2, 28];
  const labels = [7, 1, 22, -100, -100, -100, 15, 2, 28, 11];
  const count = labels.filter((l) => l >= 0).length;
  const tc: TrainConfig = { ...DEFAULT_TRAIN_CONFIG, rank: 3, alpha: 6, targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'], maxGradNorm: 0, dropout: 0 };
  for (const format of ['q4', 'q8'] as const) {
    it(`loss and every LoRA gradient match the float64 reference on the dequantized ${format} base`, async () => {
      const gpu = await testGpu();
      const { model, config, runner } = await tinyRunner(gpu, spec, { slots: 4, contextLength: 96, maxRows: 32 }, format);
      expect(runner.model.weights.layers[0].gate.format).toBe(format);
      const adapter = syntheticAdapter(config, { name: 'qlora', seed: 3, config: { r: 3, lora_alpha: 6, target_modules: 'all-linear' }, bScale: 0.3 });
      const ref = referenceTrainStep(config, dequantizedBase(model.tensors, format), adapter, tokens, labels, T, 1 / count);
      const exact = referenceTrainStep(config, model.tensors, adapter, tokens, labels, T, 1 / count);
      const step = new TrainStep(gpu, runner.model, adapter, tc, { batch: 2, seqLen: T, logitChunk: 3 });
      const r = await step.micro({ tokens: Uint32Array.from(tokens), labels: Uint32Array.from(labels, (l) => (l < 0 ? MASKED : l)) }, 1 / count, 77);
      // The quantized base is a different model from the f32 one (the check that this test sees the quantization).
      expect(Math.abs(ref.lossSum - exact.lossSum)).toBeGreaterThan(1e-4);
      expect(r.lossSum).toBeCloseTo(ref.lossSum, 4);
      const grads = await step.gradients();
      let scale = 0;
      for (const g of ref.grads.values()) for (const v of [...g.a, ...g.b]) scale = Math.max(scale, Math.abs(v));
      for (const [key, g] of ref.grads) {
        expectClose(grads.get(key)!.a, g.a, 2e-5 * scale, 1e-5, `dA ${key}`);
        expectClose(grads.get(key)!.b, g.b, 2e-5 * scale, 1e-5, `dB ${key}`);
      }
      step.destroy();
      runner.model.destroy();
      runner.destroy();
    });
  }
});

describe('the built-in model at q8 and q4', () => {
  it('keeps perplexity on bundled GPT-4 answers within 1% (q8) and 5% (q4) of f32', async () => {
    const en = JSON.parse(readFileSync(new URL('../../public/data/alpaca-gpt4-sample-en.json', import.meta.url), 'utf8')) as { instruction: string; input: string; output: string }[];
    // 3 records it learned and 3 it never saw (it learned the first 64), up to 64 answer tokens each.
    const records = [en[0], en[30], en[60], en[64], en[75], en[90]];
    const engine = new Engine(await testGpu(), { contextLength: 512, slots: records.length });
    const perToken: Record<string, number[]> = {};
    const ppl: Record<string, number> = {};
    for (const precision of ['f32', 'q8', 'q4'] as const) {
      const info = await engine.load(new NodeDirFiles('built-in model', new URL('../../public/models/demo/', import.meta.url).pathname, 'lora-lab/built-in-demo'), undefined, undefined, { precision });
      expect(info.precision).toBe(precision);
      expect(info.weightBytes).toBe(weightBytes(engine.runner.model.config, precision, engine.runner.model.gpu.f16)); // the estimate before loading is exact
      const tok = engine.runner.model.tokenizer!;
      const prompts = records.map((r) => engine.promptIds({ prompt: r.input.trim() ? `${r.instruction}\n\n${r.input}` : r.instruction, format: 'chat' }));
      const answers = records.map((r) => tok.encode(r.output).slice(0, 64));
      const losses = (await teacherForcedLoss(engine.runner, prompts, answers, records.map(() => ({ loraSlot: 0, strength: 1 }))))!;
      perToken[precision] = losses.map(meanLoss);
      const nll = losses.reduce((a, l) => a + l.nll, 0), n = losses.reduce((a, l) => a + l.tokens, 0);
      ppl[precision] = Math.exp(nll / n);
      console.log(`built-in model ${precision}: weights ${(info.weightBytes / 1e6).toFixed(2)} MB, perplexity ${ppl[precision].toFixed(4)} over ${n} answer tokens`);
    }
    for (const q of ['q8', 'q4']) {
      const d = perToken[q].map((v, i) => Math.abs(v - perToken.f32[i]));
      console.log(`${q} vs f32: perplexity ${((ppl[q] / ppl.f32 - 1) * 100).toFixed(3)}%, per-record mean NLL change max ${Math.max(...d).toFixed(4)} mean ${(d.reduce((a, b) => a + b, 0) / d.length).toFixed(4)}`);
    }
    expect(Math.abs(ppl.q8 / ppl.f32 - 1)).toBeLessThanOrEqual(0.01);
    expect(Math.abs(ppl.q4 / ppl.f32 - 1)).toBeLessThanOrEqual(0.05);
    expect(ppl.q4).not.toBe(ppl.f32); // the comparison saw quantized weights
    engine.unload();
  });
});
