// One decoder layer, written once: the forward of a LLaMA-family layer as a list of ops, top to bottom, over named
// activations. Inference (model/runner.ts) and training (training/graph.ts) both build their dispatches from this
// list; neither wires a layer of its own. Fusion is a parameter of the build: inference folds each norm into the
// matmul that reads it and the GLU into the gate|up matmul (`fuseForInference`); training runs them as separate
// kernels so their backward can be taken, and walks the same list in reverse for the backward pass. A new layer kind
// (a model family's extra norm, another activation) is a new op here and a case in each builder.
//
//   xn   = rmsnorm(x) * g_attn                        (M, D)
//   qkv  = xn Wqkv^T (+ b) (+ LoRA)                    (M, (H + 2 Hkv) Dh)
//   q, k <- rmsnorm per head * q_norm, k_norm          (Qwen3, Gemma 3)
//   q, K, V <- rope(qkv)                               (M, H, Dh), the cache (the global or the local table; no
//                                                      rotation on SmolLM3's NoPE layers)
//   attn = softmax(scale q K^T) V                      (M, H, Dh), within the window on sliding layers (Gemma 2:
//                                                      scores soft-capped, c tanh(s / c))
//   x   += attn Wo^T (+ LoRA)                          (M, D)   Gemma: ya = attn Wo^T; x += rmsnorm(ya) * g_post_attn
//   xn   = rmsnorm(x) * g_mlp                          (M, D)
//   gu   = xn [Wg | Wu]^T (+ LoRA)                      (M, 2F)
//   h    = act(gu[:, :F]) * gu[:, F:]                   (M, F)   act: SiLU, or Gemma's tanh GELU
//   x   += h Wd^T (+ LoRA)                             (M, D)   Gemma: ym = h Wd^T; x += rmsnorm(ym) * g_post_mlp

import type { LoraGroupBuffers, LoraGroupName } from './lora-epilogue.js';
import type { ModelConfig } from './config.js';
import type { LayerWeights, Matrix } from './weights.js';
import { NONE } from '../kernels/common.js';
import type { GluAct } from '../kernels/activation.js';

/** The activations a layer's ops read and write, by role; each builder maps them to its own buffers. */
export type Act = 'x' | 'xn' | 'qkv' | 'attn' | 'gu' | 'h' | 'ya' | 'ym';


/** How one layer of a model differs from the others: its RoPE table, its attention window, its norms, its activation. */
export interface LayerSpec {
  /** The rotation: the model's table, the sliding layers' own base (Gemma 3), or none (SmolLM3's NoPE layers). */
  rope: 'global' | 'local' | 'none';
  /** Keys within this many positions (0: all before the query). */
  window: number;
  /** Attention scores soft-capped at this (Gemma 2), 0: not. */
  softcap: number;
  /** Norms after attention and MLP too (Gemma). */
  sandwich: boolean;
  act: GluAct;
}

/** Layer l of a model, from its config. */
export function layerSpec(cfg: ModelConfig, l: number): LayerSpec {
  const sliding = cfg.slidingWindow !== null && (cfg.slidingLayers?.[l] ?? true);
  const rope = cfg.ropeLayers?.[l] === false ? 'none' : sliding && cfg.localRopeTheta !== null ? 'local' : 'global';
  return { rope, window: sliding ? cfg.slidingWindow! : 0, softcap: cfg.attnSoftcap ?? 0, sandwich: cfg.sandwichNorms, act: cfg.hiddenAct };
}

/** A matmul of one or more weight matrices whose outputs sit side by side in `out` (gate | up). */
export interface LinearOp {
  op: 'linear';
  group: LoraGroupName;
  in: Act;
  parts: { name: string; w: Matrix }[];
  bias: GPUBuffer | null;
  out: Act;
  /** Added to the residual stream (`out` is 'x') instead of written. */
  residual: boolean;
}

export type LayerOp =
  | { op: 'rmsnorm'; gain: GPUBuffer }  // xn = rmsnorm(x) * gain, x the residual stream
  | LinearOp
  | { op: 'qknorm'; gain: GPUBuffer }  // each q and k head of qkv <- rmsnorm(head) * (q_norm | k_norm)
  | { op: 'rope'; table: LayerSpec['rope'] } // q, K, V <- rope(qkv); unrotated (written as they are) with 'none'
  | { op: 'attention'; window: number; softcap: number } // attn = attention(q, K, V), keys within `window` (0: all)
  | { op: 'glu'; act: GluAct }          // h = act(gu[:, :F]) * gu[:, F:]
  | { op: 'addnorm'; in: 'ya' | 'ym'; gain: GPUBuffer }; // x += rmsnorm(in) * gain (Gemma's post-norms)

