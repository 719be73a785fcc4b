// Each WGSL kernel against a float64 CPU reference on seeded random inputs at odd shapes.
// Tolerances from measured error (LORA_LAB_TOLERANCE_REPORT=<file>): matmul atol 3e-5 + rtol 1e-5 (measured max
// |error| 1.4e-5 on swiglu outputs of magnitude ~30, 2.3e-6 elsewhere); f16 weights are compared with a reference that
// uses the same f16-rounded weights, so the same tolerance holds. Attention 1e-5 (measured 1.0e-6).

import { describe, expect, it } from 'vitest';
import { f16ToF32, f32ToF16 } from '../../src/lib/formats/dtype.js';
import { attentionKernel } from '../../src/lib/kernels/attention.js';
import { ATTENTION_ROWS_MAX_DH, attentionRowsKernel, manyRowsAttention } from '../../src/lib/kernels/attention-rows.js';
import { embedKernel } from '../../src/lib/kernels/embed.js';
import { gatherTargetKernel } from '../../src/lib/kernels/gather.js';
import { BROADCAST_ROWS, GEMV_MAX_ROWS, GEMV_STAGED_K, matmulProgram, matmulVariant, type MatmulDevice, type MatmulOptions } from '../../src/lib/kernels/matmul.js';
import type { Gpu } from '../../src/lib/gpu/device.js';
import { ropeKvKernel } from '../../src/lib/kernels/rope.js';
import { TOPK, TOPK_CHUNK, TOPK_ROW_WORDS, top1Stage1Kernel, top1Stage2Kernel, topkStage1Kernel, topkStage2Kernel } from '../../src/lib/kernels/topk.js';
import { Rng } from '../../src/lib/util/rng.js';
import { NONE } from '../../src/lib/kernels/common.js';
import { expectClose } from '../helpers/compare.js';
import { subgroupOf, testGpu } from '../helpers/gpu.js';
import { out, randn, runProgram, step, type BufferInput } from '../helpers/kernel.js';
import { geluTanh, rope, silu } from '../reference/llama.js';
import { softcapKernel } from '../../src/lib/kernels/softcap.js';
import { ropeTable } from '../../src/lib/model/config.js';
import { checkRopeAtLongPositions } from '../helpers/rope-check.js';
import { embedReference, matmulParams, matmulReference, rowDots } from '../reference/matmul.js';

const ATOL = 3e-5;
const RTOL = 1e-5;

/** Weights as stored on the GPU: rows padded to ldw, f16 bits or f32; plus the values the GPU sees. */
function storeWeights(w: Float32Array, n: number, k: number, f16: boolean) {
  const ldw = Math.ceil(k / 4) * 4;
  const seen = new Float64Array(n * k);
  const data = f16 ? new Uint16Array(n * ldw) : new Float32Array(n * ldw);
  for (let i = 0; i < n; i++) for (let j = 0; j < k; j++) {
    const h = f32ToF16(w[i * k + j]);
    data[i * ldw + j] = f16 ? h : w[i * k + j];
    seen[i * k + j] = f16 ? f16ToF32(h) : w[i * k + j];
  }
  return { ldw, data, seen };
}


/**
 * The matmul shapes under test: a GPU's (lane reductions, gemm tiles), then the broadcast matmul of CPU adapters with
 * fixed-size subgroups on this device's subgroup size (over K tails shorter than a chunk, a block of rows cut short
 * by M, columns past a workgroup's 64).
 */
function TARGETS(gpuShapes: [number, number, number][]): [string, (gpu: Gpu) => MatmulDevice, [number, number, number][]][] {
  return [
    ['', () => ({ cpu: false, subgroup: 0 }), gpuShapes],
    [' (CPU broadcast)', (gpu) => ({ cpu: true, subgroup: subgroupOf(gpu) }), [[1, 70, 53], [1, 70, 52], [BROADCAST_ROWS + 1, 70, 301], [BROADCAST_ROWS + 1, 70, 300], [GEMV_MAX_ROWS + 29, 300, 53], [GEMV_MAX_ROWS + 29, 300, 52]]],
  ];
}

