// Runs the training graph: uploads the adapter's A and B into the trainable buffers, executes micro-steps and
// optimizer steps, evaluates, and reads the adapter (and the optimizer state, for checkpoints) back.

import { InvalidArgumentError, NonFiniteError } from '../errors.js';
import type { Gpu } from '../gpu/device.js';
import { readFloats } from '../gpu/readback.js';
import { GROUP_MODULES, type LoraBank, type LoraGroupName } from '../lora/bank.js';
import { moduleShape } from '../lora/fit.js';
import { moduleKey, type LoraAdapter, type LoraModule } from '../lora/peft.js';
import type { ModelConfig } from '../model/config.js';
import type { LoadedModel } from '../model/loaded.js';
import type { TrainConfig } from './train-config.js';
import { ADAMW_STEP_LAYOUT } from '../kernels/train/optimizer.js';
import { SEED_LAYOUT } from '../kernels/train/lora-backward.js';
import { packBlock } from '../gpu/layout.js';
import { NONE } from '../kernels/common.js';
import { ActivationArena, assertBindable, createHeadParams, createTrainParams, TrainGraph, type GraphShape, type HeadParams, type TrainParams } from './graph.js';
import { logitChunk } from './memory.js';

export interface Batch {
  tokens: Uint32Array; // (M)
  /** (M) target token per row, 0xffffffff where masked (label -100). */
  labels: Uint32Array;
}

/** A reward model's micro-batch: B sequences (2p chosen, 2p + 1 rejected) and the row of each one's last token. */
export interface RewardBatch {
  tokens: Uint32Array; // (M)
  /** (B) row b T + (length - 1), or MASKED for a padding sequence (its pair is left out). */
  ends: Uint32Array;
}

export interface OptimizerState {
  /**
   * Per trainable (layer, group): A [G][r][K], B [N][r] and their Adam moments, at the run's own rank r (the bank pads
   * every slot to the largest resident rank, which depends on what else is loaded, so that layout is not kept).
   */
  tensors: { key: string; a: Float32Array; b: Float32Array; mA: Float32Array; vA: Float32Array; mB: Float32Array; vB: Float32Array }[];
}

export const MASKED = NONE;

export class TrainStep {
  readonly slot: number;
  /** The trainable tensors, in the bank's layout at `#rank`; re-made when the bank changes (see `#rebind`). */
  params: TrainParams[];
  readonly scaling: number;
  /** One graph per sequence length in use (batches are padded to a length bucket, not always to the cutoff). */
  readonly #graphs = new Map<number, TrainGraph>();
  #arena: ActivationArena | null = null;
  #staging: GPUBuffer | null = null;
  /** A reward model's scalar head (absent for language-model training). */
  readonly head: HeadParams | null;

  readonly #bank: LoraBank;
  /**
   * Ownership of what is borrowed from the bank: the graphs bind the bank's A and B buffers of every group, which the
   * bank rebuilds (destroys) whenever any adapter is added or removed. The step re-binds: before its next GPU work it
   * re-lays its own parameters and moments out for the bank's new rank and rebuilds its graphs (`#rebind`).
   */
  #bankVersion: number;
  /** The bank's rank the parameter buffers are laid out at. */
  #rank: number;

