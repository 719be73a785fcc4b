// Each backward kernel against float64 reference gradients at odd shapes. The reference gradient of a forward f at
// upstream gradient dy is d(sum dy * f(x))/dx through the scalar tape (itself checked against finite differences in
// train-step.test.ts). Tolerance: atol 2e-5 + rtol 1e-5 unless stated (measured max |error| 5.1e-6, on dX).

import { describe, expect, it } from 'vitest';
import { f16ToF32, f32ToF16 } from '../../src/lib/formats/dtype.js';
import { attentionKernel } from '../../src/lib/kernels/attention.js';
import { attentionBackwardDkvKernel, attentionBackwardDqKernel } from '../../src/lib/kernels/train/attention-backward.js';
import { attentionBackwardDkvRowsKernel, attentionBackwardDqRowsKernel } from '../../src/lib/kernels/train/attention-backward-rows.js';
import { attentionRowsKernel } from '../../src/lib/kernels/attention-rows.js';
import { crossEntropyKernel } from '../../src/lib/kernels/train/cross-entropy.js';
import { loraGradAKernel, loraGradBKernel, loraGradXKernel, loraShrinkTrainKernel, loraWKernel } from '../../src/lib/kernels/train/lora-backward.js';
import { matmulNNKernel, nnVec } from '../../src/lib/kernels/train/matmul-nn.js';
import { rmsnormBackwardKernel, rmsnormKernel } from '../../src/lib/kernels/train/norm.js';
import { qkNormBackwardKernel, qkNormKernel } from '../../src/lib/kernels/qk-norm.js';
import { ropeBackwardKernel } from '../../src/lib/kernels/train/rope-backward.js';
import { swigluBackwardKernel, swigluKernel } from '../../src/lib/kernels/train/swiglu.js';
import { addNormKernel } from '../../src/lib/kernels/add-norm.js';
import { Rng } from '../../src/lib/util/rng.js';
import { Tape } from '../reference/autodiff.js';
import { ropeTable } from '../../src/lib/model/config.js';
import { dxReference } from '../reference/matmul.js';
import { dropFactor } from '../reference/train.js';
import { expectClose } from '../helpers/compare.js';
import { subgroupOf, testGpu } from '../helpers/gpu.js';
import { out, randn, runProgram, step } from '../helpers/kernel.js';

const TOL = [2e-5, 1e-5] as const;

/** Reference gradient of sum(dy * f(x)) w.r.t. each input array. */
function refGrad(inputs: ArrayLike<number>[], f: (tape: Tape, xs: number[][]) => number[], dy: ArrayLike<number>) {
  const tape = new Tape();
  const xs = inputs.map((a) => Array.from(a, (v) => tape.leaf(v)));
  const y = f(tape, xs);
  const out = tape.sum(y.map((v, i) => tape.scale(v, dy[i])));
  const g = tape.grad(out);
  return { y: y.map((v) => tape.val[v]), grads: xs.map((x) => Float64Array.from(x, (i) => g[i])) };
}

describe('rmsnorm', () => {
  // perThread: the CPU adapters' kernels, a thread a row in workgroups of 16 rows (37 rows: three, the last partial).
  it.each([[3, 37, false], [5, 300, false], [3, 37, true], [37, 300, true]])('forward and backward, M=%i K=%i (a thread a row: %s)', async (M, K, perThread) => {
    const gpu = await testGpu();
    const rng = new Rng(M + K);
    const x = randn(rng, M * K);
    const gain = randn(rng, K, 0.3).map((v) => 1 + v);
    const dy = randn(rng, M * K);
    const dx0 = randn(rng, M * K);
    const { y, grads } = refGrad([x], (t, [xv]) => {
      const out: number[] = [];
      for (let m = 0; m < M; m++) {
        const row = xv.slice(m * K, (m + 1) * K);
        const r = t.rsqrt(t.addConst(t.scale(t.sum(row.map((v) => t.mul(v, v))), 1 / K), 1e-5));
        out.push(...row.map((v, k) => t.scale(t.mul(v, r), gain[k])));
      }
      return out;
    }, dy);
    const { y: fy } = await runProgram(gpu, rmsnormKernel(perThread), { M, K, eps: 1e-5 }, { x, gain, y: out(new Float32Array(M * K)) }, { M });
    expectClose(fy, y, ...TOL, 'rmsnorm');
    const { dx } = await runProgram(gpu, rmsnormBackwardKernel(perThread), { M, K, eps: 1e-5 }, { x, gain, dy, dx: out(Float32Array.from(dx0)) }, { M });
    expectClose(dx, grads[0].map((g, i) => g + dx0[i]), ...TOL, 'rmsnorm backward (accumulated)');
  });
});