describe('matmul', () => {
  const variants: [string, Partial<MatmulOptions>][] = [
    ['plain', {}], ['norm+bias', { norm: true, bias: true }], ['swiglu+norm', { swiglu: true, norm: true }], ['geglu+norm', { swiglu: true, gelu: true, norm: true }],
    ['residual', { residual: true }], ['last rows + norm', { last: true, norm: true }],
  ];
  // K=5 and 53 run the one-thread-per-column gemv, K=67 and 300 the lane-reduction one (2 and 8 lanes). One row
  // (decode) runs the gemv that stages the row in workgroup memory: one lane (K=53), 8 lanes (K=301), and past
  // GEMV_STAGED_K the plain one (K=3077). K a multiple of 4 (300, 52, 36, 3076) reads x and the gain as vec4s.
  const shapes: [number, number, number][] = [[1, 37, 53], [1, 37, 52], [1, 9, 301], [1, 9, 300], [1, 5, GEMV_STAGED_K + 5], [1, 5, GEMV_STAGED_K + 4], [3, 130, 67], [GEMV_MAX_ROWS, 9, 5], [5, 19, 300], [GEMV_MAX_ROWS + 1, 37, 53], [70, 131, 35], [70, 131, 36]];
  for (const [target, device, sizes] of TARGETS(shapes)) for (const f16 of [false, true]) {
    for (const [vname, v] of variants) {
      it.each(sizes)(`${vname} ${f16 ? 'f16' : 'f32'} weights${target}, M=%i N=%i K=%i`, async (M, N, K) => {
        const gpu = await testGpu({ f16 });
        const o: MatmulOptions = { format: f16 ? 'f16' : 'f32', norm: false, bias: false, swiglu: false, residual: false, last: false, ...v };
        const rng = new Rng(M * 1000 + N + K);
        // With `last`, M sequences of 3 rows each; row of sequence s = 3 s + 2.
        const inRows = o.last ? 3 * M : M;
        const row = (m: number) => (o.last ? 3 * m + 2 : m);
        const x = randn(rng, inRows * K);
        const W = storeWeights(randn(rng, N * K, 0.3), N, K, f16);
        const W2 = storeWeights(randn(rng, N * K, 0.3), N, K, f16);
        const gain = randn(rng, K, 0.2).map((g) => 1 + g);
        const bias = randn(rng, N + 5); // the shard writes columns nOff.. of a wider output
        const nOff = 5;
        const ldo = N + 7;
        const out0 = randn(rng, M * ldo);
        const expected = matmulReference(o, { M, N, K, x, row, W: W.seen, W2: W2.seen, gain, bias, nOff, ldo, out0 });
        const buffers: Record<string, BufferInput> = {
          S: o.last ? step(inRows, M, 3, 2) : step(M), x, w: W.data, out: out(Float32Array.from(out0)),
          ...(o.swiglu ? { w2: W2.data } : {}), ...(o.norm ? { gain } : {}), ...(o.bias ? { bias } : {}),
        };
        const variant = matmulVariant(M);
        const got = await runProgram(gpu, matmulProgram(variant, o, K, device(gpu)), matmulParams(N, K, W.ldw, ldo, nOff), buffers, { N, rows: M });
        expectClose(got.out, expected, ATOL, RTOL, `${vname} M=${M} N=${N} K=${K}`);
      });
    }
  }
});

