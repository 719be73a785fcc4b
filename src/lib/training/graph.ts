// One LoRA training micro-step on the GPU: forward through the frozen base (the same weight buffers inference uses)
// with the trained adapter in its bank slot, cross-entropy over the vocabulary in row chunks, and the backward pass
// to the LoRA weights. Every dispatch is resolved once here (the shapes are fixed: B sequences x T positions), so a
// step writes its inputs, encodes one compute pass, submits once, and reads back the per-row losses.
//
// Memory: the residual stream entering each layer is kept (L + 1 buffers of (M, D)); everything else of a layer is
// recomputed during the backward pass from that layer's input (activation checkpointing per layer), so activation
// memory is O(B T (D + F + H Dh) + L B T D), independent of the weights; logits are (chunk, V), not (M, V). The
// graphs of a run's length buckets share one set of activations, the longest's (ActivationArena).
// A reward model (settings.head) replaces the chunked cross-entropy by a scalar head on each sequence's last row and
// the pairwise loss (kernels/train/reward-head.ts); the head joins clipping and AdamW; no logits are computed.
// Letters: M = B T rows, D hidden, F intermediate, H/Hkv heads, Dh head dim, V vocab, R LoRA rank (bank's).

import type { Gpu } from '../gpu/device.js';
import { DispatchBuilder, encode, type Dispatch } from '../gpu/kernel.js';
import { attentionKernel } from '../kernels/attention.js';
import { manyRowsAttention } from '../kernels/attention-rows.js';
import { embedKernel } from '../kernels/embed.js';
import { GEMV_MAX_ROWS, matmulProgram, type MatmulOptions } from '../kernels/matmul.js';
import { ROW_INFO_LAYOUT, ROW_INFO_WORDS, STEP_LAYOUT } from '../kernels/common.js';
import { packBlock, packRecords, recordWords } from '../gpu/layout.js';
import { ropeKvKernel } from '../kernels/rope.js';
import { addNormKernel } from '../kernels/add-norm.js';
import { qkNormBackwardKernel, qkNormKernel } from '../kernels/qk-norm.js';
import { attentionBackwardDkvKernel, attentionBackwardDqKernel } from '../kernels/train/attention-backward.js';
import { attentionBackwardDkvRowsKernel, attentionBackwardDqRowsKernel } from '../kernels/train/attention-backward-rows.js';
import { crossEntropyKernel } from '../kernels/train/cross-entropy.js';
import { MAX_REWARD_BATCH, rewardHeadKernel } from '../kernels/train/reward-head.js';
import { LORA_TRAIN_PARAMS, SEED_LAYOUT, loraGradAKernel, loraGradBKernel, loraGradXKernel, loraShrinkTrainKernel, loraWKernel } from '../kernels/train/lora-backward.js';
import { matmulNNKernel, nnVec } from '../kernels/train/matmul-nn.js';
import { rmsnormBackwardKernel, rmsnormKernel } from '../kernels/train/norm.js';
import { ADAMW_STEP_LAYOUT, adamwKernel, clipKernel, sumSquaresKernel } from '../kernels/train/optimizer.js';
import { paramOffset } from '../gpu/program.js';
import { ropeBackwardKernel } from '../kernels/train/rope-backward.js';
import { swigluBackwardKernel, swigluKernel } from '../kernels/train/swiglu.js';
import { copyKernel, fillKernel } from '../kernels/train/util.js';
import { GROUP_MODULES, type LoraBank, type LoraGroupBuffers, type LoraGroupName } from '../lora/bank.js';
import { ropeInvFreq, ropeScale, ropeTable, type ModelConfig } from '../model/config.js';
import type { LoadedModel } from '../model/loaded.js';
import type { Matrix, ModelWeights } from '../model/weights.js';
import { actWidth, addsToStream, layerOps, layerSpec, loraSegments, type Act, type LayerOp, type LayerSpec } from '../model/layer.js';
import { activationFloats, largestBuffer, logitChunk } from './memory.js';
import { InvalidArgumentError } from '../errors.js';

export interface GraphShape {
  batch: number;    // B sequences per micro-step
  seqLen: number;   // T positions (cutoff); shorter examples are padded with masked labels
  /** Rows of logits computed at once. */
  logitChunk?: number;
}

/** The trainable tensors of one (layer, group): true A and B with their gradients and Adam moments. */
export interface TrainParams {
  layer: number;
  group: LoraGroupName;
  lg: LoraGroupBuffers;
  a: GPUBuffer; b: GPUBuffer; gA: GPUBuffer; gB: GPUBuffer;
  mA: GPUBuffer; vA: GPUBuffer; mB: GPUBuffer; vB: GPUBuffer;
  nA: number; nB: number;
}