describe("Qwen3's q/k norms", () => {
  // transformers' Qwen3Attention: q_norm over each query head's head_dim, k_norm over each key head's; v untouched.
  it.each([[3, 3, 1, 10], [7, 5, 5, 6], [2, 4, 2, 128]])('forward (in place and into a copy) and backward, M=%i H=%i Hkv=%i Dh=%i', async (M, H, Hkv, Dh) => {
    const gpu = await testGpu();
    const rng = new Rng(M * 31 + H * 7 + Dh);
    const W = (H + 2 * Hkv) * Dh;
    const eps = 1e-6;
    const x = randn(rng, M * W, 2);
    const gain = randn(rng, 2 * Dh, 0.3).map((v) => 1 + v);
    const dy = randn(rng, M * W);
    const { y, grads } = refGrad([x], (t, [xv]) => {
      const outRow: number[] = [];
      for (let m = 0; m < M; m++) {
        for (let h = 0; h < H + 2 * Hkv; h++) {
          const seg = xv.slice(m * W + h * Dh, m * W + (h + 1) * Dh);
          if (h >= H + Hkv) { outRow.push(...seg); continue; }
          const r = t.rsqrt(t.addConst(t.scale(t.sum(seg.map((v) => t.mul(v, v))), 1 / Dh), eps));
          const g0 = h < H ? 0 : Dh;
          outRow.push(...seg.map((v, i) => t.scale(t.mul(v, r), gain[g0 + i])));
        }
      }
      return outRow;
    }, dy);
    const sizes = { rows: M, H, Hkv };
    const p = { H, Hkv, Dh, eps };
    const { y: copied } = await runProgram(gpu, qkNormKernel(false), p, { S: step(M), x, gain, y: out(new Float32Array(M * W).fill(NaN)) }, sizes);
    expectClose(copied, y, ...TOL, 'qk_norm into a copy (v copied through)');
    const { y: inPlace } = await runProgram(gpu, qkNormKernel(true), p, { S: step(M), gain, y: out(Float32Array.from(x)) }, sizes);
    expectClose(inPlace, y, ...TOL, 'qk_norm in place');
    const { dqkv } = await runProgram(gpu, qkNormBackwardKernel(), p, { S: step(M), x, gain, dqkv: out(Float32Array.from(dy)) }, sizes);
    expectClose(dqkv, grads[0], ...TOL, 'qk_norm backward (v passes through)');
  });
});

describe.each(['silu', 'gelu_tanh'] as const)('gated linear unit (%s)', (act) => {
  it('forward and backward, M=5 F=23', async () => {
    const gpu = await testGpu();
    const rng = new Rng(9);
    const M = 5, F = 23;
    const gu = randn(rng, M * 2 * F, 2);
    const dh = randn(rng, M * F);
    // SiLU: g sigmoid(g); transformers' gelu_pytorch_tanh: g/2 (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3))).
    const gelu = (t: Tape, g: number) => t.mul(t.scale(g, 0.5), t.addConst(t.tanh(t.scale(t.add(g, t.scale(t.mul(g, t.mul(g, g)), 0.044715)), Math.sqrt(2 / Math.PI))), 1));
    const { y, grads } = refGrad([gu], (t, [v]) => {
      const out: number[] = [];
      for (let m = 0; m < M; m++) for (let f = 0; f < F; f++) {
        const g = v[m * 2 * F + f];
        out.push(t.mul(act === 'silu' ? t.mul(g, t.sigmoid(g)) : gelu(t, g), v[m * 2 * F + F + f]));
      }
      return out;
    }, dh);
    const grid = { M, F };
    const { h } = await runProgram(gpu, swigluKernel(act), { M, F }, { gu, h: out(new Float32Array(M * F)) }, grid);
    expectClose(h, y, ...TOL, act);
    const { dgu } = await runProgram(gpu, swigluBackwardKernel(act), { M, F }, { gu, dh, dgu: out(new Float32Array(M * 2 * F)) }, grid);
    expectClose(dgu, grads[0], ...TOL, `${act} backward`);
  });
});

