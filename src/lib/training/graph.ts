// One LoRA training micro-step on the GPU: forward through the frozen base (the same weight buffers inference uses)
// with the trained adapter in its bank slot, cross-entropy over the vocabulary in row chunks, and the backward pass
// to the LoRA weights. Every dispatch is resolved once here (the shapes are fixed: B sequences x T positions), so a
// step writes its inputs, encodes one compute pass, submits once, and reads back the per-row losses.
//
// Memory: the residual stream entering each layer is kept (L + 1 buffers of (M, D)); everything else of a layer is
// recomputed during the backward pass from that layer's input (activation checkpointing per layer), so activation
// memory is O(B T (D + F + H Dh) + L B T D), independent of the weights; logits are (chunk, V), not (M, V).
// Letters: M = B T rows, D hidden, F intermediate, H/Hkv heads, Dh head dim, V vocab, R LoRA rank (bank's).

import type { Gpu } from '../gpu/device.js';
import { grid2d, uniforms } from '../gpu/kernel.js';
import { attentionShader } from '../kernels/attention.js';
import { embedShader } from '../kernels/embed.js';
import { GEMM_TILE, GEMV_MAX_ROWS, gemvCols, matmulShader, type MatmulOptions } from '../kernels/matmul.js';
import { ropeKvShader } from '../kernels/rope.js';
import { attentionBackwardDkvShader, attentionBackwardDqShader } from '../kernels/train/attention-backward.js';
import { crossEntropyShader } from '../kernels/train/cross-entropy.js';
import { loraGradAShader, loraGradBShader, loraGradXShader, loraShrinkTrainShader, loraWShader } from '../kernels/train/lora-backward.js';
import { matmulNNShader } from '../kernels/train/matmul-nn.js';
import { rmsnormBackwardShader, rmsnormShader } from '../kernels/train/norm.js';
import { adamwShader, clipShader, sumSquaresShader } from '../kernels/train/optimizer.js';
import { ropeBackwardShader } from '../kernels/train/rope-backward.js';
import { swigluBackwardShader, swigluShader } from '../kernels/train/swiglu.js';
import { copyShader, fillShader } from '../kernels/train/util.js';
import { GROUP_MODULES, type LoraBank, type LoraGroupBuffers, type LoraGroupName } from '../lora/bank.js';
import { ropeInvFreq, type ModelConfig } from '../model/config.js';
import type { Matrix, ModelWeights } from '../model/weights.js';

export interface GraphShape {
  batch: number;    // B sequences per micro-step
  seqLen: number;   // T positions (cutoff); shorter examples are padded with masked labels
  /** Rows of logits computed at once. */
  logitChunk?: number;
}

interface D { label: string; pipeline: GPUComputePipeline; bindGroup: GPUBindGroup; grid: [number, number, number] }

/** The trainable tensors of one (layer, group): true A and B with their gradients and Adam moments. */
export interface TrainParams {
  layer: number;
  group: LoraGroupName;
  lg: LoraGroupBuffers;
  a: GPUBuffer; b: GPUBuffer; gA: GPUBuffer; gB: GPUBuffer;
  mA: GPUBuffer; vA: GPUBuffer; mB: GPUBuffer; vB: GPUBuffer;
  nA: number; nB: number;
}

const STORAGE = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;

/**
 * The trainable tensors of every (layer, group) the adapter in `slot` adapts, in the bank's slot layout. Shared by
 * the graphs of every sequence length; the caller owns (and destroys) the buffers.
 */
export function createTrainParams(gpu: Gpu, bank: LoraBank, slot: number): TrainParams[] {
  const adapter = bank.adapters[slot - 1];
  const R = bank.rank;
  const params: TrainParams[] = [];
  const buf = (label: string, n: number) => gpu.createBuffer(label, Math.max(1, n) * 4, STORAGE());
  for (let l = 0; l < bank.layers; l++) {
    for (const group of ['qkv', 'o', 'gate_up', 'down'] as LoraGroupName[]) {
      const lg = bank.group(l, group);
      if (!lg || !adapter || !GROUP_MODULES[group].some((m) => adapter.modules.has(`${l}.${m}`))) continue;
      const nA = lg.G * R * lg.K;
      const nB = lg.N * R;
      params.push({
        layer: l, group, lg, nA, nB,
        a: buf(`L${l}.${group}.A`, nA), b: buf(`L${l}.${group}.B`, nB), gA: buf(`L${l}.${group}.gA`, nA), gB: buf(`L${l}.${group}.gB`, nB),
        mA: buf(`L${l}.${group}.mA`, nA), vA: buf(`L${l}.${group}.vA`, nA), mB: buf(`L${l}.${group}.mB`, nB), vB: buf(`L${l}.${group}.vB`, nB),
      });
    }
  }
  return params;
}