describe('matmul with the LoRA epilogue (BGMV: each row its own adapter slot and strength)', () => {
  // qkv-like: one output split into 3 segments (G = 3), each with its own u and B block; gate_up: swiglu with G = 2.
  const cases: [string, Partial<MatmulOptions>, number][] = [['single module', {}, 1], ['qkv segments + norm', { norm: true }, 3], ['swiglu gate|up', { swiglu: true, norm: true }, 2], ['geglu gate|up', { swiglu: true, gelu: true, norm: true }, 2]];
  for (const [target, device, sizes] of TARGETS([[1, 37, 53], [1, 41, 301], [3, 37, 53], [GEMV_MAX_ROWS + 5, 41, 67]])) for (const [name, v, G] of cases) {
    it.each(sizes)(`${name}${target}, M=%i N=%i K=%i`, async (M, N, K) => {
      const gpu = await testGpu();
      const o: MatmulOptions = { format: 'f32', norm: false, bias: false, swiglu: false, residual: false, last: false, lora: true, ...v };
      const rng = new Rng(M * 7 + N + G);
      const r = 5, slots = 3, nOff = 0, ldo = N;
      const x = randn(rng, M * K);
      const W = storeWeights(randn(rng, N * K, 0.3), N, K, false);
      const W2 = storeWeights(randn(rng, N * K, 0.3), N, K, false);
      const gain = randn(rng, K, 0.2).map((g) => 1 + g);
      // B rows: for segments, the N output columns split at seg1/seg2; for swiglu, gate rows then up rows (upRow = N).
      const seg1 = G === 3 ? 11 : NONE, seg2 = G === 3 ? 29 : NONE, upRow = G === 2 ? N : 0;
      const bRows = G === 2 ? 2 * N : N;
      const loraU = randn(rng, M * G * r);
      const loraB = randn(rng, slots * bRows * r, 0.5);
      const info = new Uint32Array(4 * M);
      const scale = new Float32Array(info.buffer);
      for (let m = 0; m < M; m++) { info[4 * m + 2] = m % 3 === 0 ? 0 : 1 + rng.int(slots - 1); scale[4 * m + 3] = m === 1 ? 0 : 2 * rng.next(); }
      const term = (m: number, seg: number, bRow: number) => {
        const slot = info[4 * m + 2];
        if (slot === 0) return 0;
        let t = 0;
        for (let j = 0; j < r; j++) t += loraU[(m * G + seg) * r + j] * loraB[(slot * bRows + bRow) * r + j];
        return scale[4 * m + 3] * t;
      };
      const expected = new Float64Array(M * ldo);
      for (let m = 0; m < M; m++) {
        const { a, b } = rowDots(x.subarray(m * K, m * K + K), N, K, W.seen, W2.seen, o.norm ? gain : undefined);
        for (let n = 0; n < N; n++) {
          if (o.swiglu) {
            const gate = a[n] + term(m, 0, n);
            expected[m * ldo + n] = (o.gelu ? geluTanh(gate) : silu(gate)) * (b[n] + term(m, 1, upRow + n));
          } else {
            const seg = n >= seg2 ? 2 : n >= seg1 ? 1 : 0;
            expected[m * ldo + n] = a[n] + term(m, seg, n);
          }
        }
      }
      const variant = matmulVariant(M);
      const params = { ...matmulParams(N, K, W.ldw, ldo, nOff), rank: r, G, bRows, seg1, seg2, upRow };
      const got = await runProgram(gpu, matmulProgram(variant, o, K, device(gpu)), params, {
        S: step(M), x, w: W.data, out: out(new Float32Array(M * ldo)), rowInfo: info, loraU, loraB,
        ...(o.swiglu ? { w2: W2.data } : {}), ...(o.norm ? { gain } : {}),
      }, { N, rows: M });
      expectClose(got.out, expected, ATOL, RTOL, `${name} M=${M} N=${N} K=${K}`);
    });
  }
});

describe('embedding lookup', () => {
  it('copies rows of one vocab shard and leaves rows of other shards alone', async () => {
    const gpu = await testGpu({ f16: true });
    const rng = new Rng(3);
    const D = 13, rowStart = 40, rowCount = 29, M = 11;
    const E = storeWeights(randn(rng, rowCount * D), rowCount, D, true);
    const tokens = Uint32Array.from({ length: M }, (_, i) => (i % 3 === 0 ? rng.int(40) : rowStart + rng.int(rowCount)));
    const x0 = randn(rng, M * D);
    const expected = embedReference(tokens, E.seen, D, rowStart, x0);
    const k = embedKernel('f16');
    const got = await runProgram(gpu, k, { K: D, rowStart, rowCount, ldw: E.ldw, scale: 1 }, { S: step(M), E: E.data, tokens, x: out(Float32Array.from(x0)) }, { rows: M, D });
    expectClose(got.x, expected, 0, 0, 'embedding rows');
  });

  it("scales the rows it copies (Gemma's sqrt(D)) with one f32 rounding", async () => {
    const gpu = await testGpu({ f16: true });
    const rng = new Rng(31);
    const D = 13, rowStart = 0, rowCount = 29, M = 9;
    const E = storeWeights(randn(rng, rowCount * D), rowCount, D, true);
    const tokens = Uint32Array.from({ length: M }, () => rng.int(rowCount));
    const scale = Math.fround(Math.sqrt(D));
    const expected = embedReference(tokens, E.seen, D, rowStart, new Float32Array(M * D), scale);
    const got = await runProgram(gpu, embedKernel('f16'), { K: D, rowStart, rowCount, ldw: E.ldw, scale }, { S: step(M), E: E.data, tokens, x: out(new Float32Array(M * D)) }, { rows: M, D });
    expectClose(got.x, expected, 0, 2 ** -24, 'scaled embedding rows'); // the product rounded once to f32
  });
});