describe("Gemma's post-norm x += rmsnorm(y) g", () => {
  it.each([[3, 37], [6, 300]])('adds the normalized rows into the stream, M=%i K=%i', async (M, K) => {
    const gpu = await testGpu();
    const rng = new Rng(M * 7 + K);
    const y = randn(rng, M * K, 3);
    const gain = randn(rng, K, 0.3).map((v) => 1 + v);
    const x0 = randn(rng, M * K);
    const expected = new Float64Array(M * K);
    for (let m = 0; m < M; m++) {
      let ss = 0;
      for (let k = 0; k < K; k++) ss += y[m * K + k] ** 2;
      const r = 1 / Math.sqrt(ss / K + 1e-6);
      for (let k = 0; k < K; k++) expected[m * K + k] = x0[m * K + k] + y[m * K + k] * r * gain[k];
    }
    // Two rows past S.rows stay as they were.
    const padded = Float32Array.from([...x0, ...new Float32Array(2 * K).fill(7)]);
    const { x } = await runProgram(gpu, addNormKernel(), { K, eps: 1e-6 }, { S: step(M), y: Float32Array.from([...y, ...new Float32Array(2 * K)]), gain, x: out(padded) }, { rows: M });
    expectClose(x.subarray(0, M * K), expected, ...TOL, 'add_norm');
    expectClose(x.subarray(M * K), new Float64Array(2 * K).fill(7), 0, 0, 'rows past S.rows');
  });
});

describe('matmul input gradient dX = dY W', () => {
  // Tiled (GPUs), then the broadcast shape of CPU adapters with this device's fixed subgroup size.
  // M=70 and 9 run the broadcast shape's 16-row blocks (cut short by M), M=1 its 4-row one; K=301 spans two
  // workgroups of 256 columns, the second cut short.
  // Aligned: dY's stride and offset and K multiples of 4, so the broadcast shape reads dY and writes dX as vec4s (N
  // still odd: the last vec4 of dY's segment is cut short).
  const dxCases = [[false, 70, 37, 53], [true, 9, 130, 19], [false, 1, 5, 3], [true, 37, 21, 301]];
  const aligned = (c: (number | boolean)[]) => [c[0], c[1], c[2], Math.ceil((c[3] as number) / 4) * 4];
  it.each(dxCases.flatMap((c) => [[...c, false, false], [...c, true, false], [...aligned(c), true, true], [...aligned(c), false, true]]) as [boolean, number, number, number, boolean, boolean][])('f16 %s, M=%i N=%i K=%i, with a column offset into dY and accumulation (broadcast: %s, strides multiples of 4: %s)', async (f16, M, N, K, broadcast, vec) => {
    const gpu = await testGpu({ f16 });
    const rng = new Rng(M + N + K);
    const ldw = Math.ceil(K / 4) * 4;
    const Wv = randn(rng, N * K, 0.5);
    const seen = Float64Array.from(Wv, (v) => (f16 ? f16ToF32(f32ToF16(v)) : v));
    const wData = f16 ? new Uint16Array(N * ldw) : new Float32Array(N * ldw);
    for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) wData[n * ldw + k] = f16 ? f32ToF16(Wv[n * K + k]) : Wv[n * K + k];
    const yOff = vec ? 4 : 3, ldy = vec ? Math.ceil((N + 6) / 4) * 4 : N + 5;
    const dy = randn(rng, M * ldy);
    const dx0 = randn(rng, M * K);
    const expected = dxReference(dy, ldy, yOff, seen, M, N, K, dx0);
    const kernel = matmulNNKernel(f16 ? 'f16' : 'f32', true, broadcast ? subgroupOf(gpu) : 0, M, nnVec(ldy, yOff, K));
    expect(kernel.buffers.dy.type).toBe(broadcast && vec ? 'array<vec4<f32>>' : 'array<f32>');
    const { dx } = await runProgram(gpu, kernel, { M, N, K, ldy, yOff, ldw, ldo: K, outRow: 0, yRow: 0 },
      { dy, w: wData, dx: out(Float32Array.from(dx0)) }, { K, rows: M });
    expectClose(dx, expected, ...TOL, 'dX');
  });
});