export class TrainGraph {
  readonly M: number;
  /** Dispatches of one micro-step (forward + loss + backward) and of the optimizer step. */
  readonly micro: D[] = [];
  readonly forwardOnly: D[] = [];
  readonly optimizer: D[] = [];
  readonly bytes: number;
  readonly tokens: GPUBuffer;
  readonly labels: GPUBuffer;
  readonly loss: GPUBuffer;
  readonly norm: GPUBuffer;
  readonly seed: GPUBuffer;
  readonly optStep: GPUBuffer;
  readonly ceParams: GPUBuffer[] = [];
  readonly #alloc: GPUBuffer[] = [];

  constructor(
    private readonly gpu: Gpu, private readonly cfg: ModelConfig, private readonly w: ModelWeights,
    private readonly bank: LoraBank, readonly slot: number, readonly shape: GraphShape,
    readonly dropout: number, readonly scaling: number, maxGradNorm: number, readonly params: TrainParams[],
  ) {
    const { hiddenSize: Dm, intermediateSize: F, numHeads: H, numKvHeads: Hkv, headDim: Dh, vocabSize: V, numLayers: L } = cfg;
    const B = shape.batch;
    const T = shape.seqLen;
    const M = (this.M = B * T);
    const R = bank.rank;
    const Nqkv = (H + 2 * Hkv) * Dh;
    const before = gpu.allocatedBytes;
    const buf = (label: string, floats: number) => {
      const b = gpu.createBuffer(label, Math.max(1, floats) * 4, STORAGE());
      this.#alloc.push(b);
      return b;
    };
    const uni = (label: string, words: (number | { f32: number })[]) => {
      const b = uniforms(gpu, label, words);
      this.#alloc.push(b);
      return b;
    };

    // Inputs and per-row data: row m = b T + t is sequence b (its K/V slot) at position t, through the trained slot.
    this.tokens = buf('train.tokens', M);
    this.labels = buf('train.labels', M);
    this.loss = buf('train.loss', M);
    const rowInfo = buf('train.rowInfo', 4 * M);
    const info = new Uint32Array(4 * M);
    const scale = new Float32Array(info.buffer);
    for (let m = 0; m < M; m++) { info[4 * m] = Math.floor(m / T); info[4 * m + 1] = m % T; info[4 * m + 2] = slot; scale[4 * m + 3] = 1; }
    gpu.device.queue.writeBuffer(rowInfo, 0, info);
    const step = uni('train.step', [M, M, 1, 0]);
    this.seed = uni('train.seed', [0, 0, 0, 0]);
    this.optStep = uni('train.opt', [0, 0, 0, 0, 0, 0, 0, 0].map((x) => ({ f32: x })));
    const invFreq = buf('train.inv_freq', Dh / 2);
    gpu.device.queue.writeBuffer(invFreq, 0, new Float32Array(ropeInvFreq(cfg)));

    const xs = Array.from({ length: L + 1 }, (_, l) => buf(`train.x${l}`, M * Dm));
    const a = {
      xn: buf('train.xn', M * Dm), xmid: buf('train.xmid', M * Dm), qkv: buf('train.qkv', M * Nqkv),
      q: buf('train.q', M * H * Dh), kc: buf('train.k', M * Hkv * Dh), vc: buf('train.v', M * Hkv * Dh),
      att: buf('train.att', M * H * Dh), lse: buf('train.lse', M * H), gu: buf('train.gu', M * 2 * F), h: buf('train.h', M * F),
      dx: buf('train.dx', M * Dm), dxn: buf('train.dxn', M * Dm), dh: buf('train.dh', M * F), dgu: buf('train.dgu', M * 2 * F),
      datt: buf('train.datt', M * H * Dh), dq: buf('train.dq', M * H * Dh), dk: buf('train.dk', M * Hkv * Dh),
      dv: buf('train.dv', M * Hkv * Dh), dqkv: buf('train.dqkv', M * Nqkv),
      u: { qkv: buf('train.u_qkv', M * 3 * R), o: buf('train.u_o', M * R), gate_up: buf('train.u_gu', M * 2 * R), down: buf('train.u_down', M * R) },
      lw: buf('train.lora_w', M * 3 * R),
    };
    const chunk = Math.min(M, shape.logitChunk ?? Math.max(1, Math.floor((32 << 20) / (V * 4))));
    const logits = buf('train.logits', chunk * V);

    const partials = buf('train.partials', Math.max(1, 2 * this.params.length));
    this.norm = buf('train.norm', 2);

    // ---- dispatch builders ----
    const f16 = gpu.f16;
    const d = (label: string, code: string, bindings: Record<number, GPUBuffer>, grid: [number, number, number], list: D[]) => {
      const pipeline = this.gpu.pipelines.get(label, code);
      const bindGroup = gpu.device.createBindGroup({
        label, layout: pipeline.getBindGroupLayout(0),
        entries: Object.entries(bindings).map(([i, buffer]) => ({ binding: Number(i), resource: { buffer } })),
      });
      list.push({ label, pipeline, bindGroup, grid });
    };
    const elems = (n: number) => grid2d(Math.ceil(n / 256));
    const copy = (src: GPUBuffer, dst: GPUBuffer, n: number, list: D[]) =>
      d('copy', copyShader(), { 0: uni('copy', [n]), 1: src, 2: dst }, elems(n), list);
    const fill = (dst: GPUBuffer, n: number, list: D[]) =>
      d('fill', fillShader(), { 0: uni('fill', [n, { f32: 0 }]), 1: dst }, elems(n), list);
    const rmsnorm = (x: GPUBuffer, gain: GPUBuffer, y: GPUBuffer, list: D[]) =>
      d('rmsnorm', rmsnormShader(), { 0: uni('rmsnorm', [M, Dm, { f32: cfg.rmsNormEps }]), 1: x, 2: gain, 3: y }, [M, 1, 1], list);
    const rmsnormBack = (x: GPUBuffer, gain: GPUBuffer, dy: GPUBuffer, dx: GPUBuffer, list: D[]) =>
      d('rmsnorm_bwd', rmsnormBackwardShader(), { 0: uni('rmsnorm_bwd', [M, Dm, { f32: cfg.rmsNormEps }]), 1: x, 2: gain, 3: dy, 4: dx }, [M, 1, 1], list);
    /** Forward matmul (one dispatch per shard), optionally with the LoRA epilogue. */
    const matmul = (
      label: string, x: GPUBuffer, m: Matrix, out: GPUBuffer, ldo: number, nOff: number, o: Partial<MatmulOptions>,
      lora: { lg: LoraGroupBuffers; u: GPUBuffer } | null, bias: GPUBuffer | null, list: D[], stepU = step, rows = M,
    ) => {
      const opts: MatmulOptions = { f16, norm: false, bias: !!bias, swiglu: false, residual: false, last: false, lora: !!lora, ...o };
      const variant = rows <= GEMV_MAX_ROWS ? 'gemv' : 'gemm';
      const code = matmulShader(variant, opts, m.k);
      const lg = lora?.lg;
      const seg1 = lg ? (lg.G >= 2 ? lg.offsets[1] : 0xffffffff) : 0xffffffff;
      const seg2 = lg ? (lg.G === 3 ? lg.offsets[2] : 0xffffffff) : 0xffffffff;
      for (const s of m.shards) {
        const p = uni(`${label}.params`, [s.rows, m.k, m.ldw, m.k, ldo, nOff + s.rowStart, { f32: cfg.rmsNormEps }, 0, R, lg?.G ?? 0, lg?.N ?? 0, seg1, seg2, 0]);
        const bindings: GPUBuffer[] = [p, stepU, x, s.buffer];
        if (bias) bindings.push(bias);
        bindings.push(out);
        if (lora) bindings.push(rowInfo, lora.u, lora.lg.b);
        const grid: [number, number, number] = variant === 'gemv'
          ? grid2d(Math.ceil(s.rows / gemvCols(m.k))) : [Math.ceil(s.rows / GEMM_TILE), Math.ceil(rows / GEMM_TILE), 1];
        d(label, code, Object.fromEntries(bindings.map((b, i) => [i, b])), grid, list);
      }
    };
    /** dX (+)= dY[:, yOff + shard rows] W_shard for every shard. */
    const matmulNN = (label: string, dy: GPUBuffer, ldy: number, yOff: number, m: Matrix, dx: GPUBuffer, accumulate: boolean, list: D[], rows = M, yRow = 0, outRow = 0) => {
      m.shards.forEach((s, i) => {
        const p = uni(`${label}.params`, [rows, s.rows, m.k, ldy, yOff + s.rowStart, m.ldw, m.k, outRow, yRow]);
        d(label, matmulNNShader(f16, accumulate || i > 0), { 0: p, 1: dy, 2: s.buffer, 3: dx }, [Math.ceil(m.k / 64), Math.ceil(rows / 64), 1], list);
      });
    };
    const loraP = (salt: number, K: number, G: number, ldy: number, yOff: number, outF: number, bRows: number, bRow0: number, seg: number) =>
      uni('lora.params', [M, K, G, R, K, slot, salt, { f32: dropout }, ldy, yOff, outF, bRows, bRow0, seg, { f32: scaling }, 0]);
    const shrink = (l: number, group: LoraGroupName, x: GPUBuffer, list: D[]) => {
      const lg = bank.group(l, group)!;
      const p = loraP(l * 4 + ['qkv', 'o', 'gate_up', 'down'].indexOf(group), lg.K, lg.G, 0, 0, 0, lg.N, 0, 0);
      d('lora_shrink_train', loraShrinkTrainShader(), { 0: p, 1: x, 2: lg.a, 3: a.u[group], 9: this.seed }, [Math.ceil((M * lg.G * R) / 64), 1, 1], list);
    };
    /** LoRA backward of a group: dB, dA, and dX += ... ; dy holds the group's output gradient. */
    const loraBack = (l: number, group: LoraGroupName, x: GPUBuffer, dy: GPUBuffer, ldy: number, segOffsets: number[], dx: GPUBuffer, list: D[]) => {
      const lg = bank.group(l, group)!;
      const tp = this.params.find((t) => t.layer === l && t.group === group)!;
      const salt = l * 4 + ['qkv', 'o', 'gate_up', 'down'].indexOf(group);
      for (let g = 0; g < lg.G; g++) {
        const outF = (g + 1 < lg.G ? lg.offsets[g + 1] : lg.N) - lg.offsets[g];
        const p = loraP(salt, lg.K, lg.G, ldy, segOffsets[g], outF, lg.N, lg.offsets[g], g);
        d('lora_w', loraWShader(), { 0: p, 1: dy, 2: lg.b, 3: a.lw }, [Math.ceil((M * R) / 64), 1, 1], list);
        d('lora_dB', loraGradBShader(), { 0: p, 1: dy, 2: a.u[group], 3: tp.gB }, [Math.ceil((outF * R) / 64), 1, 1], list);
      }
      const p = loraP(salt, lg.K, lg.G, ldy, 0, 0, lg.N, 0, 0);
      d('lora_dA', loraGradAShader(), { 0: p, 1: x, 2: a.lw, 3: tp.gA, 9: this.seed }, [Math.ceil((lg.G * R * lg.K) / 64), 1, 1], list);
      d('lora_dX', loraGradXShader(), { 0: p, 1: a.lw, 2: lg.a, 3: dx, 9: this.seed }, [Math.ceil((M * lg.K) / 64), 1, 1], list);
    };
    const on = (l: number, g: LoraGroupName) => (this.#adapted(l, g) ? bank.group(l, g)! : null);

    const attnP = uni('attn.params', [H, Hkv, T, { f32: 1 / Math.sqrt(Dh) }]);
    const ropeP = uni('rope.params', [H, Hkv, Dh, T]);
    /** A layer's forward from xs[l]; with `full`, x_{l+1} too (the backward recompute stops before the down matmul). */
    const layerForward = (l: number, full: boolean, list: D[]) => {
      const lw = w.layers[l];
      const x = xs[l];
      rmsnorm(x, lw.attnNorm, a.xn, list);
      if (on(l, 'qkv')) shrink(l, 'qkv', a.xn, list);
      matmul(`L${l}.qkv`, a.xn, lw.qkv, a.qkv, Nqkv, 0, {}, on(l, 'qkv') ? { lg: on(l, 'qkv')!, u: a.u.qkv } : null, lw.qkvBias, list);
      d('rope', ropeKvShader(), { 0: ropeP, 1: step, 2: a.qkv, 3: rowInfo, 4: invFreq, 5: a.q, 6: a.kc, 7: a.vc }, elems(M * (H + 2 * Hkv) * (Dh / 2)), list);
      d('attention', attentionShader(Dh), { 0: attnP, 1: step, 2: a.q, 3: rowInfo, 4: a.kc, 5: a.vc, 6: a.att, 7: a.lse }, [H, M, 1], list);
      copy(x, a.xmid, M * Dm, list);
      if (on(l, 'o')) shrink(l, 'o', a.att, list);
      matmul(`L${l}.o`, a.att, lw.o, a.xmid, Dm, 0, { residual: true }, on(l, 'o') ? { lg: on(l, 'o')!, u: a.u.o } : null, null, list);
      rmsnorm(a.xmid, lw.mlpNorm, a.xn, list);
      if (on(l, 'gate_up')) shrink(l, 'gate_up', a.xn, list);
      const gu = on(l, 'gate_up') ? { lg: on(l, 'gate_up')!, u: a.u.gate_up } : null;
      matmul(`L${l}.gate`, a.xn, lw.gate, a.gu, 2 * F, 0, {}, gu, null, list);
      matmul(`L${l}.up`, a.xn, lw.up, a.gu, 2 * F, F, {}, gu, null, list);
      d('swiglu', swigluShader(), { 0: uni('swiglu', [M, F]), 1: a.gu, 2: a.h }, elems(M * F), list);
      if (on(l, 'down')) shrink(l, 'down', a.h, list);
      if (full) {
        copy(a.xmid, xs[l + 1], M * Dm, list);
        matmul(`L${l}.down`, a.h, lw.down, xs[l + 1], Dm, 0, { residual: true }, on(l, 'down') ? { lg: on(l, 'down')!, u: a.u.down } : null, null, list);
      }
    };
    const layerBackward = (l: number, list: D[]) => {
      const lw = w.layers[l];
      // down: dh = dx Wd (+ LoRA)
      matmulNN(`L${l}.down.bwd`, a.dx, Dm, 0, lw.down, a.dh, false, list);
      if (on(l, 'down')) loraBack(l, 'down', a.h, a.dx, Dm, [0], a.dh, list);
      d('swiglu_bwd', swigluBackwardShader(), { 0: uni('swiglu', [M, F]), 1: a.gu, 2: a.dh, 3: a.dgu }, elems(M * F), list);
      // gate | up: dxn2 = dg Wg + du Wu (+ LoRA), then the norm
      matmulNN(`L${l}.gate.bwd`, a.dgu, 2 * F, 0, lw.gate, a.dxn, false, list);
      matmulNN(`L${l}.up.bwd`, a.dgu, 2 * F, F, lw.up, a.dxn, true, list);
      if (on(l, 'gate_up')) loraBack(l, 'gate_up', a.xn, a.dgu, 2 * F, [0, F], a.dxn, list);
      rmsnormBack(a.xmid, lw.mlpNorm, a.dxn, a.dx, list);
      // o: datt = dx Wo (+ LoRA)
      matmulNN(`L${l}.o.bwd`, a.dx, Dm, 0, lw.o, a.datt, false, list);
      if (on(l, 'o')) loraBack(l, 'o', a.att, a.dx, Dm, [0], a.datt, list);
      const bwdP = uni('attn_bwd', [H, Hkv, T, { f32: 1 / Math.sqrt(Dh) }, M]);
      d('attention_dq', attentionBackwardDqShader(Dh), { 0: bwdP, 1: a.q, 2: a.kc, 3: a.vc, 4: a.att, 5: a.datt, 6: a.lse, 7: a.dq }, [H, M, 1], list);
      d('attention_dkv', attentionBackwardDkvShader(Dh), { 0: bwdP, 1: a.q, 2: a.kc, 3: a.vc, 4: a.att, 5: a.datt, 6: a.lse, 7: a.dk, 8: a.dv }, [Hkv, M, 1], list);
      d('rope_bwd', ropeBackwardShader(), { 0: uni('rope_bwd', [H, Hkv, Dh, T, M]), 1: a.dq, 2: a.dk, 3: a.dv, 4: invFreq, 5: a.dqkv }, elems(M * (H + 2 * Hkv) * (Dh / 2)), list);
      // qkv: dxn1 = dqkv Wqkv (+ LoRA), then the norm (the LoRA input was xn1: recompute it into xn)
      rmsnorm(xs[l], lw.attnNorm, a.xn, list);
      matmulNN(`L${l}.qkv.bwd`, a.dqkv, Nqkv, 0, lw.qkv, a.dxn, false, list);
      if (on(l, 'qkv')) loraBack(l, 'qkv', a.xn, a.dqkv, Nqkv, [0, H * Dh, (H + Hkv) * Dh], a.dxn, list);
      rmsnormBack(xs[l], lw.attnNorm, a.dxn, a.dx, list);
    };

    // ---- one micro-step ----
    for (const list of [this.micro, this.forwardOnly]) {
      for (const s of w.embed.shards) {
        d('embed', embedShader(f16), { 0: uni('embed', [Dm, s.rowStart, s.rows, w.embed.ldw]), 1: step, 2: s.buffer, 3: this.tokens, 4: xs[0] }, elems(M * Dm), list);
      }
      for (let l = 0; l < L; l++) layerForward(l, true, list);
      rmsnorm(xs[L], w.finalNorm, a.xn, list);
      if (list === this.micro) fill(a.dxn, M * Dm, list);
      for (let c0 = 0; c0 < M; c0 += chunk) {
        const rows = Math.min(chunk, M - c0);
        const stepC = uni('train.chunk_step', [rows, rows, 1, c0]);
        matmul('lm_head', a.xn, w.lmHead, logits, V, 0, { last: true }, null, null, list, stepC, rows);
        const ce = uni('ce', [rows, V, c0, { f32: 0 }]);
        this.ceParams.push(ce);
        d('cross_entropy', crossEntropyShader(), { 0: ce, 1: logits, 2: this.labels, 3: this.loss }, [rows, 1, 1], list);
        if (list === this.micro) matmulNN('lm_head.bwd', logits, V, 0, w.lmHead, a.dxn, true, list, rows, 0, c0);
      }
    }
    fill(a.dx, M * Dm, this.micro);
    rmsnormBack(xs[L], w.finalNorm, a.dxn, a.dx, this.micro);
    for (let l = L - 1; l >= 0; l--) {
      layerForward(l, false, this.micro);
      layerBackward(l, this.micro);
    }

    // ---- optimizer step ----
    this.params.forEach((tp, i) => {
      d('sumsq', sumSquaresShader(), { 0: uni('sumsq', [tp.nA, 2 * i]), 1: tp.gA, 2: partials }, [1, 1, 1], this.optimizer);
      d('sumsq', sumSquaresShader(), { 0: uni('sumsq', [tp.nB, 2 * i + 1]), 1: tp.gB, 2: partials }, [1, 1, 1], this.optimizer);
    });
    d('clip', clipShader(), { 0: uni('clip', [2 * this.params.length, { f32: maxGradNorm }]), 1: partials, 2: this.norm }, [1, 1, 1], this.optimizer);
    for (const tp of this.params) {
      const offA = slot * tp.lg.G * R * tp.lg.K;
      const offB = slot * tp.lg.N * R;
      d('adamw', adamwShader(), { 0: uni('adamw', [tp.nA, offA, { f32: 1 }, 0]), 1: this.optStep, 2: tp.a, 3: tp.gA, 4: tp.mA, 5: tp.vA, 6: this.norm, 7: tp.lg.a }, elems(tp.nA), this.optimizer);
      d('adamw', adamwShader(), { 0: uni('adamw', [tp.nB, offB, { f32: scaling }, 0]), 1: this.optStep, 2: tp.b, 3: tp.gB, 4: tp.mB, 5: tp.vB, 6: this.norm, 7: tp.lg.b }, elems(tp.nB), this.optimizer);
    }
    this.bytes = gpu.allocatedBytes - before;
  }

  #adapted(layer: number, group: LoraGroupName): boolean {
    return this.params.some((p) => p.layer === layer && p.group === group);
  }

  encode(pass: GPUComputePassEncoder, list: D[]): void {
    for (const x of list) {
      pass.setPipeline(x.pipeline);
      pass.setBindGroup(0, x.bindGroup);
      pass.dispatchWorkgroups(...x.grid);
    }
  }

  destroy(): void {
    for (const b of this.#alloc) this.gpu.destroyBuffer(b);
  }
}