describe('gather target logit (teacher forcing)', () => {
  it('reads logits[s, targets[s]] exactly for each projected sequence, and nothing past seqs', async () => {
    const gpu = await testGpu();
    const rng = new Rng(17);
    const S = 3, V = 1001;
    const logits = randn(rng, S * V);
    const targets = Uint32Array.from([0, 1000, rng.int(V)]);
    const expected = Float64Array.from([...targets].map((t, s) => logits[s * V + t]));
    const got = await runProgram(gpu, gatherTargetKernel(), { V }, { S: step(1, 2, 1, 0), logits, targets, out: out(new Float32Array(S).fill(7)) }, { seqs: 2 });
    expectClose(got.out.subarray(0, 2), expected.subarray(0, 2), 0, 0, 'gathered logits');
    expect(got.out[2]).toBe(7); // sequence 2 was not projected this step
  });
});

describe('rope + KV cache write', () => {
  // R < Dh: a partial rotary (Phi-4-mini rotates 0.75 of each head; the rest passes as it is).
  it.each([[6, 6], [8, 6], [10, 4]])('rotates the first R dims of q and k (Dh=%i R=%i), writes k and v at (slot, position)', async (Dh, R) => {
    const gpu = await testGpu();
    const rng = new Rng(4 + R);
    const H = 5, Hkv = 1, C = 23, M = 7, slots = 2;
    const qkv = randn(rng, M * (H + 2 * Hkv) * Dh);
    const info = new Uint32Array(4 * M);
    for (let m = 0; m < M; m++) { info[4 * m] = m % slots; info[4 * m + 1] = 3 + 2 * m; }
    const inv = Float32Array.from({ length: R / 2 }, (_, i) => 1 / 10000 ** ((2 * i) / R));
    const qExp = new Float64Array(M * H * Dh);
    const kExp = new Float64Array(slots * Hkv * C * Dh);
    const vExp = new Float64Array(slots * Hkv * C * Dh);
    for (let m = 0; m < M; m++) {
      const r = Float64Array.from(qkv.subarray(m * (H + 2 * Hkv) * Dh, (m + 1) * (H + 2 * Hkv) * Dh));
      for (let h = 0; h < H + Hkv; h++) rope(r, h * Dh, R, info[4 * m + 1], inv);
      qExp.set(r.subarray(0, H * Dh), m * H * Dh);
      for (let h = 0; h < Hkv; h++) {
        const at = ((info[4 * m] * Hkv + h) * C + info[4 * m + 1]) * Dh;
        kExp.set(r.subarray((H + h) * Dh, (H + h + 1) * Dh), at);
        vExp.set(r.subarray((H + Hkv + h) * Dh, (H + Hkv + h + 1) * Dh), at);
      }
    }
    const kernel = ropeKvKernel();
    const { q, kc: k, vc: v } = await runProgram(gpu, kernel, { H, Hkv, Dh, C, R }, {
      S: step(M), qkv, rowInfo: info, rope: ropeTable(inv, C), q: out(new Float32Array(M * H * Dh)), kc: out(new Float32Array(kExp.length)), vc: out(new Float32Array(vExp.length)),
    }, { rows: M, H, Hkv, Dh });
    expectClose(q, qExp, 1e-5, 1e-5, 'q');
    expectClose(k, kExp, 1e-5, 1e-5, 'k cache');
    expectClose(v, vExp, 0, 0, 'v cache');
  });

  it('rotates by transformers\' f32 angles at positions up to 32000 (cos and sin from the table, not the device)', async () => {
    await checkRopeAtLongPositions(await testGpu());
  });
});