/** The activations of one micro-step (f32). One layer's worth is live at a time, except the residual inputs xs. */
interface Activations {
  xs: GPUBuffer[];      // L + 1 x (M, D): each layer's input, and the final residual stream
  xn: GPUBuffer;        // (M, D) normalized input of the current matmul group
  xmid: GPUBuffer;      // (M, D) residual stream after attention
  qkv: GPUBuffer;       // (M, (H + 2 Hkv) Dh)
  qkvn: GPUBuffer;      // (M, (H + 2 Hkv) Dh) q and k heads normalized (Qwen3's q/k norms; 1 float otherwise)
  q: GPUBuffer;         // (M, H, Dh) rotated
  kc: GPUBuffer;        // (B, Hkv, T, Dh) rotated keys, cache layout
  vc: GPUBuffer;        // (B, Hkv, T, Dh)
  att: GPUBuffer;       // (M, H, Dh) attention output
  lse: GPUBuffer;       // (M, H) attention log-sum-exp
  gu: GPUBuffer;        // (M, 2F) gate | up
  h: GPUBuffer;         // (M, F) act(gate) * up
  ya: GPUBuffer;        // (M, D) Gemma: the attention output before its post-norm (1 float otherwise)
  ym: GPUBuffer;        // (M, D) Gemma: the MLP output before its post-norm
  dy: GPUBuffer;        // (M, D) the gradient of ya or of ym, whichever the backward is at
  logits: GPUBuffer;    // (chunk, V), then its gradient in place
  dx: GPUBuffer;        // (M, D) gradient of the residual stream
  dxn: GPUBuffer;       // (M, D) gradient of xn
  dh: GPUBuffer;        // (M, F)
  dgu: GPUBuffer;       // (M, 2F)
  datt: GPUBuffer;      // (M, H, Dh)
  dq: GPUBuffer;        // (M, H, Dh)
  dk: GPUBuffer;        // (B, Hkv, T, Dh)
  dv: GPUBuffer;        // (B, Hkv, T, Dh)
  dqkv: GPUBuffer;      // (M, (H + 2 Hkv) Dh)
  u: Record<LoraGroupName, GPUBuffer>; // (M, G, R) LoRA shrink outputs, kept for dB
  lw: GPUBuffer;        // (M, 3, R) dY B' per module
}

const STORAGE = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
const GROUPS: LoraGroupName[] = ['qkv', 'o', 'gate_up', 'down'];

/** Every buffer of a graph must fit one storage binding, or creating its bind group fails (and the driver prints to stdout). */
export function assertBindable(gpu: Gpu, model: LoadedModel<LoraBank>, shape: GraphShape): void {
  const largest = largestBuffer(model.config, shape.batch, shape.seqLen, model.lora.rank, gpu.maxBinding);
  if (largest.bytes > gpu.maxBinding) {
    throw new InvalidArgumentError(`A micro-batch of ${shape.batch} sequences of ${shape.seqLen} tokens needs a ${(largest.bytes / 1e6).toFixed(1)} MB buffer (${largest.name}), over the ${(gpu.maxBinding / 1e6).toFixed(1)} MB this GPU binds at once: lower the micro-batch to ${largest.maxBatch} or less, or the cutoff.`, { field: 'microBatch', maxBatch: largest.maxBatch });
  }
}

/**
 * The activations of micro-batches of up to `rows` rows, shared by the graphs of every length bucket of a run (one
 * micro-step runs at a time, and each writes what it reads before reading it): a run whose batches come in many
 * lengths holds one set, the longest's. A graph of M rows uses the first M rows of each buffer.
 */
export class ActivationArena {
  readonly a: Activations;
  readonly #buffers: GPUBuffer[] = [];

  constructor(private readonly gpu: Gpu, cfg: ModelConfig, readonly rows: number, readonly rank: number, readonly chunk: number) {
    const f = activationFloats(cfg, rows, rank, chunk);
    const b = (label: string, n: number) => {
      const buf = gpu.createBuffer(`train.${label}`, Math.max(1, n) * 4, STORAGE());
      this.#buffers.push(buf);
      return buf;
    };
    try {
      const { xs, u, ...rest } = f;
      const named = Object.fromEntries(Object.entries(rest).map(([k, n]) => [k, b(k, n)])) as Omit<Activations, 'xs' | 'u'>;
      this.a = {
        ...named,
        xs: Array.from({ length: cfg.numLayers + 1 }, (_, l) => b(`x${l}`, xs)),
        u: { qkv: b('u_qkv', u.qkv), o: b('u_o', u.o), gate_up: b('u_gu', u.gate_up), down: b('u_down', u.down) },
      };
    } catch (e) {
      this.destroy();
      throw e;
    }
  }