/** The forward of one layer, top to bottom. */
export function layerOps(lw: LayerWeights, spec: LayerSpec): LayerOp[] {
  // With sandwich norms the attention and MLP outputs are normalized before they join the residual stream.
  const into = (y: 'ya' | 'ym', gain: GPUBuffer | null) => (spec.sandwich ? { out: y, residual: false, post: [{ op: 'addnorm', in: y, gain: gain! } as const] } : { out: 'x' as const, residual: true, post: [] });
  const o = into('ya', lw.postAttnNorm);
  const down = into('ym', lw.postMlpNorm);
  return [
    { op: 'rmsnorm', gain: lw.attnNorm },
    { op: 'linear', group: 'qkv', in: 'xn', parts: [{ name: 'qkv', w: lw.qkv }], bias: lw.qkvBias, out: 'qkv', residual: false },
    ...(lw.qkNorm ? [{ op: 'qknorm', gain: lw.qkNorm } as const] : []),
    { op: 'rope', table: spec.rope },
    { op: 'attention', window: spec.window, softcap: spec.softcap },
    { op: 'linear', group: 'o', in: 'attn', parts: [{ name: 'o', w: lw.o }], bias: null, out: o.out, residual: o.residual },
    ...o.post,
    { op: 'rmsnorm', gain: lw.mlpNorm },
    { op: 'linear', group: 'gate_up', in: 'xn', parts: [{ name: 'gate', w: lw.gate }, { name: 'up', w: lw.up }], bias: null, out: 'gu', residual: false },
    { op: 'glu', act: spec.act },
    { op: 'linear', group: 'down', in: 'h', parts: [{ name: 'down', w: lw.down }], bias: null, out: down.out, residual: down.residual },
    ...down.post,
  ];
}

/** Whether an op adds to the residual stream (a residual matmul or a post-norm). */
export const addsToStream = (op: LayerOp): boolean => (op.op === 'linear' && op.residual) || op.op === 'addnorm';

/** Floats per row of an activation. */
export function actWidth(cfg: ModelConfig, a: Act): number {
  const { hiddenSize: D, intermediateSize: F, numHeads: H, numKvHeads: Hkv, headDim: Dh } = cfg;
  return { x: D, xn: D, qkv: (H + 2 * Hkv) * Dh, attn: H * Dh, gu: 2 * F, h: F, ya: D, ym: D }[a];
}

/** A linear as inference runs it: with the norm before it folded in (`gain`) and the GLU after it (`glu`). */
export interface FusedLinear extends LinearOp {
  /** The RMSNorm gain when the matmul normalizes its input row itself. */
  gain: GPUBuffer | null;
  /** gate | up computed together and the GLU applied in the epilogue: the output is h, (M, F). */
  glu: GluAct | null;
}

export type FusedOp = FusedLinear | Extract<LayerOp, { op: 'qknorm' | 'rope' | 'attention' | 'addnorm' }>;

/** The layer's ops with every norm folded into the next matmul and the GLU into the gate|up matmul before it. */
export function fuseForInference(ops: LayerOp[]): FusedOp[] {
  const out: FusedOp[] = [];
  let gain: GPUBuffer | null = null;
  for (const op of ops) {
    if (op.op === 'rmsnorm') gain = op.gain;
    else if (op.op === 'glu') {
      const prev = out.at(-1);
      if (prev?.op !== 'linear' || prev.parts.length !== 2) throw new Error('a GLU must follow a gate|up linear to be fused');
      prev.glu = op.act;
      prev.out = 'h';
    } else if (op.op === 'linear') {
      if (op.in === 'xn' && !gain) throw new Error(`linear ${op.group} reads a norm that is not before it`);
      out.push({ ...op, gain: op.in === 'xn' ? gain : null, glu: null, in: op.in === 'xn' ? 'x' : op.in });
      if (op.in === 'xn') gain = null;
    } else out.push(op);
  }
  return out;
}

/**
 * The LoRA epilogue's segment uniforms of a group, one source for every matmul that adds it: output column c of a
 * split matmul belongs to module 0, 1 or 2 by c >= seg1 / seg2; a SwiGLU matmul reads up's B rows from `upRow`.
 */
export function loraSegments(lg: LoraGroupBuffers | undefined): { G: number; bRows: number; seg1: number; seg2: number; upRow: number } {
  if (!lg) return { G: 0, bRows: 0, seg1: NONE, seg2: NONE, upRow: 0 };
  return { G: lg.G, bRows: lg.N, seg1: lg.G >= 2 ? lg.offsets[1] : NONE, seg2: lg.G === 3 ? lg.offsets[2] : NONE, upRow: lg.G === 2 ? lg.offsets[1] : 0 };
}