describe('attention', () => {
  // Under a sliding window of 7 positions (Mistral's: a query at p sees keys p - 7 < j <= p); Gemma 2's soft-capping
  // (c tanh(s / c), with c = 1.5 small enough to bend these scores).
  // Each case runs the attention kernel of every device and, on a CPU adapter with fixed-size subgroups, the many-row
  // one (lanes whose rows read different slots take them in turns; heads of vec4s, Dh / 4 not a multiple of the
  // subgroup size: 12 and 36). The many-row kernel takes Dh a multiple of 4 up to 128; for the others it is not used.
  const cases = [[6, 3, 1, 5, 0, 0, 5], [12, 3, 1, 5, 0, 0, 5], [10, 4, 2, 70, 0, 0, 5], [36, 4, 2, 70, 0, 0, 5], [64, 2, 2, 9, 0, 0, 5], [130, 4, 1, 3, 0, 0, 5], [12, 4, 2, 40, 7, 0, 5], [12, 4, 2, 40, 7, 1.5, 5], [6, 3, 1, 12, 0, 1.5, 5], [12, 4, 2, 40, 7, 1.5, 70], [36, 4, 2, 40, 7, 1.5, 70], [64, 3, 1, 90, 0, 0, 67]];
  it('the many-row kernel is chosen for Dh a multiple of 4 up to 128 on fixed subgroups, else none', () => {
    expect([6, 10, 12, 36, 64, 80, 96, 128, 130, 256].map((dh) => manyRowsAttention(dh, 8) !== null)).toEqual([false, false, true, true, true, true, true, true, false, false]);
    expect(manyRowsAttention(64, 0)).toBeNull();
  });
  const manyRowsCase = (dh: number) => dh % 4 === 0 && dh <= ATTENTION_ROWS_MAX_DH;
  it.each(cases.flatMap((c) => [[...c, false], ...(manyRowsCase(c[0]) ? [[...c, true]] : [])]) as [number, number, number, number, number, number, number, boolean][])('Dh=%i H=%i Hkv=%i positions up to %i, window %i, soft-cap %f, M=%i (many-row kernel: %s)', async (Dh, H, Hkv, maxPos, window, softcap, M, rows) => {
    const gpu = await testGpu();
    const rng = new Rng(Dh + H + maxPos + M);
    const C = maxPos + 4, slots = 2;
    const q = randn(rng, M * H * Dh);
    const kc = randn(rng, slots * Hkv * C * Dh);
    const vc = randn(rng, slots * Hkv * C * Dh);
    const info = new Uint32Array(4 * M);
    // Five rows: random slots and positions. More: two sequences of consecutive positions, as a prefill or a training
    // batch lays them out (the second starting inside a subgroup).
    const seq = (m: number) => (M === 5 ? rng.int(slots) : m < M / 2 ? 0 : 1);
    const at = (m: number) => (M === 5 ? rng.int(maxPos + 1) : Math.min(maxPos, Math.max(0, maxPos - M) + m));
    for (let m = 0; m < M; m++) { info[4 * m] = seq(m); info[4 * m + 1] = m === 0 ? 0 : m === 1 ? maxPos : at(m); }
    const expected = new Float64Array(M * H * Dh);
    const lse = new Float64Array(M * H);
    for (let m = 0; m < M; m++) for (let h = 0; h < H; h++) {
      const kh = Math.floor(h / (H / Hkv));
      const base = (j: number) => ((info[4 * m] * Hkv + kh) * C + j) * Dh;
      const s: number[] = [];
      const first = window ? Math.max(0, info[4 * m + 1] - window + 1) : 0;
      for (let j = first; j <= info[4 * m + 1]; j++) {
        let dot = 0;
        for (let d = 0; d < Dh; d++) dot += q[(m * H + h) * Dh + d] * kc[base(j) + d];
        const sc = dot / Math.sqrt(Dh);
        s.push(softcap ? softcap * Math.tanh(sc / softcap) : sc);
      }
      const mx = Math.max(...s);
      const e = s.map((x) => Math.exp(x - mx));
      const sum = e.reduce((a, b) => a + b, 0);
      lse[m * H + h] = mx + Math.log(sum);
      e.forEach((p, i) => { for (let d = 0; d < Dh; d++) expected[(m * H + h) * Dh + d] += (p / sum) * vc[base(first + i) + d]; });
    }
    const kernel = rows ? attentionRowsKernel(Dh, subgroupOf(gpu)) : attentionKernel(Dh);
    const got = await runProgram(gpu, kernel, { H, Hkv, C, scale: 1 / Math.sqrt(Dh), window, softcap }, {
      S: step(M), q, rowInfo: info, kc, vc, out: out(new Float32Array(M * H * Dh)), lse: out(new Float32Array(M * H)),
    }, { H, rows: M });
    expectClose(got.out, expected, 1e-5, 1e-5, 'attention output');
    expectClose(got.lse, lse, 1e-5, 1e-5, 'log-sum-exp');
  });
});

describe("Gemma 2's final soft-capping", () => {
  it('caps the logits of the call\'s sequences in place, c tanh(z / c), and leaves the rows past them', async () => {
    const gpu = await testGpu();
    const rng = new Rng(30);
    const V = 301, seqs = 3, softcap = 30;
    const logits = Float32Array.from(randn(rng, (seqs + 1) * V, 40));
    const expected = Float64Array.from(logits, (z, i) => (i < seqs * V ? softcap * Math.tanh(z / softcap) : z));
    const got = await runProgram(gpu, softcapKernel(), { V, softcap }, { S: step(seqs + 1, seqs, 1, 0), logits: out(Float32Array.from(logits)) }, { seqs, V });
    expectClose(got.logits, expected, 4e-6, 2e-7, 'soft-capped logits');
  });
});