describe('attention backward', () => {
  // Each case also through the many-row kernels of CPU adapters with fixed-size subgroups (forward and backward):
  // subgroups across the two sequences' boundary, Dh / 4 not a multiple of the subgroup size, two workgroups (T=37).
  // The many-row kernels read heads as vec4s: their cases take Dh 12 and 20 where the others take 6 and 10.
  const cases = [[6, 4, 2, 5, 0, 0], [10, 3, 1, 7, 0, 0], [6, 4, 2, 9, 3, 0], [6, 4, 2, 7, 3, 1.2], [10, 3, 1, 6, 0, 0.8], [10, 4, 2, 37, 5, 0.8]];
  const vec4Dh = (c: number[]) => [c[0] === 6 ? 12 : 20, ...c.slice(1)];
  it.each(cases.flatMap((c) => [[...c, false], [...vec4Dh(c), true]]) as [number, number, number, number, number, number, boolean][])('Dh=%i H=%i Hkv=%i T=%i (2 sequences), sliding window %i, soft-cap %f (many-row kernels: %s)', async (Dh, H, Hkv, T, window, softcap, rows) => {
    const gpu = await testGpu();
    const sg = rows ? subgroupOf(gpu) : 0;
    const rng = new Rng(Dh * 100 + T);
    const B = 2, M = B * T, scale = 1 / Math.sqrt(Dh);
    const q = randn(rng, M * H * Dh);
    const kc = randn(rng, B * Hkv * T * Dh);
    const vc = randn(rng, B * Hkv * T * Dh);
    const dout = randn(rng, M * H * Dh);
    const info = new Uint32Array(4 * M);
    for (let m = 0; m < M; m++) { info[4 * m] = Math.floor(m / T); info[4 * m + 1] = m % T; }
    const { grads } = refGrad([q, kc, vc], (t, [Q, K, V]) => {
      const out: number[] = [];
      for (let m = 0; m < M; m++) {
        const b = Math.floor(m / T), i = m % T;
        for (let h = 0; h < H; h++) {
          const kh = Math.floor(h / (H / Hkv));
          const at = (j: number) => ((b * Hkv + kh) * T + j) * Dh;
          // Keys first .. i: all before the query, or its last `window` positions.
          const first = window ? Math.max(0, i - window + 1) : 0;
          const raw = Array.from({ length: i + 1 - first }, (_, jj) => t.scale(t.dot(Q.slice((m * H + h) * Dh, (m * H + h + 1) * Dh), K.slice(at(first + jj), at(first + jj) + Dh)), scale));
          // Gemma 2: c tanh(s / c) before the softmax.
          const s = softcap ? raw.map((x) => t.scale(t.tanh(t.scale(x, 1 / softcap)), softcap)) : raw;
          const mx = Math.max(...s.map((x) => t.val[x]));
          const e = s.map((x) => t.exp(t.addConst(x, -mx)));
          const inv = t.rsqrt(t.mul(t.sum(e), t.sum(e)));
          for (let d = 0; d < Dh; d++) out.push(t.mul(t.sum(e.map((ej, jj) => t.mul(ej, V[at(first + jj) + d]))), inv));
        }
      }
      return out;
    }, dout);
    const fwd = await runProgram(gpu, rows ? attentionRowsKernel(Dh, sg) : attentionKernel(Dh), { H, Hkv, C: T, scale, window, softcap }, {
      S: step(M), q, rowInfo: info, kc, vc, out: out(new Float32Array(M * H * Dh)), lse: out(new Float32Array(M * H)),
    }, { H, rows: M });
    const p = { H, Hkv, T, scale, M, window, softcap };
    const inputs = { q, kc, vc, o: fwd.out, dout, lse: fwd.lse };
    const { dq } = await runProgram(gpu, rows ? attentionBackwardDqRowsKernel(Dh, sg) : attentionBackwardDqKernel(Dh), p, { ...inputs, dq: out(new Float32Array(M * H * Dh)) }, p);
    const { dk, dv } = await runProgram(gpu, rows ? attentionBackwardDkvRowsKernel(Dh, sg) : attentionBackwardDkvKernel(Dh), p, { ...inputs, dk: out(new Float32Array(kc.length)), dv: out(new Float32Array(vc.length)) }, p);
    expectClose(dq, grads[0], ...TOL, 'dq');
    expectClose(dk, grads[1], ...TOL, 'dk');
    expectClose(dv, grads[2], ...TOL, 'dv');
  });
});

