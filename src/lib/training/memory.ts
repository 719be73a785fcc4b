// GPU memory of a LoRA training run, known before it starts: the trained adapter's parameters with their gradients
// and Adam moments, its slot in the inference bank, and each length bucket's graph of activations (the sizes the
// graph allocates come from `activationFloats`, so the estimate and the graph cannot drift apart).
// Letters: M = B T rows, D hidden, F intermediate, H/Hkv heads, Dh head dim, V vocab, R rank, L layers.

import { GROUP_MODULES, type LoraGroupName } from '../lora/bank.js';
import type { LoraModule } from '../lora/peft.js';
import type { ModelConfig } from '../model/config.js';
import { lengthBuckets } from '../data/batches.js';

/** Floats of each activation buffer of one graph (xs: each of the L + 1 residual buffers). */
export function activationFloats(cfg: ModelConfig, M: number, R: number, chunk: number) {
  const { hiddenSize: D, intermediateSize: F, numHeads: H, numKvHeads: Hkv, headDim: Dh, vocabSize: V } = cfg;
  return {
    xs: M * D, xn: M * D, xmid: M * D, qkv: M * (H + 2 * Hkv) * Dh, qkvn: cfg.qkNorm ? M * (H + 2 * Hkv) * Dh : 1,
    q: M * H * Dh, kc: M * Hkv * Dh, vc: M * Hkv * Dh, att: M * H * Dh, lse: M * H,
    gu: M * 2 * F, h: M * F, logits: chunk * V,
    // Gemma's attention and MLP outputs before their post-norms, and the gradient of either.
    ya: cfg.sandwichNorms ? M * D : 1, ym: cfg.sandwichNorms ? M * D : 1, dy: cfg.sandwichNorms ? M * D : 1,
    dx: M * D, dxn: M * D, dh: M * F, dgu: M * 2 * F, datt: M * H * Dh,
    dq: M * H * Dh, dk: M * Hkv * Dh, dv: M * Hkv * Dh, dqkv: M * (H + 2 * Hkv) * Dh,
    u: { qkv: M * 3 * R, o: M * R, gate_up: M * 2 * R, down: M * R } as Record<LoraGroupName, number>,
    lw: M * 3 * R,
  };
}

/**
 * The largest single buffer of a graph for B sequences of T tokens (each must fit one storage binding), and the
 * largest micro-batch whose buffers do.
 */
export function largestBuffer(cfg: ModelConfig, batch: number, seqLen: number, R: number, maxBinding: number): { name: string; bytes: number; maxBatch: number } {
  const largest = (m: number, withLogits: boolean) => {
    const { u, logits, ...rest } = activationFloats(cfg, m, R, logitChunk(cfg, m));
    const all: Record<string, number> = { ...rest, ...u, ...(withLogits ? { logits } : {}) };
    return Object.entries(all).reduce((a, [name, floats]) => (4 * floats > a.bytes ? { name, bytes: 4 * floats } : a), { name: '', bytes: 0 });
  };
  // Every buffer grows with the rows, the logits chunk aside (capped at 32 MiB): the largest batch follows by division.
  const perSequence = largest(seqLen, false).bytes;
  return { ...largest(batch * seqLen, true), maxBatch: Math.floor(maxBinding / Math.max(1, perSequence)) };
}

/** Rows of logits a graph computes at once: at most 32 MiB of them. */
export function logitChunk(cfg: ModelConfig, M: number, requested?: number): number {
  return Math.min(M, requested ?? Math.max(1, Math.floor((32 << 20) / (cfg.vocabSize * 4))));
}

/** Bytes of the activations a run's graphs share (ActivationArena), for B sequences of at most T tokens. */
export function activationBytes(cfg: ModelConfig, batch: number, seqLen: number, R: number): number {
  const M = batch * seqLen;
  const { xs, u, ...rest } = activationFloats(cfg, M, R, logitChunk(cfg, M));
  return 4 * (xs * (cfg.numLayers + 1) + Object.values(u).reduce((s, x) => s + x, 0) + Object.values(rest).reduce((s, x) => s + x, 0));
}

/** Bytes of what one graph of B sequences of T tokens holds of its own: tokens, labels, losses and the row table. */
export function graphOwnBytes(batch: number, seqLen: number): number {
  const M = batch * seqLen;
  return 4 * (M * 3 + M * 4);
}

/** In and out features of a projection group, and how many modules it fuses. */
function groupShape(cfg: ModelConfig, g: LoraGroupName): { K: number; N: number; G: number } {
  const { hiddenSize: D, intermediateSize: F, numHeads: H, numKvHeads: Hkv, headDim: Dh } = cfg;
  switch (g) {
    case 'qkv': return { K: D, N: (H + 2 * Hkv) * Dh, G: 3 };
    case 'o': return { K: H * Dh, N: D, G: 1 };
    case 'gate_up': return { K: D, N: 2 * F, G: 2 };
    case 'down': return { K: F, N: D, G: 1 };
  }
}

export interface TrainMemory {
  /** A and B with their gradients and two Adam moments, plus the adapter's slot in the inference bank. */
  adapterBytes: number;
  /** The graph at the cutoff's length. */
  activationBytes: number;
  /** Every length bucket's graph (data/batches.ts) over the shared activations, as when batches of all lengths occur. */
  allBucketsBytes: number;
  /** adapterBytes + activationBytes: what the run needs at least. */
  totalBytes: number;
}

/** What a run of rank `rank` on `targets`, `batch` sequences of at most `cutoff` tokens, takes on the GPU. */
export function trainMemory(cfg: ModelConfig, o: { rank: number; targets: LoraModule[]; batch: number; cutoff: number; /** Slots the inference bank grows by (2 when it was empty: slot 0 is "no adapter"). */ bankSlots?: number }): TrainMemory {
  let params = 0;
  for (const g of Object.keys(GROUP_MODULES) as LoraGroupName[]) {
    if (!GROUP_MODULES[g].some((m) => o.targets.includes(m))) continue;
    const { K, N, G } = groupShape(cfg, g);
    params += G * o.rank * K + N * o.rank;
  }
  params *= cfg.numLayers;
  // value, gradient, two moments; and the bank's new slots
  const adapterBytes = 4 * params * (4 + (o.bankSlots ?? 1));
  const T = o.cutoff;
  const shared = activationBytes(cfg, o.batch, T, o.rank);
  const allBucketsBytes = shared + lengthBuckets(T).reduce((s, b) => s + graphOwnBytes(o.batch, b), 0);
  return { adapterBytes, activationBytes: shared + graphOwnBytes(o.batch, T), allBucketsBytes, totalBytes: adapterBytes + shared + graphOwnBytes(o.batch, T) };
}
