// The forward pass on the GPU. Buffers, pipelines, bind groups and uniforms are created once here; a call to
// `forward` writes the step's inputs (one writeBuffer each for tokens, row info and the step uniform), encodes every
// dispatch into one compute pass, submits once and reads back only the top-k candidates of each sequence.
//
// Letters: M token rows in the call, S sequences projected to logits, D hidden, F intermediate, H/Hkv heads,
// Dh head dim, V vocab, C context length, R most rows per call.
//
// Per layer: the ops of model/layer.ts with each norm folded into the matmul after it and the GLU into the gate|up
// matmul (6 dispatches, plus a LoRA shrink before each adapted matmul; Gemma: 2 post-norms, Qwen3/Gemma 3: q/k norms):
//   qkv  = rmsnorm(x) @ Wqkv^T (+ b)         (M, (H+2Hkv)Dh)
//   q, K/V cache <- rope(qkv)                  (M, H, Dh)
//   a    = attention(q, K, V)                  (M, H, Dh)
//   x   += a @ Wo^T                            (M, D)
//   h    = silu(rmsnorm(x) @ Wg^T) * (.. @ Wu^T)  (M, F)
//   x   += h @ Wd^T                            (M, D)
// then logits = rmsnorm(x[last rows]) @ Wlm^T (S, V) and two top-k dispatches.

import type { Gpu } from '../gpu/device.js';
import { readFloats } from '../gpu/readback.js';
import { DispatchBuilder, profileEach, type Dispatch, type Grid } from '../gpu/kernel.js';
import { packParams, paramOffset, type Kernel } from '../gpu/program.js';
import { attentionKernel } from '../kernels/attention.js';
import { manyRowsAttention } from '../kernels/attention-rows.js';
import { NONE, ROW_INFO_LAYOUT, ROW_INFO_WORDS, STEP_LAYOUT } from '../kernels/common.js';
import { packBlock, packRecords, readRecord } from '../gpu/layout.js';
import { embedKernel } from '../kernels/embed.js';
import { gatherTargetKernel } from '../kernels/gather.js';
import { loraShrinkKernel } from '../kernels/lora-shrink.js';
import { matmulProgram, matmulVariant, type MatmulOptions } from '../kernels/matmul.js';
import { qkNormKernel } from '../kernels/qk-norm.js';
import { ropeKvKernel } from '../kernels/rope.js';
import { addNormKernel } from '../kernels/add-norm.js';
import { softcapKernel } from '../kernels/softcap.js';
import { TOPK, TOPK_CHUNK, TOPK_ROW_LAYOUT, TOPK_ROW_WORDS, top1Stage1Kernel, top1Stage2Kernel, topkStage1Kernel, topkStage2Kernel } from '../kernels/topk.js';
import type { LoadedModel } from './loaded.js';
import type { LoraEpilogue, LoraGroupName } from './lora-epilogue.js';
import { actWidth, fuseForInference, layerOps, layerSpec, loraSegments, type Act } from './layer.js';
import { ropeInvFreq, ropeScale, ropeTable, type ModelConfig } from './config.js';
import type { Matrix, ModelWeights } from './weights.js';

export interface RunnerOptions {
  /** KV cache slots: sequences that can be alive at once. */
  slots: number;
  /** Context length of each slot (tokens). */
  contextLength: number;
  /** Most token rows in one forward call (prefill chunk). */
  maxRows: number;
  /**
   * Most rows projected to logits in one call (default: slots). Teacher-forced scoring projects many rows of one
   * sequence at once; the logits and top-k buffers are sized by it (maxSeqs x vocabulary x 4 bytes).
   */
  maxSeqs?: number;
}

export interface StepInput {
  tokens: ArrayLike<number>;    // (M) token ids
  slots: ArrayLike<number>;     // (M) KV slot of each row
  positions: ArrayLike<number>; // (M) position of each row in its sequence
  /** (M) LoRA slot of each row (0 or absent: base model) and its strength (default 1). */
  loraSlots?: ArrayLike<number>;
  loraScales?: ArrayLike<number>;
  /** Sequences projected to logits: sequence s's last row is s * lastStride + lastOffset. */
  seqs: number;
  lastStride: number;
  lastOffset: number;
  /** (seqs) Teacher forcing: each sequence's target token, whose logit comes back as `Candidates.target`. */
  targets?: ArrayLike<number>;
  /**
   * Quick start: an op whose variant for these rows is not compiled yet runs its one-row variant instead, where that
   * takes any number of rows (CPU adapters: the broadcast matmul and the every-device attention loop over the rows), and
   * the variant it skipped is kept for `compileDeferred`. The first answer of a page then compiles only the kernels its
   * decoding needs anyway. Rows computed so are bit for bit those of decoding them one at a time.
   */
  quick?: boolean;
}

export interface Candidates {
  /** log-sum-exp of the penalized logits divided by the temperature, over the whole vocabulary. */
  lse: number;
  ids: Int32Array;     // (TOPK) best first
  logits: Float32Array; // (TOPK) penalized logits, not divided by the temperature
  /** The raw logit of StepInput.targets[s], when targets were given. */
  target?: number;
}

export interface RunnerStats {
  forwards: number;
  /** Forwards and fills that ran an op on its one-row variant because its own was not compiled yet (`quick`). */
  quickSteps: number;
  /** KV-only prompt chunks (`fill`): submitted, never read back. */
  fills: number;
  dispatches: number;
  submits: number;
  readbackBytes: number;
}

