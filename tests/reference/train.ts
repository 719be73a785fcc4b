// The float64 reference of a LoRA training micro-step: the LLaMA forward with unmerged LoRA (dropout on the LoRA
// input with the GPU's hash, so masks match), cross-entropy weighted by 1 / (unmasked labels), and gradients of
// every LoRA A and B through the scalar tape. Or, for a reward model, the pairwise loss -log sigmoid(r_chosen -
// r_rejected) of a scalar head on each sequence's last final-normed hidden state, with the head's gradient too.
// Letters as in llama.ts.

import { fullModuleName, moduleKey, type RefAdapter as LoraAdapter, type RefConfig as ModelConfig, type RefModule as LoraModule } from './config.js';
import { Tape } from './autodiff.js';
import { gainOf, layerAttention, type Weights } from './llama.js';

export function pcg(v: number): number {
  const s = (Math.imul(v >>> 0, 747796405) + 2891336453) >>> 0;
  const w = Math.imul(((s >>> ((s >>> 28) + 4)) ^ s) >>> 0, 277803737) >>> 0;
  return ((w >>> 22) ^ w) >>> 0;
}

/** The GPU's inverted-dropout factor for element (m, k) (kernels/train/lora-backward.ts). */
export function dropFactor(seed: number, stepSeed: number, p: number, m: number, k: number): number {
  if (p <= 0) return 1;
  const h = pcg((seed ^ pcg(stepSeed) ^ pcg((Math.imul(m, 0x9e3779b9) ^ pcg(k)) >>> 0)) >>> 0);
  const r = (h >>> 8) / 16777216;
  return r >= p ? Math.fround(1 / Math.fround(1 - Math.fround(p))) : 0;
}

const GROUP: Record<LoraModule, number> = { q_proj: 0, k_proj: 0, v_proj: 0, o_proj: 1, gate_proj: 2, up_proj: 2, down_proj: 3 };

export interface ReferenceStep {
  /** Sum over unmasked rows of the per-token loss (reward model: over pairs of the pair loss). */
  lossSum: number;
  grads: Map<string, { a: Float64Array; b: Float64Array }>;
  /** Reward model: each sequence's reward, and the head's gradient. */
  rewards?: number[];
  headGrad?: Float64Array;
}

/** A reward model's objective: sequences 2p (chosen) and 2p + 1 (rejected); ends[b] the position of the last token. */
export interface RewardObjective {
  head: ArrayLike<number>;
  ends: number[];
}

/**
 * One micro-step over B sequences of T tokens (row m = b T + t). labels[m] < 0 is masked. The loss is
 * weight * sum of per-token losses, and gradients are of that.
 */