describe('rope backward', () => {
  it.each([[6, 6], [8, 4]])('rotates q, k gradients back and passes v through, H=3 Hkv=1 Dh=%i R=%i (the first R dims rotated) T=4', async (Dh, R) => {
    const gpu = await testGpu();
    const rng = new Rng(4 + R);
    const H = 3, Hkv = 1, T = 4, B = 2, M = B * T, half = R / 2;
    const inv = Float32Array.from({ length: half }, (_, i) => 1 / 10000 ** ((2 * i) / R));
    const qkv = randn(rng, M * (H + 2 * Hkv) * Dh);
    const dq = randn(rng, M * H * Dh), dk = randn(rng, B * Hkv * T * Dh), dv = randn(rng, B * Hkv * T * Dh);
    // Forward: q_rot (M, H, Dh), k and v in the cache layout; upstream gradients arranged the same way.
    const { grads } = refGrad([qkv], (t, [x]) => {
      const q: number[] = [], k: number[] = new Array(B * Hkv * T * Dh), v: number[] = new Array(B * Hkv * T * Dh);
      for (let m = 0; m < M; m++) {
        const b = Math.floor(m / T), pos = m % T;
        const row = x.slice(m * (H + 2 * Hkv) * Dh, (m + 1) * (H + 2 * Hkv) * Dh);
        const rot = (off: number) => {
          const o: number[] = Array.from({ length: Dh }, (_, d) => row[off + d]); // dims past R pass as they are
          for (let i = 0; i < half; i++) {
            const c = Math.cos(Math.fround(pos * inv[i])), s = Math.sin(Math.fround(pos * inv[i]));
            o[i] = t.sub(t.scale(row[off + i], c), t.scale(row[off + i + half], s));
            o[i + half] = t.add(t.scale(row[off + i + half], c), t.scale(row[off + i], s));
          }
          return o;
        };
        for (let h = 0; h < H; h++) q.push(...rot(h * Dh));
        for (let h = 0; h < Hkv; h++) {
          const at = ((b * Hkv + h) * T + pos) * Dh;
          rot((H + h) * Dh).forEach((z, d) => { k[at + d] = z; });
          for (let d = 0; d < Dh; d++) v[at + d] = row[(H + Hkv + h) * Dh + d];
        }
      }
      return [...q, ...k, ...v];
    }, [...dq, ...dk, ...dv]);
    const rope = ropeBackwardKernel();
    const { dqkv } = await runProgram(gpu, rope, { H, Hkv, Dh, T, M, R }, { dq, dk, dv, rope: ropeTable(inv, T), dqkv: out(new Float32Array(qkv.length)) },
      { M, H, Hkv, Dh });
    expectClose(dqkv, grads[0], 1e-5, 1e-5, 'dqkv');
  });
});

describe('cross-entropy', () => {
  // Gemma 2's final soft-capping (c = 2.5, under these logits' spread) folded in: the softmax of c tanh(x / c).
  it.each([0, 2.5])('loss and dlogits with a masked row, V=37, soft-cap %f', async (softcap) => {
    const gpu = await testGpu();
    const rng = new Rng(37);
    const rows = 4, V = 37, weight = 1 / 3;
    const logits = randn(rng, rows * V, 3);
    const labels = Uint32Array.from([5, 0xffffffff, 36, 0]);
    const { y, grads } = refGrad([logits], (t, [x]) => {
      const out: number[] = [];
      const z = softcap ? x.map((v) => t.scale(t.tanh(t.scale(v, 1 / softcap)), softcap)) : x;
      for (let r = 0; r < rows; r++) {
        if (labels[r] === 0xffffffff) continue;
        const row = z.slice(r * V, (r + 1) * V);
        const mx = Math.max(...row.map((v) => t.val[v]));
        out.push(t.sub(t.addConst(t.log(t.sum(row.map((v) => t.exp(t.addConst(v, -mx))))), mx), row[labels[r]]));
      }
      return out;
    }, [weight, weight, weight]);
    const { logits: d, loss } = await runProgram(gpu, crossEntropyKernel(), { rows, V, labelOff: 0, weight, softcap }, { logits: out(Float32Array.from(logits)), labels, loss: out(new Float32Array(rows)) }, { rows });
    expectClose(d, grads[0], 1e-6, 1e-4, 'dlogits');
    expectClose([loss[0], loss[2], loss[3]], y, 1e-5, 1e-5, 'per-row loss');
    expectClose([loss[1]], [0], 0, 0, 'masked row loss');
  });
});