interface Op {
  label: string;
  /**
   * Variants for one row (decode), for a few rows (gemv) and for many; the same dispatch for kernels without variants.
   * A matmul's variants are made on first use (getters): a chat never needs the gemv for 2-8 rows, nor the lm_head's
   * gemm, and a first compile costs seconds on a software GPU.
   */
  one: Dispatch;
  small: Dispatch;
  large: Dispatch;
  /** Rows this op iterates over: the call's rows or its sequences. */
  over: 'rows' | 'seqs';
  /** The grid of variant `v` over `rows` rows. */
  grid: (rows: number, v: Variant) => Grid;
  /** The kernel of variant `v` while it is not made yet (its pipeline to compile), else null. */
  pending?: (v: Variant) => Kernel | null;
  /** Its one-row variant takes any number of rows (a quick step's stand-in for the others). */
  anyRows?: boolean;
}

type Variant = ReturnType<typeof matmulVariant>;

const STORAGE = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;

export class ModelRunner<L extends LoraEpilogue = LoraEpilogue> {
  readonly cfg: ModelConfig;
  readonly weights: ModelWeights;
  private readonly gpu: Gpu;
  readonly stats: RunnerStats = { forwards: 0, quickSteps: 0, fills: 0, dispatches: 0, submits: 0, readbackBytes: 0 };
  readonly kvCacheBytes: number;
  /**
   * KV cache rows of each layer: the context, or on a layer with a sliding window W the W + R - 1 rows it can need (a
   * ring: position p at row p mod rows; a call's R rows are written before its queries read the last W keys).
   */
  readonly kvRows: readonly number[];
  /** Resident LoRA adapters; adding one rebuilds the small LoRA buffers and this runner's bind groups only. */
  readonly lora: L;
  /** The model's dispatches, embedding to logits. */
  #ops: Op[] = [];
  /**
   * A forward's dispatches: the model's, then the candidates' two, either a sort's TOPK or the best token alone
   * (greedy decoding, scoring). Built with the ops, never per step; the candidates' kernels are made on first use.
   */
  #forwardOps: Record<'topk' | 'best', Op[]> = { topk: [], best: [] };
  /** The ops up to the last layer's KV write: what a prompt chunk whose logits nobody reads runs. */
  #fillOps: Op[] = [];
  #candidates: 1 | typeof TOPK = TOPK;
  #opsVersion = -1;
  readonly #maxRows: number;
  readonly #step: GPUBuffer;
  readonly #tokens: GPUBuffer;
  readonly #rowInfo: GPUBuffer;
  readonly #act: Record<'x' | 'qkv' | 'q' | 'attn' | 'lse' | 'h' | 'y' | 'rope' | 'ropeLocal' | 'ropeNone' | 'cand' | 'candStats', GPUBuffer>;
  readonly #logits: GPUBuffer;
  readonly #seen: GPUBuffer;
  readonly #seenWords: number;
  readonly #topkParams: GPUBuffer;
  readonly #result: GPUBuffer;
  readonly #staging: GPUBuffer;
  readonly #targets: GPUBuffer;
  readonly #targetLogits: GPUBuffer;
  #gather: Dispatch | null = null;
  readonly #kv: { k: GPUBuffer; v: GPUBuffer }[] = [];
  /** One slot's KV rows, for copySlot (made on first use). */
  #copyScratch: GPUBuffer | null = null;
  readonly #maxSeqs: number;
  #loraU: GPUBuffer | null = null;
  /** Builds (and owns the uniforms of) the ops; replaced when the resident adapters change. */
  #builder: DispatchBuilder;
  #busy = false;