describe('top-k', () => {
  it.each([[50, 1.0, 1.0], [2500, 1.3, 0.7], [TOPK_CHUNK, 1.0, 2.0]])('V=%i penalty %f temperature %f', async (V, penalty, temperature) => {
    const gpu = await testGpu();
    const rng = new Rng(V);
    const S = 2, chunks = Math.ceil(V / TOPK_CHUNK), words = Math.ceil(V / 32);
    const logits = randn(rng, S * V, 3);
    // Ties: make two equal maxima in row 1; the lower id must come first.
    logits[V + 7] = 50; logits[V + 3] = 50;
    const seen = new Uint32Array(S * words);
    const seenSet = [new Set<number>(), new Set<number>()];
    for (let i = 0; i < 40; i++) { const s = rng.int(S); const t = rng.int(V); seen[s * words + (t >> 5)] |= 1 << (t & 31); seenSet[s].add(t); }
    // rows 0..S-1 are the sequences; rowInfo maps each to its slot (slot == row here).
    const info = Uint32Array.from([0, 0, 0, 0, 1, 0, 0, 0]);
    const cand = new Uint32Array(S * chunks * TOPK * 2);
    const stats = new Float32Array(S * chunks * 2);
    const params = { V, chunks, penalty, invTemp: 1 / temperature };
    const one = await runProgram(gpu, topkStage1Kernel(), params, { S: step(S, S, 1, 0), logits, seen, rowInfo: info, cand: out(cand), stats: out(stats) }, { V, seqs: S });
    const two = await runProgram(gpu, topkStage2Kernel(), params, { S: step(S, S, 1, 0), cand: new Uint32Array(one.cand.buffer), stats: one.stats, result: out(new Uint32Array(S * TOPK_ROW_WORDS)) }, { seqs: S });
    const res = two.result;
    const words32 = new Uint32Array(res.buffer);
    // The greedy pair, into a result buffer holding a previous call's candidates: entry 0 and the log-sum-exp as the
    // sort's, every other entry emptied.
    const g1 = await runProgram(gpu, top1Stage1Kernel(), params, { S: step(S, S, 1, 0), logits, seen, rowInfo: info, cand: out(cand), stats: out(stats) }, { V, seqs: S });
    const g2 = await runProgram(gpu, top1Stage2Kernel(), params, { S: step(S, S, 1, 0), cand: new Uint32Array(g1.cand.buffer), stats: g1.stats, result: out(words32.slice()) }, { seqs: S });
    const top1 = new Uint32Array(g2.result.buffer);
    for (let s = 0; s < S; s++) {
      const pen = Array.from({ length: V }, (_, t) => {
        const v = logits[s * V + t];
        return seenSet[s].has(t) ? (v < 0 ? v * penalty : v / penalty) : v;
      });
      const order = pen.map((v, t) => [v, t]).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
      const n = Math.min(TOPK, V);
      const ids = Array.from({ length: n }, (_, i) => words32[s * TOPK_ROW_WORDS + 3 + 2 * i]);
      const vals = Array.from({ length: n }, (_, i) => res[s * TOPK_ROW_WORDS + 2 + 2 * i]);
      expect(ids).toEqual(order.slice(0, n).map((x) => x[1]));
      expectClose(vals, order.slice(0, n).map((x) => x[0]), 1e-6, 1e-6, 'top-k values');
      const mx = Math.max(...pen) / temperature;
      const lse = mx + Math.log(pen.reduce((a, v) => a + Math.exp(v / temperature - mx), 0));
      expectClose([res[s * TOPK_ROW_WORDS]], [lse], 1e-5, 1e-6, 'log-sum-exp');
      const row = s * TOPK_ROW_WORDS;
      expect([top1[row + 1], top1[row + 3]]).toEqual([1, order[0][1]]);
      expectClose([g2.result[row + 2], g2.result[row]], [order[0][0], lse], 1e-6, 1e-6, 'greedy best logit, log-sum-exp');
      expect(Array.from({ length: TOPK - 1 }, (_, i) => top1[row + 5 + 2 * i])).toEqual(Array(TOPK - 1).fill(0xffffffff));
    }
  });
});