  /**
   * Adds `adapter` to the model's bank for the run (destroy() takes it out). With `head` (D floats), the run trains a
   * reward model: the adapter and the head, on pairs, with the pairwise loss. Inputs are checked before anything is
   * allocated, and a failure part way frees what was made and takes the adapter out of the bank again.
   */
  constructor(
    private readonly gpu: Gpu, private readonly model: LoadedModel<LoraBank>,
    readonly adapter: LoraAdapter, private readonly tc: TrainConfig, readonly shape: GraphShape, head?: Float32Array,
    /** Each row's gradient weighted on its own (weightedMicro): preference objectives. */
    private readonly perRowWeights = false,
  ) {
    const bank = (this.#bank = model.lora);
    if (head && head.length !== model.config.hiddenSize) throw new InvalidArgumentError(`The reward head has ${head.length} values; this model's hidden size is ${model.config.hiddenSize}.`);
    // An adapter of the run's name on the shelf (the result of a stopped run being continued) gives way for the run
    // and comes back if the run fails before it replaces it (see destroy).
    const held = bank.slotOf(adapter.name);
    this.#displaced = held ? bank.adapters[held - 1] : null;
    this.scaling = tc.useRslora ? tc.alpha / Math.sqrt(tc.rank) : tc.alpha / tc.rank;
    this.head = null;
    this.params = [];
    this.slot = bank.add(adapter);
    this.#bankVersion = bank.version;
    this.#rank = bank.rank;
    try {
      this.#staging = gpu.createBuffer('train.staging', Math.max(16, shape.batch * (shape.seqLen + 1) * 4), GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
      this.params = createTrainParams(gpu, bank, this.slot);
      if (head) {
        this.head = createHeadParams(gpu, head.length);
        gpu.device.queue.writeBuffer(this.head.w, 0, head);
        gpu.device.queue.writeBuffer(this.head.copy, 0, head);
      }
      for (const tp of this.params) {
        const { a, b } = this.#toLayout(tp);
        gpu.device.queue.writeBuffer(tp.a, 0, a);
        gpu.device.queue.writeBuffer(tp.b, 0, b);
      }
    } catch (e) {
      this.destroy();
      throw e;
    }
  }

  /**
   * Re-binds after the bank changed under this step (another adapter added or removed): the step's own parameters
   * and moments are read at the old layout, the graphs and parameter buffers re-made for the bank's new buffers and
   * rank, and the values written back (into the bank's copy too). Gradients are zero between optimizer steps (AdamW
   * zeroes them), so nothing is lost; a change between two micro-steps of one accumulation is refused.
   */
  async #rebind(): Promise<void> {
    if (this.#bankVersion === this.#bank.version) return;
    if (this.#bank.slotOf(this.adapter.name) !== this.slot) {
      throw new InvalidArgumentError(`The adapter "${this.adapter.name}" this run trains was taken out of the model: start the run again.`);
    }
    if (this.#accumulating) throw new InvalidArgumentError('An adapter was added or removed in the middle of an accumulated step: the step\'s gradients are lost. Continue from the last checkpoint.');
    const state = await this.saveState();
    this.#freeGraphs();
    this.#freeParams();
    this.params = createTrainParams(this.gpu, this.#bank, this.slot);
    this.#rank = this.#bank.rank;
    this.#bankVersion = this.#bank.version;
    this.loadState(state);
  }

  /** The adapter of the same name this run's slot replaced, put back by destroy(). */
  readonly #displaced: LoraAdapter | null;

  /** Micro-steps have accumulated gradients that no optimizer step has applied yet. */
  #accumulating = false;

  #freeParams(): void {
    for (const tp of this.params) for (const b of [tp.a, tp.b, tp.gA, tp.gB, tp.mA, tp.vA, tp.mB, tp.vB]) this.gpu.destroyBuffer(b);
    this.params = [];
  }

  /** The graph for sequences of `seqLen` tokens (at most the shape's), built on first use over the shared activations. */
  graphFor(seqLen: number): TrainGraph {
    let g = this.#graphs.get(seqLen);
    if (!g) {
      if (seqLen > this.shape.seqLen) throw new Error(`sequence length ${seqLen} is over the graph's ${this.shape.seqLen}`);
      g = new TrainGraph(this.gpu, this.model, { ...this.shape, seqLen },
        { slot: this.slot, dropout: this.tc.dropout, scaling: this.scaling, maxGradNorm: this.tc.maxGradNorm, head: this.head ?? undefined, rowWeights: this.perRowWeights }, this.params, this.#activations());
      this.#graphs.set(seqLen, g);
    }
    return g;
  }

  /** The activations every graph of this step shares, sized for the full shape at the bank's rank (made on first use). */
  #activations(): ActivationArena {
    if (!this.#arena) {
      assertBindable(this.gpu, this.model, this.shape);
      const rows = this.shape.batch * this.shape.seqLen;
      this.#arena = new ActivationArena(this.gpu, this.model.config, rows, this.#bank.rank, this.head ? 1 : logitChunk(this.model.config, rows, this.shape.logitChunk));
    }
    return this.#arena;
  }

  /** Frees every graph and the activations they share (rebuilt on next use). */
  #freeGraphs(): void {
    for (const g of this.#graphs.values()) g.destroy();
    this.#graphs.clear();
    this.#arena?.destroy();
    this.#arena = null;
  }

  /** The graph at the full sequence length (benchmarks, tests). */
  get graph(): TrainGraph {
    return this.graphFor(this.shape.seqLen);
  }

  /** The adapter's A and B of one (layer, group) in the bank's padded layout. */
  #toLayout(tp: TrainParams): { a: Float32Array; b: Float32Array } {
    const R = this.#rank;
    const { G, K, N, offsets } = tp.lg;
    const a = new Float32Array(G * R * K);
    const b = new Float32Array(N * R);
    GROUP_MODULES[tp.group].forEach((m, g) => {
      const p = this.adapter.modules.get(moduleKey(tp.layer, m));
      if (!p) return;
      for (let j = 0; j < p.rank; j++) a.set(p.a.subarray(j * K, (j + 1) * K), (g * R + j) * K);
      for (let o = 0; o < p.outFeatures; o++) for (let j = 0; j < p.rank; j++) b[(offsets[g] + o) * R + j] = p.b[o * p.rank + j];
    });
    return { a, b };
  }

  #read(buffer: GPUBuffer, floats: number): Promise<Float32Array> {
    return readFloats(this.gpu, buffer, floats);
  }