export function referenceTrainStep(
  cfg: ModelConfig, w: Weights, adapter: LoraAdapter, tokens: number[], labels: number[], T: number,
  weight: number, dropout = 0, stepSeed = 0, reward?: RewardObjective,
  /** Another objective over the sequences: from each sequence's token-loss nodes (-log p of its labels), the loss node. */
  sequenceLoss?: (tape: Tape, perSequence: number[][]) => number,
): ReferenceStep {
  const tape = new Tape();
  const { hiddenSize: D, intermediateSize: F, numHeads: H, numKvHeads: Hkv, headDim: Dh, vocabSize: V } = cfg;
  const W = (name: string) => w.get(name)!.data;
  const G = (name: string) => gainOf(cfg, W(name)); // a norm's gain as applied (Gemma: 1 + w)
  const gemma = cfg.sandwichNorms === true;
  const scale = cfg.attentionScale ?? 1 / Math.sqrt(Dh);
  let inv: Float64Array = new Float64Array(0); // the current layer's RoPE frequencies
  // c tanh(x / c) of each value (Gemma 2's soft-capping), or the values as they are.
  const cap = (xs: number[], c: number | null | undefined) => (c ? xs.map((x) => tape.scale(tape.tanh(tape.scale(x, 1 / c)), c)) : xs);
  // transformers' gelu_pytorch_tanh on the tape
  const gelu = (x: number) => tape.mul(tape.scale(x, 0.5), tape.addConst(tape.tanh(tape.scale(tape.add(x, tape.scale(tape.mul(x, tape.mul(x, x)), 0.044715)), Math.sqrt(2 / Math.PI))), 1));
  // Leaves for every LoRA parameter.
  const leaves = new Map<string, { a: number[]; b: number[] }>();
  for (const [key, p] of adapter.modules) leaves.set(key, { a: Array.from(p.a, (v) => tape.leaf(v)), b: Array.from(p.b, (v) => tape.leaf(v)) });

  const linear = (x: number[], name: string, n: number, k: number, layer: number, module: LoraModule | null, m: number): number[] => {
    const wt = W(`${name}.weight`);
    const bias = w.get(`${name}.bias`)?.data;
    const out = Array.from({ length: n }, (_, i) => {
      const terms = x.map((xv, j) => tape.scale(xv, wt[i * k + j]));
      const s = tape.sum(terms);
      return bias ? tape.addConst(s, bias[i]) : s;
    });
    const p = module ? adapter.modules.get(moduleKey(layer, module)) : undefined;
    if (!p) return out;
    const lf = leaves.get(moduleKey(layer, module!))!;
    const salt = layer * 4 + GROUP[module!];
    const xd = x.map((xv, j) => tape.scale(xv, dropFactor(salt, stepSeed, dropout, m, j)));
    const u = Array.from({ length: p.rank }, (_, r) => tape.dot(lf.a.slice(r * k, (r + 1) * k), xd));
    return out.map((o, i) => tape.add(o, tape.scale(tape.dot(lf.b.slice(i * p.rank, (i + 1) * p.rank), u), p.scaling)));
  };
  const rmsnorm = (x: number[], g: ArrayLike<number>): number[] => {
    const ms = tape.scale(tape.sum(x.map((v) => tape.mul(v, v))), 1 / x.length);
    const r = tape.rsqrt(tape.addConst(ms, cfg.rmsNormEps));
    return x.map((v, i) => tape.scale(tape.mul(v, r), g[i]));
  };
  const rope = (v: number[], off: number, pos: number): void => {
    const half = (cfg.rotaryDim ?? Dh) / 2; // the first rotaryDim dims turn, paired by halves; the rest pass
    for (let i = 0; i < half; i++) {
      const a = v[off + i];
      const b = v[off + i + half];
      const af = cfg.ropeScaling?.attentionFactor ?? 1; // LongRoPE's attention factor
      const c = af * Math.cos(Math.fround(pos * inv[i])); // the angle in f32, as transformers has it
      const s = af * Math.sin(Math.fround(pos * inv[i]));
      v[off + i] = tape.sub(tape.scale(a, c), tape.scale(b, s));
      v[off + i + half] = tape.add(tape.scale(b, c), tape.scale(a, s));
    }
  };

  const B = tokens.length / T;
  const lossTerms: number[] = [];
  const perSequence: number[][] = Array.from({ length: B }, () => []);
  let lossSum = 0;
  const headLeaves = reward ? Array.from(reward.head, (v) => tape.leaf(v)) : [];
  const rewards: number[] = [];
  for (let b = 0; b < B; b++) {
    const emb = W('model.embed_tokens.weight');
    const embScale = gemma ? Math.fround(Math.sqrt(D)) : 1; // Gemma's scaled embedding
    let x = Array.from({ length: T }, (_, t) => Array.from({ length: D }, (_, i) => tape.leaf(emb[tokens[b * T + t] * D + i] * embScale)));
    for (let l = 0; l < cfg.numLayers; l++) {
      const layer = layerAttention(cfg, l);
      inv = layer.inv;
      const p = (m: string) => fullModuleName(l, m as LoraModule);
      const qs: number[][] = [], ks: number[][] = [], vs: number[][] = [];
      for (let t = 0; t < T; t++) {
        const m = b * T + t;
        const xn = rmsnorm(x[t], G(`model.layers.${l}.input_layernorm.weight`));
        const q = linear(xn, p('q_proj'), H * Dh, D, l, 'q_proj', m);
        const k = linear(xn, p('k_proj'), Hkv * Dh, D, l, 'k_proj', m);
        const v = linear(xn, p('v_proj'), Hkv * Dh, D, l, 'v_proj', m);
        if (cfg.qkNorm) {
          const norm = (v: number[], heads: number, gain: string) => {
            for (let h = 0; h < heads; h++) v.splice(h * Dh, Dh, ...rmsnorm(v.slice(h * Dh, (h + 1) * Dh), G(`model.layers.${l}.self_attn.${gain}.weight`)));
          };
          norm(q, H, 'q_norm');
          norm(k, Hkv, 'k_norm');
        }
        if (cfg.ropeLayers?.[l] !== false) {
          for (let h = 0; h < H; h++) rope(q, h * Dh, t);
          for (let h = 0; h < Hkv; h++) rope(k, h * Dh, t);
        }
        qs.push(q); ks.push(k); vs.push(v);
      }
      const next: number[][] = [];
      for (let t = 0; t < T; t++) {
        const m = b * T + t;
        const att: number[] = [];
        for (let h = 0; h < H; h++) {
          const kh = Math.floor(h / (H / Hkv));
          const first = layer.window ? Math.max(0, t - layer.window + 1) : 0; // the sliding window
          const raw = Array.from({ length: t + 1 - first }, (_, jj) => tape.scale(tape.dot(qs[t].slice(h * Dh, (h + 1) * Dh), ks[first + jj].slice(kh * Dh, (kh + 1) * Dh)), scale));
          const scores = cap(raw, cfg.attnSoftcap); // Gemma 2's soft-capped scores
          const mx = Math.max(...scores.map((s) => tape.val[s]));
          const e = scores.map((s) => tape.exp(tape.addConst(s, -mx)));
          const inv = tape.rsqrt(tape.mul(tape.sum(e), tape.sum(e))); // 1 / sum
          for (let d = 0; d < Dh; d++) att.push(tape.mul(tape.sum(e.map((ej, jj) => tape.mul(ej, vs[first + jj][kh * Dh + d]))), inv));
        }
        let o = linear(att, p('o_proj'), D, H * Dh, l, 'o_proj', m);
        if (gemma) o = rmsnorm(o, G(`model.layers.${l}.post_attention_layernorm.weight`));
        const xmid = x[t].map((v, i) => tape.add(v, o[i]));
        const xn = rmsnorm(xmid, G(`model.layers.${l}.${gemma ? 'pre_feedforward_layernorm' : 'post_attention_layernorm'}.weight`));
        const g = linear(xn, p('gate_proj'), F, D, l, 'gate_proj', m);
        const u = linear(xn, p('up_proj'), F, D, l, 'up_proj', m);
        const hdn = g.map((gi, i) => tape.mul(gemma ? gelu(gi) : tape.mul(gi, tape.sigmoid(gi)), u[i]));
        let down = linear(hdn, p('down_proj'), D, F, l, 'down_proj', m);
        if (gemma) down = rmsnorm(down, G(`model.layers.${l}.post_feedforward_layernorm.weight`));
        next.push(xmid.map((v, i) => tape.add(v, down[i])));
      }
      x = next;
    }
    if (reward) {
      const xn = rmsnorm(x[reward.ends[b]], G('model.norm.weight'));
      rewards.push(tape.dot(xn, headLeaves));
      continue;
    }
    const head = W(cfg.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight');
    for (let t = 0; t < T; t++) {
      const label = labels[b * T + t];
      if (label < 0) continue;
      const xn = rmsnorm(x[t], G('model.norm.weight'));
      const logits = cap(Array.from({ length: V }, (_, v) => tape.sum(xn.map((xi, i) => tape.scale(xi, head[v * D + i])))), cfg.finalSoftcap);
      const mx = Math.max(...logits.map((z) => tape.val[z]));
      const lse = tape.addConst(tape.log(tape.sum(logits.map((z) => tape.exp(tape.addConst(z, -mx))))), mx);
      const loss = tape.sub(lse, logits[label]);
      lossSum += tape.val[loss];
      lossTerms.push(loss);
      perSequence[b].push(loss);
    }
  }
  for (let p = 0; 2 * p + 1 < rewards.length; p++) {
    // softplus(r_rejected - r_chosen) = -log sigmoid(r_chosen - r_rejected)
    const loss = tape.log(tape.addConst(tape.exp(tape.sub(rewards[2 * p + 1], rewards[2 * p])), 1));
    lossSum += tape.val[loss];
    lossTerms.push(loss);
  }
  const total = sequenceLoss ? sequenceLoss(tape, perSequence) : tape.scale(tape.sum(lossTerms), weight);
  if (sequenceLoss) lossSum = tape.val[total];
  const g = tape.grad(total);
  const grads = new Map<string, { a: Float64Array; b: Float64Array }>();
  for (const [key, lf] of leaves) grads.set(key, { a: Float64Array.from(lf.a, (i) => g[i]), b: Float64Array.from(lf.b, (i) => g[i]) });
  if (!reward) return { lossSum, grads };
  return { lossSum, grads, rewards: rewards.map((r) => tape.val[r]), headGrad: Float64Array.from(headLeaves, (i) => g[i]) };
}

/** torch.optim.AdamW for one tensor at step t (1-based), with the gradient already clipped. */
export function referenceAdamW(p: Float64Array, g: Float64Array, m: Float64Array, v: Float64Array, t: number,
  o: { lr: number; beta1: number; beta2: number; eps: number; weightDecay: number }): void {
  for (let i = 0; i < p.length; i++) {
    p[i] *= 1 - o.lr * o.weightDecay;
    m[i] = o.beta1 * m[i] + (1 - o.beta1) * g[i];
    v[i] = o.beta2 * v[i] + (1 - o.beta2) * g[i] * g[i];
    p[i] -= (o.lr / (1 - o.beta1 ** t)) * m[i] / (Math.sqrt(v[i] / (1 - o.beta2 ** t)) + o.eps);
  }
}