describe('LoRA training kernels', () => {
  // One group of G modules over a K-wide input: A (slots, G, R, K), B' (slots, N, R) with module g's rows from its
  // segment start; dY's column o is B's row o (ldy > N: a wider activation). Slot 1 is trained, dropout 0.3 (the
  // reference hash, tests/reference/train.ts). Shapes cross every tile edge: M around ROWS (8), K around 64 columns,
  // G R over 16 (dA's outputs per thread) and over 64 (shrink's threads).
  const NONE = 0xffffffff;
  it.each([[37, 150, 3, 5], [3, 70, 1, 23], [13, 65, 3, 23], [16, 64, 2, 8]])('shrink, w, dB, dA and dX at M=%i K=%i G=%i R=%i', async (M, K, G, R) => {
    const gpu = await testGpu();
    const rng = new Rng(M * 7 + K + G + R);
    const rows = [17, 12, 11].slice(0, G);
    const N = rows.reduce((a, b) => a + b, 0);
    const starts = rows.map((_, g) => rows.slice(0, g).reduce((a, b) => a + b, 0));
    const segOf = (o: number) => starts.findLastIndex((s) => o >= s);
    const [slot, p, salt, stepSeed, scaling, ldy] = [1, 0.3, 6, 77, 1.75, N + 3];
    const outs = G * R;
    const x = randn(rng, M * K);
    const A = randn(rng, 2 * outs * K, 0.2);
    const B = randn(rng, 2 * N * R, 0.2);
    const dy = randn(rng, M * ldy);
    const u = randn(rng, M * outs);
    const w = randn(rng, M * outs);
    const [gA0, gB0, dx0] = [randn(rng, outs * K), randn(rng, N * R), randn(rng, M * K)];
    const drop = (m: number, k: number) => dropFactor(salt, stepSeed, p, m, k);
    const a = (o: number, k: number) => A[(slot * outs + o) * K + k];
    const sum = (n: number, f: (i: number) => number) => { let t = 0; for (let i = 0; i < n; i++) t += f(i); return t; };
    const uRef = Float64Array.from({ length: M * outs }, (_, i) => sum(K, (k) => x[Math.floor(i / outs) * K + k] * drop(Math.floor(i / outs), k) * a(i % outs, k)));
    const wRef = Float64Array.from({ length: M * outs }, (_, i) => {
      const [m, g, j] = [Math.floor(i / outs), Math.floor((i % outs) / R), i % R];
      return sum(rows[g], (c) => dy[m * ldy + starts[g] + c] * B[(slot * N + starts[g] + c) * R + j]);
    });
    const gBRef = Float64Array.from(gB0, (v, i) => {
      const [o, j] = [Math.floor(i / R), i % R];
      return v + scaling * sum(M, (m) => dy[m * ldy + o] * u[m * outs + segOf(o) * R + j]);
    });
    const gARef = Float64Array.from(gA0, (v, i) => v + sum(M, (m) => w[m * outs + Math.floor(i / K)] * x[m * K + (i % K)] * drop(m, i % K)));
    const dxRef = Float64Array.from(dx0, (v, i) => {
      const [m, k] = [Math.floor(i / K), i % K];
      return v + drop(m, k) * sum(outs, (o) => w[m * outs + o] * a(o, k));
    });
    const params = { M, K, G, rank: R, ldx: K, slot, seed: salt, p, ldy, bRows: N, seg1: starts[1] ?? NONE, seg2: starts[2] ?? NONE, scaling };
    const seedU = { uniform: Uint32Array.of(stepSeed, 0, 0, 0) };
    const sizes = { M, K, G, rank: R, bRows: N };
    const r1 = await runProgram(gpu, loraShrinkTrainKernel(), params, { x, loraA: A, u: out(new Float32Array(M * outs)), stepSeed: seedU }, sizes);
    expectClose(r1.u, uRef, ...TOL, 'shrink u');
    const r2 = await runProgram(gpu, loraWKernel(), params, { dy, loraB: B, w: out(new Float32Array(M * outs)) }, sizes);
    expectClose(r2.w, wRef, ...TOL, 'w = dY B\'');
    const r3 = await runProgram(gpu, loraGradBKernel(), params, { dy, u, gB: out(Float32Array.from(gB0)) }, sizes);
    expectClose(r3.gB, gBRef, ...TOL, 'dB (accumulated)');
    const r4 = await runProgram(gpu, loraGradAKernel(), params, { x, w, gA: out(Float32Array.from(gA0)), stepSeed: seedU }, sizes);
    expectClose(r4.gA, gARef, ...TOL, 'dA (accumulated)');
    const r5 = await runProgram(gpu, loraGradXKernel(), params, { w, loraA: A, dx: out(Float32Array.from(dx0)), stepSeed: seedU }, sizes);
    expectClose(r5.dx, dxRef, ...TOL, 'dX (accumulated)');
  });
});