  /** The runner adds its own buffers (KV cache, activations) over `model`, which it does not own. */
  constructor(readonly model: LoadedModel<L>, readonly opts: RunnerOptions) {
    const gpu = (this.gpu = model.gpu);
    const cfg = (this.cfg = model.config);
    this.weights = model.weights;
    const { hiddenSize: D, intermediateSize: F, numHeads: H, numKvHeads: Hkv, headDim: Dh, vocabSize: V } = cfg;
    const R = (this.#maxRows = Math.max(opts.maxRows, opts.slots));
    const S = opts.slots;
    const Q = (this.#maxSeqs = Math.min(R, Math.max(S, opts.maxSeqs ?? S)));
    const C = opts.contextLength;
    this.lora = model.lora;
    this.#builder = new DispatchBuilder(gpu);
    const buf = (label: string, bytes: number) => gpu.createBuffer(label, bytes, STORAGE());

    this.#step = gpu.createBuffer('step', 16, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
    this.#tokens = buf('tokens', R * 4);
    this.#rowInfo = buf('rowInfo', R * ROW_INFO_WORDS * 4);
    const chunks = Math.ceil(V / TOPK_CHUNK);
    this.#act = {
      x: buf('x', R * D * 4),
      qkv: buf('qkv', R * (H + 2 * Hkv) * Dh * 4),
      q: buf('q', R * H * Dh * 4),
      attn: buf('attn', R * H * Dh * 4),
      lse: buf('attn_lse', R * H * 4),
      h: buf('mlp_h', R * F * 4),
      // Gemma: the attention or MLP output, before its post-norm adds it to x.
      y: buf('post_norm_in', cfg.sandwichNorms ? R * D * 4 : 16),
      rope: buf('rope_table', C * (cfg.rotaryDim / 2) * 8),
      // Gemma 3's sliding layers rotate with their own base (rope_local_base_freq), unscaled.
      ropeLocal: buf('rope_local', cfg.localRopeTheta !== null ? C * (cfg.rotaryDim / 2) * 8 : 16),
      // (cos, sin) = (1, 0) at every position: the layers without RoPE run the same kernel, rotating by nothing.
      ropeNone: buf('rope_identity', cfg.ropeLayers?.includes(false) ? C * (cfg.rotaryDim / 2) * 8 : 16),
      cand: buf('topk_cand', Q * chunks * TOPK * 8),
      candStats: buf('topk_stats', Q * chunks * 8),
    };
    this.#logits = buf('logits', Q * V * 4);
    this.#seenWords = Math.ceil(V / 32);
    this.#seen = buf('seen', S * this.#seenWords * 4);
    this.#result = buf('topk_result', Q * TOPK_ROW_WORDS * 4);
    this.#staging = gpu.createBuffer('topk_staging', Q * (TOPK_ROW_WORDS + 1) * 4, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
    this.#targets = buf('targets', Q * 4);
    this.#targetLogits = buf('target_logits', Q * 4);
    gpu.device.queue.writeBuffer(this.#act.rope, 0, ropeTable(ropeInvFreq(cfg, C), C, ropeScale(cfg)));
    if (cfg.ropeLayers?.includes(false)) gpu.device.queue.writeBuffer(this.#act.ropeNone, 0, ropeTable(new Float64Array(cfg.rotaryDim / 2), C));
    if (cfg.localRopeTheta !== null) gpu.device.queue.writeBuffer(this.#act.ropeLocal, 0, ropeTable(ropeInvFreq({ ...cfg, ropeTheta: cfg.localRopeTheta, ropeScaling: null }), C));
    this.kvRows = Object.freeze(Array.from({ length: cfg.numLayers }, (_, l) => {
      const { window } = layerSpec(cfg, l);
      return window > 0 ? Math.min(C, window + R - 1) : C;
    }));
    const kvBytes = (l: number) => S * Hkv * this.kvRows[l] * Dh * 4;
    for (let l = 0; l < cfg.numLayers; l++) this.#kv.push({ k: buf(`L${l}.k_cache`, kvBytes(l)), v: buf(`L${l}.v_cache`, kvBytes(l)) });
    this.kvCacheBytes = this.kvRows.reduce((t, _, l) => t + 2 * kvBytes(l), 0);
    this.#topkParams = gpu.createBuffer('topk.params', 16, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
    gpu.device.queue.writeBuffer(this.#topkParams, 0, packParams(topkStage1Kernel(), { V, chunks, penalty: 1, invTemp: 1 }));
    this.#buildOps();
  }

  /** Frees every buffer this runner created (activations, KV cache, uniforms); the model's are the model's. */
  destroy(): void {
    const g = this.gpu;
    for (const b of [this.#step, this.#tokens, this.#rowInfo, ...Object.values(this.#act), this.#logits, this.#seen, this.#topkParams,
      this.#result, this.#staging, this.#targets, this.#targetLogits, ...this.#kv.flatMap((kv) => [kv.k, kv.v])]) g.destroyBuffer(b);
    if (this.#loraU) g.destroyBuffer(this.#loraU);
    if (this.#copyScratch) g.destroyBuffer(this.#copyScratch);
    this.#copyScratch = null;
    this.#builder.destroy();
    this.#loraU = null;
    this.#ops = [];
    this.#forwardOps = { topk: [], best: [] };
  }

  /** Resolves every dispatch of a forward: pipelines (cached per device), bind groups and static uniforms. Runs at
   * load and when the set of resident adapters changes, never per step. */
  #buildOps(): void {
    const gpu = this.gpu;
    const { cfg, weights } = this;
    const { hiddenSize: D, numHeads: H, numKvHeads: Hkv, headDim: Dh, vocabSize: V } = cfg;
    const C = this.opts.contextLength;
    const a = this.#act;
    this.#builder.destroy();
    if (this.#loraU) gpu.destroyBuffer(this.#loraU);
    this.#loraU = this.lora.rank > 0 ? gpu.createBuffer('lora_u', this.#maxRows * 3 * this.lora.rank * 4, STORAGE()) : null;
    this.#ops = [];
    this.#opsVersion = this.lora.version;
    const b = this.#builder;
    const op = (d: Dispatch, over: Op['over'], grid: (rows: number) => Grid) => this.#ops.push({ label: d.label, one: d, small: d, large: d, over, grid });
    const common = { S: this.#step, rowInfo: this.#rowInfo };

    const embed = embedKernel(weights.embed.format);
    for (const shard of weights.embed.shards) {
      op(b.dispatch(embed, { K: D, rowStart: shard.rowStart, rowCount: shard.rows, ldw: weights.embed.ldw, scale: cfg.embedScale }, { S: this.#step, E: shard.buffer, tokens: this.#tokens, x: a.x }, [0, 0, 0]), 'rows', (rows) => embed.grid({ rows, D }));
    }
    const rope = ropeKvKernel();
    const attention = attentionKernel(Dh);
    const manyRows = manyRowsAttention(Dh, this.gpu.subgroup);
    // Uniform blocks by the layer's cache rows (and window and soft-cap): a model has one or two kinds of layer.
    const ropeP = new Map<number, GPUBuffer>();
    const ropeParams = (rows: number) => ropeP.get(rows) ?? ropeP.set(rows, b.params(rope, { H, Hkv, Dh, C: rows, R: cfg.rotaryDim })).get(rows)!;
    const qkNorm = qkNormKernel(true);
    const qkNormP = b.params(qkNorm, { H, Hkv, Dh, eps: cfg.rmsNormEps });
    // One uniform block per window size (Gemma's sliding and global layers differ).
    const attnP = new Map<string, GPUBuffer>();
    const attnParams = (rows: number, window: number, softcap: number) => {
      const key = `${rows}:${window}:${softcap}`;
      return attnP.get(key) ?? attnP.set(key, b.params(attention, { H, Hkv, C: rows, scale: cfg.attentionScale, window, softcap })).get(key)!;
    };
    const addNorm = addNormKernel();
    const addNormP = b.params(addNorm, { K: D, eps: cfg.rmsNormEps });
    const tables = { global: a.rope, local: a.ropeLocal, none: a.ropeNone };
    // Each layer as model/layer.ts writes it, with the norms and the GLU folded into the matmuls.
    const act = { x: a.x, qkv: a.qkv, attn: a.attn, h: a.h, ya: a.y, ym: a.y } as Record<Act, GPUBuffer>;
    let kvWritten = 0; // ops up to the latest layer's KV write
    weights.layers.forEach((lw, l) => {
      const kv = this.#kv[l];
      for (const f of fuseForInference(layerOps(lw, layerSpec(cfg, l)))) {
        if (f.op === 'qknorm') op(b.dispatch(qkNorm, qkNormP, { S: this.#step, gain: f.gain, y: a.qkv }, [0, 0, 0], `L${l}.qk_norm`), 'rows', (rows) => qkNorm.grid({ rows, H, Hkv }));
        else if (f.op === 'rope') {
          op(b.dispatch(rope, ropeParams(this.kvRows[l]), { ...common, qkv: a.qkv, rope: tables[f.table], q: a.q, kc: kv.k, vc: kv.v }, [0, 0, 0], `L${l}.rope`), 'rows', (rows) => rope.grid({ rows, H, Hkv, Dh }));
          kvWritten = this.#ops.length;
        }
        else if (f.op === 'attention') {
          const params = attnParams(this.kvRows[l], f.window, f.softcap);
          const buffers = { ...common, q: a.q, kc: kv.k, vc: kv.v, out: a.attn, lse: a.lse };
          const few = b.dispatch(attention, params, buffers, [0, 0, 0], `L${l}.attention`);
          // Many rows on a CPU adapter: the kernel that loads each key once per subgroup (made on first use).
          const many = manyRows ? lazy(manyRows, () => b.dispatch(manyRows, params, buffers, [0, 0, 0], `L${l}.attention`)) : null;
          this.#ops.push({
            label: few.label, one: few, small: few, get large() { return many ? many.get() : few; }, over: 'rows',
            grid: (rows, v) => (v === 'gemm' && manyRows ? manyRows : attention).grid({ H, rows }),
            pending: (v) => (v === 'gemm' ? many?.pending() ?? null : null),
            anyRows: true,
          });
        }
        else if (f.op === 'addnorm') op(b.dispatch(addNorm, addNormP, { S: this.#step, y: act[f.in], gain: f.gain, x: a.x }, [0, 0, 0], `L${l}.post_norm`), 'rows', (rows) => addNorm.grid({ rows }));
        else {
          this.#linear(l, f.group, { norm: f.gain !== null, bias: f.bias !== null, swiglu: f.glu !== null, gelu: f.glu === 'gelu_tanh', residual: f.residual, last: false },
            { x: act[f.in], w: f.parts[0].w, w2: f.parts[1]?.w, gain: f.gain ?? undefined, bias: f.bias, out: act[f.out], ldo: actWidth(cfg, f.out) });
        }
      }
    });
    // A KV-only chunk stops at the last layer's KV write: that layer's attention and MLP feed only the logits.
    this.#fillOps = this.#ops.slice(0, kvWritten);
    this.#linear(-1, null, { norm: true, bias: false, swiglu: false, residual: false, last: true }, { x: a.x, w: weights.lmHead, gain: weights.finalNorm, out: this.#logits, ldo: V });
    if (cfg.finalSoftcap !== null) {
      const cap = softcapKernel();
      op(b.dispatch(cap, { V, softcap: cfg.finalSoftcap }, { S: this.#step, logits: this.#logits }, [0, 0, 0], 'final_softcap'), 'seqs', (seqs) => cap.grid({ seqs, V }));
    }
    const top = { S: this.#step, cand: a.cand, stats: a.candStats };
    const pick = (k1: Kernel, k2: Kernel, label: string): Op[] => [
      lazyOp(`${label}1`, k1, () => b.dispatch(k1, this.#topkParams, { ...top, ...common, logits: this.#logits, seen: this.#seen }, [0, 0, 0], `${label}1`), (seqs) => k1.grid({ V, seqs })),
      lazyOp(`${label}2`, k2, () => b.dispatch(k2, this.#topkParams, { ...top, result: this.#result }, [0, 0, 0], `${label}2`), (seqs) => k2.grid({ seqs })),
    ];
    this.#forwardOps = {
      topk: [...this.#ops, ...pick(topkStage1Kernel(), topkStage2Kernel(), 'topk')],
      best: [...this.#ops, ...pick(top1Stage1Kernel(), top1Stage2Kernel(), 'best')],
    };
    // Run only for teacher-forced steps (evaluation), after the logits.
    this.#gather = b.dispatch(gatherTargetKernel(), { V }, { S: this.#step, logits: this.#logits, targets: this.#targets, out: this.#targetLogits }, [0, 0, 0], 'gather_target');
  }

  /** A matmul (one dispatch per weight shard), preceded by the LoRA shrink when a resident adapter adapts it. */
  #linear(
    layer: number, group: LoraGroupName | null, o: Omit<MatmulOptions, 'format' | 'lora'>,
    t: { x: GPUBuffer; w: Matrix; w2?: Matrix; gain?: GPUBuffer; bias?: GPUBuffer | null; out: GPUBuffer; ldo: number },
  ): void {
    const b = this.#builder;
    const label = layer >= 0 ? `L${layer}.${group}` : 'lm_head';
    const lg = group ? this.lora.group(layer, group) : undefined;
    const rank = this.lora.rank;
    if (lg) {
      const shrink = loraShrinkKernel(o.norm);
      const d = b.dispatch(shrink, { K: lg.K, G: lg.G, rank, ldx: lg.K, eps: this.cfg.rmsNormEps },
        { S: this.#step, x: t.x, rowInfo: this.#rowInfo, loraA: lg.a, u: this.#loraU!, ...(o.norm ? { gain: t.gain! } : {}) }, [0, 0, 0], `${label}.lora_shrink`);
      this.#ops.push({ label: d.label, one: d, small: d, large: d, over: 'rows', grid: (rows) => shrink.grid({ rows }) });
    }
    const opts: MatmulOptions = { ...o, format: t.w.format, lora: !!lg };
    const one = matmulProgram('gemv1', opts, t.w.k, this.gpu);
    const small = matmulProgram('gemv', opts, t.w.k, this.gpu);
    const large = matmulProgram('gemm', opts, t.w.k, this.gpu);
    t.w.shards.forEach((shard, i) => {
      const p = b.params(small, {
        N: shard.rows, K: t.w.k, ldw: t.w.ldw, ldx: t.w.k, ldo: t.ldo, nOff: shard.rowStart, eps: this.cfg.rmsNormEps, rank, ...loraSegments(lg),
      }, `${label}.params`);
      const buffers: Record<string, GPUBuffer> = { S: this.#step, x: t.x, w: shard.buffer, out: t.out };
      if (t.w2) buffers.w2 = t.w2.shards[i].buffer;
      if (o.norm) buffers.gain = t.gain!;
      if (o.bias) buffers.bias = t.bias!;
      if (lg) Object.assign(buffers, { rowInfo: this.#rowInfo, loraU: this.#loraU!, loraB: lg.b });
      const variants = { gemv1: one, gemv: small, gemm: large };
      const [v1, vs, vl] = [one, small, large].map((k) => lazy(k, () => b.dispatch(k, p, buffers, [0, 0, 0], label)));
      const made = { gemv1: v1, gemv: vs, gemm: vl };
      this.#ops.push({
        label,
        get one() { return v1.get(); },
        get small() { return vs.get(); },
        get large() { return vl.get(); },
        over: o.last ? 'seqs' : 'rows',
        grid: (rows, v) => variants[v].grid({ N: shard.rows, rows }),
        pending: (v) => made[v].pending(),
        anyRows: this.gpu.subgroup > 0, // the broadcast matmul loops over the rows in blocks of its own (matmul.ts)
      });
    });
  }

  /**
   * Sets the repetition penalty (1 = off) and temperature used by the top-k kernels' penalty and log-sum-exp, and how
   * many candidates later forwards return: TOPK (sorted), or the best token alone (greedy decoding, scoring: a
   * reduction instead of a sort; the other entries come back empty, id -1). Greedy when the temperature is 0.
   */
  setSampling(repetitionPenalty: number, temperature: number, candidates: 1 | typeof TOPK = temperature === 0 ? 1 : TOPK): void {
    this.#candidates = candidates;
    const invTemp = temperature > 0 ? 1 / temperature : 1;
    const k = topkStage1Kernel();
    this.gpu.device.queue.writeBuffer(this.#topkParams, paramOffset(k, 'penalty'), new Float32Array([repetitionPenalty]));
    this.gpu.device.queue.writeBuffer(this.#topkParams, paramOffset(k, 'invTemp'), new Float32Array([invTemp]));
  }

  /** Clears the repetition-penalty mask of `slot` and marks `tokens` as seen. */
  resetSeen(slot: number, tokens: Iterable<number>): void {
    const words = new Uint32Array(this.#seenWords);
    for (const t of tokens) words[t >>> 5] |= 1 << (t & 31);
    this.gpu.device.queue.writeBuffer(this.#seen, slot * this.#seenWords * 4, words);
    this.#seenMirror.set(slot, words);
  }

  readonly #seenMirror = new Map<number, Uint32Array>();

  /** Marks one token as seen in `slot` (writes the one changed word). */
  markSeen(slot: number, token: number): void {
    const words = this.#seenMirror.get(slot) ?? new Uint32Array(this.#seenWords);
    this.#seenMirror.set(slot, words);
    const w = token >>> 5;
    const before = words[w];
    words[w] |= 1 << (token & 31);
    if (words[w] !== before) this.gpu.device.queue.writeBuffer(this.#seen, (slot * this.#seenWords + w) * 4, words, w, 1);
  }

  /**
   * Copies the KV cache of `from` into `to` for positions [0, length) (a shared prompt prefilled once). A ring layer's
   * rows of those positions are its first min(length, rows): position p lives at row p mod rows.
   */
  copySlot(from: number, to: number, length: number): void {
    const { numKvHeads: Hkv, headDim: Dh } = this.cfg;
    const C = this.opts.contextLength;
    // WebGPU refuses a copy whose source and destination are one buffer (a validation error, and nothing is copied):
    // each head's rows go through a scratch buffer, in order within one encoder.
    this.#copyScratch ??= this.gpu.createBuffer('copy_slot_scratch', Hkv * C * Dh * 4, GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST);
    const scratch = this.#copyScratch;
    const enc = this.gpu.device.createCommandEncoder({ label: 'copy_slot' });
    this.#kv.forEach(({ k, v }, l) => {
      const rows = this.kvRows[l];
      const bytes = Math.min(length, rows) * Dh * 4;
      for (const buf of [k, v]) {
        for (let hh = 0; hh < Hkv; hh++) enc.copyBufferToBuffer(buf, ((from * Hkv + hh) * rows) * Dh * 4, scratch, hh * bytes, bytes);
        for (let hh = 0; hh < Hkv; hh++) enc.copyBufferToBuffer(scratch, hh * bytes, buf, ((to * Hkv + hh) * rows) * Dh * 4, bytes);
      }
    });
    this.gpu.device.queue.submit([enc.finish()]);
  }

  /**
   * How much of a slot holding `held` positions a continuation may keep when it shares the first `shared` of them: all
   * of it, unless a ring layer has since written over keys the continuation's first query needs (positions
   * shared - W + 1 .. shared - 1, of which the ring keeps held - rows ..), then none.
   */
  reusablePrefix(shared: number, held: number): number {
    if (shared === 0) return 0;
    for (let l = 0; l < this.cfg.numLayers; l++) {
      const rows = this.kvRows[l];
      if (rows === this.opts.contextLength) continue;
      if (Math.max(0, shared - layerSpec(this.cfg, l).window + 1) < held - rows) return 0;
    }
    return shared;
  }

  /**
   * Writes the KV cache of `input`'s rows and nothing else: a prompt chunk before the last, whose logits nobody reads.
   * The dispatches up to the last layer's KV write (not that layer's attention and MLP, no lm_head, no top-k),
   * submitted without a readback, so the next chunk is queued at once: the queue runs them in order, and the forward
   * after them reads back when all are done. Errors show at the next forward.
   */
  async fill(input: Omit<StepInput, 'targets'>): Promise<void> {
    this.#check(input);
    this.#busy = true;
    try {
      const { enc, pass, dispatches } = await this.#encodeStep(input, 'fill');
      pass.end();
      this.gpu.device.queue.submit([enc.finish()]);
      this.stats.fills++;
      this.stats.dispatches += dispatches;
      this.stats.submits++;
    } finally {
      this.#busy = false;
    }
  }

  /** Runs the model on one batch of rows and returns the top-k candidates of each sequence's last row. */
  async forward(input: StepInput): Promise<Candidates[]> {
    this.#check(input);
    this.#busy = true;
    try {
      const q = this.gpu.device.queue;
      const { enc, pass, dispatches } = await this.#encodeStep(input, 'forward');
      const targets = input.targets !== undefined;
      if (targets) {
        const g = this.#gather!;
        pass.setPipeline(g.pipeline);
        pass.setBindGroup(0, g.bindGroup);
        const [gx, gy, gz] = gatherTargetKernel().grid({ seqs: input.seqs });
        pass.dispatchWorkgroups(gx, gy, gz);
      }
      pass.end();
      const resultBytes = input.seqs * TOPK_ROW_WORDS * 4;
      const bytes = resultBytes + (targets ? input.seqs * 4 : 0);
      enc.copyBufferToBuffer(this.#result, 0, this.#staging, 0, resultBytes);
      if (targets) enc.copyBufferToBuffer(this.#targetLogits, 0, this.#staging, resultBytes, input.seqs * 4);
      q.submit([enc.finish()]);
      this.stats.forwards++;
      this.stats.dispatches += dispatches;
      this.stats.submits++;
      this.stats.readbackBytes += bytes;

      await this.#staging.mapAsync(GPUMapMode.READ, 0, bytes);
      const words = new Uint32Array(this.#staging.getMappedRange(0, bytes).slice(0));
      this.#staging.unmap();
      this.gpu.check();
      const out = decodeCandidates(words, input.seqs);
      if (targets) {
        const t = new Float32Array(words.buffer, resultBytes, input.seqs);
        out.forEach((c, s) => { c.target = t[s]; });
      }
      return out;
    } finally {
      this.#busy = false;
    }
  }

  /**
   * A step's work up to its submit: the pipelines of the variants it needs for the first time created side by side
   * (`createComputePipelineAsync`: a browser compiles them on its GPU process's threads at once instead of one by one
   * as the step is encoded), then its inputs written and its ops encoded into a pass of a new encoder, left open.
   * Nothing is written before the wait; after it the rows' adapters are checked again and the ops rebuilt if the bank
   * changed meanwhile.
   */
  async #encodeStep(input: StepInput, kind: 'fill' | 'forward'): Promise<{ enc: GPUCommandEncoder; pass: GPUComputePassEncoder; dispatches: number }> {
    const ops = () => (kind === 'fill' ? this.#fillOps : this.#active());
    if (this.#opsVersion !== this.lora.version) this.#buildOps();
    const choose = () => ops().map((op) => this.#variantFor(op, input));
    let chosen = choose();
    const pending = ops().flatMap((op, i) => op.pending?.(chosen[i]) ?? []);
    if (pending.length > 0) {
      await this.gpu.pipelines.prepare(pending);
      this.gpu.check();
      this.#checkAdapters(input);
    }
    this.#writeInputs(input); // rebuilds the ops first when the adapter bank changed
    // After a wait the ops may have been rebuilt and skipped kernels compiled meanwhile: choose again.
    if (pending.length > 0) chosen = choose();
    const enc = this.gpu.device.createCommandEncoder({ label: kind });
    const pass = enc.beginComputePass({ label: kind });
    const list = ops();
    list.forEach((op, i) => this.#encodeOp(pass, op, rowsOf(op, input), chosen[i]));
    if (input.quick && chosen.some((v, i) => v !== matmulVariant(rowsOf(list[i], input)))) this.stats.quickSteps++;
    return { enc, pass, dispatches: list.length };
  }

  /**
   * The variant `op` runs for `input`'s rows: the one for its row count, or on a quick step, while that one's pipeline
   * is not made yet, the one-row variant where it takes any rows (the skipped kernel is kept for compileDeferred).
   */
  #variantFor(op: Op, input: StepInput): Variant {
    const v = matmulVariant(rowsOf(op, input));
    if (!input.quick || v === 'gemv1' || !op.anyRows) return v;
    const skipped = op.pending?.(v);
    if (!skipped || this.gpu.pipelines.has(skipped)) return v;
    this.#deferred.add(skipped);
    return 'gemv1';
  }

  /** Kernels quick steps skipped, not compiled yet. */
  readonly #deferred = new Set<Kernel>();

  /**
   * Compiles the variants quick steps skipped (createComputePipelineAsync: a browser compiles them on its GPU process's
   * threads while the page waits for the person), so later steps of many rows run them. Call it when the work that
   * wanted a quick start is done (after the first answer), not before: the compiles would share the CPU with it.
   * Resolves when they are made; a kernel that fails to compile is reported by the step that next needs it.
   */
  compileDeferred(): Promise<void> {
    const kernels = [...this.#deferred];
    this.#deferred.clear();
    return this.gpu.pipelines.prepare(kernels); // one that fails is skipped again by the next quick step, and retried
  }

  /** Bytes of the layers' weight matrices: what each row of a quick step streams (the one-row kernels read them per row). */
  get layerWeightBytes(): number {
    return this.weights.layers.reduce((t, l) => t + [l.qkv, l.o, l.gate, l.up, l.down].reduce((u, m) => u + m.shards.reduce((v, s) => v + s.buffer.size, 0), 0), 0);
  }

  /** Kernels quick steps skipped that compileDeferred has not been asked for yet. */
  get deferredKernels(): number {
    return this.#deferred.size;
  }

  /** The step's inputs: the step uniform, tokens and row info (three small writes); rebuilds ops if adapters changed. */
  #writeInputs(input: StepInput): void {
    const q = this.gpu.device.queue;
    q.writeBuffer(this.#step, 0, packBlock(STEP_LAYOUT, { rows: input.tokens.length, seqs: input.seqs, lastStride: input.lastStride, lastOffset: input.lastOffset }));
    q.writeBuffer(this.#tokens, 0, Uint32Array.from(input.tokens));
    q.writeBuffer(this.#rowInfo, 0, packRecords(ROW_INFO_LAYOUT, input.tokens.length, (m) => ({
      slot: input.slots[m], pos: input.positions[m], loraSlot: input.loraSlots?.[m] ?? 0, loraScale: input.loraScales?.[m] ?? 1,
    })));
    if (input.targets) q.writeBuffer(this.#targets, 0, Uint32Array.from(input.targets));
    if (this.#opsVersion !== this.lora.version) this.#buildOps();
  }

  #check(input: StepInput): void {
    this.gpu.check();
    if (this.#busy) throw new Error('ModelRunner.forward called while a forward is running; calls must be sequential');
    const M = input.tokens.length;
    const R = this.#maxRows;
    if (M < 1 || M > R) throw new RangeError(`forward takes 1..${R} rows, got ${M}`);
    if (input.seqs < 1 || input.seqs > this.#maxSeqs) throw new RangeError(`forward projects 1..${this.#maxSeqs} rows to logits, got ${input.seqs}`);
    if ((input.seqs - 1) * input.lastStride + input.lastOffset >= M) throw new RangeError('last-row layout points past the rows');
    if (input.targets && (input.targets.length !== input.seqs || [...Array.from(input.targets)].some((t) => !(t >= 0 && t < this.cfg.vocabSize)))) {
      throw new RangeError(`targets must be ${input.seqs} token ids inside the vocabulary`);
    }
    for (let m = 0; m < M; m++) {
      if (!(input.tokens[m] >= 0 && input.tokens[m] < this.cfg.vocabSize)) throw new RangeError(`token id ${input.tokens[m]} is outside the vocabulary (0..${this.cfg.vocabSize - 1})`);
      if (!(input.slots[m] >= 0 && input.slots[m] < this.opts.slots)) throw new RangeError(`slot ${input.slots[m]} out of range`);
      if (!(input.positions[m] >= 0 && input.positions[m] < this.opts.contextLength)) throw new RangeError(`position ${input.positions[m]} is past the context length ${this.opts.contextLength}`);
    }
    this.#checkAdapters(input);
  }

  #checkAdapters(input: StepInput): void {
    for (let m = 0; m < input.tokens.length; m++) {
      const ls = input.loraSlots?.[m] ?? 0;
      if (!(ls === 0 || this.lora.holds(ls))) throw new RangeError(`LoRA slot ${ls} holds no adapter`);
    }
  }

  /**
   * Dispatch-isolation profile, for the bench: each dispatch of a forward over `input` runs `reps` times alone in its
   * own submit, timed to completion, minus the time of an empty submit (after one warm-up of every pipeline). Returns
   * milliseconds per forward, summed by kind (the label without its layer: qkv, attention, gate_up, ...). Slow by
   * construction, never on the token path; repeating a dispatch changes activations and the KV cache of the slots
   * involved, so the runner's state is undefined afterwards: reset those slots.
   */
  async profile(input: StepInput, reps = 3): Promise<Map<string, number>> {
    this.#check(input);
    this.#writeInputs(input);
    return profileEach(this.gpu, this.#active(), (pass, op) => this.#encodeOp(pass, op, rowsOf(op, input)), (op) => op.label.replace(/^L\d+\./, ''), reps);
  }

  /**
   * Bytes a step over `input` reads at least once, from what its dispatches bind: each bound buffer counted once and
   * whole, except the KV cache (the positions each row attends to), an embedding that is not also the lm_head (the
   * rows looked up), the RoPE table (the rows' positions) and the activations (the step's rows of buffers sized for
   * the most rows). An upper bound on the step's unique reads, split into weights, KV cache and the rest
   * (activations, logits; uniforms aside). Repeated reads of one buffer within a step (a cache's job) are not counted.
   */
  readBytes(input: StepInput): { weights: number; kv: number; other: number } {
    const w = this.weights;
    const matrices = [w.embed, w.lmHead, ...w.layers.flatMap((l) => [l.qkv, l.o, l.gate, l.up, l.down])];
    const weightBuffers = new Set<GPUBuffer>([...matrices.flatMap((m) => m.shards.map((s) => s.buffer)), w.finalNorm,
      ...w.layers.flatMap((l) => [l.attnNorm, l.mlpNorm, l.qkvBias, l.qkNorm, l.postAttnNorm, l.postMlpNorm].filter((b): b is GPUBuffer => b !== null))]);
    const lmHead = new Set(w.lmHead.shards.map((s) => s.buffer));
    const kvBuffers = new Set(this.#kv.flatMap((kv) => [kv.k, kv.v]));
    // Activations are sized for the most rows (or sequences) a step takes: a step reads its own rows of them.
    const a = this.#act;
    const perRow = new Set([this.#tokens, this.#rowInfo, a.x, a.qkv, a.q, a.attn, a.lse, a.h, a.y, ...(this.#loraU ? [this.#loraU] : [])]);
    const perSeq = new Set([this.#logits, a.cand, a.candStats, this.#result]);
    const read = new Set<GPUBuffer>();
    for (const op of this.#active()) for (const b of dispatchOf(op, matmulVariant(rowsOf(op, input))).reads) read.add(b);
    const { numKvHeads: Hkv, headDim: Dh } = this.cfg;
    // Each row attends to positions 0 .. its own, in K and V of every layer.
    const positions = Array.from(input.positions).reduce((t, p) => t + p + 1, 0);
    const kv = read.has(this.#kv[0].k) ? 2 * this.cfg.numLayers * positions * Hkv * Dh * 4 : 0;
    let weights = 0;
    let other = 0;
    for (const b of read) {
      if (kvBuffers.has(b)) continue;
      if (b === a.rope || b === a.ropeLocal || b === a.ropeNone) { other += input.tokens.length * Dh * 4; continue; } // one (cos, sin) row of Dh / 2 pairs per row
      const embedShard = lmHead.has(b) ? undefined : w.embed.shards.find((s) => s.buffer === b);
      if (perRow.has(b)) other += (b.size * input.tokens.length) / this.#maxRows;
      else if (perSeq.has(b)) other += (b.size * input.seqs) / this.#maxSeqs;
      else if (!weightBuffers.has(b)) other += b.size;
      // An embedding shard that is not the lm_head: only the looked-up rows (at most one per token) are read.
      else if (embedShard) weights += Math.min(embedShard.rows, input.tokens.length) * (b.size / embedShard.rows);
      else weights += b.size;
    }
    return { weights, kv, other };
  }

  /** Encodes variant `v` of one op over `rows` rows, with its grid. */
  #encodeOp(pass: GPUComputePassEncoder, op: Op, rows: number, v: Variant = matmulVariant(rows)): void {
    const d = dispatchOf(op, v);
    pass.setPipeline(d.pipeline);
    pass.setBindGroup(0, d.bindGroup);
    pass.dispatchWorkgroups(...op.grid(rows, v));
  }

  /** Number of dispatches one forward encodes. */
  get dispatchesPerForward(): number {
    return this.#active().length;
  }

  /** The dispatches of a forward under the current sampling settings. */
  #active(): Op[] {
    return this.#forwardOps[this.#candidates === 1 ? 'best' : 'topk'];
  }

  /** Most rows one forward projects to logits (teacher-forced scoring fills them). */
  get maxSeqs(): number {
    return this.#maxSeqs;
  }

  /** Test and debugging aid: the logits of the last forward, (S, V). Not used on the token path. */
  readLogits(seqs: number): Promise<Float32Array> {
    return readFloats(this.gpu, this.#logits, seqs * this.cfg.vocabSize);
  }

}

/** A dispatch of `kernel` made on first use; until then `pending()` names the kernel (to compile ahead). */
function lazy(kernel: Kernel, make: () => Dispatch): { get: () => Dispatch; pending: () => Kernel | null } {
  let v: Dispatch | undefined;
  return { get: () => (v ??= make()), pending: () => (v ? null : kernel) };
}

/** An op of one dispatch of `kernel`, made when a forward first needs it. */
function lazyOp(label: string, kernel: Kernel, make: () => Dispatch, grid: Op['grid']): Op {
  const d = lazy(kernel, make);
  return { label, get one() { return d.get(); }, get small() { return d.get(); }, get large() { return d.get(); }, over: 'seqs', grid, pending: d.pending };
}

function decodeCandidates(words: Uint32Array, seqs: number): Candidates[] {
  return Array.from({ length: seqs }, (_, s) => {
    const { header, list } = readRecord(TOPK_ROW_LAYOUT, words, s);
    return {
      lse: header.lse,
      ids: Int32Array.from(list, (e) => (e.id === NONE ? -1 : e.id)),
      logits: Float32Array.from(list, (e) => e.logit),
    };
  });
}

/** The rows `op` iterates over in a call over `input`: the call's rows, or its sequences. */
function rowsOf(op: Op, input: StepInput): number {
  return op.over === 'rows' ? input.tokens.length : input.seqs;
}

/** The dispatch of variant `v` of `op`. */
function dispatchOf(op: Op, v: Variant): Dispatch {
  return v === 'gemv1' ? op.one : v === 'gemv' ? op.small : op.large;
}