  destroy(): void {
    for (const b of this.#buffers) this.gpu.destroyBuffer(b);
    this.#buffers.length = 0;
  }
}

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
    for (const group of GROUPS) {
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

/**
 * The scalar head of a reward model (D), trained beside the LoRA weights: the master copy `w` with its gradient and
 * Adam moments, and `copy`, which the forward reads (AdamW writes it, as it writes the bank copies of A and B).
 */
export interface HeadParams {
  n: number;
  w: GPUBuffer; g: GPUBuffer; m: GPUBuffer; v: GPUBuffer; copy: GPUBuffer;
}

export function createHeadParams(gpu: Gpu, D: number): HeadParams {
  const buf = (label: string) => gpu.createBuffer(`reward_head.${label}`, D * 4, STORAGE());
  return { n: D, w: buf('w'), g: buf('g'), m: buf('m'), v: buf('v'), copy: buf('copy') };
}

export interface GraphSettings {
  slot: number;
  dropout: number;
  scaling: number;
  maxGradNorm: number;
  /** A reward model: the pairwise loss on a scalar head at each sequence's last token replaces the language loss. */
  head?: HeadParams;
  /** Each row's cross-entropy gradient times its own weight (`rowWeights`): preference objectives. */
  rowWeights?: boolean;
}

export class TrainGraph {
  readonly M: number;
  /** Dispatches of one micro-step (forward + loss + backward), of validation, and of the optimizer step. */
  readonly micro: Dispatch[] = [];
  readonly forwardOnly: Dispatch[] = [];
  readonly optimizer: Dispatch[] = [];
  readonly bytes: number;
  readonly tokens: GPUBuffer;   // (M)
  readonly labels: GPUBuffer;   // (M), NONE where masked
  readonly loss: GPUBuffer;     // (M) per row; per pair for a reward model
  readonly ends: GPUBuffer;     // (B) reward model: the row of each sequence's last token, NONE for padding
  readonly rewards: GPUBuffer;  // (B) reward model: each sequence's reward
  readonly rowWeights: GPUBuffer; // (M) with settings.rowWeights: each row's gradient weight
  readonly norm: GPUBuffer;     // [gradient norm, clip factor]
  readonly seed: GPUBuffer;     // Seed: this micro-step's dropout seed
  readonly optStep: GPUBuffer;  // AdamStep
  /** The loss kernels' uniforms and the byte offset of their `weight`, which the step rewrites. */
  readonly lossWeights: { buffer: GPUBuffer; offset: number }[] = [];
  readonly #b: DispatchBuilder;
  readonly #a: Activations;
  readonly #step: GPUBuffer;
  readonly #rowInfo: GPUBuffer;
  readonly #ropeTable: GPUBuffer;
  /** The identity rotation (cos 1, sin 0), for SmolLM3's layers without RoPE. */
  readonly #ropeNone: GPUBuffer;
  /** Gemma 3's sliding layers' rotation (their own base, unscaled). */
  readonly #ropeLocal: GPUBuffer;
  readonly #chunk: number;

  private readonly cfg: ModelConfig;
  private readonly w: ModelWeights;
  private readonly bank: LoraBank;

  /** The graph adds its activations over `model` (the frozen weights and the bank holding the trained slot). */
  constructor(
    private readonly gpu: Gpu, model: LoadedModel<LoraBank>, readonly shape: GraphShape, readonly settings: GraphSettings, readonly params: TrainParams[],
    /** Activations of at least this graph's rows at the bank's rank (ActivationArena); the graph does not own them. */
    arena: ActivationArena,
  ) {
    this.cfg = model.config;
    this.w = model.weights;
    this.bank = model.lora;
    assertBindable(gpu, model, shape);
    const before = gpu.allocatedBytes;
    this.#b = new DispatchBuilder(gpu);
    const M = (this.M = shape.batch * shape.seqLen);
    this.tokens = this.#buf('train.tokens', M);
    this.labels = this.#buf('train.labels', M);
    this.loss = this.#buf('train.loss', M);
    this.ends = this.#buf('train.ends', shape.batch);
    this.rewards = this.#buf('train.rewards', shape.batch);
    this.rowWeights = this.#buf('train.row_weights', settings.rowWeights ? M : 1);
    this.norm = this.#buf('train.norm', 2);
    this.seed = this.#b.buffer('train.seed', 4 * packBlock(SEED_LAYOUT, { seed: 0 }).length, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
    this.optStep = this.#b.buffer('train.opt', 4 * recordWords(ADAMW_STEP_LAYOUT), GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
    this.#step = this.#b.buffer('train.step', 16, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
    gpu.device.queue.writeBuffer(this.#step, 0, packBlock(STEP_LAYOUT, { rows: M, seqs: M, lastStride: 1, lastOffset: 0 }));
    this.#rowInfo = this.#buf('train.rowInfo', ROW_INFO_WORDS * M);
    // Row m = b T + t is sequence b (its K/V slot) at position t, through the trained slot at strength 1.
    const T = shape.seqLen;
    gpu.device.queue.writeBuffer(this.#rowInfo, 0, packRecords(ROW_INFO_LAYOUT, M, (m) => ({ slot: Math.floor(m / T), pos: m % T, loraSlot: settings.slot, loraScale: 1 })));
    this.#ropeTable = this.#buf('train.rope_table', shape.seqLen * this.cfg.rotaryDim);
    gpu.device.queue.writeBuffer(this.#ropeTable, 0, ropeTable(ropeInvFreq(this.cfg, shape.seqLen), shape.seqLen, ropeScale(this.cfg)));
    const nope = this.cfg.ropeLayers?.includes(false) ?? false;
    this.#ropeNone = this.#buf('train.rope_identity', nope ? shape.seqLen * this.cfg.rotaryDim : 4);
    if (nope) gpu.device.queue.writeBuffer(this.#ropeNone, 0, ropeTable(new Float64Array(this.cfg.rotaryDim / 2), shape.seqLen));
    const local = this.cfg.localRopeTheta;
    this.#ropeLocal = this.#buf('train.rope_local', local !== null ? shape.seqLen * this.cfg.rotaryDim : 4);
    if (local !== null) gpu.device.queue.writeBuffer(this.#ropeLocal, 0, ropeTable(ropeInvFreq({ ...this.cfg, ropeTheta: local, ropeScaling: null }), shape.seqLen));
    if (settings.head && shape.batch > MAX_REWARD_BATCH) throw new Error(`a reward model trains on at most ${MAX_REWARD_BATCH} sequences a micro-step, not ${shape.batch}`);
    this.#chunk = settings.head ? 1 : logitChunk(this.cfg, M, shape.logitChunk);
    if (arena.rows < M || arena.chunk < this.#chunk || arena.rank !== this.bank.rank) {
      throw new Error(`the activations hold ${arena.rows} rows (logit chunk ${arena.chunk}, rank ${arena.rank}); this graph needs ${M} (${this.#chunk}, ${this.bank.rank})`);
    }
    this.#a = arena.a;
    for (const list of [this.micro, this.forwardOnly]) this.#forwardAndLoss(list, list === this.micro);
    this.#backward(this.micro);
    this.#optimizerStep(this.optimizer);
    this.bytes = gpu.allocatedBytes - before;
  }

  encode(pass: GPUComputePassEncoder, list: Dispatch[]): void {
    encode(pass, list);
  }

  destroy(): void {
    this.#b.destroy();
  }

  #buf(label: string, floats: number): GPUBuffer {
    return this.#b.buffer(label, Math.max(1, floats) * 4, STORAGE());
  }


  // ---- the step, top to bottom ---------------------------------------------------------------------------------

  /** Embedding, every layer (keeping each layer's input), the final norm, and the loss in chunks of rows. */
  #forwardAndLoss(list: Dispatch[], withGradient: boolean): void {
    const { a, w } = { a: this.#a, w: this.w };
    const embed = embedKernel(w.embed.format);
    for (const s of w.embed.shards) {
      list.push(this.#b.dispatch(embed, { K: this.cfg.hiddenSize, rowStart: s.rowStart, rowCount: s.rows, ldw: w.embed.ldw, scale: this.cfg.embedScale },
        { S: this.#step, E: s.buffer, tokens: this.tokens, x: a.xs[0] }, { rows: this.M, D: this.cfg.hiddenSize }));
    }
    for (let l = 0; l < this.cfg.numLayers; l++) this.#layerForward(l, true, list);
    this.#rmsnorm(a.xs[this.cfg.numLayers], w.finalNorm, a.xn, list);
    if (withGradient) this.#fill(a.dxn, this.M * this.cfg.hiddenSize, list);
    if (this.settings.head) this.#rewardHead(this.settings.head, withGradient, list);
    else for (let c0 = 0; c0 < this.M; c0 += this.#chunk) this.#lossChunk(c0, Math.min(this.#chunk, this.M - c0), withGradient, list);
  }

  /** Rewards at each sequence's last row, the pairwise loss, and (with the gradient) dxn at those rows and dHead. */
  #rewardHead(head: HeadParams, withGradient: boolean, list: Dispatch[]): void {
    const k = rewardHeadKernel(withGradient);
    const p = this.#b.params(k, { B: this.shape.batch, D: this.cfg.hiddenSize, weight: 0 });
    this.lossWeights.push({ buffer: p, offset: paramOffset(k, 'weight') });
    const buffers: Record<string, GPUBuffer> = { xn: this.#a.xn, ends: this.ends, head: head.copy, rewards: this.rewards, loss: this.loss };
    if (withGradient) Object.assign(buffers, { dxn: this.#a.dxn, gHead: head.g });
    list.push(this.#b.dispatch(k, p, buffers, {}));
  }

  /** Logits of rows [c0, c0 + rows), their cross-entropy (in place: logits become dlogits), and dxn += dlogits W. */
  #lossChunk(c0: number, rows: number, withGradient: boolean, list: Dispatch[]): void {
    const a = this.#a;
    const V = this.cfg.vocabSize;
    const stepC = this.#b.buffer('train.chunk_step', 16, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
    this.gpu.device.queue.writeBuffer(stepC, 0, packBlock(STEP_LAYOUT, { rows, seqs: rows, lastStride: 1, lastOffset: c0 }));
    this.#matmul('lm_head', a.xn, this.w.lmHead, a.logits, V, 0, { last: true }, null, null, list, stepC, rows);
    const perRow = this.settings.rowWeights === true;
    const ce = crossEntropyKernel(perRow);
    const ceP = this.#b.params(ce, { rows, V, labelOff: c0, weight: 0, softcap: this.cfg.finalSoftcap ?? 0 });
    this.lossWeights.push({ buffer: ceP, offset: paramOffset(ce, 'weight') });
    list.push(this.#b.dispatch(ce, ceP, { logits: a.logits, labels: this.labels, loss: this.loss, ...(perRow ? { rowWeight: this.rowWeights } : {}) }, { rows }));
    if (withGradient) this.#matmulNN('lm_head.bwd', a.logits, V, 0, this.w.lmHead, a.dxn, true, list, rows, 0, c0);
  }

  /** From the final norm back through every layer, recomputing each layer's forward from its kept input. */
  #backward(list: Dispatch[]): void {
    const L = this.cfg.numLayers;
    this.#fill(this.#a.dx, this.M * this.cfg.hiddenSize, list);
    this.#rmsnormBack(this.#a.xs[L], this.w.finalNorm, this.#a.dxn, this.#a.dx, list);
    for (let l = L - 1; l >= 0; l--) this.#layerBackward(l, this.#layerForward(l, false, list), list);
  }

  /**
   * A layer's forward from xs[l], the ops of model/layer.ts as separate kernels; with `full`, x_{l+1} too (the
   * backward's recompute stops before the last op that adds to the stream: a residual matmul, whose LoRA shrink it
   * still needs, or Gemma's post-norm, whose input it needs). The residual stream is not updated in place: each op
   * that adds to it copies it into the next buffer (xs[l] -> xmid -> xs[l+1]) and adds there, so the backward has
   * every norm's input. Returns which buffer each norm read.
   */
  #layerForward(l: number, full: boolean, list: Dispatch[]): Map<number, GPUBuffer> {
    const a = this.#a;
    const ops = this.#layerOps(l);
    const lastResidual = ops.findLastIndex(addsToStream);
    const normInputs = new Map<number, GPUBuffer>();
    let stream = a.xs[l];
    const next = (i: number) => {
      const out = i === lastResidual ? a.xs[l + 1] : a.xmid;
      this.#copy(stream, out, this.M * this.cfg.hiddenSize, list);
      return (stream = out);
    };
    ops.forEach((op, i) => {
      if (op.op === 'rmsnorm') {
        this.#rmsnorm(stream, op.gain, a.xn, list);
        normInputs.set(i, stream);
      } else if (op.op === 'qknorm') this.#qkNorm(op.gain, list);
      else if (op.op === 'rope') this.#rope(op.table, list);
      else if (op.op === 'attention') this.#attention(op.window, op.softcap, list);
      else if (op.op === 'glu') {
        const { intermediateSize: F } = this.cfg;
        list.push(this.#b.dispatch(swigluKernel(op.act), { M: this.M, F }, { gu: a.gu, h: a.h }, { M: this.M, F }));
      } else if (op.op === 'addnorm') {
        if (i === lastResidual && !full) return;
        const k = addNormKernel();
        list.push(this.#b.dispatch(k, { K: this.cfg.hiddenSize, eps: this.cfg.rmsNormEps }, { S: this.#step, y: this.#act(op.in), gain: op.gain, x: next(i) }, { rows: this.M }));
      } else {
        const lora = this.#adapted(l, op.group) ? { lg: this.bank.group(l, op.group)!, u: a.u[op.group] } : null;
        if (lora) this.#shrink(l, op.group, this.#act(op.in), list);
        if (i === lastResidual && !full) return;
        const out = op.residual ? next(i) : this.#act(op.out);
        let nOff = 0;
        for (const part of op.parts) {
          this.#matmul(`L${l}.${part.name}`, this.#act(op.in), part.w, out, actWidth(this.cfg, op.out), nOff, { residual: op.residual }, lora, op.bias, list);
          nOff += part.w.n;
        }
      }
    });
    return normInputs;
  }

  /**
   * A layer's backward: the ops of model/layer.ts in reverse. dx (the gradient of x_{l+1}) in, dx (of x_l) out, LoRA
   * gradients accumulated. A linear reading the normalized input needs that norm's output in xn for its LoRA
   * gradient: the recompute left the last norm's there, so an earlier one is recomputed first.
   */
  #layerBackward(l: number, normInputs: Map<number, GPUBuffer>, list: Dispatch[]): void {
    const a = this.#a;
    const ops = this.#layerOps(l);
    let inXn = Math.max(...normInputs.keys());
    for (let i = ops.length - 1; i >= 0; i--) {
      const op = ops[i];
      if (op.op === 'rmsnorm') this.#rmsnormBack(normInputs.get(i)!, op.gain, a.dxn, a.dx, list);
      else if (op.op === 'qknorm') this.#qkNormBackward(op.gain, list);
      else if (op.op === 'rope') this.#ropeBackward(op.table, list);
      else if (op.op === 'attention') this.#attentionBackward(op.window, op.softcap, list);
      else if (op.op === 'glu') {
        const { intermediateSize: F } = this.cfg;
        list.push(this.#b.dispatch(swigluBackwardKernel(op.act), { M: this.M, F }, { gu: a.gu, dh: a.dh, dgu: a.dgu }, { M: this.M, F }));
      } else if (op.op === 'addnorm') {
        // x += rmsnorm(y) g: the stream's gradient passes on unchanged, and dy = the norm's backward of it.
        this.#fill(a.dy, this.M * this.cfg.hiddenSize, list);
        this.#rmsnormBack(this.#act(op.in), op.gain, a.dx, a.dy, list);
      } else {
        const norm = ops.slice(0, i).findLastIndex((o) => o.op === 'rmsnorm');
        if (op.in === 'xn' && norm !== inXn) {
          const n = ops[norm] as { gain: GPUBuffer };
          this.#rmsnorm(normInputs.get(norm)!, n.gain, a.xn, list);
          inXn = norm;
        }
        const dy = this.#grad(op.out);
        const ldy = actWidth(this.cfg, op.out);
        let yOff = 0;
        op.parts.forEach((part, j) => {
          this.#matmulNN(`L${l}.${part.name}.bwd`, dy, ldy, yOff, part.w, this.#grad(op.in), j > 0, list);
          yOff += part.w.n;
        });
        if (this.#adapted(l, op.group)) this.#loraBack(l, op.group, this.#act(op.in), dy, ldy, this.#grad(op.in), list);
      }
    }
  }

  /** Layer l's ops (model/layer.ts). */
  #layerOps(l: number): LayerOp[] {
    return layerOps(this.w.layers[l], layerSpec(this.cfg, l));
  }

  /** The buffer of an activation of the current layer; the residual stream has one per point (see #layerForward). */
  #act(x: Exclude<Act, 'x'> | Act): GPUBuffer {
    const a = this.#a;
    if (x === 'x') throw new Error('the residual stream of a training graph is xs[l], xmid or xs[l + 1]: see #layerForward');
    return { xn: a.xn, qkv: a.qkv, attn: a.att, gu: a.gu, h: a.h, ya: a.ya, ym: a.ym }[x];
  }

  /** The gradient buffer of an activation (dx: of the residual stream; dy: of ya or ym, one at a time). */
  #grad(x: Act): GPUBuffer {
    const a = this.#a;
    return { x: a.dx, xn: a.dxn, qkv: a.dqkv, attn: a.datt, gu: a.dgu, h: a.dh, ya: a.dy, ym: a.dy }[x];
  }

  /** Global-norm clipping over every gradient, then AdamW on each A and B (and their bank copies) and the head. */
  #optimizerStep(list: Dispatch[]): void {
    const { slot, scaling, head } = this.settings;
    const count = 2 * this.params.length + (head ? 1 : 0);
    const partials = this.#buf('train.partials', Math.max(1, count));
    const sumsq = sumSquaresKernel();
    this.params.forEach((tp, i) => {
      list.push(this.#b.dispatch(sumsq, { n: tp.nA, slot: 2 * i }, { g: tp.gA, partials }, {}));
      list.push(this.#b.dispatch(sumsq, { n: tp.nB, slot: 2 * i + 1 }, { g: tp.gB, partials }, {}));
    });
    if (head) list.push(this.#b.dispatch(sumsq, { n: head.n, slot: count - 1 }, { g: head.g, partials }, {}));
    list.push(this.#b.dispatch(clipKernel(), { count, maxNorm: this.settings.maxGradNorm }, { partials, norm: this.norm }, {}));
    const adamw = adamwKernel();
    const R = this.bank.rank;
    const common = { S: this.optStep, norm: this.norm };
    if (head) {
      list.push(this.#b.dispatch(adamw, { n: head.n, bankOff: 0, bankScale: 1 },
        { ...common, param: head.w, grad: head.g, m1: head.m, m2: head.v, bank: head.copy }, { n: head.n }));
    }
    for (const tp of this.params) {
      list.push(this.#b.dispatch(adamw, { n: tp.nA, bankOff: slot * tp.lg.G * R * tp.lg.K, bankScale: 1 },
        { ...common, param: tp.a, grad: tp.gA, m1: tp.mA, m2: tp.vA, bank: tp.lg.a }, { n: tp.nA }));
      list.push(this.#b.dispatch(adamw, { n: tp.nB, bankOff: slot * tp.lg.N * R, bankScale: scaling },
        { ...common, param: tp.b, grad: tp.gB, m1: tp.mB, m2: tp.vB, bank: tp.lg.b }, { n: tp.nB }));
    }
  }

  // ---- dispatch helpers ------------------------------------------------------------------------------------------

  #adapted(layer: number, group: LoraGroupName): boolean {
    return this.params.some((p) => p.layer === layer && p.group === group);
  }

  #copy(src: GPUBuffer, dst: GPUBuffer, n: number, list: Dispatch[]): void {
    const k = copyKernel();
    list.push(this.#b.dispatch(k, { n }, { src, dst }, { n }));
  }

  #fill(dst: GPUBuffer, n: number, list: Dispatch[]): void {
    const k = fillKernel();
    list.push(this.#b.dispatch(k, { n, value: 0 }, { dst }, { n }));
  }

  #rmsnorm(x: GPUBuffer, gain: GPUBuffer, y: GPUBuffer, list: Dispatch[]): void {
    list.push(this.#b.dispatch(rmsnormKernel(this.gpu.cpu), { M: this.M, K: this.cfg.hiddenSize, eps: this.cfg.rmsNormEps }, { x, gain, y }, { M: this.M }));
  }

  #rmsnormBack(x: GPUBuffer, gain: GPUBuffer, dy: GPUBuffer, dx: GPUBuffer, list: Dispatch[]): void {
    list.push(this.#b.dispatch(rmsnormBackwardKernel(this.gpu.cpu), { M: this.M, K: this.cfg.hiddenSize, eps: this.cfg.rmsNormEps }, { x, gain, dy, dx }, { M: this.M }));
  }

  /** The (cos, sin) table a layer rotates by. */
  #table(t: LayerSpec['rope']): GPUBuffer {
    return { global: this.#ropeTable, local: this.#ropeLocal, none: this.#ropeNone }[t];
  }

  #rope(table: LayerSpec['rope'], list: Dispatch[]): void {
    const { numHeads: H, numKvHeads: Hkv, headDim: Dh } = this.cfg;
    const a = this.#a;
    const k = ropeKvKernel();
    list.push(this.#b.dispatch(k, { H, Hkv, Dh, C: this.shape.seqLen, R: this.cfg.rotaryDim },
      { S: this.#step, qkv: this.cfg.qkNorm ? a.qkvn : a.qkv, rowInfo: this.#rowInfo, rope: this.#table(table), q: a.q, kc: a.kc, vc: a.vc }, { rows: this.M, H, Hkv, Dh }));
  }

  /** qkvn: q and k heads of qkv normalized (qkv, the projection's output, is kept for the backward). */
  #qkNorm(gain: GPUBuffer, list: Dispatch[]): void {
    const { numHeads: H, numKvHeads: Hkv, headDim: Dh, rmsNormEps: eps } = this.cfg;
    list.push(this.#b.dispatch(qkNormKernel(false), { H, Hkv, Dh, eps }, { S: this.#step, x: this.#a.qkv, gain, y: this.#a.qkvn }, { rows: this.M, H, Hkv }));
  }

  /** dqkv, the gradient of qkvn, becomes the gradient of qkv (the norms' gains are frozen). */
  #qkNormBackward(gain: GPUBuffer, list: Dispatch[]): void {
    const { numHeads: H, numKvHeads: Hkv, headDim: Dh, rmsNormEps: eps } = this.cfg;
    list.push(this.#b.dispatch(qkNormBackwardKernel(), { H, Hkv, Dh, eps }, { S: this.#step, x: this.#a.qkv, gain, dqkv: this.#a.dqkv }, { rows: this.M, H, Hkv }));
  }

  #attention(window: number, softcap: number, list: Dispatch[]): void {
    const { numHeads: H, numKvHeads: Hkv, headDim: Dh } = this.cfg;
    const a = this.#a;
    list.push(this.#b.dispatch(manyRowsAttention(Dh, this.gpu.subgroup) ?? attentionKernel(Dh), { H, Hkv, C: this.shape.seqLen, scale: this.cfg.attentionScale, window, softcap },
      { S: this.#step, q: a.q, rowInfo: this.#rowInfo, kc: a.kc, vc: a.vc, out: a.att, lse: a.lse }, { H, rows: this.M }));
  }

  /** dq and dK, dV from the attention's output gradient datt (the rotated q, K, V and the kept log-sum-exp). */
  #attentionBackward(window: number, softcap: number, list: Dispatch[]): void {
    const { numHeads: H, numKvHeads: Hkv, headDim: Dh } = this.cfg;
    const a = this.#a;
    const inputs = { q: a.q, kc: a.kc, vc: a.vc, o: a.att, dout: a.datt, lse: a.lse };
    const p = { H, Hkv, T: this.shape.seqLen, scale: this.cfg.attentionScale, M: this.M, window, softcap };
    // CPU adapters: the kernels that load each row of the other side once per subgroup (as the forward's).
    const rows = manyRowsAttention(Dh, this.gpu.subgroup) !== null;
    const sg = this.gpu.subgroup;
    list.push(this.#b.dispatch(rows ? attentionBackwardDqRowsKernel(Dh, sg) : attentionBackwardDqKernel(Dh), p, { ...inputs, dq: a.dq }, p));
    list.push(this.#b.dispatch(rows ? attentionBackwardDkvRowsKernel(Dh, sg) : attentionBackwardDkvKernel(Dh), p, { ...inputs, dk: a.dk, dv: a.dv }, p));
  }

  /** dqkv from dq, dK, dV: the rotation undone. */
  #ropeBackward(table: LayerSpec['rope'], list: Dispatch[]): void {
    const { numHeads: H, numKvHeads: Hkv, headDim: Dh } = this.cfg;
    const a = this.#a;
    const sizes = { H, Hkv, Dh, T: this.shape.seqLen, M: this.M, R: this.cfg.rotaryDim };
    list.push(this.#b.dispatch(ropeBackwardKernel(), sizes, { dq: a.dq, dk: a.dk, dv: a.dv, rope: this.#table(table), dqkv: a.dqkv }, sizes));
  }

  /** Forward matmul (one dispatch per shard), optionally with the LoRA epilogue. */
  #matmul(
    label: string, x: GPUBuffer, m: Matrix, out: GPUBuffer, ldo: number, nOff: number, o: Partial<MatmulOptions>,
    lora: { lg: LoraGroupBuffers; u: GPUBuffer } | null, bias: GPUBuffer | null, list: Dispatch[], step = this.#step, rows = this.M,
  ): void {
    const opts: MatmulOptions = { format: m.format, norm: false, bias: !!bias, swiglu: false, residual: false, last: false, lora: !!lora, ...o };
    const variant = rows <= GEMV_MAX_ROWS ? 'gemv' : 'gemm';
    const k = matmulProgram(variant, opts, m.k, this.gpu);
    const lg = lora?.lg;
    for (const s of m.shards) {
      const buffers: Record<string, GPUBuffer> = { S: step, x, w: s.buffer, out };
      if (bias) buffers.bias = bias;
      if (lora) Object.assign(buffers, { rowInfo: this.#rowInfo, loraU: lora.u, loraB: lora.lg.b });
      list.push(this.#b.dispatch(k, {
        N: s.rows, K: m.k, ldw: m.ldw, ldx: m.k, ldo, nOff: nOff + s.rowStart, eps: this.cfg.rmsNormEps, rank: this.bank.rank, ...loraSegments(lg),
      }, buffers, { N: s.rows, rows }, label));
    }
  }

  /** dX (+)= dY[:, yOff + shard rows] W_shard for every shard. */
  #matmulNN(label: string, dy: GPUBuffer, ldy: number, yOff: number, m: Matrix, dx: GPUBuffer, accumulate: boolean, list: Dispatch[], rows = this.M, yRow = 0, outRow = 0): void {
    m.shards.forEach((s, i) => {
      const k = matmulNNKernel(m.format, accumulate || i > 0, this.gpu.subgroup, rows, nnVec(ldy, yOff + s.rowStart, m.k));
      list.push(this.#b.dispatch(k, { M: rows, N: s.rows, K: m.k, ldy, yOff: yOff + s.rowStart, ldw: m.ldw, ldo: m.k, outRow, yRow },
        { dy, w: s.buffer, dx }, { K: m.k, rows }, label));
    });
  }

  #loraParams(l: number, group: LoraGroupName, lg: LoraGroupBuffers, ldy: number): Record<keyof typeof LORA_TRAIN_PARAMS, number> {
    const { slot, dropout, scaling } = this.settings;
    const salt = l * 4 + GROUPS.indexOf(group);
    const { bRows, seg1, seg2 } = loraSegments(lg);
    return { M: this.M, K: lg.K, G: lg.G, rank: this.bank.rank, ldx: lg.K, slot, seed: salt, p: dropout, ldy, bRows, seg1, seg2, scaling };
  }

  #shrink(l: number, group: LoraGroupName, x: GPUBuffer, list: Dispatch[]): void {
    const lg = this.bank.group(l, group)!;
    const p = this.#loraParams(l, group, lg, 0);  // its sizes give the grid too
    list.push(this.#b.dispatch(loraShrinkTrainKernel(), p, { x, loraA: lg.a, u: this.#a.u[group], stepSeed: this.seed }, p));
  }

  /** LoRA backward of a group: dB, dA, and dX += ... ; dy holds the group's output gradient (B's rows as columns). */
  #loraBack(l: number, group: LoraGroupName, x: GPUBuffer, dy: GPUBuffer, ldy: number, dx: GPUBuffer, list: Dispatch[]): void {
    const a = this.#a;
    const lg = this.bank.group(l, group)!;
    const tp = this.params.find((t) => t.layer === l && t.group === group)!;
    const values = this.#loraParams(l, group, lg, ldy);
    const p = this.#b.params(loraWKernel(), values);
    list.push(this.#b.dispatch(loraWKernel(), p, { dy, loraB: lg.b, w: a.lw }, values));
    list.push(this.#b.dispatch(loraGradBKernel(), p, { dy, u: a.u[group], gB: tp.gB }, values));
    list.push(this.#b.dispatch(loraGradAKernel(), p, { x, w: a.lw, gA: tp.gA, stepSeed: this.seed }, values));
    list.push(this.#b.dispatch(loraGradXKernel(), p, { w: a.lw, loraA: lg.a, dx, stepSeed: this.seed }, values));
  }

}