  /** One micro-step (or a forward-only pass); returns the per-row (per-pair) losses and, for a reward model, the rewards. */
  async #run(forwardOnly: boolean, input: { tokens: Uint32Array; labels?: Uint32Array; ends?: Uint32Array; rowWeights?: Float32Array }, weight: number, seed: number): Promise<{ losses: Float32Array; rewards: Float32Array }> {
    this.gpu.check();
    await this.#rebind();
    if (!forwardOnly) this.#accumulating = true;
    const B = this.shape.batch;
    const graph = this.graphFor(input.tokens.length / B);
    const q = this.gpu.device.queue;
    q.writeBuffer(graph.tokens, 0, input.tokens);
    if (input.labels) q.writeBuffer(graph.labels, 0, input.labels);
    if (input.ends) q.writeBuffer(graph.ends, 0, input.ends);
    if (input.rowWeights) q.writeBuffer(graph.rowWeights, 0, input.rowWeights);
    q.writeBuffer(graph.seed, 0, packBlock(SEED_LAYOUT, { seed }));
    for (const p of graph.lossWeights) q.writeBuffer(p.buffer, p.offset, new Float32Array([weight]));
    const enc = this.gpu.device.createCommandEncoder({ label: 'train' });
    const pass = enc.beginComputePass({ label: 'train' });
    graph.encode(pass, forwardOnly ? graph.forwardOnly : graph.micro);
    pass.end();
    const lossBytes = graph.M * 4;
    const staging = this.#staging!;
    enc.copyBufferToBuffer(graph.loss, 0, staging, 0, lossBytes);
    if (this.head) enc.copyBufferToBuffer(graph.rewards, 0, staging, lossBytes, B * 4);
    q.submit([enc.finish()]);
    const bytes = lossBytes + (this.head ? B * 4 : 0);
    await staging.mapAsync(GPUMapMode.READ, 0, bytes);
    const all = new Float32Array(staging.getMappedRange(0, bytes).slice(0));
    staging.unmap();
    this.gpu.check();
    return { losses: all.subarray(0, graph.M), rewards: all.subarray(graph.M) };
  }

  /**
   * Forward, loss and backward for one micro-batch; gradients accumulate. `weight` is 1 / (unmasked labels in the
   * whole accumulated batch). Returns the sum of the per-token losses and their count.
   */
  async micro(batch: Batch, weight: number, seed: number): Promise<{ lossSum: number; tokens: number }> {
    const { losses } = await this.#run(false, batch, weight, seed);
    return sumLosses(losses, batch.labels);
  }

  /**
   * A micro-step whose rows weigh their gradients on their own: row r's cross-entropy gradient times rowWeights[r]
   * (a step made with per-row weights). Returns each row's loss, -log p(label), before the weights (0 where masked).
   */
  async weightedMicro(batch: Batch, rowWeights: Float32Array, seed: number): Promise<Float32Array> {
    if (!this.perRowWeights) throw new Error('weightedMicro needs a TrainStep made with per-row weights');
    if (rowWeights.length !== batch.tokens.length) throw new Error(`${rowWeights.length} row weights for ${batch.tokens.length} rows`);
    return (await this.#run(false, { ...batch, rowWeights }, 1, seed)).losses.slice();
  }

  /**
   * Each row's loss, -log p(label) (0 where masked), by the model as it is: forward only, with the LoRA dropout of
   * `seed` (a micro-step's seed gives the forward its weightedMicro will take).
   */
  async rowLosses(batch: Batch, seed = 0): Promise<Float32Array> {
    return (await this.#run(true, batch, 0, seed)).losses.slice();
  }

  /** Validation: forward and loss only. */
  async evaluate(batch: Batch): Promise<{ lossSum: number; tokens: number }> {
    const { losses } = await this.#run(true, batch, 0, 0);
    return sumLosses(losses, batch.labels);
  }

  /**
   * A reward model's micro-step over pairs; gradients accumulate. `weight` is 1 / (pairs in the whole accumulated
   * batch); `gradient` false runs the forward only (validation, scoring). Returns each sequence's reward and each
   * pair's loss (zeros for padding).
   */
  async rewardMicro(batch: RewardBatch, weight: number, seed: number, gradient = true): Promise<{ rewards: Float32Array; pairLosses: Float32Array }> {
    if (!this.head) throw new Error('rewardMicro needs a TrainStep made with a reward head');
    if (batch.ends.length !== this.shape.batch) throw new Error(`a reward batch has ${this.shape.batch} sequences, not ${batch.ends.length}`);
    const { losses, rewards } = await this.#run(!gradient, batch, weight, seed);
    return { rewards, pairLosses: losses.slice(0, Math.floor(this.shape.batch / 2)) };
  }

  /** The reward head as trained so far (D floats). */
  async readHead(): Promise<Float32Array> {
    if (!this.head) throw new Error('this run has no reward head');
    return this.#read(this.head.w, this.head.n);
  }

  /** The head's gradient (tests and debugging). */
  async headGradient(): Promise<Float32Array> {
    if (!this.head) throw new Error('this run has no reward head');
    return this.#read(this.head.g, this.head.n);
  }

  /**
   * Clips by global norm and applies AdamW at optimizer step `t` (1-based) with learning rate `lr`. With `skip`, or
   * when the gradient norm is not finite, the gradients are dropped and nothing is updated (`applied` false).
   */
  async optimizerStep(t: number, lr: number, skip = false): Promise<{ gradNorm: number; applied: boolean }> {
    const c = this.tc;
    const q = this.gpu.device.queue;
    await this.#rebind();
    this.#accumulating = false;
    // Gradients live in the shared parameters: any graph's optimizer dispatches serve.
    const graph = this.#graphs.values().next().value ?? this.graph;
    q.writeBuffer(graph.optStep, 0, packBlock(ADAMW_STEP_LAYOUT, {
      lr, beta1: c.beta1, beta2: c.beta2, eps: c.eps, weightDecay: c.weightDecay, bc1: 1 - c.beta1 ** t, bc2: 1 - c.beta2 ** t, skip: skip ? 1 : 0,
    }));
    const enc = this.gpu.device.createCommandEncoder({ label: 'optimizer' });
    const pass = enc.beginComputePass();
    graph.encode(pass, graph.optimizer);
    pass.end();
    q.submit([enc.finish()]);
    const norm = await this.#read(graph.norm, 2);
    return { gradNorm: norm[0], applied: !skip && norm[1] >= 0 };
  }

  /** Gradients of the true A and B per module (tests and debugging). */
  async gradients(): Promise<Map<string, { a: Float32Array; b: Float32Array }>> {
    const out = new Map<string, { a: Float32Array; b: Float32Array }>();
    for (const tp of this.params) {
      const gA = await this.#read(tp.gA, tp.nA);
      const gB = await this.#read(tp.gB, tp.nB);
      this.#split(tp, gA, gB, (key, a, b) => out.set(key, { a, b }));
    }
    return out;
  }

  #split(tp: TrainParams, a: Float32Array, b: Float32Array, put: (key: string, a: Float32Array, b: Float32Array) => void): void {
    const R = this.#rank;
    const { K, offsets } = tp.lg;
    GROUP_MODULES[tp.group].forEach((m, g) => {
      const p = this.adapter.modules.get(moduleKey(tp.layer, m));
      if (!p) return;
      const ma = new Float32Array(p.rank * K);
      const mb = new Float32Array(p.outFeatures * p.rank);
      for (let j = 0; j < p.rank; j++) ma.set(a.subarray((g * R + j) * K, (g * R + j + 1) * K), j * K);
      for (let o = 0; o < p.outFeatures; o++) for (let j = 0; j < p.rank; j++) mb[o * p.rank + j] = b[(offsets[g] + o) * R + j];
      put(moduleKey(tp.layer, m), ma, mb);
    });
  }

  /** Copies the trained A and B back into `this.adapter` (CPU) and returns it. */
  async syncAdapter(): Promise<LoraAdapter> {
    for (const tp of this.params) {
      const a = await this.#read(tp.a, tp.nA);
      const b = await this.#read(tp.b, tp.nB);
      this.#split(tp, a, b, (key, ma, mb) => {
        const p = this.adapter.modules.get(key)!;
        p.a.set(ma);
        p.b.set(mb);
      });
    }
    return this.adapter;
  }

  async saveState(): Promise<OptimizerState> {
    const tensors: OptimizerState['tensors'] = [];
    const R = this.#rank;
    const r = this.tc.rank;
    for (const tp of this.params) {
      const { G, K, N } = tp.lg;
      const A = async (buf: GPUBuffer) => restride(await this.#read(buf, tp.nA), G, K, R, r, r);
      const B = async (buf: GPUBuffer) => restride(await this.#read(buf, tp.nB), N, 1, R, r, r);
      tensors.push({ key: `${tp.layer}.${tp.group}`, a: await A(tp.a), b: await B(tp.b), mA: await A(tp.mA), vA: await A(tp.vA), mB: await B(tp.mB), vB: await B(tp.vB) });
    }
    return { tensors };
  }

  /** Restores parameters and moments (and the bank copies the forward reads). */
  loadState(s: OptimizerState): void {
    checkStateValues(s);
    const q = this.gpu.device.queue;
    const R = this.#rank;
    const r = this.tc.rank;
    for (const tp of this.params) {
      const { G, K, N } = tp.lg;
      const { t, rows: rowsA } = savedTensor(s, tp.layer, tp.group, G, K, N, r);
      const rowsB = rowsA;
      const A = (x: Float32Array) => restride(x, G, K, rowsA, R, r);
      const B = (x: Float32Array) => restride(x, N, 1, rowsB, R, r);
      const a = A(t.a);
      const b = B(t.b);
      q.writeBuffer(tp.a, 0, a);
      q.writeBuffer(tp.b, 0, b);
      q.writeBuffer(tp.mA, 0, A(t.mA));
      q.writeBuffer(tp.vA, 0, A(t.vA));
      q.writeBuffer(tp.mB, 0, B(t.mB));
      q.writeBuffer(tp.vB, 0, B(t.vB));
      q.writeBuffer(tp.lg.a, this.slot * G * R * K * 4, a);
      q.writeBuffer(tp.lg.b, this.slot * N * R * 4, b.map((x) => x * this.scaling));
    }
  }

  /**
   * Frees the graphs, parameters, moments and gradients, and takes this run's adapter out of the inference bank (the
   * adapter it displaced, if any, goes back to its slot).
   */
  destroy(): void {
    this.#freeGraphs();
    this.#freeParams();
    if (this.head) for (const b of [this.head.w, this.head.g, this.head.m, this.head.v, this.head.copy]) this.gpu.destroyBuffer(b);
    if (this.#staging) this.gpu.destroyBuffer(this.#staging);
    if (this.#bank.slotOf(this.adapter.name) !== this.slot) return;
    if (this.#displaced) this.#bank.add(this.#displaced);
    else this.#bank.remove(this.adapter.name);
  }
}

/**
 * The saved tensors of one (layer, group) and their rows per slot: the run's rank, or (checkpoints from before) the
 * bank's rank at the time, at least r. Throws when they do not fit the group's shapes.
 */
function savedTensor(s: OptimizerState, layer: number, group: LoraGroupName, G: number, K: number, N: number, r: number): { t: OptimizerState['tensors'][number]; rows: number } {
  const t = s.tensors.find((x) => x.key === `${layer}.${group}`);
  const rows = t ? t.a.length / (G * K) : 0;
  if (!t || !Number.isInteger(rows) || rows < r || t.b.length !== rows * N || [t.mA, t.vA].some((x) => x.length !== t.a.length) || [t.mB, t.vB].some((x) => x.length !== t.b.length)) {
    throw new InvalidArgumentError(`The checkpoint does not match this training run at layer ${layer} ${group}: it was made with other settings (rank, target modules) or another base model. Start a new run, or load the base model it was trained on.`, { key: `${layer}.${group}` });
  }
  return { t, rows };
}

/**
 * A saved optimizer state fits a run of `adapter` on a model of `cfg` at rank r: every group the adapter trains has
 * its tensors at the group's shapes, and every value is finite. Checked before anything is allocated for the run.
 */
export function checkStateFits(s: OptimizerState, adapter: LoraAdapter, cfg: ModelConfig, r: number): void {
  checkStateValues(s);
  const trained = new Set<string>();
  for (let layer = 0; layer < cfg.numLayers; layer++) {
    for (const [group, modules] of Object.entries(GROUP_MODULES) as [LoraGroupName, LoraModule[]][]) {
      if (!modules.some((m) => adapter.modules.has(moduleKey(layer, m)))) continue;
      const N = modules.reduce((n, m) => n + moduleShape(cfg, m)[1], 0);
      savedTensor(s, layer, group, modules.length, moduleShape(cfg, modules[0])[0], N, r);
      trained.add(`${layer}.${group}`);
    }
  }
  const extra = s.tensors.find((t) => !trained.has(t.key));
  if (extra) {
    throw new InvalidArgumentError(`The checkpoint holds optimizer state for ${extra.key}, which this run does not train (this model has ${cfg.numLayers} layers): it was made for another model or edited. Start a new run.`, { key: extra.key });
  }
}

/**
 * Bounds no trained value comes near (gradients are clipped; A and B of a working adapter are below 1 in size), far
 * inside f32's range: a value past them is an edited or corrupt checkpoint, which would overflow on the first step.
 */
const STATE_BOUNDS = { weight: 1e4, firstMoment: 1e4, secondMoment: 1e8 } as const;

/** Every value of a saved optimizer state is finite and within sane bounds (checked before anything is allocated). */
export function checkStateValues(s: OptimizerState): void {
  for (const t of s.tensors) {
    for (const [field, values] of Object.entries({ a: t.a, b: t.b, mA: t.mA, vA: t.vA, mB: t.mB, vB: t.vB })) {
      const [layer, group] = t.key.split('.');
      const i = values.findIndex((v) => !Number.isFinite(v));
      if (i >= 0) throw new NonFiniteError(`The checkpoint's ${field} at layer ${layer} ${group} holds ${values[i]} at index ${i}: it was saved from a diverged run or is corrupt. Use an earlier checkpoint.`, { key: t.key, field, index: i });
      const second = field === 'vA' || field === 'vB';
      const bound = second ? STATE_BOUNDS.secondMoment : field === 'a' || field === 'b' ? STATE_BOUNDS.weight : STATE_BOUNDS.firstMoment;
      const j = values.findIndex((v) => Math.abs(v) > bound || (second && v < 0));
      if (j >= 0) {
        throw new InvalidArgumentError(`The checkpoint's ${field} at layer ${layer} ${group} holds ${values[j]} at index ${j}, ${second && values[j] < 0 ? 'a negative second moment' : `beyond ${bound}`}: no training reaches that; the checkpoint is corrupt or edited. Use an earlier checkpoint, or start a new run.`, { key: t.key, field, index: j });
      }
    }
  }
}

/**
 * Rows j < r of an array laid out [outer][from][inner], laid out again with `to` rows per outer index (zeros past r):
 * how a checkpoint at the run's rank and the bank's padded layout convert into each other.
 */
function restride(v: Float32Array, outer: number, inner: number, from: number, to: number, r: number): Float32Array {
  if (from === to) return v;
  const out = new Float32Array(outer * to * inner);
  for (let o = 0; o < outer; o++) for (let j = 0; j < r; j++) out.set(v.subarray((o * from + j) * inner, (o * from + j + 1) * inner), (o * to + j) * inner);
  return out;
}

function sumLosses(losses: Float32Array, labels: Uint32Array): { lossSum: number; tokens: number } {
  let lossSum = 0;
  let tokens = 0;
  for (let i = 0; i < labels.length; i++) if (labels[i] !== MASKED) { lossSum += losses[i]; tokens++; }
  return { lossSum, tokens };
}
